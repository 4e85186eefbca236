//! A function's logs: the logs of its service's tasks, each line tagged
//! with the task id as the instance.

use std::collections::HashMap;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::query_parameters::{ListTasksOptions, LogsOptions};
use bollard::Docker;
use chrono::{DateTime, Utc};
use faas_core::follow::{split_timestamp, InstanceLines};
use faas_core::{LogMessage, LogStream, DEFAULT_NAMESPACE};
use futures_util::StreamExt;

use crate::error::SwarmError;

/// How often a follow stream looks for new tasks (after a scale or an
/// update).
const NEW_TASK_POLL: Duration = Duration::from_secs(2);

/// What to read: the function, its service, the one task asked for (if
/// any) and the engine's log options.
#[derive(Debug, Clone)]
pub(crate) struct LogQuery {
    pub(crate) function: String,
    pub(crate) service_id: String,
    pub(crate) instance: Option<String>,
    pub(crate) since: i32,
    pub(crate) tail: Option<usize>,
}

impl LogQuery {
    fn options(&self, follow: bool, tail: Option<usize>) -> LogsOptions {
        LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            since: self.since,
            until: 0,
            timestamps: true,
            tail: tail.map_or_else(|| "all".to_owned(), |n| n.to_string()),
        }
    }

    fn message(&self, task: &str, raw: &[u8]) -> Vec<LogMessage> {
        parse(raw)
            .into_iter()
            .map(|(timestamp, text)| LogMessage {
                name: self.function.clone(),
                namespace: DEFAULT_NAMESPACE.to_owned(),
                instance: task.to_owned(),
                timestamp,
                text,
            })
            .collect()
    }
}

/// The ids of the service's tasks, the ones meant to run only if
/// `running_only`.
pub(crate) async fn task_ids(docker: &Docker, service_id: &str, running_only: bool) -> Result<Vec<String>, SwarmError> {
    let mut filters = HashMap::from([("service".to_owned(), vec![service_id.to_owned()])]);
    if running_only {
        filters.insert("desired-state".to_owned(), vec!["running".to_owned()]);
    }
    let tasks = docker
        .list_tasks(Some(ListTasksOptions { filters: Some(filters) }))
        .await
        .map_err(|e| SwarmError::docker("list tasks", e))?;
    Ok(tasks.into_iter().filter_map(|t| t.id).collect())
}

/// Every line so far, oldest first, at most `tail` of the latest.
pub(crate) async fn read_all(docker: &Docker, query: &LogQuery) -> Result<Vec<LogMessage>, SwarmError> {
    let tasks = match &query.instance {
        Some(task) => vec![task.clone()],
        None => task_ids(docker, &query.service_id, false).await?,
    };
    let mut messages = Vec::new();
    for task in tasks {
        let mut stream = docker.task_logs(&task, Some(query.options(false, query.tail)));
        while let Some(item) = stream.next().await {
            match item {
                Ok(output) => messages.extend(query.message(&task, bytes_of(&output))),
                // A task whose container is gone has no logs left: skip it,
                // unless it is the one instance asked for.
                Err(e) if query.instance.is_some() => {
                    return Err(SwarmError::docker(format!("read logs of task {task}"), e))
                }
                Err(e) => {
                    tracing::debug!(task = %task, error = %e, "skipping the logs of a task");
                    break;
                }
            }
        }
    }
    messages.sort_by_key(|m| m.timestamp);
    if let Some(tail) = query.tail {
        let skip = messages.len().saturating_sub(tail);
        messages.drain(..skip);
    }
    Ok(messages)
}

/// A stream of the lines written from now on (after the last `tail` lines
/// of each running task), by every task of the service, including tasks
/// started after the stream opened (looked for every [`NEW_TASK_POLL`]).
/// Ends when dropped.
pub(crate) fn follow(docker: Docker, query: LogQuery) -> LogStream {
    let (lister, list_query) = (docker.clone(), query.clone());
    let discovered = futures_util::stream::unfold(Some(true), move |round| {
        let (docker, query) = (lister.clone(), list_query.clone());
        async move {
            let first = round?;
            if !first {
                tokio::time::sleep(NEW_TASK_POLL).await;
            }
            let found = match &query.instance {
                Some(task) => Ok(vec![task.clone()]),
                None => task_ids(&docker, &query.service_id, true).await.map_err(faas_core::Error::from),
            };
            let next = (query.instance.is_none() && found.is_ok()).then_some(false);
            Some((found, next))
        }
    });
    faas_core::follow::follow_instances(discovered, move |task, initial| {
        let tail = if initial { query.tail } else { None };
        futures_util::future::ready(Some(task_lines(&docker, query.clone(), task, tail)))
    })
}

/// One task's followed lines; they end with its log stream (or its first
/// error, logged).
fn task_lines(docker: &Docker, query: LogQuery, task: String, tail: Option<usize>) -> InstanceLines {
    let outputs = docker.task_logs(&task, Some(query.options(true, tail)));
    let batches = outputs.scan((query, task), |(query, task), item| {
        futures_util::future::ready(match item {
            Ok(output) => Some(futures_util::stream::iter(query.message(task, bytes_of(&output)))),
            Err(e) => {
                tracing::debug!(task = %task, error = %e, "a task's log stream ended with an error");
                None
            }
        })
    });
    Box::pin(batches.flatten())
}

fn bytes_of(output: &LogOutput) -> &[u8] {
    output.as_ref()
}

/// Splits engine output (`<RFC 3339 time> <text>` a line) into messages.
/// Lines without a readable time get the current one.
fn parse(raw: &[u8]) -> Vec<(DateTime<Utc>, String)> {
    let text = String::from_utf8_lossy(raw);
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (time, text) = split_timestamp(line).unwrap_or_else(|| (Utc::now(), line));
            (time, text.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_from_their_timestamps() {
        let parsed = parse(b"2026-11-23T16:01:40.962663896Z hello world\n2026-11-23T16:01:41Z second\n");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].1, "hello world");
        assert_eq!(parsed[0].0.timestamp_subsec_nanos(), 962_663_896);
        assert_eq!(parsed[1].1, "second");
        let odd = parse(b"no timestamp here");
        assert_eq!(odd[0].1, "no timestamp here");
    }
}
