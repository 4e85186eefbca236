//! The streaming body type used for invocations.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
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
        let mut body = self;
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::invalid("body", format!("could not read the request body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if (buf.len() + data.len()) as u64 > limit {
                    return Err(Error::PayloadTooLarge { limit });
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
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
    async fn stream_bodies_yield_their_chunks_in_order() {
        let chunks = vec![Ok::<_, std::io::Error>(Bytes::from("a")), Ok(Bytes::from("bc"))];
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        assert_eq!(body.collect_limited(10).await.unwrap(), Bytes::from("abc"));
    }
}
