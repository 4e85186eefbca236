//! The queue contract every backend implements.

use std::time::Duration;

use async_trait::async_trait;

use crate::call::{Claimed, DeadLetter, FailedStage, QueuedCall};
use crate::error::AsyncError;

/// A durable queue of asynchronous calls.
///
/// The contract is at-least-once: a call accepted by [`Queue::enqueue`]
/// stays in the queue until a worker [`Queue::ack`]s it or moves it to the
/// dead letters, whatever crashes in between; a call claimed by a worker
/// that never answered is handed out again (flagged
/// [`Claimed::redelivered`]). Object-safe: used as `Arc<dyn Queue>`.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// The backend's name (`embedded`).
    fn kind(&self) -> &'static str;

    /// Persists `call`; once this returns, the call survives a crash.
    /// Idempotent on the call's id while it is queued (embedded: the call
    /// is still in the queue or the dead letters; JetStream: within the
    /// stream's duplicate window, for the same id and `accepted_at_ms`), so
    /// producers that may send one call twice (cron ticks on several
    /// gateways) give it a deterministic id.
    async fn enqueue(&self, call: QueuedCall) -> Result<(), AsyncError>;

    /// Takes the next due call, waiting up to `wait` for one; `None` when
    /// none became due in time. The returned call's `attempts` counts the
    /// attempt this claim starts.
    async fn claim(&self, wait: Duration) -> Result<Option<Claimed>, AsyncError>;

    /// The call is done: removes it for good.
    async fn ack(&self, claimed: &Claimed) -> Result<(), AsyncError>;

    /// The attempt failed: the call becomes due again after `delay`.
    async fn nack(&self, claimed: &Claimed, delay: Duration) -> Result<(), AsyncError>;

    /// The call failed for good: moves it to the dead letters with `reason`.
    async fn dead_letter(&self, claimed: &Claimed, stage: FailedStage, reason: String) -> Result<(), AsyncError>;

    /// Every dead letter, oldest first.
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, AsyncError>;

    /// Moves dead letter `id` back into the queue with its attempts reset;
    /// [`AsyncError::NotFound`] if there is none.
    async fn replay(&self, id: &str) -> Result<QueuedCall, AsyncError>;

    /// The largest request body this backend can hold, when that is less
    /// than any configured limit: the bytes, and what sets them, in words
    /// (for the 413's message). `None`: only the API's limit applies.
    fn body_limit(&self) -> Option<(u64, String)> {
        None
    }

    /// How often a worker holding a claim must call [`Queue::keep_alive`]
    /// so the call is not handed to another worker; `None` if never.
    fn keep_alive_interval(&self) -> Option<Duration> {
        None
    }

    /// Tells the queue the claim's worker is still busy with it.
    async fn keep_alive(&self, _claimed: &Claimed) -> Result<(), AsyncError> {
        Ok(())
    }
}
