//! The watchdog's own line per call, in OpenFaaS's wording, written
//! through the [`LogSink`] (so `faas-cli logs` shows it on every provider):
//!
//! - fork modes: `Forking fprocess.` when the process starts, then
//!   `Wrote <N> Bytes - Duration: <seconds, 6 decimals>s` when its output
//!   ends;
//! - http mode: `<METHOD> <path?query> - <code> <reason> - ContentLength:
//!   <N>B (<seconds, 4 decimals>s)` when the response body ends, as
//!   of-watchdog writes it (`N` the bytes sent).
//!
//! Lines are formatted on the stack (no allocation unless a path is very
//! long). `log_calls=false` turns them off.

use std::fmt::{self, Write as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use faas_core::{Body, BoxError};
use http::{Method, StatusCode, Uri};
use http_body::{Frame, SizeHint};
use tokio::time::Instant;

use crate::logs::LogSink;

/// The line written when a fork-mode process starts.
pub(crate) const FORKING: &str = "Forking fprocess.";

/// Where a watchdog's call lines go, under which instance name.
pub(crate) struct CallLogger {
    sink: Arc<dyn LogSink>,
    name: String,
}

impl CallLogger {
    pub(crate) fn new(sink: Arc<dyn LogSink>, name: String) -> CallLogger {
        CallLogger { sink, name }
    }

    /// `Forking fprocess.`
    pub(crate) fn forking(&self) {
        self.sink.watchdog_line(&self.name, FORKING);
    }
}

/// What the call's last line reports.
pub(crate) enum Ending {
    /// `Wrote <N> Bytes - Duration: <s>s`.
    Fork,
    /// `<METHOD> <path> - <status> - ContentLength: <N>B (<s>s)`.
    Http {
        /// The request's method.
        method: Method,
        /// The request's URI below the function (path and query).
        uri: Uri,
        /// The response's status, once known.
        status: StatusCode,
    },
}

/// One call being logged: written once, when its response body ends or
/// is dropped, unless cancelled.
pub(crate) struct CallRecord {
    logger: Arc<CallLogger>,
    started: Instant,
    ending: Ending,
    bytes: u64,
    done: bool,
}

impl CallRecord {
    pub(crate) fn new(logger: Arc<CallLogger>, started: Instant, ending: Ending) -> CallRecord {
        CallRecord { logger, started, ending, bytes: 0, done: false }
    }

    /// Records the response's status (http mode).
    pub(crate) fn set_status(&mut self, code: StatusCode) {
        if let Ending::Http { status, .. } = &mut self.ending {
            *status = code;
        }
    }

    /// The call produced no response: no line is written.
    pub(crate) fn cancel(mut self) {
        self.done = true;
    }

    fn finish(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.started.elapsed();
        let mut line = LineBuf::default();
        let _ = match &self.ending {
            Ending::Fork => write!(line, "Wrote {} Bytes - Duration: {}s", self.bytes, Seconds(elapsed, 6)),
            Ending::Http { method, uri, status } => {
                let target = uri.path_and_query().map_or("/", |p| p.as_str());
                let reason = status.canonical_reason().unwrap_or("");
                let bytes = self.bytes;
                let code = status.as_u16();
                let seconds = Seconds(elapsed, 4);
                write!(line, "{method} {target} - {code} {reason} - ContentLength: {bytes}B ({seconds}s)")
            }
        };
        self.logger.sink.watchdog_line(&self.logger.name, line.as_str());
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `body`, keeping `guard` until dropped and counting the bytes it sends
/// into `record`, whose line is written when the body ends (or is dropped).
pub(crate) fn logged<G: Send + Unpin + 'static>(body: Body, guard: G, mut record: CallRecord) -> Body {
    use http_body::Body as _;
    if body.is_end_stream() {
        record.finish();
    }
    Body::new(Logged { inner: body, _guard: guard, record })
}

struct Logged<G> {
    inner: Body,
    _guard: G,
    record: CallRecord,
}

impl<G: Unpin> http_body::Body for Logged<G> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.record.bytes += data.len() as u64;
                }
                // Written before the last piece goes out, so a client that
                // has the whole response finds the line already there.
                if this.inner.is_end_stream() {
                    this.record.finish();
                }
            }
            Poll::Ready(_) => this.record.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A duration in seconds with a fixed number of decimals (at most 9),
/// rounded to the nearest, formatted with integers: formatting the `f64`
/// was a sixth of a call line's cost.
struct Seconds(std::time::Duration, u32);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimals = self.1.min(9);
        let unit = 10u64.pow(9 - decimals);
        let nanos = u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX);
        let scaled = nanos / unit + u64::from(nanos % unit >= unit / 2 && unit > 1);
        let per_second = 10u64.pow(decimals);
        write!(f, "{}.{:0width$}", scaled / per_second, scaled % per_second, width = decimals as usize)
    }
}

