//! Cron schedules: the forms cron-connector accepts (5 fields, the
//! `@hourly`-style shortcuts, `@every <duration>`), in UTC or an IANA time
//! zone.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use faas_core::Error;

use crate::spec::{SCHEDULE_ANNOTATION, TIMEZONE_ANNOTATION};

/// The shortest `@every` interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// What [`SCHEDULE_ANNOTATION`] accepts, for error messages.
pub const ACCEPTED_SCHEDULES: &str =
    "5 cron fields (minute hour day-of-month month day-of-week, e.g. \"*/5 * * * *\"), \
     a shortcut (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly) or @every <duration> \
     (e.g. \"@every 30s\", at least 1s)";

/// When a cron function runs.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The annotation as written.
    expression: String,
    /// The time zone it is read in.
    timezone: Tz,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Cron(Box<Cron>),
    /// Every interval, counted from the Unix epoch (so every gateway
    /// computes the same ticks).
    Every(TimeDelta),
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.timezone == other.timezone
    }
}

impl Schedule {
    /// Parses a schedule and an optional time zone (UTC without);
    /// [`Error::Invalid`] naming the annotation and the accepted forms.
    pub fn parse(expression: &str, timezone: Option<&str>) -> Result<Schedule, Error> {
        let expression = expression.trim();
        let invalid = |why: String| {
            Error::invalid(
                format!("annotations.{SCHEDULE_ANNOTATION}"),
                format!("{expression:?} {why}; accepted: {ACCEPTED_SCHEDULES}"),
            )
        };
        let timezone = match timezone {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                Error::invalid(
                    format!("annotations.{TIMEZONE_ANNOTATION}"),
                    format!(
                        "{name:?} is not an IANA time zone name (e.g. \"UTC\", \"Europe/Paris\", \"America/New_York\")"
                    ),
                )
            })?,
        };
        let kind = if let Some(interval) = expression.strip_prefix("@every") {
            let interval =
                faas_core::duration::parse(interval.trim()).map_err(|e| invalid(format!("has a bad duration: {e}")))?;
            if interval < MIN_INTERVAL {
                return Err(invalid(format!("runs more often than every {}s", MIN_INTERVAL.as_secs())));
            }
            Kind::Every(TimeDelta::from_std(interval).map_err(|_| invalid("is too long an interval".to_owned()))?)
        } else {
            if !expression.starts_with('@') && expression.split_whitespace().count() != 5 {
                return Err(invalid(format!("has {} fields, not 5", expression.split_whitespace().count())));
            }
            let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
            let cron = parser.parse(expression).map_err(|e| invalid(format!("is not a cron expression: {e}")))?;
            Kind::Cron(Box::new(cron))
        };
        Ok(Schedule { expression: expression.to_owned(), timezone, kind })
    }

    /// The annotation as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone's IANA name.
    pub fn timezone(&self) -> &'static str {
        self.timezone.name()
    }

    /// The first tick strictly after `after`; `None` if there is none.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Cron(cron) => cron
                .find_next_occurrence(&after.with_timezone(&self.timezone), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            Kind::Every(interval) => {
                let step = interval.num_milliseconds();
                let ticks = after.timestamp_millis().div_euclid(step) + 1;
                DateTime::from_timestamp_millis(ticks * step)
            }
        }
    }

    /// The last tick at or before `at`; `None` if there is none.
    pub fn last_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Cron(cron) => cron
                .find_previous_occurrence(&at.with_timezone(&self.timezone), true)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            Kind::Every(interval) => {
                let step = interval.num_milliseconds();
                DateTime::from_timestamp_millis(at.timestamp_millis().div_euclid(step) * step)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_fields_shortcuts_and_every() {
        let five = Schedule::parse("*/5 * * * *", None).unwrap();
        assert_eq!(five.next_after(at("2026-01-01T12:00:00Z")), Some(at("2026-01-01T12:05:00Z")));
        assert_eq!(five.next_after(at("2026-01-01T11:59:59Z")), Some(at("2026-01-01T12:00:00Z")));
        assert_eq!(five.last_at_or_before(at("2026-01-01T12:07:00Z")), Some(at("2026-01-01T12:05:00Z")));
        let hourly = Schedule::parse("@hourly", None).unwrap();
        assert_eq!(hourly.next_after(at("2026-01-01T12:00:00Z")), Some(at("2026-01-01T13:00:00Z")));
        let every = Schedule::parse("@every 30s", None).unwrap();
        assert_eq!(every.next_after(at("2026-01-01T12:00:10Z")), Some(at("2026-01-01T12:00:30Z")));
        assert_eq!(every.last_at_or_before(at("2026-01-01T12:00:30Z")), Some(at("2026-01-01T12:00:30Z")));
    }

    #[test]
    fn time_zones_move_the_ticks() {
        let paris = Schedule::parse("0 9 * * *", Some("Europe/Paris")).unwrap();
        assert_eq!(paris.timezone(), "Europe/Paris");
        // 09:00 in Paris is 08:00 UTC in winter.
        assert_eq!(paris.next_after(at("2026-01-05T00:00:00Z")), Some(at("2026-01-05T08:00:00Z")));
    }

    #[test]
    fn bad_schedules_name_the_annotation_and_the_accepted_forms() {
        for bad in ["", "* * * *", "0 * * * * *", "61 * * * *", "@every 500ms", "@every soon", "@often"] {
            let err = Schedule::parse(bad, None).unwrap_err();
            let message = err.message();
            assert!(message.contains("annotations.schedule") && message.contains("@every"), "{bad:?}: {message}");
        }
        let err = Schedule::parse("* * * * *", Some("Nowhere/Land")).unwrap_err();
        assert!(err.message().contains(TIMEZONE_ANNOTATION), "{}", err.message());
    }
}
