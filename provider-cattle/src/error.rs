//! The provider's own failures, and how they reach clients as
//! [`faas_core::Error`].

use faas_core::{BoxError, Error};

/// The name this provider reports in errors and in `/system/info`.
pub(crate) const PROVIDER: &str = "cattle";

/// What went wrong talking to Rancher or to a function.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CattleError {
    /// The configured URL cannot be used.
    #[error("the Rancher URL {url:?} is not usable: {reason}")]
    Url { url: String, reason: String },
    /// The API could not be reached (refused, reset, DNS).
    #[error("cannot reach the Rancher API at {url}")]
    Connect {
        url: String,
        #[source]
        source: BoxError,
    },
    /// An API request took longer than the request timeout.
    #[error("the Rancher API did not answer {method} {url} within {seconds}s")]
    RequestTimeout { method: String, url: String, seconds: u64 },
    /// 401: the keys are wrong or missing.
    #[error("Rancher rejected the access key (401 Unauthorized) at {url}: check the access key and secret key")]
    Unauthorized { url: String },
    /// 403: the keys may not do this.
    #[error("Rancher refused access (403 Forbidden) to {method} {url}: the API key lacks the permission")]
    Forbidden { method: String, url: String },
    /// Any other 4xx/5xx: the API's error object.
    #[error("{method} {url}: Rancher answered {status} {code}: {message}")]
    Api { method: String, url: String, status: u16, code: String, message: String },
    /// The answer is not what a Rancher API sends.
    #[error("{url} does not look like a Rancher API: {reason}")]
    NotRancher { url: String, reason: String },
    /// The server lacks a schema the provider needs.
    #[error("the Rancher server has no {schema:?} schema (or no collection for it); is this a Cattle environment's v2-beta API?")]
    SchemaMissing { schema: String },
    /// An action is not offered in the resource's current state.
    #[error("{what}: action {action:?} is not available in state {state:?} (offered: {offered})")]
    ActionUnavailable { what: String, action: String, state: String, offered: String },
    /// A transition did not finish in time.
    #[error("{what} did not finish within {seconds}s: still {state:?}{detail}")]
    TransitionTimeout { what: String, state: String, detail: String, seconds: u64 },
    /// A transition ended somewhere unexpected.
    #[error("{what} ended in state {state:?}{detail}")]
    TransitionFailed { what: String, state: String, detail: String },
    /// An upgrade did not complete and was rolled back.
    #[error("the upgrade of function {function} did not complete within {seconds}s and was rolled back: {reason}")]
    UpgradeRolledBack { function: String, seconds: u64, reason: String },
    /// The response body could not be decoded.
    #[error("cannot decode the answer to {method} {url}")]
    Decode {
        method: String,
        url: String,
        #[source]
        source: serde_json::Error,
    },
}

impl From<CattleError> for Error {
    fn from(err: CattleError) -> Self {
        match err {
            CattleError::Url { .. } => Error::invalid("url", err.to_string()),
            CattleError::Connect { .. }
            | CattleError::RequestTimeout { .. }
            | CattleError::Unauthorized { .. }
            | CattleError::Forbidden { .. } => {
                let reason = err.to_string();
                Error::unavailable(PROVIDER, reason, Some(Box::new(err) as BoxError))
            }
            CattleError::TransitionTimeout { ref what, ref state, seconds, .. } => {
                Error::Timeout { what: format!("{what} (still {state})"), seconds: seconds as f64 }
            }
            other => {
                let message = other.to_string();
                Error::backend(PROVIDER, message, Some(Box::new(other) as BoxError))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_status_a_client_can_act_on() {
        let cases: Vec<(CattleError, u16)> = vec![
            (CattleError::Unauthorized { url: "http://r/v2-beta".into() }, 503),
            (
                CattleError::Connect {
                    url: "http://r/v2-beta".into(),
                    source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
                },
                503,
            ),
            (CattleError::SchemaMissing { schema: "service".into() }, 502),
            (
                CattleError::ActionUnavailable {
                    what: "service f".into(),
                    action: "upgrade".into(),
                    state: "removing".into(),
                    offered: "none".into(),
                },
                502,
            ),
            (
                CattleError::TransitionTimeout {
                    what: "delete f".into(),
                    state: "removing".into(),
                    detail: String::new(),
                    seconds: 1,
                },
                504,
            ),
            (CattleError::Url { url: "x".into(), reason: "y".into() }, 400),
        ];
        for (err, status) in cases {
            let text = err.to_string();
            assert_eq!(Error::from(err).status().as_u16(), status, "{text}");
        }
    }
}
