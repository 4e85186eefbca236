//! # faas-async
//!
//! Asynchronous function calls for the gateway: `POST /async-function/{name}`
//! answers 202 with an `X-Call-Id` once the whole request is persisted;
//! workers run it later through the same [`faas_core::Provider::invoke`]
//! path as synchronous calls (so the scaling layer's scale from zero
//! applies), retry it with exponential backoff and jitter on 429, 502, 503,
//! 504 and connection errors, post the function's response to the caller's
//! `X-Callback-Url`, and keep calls that failed for good as dead letters
//! that can be listed and replayed.
//!
//! - [`Queue`]: the durable queue contract (at least once).
//! - [`EmbeddedQueue`]: the queue in one [`redb`] file in the gateway's
//!   state directory; survives a crash.
//! - [`JetStreamQueue`]: the queue in NATS JetStream, for several
//!   gateways sharing one queue.
//! - [`Dispatcher`]: the workers, per-function concurrency
//!   ([`CONCURRENCY_LABEL`]) and attempts ([`MAX_ATTEMPTS_LABEL`]).
//! - [`api::router`]: the HTTP routes, merged into the gateway's router.
//! - [`AsyncMetrics`]: Prometheus metrics per function.
//! - [`Replier`]: where the answers of calls carrying
//!   [`REPLY_SUBJECT_HEADER`] go (the NATS triggers' reply subjects).
//! - [`CallObserver`]: hears what each attempt came to (the triggers' last
//!   outcome).
//!
//! A call runs at least once: a gateway killed while calls are queued or in
//! flight runs them (again) when it restarts, so a callback may arrive
//! twice; `gateway_async_redelivered_total` counts such reruns.

pub mod api;
mod call;
mod callback;
mod config;
mod dispatcher;
mod embedded;
mod error;
mod jetstream;
mod metrics;
mod observe;
mod queue;
mod reply;

pub use call::{Claimed, DeadLetter, DeadLetterSummary, FailedStage, QueuedCall};
pub use callback::{
    parse_callback_url, FunctionResponse, CALLBACK_URL_HEADER, FUNCTION_NAME_HEADER, FUNCTION_STATUS_HEADER,
};
pub use config::{Backoff, DispatcherConfig, FunctionSettings, CONCURRENCY_LABEL, MAX_ATTEMPTS_LABEL};
pub use dispatcher::{is_retryable, Dispatcher, DispatcherHandle};
pub use embedded::{EmbeddedQueue, DATABASE_FILE, DEFAULT_LEASE_TIMEOUT};
pub use error::AsyncError;
pub use jetstream::{JetStreamConfig, JetStreamQueue};
pub use metrics::AsyncMetrics;
pub use observe::{Attempted, CallObserver};
pub use queue::Queue;
pub use reply::{Replier, REPLY_SUBJECT_HEADER};
