//! What a function's annotations ask for, read as OpenFaaS's connectors
//! read them.

use std::collections::BTreeMap;

use faas_core::{Error, FunctionDeployment};

use crate::schedule::Schedule;

/// Annotation: the topics a function listens to, comma-separated
/// (nats-connector), or [`CRON_TOPIC`] (cron-connector).
pub const TOPIC_ANNOTATION: &str = "topic";
/// The topic that makes a function a cron function.
pub const CRON_TOPIC: &str = "cron-function";
/// Annotation: a cron function's schedule.
pub const SCHEDULE_ANNOTATION: &str = "schedule";
/// Annotation: the IANA time zone the schedule is read in (default UTC).
pub const TIMEZONE_ANNOTATION: &str = "com.openfaas.cron.timezone";
/// Annotation: `"true"` runs the last tick missed while no gateway ran,
/// once.
pub const CATCH_UP_ANNOTATION: &str = "com.openfaas.cron.catch-up";

/// A function's trigger.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerSpec {
    /// Called on a schedule.
    Cron {
        /// When.
        schedule: Schedule,
        /// Whether the last missed tick runs after downtime.
        catch_up: bool,
    },
    /// Called for each message on these NATS subjects.
    Subjects(Vec<String>),
}

impl TriggerSpec {
    /// The trigger a deployment's annotations ask for; `None` without a
    /// `topic`. A bad schedule, time zone, catch-up flag or subject is
    /// [`Error::Invalid`] (400) naming the annotation and what it accepts.
    pub fn from_deployment(deployment: &FunctionDeployment) -> Result<Option<TriggerSpec>, Error> {
        Self::from_annotations(deployment.annotations.as_ref())
    }

    /// The trigger `annotations` ask for (see [`TriggerSpec::from_deployment`]).
    pub fn from_annotations(annotations: Option<&BTreeMap<String, String>>) -> Result<Option<TriggerSpec>, Error> {
        let get = |key: &str| annotations.and_then(|a| a.get(key)).map(|v| v.trim());
        let Some(topic) = get(TOPIC_ANNOTATION).filter(|t| !t.is_empty()) else { return Ok(None) };
        if topic == CRON_TOPIC {
            let field = format!("annotations.{SCHEDULE_ANNOTATION}");
            let expression = get(SCHEDULE_ANNOTATION)
                .ok_or_else(|| Error::invalid(&field, format!("a function with topic {CRON_TOPIC} needs one")))?;
            let timezone = get(TIMEZONE_ANNOTATION).filter(|t| !t.is_empty());
            let schedule = Schedule::parse(expression, timezone)?;
            let catch_up = match get(CATCH_UP_ANNOTATION) {
                None | Some("false") | Some("") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(Error::invalid(
                        format!("annotations.{CATCH_UP_ANNOTATION}"),
                        format!("{other:?} is neither \"true\" nor \"false\""),
                    ))
                }
            };
            return Ok(Some(TriggerSpec::Cron { schedule, catch_up }));
        }
        let mut subjects = Vec::new();
        for subject in topic.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !valid_subject(subject) {
                return Err(Error::invalid(
                    format!("annotations.{TOPIC_ANNOTATION}"),
                    format!(
                        "{subject:?} is not a NATS subject (dot-separated tokens without spaces, `*` or `>` \
                         wildcards as whole tokens, `>` last)"
                    ),
                ));
            }
            if !subjects.iter().any(|s| s == subject) {
                subjects.push(subject.to_owned());
            }
        }
        Ok((!subjects.is_empty()).then_some(TriggerSpec::Subjects(subjects)))
    }
}

/// Whether `subject` is a NATS subject a subscription accepts.
fn valid_subject(subject: &str) -> bool {
    let tokens: Vec<&str> = subject.split('.').collect();
    tokens.iter().enumerate().all(|(i, token)| {
        !token.is_empty()
            && !token.chars().any(|c| c.is_whitespace() || c.is_control())
            && (!token.contains('*') || *token == "*")
            && (!token.contains('>') || (*token == ">" && i == tokens.len() - 1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pairs: &[(&str, &str)]) -> Result<Option<TriggerSpec>, Error> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        TriggerSpec::from_annotations(Some(&map))
    }

    #[test]
    fn topics_split_on_commas_and_cron_needs_a_schedule() {
        assert_eq!(spec(&[]).unwrap(), None);
        assert_eq!(
            spec(&[("topic", "orders.new, audit,orders.new")]).unwrap(),
            Some(TriggerSpec::Subjects(vec!["orders.new".into(), "audit".into()]))
        );
        match spec(&[("topic", "cron-function"), ("schedule", "*/5 * * * *")]).unwrap() {
            Some(TriggerSpec::Cron { catch_up: false, .. }) => {}
            other => panic!("{other:?}"),
        }
        let err = spec(&[("topic", "cron-function")]).unwrap_err();
        assert!(err.message().contains("annotations.schedule"), "{}", err.message());
    }

    #[test]
    fn bad_values_name_their_annotation() {
        for (pairs, field) in [
            (vec![("topic", "a b")], "annotations.topic"),
            (vec![("topic", "a.>.b")], "annotations.topic"),
            (
                vec![("topic", "cron-function"), ("schedule", "* * * * *"), (CATCH_UP_ANNOTATION, "yes")],
                CATCH_UP_ANNOTATION,
            ),
            (vec![("topic", "cron-function"), ("schedule", "61 * * * *")], "annotations.schedule"),
            (
                vec![("topic", "cron-function"), ("schedule", "* * * * *"), (TIMEZONE_ANNOTATION, "Mars/Base")],
                TIMEZONE_ANNOTATION,
            ),
        ] {
            let err = spec(&pairs).unwrap_err();
            assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
            assert!(err.message().contains(field), "{pairs:?}: {}", err.message());
        }
    }
}
