//! The platform's naming and value rules, in one place.
//!
//! Every check returns [`Error::Invalid`] naming the field and the rule, so
//! a client sees exactly what to fix.

use std::collections::BTreeMap;

use crate::duration;
use crate::error::{Error, Result};

/// The watchdog's settings in `envVars` that are durations, read with
/// [`crate::duration`] (OpenFaaS's names; `healthcheck_interval` is read
/// by OpenFaaS's own watchdogs in user images).
pub const WATCHDOG_DURATION_VARS: [&str; 5] =
    ["exec_timeout", "read_timeout", "write_timeout", "ready_timeout", "healthcheck_interval"];

/// The watchdog's settings in `envVars` that are booleans, read with
/// [`boolean`].
pub const WATCHDOG_BOOLEAN_VARS: [&str; 2] = ["prefix_logs", "log_calls"];

/// The most replicas a function may ask for.
pub const MAX_REPLICAS: u64 = 1000;

/// Longest DNS-1123 label.
const LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain.
const SUBDOMAIN_MAX: usize = 253;

/// A function name: a DNS-1123 label.
pub fn function_name(field: &str, value: &str) -> Result<()> {
    dns_label(field, value)
}

/// A namespace name: a DNS-1123 label.
pub fn namespace(field: &str, value: &str) -> Result<()> {
    dns_label(field, value)
}

/// A secret name: a DNS-1123 subdomain (labels joined by dots).
pub fn secret_name(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.len() > SUBDOMAIN_MAX {
        return Err(Error::invalid(field, format!("{value:?} is longer than {SUBDOMAIN_MAX} characters")));
    }
    for part in value.split('.') {
        dns_label(field, part).map_err(|_| {
            Error::invalid(
                field,
                format!(
                    "{value:?} must be lower-case alphanumerics, '-' and '.', \
                     starting and ending with an alphanumeric"
                ),
            )
        })?;
    }
    Ok(())
}

/// A DNS-1123 label: 1 to 63 lower-case alphanumerics or '-', starting and
/// ending with an alphanumeric.
pub fn dns_label(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.len() > LABEL_MAX {
        return Err(Error::invalid(field, format!("{value:?} is longer than {LABEL_MAX} characters")));
    }
    let bytes = value.as_bytes();
    let ok_inner = bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    let ok_ends = bytes[0].is_ascii_alphanumeric() && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if !ok_inner || !ok_ends {
        return Err(Error::invalid(
            field,
            format!(
                "{value:?} must be a DNS-1123 label: lower-case alphanumerics and '-', \
                 starting and ending with an alphanumeric"
            ),
        ));
    }
    Ok(())
}

/// An environment variable name: a letter or '_' followed by letters,
/// digits or '_'.
pub fn env_var_name(field: &str, value: &str) -> Result<()> {
    let mut chars = value.chars();
    let first_ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::invalid(
            field,
            format!("{value:?} is not a valid environment variable name (letters, digits and '_', not starting with a digit)"),
        ));
    }
    Ok(())
}

/// A label or annotation key: an optional DNS-1123 subdomain prefix and
/// '/', then a name of at most 63 alphanumerics, '-', '_' or '.', starting
/// and ending with an alphanumeric (the Kubernetes rule, which every
/// orchestrator accepts).
pub fn label_key(field: &str, value: &str) -> Result<()> {
    let (prefix, name) = match value.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    if let Some(prefix) = prefix {
        secret_name(field, prefix)
            .map_err(|_| Error::invalid(field, format!("{value:?} has a prefix that is not a DNS-1123 subdomain")))?;
    }
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= LABEL_MAX
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        return Err(Error::invalid(
            field,
            format!(
                "{value:?} is not a valid key: at most 63 alphanumerics, '-', '_' or '.', \
                 starting and ending with an alphanumeric, with an optional 'prefix/'"
            ),
        ));
    }
    Ok(())
}

/// The watchdog's duration and boolean settings in `envVars`
/// ([`WATCHDOG_DURATION_VARS`], [`WATCHDOG_BOOLEAN_VARS`]), checked at
/// deploy so that a bad value is a 400 on every provider rather than a
/// watchdog that fails to start inside a container later. Empty values
/// mean unset, as the watchdog reads them.
pub fn watchdog_env(env_vars: &BTreeMap<String, String>) -> Result<()> {
    let set = |name: &str| env_vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    for name in WATCHDOG_DURATION_VARS {
        if let Some(value) = set(name) {
            duration::parse(value).map_err(|e| Error::invalid(format!("envVars.{name}"), e.to_string()))?;
        }
    }
    for name in WATCHDOG_BOOLEAN_VARS {
        if let Some(value) = set(name) {
            boolean(&format!("envVars.{name}"), value)?;
        }
    }
    Ok(())
}

/// A replica count within `0..=MAX_REPLICAS`.
pub fn replicas(field: &str, value: u64) -> Result<()> {
    if value > MAX_REPLICAS {
        return Err(Error::invalid(field, format!("{value} is more than the maximum of {MAX_REPLICAS} replicas")));
    }
    Ok(())
}

/// A boolean setting or label: `true`/`false`, `1`/`0`, `yes`/`no`,
/// `on`/`off`, in any case and with surrounding blanks ignored; the one
/// rule every env var, flag and label follows. `Invalid` naming `field`
/// otherwise.
pub fn boolean(field: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(Error::invalid(field, format!("{value:?} is not a boolean: true, false, 1, 0, yes, no, on or off"))),
    }
}

