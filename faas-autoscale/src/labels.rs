//! Per-function scaling settings, read from the function's labels under
//! OpenFaaS's names.

use std::collections::BTreeMap;
use std::time::Duration;

use faas_core::validate::MAX_REPLICAS;

use crate::error::ScaleError;
use faas_core::duration;

/// Fewest replicas while the function is in use (default 1, at least 1).
pub const SCALE_MIN: &str = "com.openfaas.scale.min";
/// Most replicas the autoscaler sets (default 20, at most 1000).
pub const SCALE_MAX: &str = "com.openfaas.scale.max";
/// In-flight calls one replica is meant to take (default 50, at least 1).
pub const SCALE_TARGET: &str = "com.openfaas.scale.target";
/// `true` lets the idler scale the function to zero (default `false`).
pub const SCALE_ZERO: &str = "com.openfaas.scale.zero";
/// How long the function must be idle before it is scaled to zero
/// (default `15m`; seconds or a duration such as `30s`, `15m`, `1h`).
pub const SCALE_ZERO_DURATION: &str = "com.openfaas.scale.zero-duration";

/// How one function is scaled, from its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleSettings {
    /// Fewest replicas while the function is in use; also what a scale
    /// from zero starts.
    pub min: u64,
    /// Most replicas the autoscaler sets.
    pub max: u64,
    /// In-flight calls per replica the autoscaler aims for.
    pub target: u64,
    /// Whether an idle function is scaled to zero.
    pub zero: bool,
    /// Idle time before scaling to zero.
    pub zero_duration: Duration,
}

impl ScaleSettings {
    /// The default `com.openfaas.scale.min`.
    pub const DEFAULT_MIN: u64 = 1;
    /// The default `com.openfaas.scale.max`.
    pub const DEFAULT_MAX: u64 = 20;
    /// The default `com.openfaas.scale.target`.
    pub const DEFAULT_TARGET: u64 = 50;
    /// The default `com.openfaas.scale.zero-duration`.
    pub const DEFAULT_ZERO_DURATION: Duration = Duration::from_secs(15 * 60);

    /// Reads the settings from `labels`, refusing any bad value with
    /// `Invalid` naming the label (`labels.com.openfaas.scale.max`) and the
    /// rule. An absent label takes its default; an absent max is raised to
    /// the min when the min is above 20.
    pub fn from_labels(labels: Option<&BTreeMap<String, String>>) -> faas_core::Result<ScaleSettings> {
        let get = |key: &str| labels.and_then(|l| l.get(key)).map(|v| v.trim()).filter(|v| !v.is_empty());
        let min = match get(SCALE_MIN) {
            Some(text) => parse_count(SCALE_MIN, text, 1)?,
            None => Self::DEFAULT_MIN,
        };
        let max = match get(SCALE_MAX) {
            Some(text) => parse_count(SCALE_MAX, text, 1)?,
            None => Self::DEFAULT_MAX.max(min),
        };
        if min > max {
            return Err(ScaleError::label(SCALE_MIN, format!("{min} is above {SCALE_MAX} ({max})")).into());
        }
        let target = match get(SCALE_TARGET) {
            Some(text) => parse_count(SCALE_TARGET, text, 1)?,
            None => Self::DEFAULT_TARGET,
        };
        let zero = match get(SCALE_ZERO) {
            Some(text) => parse_bool(text)?,
            None => false,
        };
        let zero_duration = match get(SCALE_ZERO_DURATION) {
            Some(text) => {
                let value = duration::parse(text).map_err(|e| ScaleError::label(SCALE_ZERO_DURATION, e.to_string()))?;
                if value.is_zero() {
                    return Err(ScaleError::label(SCALE_ZERO_DURATION, "must be longer than zero").into());
                }
                value
            }
            None => Self::DEFAULT_ZERO_DURATION,
        };
        Ok(ScaleSettings { min, max, target, zero, zero_duration })
    }

    /// Like [`ScaleSettings::from_labels`], but a bad value falls back to
    /// the defaults (logged at `warn`): for functions deployed without this
    /// layer, which nobody validated.
    pub fn lenient(labels: Option<&BTreeMap<String, String>>) -> ScaleSettings {
        match ScaleSettings::from_labels(labels) {
            Ok(settings) => settings,
            Err(err) => {
                tracing::warn!(error = %err.message(), "ignoring bad scaling labels; using the defaults");
                ScaleSettings::default()
            }
        }
    }

    /// The replicas a scale from zero starts: the min, at least 1.
    pub fn wake_replicas(&self) -> u64 {
        self.min.max(1)
    }
}

impl Default for ScaleSettings {
    fn default() -> Self {
        ScaleSettings {
            min: Self::DEFAULT_MIN,
            max: Self::DEFAULT_MAX,
            target: Self::DEFAULT_TARGET,
            zero: false,
            zero_duration: Self::DEFAULT_ZERO_DURATION,
        }
    }
}

