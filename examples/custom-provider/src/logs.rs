//! Function logs: a bounded ring of recent messages, plus a broadcast
//! channel that feeds followers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;
use faas_core::{LogMessage, LogRequest, LogStream};
use futures_util::{stream, StreamExt};
use tokio::sync::broadcast;

/// How many messages followers may fall behind before they miss some.
const FOLLOW_BUFFER: usize = 1024;

/// Every function's log messages, newest last.
pub(crate) struct LogBook {
    ring: Mutex<VecDeque<LogMessage>>,
    capacity: usize,
    live: broadcast::Sender<LogMessage>,
}

impl LogBook {
    /// A book that keeps the latest `capacity` messages.
    pub(crate) fn new(capacity: usize) -> Self {
        let (live, _) = broadcast::channel(FOLLOW_BUFFER);
        LogBook { ring: Mutex::new(VecDeque::with_capacity(capacity.min(4096))), capacity, live }
    }

    fn push(&self, message: LogMessage) {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        if ring.len() == self.capacity {
            ring.pop_front();
        }
        if self.capacity > 0 {
            ring.push_back(message.clone());
        }
        // Sent under the lock, so a follower sees each message exactly once:
        // either in its snapshot or live. No receivers is not an error.
        let _ = self.live.send(message);
    }

    /// The messages `request` asks for: the matching history (its `tail`),
    /// then, when following, every matching message written from now on.
    pub(crate) fn read(&self, request: &LogRequest) -> LogStream {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let live = request.follow.then(|| self.live.subscribe());
        let mut history: Vec<LogMessage> = ring.iter().filter(|m| matches(request, m)).cloned().collect();
        drop(ring);
        if request.tail > 0 {
            let keep = usize::try_from(request.tail).unwrap_or(usize::MAX);
            history.drain(..history.len().saturating_sub(keep));
        }
        let history = stream::iter(history.into_iter().map(Ok));
        match live {
            None => history.boxed(),
            Some(receiver) => {
                let filter = request.clone();
                let live = stream::unfold(receiver, |mut receiver| async move {
                    loop {
                        match receiver.recv().await {
                            Ok(message) => return Some((message, receiver)),
                            // A slow follower skips what it missed.
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(broadcast::error::RecvError::Closed) => return None,
                        }
                    }
                })
                .filter(move |m| std::future::ready(matches(&filter, m)))
                .map(Ok);
                history.chain(live).boxed()
            }
        }
    }
}

fn matches(request: &LogRequest, message: &LogMessage) -> bool {
    message.name == request.name
        && message.namespace == request.namespace
        && (request.instance.is_empty() || message.instance == request.instance)
        && request.since.is_none_or(|since| message.timestamp >= since)
}

/// Writes one function's messages into the book.
#[derive(Clone)]
pub(crate) struct Logger {
    book: Arc<LogBook>,
    name: String,
    namespace: String,
}

impl Logger {
    pub(crate) fn new(book: Arc<LogBook>, name: &str, namespace: &str) -> Self {
        Logger { book, name: name.to_owned(), namespace: namespace.to_owned() }
    }

    /// Records each line of `text` as written by `instance`.
    pub(crate) fn log(&self, instance: &str, text: &str) {
        for line in text.lines() {
            self.book.push(LogMessage {
                name: self.name.clone(),
                namespace: self.namespace.clone(),
                instance: instance.to_owned(),
                timestamp: Utc::now(),
                text: line.to_owned(),
            });
        }
    }
}
