//! `pods/log` and `services/proxy`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde_json::Value;

use crate::api::{error_response, Query, Target};
use crate::kinds;
use crate::status::ApiError;
use crate::store::{self, str_at};
use crate::{Body, BoxError, Shared};

/// Serves `GET .../pods/<name>/log` (follow, tailLines, sinceSeconds,
/// sinceTime, timestamps, limitBytes, container).
pub(crate) fn logs(shared: &Arc<Shared>, target: &Target, query: &Query) -> Result<Response<Body>, ApiError> {
    let pods = kinds::by_plural("pods");
    let ns = target.namespace.as_deref().unwrap_or_default();
    let name = target.name.as_deref().unwrap_or_default();
    let pod = shared.store().get(pods, ns, name).ok_or_else(|| ApiError::not_found(pods, name))?;
    let first = pod["spec"]["containers"][0]["name"].as_str().unwrap_or_default().to_string();
    if let Some(c) = query.get("container").filter(|c| !c.is_empty()) {
        let known = pod["spec"]["containers"].as_array().into_iter().flatten().any(|x| x["name"] == c.as_str());
        if !known {
            return Err(ApiError::bad_request(format!("container {c} is not valid for pod {name}")));
        }
        if *c != first {
            return Err(ApiError::bad_request(format!(
                "container \"{c}\" in pod \"{name}\" is waiting to start: only the first container of a pod runs in k8s-test-server"
            )));
        }
    }
    let Some(logs) = shared.pods.logs(store::uid_of(&pod)) else {
        return Err(ApiError::bad_request(format!(
            "container \"{first}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        )));
    };
    let truthy = |k: &str| query.get(k).is_some_and(|v| v == "true" || v == "1");
    let follow = truthy("follow");
    let timestamps = truthy("timestamps");
    let tail: Option<usize> = query.get("tailLines").and_then(|t| t.parse::<i64>().ok()).map(|t| t.max(0) as usize);
    let since = if let Some(s) = query.get("sinceSeconds").and_then(|s| s.parse::<i64>().ok()) {
        if s <= 0 {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "PodLogOptions \"\" is invalid: sinceSeconds: Invalid value: must be greater than 0",
            ));
        }
        Some(chrono::Utc::now() - chrono::Duration::seconds(s))
    } else {
        query
            .get("sinceTime")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let limit_bytes: Option<usize> = query.get("limitBytes").and_then(|l| l.parse().ok());
    let render = move |ts: &chrono::DateTime<chrono::Utc>, line: &str| -> Bytes {
        if timestamps {
            Bytes::from(format!("{} {line}\n", ts.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)))
        } else {
            Bytes::from(format!("{line}\n"))
        }
    };
    let (lines, next, _) = logs.read(0);
    let mut selected: Vec<_> = lines.into_iter().filter(|(ts, _)| since.is_none_or(|s| *ts >= s)).collect();
    if let Some(tail) = tail {
        let skip = selected.len().saturating_sub(tail);
        selected.drain(..skip);
    }
    let initial: Vec<Bytes> = selected.iter().map(|(ts, l)| render(ts, l)).collect();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let mut notify = logs.notify.subscribe();
    tokio::spawn(async move {
        let mut sent = 0usize;
        let mut send = |bytes: Bytes| -> Option<Bytes> {
            let bytes = match limit_bytes {
                Some(limit) if sent >= limit => return None,
                Some(limit) if sent + bytes.len() > limit => bytes.slice(..limit - sent),
                _ => bytes,
            };
            sent += bytes.len();
            Some(bytes)
        };
        for chunk in initial {
            let Some(chunk) = send(chunk) else { return };
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
        if !follow {
            return;
        }
        let mut next = next;
        loop {
            let (lines, new_next, running) = logs.read(next);
            notify.mark_unchanged();
            next = new_next;
            for (ts, line) in lines {
                let Some(chunk) = send(render(&ts, &line)) else { return };
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
            if !running {
                return;
            }
            tokio::select! {
                changed = notify.changed() => if changed.is_err() { return },
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|bytes| (Ok::<_, BoxError>(hyper::body::Frame::data(bytes)), rx))
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(http_body_util::StreamBody::new(stream).boxed_unsync())
        .expect("valid response"))
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Picks a ready endpoint (ip, port) for a service and port selector.
fn endpoint(shared: &Shared, ns: &str, spec: &str) -> Result<(String, u16), ApiError> {
    let services = kinds::by_plural("services");
    // <name>, <name>:<port>, <scheme>:<name>:<port>
    let parts: Vec<&str> = spec.split(':').collect();
    let (name, port_sel) = match parts.as_slice() {
        [name] => (*name, ""),
        [name, port] => (*name, *port),
        [_scheme, name, port] => (*name, *port),
        _ => return Err(ApiError::bad_request(format!("invalid service request {spec:?}"))),
    };
    let store = shared.store();
    let service = store.get(services, ns, name).ok_or_else(|| ApiError::not_found(services, name))?;
    let ports: Vec<Value> = service["spec"]["ports"].as_array().cloned().unwrap_or_default();
    let port = if port_sel.is_empty() {
        ports.first()
    } else {
        ports
            .iter()
            .find(|p| p["name"] == port_sel || p["port"].as_u64().map(|n| n.to_string()).as_deref() == Some(port_sel))
    };
    let Some(port) = port else {
        return Err(ApiError::unavailable(format!("no endpoints available for service \"{spec}\"")));
    };
    let port_name = port["name"].as_str().unwrap_or("");
    let mut candidates = Vec::new();
    for slice in store.list_prefix(kinds::by_plural("endpointslices"), ns, &format!("{name}-")) {
        if str_at(&slice, &["metadata", "labels", "kubernetes.io/service-name"]) != name {
            continue;
        }
        let Some(target_port) = slice["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str().unwrap_or("") == port_name)
            .and_then(|p| p["port"].as_u64())
        else {
            continue;
        };
        for ep in slice["endpoints"].as_array().into_iter().flatten() {
            if ep["conditions"]["ready"] == true {
                if let Some(ip) = ep["addresses"][0].as_str() {
                    candidates.push((ip.to_string(), target_port as u16));
                }
            }
        }
    }
    if candidates.is_empty() {
        return Err(ApiError::unavailable(format!("no endpoints available for service \"{spec}\"")));
    }
    Ok(candidates[NEXT.fetch_add(1, Ordering::Relaxed) % candidates.len()].clone())
}

const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host"];

/// Forwards a `services/<name>[:<port>]/proxy/<path>` request to a ready
/// endpoint, bodies streamed both ways.
pub(crate) async fn serve(shared: Arc<Shared>, target: Target, request: Request<Incoming>) -> Response<Body> {
    let ns = target.namespace.as_deref().unwrap_or_default();
    let spec = target.name.as_deref().unwrap_or_default();
    // A connection refused by an endpoint that is just stopping is retried
    // on another ready endpoint (nothing was sent yet).
    let mut attempt = 0;
    let (ip, port, stream) = loop {
        let (ip, port) = match endpoint(&shared, ns, spec) {
            Ok(ep) => ep,
            Err(e) => return error_response(&e),
        };
        match tokio::net::TcpStream::connect((ip.as_str(), port)).await {
            Ok(stream) => break (ip, port, stream),
            Err(e) if attempt >= 2 => {
                return error_response(&ApiError::unavailable(format!("error trying to reach service: {e}")))
            }
            Err(_) => attempt += 1,
        }
    };
    let path = if target.rest.is_empty() { "/".to_string() } else { target.rest.clone() };
    let path_and_query = match request.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let (parts, body) = request.into_parts();
    let mut builder = Request::builder().method(parts.method.clone()).uri(path_and_query);
    for (k, v) in &parts.headers {
        if !HOP_BY_HOP.contains(&k.as_str()) {
            builder = builder.header(k, v);
        }
    }
    builder = builder.header(header::HOST, format!("{ip}:{port}"));
    let Ok(outgoing) = builder.body(body) else {
        return error_response(&ApiError::bad_request("invalid proxy request"));
    };
    let unavailable = |e: String| error_response(&ApiError::unavailable(format!("error trying to reach service: {e}")));
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(e) => return unavailable(e.to_string()),
        };
    tokio::spawn(connection);
    match sender.send_request(outgoing).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            for h in HOP_BY_HOP {
                parts.headers.remove(*h);
            }
            Response::from_parts(parts, body.map_err(|e| Box::new(e) as BoxError).boxed_unsync())
        }
        Err(e) => unavailable(e.to_string()),
    }
}