fn parse_count(label: &'static str, text: &str, least: u64) -> Result<u64, ScaleError> {
    let value: u64 = text.parse().map_err(|_| ScaleError::label(label, format!("{text:?} is not a whole number")))?;
    if value < least {
        let hint =
            if label == SCALE_MIN { format!("; set {SCALE_ZERO}=true to let it scale to zero") } else { String::new() };
        return Err(ScaleError::label(label, format!("{value} is below {least}{hint}")));
    }
    if value > MAX_REPLICAS && label != SCALE_TARGET {
        return Err(ScaleError::label(label, format!("{value} is more than the maximum of {MAX_REPLICAS} replicas")));
    }
    Ok(value)
}

fn parse_bool(text: &str) -> Result<bool, ScaleError> {
    faas_core::validate::boolean(SCALE_ZERO, text)
        .map_err(|_| ScaleError::label(SCALE_ZERO, format!("{text:?} is not true or false")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn invalid(pairs: &[(&str, &str)]) -> (String, String) {
        match ScaleSettings::from_labels(Some(&labels(pairs))) {
            Err(faas_core::Error::Invalid { field, reason }) => (field, reason),
            other => panic!("{pairs:?}: expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn defaults_without_labels() {
        let settings = ScaleSettings::from_labels(None).unwrap();
        assert_eq!(settings, ScaleSettings::default());
        assert_eq!((settings.min, settings.max, settings.target, settings.zero), (1, 20, 50, false));
        assert_eq!(settings.zero_duration, Duration::from_secs(900));
        assert_eq!(ScaleSettings::from_labels(Some(&labels(&[("team", "web")]))).unwrap(), settings);
    }

    #[test]
    fn every_label_is_read() {
        let settings = ScaleSettings::from_labels(Some(&labels(&[
            (SCALE_MIN, "2"),
            (SCALE_MAX, " 5 "),
            (SCALE_TARGET, "10"),
            (SCALE_ZERO, "TRUE"),
            (SCALE_ZERO_DURATION, "1m30s"),
        ])))
        .unwrap();
        let expected = ScaleSettings { min: 2, max: 5, target: 10, zero: true, zero_duration: Duration::from_secs(90) };
        assert_eq!(settings, expected);
        let plain = ScaleSettings::from_labels(Some(&labels(&[(SCALE_ZERO_DURATION, "30")]))).unwrap();
        assert_eq!(plain.zero_duration, Duration::from_secs(30));
        let high_min = ScaleSettings::from_labels(Some(&labels(&[(SCALE_MIN, "30")]))).unwrap();
        assert_eq!((high_min.min, high_min.max), (30, 30), "an absent max follows a min above 20");
    }

    #[test]
    fn bad_values_name_their_label() {
        type Labels<'a> = &'a [(&'a str, &'a str)];
        // (labels, the label named, words of the reason)
        let cases: &[(Labels<'_>, &str, &str)] = &[
            (&[(SCALE_MIN, "0")], SCALE_MIN, "below 1"),
            (&[(SCALE_MIN, "-1")], SCALE_MIN, "whole number"),
            (&[(SCALE_MIN, "many")], SCALE_MIN, "whole number"),
            (&[(SCALE_MAX, "1001")], SCALE_MAX, "maximum of 1000"),
            (&[(SCALE_MAX, "0")], SCALE_MAX, "below 1"),
            (&[(SCALE_MIN, "5"), (SCALE_MAX, "2")], SCALE_MIN, "above"),
            (&[(SCALE_TARGET, "0")], SCALE_TARGET, "below 1"),
            (&[(SCALE_TARGET, "1.5")], SCALE_TARGET, "whole number"),
            (&[(SCALE_ZERO, "maybe")], SCALE_ZERO, "true or false"),
            (&[(SCALE_ZERO_DURATION, "soon")], SCALE_ZERO_DURATION, "duration"),
            (&[(SCALE_ZERO_DURATION, "0s")], SCALE_ZERO_DURATION, "longer than zero"),
            (&[(SCALE_ZERO_DURATION, "10x")], SCALE_ZERO_DURATION, "unit"),
        ];
        for (pairs, label, words) in cases {
            let (field, reason) = invalid(pairs);
            assert_eq!(field, format!("labels.{label}"), "{pairs:?}");
            assert!(reason.contains(words), "{pairs:?}: {reason}");
        }
    }

    #[test]
    fn lenient_falls_back_to_defaults() {
        let settings = ScaleSettings::lenient(Some(&labels(&[(SCALE_MAX, "zero")])));
        assert_eq!(settings, ScaleSettings::default());
        assert_eq!(ScaleSettings::default().wake_replicas(), 1);
    }
}
