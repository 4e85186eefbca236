//! Forwarding a call to a function through the API server's service proxy
//! ([`InvokeMode::ServiceProxy`]); straight to a ready pod
//! ([`InvokeMode::Endpoints`]) goes through `faas_upstream`, the provider
//! choosing the pods.

use std::time::Duration;

use faas_core::{strip_hop_by_hop, Body, Error, FunctionRef, Result};
use http::header::HOST;
use http::{Request, Response};

use crate::config::{InvokeMode, WATCHDOG_PORT};
use crate::error::K8sError;

fn path_and_query(request: &Request<Body>) -> String {
    request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned()
}

/// The service proxy path of `function` for `target` (path and query).
pub(crate) fn proxy_path(function: &FunctionRef, target: &str) -> String {
    let target = if target.starts_with('/') { target.to_owned() } else { format!("/{target}") };
    format!("/api/v1/namespaces/{}/services/{}:{WATCHDOG_PORT}/proxy{target}", function.namespace, function.name)
}

/// Sends `request` through the API server's service proxy with `client`,
/// its body read into memory first (at most `limit` bytes).
pub(crate) async fn through_proxy(
    client: &kube::Client,
    function: &FunctionRef,
    request: Request<Body>,
    limit: u64,
    timeout: Duration,
) -> Result<Response<Body>> {
    let target = path_and_query(&request);
    let (parts, body) = request.into_parts();
    let bytes = body.collect_limited(limit).await?;
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    headers.remove(HOST);
    let mut builder = Request::builder().method(parts.method).uri(proxy_path(function, &target));
    if let Some(map) = builder.headers_mut() {
        *map = headers;
    }
    let outgoing = builder
        .body(kube::client::Body::from(bytes))
        .map_err(|e| Error::invalid("request", format!("cannot forward the call: {e}")))?;
    match tokio::time::timeout(timeout, client.send(outgoing)).await {
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, Body::new(body)))
        }
        Ok(Err(err)) => Err(K8sError::kube("proxy a call", "function", function.to_string(), err).into()),
        Err(_) => Err(Error::Timeout { what: "function call".into(), seconds: timeout.as_secs_f64() }),
    }
}

/// The documented name of `mode`, for logs.
pub(crate) fn mode_name(mode: InvokeMode) -> &'static str {
    match mode {
        InvokeMode::Endpoints => "endpoints",
        InvokeMode::ServiceProxy => "service-proxy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_path_names_the_port() {
        let function = FunctionRef::new("echo", "openfaas-fn");
        assert_eq!(
            proxy_path(&function, "/a/b?x=1"),
            "/api/v1/namespaces/openfaas-fn/services/echo:8080/proxy/a/b?x=1"
        );
        assert_eq!(proxy_path(&function, "/"), "/api/v1/namespaces/openfaas-fn/services/echo:8080/proxy/");
    }
}
