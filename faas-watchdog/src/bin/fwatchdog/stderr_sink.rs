//! The function's log lines, written to this process's stderr.

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
}
