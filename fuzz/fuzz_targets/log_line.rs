//! `faas_core::follow::split_timestamp`: the `<RFC 3339 time> <text>`
//! lines of Docker's and Kubernetes' log output that the Swarm and
//! Kubernetes providers turn into `/system/logs` messages.
//!
//! Properties: never a panic; the text is the line's own tail; a split
//! line printed again with its time in UTC splits to the same time and
//! text; a line that does not start with a time is left whole.
#![no_main]

use chrono::SecondsFormat;
use faas_core::follow::split_timestamp;
use faas_fuzz::text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = text(data);
    match split_timestamp(&line) {
        Some((time, rest)) => {
            assert!(line.ends_with(rest), "{rest:?} is not the tail of {line:?}");
            let prefix = &line[..line.len() - rest.len()];
            assert!(!prefix.is_empty() && (rest.is_empty() || prefix.ends_with(' ')), "{line:?} split at {prefix:?}");
            let printed = format!("{} {rest}", time.to_rfc3339_opts(SecondsFormat::AutoSi, true));
            assert_eq!(split_timestamp(&printed), Some((time, rest)), "{line:?} printed as {printed:?}");
        }
        None => {
            let first = line.split(' ').next().unwrap_or_default();
            assert!(chrono::DateTime::parse_from_rfc3339(first).is_err(), "{line:?} starts with a time");
        }
    }
});
