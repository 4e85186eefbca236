//! The triggers of every function, and cron ticks turned into queued
//! asynchronous calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, SecondsFormat, Utc};
use faas_async::{Queue, QueuedCall};
use faas_core::{FunctionRef, FunctionStatus};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::metrics::TriggerMetrics;
use crate::spec::TriggerSpec;
use crate::ticklog::TickLog;

/// Header naming what triggered a call: `cron` or `nats`.
pub const TRIGGER_HEADER: &str = "X-Trigger";
/// Header of a cron call: the schedule as written.
pub const SCHEDULE_HEADER: &str = "X-Schedule";
/// Header of a cron call: the tick it runs for (RFC 3339, UTC).
pub const SCHEDULED_TIME_HEADER: &str = "X-Scheduled-Time";

/// What became of a trigger's last firing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// When: the tick (cron) or the message's arrival (NATS) while the
    /// call is queued, then when its attempt ended; RFC 3339.
    pub at: String,
    /// `queued` or `failed: <reason>` when the trigger fired; then what the
    /// call came to: `answered <status>`, `retrying (attempt <n>): <reason>`
    /// or `dead-lettered: <reason>`.
    pub result: String,
    /// The function's status, once it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// One trigger as `GET /system/triggers` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerInfo {
    /// `name.namespace`.
    pub function: String,
    /// `cron` or `nats`.
    pub kind: &'static str,
    /// The schedule (cron).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The time zone (cron).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The subjects (nats).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subjects: Option<Vec<String>>,
    /// The next tick, RFC 3339 (cron).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    /// The last firing, if any since this gateway started.
    pub last_outcome: Option<Outcome>,
}

struct Entry {
    spec: TriggerSpec,
    /// The next tick (cron).
    next: Option<DateTime<Utc>>,
    /// Catch-up still to be checked (cron, newly registered).
    catch_up_pending: bool,
    last: Option<Outcome>,
}

/// The triggers of every function: kept in step with deploys by
/// [`crate::TriggerLayer`] and [`Triggers::sync`]; cron ticks fire through
/// [`Triggers::fire_due`] into the asynchronous queue.
pub struct Triggers {
    queue: Arc<dyn Queue>,
    ticks: Arc<dyn TickLog>,
    metrics: Arc<TriggerMetrics>,
    entries: Mutex<BTreeMap<FunctionRef, Entry>>,
    /// The NATS subjects and their functions, republished on change.
    subjects: watch::Sender<BTreeMap<String, Vec<FunctionRef>>>,
}

impl std::fmt::Debug for Triggers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Triggers").field("queue", &self.queue.kind()).finish_non_exhaustive()
    }
}

