//! Where the lines processes write go: a [`LogSink`], and the tail of
//! stderr kept for error messages.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Receives every line the function's processes write (HTTP mode: stdout
/// and stderr; fork modes: stderr, since stdout is the response).
pub trait LogSink: Send + Sync + 'static {
    /// One line, without its line ending. `instance` is `<name>-<n>` (HTTP
    /// mode, `n` the slot index) or `<name>-<pid>` (fork modes).
    fn line(&self, instance: &str, stream: Stream, text: &str);

    /// One line of the watchdog's own (its per-call lines, see `log_calls`),
    /// `instance` the watchdog's name. By default it goes where the
    /// processes' stderr goes.
    fn watchdog_line(&self, instance: &str, text: &str) {
        self.line(instance, Stream::Stderr, text);
    }
}

/// Lines longer than this are cut into pieces of this size.
const MAX_LINE: usize = 64 * 1024;

/// The last lines of a stream, bounded in bytes, for error messages.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    lines: VecDeque<String>,
    bytes: usize,
}

impl Tail {
    /// Bytes kept at most.
    const LIMIT: usize = 4096;

    pub(crate) fn push(&mut self, line: &str) {
        let line =
            if line.len() > Self::LIMIT { &line[floor_char_boundary(line, line.len() - Self::LIMIT)..] } else { line };
        self.bytes += line.len() + 1;
        self.lines.push_back(line.to_string());
        while self.bytes > Self::LIMIT {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.len() + 1,
                None => break,
            }
        }
    }

    pub(crate) fn text(&self) -> String {
        self.lines.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
    }
}

fn floor_char_boundary(s: &str, mut at: usize) -> usize {
    while at < s.len() && !s.is_char_boundary(at) {
        at += 1;
    }
    at
}

pub(crate) type SharedTail = Arc<Mutex<Tail>>;

/// Reads `reader` line by line until end of file, handing each line to
/// `sink` (if any) and to `tail` (if any).
pub(crate) async fn pump_lines<R>(
    reader: R,
    instance: String,
    stream: Stream,
    sink: Option<Arc<dyn LogSink>>,
    tail: Option<SharedTail>,
) where
    R: AsyncRead + Unpin,
{
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut buf).await;
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some(sink) = &sink {
            sink.line(&instance, stream, &text);
        }
        if let Some(tail) = &tail {
            if let Ok(mut tail) = tail.lock() {
                tail.push(&text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_bytes() {
        let mut tail = Tail::default();
        for i in 0..2000 {
            tail.push(&format!("line {i}"));
        }
        let text = tail.text();
        assert!(text.len() <= Tail::LIMIT);
        assert!(text.ends_with("line 1999"));
        assert!(!text.contains("line 1\n"));
        let mut tail = Tail::default();
        tail.push(&"é".repeat(5000));
        assert!(tail.text().len() <= Tail::LIMIT);
    }

    #[tokio::test]
    async fn lines_reach_the_sink_without_endings() {
        struct Collect(Mutex<Vec<(String, Stream, String)>>);
        impl LogSink for Collect {
            fn line(&self, instance: &str, stream: Stream, text: &str) {
                self.0.lock().unwrap().push((instance.into(), stream, text.into()));
            }
        }
        let sink = Arc::new(Collect(Mutex::new(Vec::new())));
        let tail = SharedTail::default();
        let input: &[u8] = b"one\r\ntwo\nthree";
        pump_lines(input, "f-1".into(), Stream::Stderr, Some(sink.clone()), Some(tail.clone())).await;
        let got = sink.0.lock().unwrap().clone();
        let texts: Vec<_> = got.iter().map(|(_, _, t)| t.as_str()).collect();
        assert_eq!(texts, ["one", "two", "three"]);
        assert!(got.iter().all(|(i, s, _)| i == "f-1" && *s == Stream::Stderr));
        assert_eq!(tail.lock().unwrap().text(), "one\ntwo\nthree");
    }
}
