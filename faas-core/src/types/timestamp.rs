//! Timestamps written as chrono writes them (RFC 3339, UTC as `Z`, the
//! fraction in 0, 3, 6 or 9 digits), without going through `fmt`: in a
//! listing of 10,000 functions chrono's formatter was a third of the time
//! spent encoding each status.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// The longest text [`write`] produces: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
const LONGEST: usize = 30;

/// Serde helper for `Option<DateTime<Utc>>` fields that are skipped when
/// `None`: the same text as chrono's own `Serialize`.
pub(crate) fn rfc3339<S: Serializer>(value: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(time) => {
            let mut buf = [0u8; LONGEST];
            match write(time, &mut buf) {
                // Only ASCII digits and separators were written.
                Some(len) => serializer.serialize_str(std::str::from_utf8(&buf[..len]).unwrap_or_default()),
                None => time.serialize(serializer),
            }
        }
        None => serializer.serialize_none(),
    }
}

/// `time` as a JSON string, the same text as [`rfc3339`] writes through
/// serde_json, appended to `out`.
#[cfg(feature = "api")]
pub(crate) fn write_json(time: &DateTime<Utc>, out: &mut Vec<u8>) -> serde_json::Result<()> {
    let mut buf = [0u8; LONGEST];
    match write(time, &mut buf) {
        Some(len) => {
            out.push(b'"');
            out.extend_from_slice(&buf[..len]);
            out.push(b'"');
            Ok(())
        }
        None => time.serialize(&mut serde_json::Serializer::new(out)),
    }
}

/// Writes `time` into `buf` and returns the length; `None` where chrono
/// writes something else than four year digits (years before 0 or after
/// 9999) or a leap second, left to chrono.
fn write(time: &DateTime<Utc>, buf: &mut [u8; LONGEST]) -> Option<usize> {
    // The fields of the UTC date and time themselves: each accessor of a
    // `DateTime` converts it to local time (for `Utc`, adding a zero
    // offset) again, which was most of this function's cost.
    let time = time.naive_utc();
    let year = u32::try_from(time.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = time.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let fraction = match nanos {
        0 => None,
        n if n % 1_000_000 == 0 => Some((n / 1_000_000, 3)),
        n if n % 1_000 == 0 => Some((n / 1_000, 6)),
        n => Some((n, 9)),
    };
    digits(&mut buf[0..4], year);
    buf[4] = b'-';
    digits(&mut buf[5..7], time.month());
    buf[7] = b'-';
    digits(&mut buf[8..10], time.day());
    buf[10] = b'T';
    digits(&mut buf[11..13], time.hour());
    buf[13] = b':';
    digits(&mut buf[14..16], time.minute());
    buf[16] = b':';
    digits(&mut buf[17..19], time.second());
    let mut len = 19;
    if let Some((value, width)) = fraction {
        buf[len] = b'.';
        digits(&mut buf[len + 1..len + 1 + width], value);
        len += 1 + width;
    }
    buf[len] = b'Z';
    Some(len + 1)
}

/// Writes `value` in decimal over all of `out`, zero-padded.
fn digits(out: &mut [u8], mut value: u32) {
    for place in out.iter_mut().rev() {
        *place = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;

    fn both(time: DateTime<Utc>) -> (String, String) {
        let ours = serde_json::to_string(&Wrapped(Some(time))).unwrap();
        let chrono = serde_json::to_string(&time).unwrap();
        (ours, chrono)
    }

    struct Wrapped(Option<DateTime<Utc>>);

    impl Serialize for Wrapped {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            rfc3339(&self.0, serializer)
        }
    }

    #[test]
    fn the_text_is_chronos_for_every_fraction_width_and_range() {
        let base = Utc.with_ymd_and_hms(2026, 12, 7, 1, 2, 3).unwrap();
        let nanos = [0, 1, 9, 10, 999, 1_000, 120_000, 123_456, 1_000_000, 5_000_000, 123_000_000, 999_999_999];
        for n in nanos {
            let (ours, chrono) = both(base + chrono::Duration::nanoseconds(n));
            assert_eq!(ours, chrono, "{n} ns");
        }
        for (y, mo, d, h, mi, s) in
            [(0, 1, 1, 0, 0, 0), (1, 2, 3, 4, 5, 6), (999, 12, 31, 23, 59, 59), (9999, 12, 31, 23, 59, 59)]
        {
            let time = Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap();
            let (ours, chrono) = both(time);
            assert_eq!(ours, chrono);
        }
    }

    #[test]
    fn years_beyond_four_digits_and_leap_seconds_are_left_to_chrono() {
        let far = Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap();
        let before = Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap();
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap();
        for time in [far, before, Utc.from_utc_datetime(&leap)] {
            assert!(write(&time, &mut [0; LONGEST]).is_none());
            let (ours, chrono) = both(time);
            assert_eq!(ours, chrono);
        }
    }

    #[test]
    fn none_is_null() {
        assert_eq!(serde_json::to_string(&Wrapped(None)).unwrap(), "null");
    }
}