impl Triggers {
    /// No triggers yet; calls go to `queue`, fired ticks are recorded in `ticks`.
    pub fn new(queue: Arc<dyn Queue>, ticks: Arc<dyn TickLog>, metrics: Arc<TriggerMetrics>) -> Arc<Triggers> {
        Arc::new(Triggers {
            queue,
            ticks,
            metrics,
            entries: Mutex::new(BTreeMap::new()),
            subjects: watch::channel(BTreeMap::new()).0,
        })
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<TriggerMetrics> {
        &self.metrics
    }

    /// The queue calls go to.
    pub(crate) fn queue(&self) -> &Arc<dyn Queue> {
        &self.queue
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<FunctionRef, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets (or with `None` removes) `function`'s trigger at time `now`. An
    /// unchanged schedule keeps its next tick; a new one starts at the
    /// first tick after `now`.
    pub fn set(&self, function: &FunctionRef, spec: Option<TriggerSpec>, now: DateTime<Utc>) {
        {
            let mut entries = self.lock();
            match spec {
                None => {
                    entries.remove(function);
                }
                Some(spec) => {
                    if entries.get(function).is_some_and(|entry| entry.spec == spec) {
                        return;
                    }
                    let (next, catch_up_pending) = match &spec {
                        TriggerSpec::Cron { schedule, catch_up } => (schedule.next_after(now), *catch_up),
                        TriggerSpec::Subjects(_) => (None, false),
                    };
                    let last = entries.remove(function).and_then(|entry| entry.last);
                    entries.insert(function.clone(), Entry { spec, next, catch_up_pending, last });
                }
            }
        }
        self.publish_subjects();
    }

    /// Replaces every trigger with those of `functions` (a function whose
    /// annotations are bad is logged and left without a trigger).
    pub fn sync(&self, functions: &[FunctionStatus], now: DateTime<Utc>) {
        let mut wanted = BTreeMap::new();
        for status in functions {
            let function = FunctionRef::new(status.name.clone(), status.namespace.clone());
            match TriggerSpec::from_annotations(status.annotations.as_ref()) {
                Ok(Some(spec)) => {
                    wanted.insert(function, spec);
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(function = %function, error = %err.message(), "ignoring a bad trigger"),
            }
        }
        let gone: Vec<FunctionRef> = self.lock().keys().filter(|f| !wanted.contains_key(*f)).cloned().collect();
        for function in gone {
            self.set(&function, None, now);
        }
        for (function, spec) in wanted {
            self.set(&function, Some(spec), now);
        }
    }

    fn publish_subjects(&self) {
        let mut subjects: BTreeMap<String, Vec<FunctionRef>> = BTreeMap::new();
        for (function, entry) in self.lock().iter() {
            if let TriggerSpec::Subjects(list) = &entry.spec {
                for subject in list {
                    subjects.entry(subject.clone()).or_default().push(function.clone());
                }
            }
        }
        self.subjects.send_if_modified(|current| {
            let changed = *current != subjects;
            *current = subjects;
            changed
        });
    }

    /// The NATS subjects and the functions each one calls, watched.
    pub fn subjects(&self) -> watch::Receiver<BTreeMap<String, Vec<FunctionRef>>> {
        self.subjects.subscribe()
    }

    /// Every trigger, for `GET /system/triggers`.
    pub fn list(&self) -> Vec<TriggerInfo> {
        let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        self.lock()
            .iter()
            .map(|(function, entry)| match &entry.spec {
                TriggerSpec::Cron { schedule, .. } => TriggerInfo {
                    function: function.to_string(),
                    kind: "cron",
                    schedule: Some(schedule.expression().to_owned()),
                    timezone: Some(schedule.timezone().to_owned()),
                    subjects: None,
                    next_run: entry.next.map(rfc),
                    last_outcome: entry.last.clone(),
                },
                TriggerSpec::Subjects(subjects) => TriggerInfo {
                    function: function.to_string(),
                    kind: "nats",
                    schedule: None,
                    timezone: None,
                    subjects: Some(subjects.clone()),
                    next_run: None,
                    last_outcome: entry.last.clone(),
                },
            })
            .collect()
    }

    /// The earliest next tick of any cron trigger.
    pub fn next_tick(&self) -> Option<DateTime<Utc>> {
        self.lock().values().filter_map(|entry| entry.next).min()
    }

    /// Queues the cron ticks due at `now`: per function at most one, the
    /// latest due (a backlog of ticks missed while the gateway was stopped
    /// or stalled is not replayed), plus, for a function newly registered
    /// with catch-up, the last tick missed since the last one it fired.
    /// Returns how many calls were queued.
    pub async fn fire_due(&self, now: DateTime<Utc>) -> usize {
        let mut due = Vec::new();
        let mut catch_up = Vec::new();
        {
            let mut entries = self.lock();
            for (function, entry) in entries.iter_mut() {
                let TriggerSpec::Cron { schedule, .. } = &entry.spec else { continue };
                if std::mem::take(&mut entry.catch_up_pending) {
                    if let Some(tick) = schedule.last_at_or_before(now) {
                        catch_up.push((function.clone(), schedule.clone(), tick));
                    }
                }
                if entry.next.is_some_and(|next| next <= now) {
                    if let Some(tick) = schedule.last_at_or_before(now) {
                        due.push((function.clone(), schedule.clone(), tick));
                    }
                    entry.next = schedule.next_after(now);
                }
            }
        }
        let mut fired = 0;
        for (function, schedule, tick) in catch_up {
            let key = function.to_string();
            match self.ticks.last(&key).await {
                // Only a tick missed since one this function fired before.
                Ok(Some(last)) if last < tick.timestamp_millis() => {
                    tracing::info!(function = key, tick = %tick, "catching up a missed tick");
                    fired += usize::from(self.fire(&function, &schedule, tick).await);
                }
                Ok(_) => {}
                Err(reason) => tracing::warn!(function = key, reason, "cannot read the last tick; no catch-up"),
            }
        }
        for (function, schedule, tick) in due {
            fired += usize::from(self.fire(&function, &schedule, tick).await);
        }
        fired
    }

    /// Queues one tick's call; true if it was queued.
    async fn fire(&self, function: &FunctionRef, schedule: &crate::Schedule, tick: DateTime<Utc>) -> bool {
        let name = function.to_string();
        let at = tick.to_rfc3339_opts(SecondsFormat::Secs, true);
        let call = QueuedCall {
            headers: vec![
                (TRIGGER_HEADER.to_owned(), b"cron".to_vec()),
                (SCHEDULE_HEADER.to_owned(), schedule.expression().as_bytes().to_vec()),
                (SCHEDULED_TIME_HEADER.to_owned(), at.as_bytes().to_vec()),
            ],
            // The tick, not the clock: every gateway queues the same call.
            accepted_at_ms: u64::try_from(tick.timestamp_millis()).unwrap_or_default(),
            ..QueuedCall::post(tick_id(function, tick), function, Vec::new())
        };
        let result = self.queue.enqueue(call).await;
        let queued = result.is_ok();
        let outcome = match result {
            Ok(()) => {
                self.metrics.fired(&name, "cron");
                if let Err(reason) = self.ticks.record(&name, tick.timestamp_millis()).await {
                    tracing::warn!(function = name, reason, "cannot record a fired tick");
                }
                "queued".to_owned()
            }
            Err(err) => {
                self.metrics.failed(&name, "cron");
                tracing::warn!(function = name, tick = at, error = %err, "cannot queue a cron tick");
                format!("failed: {err}")
            }
        };
        self.record_outcome(function, Outcome { at, result: outcome, status: None });
        queued
    }

    /// Notes what became of `function`'s last firing.
    pub(crate) fn record_outcome(&self, function: &FunctionRef, outcome: Outcome) {
        if let Some(entry) = self.lock().get_mut(function) {
            entry.last = Some(outcome);
        }
    }
}

/// A tick's call id, the same on every gateway: `cron-` and 32 hex digits
/// of a hash of the function and the tick (a valid JetStream subject token
/// and message id part).
pub fn tick_id(function: &FunctionRef, tick: DateTime<Utc>) -> String {
    let digest = Sha256::digest(format!("{function}@{}", tick.timestamp_millis()).as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("cron-{hex}")
}
