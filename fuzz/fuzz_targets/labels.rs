//! Label and annotation parsing: the scaling labels
//! (`com.openfaas.scale.*`, faas-autoscale), the async labels
//! (`com.openfaas.async.*`, faas-async), the trigger annotations (`topic`,
//! `schedule`, `com.openfaas.cron.*`, faas-triggers, with the schedule's
//! next and last ticks) and label keys (faas-core).
//!
//! The input is a list of entries, each a known key or any key, and any
//! value. Properties: never a panic; settings read are within their
//! documented ranges; a refusal is `Invalid` naming a label or annotation
//! that is present; a schedule's next tick is after the time asked and its
//! last tick at or before it.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use chrono::{DateTime, Utc};
use faas_async::{DispatcherConfig, FunctionSettings, CONCURRENCY_LABEL, MAX_ATTEMPTS_LABEL};
use faas_autoscale::{ScaleSettings, ScalingConfig};
use faas_core::{validate, FunctionDeployment, FUNCTION_LABEL, SCALE_MIN_LABEL};
use faas_fuzz::{expect_invalid, invalid_field};
use faas_triggers::{TriggerSpec, CATCH_UP_ANNOTATION, SCHEDULE_ANNOTATION, TIMEZONE_ANNOTATION, TOPIC_ANNOTATION};
use libfuzzer_sys::fuzz_target;

/// The keys the parsers read, so most entries hit one.
const KNOWN: [&str; 14] = [
    "com.openfaas.scale.min",
    "com.openfaas.scale.max",
    "com.openfaas.scale.target",
    "com.openfaas.scale.type",
    "com.openfaas.scale.factor",
    "com.openfaas.scale.zero",
    "com.openfaas.scale.zero-duration",
    CONCURRENCY_LABEL,
    MAX_ATTEMPTS_LABEL,
    TOPIC_ANNOTATION,
    SCHEDULE_ANNOTATION,
    TIMEZONE_ANNOTATION,
    CATCH_UP_ANNOTATION,
    FUNCTION_LABEL,
];

#[derive(Debug, Arbitrary)]
enum Key {
    Known(u8),
    Other(String),
}

#[derive(Debug, Arbitrary)]
struct Input {
    entries: Vec<(Key, String)>,
    /// Seconds since the epoch the schedule is asked about.
    at: u32,
}

fuzz_target!(|input: Input| {
    let map: BTreeMap<String, String> = input
        .entries
        .into_iter()
        .map(|(key, value)| match key {
            Key::Known(i) => (KNOWN[usize::from(i) % KNOWN.len()].to_owned(), value),
            Key::Other(key) => (key, value),
        })
        .collect();
    let present = |field: &str, prefix: &str| {
        let key = field.strip_prefix(prefix).unwrap_or_else(|| panic!("{field:?} does not start with {prefix:?}"));
        assert!(map.contains_key(key), "the error names {key:?}, which is not there");
    };

    match ScaleSettings::from_labels(Some(&map), &ScalingConfig::default()) {
        Ok(s) => {
            assert!(1 <= s.min && s.min <= s.max && s.max <= validate::MAX_REPLICAS, "{s:?}");
            assert!(s.target >= 1 && (1..=100).contains(&s.factor) && !s.zero_duration.is_zero(), "{s:?}");
            assert_eq!(ScaleSettings::lenient(Some(&map), &ScalingConfig::default()), s);
        }
        Err(err) => {
            expect_invalid(&err, &["labels.com.openfaas.scale.*"]);
            present(invalid_field(&err), "labels.");
        }
    }

    match FunctionSettings::from_labels(Some(&map), &DispatcherConfig::default()) {
        Ok(s) => assert!((1..=1024).contains(&s.concurrency) && (1..=100).contains(&s.max_attempts), "{s:?}"),
        Err(err) => {
            let err = faas_core::Error::from(err);
            expect_invalid(&err, &[&format!("labels.{CONCURRENCY_LABEL}"), &format!("labels.{MAX_ATTEMPTS_LABEL}")]);
            present(invalid_field(&err), "labels.");
        }
    }

    match TriggerSpec::from_annotations(Some(&map)) {
        Ok(Some(TriggerSpec::Cron { schedule, .. })) => {
            let at = DateTime::<Utc>::from_timestamp(i64::from(input.at), 0).expect("a u32 of seconds is a time");
            if let Some(next) = schedule.next_after(at) {
                assert!(next > at, "{schedule:?}: next tick {next} is not after {at}");
            }
            if let Some(last) = schedule.last_at_or_before(at) {
                assert!(last <= at, "{schedule:?}: last tick {last} is after {at}");
            }
        }
        Ok(Some(TriggerSpec::Subjects(subjects))) => {
            assert!(!subjects.is_empty() && subjects.iter().all(|s| !s.is_empty() && !s.contains(',')));
        }
        Ok(None) => {
            let topic = map.get(TOPIC_ANNOTATION).map_or("", String::as_str);
            assert!(topic.split(',').all(|s| s.trim().is_empty()), "topic {topic:?} gave no trigger");
        }
        Err(err) => expect_invalid(
            &err,
            &[
                &format!("annotations.{TOPIC_ANNOTATION}"),
                &format!("annotations.{SCHEDULE_ANNOTATION}"),
                &format!("annotations.{TIMEZONE_ANNOTATION}"),
                &format!("annotations.{CATCH_UP_ANNOTATION}"),
            ],
        ),
    }

    for key in map.keys() {
        if let Err(err) = validate::label_key(&format!("labels.{key}"), key) {
            expect_invalid(&err, &[&format!("labels.{key}")]);
        }
    }
    let deployment = FunctionDeployment {
        service: "echo".into(),
        image: "i".into(),
        labels: Some(map.clone()),
        annotations: Some(map.clone()),
        ..FunctionDeployment::default()
    };
    match deployment.validate() {
        Ok(()) => assert!(deployment.initial_replicas().is_ok()),
        Err(err) => expect_invalid(&err, &["labels.", "annotations."]),
    }
    if map.contains_key(SCALE_MIN_LABEL) {
        if let Err(err) = deployment.initial_replicas() {
            expect_invalid(&err, &[&format!("labels.{SCALE_MIN_LABEL}")]);
        }
    }
});
