//! The provider's own failures, and how they reach clients as [`faas_core::Error`].

use std::path::PathBuf;

use faas_core::Error;

/// The name this provider reports in errors and in `/system/info`.
pub(crate) const PROVIDER: &str = "local";

/// What went wrong inside the local provider.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LocalError {
    /// A file or directory of the state dir could not be read or written.
    #[error("local state: cannot {action} {path}")]
    Io {
        /// What was being done (`write`, `read`, `create directory`, ...).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A state file holds something that is not what it should.
    #[error("local state: {path} is not a valid {what}")]
    Corrupt {
        /// What the file should hold (`function record`, `namespace`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Another gateway holds the state dir's lock.
    #[error("state directory {dir} is in use by another gateway ({holder})")]
    Locked {
        /// The state dir.
        dir: PathBuf,
        /// `pid N`, or `unknown pid` when the lock file says nothing usable.
        holder: String,
    },
    /// Taking the lock failed for another reason than it being held.
    #[error("cannot lock state directory {dir}")]
    LockFailed {
        /// The state dir.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: nix::errno::Errno,
    },
    /// The sandbox was required and a feature of it is missing.
    #[error(transparent)]
    Sandbox(#[from] faas_watchdog::sandbox::SandboxError),
    /// The provider was shut down and takes no more requests.
    #[error("the local provider is shut down")]
    ShutDown,
    /// A blocking state-dir task panicked or was cancelled.
    #[error("local state: background task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl From<LocalError> for Error {
    fn from(err: LocalError) -> Self {
        match err {
            LocalError::Locked { .. } | LocalError::ShutDown | LocalError::Sandbox(_) => {
                Error::unavailable(PROVIDER, err.to_string(), None)
            }
            LocalError::LockFailed { source, .. } => {
                Error::unavailable(PROVIDER, err.to_string(), Some(Box::new(source) as faas_core::BoxError))
            }
            LocalError::Io { ref source, .. } if out_of_space(source) => Error::InsufficientStorage {
                provider: PROVIDER.to_owned(),
                reason: err.to_string(),
                source: Some(Box::new(err) as faas_core::BoxError),
            },
            other => Error::backend(PROVIDER, other.to_string(), Some(Box::new(other) as faas_core::BoxError)),
        }
    }
}

/// Whether `err` says the file system is full (no space left, or a disk
/// quota reached).
fn out_of_space(err: &std::io::Error) -> bool {
    matches!(err.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
}

/// Shorthand for an [`LocalError::Io`] builder used with `map_err`.
pub(crate) fn io_err(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LocalError {
    let path = path.into();
    move |source| LocalError::Io { action, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_is_unavailable_and_names_the_pid() {
        let err: Error = LocalError::Locked { dir: "/x".into(), holder: "pid 123".into() }.into();
        assert_eq!(err.status().as_u16(), 503);
        assert_eq!(
            err.to_string(),
            "local backend unavailable: state directory /x is in use by another gateway (pid 123)"
        );
    }

    #[test]
    fn a_full_file_system_is_insufficient_storage_naming_the_file() {
        let io = std::io::Error::from_raw_os_error(nix::libc::ENOSPC);
        let err: Error = io_err("write", "/s/f.json")(io).into();
        assert_eq!(err.status().as_u16(), 507);
        assert!(err.message().contains("cannot write /s/f.json"), "{}", err.message());
        assert!(err.message().contains("No space left on device"), "{}", err.message());
    }

    #[test]
    fn io_failures_are_backend_errors_keeping_the_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let err: Error = io_err("write", "/s/f.json")(io).into();
        assert_eq!(err.status().as_u16(), 502);
        assert!(err.message().contains("cannot write /s/f.json"), "{}", err.message());
        assert!(err.message().contains("permission denied"), "{}", err.message());
    }
}
