//! The replayable request body.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use faas_core::{Body, BoxError};
use http_body::{Frame, SizeHint};

/// A request body that can be taken back (with [`Reclaim::take`]) as long
/// as nobody read from it: a request refused at connect time can then be
/// sent elsewhere, its streaming body intact.
pub struct Replayable {
    shared: Arc<Mutex<Option<Body>>>,
    taken: Option<Body>,
    hint: SizeHint,
    end: bool,
}

/// The handle that takes a [`Replayable`]'s body back.
pub struct Reclaim(Arc<Mutex<Option<Body>>>);

impl Reclaim {
    /// The body, if it was never polled.
    pub fn take(self) -> Option<Body> {
        self.0.lock().ok()?.take()
    }

    /// Whether the body is still unread.
    pub fn untouched(&self) -> bool {
        self.0.lock().map(|slot| slot.is_some()).unwrap_or(false)
    }
}

impl Replayable {
    /// `body`, and the handle that takes it back while it is unread.
    pub fn new(body: Body) -> (Replayable, Reclaim) {
        use http_body::Body as _;
        let hint = body.size_hint();
        let end = body.is_end_stream();
        let shared = Arc::new(Mutex::new(Some(body)));
        (Replayable { shared: shared.clone(), taken: None, hint, end }, Reclaim(shared))
    }
}

impl http_body::Body for Replayable {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.taken.is_none() {
            match self.shared.lock().ok().and_then(|mut slot| slot.take()) {
                Some(body) => self.taken = Some(body),
                None => return Poll::Ready(None),
            }
        }
        match self.taken.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.taken {
            Some(body) => body.is_end_stream(),
            None => self.end,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.taken {
            Some(body) => body.size_hint(),
            None => self.hint,
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn unread_bodies_can_be_reclaimed() {
        let (body, reclaim) = Replayable::new(Body::from("payload"));
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(7));
        drop(body);
        assert!(reclaim.untouched());
        let back = reclaim.take().expect("never polled");
        assert_eq!(back.collect().await.unwrap().to_bytes(), Bytes::from("payload"));

        let (body, reclaim) = Replayable::new(Body::from("payload"));
        assert_eq!(body.collect().await.unwrap().to_bytes(), Bytes::from("payload"));
        assert!(!reclaim.untouched());
        assert!(reclaim.take().is_none(), "a read body is gone");
    }
}
