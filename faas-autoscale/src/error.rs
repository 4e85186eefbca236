//! The scaling layer's own errors, and how they reach clients.

use std::time::Duration;

use faas_core::FunctionRef;

/// The name the layer gives itself in `Unavailable` errors.
pub(crate) const LAYER: &str = "autoscale";

/// What the scaling layer itself can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScaleError {
    /// A scaling label has a value the layer cannot use.
    #[error("label {label}: {reason}")]
    Label {
        /// The label's key.
        label: &'static str,
        /// The rule that was broken.
        reason: String,
    },
    /// A held call's wait for a ready replica hit the hold timeout.
    #[error("function {function} is starting: no replica became ready within the hold timeout ({last})")]
    StartTimeout {
        /// The function.
        function: FunctionRef,
        /// How long the call was held.
        waited: Duration,
        /// The last status seen, in words.
        last: String,
    },
    /// Too many calls are already held for this function.
    #[error("function {function} is starting and {held} calls are already waiting for it; retry shortly")]
    TooManyHeld {
        /// The function.
        function: FunctionRef,
        /// The bound on held calls.
        held: usize,
    },
    /// The scale-up itself failed.
    #[error("function {function} is starting but could not be scaled up: {reason}")]
    WakeFailed {
        /// The function.
        function: FunctionRef,
        /// The provider's error, in words.
        reason: String,
    },
}

impl ScaleError {
    pub(crate) fn label(label: &'static str, reason: impl Into<String>) -> Self {
        ScaleError::Label { label, reason: reason.into() }
    }
}

impl From<ScaleError> for faas_core::Error {
    fn from(err: ScaleError) -> Self {
        match err {
            ScaleError::Label { label, reason } => faas_core::Error::invalid(format!("labels.{label}"), reason),
            ScaleError::StartTimeout { waited, .. } => {
                faas_core::Error::Timeout { what: err.to_string(), seconds: waited.as_secs_f64() }
            }
            ScaleError::TooManyHeld { .. } | ScaleError::WakeFailed { .. } => {
                let reason = err.to_string();
                faas_core::Error::unavailable(LAYER, reason, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_its_status() {
        let f = FunctionRef::new("echo", "");
        let cases: [(ScaleError, u16, &str); 4] = [
            (ScaleError::label("com.openfaas.scale.max", "bad"), 400, "invalid labels.com.openfaas.scale.max: bad"),
            (
                ScaleError::StartTimeout { function: f.clone(), waited: Duration::from_secs(2), last: "x".into() },
                504,
                "function echo.openfaas-fn is starting",
            ),
            (ScaleError::TooManyHeld { function: f.clone(), held: 3 }, 503, "is starting and 3 calls"),
            (ScaleError::WakeFailed { function: f, reason: "down".into() }, 503, "is starting but could not"),
        ];
        for (err, status, words) in cases {
            let core = faas_core::Error::from(err);
            assert_eq!(core.status().as_u16(), status, "{core}");
            assert!(core.message().contains(words), "{}", core.message());
        }
    }
}
