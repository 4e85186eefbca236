//! Each function's log: a bounded ring of recent lines plus a broadcast
//! channel for followers.

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
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
    ring: VecDeque<Line>,
    /// The channel to followers, made by the first follower and dropped
    /// once none is left: its buffer ([`FOLLOW_BUFFER`] slots, allocated up
    /// front) would otherwise cost every function ~150 KB whether or not
    /// anyone ever follows its log.
    live: Option<broadcast::Sender<LogMessage>>,
}

/// One stored line: 32 bytes and one allocation (the instance's name and
/// the text together). A [`LogMessage`] is four strings, three of them
/// the same for every line of an instance: stored as such, a full ring of
/// the default 10,000 lines of a busy function took about 2 MB, and the
/// rings filling up over the soak's first quarter hour showed as RSS
/// growth (BENCHMARKS.md, section 10).
struct Line {
    timestamp: DateTime<Utc>,
    /// Where the instance's name ends in `words` (the text follows).
    split: u32,
    words: Box<str>,
}

impl Line {
    fn new(instance: &str, text: &str, timestamp: DateTime<Utc>) -> Line {
        // Instance names are a function's name and a number; one that did
        // not fit in 4 GiB would be left out rather than cut.
        let (instance, split) = u32::try_from(instance.len()).map_or(("", 0), |split| (instance, split));
        let mut words = String::with_capacity(instance.len() + text.len());
        words.push_str(instance);
        words.push_str(text);
        Line { timestamp, split, words: words.into_boxed_str() }
    }

    fn instance(&self) -> &str {
        &self.words[..self.split as usize]
    }

    fn text(&self) -> &str {
        &self.words[self.split as usize..]
    }
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

    /// `line` as `GET /system/logs` sends it.
    fn message(&self, line: &Line) -> LogMessage {
        LogMessage {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            instance: line.instance().to_owned(),
            timestamp: line.timestamp,
            text: line.text().to_owned(),
        }
    }

    /// Records one line written by `instance` now.
    pub(crate) fn push(&self, instance: &str, text: &str) {
        let line = Line::new(instance, text.trim_end_matches(['\n', '\r']), Utc::now());
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.ring.len() == self.capacity {
            state.ring.pop_front();
        }
        // Sent under the lock so a new follower sees every line exactly
        // once: either in its snapshot or on the channel.
        if let Some(live) = &state.live {
            if live.send(self.message(&line)).is_err() {
                // Every follower went away.
                state.live = None;
            }
        }
        state.ring.push_back(line);
    }

    /// The stored lines matching `request` (instance, since, tail), then, if
    /// it follows, every new matching line until the function goes away.
    pub(crate) fn read(&self, request: &LogRequest) -> LogStream {
        let instance = request.instance.clone();
        let since = request.since;
        let matches = move |line_instance: &str, timestamp: DateTime<Utc>| {
            (instance.is_empty() || line_instance == instance) && since.is_none_or(|since| timestamp >= since)
        };
        let (mut stored, receiver) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let stored: Vec<LogMessage> = state
                .ring
                .iter()
                .filter(|line| matches(line.instance(), line.timestamp))
                .map(|line| self.message(line))
                .collect();
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
                    let keep = item.ok().filter(|m| matches(&m.instance, m.timestamp)).map(Ok);
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

    #[test]
    fn a_stored_line_is_32_bytes_and_its_words() {
        // The ring's share of memory: 10,000 of these per function.
        assert_eq!(std::mem::size_of::<Line>(), 32);
        let line = Line::new("f-12", "text", Utc::now());
        assert_eq!((line.instance(), line.text()), ("f-12", "text"));
        assert_eq!(line.words.len(), "f-12text".len(), "one allocation holds exactly the instance and the text");
    }

    #[tokio::test]
    async fn instance_names_and_texts_stay_apart() {
        let book = LogBook::new("f", "ns", 10);
        book.push("a", "bc");
        book.push("ab", "c");
        book.push("", "abc");
        let lines: Vec<(String, String)> =
            book.read(&request()).map(|m| m.unwrap()).map(|m| (m.instance, m.text)).collect().await;
        assert_eq!(lines, [("a".into(), "bc".into()), ("ab".into(), "c".into()), (String::new(), "abc".into())]);
        let only_a = LogRequest { instance: "a".into(), ..request() };
        assert_eq!(texts(book.read(&only_a)).await, ["bc"]);
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
