//! Actions: only those listed in a resource's `actions` (valid in its
//! current state) run; anything else is a 422 `InvalidState`.

use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::render::service_actions;
use crate::state::Store;
use crate::Shared;

/// Runs `action` on `plural/id`. `remove` is also what DELETE does; on a
/// resource already being removed, DELETE is a no-op (`via_delete`).
pub(crate) fn run(
    shared: &Shared,
    store: &mut Store,
    plural: &str,
    id: &str,
    action: &str,
    input: Map<String, Value>,
    via_delete: bool,
) -> Result<(), ApiError> {
    match plural {
        "services" => service(shared, store, id, action, input, via_delete),
        "stacks" => {
            let stack = store.stacks.get_mut(id).ok_or_else(|| ApiError::not_found(format!("stack {id}")))?;
            let state = stack.common.state.clone();
            if action != "remove" || matches!(state.as_str(), "removing" | "removed") {
                if via_delete {
                    return Ok(());
                }
                return Err(ApiError::invalid_state(format!(
                    "action {action} is not available for stack {id} in state {state}"
                )));
            }
            stack.common.set_state("removing");
            for service in store.services.values_mut().filter(|s| s.stack_id == id) {
                if !matches!(service.common.state.as_str(), "removing" | "removed") {
                    service.common.set_state("removing");
                }
            }
            Ok(())
        }
        "secrets" => {
            let secret = store.secrets.get_mut(id).ok_or_else(|| ApiError::not_found(format!("secret {id}")))?;
            if action != "remove" || secret.common.state != "active" {
                if via_delete {
                    return Ok(());
                }
                let state = &secret.common.state;
                return Err(ApiError::invalid_state(format!(
                    "action {action} is not available for secret {id} in state {state}"
                )));
            }
            secret.common.set_state("removed");
            secret.common.removed = Some(chrono::Utc::now());
            Ok(())
        }
        _ => {
            let state = store.instances.get(id).map(|i| i.common.state.clone()).unwrap_or_default();
            Err(ApiError::invalid_state(format!(
                "action {action} is not available for instance {id} in state {state} (this test server runs no \
                 instance actions)"
            )))
        }
    }
}

fn service(
    shared: &Shared,
    store: &mut Store,
    id: &str,
    action: &str,
    input: Map<String, Value>,
    via_delete: bool,
) -> Result<(), ApiError> {
    let state = store.services.get(id).map(|s| s.common.state.clone()).ok_or_else(|| ApiError::not_found(id))?;
    if !service_actions(&state).contains(&action) {
        if via_delete && matches!(state.as_str(), "removing" | "removed") {
            return Ok(());
        }
        return Err(ApiError::invalid_state(format!(
            "action {action} is not available for service {id} in state {state}"
        )));
    }
    let launch_config = if action == "upgrade" { Some(upgrade_input(shared, store, &input)?) } else { None };
    let service = store.services.get_mut(id).expect("checked above");
    match action {
        "remove" => service.common.set_state("removing"),
        "activate" => service.common.set_state("activating"),
        "deactivate" => service.common.set_state("deactivating"),
        "cancelupgrade" => service.common.set_state("canceling-upgrade"),
        "continueupgrade" => service.common.set_state("upgrading"),
        "finishupgrade" => service.common.set_state("finishing-upgrade"),
        "rollback" => {
            if let Some((version, previous)) = service.previous.take() {
                service.version = version;
                service.launch_config = previous;
            }
            service.common.set_state("rolling-back");
        }
        "upgrade" => {
            let (new_config, mut input) = launch_config.expect("parsed above");
            let old = std::mem::replace(&mut service.launch_config, new_config);
            if let Some(Value::Object(strategy)) = input.get_mut("inServiceStrategy") {
                strategy.insert("previousLaunchConfig".into(), Value::Object(old.clone()));
            }
            service.previous = Some((service.version, old));
            service.version += 1;
            service.upgrade = Some(Value::Object(input));
            service.stops_owed = 0;
            service.next_batch = Instant::now();
            service.common.set_state("upgrading");
        }
        _ => {
            return Err(ApiError::invalid_state(format!("action {action} is not implemented by this test server")));
        }
    }
    Ok(())
}

/// A checked upgrade: the new launch config and the `serviceUpgrade` kept.
type UpgradeInput = (Map<String, Value>, Map<String, Value>);

/// The `serviceUpgrade` input: an `inServiceStrategy` with a launch config.
fn upgrade_input(shared: &Shared, store: &Store, input: &Map<String, Value>) -> Result<UpgradeInput, ApiError> {
    if input.get("toServiceStrategy").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::invalid(
            "InvalidOption",
            "toServiceStrategy",
            "toServiceStrategy is not supported by this test server; use inServiceStrategy",
        ));
    }
    let Some(Value::Object(strategy)) = input.get("inServiceStrategy") else {
        return Err(ApiError::invalid("MissingRequired", "inServiceStrategy", "inServiceStrategy is required"));
    };
    for (field, check) in [
        ("batchSize", Value::is_i64 as fn(&Value) -> bool),
        ("intervalMillis", Value::is_i64),
        ("startFirst", Value::is_boolean),
    ] {
        if let Some(value) = strategy.get(field) {
            if !value.is_null() && !check(value) {
                return Err(ApiError::invalid(
                    "InvalidType",
                    &format!("inServiceStrategy.{field}"),
                    format!("{field} has the wrong type: {value}"),
                ));
            }
        }
    }
    let Some(Value::Object(lc)) = strategy.get("launchConfig") else {
        return Err(ApiError::invalid(
            "MissingRequired",
            "inServiceStrategy.launchConfig",
            "inServiceStrategy.launchConfig is required",
        ));
    };
    let launch_config = crate::create::launch_config(shared, store, lc)?;
    let mut kept = Map::new();
    let mut strategy = strategy.clone();
    strategy.insert("type".into(), Value::String("inServiceUpgradeStrategy".into()));
    kept.insert("inServiceStrategy".into(), Value::Object(strategy));
    kept.insert("toServiceStrategy".into(), Value::Null);
    kept.insert("type".into(), Value::String("serviceUpgrade".into()));
    Ok((launch_config, kept))
}
