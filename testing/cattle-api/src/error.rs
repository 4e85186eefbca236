//! Error objects, as rancher/api-spec defines them: a resource of type
//! `error` with the HTTP `status`, a short `code` and a `message`.

use http::StatusCode;
use serde_json::{json, Value};

/// An API error: rendered as an `error` resource with its status.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) field: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None }
    }

    /// 401: no or wrong API keys.
    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized: a valid access key and secret key are required",
        )
    }

    /// 404 for a path or resource that does not exist.
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", format!("{} not found", what.into()))
    }

    /// 405 for a method the schema does not allow here.
    pub(crate) fn method_not_allowed(method: &http::Method, what: &str) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", format!("{method} is not allowed on {what}"))
    }

    /// 422 for a field that breaks a rule, naming the field.
    pub(crate) fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message: message.into(),
            field: Some(field.to_owned()),
        }
    }

    /// 422 `InvalidState`: the action is not available in the resource's
    /// current state.
    pub(crate) fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "InvalidState", message)
    }

    /// 400 for a body that is not a JSON object.
    pub(crate) fn bad_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidBodyContent", message)
    }

    /// The error resource.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "id": format!("{}", self.status.as_u16()),
            "type": "error",
            "baseType": "error",
            "links": {},
            "actions": {},
            "status": self.status.as_u16(),
            "code": self.code,
            "message": self.message,
            "detail": Value::Null,
            "fieldName": self.field,
        })
    }
}
