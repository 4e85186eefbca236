//! Following a function's logs across its instances (tasks, pods,
//! containers): the part every orchestrator provider shares. Instances come
//! and go while a client follows (a scale, a rolling update), so the
//! provider rediscovers them and each new one is opened and merged into the
//! one [`LogStream`] the API serves.
//!
//! The helper is runtime-free: the provider paces rediscovery itself (a
//! timer between listings) and opens each instance's stream with its own
//! client.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};
use futures_core::Stream;
use futures_util::stream::{FuturesUnordered, SelectAll};
use futures_util::StreamExt;

use crate::provider::LogStream;
use crate::{LogMessage, Result};

/// One instance's followed lines. It ends when the instance's log stream
/// ends; a provider logs and ends it on a transport error rather than
/// failing the whole follow.
pub type InstanceLines = Pin<Box<dyn Stream<Item = LogMessage> + Send>>;

/// Merges the followed logs of every instance `discovered` reports.
///
/// `discovered` yields the current instance names, once per rediscovery
/// (the provider sleeps between listings); a name seen for the first time
/// is opened with `open(name, initial)`, where `initial` is true for the
/// instances of the first listing (which usually get the request's `tail`)
/// and false for those found later (read from their beginning). `open`
/// giving `None` skips that instance (it is gone already).
///
/// The stream yields lines as they arrive from any instance. An error from
/// `discovered` is yielded once and stops rediscovery; the instances
/// already open go on. It ends when `discovered` has ended and every
/// instance's lines have ended; dropping it stops everything.
pub fn follow_instances<D, O, F>(discovered: D, open: O) -> LogStream
where
    D: Stream<Item = Result<Vec<String>>> + Send + 'static,
    O: FnMut(String, bool) -> F + Send + Unpin + 'static,
    F: Future<Output = Option<InstanceLines>> + Send + 'static,
{
    Box::pin(Follow {
        discovered: Some(Box::pin(discovered)),
        open,
        initial: true,
        seen: HashSet::new(),
        opening: FuturesUnordered::new(),
        lines: SelectAll::new(),
    })
}

struct Follow<D, O, F> {
    /// `None` once rediscovery has ended or failed.
    discovered: Option<Pin<Box<D>>>,
    open: O,
    initial: bool,
    seen: HashSet<String>,
    opening: FuturesUnordered<Pin<Box<F>>>,
    lines: SelectAll<InstanceLines>,
}

impl<D, O, F> Stream for Follow<D, O, F>
where
    D: Stream<Item = Result<Vec<String>>>,
    O: FnMut(String, bool) -> F + Unpin,
    F: Future<Output = Option<InstanceLines>>,
{
    type Item = Result<LogMessage>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        while let Some(discovered) = this.discovered.as_mut() {
            match discovered.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(names))) => {
                    for name in names {
                        if this.seen.insert(name.clone()) {
                            this.opening.push(Box::pin((this.open)(name, this.initial)));
                        }
                    }
                    this.initial = false;
                }
                Poll::Ready(Some(Err(err))) => {
                    this.discovered = None;
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(None) => this.discovered = None,
                Poll::Pending => break,
            }
        }
        while let Poll::Ready(Some(opened)) = this.opening.poll_next_unpin(cx) {
            if let Some(lines) = opened {
                this.lines.push(lines);
            }
        }
        match this.lines.poll_next_unpin(cx) {
            Poll::Ready(Some(message)) => Poll::Ready(Some(Ok(message))),
            _ if this.discovered.is_none() && this.opening.is_empty() && this.lines.is_empty() => Poll::Ready(None),
            _ => Poll::Pending,
        }
    }
}

