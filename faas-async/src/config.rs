//! Settings: the dispatcher's, the backoff, and the per-function labels.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::AsyncError;

/// Label: how many calls of this function the workers run at once (1–1024,
/// default [`DispatcherConfig::default_concurrency`]).
pub const CONCURRENCY_LABEL: &str = "com.openfaas.async.concurrency";
/// Label: how many invocation attempts a call gets before it is
/// dead-lettered (1–100, default [`DispatcherConfig::default_max_attempts`]).
pub const MAX_ATTEMPTS_LABEL: &str = "com.openfaas.async.max-attempts";

/// Exponential backoff with jitter: attempt `n` (from 1) waits a random
/// time between half and all of `min(cap, base × 2^(n-1))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first retry (before jitter).
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_millis(500), cap: Duration::from_secs(30) }
    }
}

impl Backoff {
    /// The delay after failed attempt `attempt` (1 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1u32 << exponent).min(self.cap);
        let half = full / 2;
        // Jitter from a v4 UUID's random bits: no extra dependency.
        let random = uuid::Uuid::new_v4().as_u128() as u64;
        let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 { 0 } else { random % (spread + 1) };
        half + Duration::from_millis(jitter)
    }
}

/// How the dispatcher works.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// The most calls claimed for invocation at once across all functions
    /// (waiting for their function's concurrency or running; calls whose
    /// callback is being delivered do not count). Default 64.
    pub max_claimed: usize,
    /// The most callbacks being delivered at once (attempts and the
    /// backoff between them), across all functions. Default 128.
    pub callback_concurrency: usize,
    /// Concurrency per function without [`CONCURRENCY_LABEL`]. Default 8.
    pub default_concurrency: usize,
    /// Attempts per call without [`MAX_ATTEMPTS_LABEL`]. Default 5.
    pub default_max_attempts: u32,
    /// The delay between invocation attempts, and between callback attempts.
    pub backoff: Backoff,
    /// Attempts to deliver a callback before the call is dead-lettered
    /// with stage `callback`. Default 3.
    pub callback_attempts: u32,
    /// How long one callback attempt may take. Default 10s.
    pub callback_timeout: Duration,
    /// The largest function response kept for the callback, in bytes
    /// (beyond, the callback carries a 502 from the platform). Default 64 MiB.
    pub max_response_bytes: u64,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            max_claimed: 64,
            callback_concurrency: 128,
            default_concurrency: 8,
            default_max_attempts: 5,
            backoff: Backoff::default(),
            callback_attempts: 3,
            callback_timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024 * 1024,
        }
    }
}

/// One function's asynchronous settings, from its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSettings {
    /// Calls run at once.
    pub concurrency: usize,
    /// Invocation attempts per call.
    pub max_attempts: u32,
}

impl FunctionSettings {
    /// Reads the labels, with `config`'s defaults for absent ones; a label
    /// present with a bad value is an error naming it.
    pub fn from_labels(
        labels: Option<&BTreeMap<String, String>>,
        config: &DispatcherConfig,
    ) -> Result<FunctionSettings, AsyncError> {
        let concurrency = match labels.and_then(|l| l.get(CONCURRENCY_LABEL)) {
            Some(value) => parse_in(CONCURRENCY_LABEL, value, 1, 1024)? as usize,
            None => config.default_concurrency,
        };
        let max_attempts = match labels.and_then(|l| l.get(MAX_ATTEMPTS_LABEL)) {
            Some(value) => parse_in(MAX_ATTEMPTS_LABEL, value, 1, 100)? as u32,
            None => config.default_max_attempts,
        };
        Ok(FunctionSettings { concurrency, max_attempts })
    }
}

fn parse_in(label: &str, value: &str, min: u64, max: u64) -> Result<u64, AsyncError> {
    let invalid = || AsyncError::Invalid {
        field: format!("labels.{label}"),
        reason: format!("{value:?} is not a whole number from {min} to {max}"),
    };
    let number: u64 = value.trim().parse().map_err(|_| invalid())?;
    if !(min..=max).contains(&number) {
        return Err(invalid());
    }
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_the_cap() {
        let backoff = Backoff { base: Duration::from_millis(100), cap: Duration::from_millis(1000) };
        for _ in 0..50 {
            let first = backoff.delay(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let third = backoff.delay(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400), "{third:?}");
            let late = backoff.delay(40);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1000), "{late:?}");
        }
        let zero = Backoff { base: Duration::ZERO, cap: Duration::ZERO };
        assert_eq!(zero.delay(3), Duration::ZERO);
    }

    #[test]
    fn labels_override_defaults_and_bad_values_are_refused() {
        let config = DispatcherConfig::default();
        assert_eq!(
            FunctionSettings::from_labels(None, &config).unwrap(),
            FunctionSettings { concurrency: 8, max_attempts: 5 }
        );
        let labels = BTreeMap::from([
            (CONCURRENCY_LABEL.to_owned(), "2".to_owned()),
            (MAX_ATTEMPTS_LABEL.to_owned(), " 3 ".to_owned()),
        ]);
        assert_eq!(
            FunctionSettings::from_labels(Some(&labels), &config).unwrap(),
            FunctionSettings { concurrency: 2, max_attempts: 3 }
        );
        for (label, bad) in [(CONCURRENCY_LABEL, "0"), (CONCURRENCY_LABEL, "lots"), (MAX_ATTEMPTS_LABEL, "101")] {
            let labels = BTreeMap::from([(label.to_owned(), bad.to_owned())]);
            match FunctionSettings::from_labels(Some(&labels), &config) {
                Err(AsyncError::Invalid { field, .. }) => assert_eq!(field, format!("labels.{label}")),
                other => panic!("{label}={bad}: {other:?}"),
            }
        }
    }
}
