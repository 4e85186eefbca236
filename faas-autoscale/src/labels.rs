//! Per-function scaling settings, read from the function's labels under
//! OpenFaaS's names.

use std::collections::BTreeMap;
use std::time::Duration;

use faas_core::duration;
use faas_core::validate::MAX_REPLICAS;

use crate::config::ScalingConfig;
use crate::error::ScaleError;

/// Fewest replicas while the function is in use (default 1, at least 1).
pub const SCALE_MIN: &str = "com.openfaas.scale.min";
/// Most replicas the autoscaler sets (default 20, at most 1000).
pub const SCALE_MAX: &str = "com.openfaas.scale.max";
/// The load one replica is meant to take, in the unit of the scale type
/// (default `--scale-target`, 50; at least 1).
pub const SCALE_TARGET: &str = "com.openfaas.scale.target";
/// What the autoscaler measures: `capacity`, `rps` or `cpu` (default
/// `--scale-type`, `capacity`); see [`ScaleType`].
pub const SCALE_TYPE: &str = "com.openfaas.scale.type";
/// The percentage of `max` one firing AlertManager alert adds (1-100,
/// default 10); see [`crate::alert`].
pub const SCALE_FACTOR: &str = "com.openfaas.scale.factor";
/// `true` lets the idler scale the function to zero (default `false`).
pub const SCALE_ZERO: &str = "com.openfaas.scale.zero";
/// How long the function must be idle before it is scaled to zero
/// (default `--scale-zero-duration`, 15m; seconds or a duration such as
/// `30s`, `15m`, `1h`).
pub const SCALE_ZERO_DURATION: &str = "com.openfaas.scale.zero-duration";

/// What the autoscaler measures to decide a function's replicas, as
/// OpenFaaS's `com.openfaas.scale.type` names it. The target is per
/// replica, in the type's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ScaleType {
    /// Calls in flight (time-weighted average over the panic window).
    #[default]
    Capacity,
    /// Calls begun per second over the panic window.
    Rps,
    /// CPU used, in millicores (1000 = one core busy), over the panic
    /// window; only on providers with [`faas_core::Capabilities::cpu_usage`].
    Cpu,
}

impl ScaleType {
    /// Every type, in the order the docs list them.
    pub const ALL: [ScaleType; 3] = [ScaleType::Capacity, ScaleType::Rps, ScaleType::Cpu];

    /// The label value: `capacity`, `rps` or `cpu`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScaleType::Capacity => "capacity",
            ScaleType::Rps => "rps",
            ScaleType::Cpu => "cpu",
        }
    }
}

impl std::fmt::Display for ScaleType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ScaleType {
    type Err = String;

    /// `capacity`, `rps` or `cpu`, in any case; the error names the
    /// accepted values.
    fn from_str(text: &str) -> Result<Self, String> {
        ScaleType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| format!("{text:?} is not a scale type: use capacity, rps or cpu"))
    }
}

