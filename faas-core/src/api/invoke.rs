//! Invocation: any method on `/function/{name}[.{namespace}][/path]`.

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::uri::PathAndQuery;
use http::{HeaderValue, Uri};

use super::{State, CALL_ID_HEADER, DURATION_HEADER, START_TIME_HEADER};
use crate::body::{check_declared_length, Body};
use crate::error::{Error, Result};
use crate::types::FunctionRef;

/// The most characters of an impossible name echoed in the 404's body.
const NAME_ECHO_MAX: usize = 300;

/// Splits `{prefix}{name}[.{ns}][/rest]` (with `prefix` such as
/// `/function/`) into the function and the URI the function sees (`/rest`
/// or `/`, with the query); a missing namespace is `default_namespace`
/// (the provider's).
///
/// A name that cannot exist (empty, invalid, too long, or with such a
/// namespace) is [`Error::NotFound`], as OpenFaaS answers it: for a caller
/// there is no such function, and a 400 would read as a gateway fault.
pub fn function_target(prefix: &str, uri: &Uri, default_namespace: &str) -> Result<(FunctionRef, Uri)> {
    let rest = uri.path().strip_prefix(prefix).unwrap_or_default();
    let (qualified, below) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let function = FunctionRef::parse_in(qualified, default_namespace)
        .map_err(|_| Error::NotFound { kind: "function", name: qualified.chars().take(NAME_ECHO_MAX).collect() })?;
    let path_and_query = match uri.query() {
        Some(query) => PathAndQuery::try_from(format!("{below}?{query}")),
        // The common call to a function's root costs no allocation.
        None if below == "/" => Ok(PathAndQuery::from_static("/")),
        None => PathAndQuery::try_from(below),
    };
    let inner =
        path_and_query.map(Uri::from).map_err(|e| Error::invalid("path", format!("cannot forward {uri}: {e}")))?;
    Ok((function, inner))
}

/// Calls the function, streaming both bodies, and stamps the call's
/// headers on the request and the response.
pub(super) async fn invoke(state: State, request: Request) -> Response {
    let started = Instant::now();
    let start_nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let (mut parts, body) = request.into_parts();
    let call_id = match parts.headers.get(CALL_ID_HEADER) {
        Some(id) => id.clone(),
        None => {
            let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
            let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
            HeaderValue::from_str(id).expect("a UUID is a valid header value")
        }
    };
    let start_time = HeaderValue::from(start_nanos as u64);

    let limit = state.config.max_invoke_body_bytes;
    let target = function_target("/function/", &parts.uri, state.provider.default_namespace())
        .and_then(|target| check_declared_length(&parts.headers, limit).map(|()| target));
    let result = match target {
        Ok((function, uri)) => {
            parts.uri = uri;
            parts.headers.insert(CALL_ID_HEADER, call_id.clone());
            parts.headers.insert(START_TIME_HEADER, start_time.clone());
            let (body, exceeded) = Body::new(body).limited(limit);
            let request = http::Request::from_parts(parts, body);
            let result = state.provider.invoke(&function, request).await;
            // Whatever the function or the provider made of a cut body, the
            // caller learns that it was cut.
            if exceeded.get() {
                Err(Error::PayloadTooLarge { limit })
            } else {
                result
            }
        }
        Err(err) => Err(err),
    };

    let mut response = match result {
        Ok(response) => response.map(axum::body::Body::new),
        Err(err) => err.into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(CALL_ID_HEADER, call_id);
    headers.insert(START_TIME_HEADER, start_time);
    headers.insert(DURATION_HEADER, seconds_header(started.elapsed().as_secs_f64()));
    response
}

/// `seconds` with six decimals as a header value, formatted on the stack.
fn seconds_header(seconds: f64) -> HeaderValue {
    let mut text = [0u8; 32];
    let mut cursor = &mut text[..];
    // 32 bytes hold any duration a call can take ("{:.6}" of 10^15 s
    // is 23 bytes); a longer one would only be cut.
    let _ = write!(cursor, "{seconds:.6}");
    let len = 32 - cursor.len();
    HeaderValue::from_bytes(&text[..len]).expect("a decimal is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_name_namespace_path_and_query() {
        let (f, uri) = function_target("/function/", &"/function/echo".parse().unwrap(), "openfaas-fn").unwrap();
        assert_eq!((f.name.as_str(), f.namespace.as_str(), uri.to_string().as_str()), ("echo", "openfaas-fn", "/"));
        let (f, uri) =
            function_target("/function/", &"/function/echo.team-a/a/b?x=1&y=2".parse().unwrap(), "openfaas-fn")
                .unwrap();
        assert_eq!((f.name.as_str(), f.namespace.as_str()), ("echo", "team-a"));
        assert_eq!(uri.to_string(), "/a/b?x=1&y=2");
        let (_, uri) = function_target("/function/", &"/function/echo/?q".parse().unwrap(), "openfaas-fn").unwrap();
        assert_eq!(uri.to_string(), "/?q");
        let (f, _) = function_target("/function/", &"/function/echo".parse().unwrap(), "fns").unwrap();
        assert_eq!(f.namespace, "fns", "a bare name is in the provider's default namespace");
        let (f, _) = function_target("/function/", &"/function/echo.team-a".parse().unwrap(), "fns").unwrap();
        assert_eq!(f.namespace, "team-a");
        for impossible in ["/function/Echo", "/function/echo.", "/function/.openfaas-fn", "/function/a_b/x"] {
            assert!(
                matches!(
                    function_target("/function/", &impossible.parse().unwrap(), "openfaas-fn"),
                    Err(Error::NotFound { .. })
                ),
                "{impossible}"
            );
        }
        let long = format!("/function/{}", "a".repeat(5000));
        let Err(Error::NotFound { name, .. }) = function_target("/function/", &long.parse().unwrap(), "openfaas-fn")
        else {
            panic!("a 5000-character name is not found")
        };
        assert_eq!(name.len(), NAME_ECHO_MAX);
    }
}
