//! Optional HTTP Basic authentication for `/system/*`.

use std::fmt;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{header, HeaderValue, StatusCode};
use subtle::ConstantTimeEq;

use super::PLATFORM_ERROR_HEADER;

/// The user and password `/system/*` requires. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth").field("user", &self.user).field("password", &"<redacted>").finish()
    }
}

impl BasicAuth {
    /// Whether an `Authorization` header value carries these credentials.
    /// User and password are both compared in constant time, whatever the
    /// first comparison gave.
    fn accepts(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(encoded) = authorization.and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic ")) else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Some(colon) = decoded.iter().position(|b| *b == b':') else {
            return false;
        };
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let user_ok = user.ct_eq(self.user.as_bytes());
        let password_ok = password.ct_eq(self.password.as_bytes());
        bool::from(user_ok & password_ok)
    }
}

/// Middleware: lets the request through only with the right credentials,
/// else answers 401 with `WWW-Authenticate`. [`super::router`] puts it on
/// `/system/*` when [`super::ApiConfig::basic_auth`] is set; other routers
/// (extra system routes of an embedder) use it the same way:
/// `axum::middleware::from_fn_with_state(Arc::new(credentials), require_basic_auth)`.
pub async fn require_basic_auth(State(credentials): State<Arc<BasicAuth>>, request: Request, next: Next) -> Response {
    if credentials.accepts(request.headers().get(header::AUTHORIZATION)) {
        return next.run(request).await;
    }
    let mut response =
        (StatusCode::UNAUTHORIZED, "unauthorized: this route needs HTTP Basic credentials\n").into_response();
    let headers = response.headers_mut();
    headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"faas\", charset=\"UTF-8\""));
    headers.insert(PLATFORM_ERROR_HEADER, HeaderValue::from_static("platform"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user_pass: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_pass);
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    #[test]
    fn accepts_only_the_exact_credentials() {
        let auth = BasicAuth { user: "admin".into(), password: "s3:cret".into() };
        assert!(auth.accepts(Some(&header("admin:s3:cret"))));
        assert!(!auth.accepts(Some(&header("admin:s3:creT"))));
        assert!(!auth.accepts(Some(&header("admin:"))));
        assert!(!auth.accepts(Some(&header("admin"))));
        assert!(!auth.accepts(Some(&header("Admin:s3:cret"))));
        assert!(!auth.accepts(Some(&HeaderValue::from_static("Bearer abc"))));
        assert!(!auth.accepts(Some(&HeaderValue::from_static("Basic !!!"))));
        assert!(!auth.accepts(None));
        assert!(!format!("{auth:?}").contains("s3:cret"));
    }
}
