//! A function's logs: the logs of its pods (`pods/log` with timestamps),
//! each line tagged with the pod name as the instance, several pods'
//! streams merged.

use std::time::Duration;

use chrono::{DateTime, Utc};
use faas_core::follow::{split_timestamp, InstanceLines};
use faas_core::{LogMessage, LogStream, Result};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};

use crate::error::{api, K8sError};
use crate::spec::{CONTAINER, FUNCTION_LABEL};

/// How often a follow stream looks for new pods (after a scale or an
/// update).
const NEW_POD_POLL: Duration = Duration::from_secs(2);

/// What to read.
#[derive(Debug, Clone)]
pub(crate) struct LogQuery {
    pub(crate) function: String,
    pub(crate) namespace: String,
    pub(crate) instance: Option<String>,
    pub(crate) since: Option<DateTime<Utc>>,
    pub(crate) tail: Option<i64>,
    pub(crate) limit: Duration,
}

impl LogQuery {
    fn params(&self, follow: bool, tail: Option<i64>) -> LogParams {
        LogParams {
            container: Some(CONTAINER.to_owned()),
            follow,
            timestamps: true,
            tail_lines: tail,
            since_seconds: self.since.map(|since| (Utc::now() - since).num_seconds().max(0) + 1),
            ..LogParams::default()
        }
    }

    fn message(&self, pod: &str, line: &str) -> Option<LogMessage> {
        let (timestamp, text) = parse(line)?;
        if self.since.is_some_and(|since| timestamp < since) {
            return None;
        }
        Some(LogMessage {
            name: self.function.clone(),
            namespace: self.namespace.clone(),
            instance: pod.to_owned(),
            timestamp,
            text,
        })
    }
}

/// The names of the function's pods (only `instance` if asked), the
/// running ones only if `running_only`.
async fn pods(client: &Client, query: &LogQuery, running_only: bool) -> Result<Vec<String>, K8sError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &query.namespace);
    let params = ListParams::default().labels(&format!("{FUNCTION_LABEL}={}", query.function));
    let list = api(query.limit, "list the function's pods", "function", &query.function, pods.list(&params)).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| !running_only || p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .filter_map(|p| p.metadata.name)
        .filter(|name| query.instance.as_ref().is_none_or(|i| i == name))
        .collect())
}

/// Opens the log of `pod`: its body, streaming.
async fn open(
    client: &Client,
    query: &LogQuery,
    pod: &str,
    params: &LogParams,
) -> Result<kube::client::Body, K8sError> {
    let action = format!("read the logs of pod {pod}");
    let request = kube::core::Request::new(format!("/api/v1/namespaces/{}/pods", query.namespace))
        .logs(pod, params)
        .map_err(|e| K8sError::Client { action: action.clone(), source: kube::Error::BuildRequest(e) })?;
    let response = api(query.limit, &action, "pod", pod, client.send(request.map(kube::client::Body::from))).await?;
    let status = response.status();
    let body = response.into_body();
    if status.is_success() {
        return Ok(body);
    }
    let bytes = body.collect_bytes().await.unwrap_or_default();
    let mut parsed = serde_json::from_slice::<kube::core::Status>(&bytes)
        .unwrap_or_else(|_| kube::core::Status::failure(&String::from_utf8_lossy(&bytes), ""));
    parsed.code = status.as_u16();
    Err(K8sError::kube(action, "pod", pod, kube::Error::Api(Box::new(parsed))))
}

/// Splits complete lines off `buffer`.
fn lines(buffer: &mut Vec<u8>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = buffer.drain(..=end).collect();
        let text = String::from_utf8_lossy(&line[..line.len() - 1]);
        out.push(text.strip_suffix('\r').unwrap_or(&text).to_owned());
    }
    out
}

