//! Durations as OpenFaaS reads them: a plain integer is seconds (`10`),
//! anything else is Go's duration syntax (`500ms`, `10s`, `1m30s`, `1.5h`).

use std::time::Duration;

/// Parses `text` as a duration; the error says what is wrong, for clap to
/// show next to the flag.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration: expected seconds (10) or a number with a unit (500ms, 10s, 1m, 1h)".to_owned());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!("invalid duration {text:?}: expected a number before {rest:?}"));
        }
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: bad number {:?}", &rest[..number_len]))?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("invalid duration {text:?}: missing unit after {number}")),
            unit => return Err(format!("invalid duration {text:?}: unknown unit {unit:?} (use ms, s, m or h)")),
        };
        total += number * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_numbers_are_seconds_and_units_are_go_style() {
        assert_eq!(parse("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn bad_durations_say_why() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("10x").unwrap_err().contains("unknown unit"));
        assert!(parse("1.5").unwrap_err().contains("missing unit"));
        assert!(parse("s").unwrap_err().contains("expected a number"));
        assert!(parse("-1s").is_err());
    }
}
