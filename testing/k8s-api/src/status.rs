//! `Status` errors, as the API conventions define them: `kind: Status`,
//! `status: Failure`, a `reason`, the HTTP `code`, a `message` and
//! `details` (name, group, kind, causes).

use http::StatusCode;
use serde_json::{json, Value};

use crate::kinds::Kind;

/// One cause of an `Invalid` error.
#[derive(Debug, Clone)]
pub(crate) struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, ...
    pub(crate) reason: &'static str,
    /// The field path (`spec.selector`).
    pub(crate) field: String,
    /// What is wrong (`Required value`).
    pub(crate) message: String,
}

impl Cause {
    /// A required field is missing.
    pub(crate) fn required(field: impl Into<String>, detail: &str) -> Cause {
        let message =
            if detail.is_empty() { "Required value".to_string() } else { format!("Required value: {detail}") };
        Cause { reason: "FieldValueRequired", field: field.into(), message }
    }

    /// A field has an invalid value.
    pub(crate) fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {}: {detail}", render_value(value)),
        }
    }

    /// A value is not one of the supported ones.
    pub(crate) fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Cause {
        let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        Cause {
            reason: "FieldValueNotSupported",
            field: field.into(),
            message: format!("Unsupported value: {}: supported values: {}", render_value(value), list.join(", ")),
        }
    }

    /// A value appears twice where it must be unique.
    pub(crate) fn duplicate(field: impl Into<String>, value: &Value) -> Cause {
        Cause {
            reason: "FieldValueDuplicate",
            field: field.into(),
            message: format!("Duplicate value: {}", render_value(value)),
        }
    }

    /// A field may not be changed.
    pub(crate) fn immutable(field: impl Into<String>, value: &Value) -> Cause {
        Cause::invalid(field, value, "field is immutable")
    }

    /// A value is out of bounds or too long.
    pub(crate) fn forbidden(field: impl Into<String>, detail: &str) -> Cause {
        Cause { reason: "FieldValueForbidden", field: field.into(), message: format!("Forbidden: {detail}") }
    }

    /// The message as it appears in the Status message (`field: message`).
    fn render(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// An API error rendered as a Status object.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) code: StatusCode,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) details: Option<Value>,
}

impl ApiError {
    /// An error with no details.
    pub(crate) fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { code, reason, message: message.into(), details: None }
    }

    fn with_details(mut self, name: &str, group: &str, kind: &str) -> ApiError {
        let mut details = json!({"group": group, "kind": kind});
        if !name.is_empty() {
            details["name"] = json!(name);
        }
        self.details = Some(details);
        self
    }

    /// 404: `deployments.apps "x" not found`.
    pub(crate) fn not_found(kind: &Kind, name: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "NotFound", format!("{} \"{name}\" not found", kind.qualified()))
            .with_details(name, kind.group, kind.plural)
    }

    /// 404 for a path that names no resource.
    pub(crate) fn path_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource")
            .with_details("", "", "")
    }

    /// 409: `deployments.apps "x" already exists`.
    pub(crate) fn already_exists(kind: &Kind, name: &str) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "AlreadyExists", format!("{} \"{name}\" already exists", kind.qualified()))
            .with_details(name, kind.group, kind.plural)
    }

    /// 409 Conflict: the object has been modified.
    pub(crate) fn conflict(kind: &Kind, name: &str) -> ApiError {
        ApiError::conflict_because(
            kind,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 Conflict with an explanation.
    pub(crate) fn conflict_because(kind: &Kind, name: &str, why: &str) -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{name}\": {why}", kind.qualified()),
        )
        .with_details(name, kind.group, kind.plural)
    }

    /// 422 Invalid with its causes.
    pub(crate) fn invalid(kind: &Kind, name: &str, causes: Vec<Cause>) -> ApiError {
        let rendered: Vec<String> = causes.iter().map(Cause::render).collect();
        let list = if rendered.len() == 1 { rendered[0].clone() } else { format!("[{}]", rendered.join(", ")) };
        let mut error = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{} \"{name}\" is invalid: {list}", kind.qualified_kind()),
        )
        .with_details(name, kind.group, kind.kind);
        let causes: Vec<Value> =
            causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect();
        if let Some(details) = error.details.as_mut() {
            details["causes"] = Value::Array(causes);
        }
        error
    }

    /// 403 Forbidden with a message naming the resource.
    pub(crate) fn forbidden(kind: &Kind, name: &str, why: &str) -> ApiError {
        let subject = if name.is_empty() { kind.qualified() } else { format!("{} \"{name}\"", kind.qualified()) };
        ApiError::new(StatusCode::FORBIDDEN, "Forbidden", format!("{subject} is forbidden: {why}")).with_details(
            name,
            kind.group,
            kind.plural,
        )
    }

    /// 400 BadRequest.
    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// 405 MethodNotAllowed.
    pub(crate) fn method_not_allowed(method: &http::Method) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    /// 415 UnsupportedMediaType.
    pub(crate) fn unsupported_media_type(content_type: &str, accepted: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format ({content_type}) - accepted media types include: {accepted}"),
        )
    }

    /// 410 Expired: a resourceVersion or continue token too old.
    pub(crate) fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::GONE, "Expired", message)
    }

    /// 503 ServiceUnavailable.
    pub(crate) fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", message)
    }

    /// The Status object.
    pub(crate) fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// A `Status` of success, as DELETE returns it for most resources.
pub(crate) fn success(kind: &Kind, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": kind.group, "kind": kind.plural, "uid": uid},
    })
}
