//! Errors as HTTP responses: the status from [`Error::status`], the message
//! as plain text, and the platform header.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue};

use super::PLATFORM_ERROR_HEADER;
use crate::error::Error;

/// The message of a platform error, attached to its response as an
/// extension, so middleware that logs or traces responses can say why
/// without parsing the body. The API itself logs errors only at `debug`:
/// what to report louder is the embedder's choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage(pub String);

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.message();
        tracing::debug!(status = status.as_u16(), "{message}");
        let mut response = (status, format!("{message}\n")).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        headers.insert(PLATFORM_ERROR_HEADER, HeaderValue::from_static("platform"));
        response.extensions_mut().insert(ErrorMessage(message));
        response
    }
}

/// A handler's result as a response: the value, or the error.
pub(super) fn respond<T: IntoResponse>(result: crate::Result<T>) -> Response {
    match result {
        Ok(ok) => ok.into_response(),
        Err(err) => err.into_response(),
    }
}

/// The answer for paths no route serves.
pub(super) async fn no_route(uri: http::Uri) -> Response {
    Error::NotFound { kind: "route", name: uri.path().to_owned() }.into_response()
}
