//! Invocation: any method on `/function/{name}[.{namespace}][/path]`.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Uri};

use super::{State, CALL_ID_HEADER, DURATION_HEADER, START_TIME_HEADER};
use crate::body::{check_declared_length, Body};
use crate::error::{Error, Result};
use crate::types::FunctionRef;

/// Splits `{prefix}{name}[.{ns}][/rest]` (with `prefix` such as
/// `/function/`) into the function and the URI the function sees (`/rest`
/// or `/`, with the query); name and namespace are validated.
pub fn function_target(prefix: &str, uri: &Uri) -> Result<(FunctionRef, Uri)> {
    let rest = uri.path().strip_prefix(prefix).unwrap_or_default();
    let (qualified, below) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let function = FunctionRef::parse(qualified)?;
    let path_and_query = match uri.query() {
        Some(query) => format!("{below}?{query}"),
        None => below.to_owned(),
    };
    let inner = Uri::builder()
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| Error::invalid("path", format!("cannot forward {uri}: {e}")))?;
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
        None => HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("a UUID is a valid header value"),
    };
    let start_time = HeaderValue::from(start_nanos as u64);

    let limit = state.config.max_invoke_body_bytes;
    let target = function_target("/function/", &parts.uri)
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
    let seconds = format!("{:.6}", started.elapsed().as_secs_f64());
    headers.insert(DURATION_HEADER, HeaderValue::from_str(&seconds).expect("a decimal is a valid header value"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_name_namespace_path_and_query() {
        let (f, uri) = function_target("/function/", &"/function/echo".parse().unwrap()).unwrap();
        assert_eq!((f.name.as_str(), f.namespace.as_str(), uri.to_string().as_str()), ("echo", "openfaas-fn", "/"));
        let (f, uri) = function_target("/function/", &"/function/echo.team-a/a/b?x=1&y=2".parse().unwrap()).unwrap();
        assert_eq!((f.name.as_str(), f.namespace.as_str()), ("echo", "team-a"));
        assert_eq!(uri.to_string(), "/a/b?x=1&y=2");
        let (_, uri) = function_target("/function/", &"/function/echo/?q".parse().unwrap()).unwrap();
        assert_eq!(uri.to_string(), "/?q");
        assert!(matches!(
            function_target("/function/", &"/function/Echo".parse().unwrap()),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            function_target("/function/", &"/function/echo.".parse().unwrap()),
            Err(Error::Invalid { .. })
        ));
    }
}
