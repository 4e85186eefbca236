//! What can stop the gateway from starting or serving.

use std::io;
use std::path::PathBuf;

/// An error of the gateway itself: its configuration, its listener, its
/// provider's start-up. Printed by the binary with [`GatewayError::report`]
/// before it exits non-zero.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// `dirs::data_dir()` knows no data directory for this user.
    #[error("no data directory is known for this user (is HOME set?); pass --state-dir or set FAAS_STATE_DIR")]
    NoDataDir,
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why, in words.
        reason: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// Basic auth is on but a credentials file is missing, unreadable or
    /// empty.
    #[error("basic auth is on (--basic-auth / basic_auth=true) but {path} {problem}")]
    BasicAuth {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// `--provider` names a provider this binary does not contain.
    #[error("provider {requested:?} is not compiled into this gateway; available: {available}")]
    UnknownProvider {
        /// What was asked for.
        requested: String,
        /// The compiled-in providers, comma-separated.
        available: String,
    },
    /// Several non-local providers are compiled in and none was chosen.
    #[error("several providers are compiled in ({available}); choose one with --provider or FAAS_PROVIDER")]
    AmbiguousProvider {
        /// The compiled-in providers, comma-separated.
        available: String,
    },
    /// The provider failed to start.
    #[error("cannot start the {provider} provider")]
    Provider {
        /// The provider's name.
        provider: &'static str,
        /// Its error.
        #[source]
        source: faas_core::Error,
    },
    /// The asynchronous call queue could not be opened.
    #[error("cannot open the {kind} asynchronous call queue")]
    AsyncQueue {
        /// `embedded` or `nats`.
        kind: &'static str,
        /// Its error.
        #[source]
        source: faas_async::AsyncError,
    },
    /// A flag's value cannot be used with the provider chosen.
    #[error("{flag} {value}: {reason}")]
    Flag {
        /// The flag, as typed (`--scale-type`).
        flag: &'static str,
        /// Its value.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The triggers' tick log or NATS connection could not be opened.
    #[error("cannot start the triggers: {reason}")]
    Triggers {
        /// Why, in words.
        reason: String,
    },
    /// A socket or signal operation failed while serving.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl GatewayError {
    /// A bind failure on `addr`, worded for the common causes.
    pub fn bind(addr: &str, source: io::Error) -> Self {
        let reason = match source.kind() {
            io::ErrorKind::AddrInUse => "the address is already in use (is another gateway running?)".to_owned(),
            io::ErrorKind::PermissionDenied => "permission denied (ports below 1024 need privileges)".to_owned(),
            io::ErrorKind::AddrNotAvailable => "the address is not available on this machine".to_owned(),
            _ => "the address cannot be bound".to_owned(),
        };
        GatewayError::Bind { addr: addr.to_owned(), reason, source }
    }

    /// This error's message followed by its chain of causes, each once.
    pub fn report(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(err) = cause {
            let text = match err.downcast_ref::<faas_core::Error>() {
                Some(core) => core.message(),
                None => err.to_string(),
            };
            if !out.contains(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            if err.is::<faas_core::Error>() {
                break;
            }
            cause = err.source();
        }
        out
    }
}

impl From<GatewayError> for faas_core::Error {
    fn from(err: GatewayError) -> Self {
        match err {
            GatewayError::Provider { source, .. } => source,
            GatewayError::BasicAuth { ref path, .. } => {
                faas_core::Error::invalid(path.display().to_string(), err.to_string())
            }
            GatewayError::UnknownProvider { .. } | GatewayError::AmbiguousProvider { .. } => {
                faas_core::Error::invalid("provider", err.to_string())
            }
            GatewayError::NoDataDir => faas_core::Error::invalid("state-dir", err.to_string()),
            GatewayError::Flag { flag, .. } => faas_core::Error::invalid(flag.trim_start_matches('-'), err.to_string()),
            GatewayError::Bind { .. }
            | GatewayError::Io { .. }
            | GatewayError::AsyncQueue { .. }
            | GatewayError::Triggers { .. } => {
                let reason = err.to_string();
                faas_core::Error::unavailable("gateway", reason, Some(Box::new(err) as faas_core::BoxError))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_carry_the_cause_once() {
        let err = GatewayError::bind("127.0.0.1:1", io::Error::from(io::ErrorKind::AddrInUse));
        let report = err.report();
        assert!(report.starts_with("cannot listen on 127.0.0.1:1: the address is already in use"), "{report}");
        let err = GatewayError::Provider {
            provider: "local",
            source: faas_core::Error::unavailable("local", "state directory /x is in use by another gateway", None),
        };
        assert_eq!(
            err.report(),
            "cannot start the local provider: local backend unavailable: state directory /x is in use by another gateway"
        );
    }

    #[test]
    fn converts_to_the_core_error_by_kind() {
        let core: faas_core::Error = GatewayError::bind("x", io::Error::from(io::ErrorKind::AddrInUse)).into();
        assert_eq!(core.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        let core: faas_core::Error =
            GatewayError::UnknownProvider { requested: "nomad".into(), available: "local".into() }.into();
        assert_eq!(core.status(), http::StatusCode::BAD_REQUEST);
    }
}
