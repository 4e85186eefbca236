//! What can go wrong forwarding a call, and its one mapping to
//! [`faas_core::Error`].

use faas_core::{BoxError, Error};

/// A failure forwarding a call to a function's instances.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// No instance accepted a connection (in time): 503.
    #[error("no instance of {function} is reachable: {reason}")]
    Unreachable {
        /// The function.
        function: String,
        /// Each instance and why it was not reached, or that there was none.
        reason: String,
    },
    /// An instance was reached but the call failed: 502.
    #[error("the call to {function} at {target} failed")]
    Failed {
        /// The function.
        function: String,
        /// The instance's address.
        target: String,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// No response within the call's time limit: 504.
    #[error("the call to {function} timed out after {seconds:.3}s")]
    TimedOut {
        /// The function.
        function: String,
        /// The limit, in seconds.
        seconds: f64,
    },
    /// The path cannot be forwarded: 400.
    #[error("cannot forward {path:?} to {function}: {reason}")]
    BadPath {
        /// The function.
        function: String,
        /// The path and query that were asked for.
        path: String,
        /// Why it is not a valid request target.
        reason: String,
    },
}

impl UpstreamError {
    /// The platform error, `provider` naming the backend: the same status
    /// and wording whichever provider forwarded the call.
    pub fn into_error(self, provider: &str) -> Error {
        match self {
            err @ UpstreamError::Unreachable { .. } => Error::unavailable(provider, err.to_string(), None),
            UpstreamError::TimedOut { seconds, .. } => Error::Timeout { what: "function call".into(), seconds },
            err @ UpstreamError::BadPath { .. } => Error::invalid("path", err.to_string()),
            err @ UpstreamError::Failed { .. } => {
                Error::backend(provider, err.to_string(), Some(Box::new(err) as BoxError))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_status_and_names_the_provider() {
        let unreachable = UpstreamError::Unreachable { function: "f.ns".into(), reason: "no running instance".into() };
        let err = unreachable.into_error("swarm");
        assert_eq!(err.status(), 503);
        assert_eq!(err.message(), "swarm backend unavailable: no instance of f.ns is reachable: no running instance");
        let failed =
            UpstreamError::Failed { function: "f.ns".into(), target: "10.0.0.1:8080".into(), source: "reset".into() };
        let err = failed.into_error("cattle");
        assert_eq!(err.status(), 502);
        assert_eq!(err.message(), "cattle backend error: the call to f.ns at 10.0.0.1:8080 failed: reset");
        assert_eq!(UpstreamError::TimedOut { function: "f".into(), seconds: 1.5 }.into_error("k8s").status(), 504);
        let bad = UpstreamError::BadPath { function: "f".into(), path: "x".into(), reason: "no".into() };
        assert_eq!(bad.into_error("k8s").status(), 400);
    }
}
