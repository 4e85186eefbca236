//! Durations as labels spell them: plain seconds (`30`) or numbers with
//! Go-style units (`500ms`, `30s`, `15m`, `1h`, `1m30s`).

use std::time::Duration;

/// Parses `text`; the error says what is wrong with it.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    if text.is_empty() {
        return Err("is empty: expected a duration such as 30s, 15m or 1h, or plain seconds".to_owned());
    }
    let mut seconds = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?} is not a duration such as 30s, 15m or 1h, or plain seconds"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            unit => return Err(format!("{text:?} has an unknown unit {unit:?} (use ms, s, m or h)")),
        };
        seconds += number * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?} is not a usable duration: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_units() {
        for (text, expected) in [
            ("30", Duration::from_secs(30)),
            ("30s", Duration::from_secs(30)),
            ("15m", Duration::from_secs(900)),
            ("1h", Duration::from_secs(3600)),
            ("1m30s", Duration::from_secs(90)),
            ("250ms", Duration::from_millis(250)),
            ("1.5m", Duration::from_secs(90)),
        ] {
            assert_eq!(parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_durations_say_why() {
        for bad in ["", "s", "10x", "-1s", "1.5", "fifteen minutes"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("10x").unwrap_err().contains("unknown unit"));
    }
}
