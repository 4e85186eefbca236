//! The streaming body type used for invocations.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use http::{header, HeaderMap};
use http_body::{Frame, SizeHint};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full, StreamBody};

use crate::error::{BoxError, Error, Result};

/// A streaming HTTP body: requests to and responses from functions.
///
/// Bodies are never collected by the core: a provider reads the request as
/// it arrives and its response streams back to the client as it is
/// produced. Dropping a body (the client went away) drops whatever feeds
/// it, which is how a provider learns to cancel a call.
pub struct Body(UnsyncBoxBody<Bytes, BoxError>);

impl Body {
    /// Wraps any `http_body::Body` whose chunks are [`Bytes`].
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Body(body.map_err(Into::into).boxed_unsync())
    }

    /// An empty body.
    pub fn empty() -> Self {
        Body::new(Empty::<Bytes>::new())
    }

    /// A body fed by a stream of chunks.
    pub fn from_stream<S, E>(stream: S) -> Self
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        use futures_util::TryStreamExt;
        Body::new(StreamBody::new(stream.map_ok(Frame::data).map_err(Into::into)))
    }

    /// Reads the whole body into memory, refusing more than `limit` bytes
    /// with [`Error::PayloadTooLarge`]. Meant for small bodies (JSON on
    /// system routes, test assertions), never for invocations.
    pub async fn collect_limited(self, limit: u64) -> Result<Bytes> {
        let (mut body, exceeded) = self.limited(limit);
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| match exceeded.get() {
                true => Error::PayloadTooLarge { limit },
                false => Error::invalid("body", format!("could not read the request body: {e}")),
            })?;
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    }

    /// This body, counted as it streams: the chunk that takes it past
    /// `limit` bytes is replaced by an error (the reader, a function's
    /// stdin or a proxied request, then fails), and the returned
    /// [`Exceeded`] says so, for the caller to answer 413 rather than
    /// whatever the reader made of the cut body. Nothing is buffered.
    pub fn limited(self, limit: u64) -> (Body, Exceeded) {
        let exceeded = Exceeded(Arc::new(AtomicBool::new(false)));
        let body = LimitedBody { inner: self, seen: 0, limit, exceeded: exceeded.clone() };
        (Body::new(body), exceeded)
    }
}

/// Refuses a request whose declared `Content-Length` is above `limit`
/// before any of its body is read. With [`Body::limited`], the one body
/// limit of every route: declared lengths are refused up front, streamed
/// (chunked) bodies when they pass the limit.
pub fn check_declared_length(headers: &HeaderMap, limit: u64) -> Result<()> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > limit => Err(Error::PayloadTooLarge { limit }),
        _ => Ok(()),
    }
}

/// Whether a [`Body::limited`] body went past its limit.
#[derive(Debug, Clone)]
pub struct Exceeded(Arc<AtomicBool>);

impl Exceeded {
    /// True once the body yielded more than its limit (and failed).
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The body behind [`Body::limited`].
struct LimitedBody {
    inner: Body,
    seen: u64,
    limit: u64,
    exceeded: Exceeded,
}

impl http_body::Body for LimitedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, BoxError>>> {
        if self.exceeded.get() {
            return Poll::Ready(None);
        }
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
            let len = data.map_or(0, |d| d.len() as u64);
            self.seen = self.seen.saturating_add(len);
            if self.seen > self.limit {
                self.exceeded.0.store(true, Ordering::Release);
                return Poll::Ready(Some(Err(Box::new(Error::PayloadTooLarge { limit: self.limit }))));
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.exceeded.get() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body").field("size_hint", &http_body::Body::size_hint(&self.0)).finish()
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body::new(Full::new(bytes))
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::from(Bytes::from(bytes))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body::from(Bytes::from(text))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Body::from(Bytes::from_static(text.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Body::from(Bytes::from_static(bytes))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn collect_limited_refuses_past_the_limit() {
        let body = Body::from(vec![7u8; 100]);
        assert!(matches!(body.collect_limited(99).await, Err(Error::PayloadTooLarge { limit: 99 })));
        let body = Body::from(vec![7u8; 100]);
        assert_eq!(body.collect_limited(100).await.unwrap().len(), 100);
    }

    #[tokio::test]
    async fn limited_bodies_fail_at_the_chunk_past_the_limit_and_say_so() {
        let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![1u8; 10])));
        let (mut body, exceeded) = Body::from_stream(futures_util::stream::iter(chunks)).limited(25);
        let mut read = 0;
        let mut failed = false;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => read += frame.into_data().map(|d| d.len()).unwrap_or(0),
                Err(err) => {
                    assert!(err.to_string().contains("limit of 25 bytes"), "{err}");
                    failed = true;
                }
            }
        }
        assert_eq!((read, failed, exceeded.get()), (20, true, true));
        let (body, exceeded) = Body::from(vec![1u8; 25]).limited(25);
        assert_eq!(body.collect_limited(u64::MAX).await.unwrap().len(), 25);
        assert!(!exceeded.get());
    }

    #[test]
    fn declared_lengths_above_the_limit_are_refused() {
        let mut headers = HeaderMap::new();
        assert!(check_declared_length(&headers, 10).is_ok());
        headers.insert(header::CONTENT_LENGTH, "10".parse().unwrap());
        assert!(check_declared_length(&headers, 10).is_ok());
        headers.insert(header::CONTENT_LENGTH, "11".parse().unwrap());
        assert!(matches!(check_declared_length(&headers, 10), Err(Error::PayloadTooLarge { limit: 10 })));
    }

    #[tokio::test]
    async fn stream_bodies_yield_their_chunks_in_order() {
        let chunks = vec![Ok::<_, std::io::Error>(Bytes::from("a")), Ok(Bytes::from("bc"))];
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        assert_eq!(body.collect_limited(10).await.unwrap(), Bytes::from("abc"));
    }
}
