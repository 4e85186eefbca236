//! A request body that fails when no data arrives for a while.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error a body ends with when the client stops sending.
#[derive(Debug, thiserror::Error)]
#[error("no request body data for {0:?} (read_timeout)")]
pub(crate) struct ReadTimedOut(Duration);

pin_project_lite::pin_project! {
    /// `inner`, failing if it yields nothing for `timeout` while it is
    /// being read (the clock starts when a read finds no data ready).
    pub(crate) struct ReadTimeout<B> {
        #[pin]
        inner: B,
        timeout: Duration,
        waiting: Option<Pin<Box<Sleep>>>,
    }
}

impl<B> ReadTimeout<B> {
    pub(crate) fn new(inner: B, timeout: Duration) -> Self {
        ReadTimeout { inner, timeout, waiting: None }
    }
}

impl<B> http_body::Body for ReadTimeout<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<faas_core::BoxError>,
{
    type Data = Bytes;
    type Error = faas_core::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                *this.waiting = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = *this.timeout;
                let sleep =
                    this.waiting.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(ReadTimedOut(timeout))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
