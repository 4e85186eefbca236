//! The watchdog's own errors and their mapping onto [`faas_core::Error`].

use std::time::Duration;

use crate::config::ConfigError;

/// The name the watchdog uses as `provider` in [`faas_core::Error`].
pub(crate) const LAYER: &str = "watchdog";

/// What went wrong in the watchdog.
#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    /// The configuration cannot work.
    #[error("watchdog configuration: {0}")]
    Config(#[from] ConfigError),
    /// A process could not be started.
    #[error("could not start {program:?}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Too many calls in flight.
    #[error("{function} has {max} calls in flight already (max_inflight)")]
    Overloaded {
        /// The watchdog's name.
        function: String,
        /// The limit.
        max: usize,
    },
    /// The call ran past `exec_timeout`.
    #[error("function call exceeded exec_timeout")]
    Timeout {
        /// The limit.
        after: Duration,
    },
    /// No instance can take the call.
    #[error("{reason}")]
    Unavailable {
        /// Why, in words.
        reason: String,
    },
    /// The function's process failed during the call.
    #[error("{message}")]
    Backend {
        /// What failed.
        message: String,
        /// The cause, if any.
        #[source]
        source: Option<faas_core::BoxError>,
    },
}

impl WatchdogError {
    pub(crate) fn unavailable(reason: impl Into<String>) -> Self {
        WatchdogError::Unavailable { reason: reason.into() }
    }

    pub(crate) fn backend(message: impl Into<String>, source: impl Into<Option<faas_core::BoxError>>) -> Self {
        WatchdogError::Backend { message: message.into(), source: source.into() }
    }
}

impl From<WatchdogError> for faas_core::Error {
    fn from(err: WatchdogError) -> Self {
        match err {
            WatchdogError::Config(e) => e.into(),
            WatchdogError::Spawn { program, source } => {
                faas_core::Error::backend(LAYER, format!("could not start {program:?}"), Some(Box::new(source) as _))
            }
            WatchdogError::Overloaded { function, .. } => faas_core::Error::Overloaded { function },
            WatchdogError::Timeout { after } => {
                faas_core::Error::Timeout { what: "function call".into(), seconds: after.as_secs_f64() }
            }
            WatchdogError::Unavailable { reason } => faas_core::Error::unavailable(LAYER, reason, None),
            WatchdogError::Backend { message, source } => faas_core::Error::backend(LAYER, message, source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_its_status() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let cases = [
            (WatchdogError::Config(ConfigError::invalid("mode", "bad")), 400),
            (WatchdogError::Spawn { program: "x".into(), source: io }, 502),
            (WatchdogError::Overloaded { function: "f".into(), max: 1 }, 429),
            (WatchdogError::Timeout { after: Duration::from_secs(1) }, 504),
            (WatchdogError::unavailable("none ready"), 503),
            (WatchdogError::backend("crashed", None), 502),
        ];
        for (err, status) in cases {
            let core: faas_core::Error = err.into();
            assert_eq!(core.status().as_u16(), status, "{core}");
        }
        let core: faas_core::Error =
            WatchdogError::Spawn { program: "x".into(), source: std::io::Error::other("denied") }.into();
        assert_eq!(core.message(), "watchdog backend error: could not start \"x\": denied");
    }
}