/// Splits one line of an orchestrator's timestamped log output
/// (`<RFC 3339 time> <text>`, as Docker and Kubernetes write it with
/// timestamps on) into its time, in UTC, and its text. A line that is only
/// a time has empty text. `None` when the line does not start with a
/// readable time: the whole line is then text, and the provider gives it
/// the time it read it.
///
/// ```
/// use faas_core::follow::split_timestamp;
///
/// let (time, text) = split_timestamp("2026-11-23T16:01:40.5+01:00 hello world").unwrap();
/// assert_eq!((time.to_rfc3339(), text), ("2026-11-23T15:01:40.500+00:00".to_owned(), "hello world"));
/// assert_eq!(split_timestamp("no time here"), None);
/// ```
pub fn split_timestamp(line: &str) -> Option<(DateTime<Utc>, &str)> {
    let (time, text) = line.split_once(' ').unwrap_or((line, ""));
    let time = DateTime::parse_from_rfc3339(time).ok()?;
    Some((time.with_timezone(&Utc), text))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use chrono::Utc;
    use futures_util::stream;

    use super::*;
    use crate::Error;

    #[test]
    fn timestamps_are_split_off_lines() {
        let (time, text) = split_timestamp("2026-11-23T16:01:40.962663896Z hello  world ").unwrap();
        assert_eq!((time.timestamp_subsec_nanos(), text), (962_663_896, "hello  world "));
        let (time, text) = split_timestamp("2026-11-23T16:01:41Z").unwrap();
        assert_eq!((time.timestamp(), text), (1_795_449_701, ""));
        for untimed in ["", " ", "hello world", "2026-11-23 16:01:41Z text", "16:01:41 text"] {
            assert_eq!(split_timestamp(untimed), None, "{untimed:?}");
        }
    }

    fn line(instance: &str, text: &str) -> LogMessage {
        LogMessage {
            name: "f".into(),
            namespace: "ns".into(),
            instance: instance.into(),
            timestamp: Utc::now(),
            text: text.into(),
        }
    }

    fn opener(
        opened: Arc<Mutex<Vec<(String, bool)>>>,
    ) -> impl FnMut(String, bool) -> futures_util::future::Ready<Option<InstanceLines>> + Send + Unpin {
        move |name: String, initial| {
            opened.lock().unwrap().push((name.clone(), initial));
            if name == "gone" {
                return futures_util::future::ready(None);
            }
            let lines: Vec<_> = (0..2).map(|i| line(&name, &format!("{name}-{i}"))).collect();
            futures_util::future::ready(Some(Box::pin(stream::iter(lines)) as InstanceLines))
        }
    }

    #[tokio::test]
    async fn new_instances_are_opened_once_and_merged() {
        let rounds = vec![Ok(vec!["a".to_owned(), "b".to_owned()]), Ok(vec!["b".into(), "c".into(), "gone".into()])];
        let opened = Arc::new(Mutex::new(Vec::new()));
        let messages: Vec<_> = follow_instances(stream::iter(rounds), opener(opened.clone())).collect().await;
        let mut texts: Vec<String> = messages.into_iter().map(|m| m.expect("no error").text).collect();
        texts.sort();
        assert_eq!(texts, ["a-0", "a-1", "b-0", "b-1", "c-0", "c-1"]);
        let opened = opened.lock().unwrap().clone();
        let expected = [("a", true), ("b", true), ("c", false), ("gone", false)];
        assert_eq!(opened, expected.map(|(n, i)| (n.to_owned(), i)));
    }

    #[tokio::test]
    async fn a_discovery_error_is_yielded_once_and_open_instances_go_on() {
        let rounds = vec![Ok(vec!["a".to_owned()]), Err(Error::unavailable("test", "listing failed", None))];
        let opened = Arc::new(Mutex::new(Vec::new()));
        let messages: Vec<_> = follow_instances(stream::iter(rounds), opener(opened)).collect().await;
        let errors = messages.iter().filter(|m| m.is_err()).count();
        let lines = messages.iter().filter(|m| m.is_ok()).count();
        assert_eq!((errors, lines), (1, 2), "{messages:?}");
    }

    #[tokio::test]
    async fn a_follow_stays_open_while_discovery_goes_on() {
        // Discovery that never ends: the stream must not end after the
        // instances' lines, since more instances may come.
        let discovered = stream::iter(vec![Ok(vec!["a".to_owned()])]).chain(stream::pending());
        let mut follow = follow_instances(discovered, opener(Arc::new(Mutex::new(Vec::new()))));
        for _ in 0..2 {
            assert!(follow.next().await.is_some_and(|m| m.is_ok()));
        }
        let next = futures_util::FutureExt::now_or_never(follow.next());
        assert!(next.is_none(), "the follow did not wait for more instances: {next:?}");
    }
}
