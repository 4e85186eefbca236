//! This crate's own errors, and how they become platform errors.

/// What went wrong in the asynchronous call layer.
#[derive(Debug, thiserror::Error)]
pub enum AsyncError {
    /// The embedded store failed (disk, corruption, lock).
    #[error("embedded queue store failed to {what}")]
    Store {
        /// The operation that failed.
        what: &'static str,
        /// The store's error.
        #[source]
        source: Box<redb::Error>,
    },
    /// A stored record could not be encoded or decoded.
    #[error("queue record {id:?} could not be encoded or decoded")]
    Record {
        /// The call's id.
        id: String,
        /// The encoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The NATS server or JetStream failed.
    #[error("NATS JetStream queue failed to {what}")]
    Nats {
        /// The operation that failed.
        what: &'static str,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The call is larger than the queue can hold (served as 413).
    #[error("{message}")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
        /// What was too large and what sets the limit, in words.
        message: String,
    },
    /// A blocking store task did not finish.
    #[error("queue store task failed")]
    Task(#[source] tokio::task::JoinError),
    /// No dead letter with this id.
    #[error("dead letter {0:?} not found")]
    NotFound(String),
    /// A label or setting holds a value this layer cannot use.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The label or setting.
        field: String,
        /// Why.
        reason: String,
    },
}

impl AsyncError {
    pub(crate) fn store(what: &'static str, source: impl Into<redb::Error>) -> Self {
        AsyncError::Store { what, source: Box::new(source.into()) }
    }
}

impl From<AsyncError> for faas_core::Error {
    fn from(err: AsyncError) -> Self {
        match err {
            AsyncError::NotFound(id) => faas_core::Error::NotFound { kind: "dead letter", name: id },
            AsyncError::Invalid { field, reason } => faas_core::Error::Invalid { field, reason },
            AsyncError::TooLarge { limit, .. } => faas_core::Error::PayloadTooLarge { limit },
            other => {
                faas_core::Error::unavailable("async queue", "the queue cannot be used", Some(Box::new(other) as _))
            }
        }
    }
}