/// Bytes a line holds on the stack before it moves to the heap.
const INLINE: usize = 256;

/// A line built on the stack, spilling to a `String` only when longer
/// than [`INLINE`] bytes.
struct LineBuf {
    inline: [u8; INLINE],
    len: usize,
    spill: Option<String>,
}

impl Default for LineBuf {
    fn default() -> Self {
        LineBuf { inline: [0; INLINE], len: 0, spill: None }
    }
}

impl LineBuf {
    fn as_str(&self) -> &str {
        match &self.spill {
            Some(text) => text,
            // Only whole `str`s are copied in, so this is always UTF-8.
            None => std::str::from_utf8(&self.inline[..self.len]).unwrap_or_default(),
        }
    }
}

impl fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(text) = &mut self.spill {
            text.push_str(s);
        } else if self.len + s.len() <= INLINE {
            self.inline[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
            self.len += s.len();
        } else {
            let mut text = String::with_capacity(2 * (self.len + s.len()));
            text.push_str(self.as_str());
            text.push_str(s);
            self.spill = Some(text);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use http_body_util::BodyExt;

    use super::*;
    use crate::logs::Stream;

    #[derive(Default)]
    struct Lines(Mutex<Vec<(String, String)>>);

    impl LogSink for Lines {
        fn line(&self, instance: &str, _stream: Stream, text: &str) {
            self.0.lock().unwrap().push((instance.into(), text.into()));
        }
    }

    fn logger() -> (Arc<Lines>, Arc<CallLogger>) {
        let lines = Arc::new(Lines::default());
        (lines.clone(), Arc::new(CallLogger::new(lines, "fn".into())))
    }

    #[test]
    fn seconds_read_as_the_float_formatting_gave_them() {
        use std::time::Duration;
        for (nanos, decimals, text) in [
            (1_234_567_890u64, 4, "1.2346"),
            (1_234_549_999, 4, "1.2345"),
            (999_960_000, 4, "1.0000"),
            (42_000, 6, "0.000042"),
            (0, 6, "0.000000"),
            (3_000_000_000, 4, "3.0000"),
        ] {
            let d = Duration::from_nanos(nanos);
            assert_eq!(Seconds(d, decimals).to_string(), text, "{nanos} ns");
            assert_eq!(format!("{:.*}", decimals as usize, d.as_secs_f64()), text, "{nanos} ns as a float");
        }
    }

    #[test]
    fn long_lines_spill_to_the_heap_intact() {
        let mut line = LineBuf::default();
        write!(line, "{}", "a".repeat(200)).unwrap();
        assert!(line.spill.is_none());
        write!(line, "{}é", "b".repeat(100)).unwrap();
        assert_eq!(line.as_str(), format!("{}{}é", "a".repeat(200), "b".repeat(100)));
    }

    #[tokio::test]
    async fn fork_and_http_lines_in_openfaas_wording() {
        let (lines, logger) = logger();
        logger.forking();
        let body = Body::from_stream(futures_util::stream::iter([
            Ok::<_, std::io::Error>(Bytes::from("abc")),
            Ok(Bytes::from("de")),
        ]));
        let record = CallRecord::new(logger.clone(), Instant::now(), Ending::Fork);
        assert_eq!(logged(body, (), record).collect().await.unwrap().to_bytes(), "abcde");

        let ending = Ending::Http { method: Method::POST, uri: "/a/b?x=1".parse().unwrap(), status: StatusCode::OK };
        let mut record = CallRecord::new(logger.clone(), Instant::now(), ending);
        record.set_status(StatusCode::NOT_FOUND);
        let _ = logged(Body::from("xyz"), (), record).collect().await.unwrap();
        CallRecord::new(logger, Instant::now(), Ending::Fork).cancel();

        let got = lines.0.lock().unwrap().clone();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got.iter().all(|(instance, _)| instance == "fn"));
        assert_eq!(got[0].1, "Forking fprocess.");
        let wrote = got[1].1.strip_prefix("Wrote 5 Bytes - Duration: ").unwrap();
        let seconds = wrote.strip_suffix('s').unwrap();
        assert_eq!(seconds.split('.').nth(1).unwrap().len(), 6, "{wrote}");
        let http = got[2].1.strip_prefix("POST /a/b?x=1 - 404 Not Found - ContentLength: 3B (").unwrap();
        assert_eq!(http.strip_suffix("s)").unwrap().split('.').nth(1).unwrap().len(), 4, "{http}");
    }

    #[tokio::test]
    async fn a_dropped_body_still_writes_its_line() {
        let (lines, logger) = logger();
        let body = logged(Body::from("abc"), (), CallRecord::new(logger, Instant::now(), Ending::Fork));
        drop(body);
        assert!(lines.0.lock().unwrap()[0].1.starts_with("Wrote 0 Bytes - Duration: "));
    }
}