/// How one function is scaled, from its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleSettings {
    /// Fewest replicas while the function is in use; also what a scale
    /// from zero starts.
    pub min: u64,
    /// Most replicas the autoscaler sets.
    pub max: u64,
    /// What the autoscaler measures.
    pub kind: ScaleType,
    /// The load per replica the autoscaler aims for, in `kind`'s unit.
    pub target: u64,
    /// The percentage of `max` a firing alert adds (1-100).
    pub factor: u64,
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
    /// The default `com.openfaas.scale.target` (`--scale-target`).
    pub const DEFAULT_TARGET: u64 = 50;
    /// The default `com.openfaas.scale.factor`.
    pub const DEFAULT_FACTOR: u64 = 10;
    /// The default `com.openfaas.scale.zero-duration`
    /// (`--scale-zero-duration`).
    pub const DEFAULT_ZERO_DURATION: Duration = Duration::from_secs(15 * 60);

    /// The settings of a function without scaling labels under `config`'s
    /// gateway-wide defaults.
    pub fn defaults(config: &ScalingConfig) -> ScaleSettings {
        ScaleSettings {
            kind: config.scale_type,
            target: config.target,
            zero_duration: config.zero_duration,
            ..ScaleSettings::default()
        }
    }

    /// Reads the settings from `labels`, refusing any bad value with
    /// `Invalid` naming the label (`labels.com.openfaas.scale.max`) and the
    /// rule. An absent label takes `config`'s default (type, target,
    /// zero-duration) or its own; an absent max is raised to the min when
    /// the min is above 20.
    pub fn from_labels(
        labels: Option<&BTreeMap<String, String>>,
        config: &ScalingConfig,
    ) -> faas_core::Result<ScaleSettings> {
        let defaults = ScaleSettings::defaults(config);
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
        let kind = match get(SCALE_TYPE) {
            Some(text) => text.parse().map_err(|reason: String| ScaleError::label(SCALE_TYPE, reason))?,
            None => defaults.kind,
        };
        let target = match get(SCALE_TARGET) {
            Some(text) => parse_count(SCALE_TARGET, text, 1)?,
            None => defaults.target,
        };
        let factor = match get(SCALE_FACTOR) {
            Some(text) => {
                let factor = parse_count(SCALE_FACTOR, text, 1)?;
                if factor > 100 {
                    return Err(ScaleError::label(SCALE_FACTOR, format!("{factor} is above 100 (a percentage)")).into());
                }
                factor
            }
            None => Self::DEFAULT_FACTOR,
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
            None => defaults.zero_duration,
        };
        Ok(ScaleSettings { min, max, kind, target, factor, zero, zero_duration })
    }

    /// Like [`ScaleSettings::from_labels`], but a bad value falls back to
    /// the defaults (logged at `warn`): for functions deployed without this
    /// layer, which nobody validated.
    pub fn lenient(labels: Option<&BTreeMap<String, String>>, config: &ScalingConfig) -> ScaleSettings {
        match ScaleSettings::from_labels(labels, config) {
            Ok(settings) => settings,
            Err(err) => {
                tracing::warn!(error = %err.message(), "ignoring bad scaling labels; using the defaults");
                ScaleSettings::defaults(config)
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
            kind: ScaleType::Capacity,
            target: Self::DEFAULT_TARGET,
            factor: Self::DEFAULT_FACTOR,
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
    if value > MAX_REPLICAS && (label == SCALE_MIN || label == SCALE_MAX) {
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

    fn read(pairs: &[(&str, &str)]) -> faas_core::Result<ScaleSettings> {
        ScaleSettings::from_labels(Some(&labels(pairs)), &ScalingConfig::default())
    }

    fn invalid(pairs: &[(&str, &str)]) -> (String, String) {
        match read(pairs) {
            Err(faas_core::Error::Invalid { field, reason }) => (field, reason),
            other => panic!("{pairs:?}: expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn defaults_without_labels() {
        let settings = ScaleSettings::from_labels(None, &ScalingConfig::default()).unwrap();
        assert_eq!(settings, ScaleSettings::default());
        assert_eq!((settings.min, settings.max, settings.target, settings.zero), (1, 20, 50, false));
        assert_eq!((settings.kind, settings.factor), (ScaleType::Capacity, 10));
        assert_eq!(settings.zero_duration, Duration::from_secs(900));
        assert_eq!(read(&[("team", "web")]).unwrap(), settings);
    }

    #[test]
    fn the_gateway_wide_defaults_apply_to_absent_labels_only() {
        let config = ScalingConfig {
            scale_type: ScaleType::Rps,
            target: 5,
            zero_duration: Duration::from_secs(30),
            ..Default::default()
        };
        let bare = ScaleSettings::from_labels(None, &config).unwrap();
        assert_eq!((bare.kind, bare.target, bare.zero_duration), (ScaleType::Rps, 5, Duration::from_secs(30)));
        let own = ScaleSettings::from_labels(
            Some(&labels(&[(SCALE_TYPE, "Capacity"), (SCALE_TARGET, "7"), (SCALE_ZERO_DURATION, "1m")])),
            &config,
        )
        .unwrap();
        assert_eq!((own.kind, own.target, own.zero_duration), (ScaleType::Capacity, 7, Duration::from_secs(60)));
        assert_eq!(ScaleSettings::lenient(Some(&labels(&[(SCALE_TYPE, "gpu")])), &config), bare);
    }

    #[test]
    fn every_label_is_read() {
        let settings = read(&[
            (SCALE_MIN, "2"),
            (SCALE_MAX, " 5 "),
            (SCALE_TYPE, "rps"),
            (SCALE_TARGET, "10"),
            (SCALE_FACTOR, "100"),
            (SCALE_ZERO, "TRUE"),
            (SCALE_ZERO_DURATION, "1m30s"),
        ])
        .unwrap();
        let expected = ScaleSettings {
            min: 2,
            max: 5,
            kind: ScaleType::Rps,
            target: 10,
            factor: 100,
            zero: true,
            zero_duration: Duration::from_secs(90),
        };
        assert_eq!(settings, expected);
        assert_eq!(read(&[(SCALE_TYPE, "cpu"), (SCALE_TARGET, "1500")]).unwrap().target, 1500, "millicores");
        let plain = read(&[(SCALE_ZERO_DURATION, "30")]).unwrap();
        assert_eq!(plain.zero_duration, Duration::from_secs(30));
        let high_min = read(&[(SCALE_MIN, "30")]).unwrap();
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
            (&[(SCALE_TARGET, "fast")], SCALE_TARGET, "whole number"),
            (&[(SCALE_TYPE, "memory")], SCALE_TYPE, "capacity, rps or cpu"),
            (&[(SCALE_FACTOR, "0")], SCALE_FACTOR, "below 1"),
            (&[(SCALE_FACTOR, "101")], SCALE_FACTOR, "above 100"),
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
        let settings = ScaleSettings::lenient(Some(&labels(&[(SCALE_MAX, "zero")])), &ScalingConfig::default());
        assert_eq!(settings, ScaleSettings::default());
        assert_eq!(ScaleSettings::default().wake_replicas(), 1);
    }
}
