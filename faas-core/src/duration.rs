//! The one parser for every duration a user writes: gateway flags, watchdog
//! settings in `envVars` (`exec_timeout`, `read_timeout`, ...), scaling
//! labels (`com.openfaas.scale.zero-duration`), async and trigger settings.
//!
//! Accepted forms, as OpenFaaS reads them:
//! - Go's `time.ParseDuration` syntax: one or more decimal numbers, each
//!   with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`): `300ms`, `1.5s`,
//!   `1m30s`, `2h45m`, `.5h`, `0`;
//! - plain seconds, whole or decimal: `30`, `2.5`.
//!
//! Refused: negative durations (a leading `-`; a leading `+` is accepted as
//! Go does), an empty text, unknown units, and anything longer than Go's
//! limit of 2^63−1 nanoseconds (about 2,562,047 hours).

use std::fmt;
use std::time::Duration;

use crate::error::Error;

/// The forms this parser accepts, as error messages list them.
pub const ACCEPTED_FORMS: &str =
    "expected Go duration syntax such as 300ms, 1.5s, 1m30s or 2h45m (units ns, us, ms, s, m, h), or plain seconds such as 30 or 2.5";

/// Go's largest duration: `i64::MAX` nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    text: String,
    problem: &'static str,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}: {ACCEPTED_FORMS}", self.text, self.problem)
    }
}

impl std::error::Error for DurationError {}

/// Parses a duration in Go's syntax or plain seconds.
///
/// ```
/// use std::time::Duration;
/// use faas_core::duration::parse;
///
/// assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
/// assert_eq!(parse("2.5").unwrap(), Duration::from_millis(2500));
/// assert!(parse("-1s").is_err());
/// ```
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let fail = |problem| DurationError { text: text.to_owned(), problem };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(fail("is empty"));
    }
    if trimmed.starts_with('-') {
        return Err(fail("is negative"));
    }
    let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if body.is_empty() {
        return Err(fail("has no number"));
    }
    // Plain seconds: the whole text is one decimal number with no unit.
    if body.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let nanos = decimal_nanos(body, 1_000_000_000).ok_or_else(|| fail("is not a number"))?;
        return to_duration(nanos).ok_or_else(|| fail("is longer than Go's limit of 2562047h"));
    }
    let mut total: u128 = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return Err(fail("has a unit without a number"));
        }
        let (number, after) = rest.split_at(number_len);
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(fail("has a number without a unit")),
            _ => return Err(fail("has an unknown unit")),
        };
        let nanos = decimal_nanos(number, scale).ok_or_else(|| fail("has a malformed number"))?;
        total = total.saturating_add(nanos);
        if total > MAX_NANOS {
            return Err(fail("is longer than Go's limit of 2562047h"));
        }
        rest = next;
    }
    to_duration(total).ok_or_else(|| fail("is longer than Go's limit of 2562047h"))
}

/// Parses the duration in `field`; the error is a 400 naming the field and
/// the accepted forms.
pub fn parse_field(field: &str, text: &str) -> Result<Duration, Error> {
    parse(text).map_err(|e| Error::invalid(field, e.to_string()))
}

/// A number with at most one `.` and at least one digit, times `scale`
/// nanoseconds, truncated to whole nanoseconds as Go does.
fn decimal_nanos(number: &str, scale: u128) -> Option<u128> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    let mut nanos: u128 = 0;
    for digit in whole.bytes() {
        nanos = nanos.checked_mul(10)?.checked_add(u128::from(digit - b'0'))?;
        if nanos > MAX_NANOS {
            // Keep going would only overflow: report as too long.
            return Some(MAX_NANOS + 1);
        }
    }
    nanos = nanos.checked_mul(scale)?;
    // The fraction as Go reads it: digits until they would overflow, then
    // one float multiplication, truncated.
    let (mut digits, mut divisor, mut overflow) = (0u64, 1f64, false);
    for digit in fraction.bytes() {
        if overflow || digits > (i64::MAX as u64) / 10 {
            overflow = true;
            continue;
        }
        let next = digits * 10 + u64::from(digit - b'0');
        if next > 1 << 63 {
            overflow = true;
            continue;
        }
        digits = next;
        divisor *= 10.0;
    }
    if digits > 0 {
        nanos = nanos.checked_add((digits as f64 * (scale as f64 / divisor)) as u128)?;
    }
    Some(nanos)
}