/// Every line so far, oldest first, at most `tail` of the latest.
pub(crate) async fn read_all(client: &Client, query: &LogQuery) -> Result<Vec<LogMessage>> {
    let mut messages = Vec::new();
    for pod in pods(client, query, false).await? {
        let mut body = match open(client, query, &pod, &query.params(false, query.tail)).await {
            Ok(body) => body,
            // A pod that is gone or not started has no logs: skip it,
            // unless it is the one instance asked for.
            Err(err) if query.instance.is_none() => {
                tracing::debug!(pod = %pod, error = %err, "skipping the logs of a pod");
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        let mut buffer = Vec::new();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Ok(data) = frame.into_data() {
                buffer.extend_from_slice(&data);
                messages.extend(lines(&mut buffer).iter().filter_map(|l| query.message(&pod, l)));
            }
        }
        buffer.push(b'\n');
        messages.extend(lines(&mut buffer).iter().filter_map(|l| query.message(&pod, l)));
    }
    messages.sort_by_key(|m| m.timestamp);
    if let Some(tail) = query.tail.and_then(|t| usize::try_from(t).ok()) {
        let skip = messages.len().saturating_sub(tail);
        messages.drain(..skip);
    }
    Ok(messages)
}

/// A stream of every pod's lines (after the last `tail` lines of each), of
/// pods started later too (looked for every [`NEW_POD_POLL`]). Ends when
/// dropped.
pub(crate) fn follow(client: Client, query: LogQuery) -> LogStream {
    let once = query.instance.is_some();
    let (lister, list_query) = (client.clone(), query.clone());
    let discovered = futures_util::stream::unfold(Some(true), move |round| {
        let (client, query) = (lister.clone(), list_query.clone());
        async move {
            let first = round?;
            if !first {
                tokio::time::sleep(NEW_POD_POLL).await;
            }
            let found = pods(&client, &query, true).await.map_err(faas_core::Error::from);
            let next = (!once && found.is_ok()).then_some(false);
            Some((found, next))
        }
    });
    faas_core::follow::follow_instances(discovered, move |pod, initial| {
        let tail = if initial { query.tail } else { None };
        pod_lines(client.clone(), query.clone(), pod, tail)
    })
}

/// One pod's followed lines, or `None` when its log cannot be opened (the
/// pod is gone or not started).
async fn pod_lines(client: Client, query: LogQuery, pod: String, tail: Option<i64>) -> Option<InstanceLines> {
    let body = match open(&client, &query, &pod, &query.params(true, tail)).await {
        Ok(body) => body,
        Err(err) => {
            tracing::debug!(pod = %pod, error = %err, "cannot follow the logs of a pod");
            return None;
        }
    };
    let batches =
        futures_util::stream::unfold((body, Vec::new(), query, pod), |(mut body, mut buffer, query, pod)| async {
            loop {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        let Ok(data) = frame.into_data() else { continue };
                        buffer.extend_from_slice(&data);
                        let messages: Vec<_> =
                            lines(&mut buffer).iter().filter_map(|l| query.message(&pod, l)).collect();
                        if !messages.is_empty() {
                            return Some((futures_util::stream::iter(messages), (body, buffer, query, pod)));
                        }
                    }
                    Some(Err(err)) => {
                        tracing::debug!(pod = %pod, error = %err, "a pod's log stream ended with an error");
                        return None;
                    }
                    None => return None,
                }
            }
        });
    Some(Box::pin(batches.flatten()))
}

/// Splits `<RFC 3339 time> <text>` into its parts; a line without a
/// readable time gets the current one. Empty lines are dropped.
fn parse(line: &str) -> Option<(DateTime<Utc>, String)> {
    if line.is_empty() {
        return None;
    }
    let (time, text) = split_timestamp(line).unwrap_or_else(|| (Utc::now(), line));
    Some((time, text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_from_their_timestamps() {
        let mut buffer = b"2026-11-23T16:01:40.962663896Z hello world\r\n2026-11-23T16:01:41Z second\npartial".to_vec();
        let split = lines(&mut buffer);
        assert_eq!(split.len(), 2);
        assert_eq!(buffer, b"partial");
        let (time, text) = parse(&split[0]).unwrap();
        assert_eq!(text, "hello world");
        assert_eq!(time.timestamp_subsec_nanos(), 962_663_896);
        assert_eq!(parse("no timestamp here").unwrap().1, "no timestamp here");
        assert!(parse("").is_none());
    }

    #[test]
    fn since_filters_and_is_sent_as_seconds() {
        let query = LogQuery {
            function: "f".into(),
            namespace: "fns".into(),
            instance: None,
            since: Some(Utc::now() - chrono::Duration::seconds(30)),
            tail: Some(5),
            limit: Duration::from_secs(1),
        };
        let params = query.params(true, query.tail);
        assert!(params.follow && params.timestamps);
        assert_eq!(params.tail_lines, Some(5));
        assert!((30..=32).contains(&params.since_seconds.unwrap()), "{:?}", params.since_seconds);
        assert!(query.message("pod-1", "2020-01-01T00:00:00Z old").is_none());
        let message = query.message("pod-1", &format!("{} new", Utc::now().to_rfc3339())).unwrap();
        assert_eq!((message.instance.as_str(), message.text.as_str()), ("pod-1", "new"));
    }
}
