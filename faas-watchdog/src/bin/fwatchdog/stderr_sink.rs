//! The function's log lines and the watchdog's call lines, written to this
//! process's stderr.

use std::cell::RefCell;
use std::io::Write;

use faas_watchdog::{LogSink, Stream};

/// Writes each line to stderr, optionally prefixed with a timestamp and
/// the stream it came from.
pub(crate) struct StderrSink {
    prefix: bool,
}

impl StderrSink {
    pub(crate) fn new(prefix: bool) -> StderrSink {
        StderrSink { prefix }
    }
}

thread_local! {
    /// The line being written, reused: a call line costs no allocation and
    /// one `write` to stderr.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl LogSink for StderrSink {
    fn line(&self, _instance: &str, stream: Stream, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = if self.prefix {
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
            writeln!(err, "{now} {stream}: {text}")
        } else {
            writeln!(err, "{text}")
        };
    }

    /// The watchdog's own lines: prefixed with the time only (they come
    /// from no stream of the function's).
    fn watchdog_line(&self, _instance: &str, text: &str) {
        LINE.with_borrow_mut(|line| {
            line.clear();
            if self.prefix {
                let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
                let _ = write!(line, "{now} ");
            }
            line.extend_from_slice(text.as_bytes());
            line.push(b'\n');
            let _ = std::io::stderr().lock().write_all(line);
            if line.capacity() > 4096 {
                *line = Vec::new();
            }
        });
    }
}
