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
            writeln!(err, "{} {stream}: {text}", Timestamp(chrono::Utc::now()))
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
                let _ = write!(line, "{} ", Timestamp(chrono::Utc::now()));
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

/// A time as `2006-01-02T15:04:05.000Z`, its digits written directly:
/// chrono's `format` parses its pattern on every call, which was a tenth
/// of fwatchdog's own instructions per call in http mode (a line per call).
struct Timestamp(chrono::DateTime<chrono::Utc>);

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use chrono::{Datelike, Timelike};
        let t = &self.0;
        let mut text = *b"0000-00-00T00:00:00.000Z";
        // A leap second's nanoseconds run past 10^9; its milliseconds stay 999.
        let millis = (t.nanosecond() / 1_000_000).min(999);
        let year = u32::try_from(t.year()).unwrap_or(0).min(9999);
        for (at, width, value) in [
            (0, 4, year),
            (5, 2, t.month()),
            (8, 2, t.day()),
            (11, 2, t.hour()),
            (14, 2, t.minute()),
            (17, 2, t.second()),
            (20, 3, millis),
        ] {
            let mut value = value;
            for i in (at..at + width).rev() {
                text[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        f.write_str(std::str::from_utf8(&text).map_err(|_| std::fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_chrono_formats_them() {
        for text in ["2026-12-06T21:05:09.042Z", "1999-01-31T00:00:00.999Z", "2030-07-04T23:59:59.000Z"] {
            let t: chrono::DateTime<chrono::Utc> = text.parse().unwrap();
            assert_eq!(Timestamp(t).to_string(), t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            assert_eq!(Timestamp(t).to_string(), text);
        }
    }
}
