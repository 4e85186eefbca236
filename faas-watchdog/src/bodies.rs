//! Body wrappers: keeping guards alive for as long as a response streams,
//! and bounding a response by a deadline. (Taking back a request body that
//! was never read is `faas_upstream::Replayable`.)

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use faas_core::{Body, BoxError};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

pin_project_lite::pin_project! {
    /// A body that holds `guard` until it is dropped.
    struct Guarded<G> {
        inner: Body,
        guard: G,
    }
}

impl<G> http_body::Body for Guarded<G> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(self.project().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `body`, keeping `guard` alive until the body is dropped (the response
/// was sent or the client went away).
pub(crate) fn guarded<G: Send + 'static>(body: Body, guard: G) -> Body {
    Body::new(Guarded { inner: body, guard })
}

/// The error a body ends with when the call's deadline passes mid-stream.
#[derive(Debug, thiserror::Error)]
#[error("function call exceeded exec_timeout while streaming the response")]
pub(crate) struct DeadlinePassed;

struct Deadline {
    inner: Body,
    sleep: Pin<Box<Sleep>>,
    done: bool,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.done = true;
                Poll::Ready(Some(Err(Box::new(DeadlinePassed))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `body`, cut off with an error at `deadline`.
pub(crate) fn with_deadline(body: Body, deadline: Option<Instant>) -> Body {
    match deadline {
        None => body,
        Some(at) => Body::new(Deadline { inner: body, sleep: Box::pin(tokio::time::sleep_until(at)), done: false }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn guard_lives_until_the_body_is_dropped() {
        let flag = Arc::new(());
        let body = guarded(Body::from("x"), flag.clone());
        assert_eq!(Arc::strong_count(&flag), 2);
        assert_eq!(body.collect().await.unwrap().to_bytes(), Bytes::from("x"));
        assert_eq!(Arc::strong_count(&flag), 1);
    }

    #[tokio::test]
    async fn deadline_cuts_a_stalled_body() {
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let stalled = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }));
        let body = with_deadline(stalled, Some(Instant::now() + Duration::from_millis(50)));
        let result = tokio::time::timeout(Duration::from_secs(5), body.collect()).await.expect("deadline fired");
        assert!(result.is_err());
    }
}