fn to_duration(nanos: u128) -> Option<Duration> {
    if nanos > MAX_NANOS {
        return None;
    }
    let nanos = nanos as u64;
    Some(Duration::new(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(n: u64) -> Duration {
        Duration::from_nanos(n)
    }

    /// Go's own table (`time/time_test.go`, parseDurationTests), less the
    /// negative entries this parser refuses, plus plain seconds.
    #[test]
    fn go_examples_parse_as_go_parses_them() {
        let second = 1_000_000_000u64;
        let minute = 60 * second;
        let hour = 60 * minute;
        for (text, expected) in [
            ("0", ns(0)),
            ("5s", ns(5 * second)),
            ("30s", ns(30 * second)),
            ("1478s", ns(1478 * second)),
            ("+5s", ns(5 * second)),
            ("+0", ns(0)),
            ("5.0s", ns(5 * second)),
            ("5.6s", ns(5 * second + 600_000_000)),
            ("5.s", ns(5 * second)),
            (".5s", ns(second / 2)),
            ("1.0s", ns(second)),
            ("1.00s", ns(second)),
            ("1.004s", ns(second + 4_000_000)),
            ("1.0040s", ns(second + 4_000_000)),
            ("100.00100s", ns(100 * second + 1_000_000)),
            ("10ns", ns(10)),
            ("11us", ns(11_000)),
            ("12µs", ns(12_000)),
            ("12μs", ns(12_000)),
            ("13ms", ns(13_000_000)),
            ("14s", ns(14 * second)),
            ("15m", ns(15 * minute)),
            ("16h", ns(16 * hour)),
            ("3h30m", ns(3 * hour + 30 * minute)),
            ("10.5s4m", ns(4 * minute + 10 * second + second / 2)),
            ("1h2m3s4ms5us6ns", ns(hour + 2 * minute + 3 * second + 4_000_000 + 5_000 + 6)),
            ("39h9m14.425s", ns(39 * hour + 9 * minute + 14 * second + 425_000_000)),
            ("52763797000ns", ns(52_763_797_000)),
            ("0.3333333333333333333h", ns(20 * minute)),
            ("9007199254740993ns", ns((1 << 53) + 1)),
            ("9223372036854775807ns", ns(i64::MAX as u64)),
            ("9223372036854775.807us", ns(i64::MAX as u64)),
            ("9223372036s854ms775us807ns", ns(i64::MAX as u64)),
            ("0.100000000000000000000h", ns(6 * minute)),
            ("0.830103483285477580700h", ns(49 * minute + 48 * second + 372_539_827)),
            // The forms this issue names, and plain seconds.
            ("300ms", ns(300_000_000)),
            ("1.5s", ns(1_500_000_000)),
            ("1m30s", ns(90 * second)),
            ("2h45m", ns(2 * hour + 45 * minute)),
            ("30", ns(30 * second)),
            ("2.5", ns(2_500_000_000)),
            (" 10s ", ns(10 * second)),
        ] {
            assert_eq!(parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn go_refusals_and_negatives_are_refused_with_the_reason() {
        for (text, problem) in [
            ("", "is empty"),
            ("-", "is negative"),
            ("-1s", "is negative"),
            ("--", "is negative"),
            ("+", "has no number"),
            ("s", "has a unit without a number"),
            (".", "is not a number"),
            (".s", "has a malformed number"),
            ("1x", "has an unknown unit"),
            ("1d", "has an unknown unit"),
            ("1.5.2s", "has a malformed number"),
            ("1s2", "has a number without a unit"),
            ("9999999h", "is longer than Go's limit of 2562047h"),
            ("9223372036854775808ns", "is longer than Go's limit of 2562047h"),
            ("9223372036854775.808us", "is longer than Go's limit of 2562047h"),
            ("9223372037", "is longer than Go's limit of 2562047h"),
            ("fifteen minutes", "has a unit without a number"),
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!(err.problem, problem, "{text}");
            assert!(err.to_string().contains("1m30s"), "the message lists the accepted forms: {err}");
        }
    }

    #[test]
    fn a_field_error_is_a_400_naming_the_field() {
        let err = parse_field("exec_timeout", "1x").unwrap_err();
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
        let text = err.to_string();
        assert!(text.contains("exec_timeout") && text.contains("\"1x\"") && text.contains("unknown unit"), "{text}");
    }
}
