//! What became of each invocation attempt, for whoever wants to know: the
//! dispatcher tells its [`CallObserver`] (faas-triggers shows it as a
//! trigger's last outcome in `GET /system/triggers`).

use http::StatusCode;

use crate::call::QueuedCall;

/// What one invocation attempt of a queued call came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempted {
    /// The function answered with `status` (any status but the retryable
    /// ones) after `seconds`; a platform error that will not be retried
    /// (404, 400, ...) counts as an answer too.
    Answered {
        /// The status the call ended with.
        status: StatusCode,
        /// How long the attempt took.
        seconds: f64,
    },
    /// The attempt failed in a way worth retrying, and the call will run
    /// again after its backoff.
    Retrying {
        /// The attempt that failed, counted from 1.
        attempt: u32,
        /// Why, in words.
        reason: String,
    },
    /// The last allowed attempt failed: the call went to the dead letters.
    DeadLettered {
        /// Why, in words.
        reason: String,
    },
}

/// Hears about every invocation attempt the dispatcher settles. Called on
/// the dispatcher's worker: keep it quick and never block.
pub trait CallObserver: Send + Sync + 'static {
    /// `call` was attempted with this result.
    fn attempted(&self, call: &QueuedCall, result: &Attempted);
}
