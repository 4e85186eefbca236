//! The one error type every provider returns, and its HTTP status mapping.

use http::StatusCode;

/// A boxed error usable as a `#[source]`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used throughout the platform.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a client of the platform can act on.
///
/// Each variant maps to exactly one HTTP status code in [`Error::status`];
/// the HTTP API uses that mapping and nothing else. Providers convert their
/// private error enums into this type with one `From` impl each, keeping the
/// underlying cause in [`Error::Backend`]'s `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named object (function, secret, namespace) does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// What was looked for: `function`, `secret`, `namespace`.
        kind: &'static str,
        /// The name that was looked for (with its namespace where one applies).
        name: String,
    },
    /// An object with this name exists already.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// What was being created: `function`, `secret`, `namespace`.
        kind: &'static str,
        /// The name that is taken.
        name: String,
    },
    /// The input broke a rule; `field` names the offending field.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field (JSON name, or `body` for malformed JSON).
        field: String,
        /// The rule that was broken, in words.
        reason: String,
    },
    /// A request body was larger than the route accepts.
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The provider does not support this operation; see
    /// [`crate::Capabilities`].
    #[error("{operation} is not supported by the {provider} provider")]
    Unsupported {
        /// The provider's name.
        provider: String,
        /// The operation, in words (`secrets`, `namespace creation`, ...).
        operation: String,
    },
    /// The backend refused the operation: the platform's own identity lacks
    /// the permission (RBAC), or a quota of the backend is exhausted. The
    /// caller cannot fix this by retrying; an operator can.
    #[error("{provider} backend refused the operation: {reason}")]
    Forbidden {
        /// The provider's name.
        provider: String,
        /// What was refused and why, in the backend's words.
        reason: String,
    },
    /// The function is at its concurrency limit and cannot take the call now.
    #[error("function {function:?} is at its concurrency limit")]
    Overloaded {
        /// The function's name.
        function: String,
    },
    /// The backend (orchestrator, daemon, API server) cannot be reached or
    /// is not ready.
    #[error("{provider} backend unavailable: {reason}")]
    Unavailable {
        /// The provider's name.
        provider: String,
        /// Why, in words.
        reason: String,
        /// The underlying cause, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The backend's storage is full (no space left, a quota reached):
    /// the state could not be written and nothing was changed. Retrying
    /// helps once an operator frees space.
    #[error("{provider} backend is out of storage: {reason}")]
    InsufficientStorage {
        /// The provider's name.
        provider: String,
        /// What could not be written, in words.
        reason: String,
        /// The underlying cause, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The operation or the function call did not finish in time.
    #[error("{what} timed out after {seconds:.3}s")]
    Timeout {
        /// What timed out (`function call`, `scale`, ...).
        what: String,
        /// The limit that was hit, in seconds.
        seconds: f64,
    },
    /// The backend failed in a way the caller cannot fix (the function
    /// crashed, the orchestrator returned an error).
    #[error("{provider} backend error: {message}")]
    Backend {
        /// The provider's name.
        provider: String,
        /// What failed, in words.
        message: String,
        /// The underlying cause, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// `NotFound` for a function, naming it with its namespace.
    pub fn function_not_found(name: &str, namespace: &str) -> Self {
        Error::NotFound { kind: "function", name: format!("{name}.{namespace}") }
    }

    /// `Invalid` for `field` with `reason`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid { field: field.into(), reason: reason.into() }
    }

    /// `Unsupported` for `operation` on `provider`.
    pub fn unsupported(provider: impl Into<String>, operation: impl Into<String>) -> Self {
        Error::Unsupported { provider: provider.into(), operation: operation.into() }
    }

    /// `Forbidden` for `provider` with the backend's reason.
    pub fn forbidden(provider: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Forbidden { provider: provider.into(), reason: reason.into() }
    }

    /// `Backend` with a message and an optional cause.
    pub fn backend(
        provider: impl Into<String>,
        message: impl Into<String>,
        source: impl Into<Option<BoxError>>,
    ) -> Self {
        Error::Backend { provider: provider.into(), message: message.into(), source: source.into() }
    }

    /// `Unavailable` with a reason and an optional cause.
    pub fn unavailable(
        provider: impl Into<String>,
        reason: impl Into<String>,
        source: impl Into<Option<BoxError>>,
    ) -> Self {
        Error::Unavailable { provider: provider.into(), reason: reason.into(), source: source.into() }
    }

    /// The HTTP status this error is served with. This is the only place
    /// the mapping is defined.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::AlreadyExists { .. } => StatusCode::CONFLICT,
            Error::Invalid { .. } => StatusCode::BAD_REQUEST,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unsupported { .. } => StatusCode::NOT_IMPLEMENTED,
            Error::Forbidden { .. } => StatusCode::FORBIDDEN,
            Error::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::InsufficientStorage { .. } => StatusCode::INSUFFICIENT_STORAGE,
            Error::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Error::Backend { .. } => StatusCode::BAD_GATEWAY,
        }
    }

    /// The message served to clients: this error's `Display` followed by
    /// the chain of its sources, so the cause is never lost.
    pub fn message(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(err) = cause {
            let text = err.to_string();
            if !out.contains(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            cause = err.source();
        }
        out
    }
}

/// An error and its causes on one line (`outer: cause: root cause`), for
/// logs and messages: the one way every crate spells a source chain.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(source) = cause {
        out.push_str(": ");
        out.push_str(&source.to_string());
        cause = source.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_own_status() {
        let cases = [
            (Error::function_not_found("f", "ns"), 404),
            (Error::AlreadyExists { kind: "function", name: "f".into() }, 409),
            (Error::invalid("service", "must not be empty"), 400),
            (Error::PayloadTooLarge { limit: 10 }, 413),
            (Error::unsupported("local", "secrets"), 501),
            (Error::forbidden("k8s", "cannot create deployments"), 403),
            (Error::Overloaded { function: "f".into() }, 429),
            (Error::unavailable("swarm", "daemon down", None), 503),
            (Error::Timeout { what: "function call".into(), seconds: 1.0 }, 504),
            (Error::InsufficientStorage { provider: "local".into(), reason: "disk full".into(), source: None }, 507),
            (Error::backend("swarm", "task failed", None), 502),
        ];
        for (err, code) in cases {
            assert_eq!(err.status().as_u16(), code, "{err}");
        }
    }

    #[test]
    fn message_carries_the_source_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let err = Error::unavailable("swarm", "cannot reach the Docker engine", Some(Box::new(io) as BoxError));
        assert_eq!(err.message(), "swarm backend unavailable: cannot reach the Docker engine: connection refused");
        assert_eq!(Error::invalid("service", "bad").message(), "invalid service: bad");
        assert_eq!(error_chain(&err), "swarm backend unavailable: cannot reach the Docker engine: connection refused");
    }
}
