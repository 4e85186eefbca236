//! `faas_core::duration::parse`, the one duration parser (flags, watchdog
//! settings, scaling labels, `@every` schedules).
//!
//! Properties: never a panic; an accepted duration is within Go's limit
//! and reads back the same when printed in nanoseconds, in plain seconds
//! and in Go's `1h2m3.5s` form; blanks around it do not matter; a refusal
//! through `parse_field` is `Invalid` naming the field.
#![no_main]

use std::time::Duration;

use faas_core::duration::{parse, parse_field};
use faas_fuzz::{expect_invalid, text};
use libfuzzer_sys::fuzz_target;

/// Go's `Duration.String()`-like form: hours, minutes, then seconds with
/// up to nine decimals.
fn go_form(d: Duration) -> String {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let fraction = format!("{nanos:09}");
    let fraction = fraction.trim_end_matches('0');
    let seconds = if fraction.is_empty() { format!("{s}s") } else { format!("{s}.{fraction}s") };
    format!("{h}h{m}m{seconds}")
}

fuzz_target!(|data: &[u8]| {
    let input = text(data);
    let parsed = parse(&input);
    match &parsed {
        Ok(d) => {
            assert!(d.as_nanos() <= i64::MAX as u128, "{input:?} gave {d:?}, beyond Go's limit");
            let nanos = format!("{}ns", d.as_nanos());
            let plain = format!("{}.{:09}", d.as_secs(), d.subsec_nanos());
            for printed in [nanos, plain, go_form(*d)] {
                assert_eq!(parse(&printed).as_ref(), Ok(d), "{input:?} printed as {printed:?}");
            }
            assert_eq!(parse(&format!(" \t{input}\n")).as_ref(), Ok(d));
        }
        Err(_) => {
            let err = parse_field("exec_timeout", &input).expect_err("parse_field agrees with parse");
            expect_invalid(&err, &["exec_timeout"]);
        }
    }
});
