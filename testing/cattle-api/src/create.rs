//! Create and update: the body checked against the schema's fields (type,
//! required, unique, references), as rancher/api-spec's validation rules say,
//! with 422 errors naming the field.

use base64::Engine;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::schemas::Schemas;
use crate::state::Store;
use crate::Shared;

/// A name Rancher accepts for stacks and services: letters, digits and
/// `-`, not starting or ending with `-`.
fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "InvalidCharacters",
            field,
            format!("{name:?} may only hold letters, digits and '-', not at either end"),
        ))
    }
}

fn required_string<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    match body.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(ApiError::invalid("MissingRequired", field, format!("{field} is required"))),
    }
}

fn optional_string(body: &Map<String, Value>, field: &str) -> Option<String> {
    body.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// Checks every field of `body` that `schema` declares against its type;
/// `creating` also refuses fields that cannot be set on create... by
/// ignoring them, as Rancher does. Returns the fields kept.
fn check_types(
    schema: &Map<String, Value>,
    body: &Map<String, Value>,
    prefix: &str,
    creating: bool,
) -> Result<Map<String, Value>, ApiError> {
    let mut kept = Map::new();
    for (key, value) in body {
        let Some(field) = Schemas::field(schema, key) else {
            continue;
        };
        let settable = if creating { field.get("create") } else { field.get("update") };
        if settable != Some(&Value::Bool(true)) {
            continue;
        }
        let name = format!("{prefix}{key}");
        if value.is_null() {
            if field.get("nullable") == Some(&Value::Bool(false)) {
                return Err(ApiError::invalid("NotNullable", &name, format!("{name} may not be null")));
            }
            kept.insert(key.clone(), Value::Null);
            continue;
        }
        let kind = field.get("type").and_then(Value::as_str).unwrap_or("string");
        let ok = match kind {
            "int" => value.is_i64(),
            "float" => value.is_number(),
            "boolean" => value.is_boolean(),
            "string" | "password" | "date" | "enum" | "blob" => value.is_string(),
            "map[string]" => value.as_object().is_some_and(|m| m.values().all(Value::is_string)),
            "array[string]" => value.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            "json" | "map[json]" => true,
            k if k.starts_with("reference[") => value.is_string(),
            k if k.starts_with("array[") => value.is_array(),
            k if k.starts_with("map[") => value.is_object(),
            _ => value.is_object(),
        };
        if !ok {
            return Err(ApiError::invalid("InvalidType", &name, format!("{name} must be of type {kind}, not {value}")));
        }
        if let Some(Value::Array(options)) = field.get("options") {
            if kind == "enum" && !options.contains(value) {
                return Err(ApiError::invalid("InvalidOption", &name, format!("{name} must be one of {options:?}")));
            }
        }
        kept.insert(key.clone(), value.clone());
    }
    Ok(kept)
}

pub(crate) fn stack(
    _shared: &Shared,
    store: &mut Store,
    schema: &Map<String, Value>,
    body: &Map<String, Value>,
) -> Result<String, ApiError> {
    let body = check_types(schema, body, "", true)?;
    let name = required_string(&body, "name")?;
    check_name("name", name)?;
    if store.stacks.values().any(|s| s.common.name == name && s.common.removed.is_none()) {
        return Err(ApiError::invalid("NotUnique", "name", format!("a stack named {name:?} exists already")));
    }
    Ok(store.add_stack(name.to_owned(), optional_string(&body, "description")))
}

pub(crate) fn service(
    shared: &Shared,
    store: &mut Store,
    schema: &Map<String, Value>,
    body: &Map<String, Value>,
) -> Result<String, ApiError> {
    let body = check_types(schema, body, "", true)?;
    let name = required_string(&body, "name")?;
    check_name("name", name)?;
    let stack_id = required_string(&body, "stackId")?;
    let stack_ok =
        store.stacks.get(stack_id).is_some_and(|s| s.common.removed.is_none() && s.common.state != "removing");
    if !stack_ok {
        return Err(ApiError::invalid("InvalidReference", "stackId", format!("stack {stack_id} does not exist")));
    }
    let taken = store.services.values().any(|s| {
        s.stack_id == stack_id && s.common.name == name && !matches!(s.common.state.as_str(), "removed" | "removing")
    });
    if taken {
        return Err(ApiError::invalid("NotUnique", "name", format!("a service named {name:?} exists in this stack")));
    }
    let scale = body.get("scale").and_then(Value::as_i64).unwrap_or(1);
    if scale < 0 {
        return Err(ApiError::invalid("MinLimitExceeded", "scale", "scale must be 0 or more"));
    }
    let launch_config = match body.get("launchConfig") {
        Some(Value::Object(lc)) => launch_config(shared, store, lc)?,
        _ => return Err(ApiError::invalid("MissingRequired", "launchConfig", "launchConfig is required")),
    };
    let start = body.get("startOnCreate").and_then(Value::as_bool).unwrap_or(false);
    Ok(store.add_service(
        name.to_owned(),
        stack_id.to_owned(),
        scale,
        start,
        optional_string(&body, "description"),
        body.get("metadata").cloned(),
        launch_config,
    ))
}

/// Checks a launch config: the fields the `launchConfig` schema declares
/// (others are dropped, as Rancher drops them), an `imageUuid` of the form
/// `docker:<image>`, and secret references to existing secrets.
pub(crate) fn launch_config(
    shared: &Shared,
    store: &Store,
    lc: &Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let schema = shared.schemas.get("launchConfig").expect("the launchConfig schema is embedded");
    let kept = check_types(schema, lc, "launchConfig.", true)?;
    let image = required_string(&kept, "imageUuid").map_err(|_| {
        ApiError::invalid("MissingRequired", "launchConfig.imageUuid", "launchConfig.imageUuid is required")
    })?;
    if !image.starts_with("docker:") || image.len() == "docker:".len() {
        return Err(ApiError::invalid(
            "InvalidFormat",
            "launchConfig.imageUuid",
            format!("imageUuid must be docker:<image>, not {image:?}"),
        ));
    }
    if let Some(Value::Array(secrets)) = kept.get("secrets") {
        for reference in secrets {
            let id = reference.get("secretId").and_then(Value::as_str).unwrap_or_default();
            let exists = store.secrets.get(id).is_some_and(|s| s.common.state == "active");
            if !exists {
                return Err(ApiError::invalid(
                    "InvalidReference",
                    "launchConfig.secrets.secretId",
                    format!("secret {id:?} does not exist"),
                ));
            }
        }
    }
    Ok(kept)
}

pub(crate) fn secret(
    store: &mut Store,
    schema: &Map<String, Value>,
    body: &Map<String, Value>,
) -> Result<String, ApiError> {
    let body = check_types(schema, body, "", true)?;
    let name = required_string(&body, "name")?;
    if name.contains('/') || name.starts_with('.') {
        return Err(ApiError::invalid("InvalidCharacters", "name", format!("{name:?} is not a valid secret name")));
    }
    if store.secrets.values().any(|s| s.common.name == name && s.common.state == "active") {
        return Err(ApiError::invalid("NotUnique", "name", format!("a secret named {name:?} exists already")));
    }
    let value = optional_string(&body, "value").unwrap_or_default();
    if base64::engine::general_purpose::STANDARD.decode(value.as_bytes()).is_err() {
        return Err(ApiError::invalid("InvalidFormat", "value", "value must be base64"));
    }
    Ok(store.add_secret(name.to_owned(), value, optional_string(&body, "description")))
}

/// Whether a service in `state` takes a new `scale`: only where Cattle can
/// start its update process (`active`, `inactive`), while one is already
/// running (`updating-*`) and while it is activating; not during an
/// upgrade (from `upgrading` until it is finished or rolled back), nor
/// while it registers or deactivates.
fn accepts_scale(state: &str) -> bool {
    matches!(state, "active" | "inactive" | "activating" | "updating-active" | "updating-inactive")
}

/// PUT: the fields the schema marks `update: true`; others are ignored.
pub(crate) fn update(
    store: &mut Store,
    schema: &Map<String, Value>,
    plural: &str,
    id: &str,
    body: &Map<String, Value>,
) -> Result<(), ApiError> {
    let body = check_types(schema, body, "", false)?;
    match plural {
        "services" => {
            let (stack_id, state, current_scale) = match store.services.get(id) {
                Some(s) => (s.stack_id.clone(), s.common.state.clone(), s.scale),
                None => return Err(ApiError::not_found(format!("service {id}"))),
            };
            if matches!(state.as_str(), "removing" | "removed") {
                return Err(ApiError::invalid_state(format!("service {id} is {state}")));
            }
            if let Some(name) = body.get("name").and_then(Value::as_str) {
                check_name("name", name)?;
                let taken = store.services.values().any(|s| {
                    s.common.id != id && s.stack_id == stack_id && s.common.name == name && s.common.removed.is_none()
                });
                if taken {
                    return Err(ApiError::invalid("NotUnique", "name", format!("a service named {name:?} exists")));
                }
            }
            let scale = body.get("scale").and_then(Value::as_i64);
            if scale.is_some_and(|s| s < 0) {
                return Err(ApiError::invalid("MinLimitExceeded", "scale", "scale must be 0 or more"));
            }
            if scale.is_some_and(|s| s != current_scale) && !accepts_scale(&state) {
                return Err(ApiError::invalid_state(format!(
                    "the scale of service {id} cannot change while it is {state}: finish or roll back its upgrade, \
                     or wait until it is active"
                )));
            }
            let service = store.services.get_mut(id).expect("checked above");
            if let Some(name) = body.get("name").and_then(Value::as_str) {
                service.common.name = name.to_owned();
            }
            if body.contains_key("description") {
                service.description = optional_string(&body, "description");
            }
            if let Some(metadata) = body.get("metadata") {
                service.metadata = Some(metadata.clone());
            }
            if let Some(scale) = scale {
                if scale != service.scale {
                    service.scale = scale;
                    match service.common.state.as_str() {
                        "active" => service.common.set_state("updating-active"),
                        "inactive" => service.common.set_state("updating-inactive"),
                        _ => {}
                    }
                }
            }
        }
        "stacks" => {
            let stack = store.stacks.get_mut(id).ok_or_else(|| ApiError::not_found(format!("stack {id}")))?;
            if body.contains_key("description") {
                stack.description = optional_string(&body, "description");
            }
        }
        "secrets" => {
            let secret = store.secrets.get_mut(id).ok_or_else(|| ApiError::not_found(format!("secret {id}")))?;
            if body.contains_key("description") {
                secret.description = optional_string(&body, "description");
            }
        }
        _ => return Err(ApiError::not_found(format!("{plural}/{id}"))),
    }
    Ok(())
}
