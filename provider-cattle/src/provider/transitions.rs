//! Waiting for Cattle's transitions: polling a resource until its state
//! is the one wanted, running a service action and waiting for it, and
//! settling or rolling back upgrades left half-done.

use std::time::Duration;

use faas_core::{Error, Result, DEFAULT_NAMESPACE};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::CattleProvider;
use crate::error::CattleError;
use crate::model::{decode, Resource, Service};

/// Longest pause between two polls of a transitioning resource.
const MAX_POLL: Duration = Duration::from_secs(2);

/// What a poll of a transitioning resource decided.
pub(super) enum Progress {
    Done,
    Wait,
    Fail,
}

impl CattleProvider {
    /// Polls `link` until `check` says done (`Ok(Some(resource))`) or the
    /// resource is gone (`Ok(None)`), pausing between polls (doubling up to
    /// 2 s), for at most `limit`.
    pub(super) async fn wait(
        &self,
        link: &str,
        what: &str,
        limit: Duration,
        check: impl Fn(&Resource) -> Progress,
    ) -> std::result::Result<Option<Value>, CattleError> {
        let deadline = Instant::now() + limit;
        let mut pause = self.inner.config.poll_interval;
        loop {
            let value = match self.inner.api.get(link).await {
                Ok(value) => value,
                Err(CattleError::Api { status: 404, .. }) => return Ok(None),
                Err(err) => return Err(err),
            };
            let resource: Resource = serde_json::from_value(value.clone()).map_err(|source| CattleError::Decode {
                method: "GET".into(),
                url: link.to_owned(),
                source,
            })?;
            let detail = if resource.transitioning_message.is_empty() {
                String::new()
            } else {
                format!(" ({})", resource.transitioning_message)
            };
            match check(&resource) {
                Progress::Done => return Ok(Some(value)),
                Progress::Fail => {
                    return Err(CattleError::TransitionFailed { what: what.to_owned(), state: resource.state, detail })
                }
                Progress::Wait => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(CattleError::TransitionTimeout {
                    what: what.to_owned(),
                    state: resource.state,
                    detail,
                    seconds: limit.as_secs(),
                });
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    pub(super) fn action_link(service: &Service, action: &str) -> std::result::Result<String, CattleError> {
        service.resource.actions.get(action).cloned().ok_or_else(|| CattleError::ActionUnavailable {
            what: format!("service {}", service.resource.name),
            action: action.to_owned(),
            state: service.resource.state.clone(),
            offered: if service.resource.actions.is_empty() {
                "none".to_owned()
            } else {
                service.resource.actions.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })
    }

    /// Runs `action` on the service and waits until it reaches `target`.
    pub(super) async fn act_and_wait(&self, service: &Service, action: &str, target: &str) -> Result<Service> {
        let url = Self::action_link(service, action)?;
        self.inner.api.post(&url, &json!({})).await?;
        let link = service.resource.self_link().unwrap_or_default().to_owned();
        let what = format!("{action} of function {}", service.resource.name);
        let target = target.to_owned();
        let value = self
            .wait(&link, &what, self.inner.config.transition_timeout, |r| {
                if r.state == target {
                    Progress::Done
                } else if r.is_removed() {
                    Progress::Fail
                } else {
                    Progress::Wait
                }
            })
            .await?
            .ok_or_else(|| Error::function_not_found(&service.resource.name, DEFAULT_NAMESPACE))?;
        decode(value, "service")
    }

    /// Waits until the service is in a state an upgrade can start from,
    /// finishing or rolling back an upgrade left half-done.
    pub(super) async fn settle(&self, service: Service) -> Result<Service> {
        let link = service.resource.self_link().unwrap_or_default().to_owned();
        let what = format!("function {} to settle before its update", service.resource.name);
        let value = self
            .wait(&link, &what, self.inner.config.transition_timeout, |r| {
                if r.is_removed() {
                    Progress::Fail
                } else if r.actions.contains_key("upgrade")
                    || matches!(r.state.as_str(), "upgraded" | "canceled-upgrade" | "inactive")
                {
                    Progress::Done
                } else {
                    Progress::Wait
                }
            })
            .await?
            .ok_or_else(|| Error::function_not_found(&service.resource.name, DEFAULT_NAMESPACE))?;
        let service: Service = decode(value, "service")?;
        match service.resource.state.as_str() {
            "upgraded" => self.act_and_wait(&service, "finishupgrade", "active").await,
            "canceled-upgrade" => self.act_and_wait(&service, "rollback", "active").await,
            "inactive" => self.act_and_wait(&service, "activate", "active").await,
            _ => Ok(service),
        }
    }

    /// Waits (bounded by the transition timeout) until the service takes a
    /// new `scale`: Rancher refuses a scale change while a service
    /// registers, upgrades (from `upgrading` until the upgrade is finished
    /// or rolled back), finishes or rolls back an upgrade, or deactivates.
    /// An upgrade in progress belongs to whoever started it (an `update`
    /// of this or another gateway), so it is waited for, not finished; one
    /// still left at `upgraded` or `canceled-upgrade` when the wait runs
    /// out is settled as before an update, then the scale goes ahead.
    pub(super) async fn settle_for_scale(&self, service: Service) -> Result<Service> {
        let link = service.resource.self_link().unwrap_or_default().to_owned();
        let name = service.resource.name.clone();
        let what = format!("function {name} to settle before its scale");
        let waited = self
            .wait(&link, &what, self.inner.config.transition_timeout, |r| {
                if r.is_removed() {
                    Progress::Fail
                } else if takes_scale(&r.state) {
                    Progress::Done
                } else {
                    Progress::Wait
                }
            })
            .await;
        match waited {
            Ok(Some(value)) => decode(value, "service"),
            Ok(None) => Err(Error::function_not_found(&name, DEFAULT_NAMESPACE)),
            Err(CattleError::TransitionTimeout { state, .. })
                if matches!(state.as_str(), "upgraded" | "canceled-upgrade") =>
            {
                tracing::warn!(function = %name, %state, "an upgrade was left unfinished; settling it before the scale");
                let service: Service = decode(self.inner.api.get(&link).await?, "service")?;
                self.settle(service).await
            }
            Err(err) => Err(err.into()),
        }
    }

    /// After an upgrade that did not reach `upgraded`: cancel it if it is
    /// still running, then roll back.
    pub(super) async fn roll_back(&self, link: &str, name: &str) -> Result<()> {
        let mut service: Service = decode(self.inner.api.get(link).await?, "service")?;
        if service.resource.actions.contains_key("cancelupgrade") {
            service = self.act_and_wait(&service, "cancelupgrade", "canceled-upgrade").await?;
        }
        if service.resource.actions.contains_key("rollback") {
            self.act_and_wait(&service, "rollback", "active").await?;
            return Ok(());
        }
        Err(CattleError::ActionUnavailable {
            what: format!("rolling back function {name}"),
            action: "rollback".into(),
            state: service.resource.state,
            offered: service.resource.actions.keys().cloned().collect::<Vec<_>>().join(", "),
        }
        .into())
    }
}

/// Whether a service in `state` takes a new `scale` at once: where Cattle
/// can start (or is running) its update process, and while it activates.
pub(super) fn takes_scale(state: &str) -> bool {
    matches!(state, "active" | "inactive" | "degraded" | "activating" | "updating-active" | "updating-inactive")
}
