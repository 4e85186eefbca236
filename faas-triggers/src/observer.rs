//! The last outcome of a trigger is what its call came to: the dispatcher
//! tells [`Triggers`] about each attempt of a call carrying
//! [`TRIGGER_HEADER`], and `GET /system/triggers` shows it.

use chrono::{SecondsFormat, Utc};
use faas_async::{Attempted, CallObserver, QueuedCall};

use crate::registry::{Outcome, Triggers, TRIGGER_HEADER};

impl CallObserver for Triggers {
    fn attempted(&self, call: &QueuedCall, result: &Attempted) {
        if !call.headers.iter().any(|(header, _)| header.eq_ignore_ascii_case(TRIGGER_HEADER)) {
            return;
        }
        let (result, status) = match result {
            Attempted::Answered { status, .. } => (format!("answered {}", status.as_u16()), Some(status.as_u16())),
            Attempted::Retrying { attempt, reason } => (format!("retrying (attempt {attempt}): {reason}"), None),
            Attempted::DeadLettered { reason } => (format!("dead-lettered: {reason}"), None),
        };
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        self.record_outcome(&call.function(), Outcome { at, result, status });
    }
}
