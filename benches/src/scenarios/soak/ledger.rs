//! What the soak's load saw: successes per kind of work, and every error
//! classified as explained by the churn (a call to a function being
//! deleted, redeployed or updated) or not.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after a deploy, update or delete of a churned function a
/// failed call to it is put down to that change (the instance stopping
/// and starting; generous, the machine is shared).
pub const CHANGE_WINDOW: Duration = Duration::from_secs(10);

/// What a call ended with, when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// An answer with this status (or a 200 with the wrong body: `200`).
    Status(u16),
    /// No answer: a connection error or a timeout.
    NoAnswer(String),
}

impl Failure {
    /// The failure as a class name: the status, or the kind of transport error.
    fn label(&self) -> String {
        match self {
            Failure::Status(200) => "200 with a wrong body".into(),
            Failure::Status(code) => format!("status {code}"),
            Failure::NoAnswer(e) if e.contains("no answer within") => "timeout".into(),
            Failure::NoAnswer(_) => "no answer".into(),
        }
    }

    fn detail(&self) -> String {
        match self {
            Failure::Status(code) => format!("status {code}"),
            Failure::NoAnswer(e) => e.clone(),
        }
    }
}

/// A churned function's state, as the churn last set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChurnState {
    /// Deployed (true) or deleted (false).
    pub deployed: bool,
    /// When it was last deployed, updated or deleted (set both when the
    /// request is sent and when it is answered).
    pub changed: Instant,
}

/// Whether a failed call to a churned function is explained by the churn:
/// the class to count it under and whether it is explained. `before` and
/// `after` are the function's state when the call began and ended.
pub fn classify_churn_call(failure: &Failure, began: Instant, before: ChurnState, after: ChurnState) -> (String, bool) {
    let label = failure.label();
    if !before.deployed || !after.deployed {
        return (format!("churn call: {label}, function deleted"), true);
    }
    let since_change = began.checked_duration_since(after.changed).unwrap_or_default();
    if after.changed >= began || since_change < CHANGE_WINDOW {
        return (format!("churn call: {label}, function just (re)deployed or updated"), true);
    }
    (format!("churn call: {label}, function deployed and unchanged for {} s", since_change.as_secs()), false)
}

#[derive(Debug, Default)]
struct Class {
    count: u64,
    explained: bool,
    example: String,
}

/// Counts of successes and errors, shared by every actor.
#[derive(Debug, Default)]
pub struct Ledger {
    ok: Mutex<BTreeMap<&'static str, u64>>,
    errors: Mutex<BTreeMap<String, Class>>,
}

/// One class of errors, for the report.
#[derive(Debug, Clone)]
pub struct ErrorRow {
    pub class: String,
    pub count: u64,
    pub explained: bool,
    pub example: String,
}

impl Ledger {
    /// Counts one success of `kind`.
    pub fn ok(&self, kind: &'static str) {
        *self.ok.lock().unwrap_or_else(|p| p.into_inner()).entry(kind).or_default() += 1;
    }

    /// Counts `count` errors of `class`, keeping the first example.
    pub fn error(&self, class: String, explained: bool, example: &str, count: u64) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        let entry = errors.entry(class).or_default();
        if entry.count == 0 {
            entry.example = example.chars().take(160).collect();
        }
        entry.count += count;
        entry.explained = explained;
    }

    /// A failure of work other than churn calls: never explained.
    pub fn failed(&self, kind: &'static str, failure: &Failure) {
        self.error(format!("{kind}: {}", failure.label()), false, &failure.detail(), 1);
    }

    /// A failure of a call to a churned function, classified.
    pub fn churn_failed(&self, failure: &Failure, began: Instant, before: ChurnState, after: ChurnState) {
        let (class, explained) = classify_churn_call(failure, began, before, after);
        self.error(class, explained, &failure.detail(), 1);
    }

    /// Successes by kind.
    pub fn successes(&self) -> BTreeMap<&'static str, u64> {
        self.ok.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every error class, most frequent first.
    pub fn error_rows(&self) -> Vec<ErrorRow> {
        let errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows: Vec<ErrorRow> = errors
            .iter()
            .map(|(class, c)| ErrorRow {
                class: class.clone(),
                count: c.count,
                explained: c.explained,
                example: c.example.clone(),
            })
            .collect();
        rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.class.cmp(&b.class)));
        rows
    }

    /// Errors so far: (explained by the churn, not explained).
    pub fn error_totals(&self) -> (u64, u64) {
        let errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        errors.values().fold((0, 0), |(yes, no), c| if c.explained { (yes + c.count, no) } else { (yes, no + c.count) })
    }
}