/// The suffixes of Kubernetes' quantity notation and the factor each
/// stands for: the one table every provider converts quantities with.
pub const QUANTITY_SUFFIXES: [(&str, f64); 13] = [
    ("Ki", 1024.0),
    ("Mi", 1048576.0),
    ("Gi", 1073741824.0),
    ("Ti", 1099511627776.0),
    ("Pi", 1125899906842624.0),
    ("Ei", 1152921504606846976.0),
    ("m", 1e-3),
    ("k", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
    ("P", 1e15),
    ("E", 1e18),
];

/// A resource quantity in Kubernetes' notation: a decimal number with an
/// optional suffix (`m`, `k`, `M`, `G`, `T`, `P`, `E`, `Ki`, `Mi`, `Gi`,
/// `Ti`, `Pi`, `Ei`).
pub fn quantity(field: &str, value: &str) -> Result<()> {
    quantity_value(field, value).map(|_| ())
}

/// A quantity (see [`quantity`]) as a number of units: `128Mi` is
/// 134217728, `500m` is 0.5; `Invalid` naming `field` otherwise.
pub fn quantity_value(field: &str, value: &str) -> Result<f64> {
    let (number, factor) = QUANTITY_SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| value.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((value, 1.0));
    let mut parts = number.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let valid = digits(whole) && frac.is_none_or(digits) && !(whole.is_empty() && frac.is_none_or(str::is_empty));
    // Finite after the suffix too: `<300 digits>E` is a number, but not one
    // any limit can be.
    let parsed = if valid { number.parse::<f64>().ok().map(|n| n * factor).filter(|n| n.is_finite()) } else { None };
    parsed.ok_or_else(|| Error::invalid(field, format!("{value:?} is not a quantity such as 128Mi, 1G, 500m or 0.5")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(r: Result<()>) -> String {
        match r {
            Err(Error::Invalid { field, reason }) => format!("{field}: {reason}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn dns_labels() {
        for ok in ["a", "figlet", "sha512sum", "a-b-1", &"x".repeat(63)] {
            dns_label("service", ok).unwrap();
        }
        for bad in ["", "A", "-a", "a-", "a_b", "a.b", "é", &"x".repeat(64)] {
            let r = reason(dns_label("service", bad));
            assert!(r.starts_with("service: "), "{r}");
        }
    }

    #[test]
    fn secret_names_allow_dots() {
        secret_name("name", "db.password").unwrap();
        assert!(reason(secret_name("name", "db..password")).contains("lower-case"));
        assert!(reason(secret_name("name", "")).contains("empty"));
    }

    #[test]
    fn env_var_names() {
        for ok in ["A", "_x", "fprocess", "Http_Method", "A1"] {
            env_var_name("envVars", ok).unwrap();
        }
        for bad in ["", "1A", "A-B", "A B", "A=B"] {
            assert!(reason(env_var_name("envVars", bad)).contains("environment variable"));
        }
    }

    #[test]
    fn label_keys() {
        for ok in ["app", "com.openfaas.scale.min", "example.com/team", "a_b-c.d"] {
            label_key("labels", ok).unwrap();
        }
        for bad in ["", "-a", "a/", "/a", "Bad_Prefix/a", "a b", &"x".repeat(64)] {
            reason(label_key("labels", bad));
        }
    }

    #[test]
    fn watchdog_settings() {
        let vars = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let good = [("exec_timeout", "1m30s"), ("read_timeout", "2.5"), ("log_calls", "FALSE"), ("write_timeout", " ")];
        watchdog_env(&vars(&good)).unwrap();
        for (name, bad) in [
            ("exec_timeout", "1x"),
            ("read_timeout", "--"),
            ("write_timeout", "9999999h"),
            ("ready_timeout", "-1s"),
            ("healthcheck_interval", "soon"),
        ] {
            let r = reason(watchdog_env(&vars(&[(name, bad)])));
            assert!(r.starts_with(&format!("envVars.{name}: ")) && r.contains("1m30s"), "{r}");
        }
        for (name, bad) in [("log_calls", "maybe"), ("prefix_logs", "2")] {
            let r = reason(watchdog_env(&vars(&[(name, bad)])));
            assert!(r.starts_with(&format!("envVars.{name}: ")) && r.contains("not a boolean"), "{r}");
        }
        assert_eq!((boolean("x", "On").unwrap(), boolean("x", "no").unwrap()), (true, false));
    }

    #[test]
    fn replica_bounds() {
        replicas("replicas", 0).unwrap();
        replicas("replicas", MAX_REPLICAS).unwrap();
        assert!(reason(replicas("replicas", MAX_REPLICAS + 1)).contains("maximum"));
    }

    #[test]
    fn booleans() {
        for yes in ["true", "TRUE", "1", "yes", "On", " true "] {
            assert!(boolean("f", yes).unwrap(), "{yes}");
        }
        for no in ["false", "0", "no", "OFF"] {
            assert!(!boolean("f", no).unwrap(), "{no}");
        }
        for bad in ["maybe", "", "2"] {
            assert!(reason(boolean("FAAS_X", bad).map(|_| ())).starts_with("FAAS_X: "), "{bad}");
        }
    }

    #[test]
    fn quantities() {
        for ok in ["128Mi", "1G", "500m", "0.5", "1", ".5", "2Ei"] {
            quantity("limits.memory", ok).unwrap();
        }
        let beyond_f64 = format!("{}E", "9".repeat(300));
        for bad in ["", "Mi", "1.2.3", "lots", "-1", "1 Mi", ".", "1e3", "inf", &beyond_f64] {
            assert!(reason(quantity("limits.memory", bad)).starts_with("limits.memory"));
        }
        let value = |v: &str| quantity_value("q", v).unwrap();
        assert_eq!(value("128Mi"), 134217728.0);
        assert_eq!(value("500m"), 0.5);
        assert_eq!(value("1G"), 1e9);
        assert_eq!(value(".5"), 0.5);
        assert_eq!(value("2"), 2.0);
    }
}
