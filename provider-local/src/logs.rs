//! Each function's log: a bounded ring of recent lines plus a broadcast
//! channel for followers.

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::Utc;
use faas_core::{LogMessage, LogRequest, LogStream};
use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

/// How many new lines a follower may fall behind by before it skips ahead.
const FOLLOW_BUFFER: usize = 1024;

/// The lines one function wrote, newest last, at most `capacity` of them.
///
/// Writers never wait for readers: a follower that falls behind by more than
/// [`FOLLOW_BUFFER`] lines misses the oldest ones and carries on.
pub(crate) struct LogBook {
    name: String,
    namespace: String,
    capacity: usize,
    state: Mutex<State>,
}

/// The lines and the followers' channel, under one lock.
struct State {
    ring: VecDeque<LogMessage>,
    /// The channel to followers, made by the first follower and dropped
    /// once none is left: its buffer ([`FOLLOW_BUFFER`] slots, allocated up
    /// front) would otherwise cost every function ~150 KB whether or not
    /// anyone ever follows its log.
    live: Option<broadcast::Sender<LogMessage>>,
}

impl LogBook {
    /// An empty log for function `name` in `namespace` keeping `capacity`
    /// lines (at least one).
    pub(crate) fn new(name: &str, namespace: &str, capacity: usize) -> LogBook {
        LogBook {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            capacity: capacity.max(1),
            state: Mutex::new(State { ring: VecDeque::new(), live: None }),
        }
    }

    /// Records one line written by `instance` now.
    pub(crate) fn push(&self, instance: &str, text: &str) {
        let message = LogMessage {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            instance: instance.to_owned(),
            timestamp: Utc::now(),
            text: text.trim_end_matches(['\n', '\r']).to_owned(),
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.ring.len() == self.capacity {
            state.ring.pop_front();
        }
        // Sent under the lock so a new follower sees every line exactly
        // once: either in its snapshot or on the channel.
        if let Some(live) = &state.live {
            if live.send(message.clone()).is_err() {
                // Every follower went away.
                state.live = None;
            }
        }
        state.ring.push_back(message);
    }

    /// The stored lines matching `request` (instance, since, tail), then, if
    /// it follows, every new matching line until the function goes away.
    pub(crate) fn read(&self, request: &LogRequest) -> LogStream {
        let instance = request.instance.clone();
        let since = request.since;
        let matches = move |m: &LogMessage| {
            (instance.is_empty() || m.instance == instance) && since.is_none_or(|since| m.timestamp >= since)
        };
        let (mut stored, receiver) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let stored: Vec<LogMessage> = state.ring.iter().filter(|m| matches(m)).cloned().collect();
            let receiver = request
                .follow
                .then(|| state.live.get_or_insert_with(|| broadcast::channel(FOLLOW_BUFFER).0).subscribe());
            (stored, receiver)
        };
        if request.tail > 0 {
            let keep = usize::try_from(request.tail).unwrap_or(usize::MAX);
            let skip = stored.len().saturating_sub(keep);
            stored.drain(..skip);
        }
        let history = futures_util::stream::iter(stored.into_iter().map(Ok));
        match receiver {
            None => Box::pin(history),
            Some(receiver) => {
                let live = BroadcastStream::new(receiver).filter_map(move |item| {
                    // A lagging follower skips what it missed.
                    let keep = item.ok().filter(|m| matches(m)).map(Ok);
                    std::future::ready(keep)
                });
                Box::pin(history.chain(live))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::*;

    async fn texts(stream: LogStream) -> Vec<String> {
        stream.map(|m| m.unwrap().text).collect().await
    }

    async fn next(stream: &mut LogStream) -> Option<faas_core::Result<LogMessage>> {
        tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("log line in time")
    }

    fn request() -> LogRequest {
        LogRequest { name: "f".into(), namespace: "ns".into(), ..LogRequest::default() }
    }

    #[tokio::test]
    async fn the_ring_keeps_the_latest_lines() {
        let book = LogBook::new("f", "ns", 3);
        for i in 0..5 {
            book.push("f-1", &format!("line {i}\n"));
        }
        assert_eq!(texts(book.read(&request())).await, ["line 2", "line 3", "line 4"]);
        let all = book.read(&request()).next().await.unwrap().unwrap();
        assert_eq!((all.name.as_str(), all.namespace.as_str(), all.instance.as_str()), ("f", "ns", "f-1"));
    }

    #[tokio::test]
    async fn instance_since_and_tail_filter() {
        let book = LogBook::new("f", "ns", 100);
        book.push("a", "a1");
        book.push("b", "b1");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let cut = Utc::now();
        book.push("a", "a2");
        book.push("b", "b2");
        book.push("a", "a3");
        let only_a = LogRequest { instance: "a".into(), ..request() };
        assert_eq!(texts(book.read(&only_a)).await, ["a1", "a2", "a3"]);
        let since = LogRequest { since: Some(cut), ..request() };
        assert_eq!(texts(book.read(&since)).await, ["a2", "b2", "a3"]);
        let tail = LogRequest { tail: 2, ..request() };
        assert_eq!(texts(book.read(&tail)).await, ["b2", "a3"]);
        let tail_a = LogRequest { tail: 1, instance: "a".into(), ..request() };
        assert_eq!(texts(book.read(&tail_a)).await, ["a3"]);
        let no_tail = LogRequest { tail: -1, ..request() };
        assert_eq!(texts(book.read(&no_tail)).await.len(), 5);
    }

    #[tokio::test]
    async fn follow_sends_history_then_new_lines_and_ends_when_the_book_goes() {
        let book = LogBook::new("f", "ns", 100);
        book.push("a", "old");
        let mut stream = book.read(&LogRequest { follow: true, instance: "a".into(), ..request() });
        book.push("b", "other instance");
        book.push("a", "new");
        assert_eq!(next(&mut stream).await.unwrap().unwrap().text, "old");
        assert_eq!(next(&mut stream).await.unwrap().unwrap().text, "new");
        drop(book);
        assert!(next(&mut stream).await.is_none());
    }

    #[tokio::test]
    async fn the_follow_channel_exists_only_while_someone_follows() {
        let book = LogBook::new("f", "ns", 10);
        let live = |book: &LogBook| book.state.lock().unwrap().live.is_some();
        book.push("a", "before");
        assert!(!live(&book), "no channel (and no buffer) without a follower");
        let mut stream = book.read(&LogRequest { follow: true, ..request() });
        assert!(live(&book));
        book.push("a", "followed");
        assert_eq!(next(&mut stream).await.unwrap().unwrap().text, "before");
        assert_eq!(next(&mut stream).await.unwrap().unwrap().text, "followed");
        drop(stream);
        book.push("a", "after");
        assert!(!live(&book), "the channel goes with the last follower");
        let mut again = book.read(&LogRequest { follow: true, tail: 1, ..request() });
        book.push("a", "again");
        assert_eq!(next(&mut again).await.unwrap().unwrap().text, "after");
        assert_eq!(next(&mut again).await.unwrap().unwrap().text, "again");
    }

    #[tokio::test]
    async fn a_lagging_follower_skips_without_blocking_the_writer() {
        let book = LogBook::new("f", "ns", 10);
        let stream = book.read(&LogRequest { follow: true, ..request() });
        for i in 0..(FOLLOW_BUFFER + 10) {
            book.push("a", &format!("{i}"));
        }
        drop(book);
        let got = texts(stream).await;
        assert_eq!(got.len(), FOLLOW_BUFFER);
        assert_eq!(got.last().map(String::as_str), Some(format!("{}", FOLLOW_BUFFER + 9).as_str()));
    }
}
