//! Measuring subjects against each other: alternating, round by round.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::load::{self, EchoCaller, Plan, SpawnCat, Worker};
use crate::procs::{cpu_time, machine_cpu_time};
use crate::stats::{median, spread_pct};

/// Something called in a loop.
#[derive(Debug, Clone)]
pub enum Subject {
    /// POSTs to `path` on `addr`, expecting the body echoed; `process` is
    /// the process serving `addr`, whose CPU time per call is reported.
    Http { addr: SocketAddr, path: String, process: Option<u32> },
    /// Spawns `cat` and pipes the payload through it.
    Spawn { cat: PathBuf },
}

/// A worker for any subject.
pub enum Caller {
    Echo(EchoCaller),
    Spawn(SpawnCat),
}

impl Worker for Caller {
    async fn call(&mut self) -> Result<(), String> {
        match self {
            Caller::Echo(c) => c.call().await,
            Caller::Spawn(c) => c.call().await,
        }
    }
}

/// The headers of [`Measured::cells`]' columns, in their order.
pub const CELL_COLUMNS: [&str; 7] =
    ["req/s", "p50 ms", "p99 ms", "CPU µs/call: machine", "harness", "server process", "errors"];

impl Subject {
    /// POSTs to `path` on `addr`, also reporting the CPU time per call of
    /// the process `pid` (the one serving `addr`; its children not included).
    pub fn http_served_by(addr: SocketAddr, path: &str, pid: u32) -> Subject {
        Subject::Http { addr, path: path.to_owned(), process: Some(pid) }
    }

    fn process(&self) -> Option<u32> {
        match self {
            Subject::Http { process, .. } => *process,
            Subject::Spawn { .. } => None,
        }
    }

    fn worker(&self, i: usize) -> Caller {
        match self {
            Subject::Http { addr, path, .. } => Caller::Echo(EchoCaller::new(*addr, path, i)),
            Subject::Spawn { cat } => Caller::Spawn(SpawnCat::new(cat, i)),
        }
    }
}

/// One subject's rounds.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub rps: Vec<f64>,
    pub p50_ms: Vec<f64>,
    pub p99_ms: Vec<f64>,
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// CPU time per call, in microseconds, of the whole machine, of the
    /// harness (the load generator) and of the subject's process, per round.
    pub machine_us: Vec<f64>,
    pub harness_us: Vec<f64>,
    pub process_us: Vec<f64>,
}

impl Measured {
    pub fn rps(&self) -> f64 {
        median(&self.rps)
    }

    pub fn spread(&self) -> f64 {
        spread_pct(&self.rps)
    }

    pub fn p50(&self) -> f64 {
        median(&self.p50_ms)
    }

    pub fn p99(&self) -> f64 {
        median(&self.p99_ms)
    }

    /// Median CPU microseconds per call: the machine, the harness, the
    /// subject's process (`None` where not measured).
    pub fn cpu_per_call(&self) -> (Option<f64>, Option<f64>, Option<f64>) {
        let of = |v: &[f64]| (!v.is_empty()).then(|| median(v));
        (of(&self.machine_us), of(&self.harness_us), of(&self.process_us))
    }

    /// `rps ±spread%`.
    pub fn rps_text(&self) -> String {
        format!("{:.0} ±{:.0}%", self.rps(), self.spread())
    }

    /// The cells every load table reports: req/s, p50 and p99 ms, CPU µs
    /// per call of the machine, the harness and the subject's process, and
    /// the errors (headed [`CELL_COLUMNS`]).
    pub fn cells(&self) -> Vec<String> {
        let (machine, harness, process) = self.cpu_per_call();
        let us = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| crate::scenarios::fmt(v, 1));
        vec![
            self.rps_text(),
            crate::scenarios::fmt(self.p50(), 3),
            crate::scenarios::fmt(self.p99(), 3),
            us(machine),
            us(harness),
            us(process),
            self.errors_text(),
        ]
    }

    pub fn errors_text(&self) -> String {
        match &self.first_error {
            Some(e) => format!("{} of {} ({})", self.errors, self.ok + self.errors, e.replace('|', "/")),
            None => "0".into(),
        }
    }
}

/// Runs every subject `rounds` times at `plan`, alternating within each
/// round; results in the subjects' order.
pub async fn alternate(subjects: &[(&str, Subject)], plan: Plan, rounds: usize) -> Vec<Measured> {
    let mut results = vec![Measured::default(); subjects.len()];
    for round in 0..rounds {
        // Alternate the order too, so no subject always runs first.
        let order: Vec<usize> =
            if round % 2 == 0 { (0..subjects.len()).collect() } else { (0..subjects.len()).rev().collect() };
        for i in order {
            let (label, subject) = &subjects[i];
            let before = CpuSample::take(subject.process());
            let mut outcome = load::run(plan, |w| subject.worker(w)).await;
            let after = CpuSample::take(subject.process());
            let m = &mut results[i];
            if let (Some(before), Some(after)) = (before, after) {
                let calls = outcome.calls.max(1) as f64;
                let per_call = |a: Duration, b: Duration| b.saturating_sub(a).as_secs_f64() * 1e6 / calls;
                m.machine_us.push(per_call(before.machine, after.machine));
                m.harness_us.push(per_call(before.harness, after.harness));
                if let (Some(a), Some(b)) = (before.process, after.process) {
                    m.process_us.push(per_call(a, b));
                }
            }
            m.rps.push(outcome.rps());
            m.p50_ms.push(outcome.latency_ms(0.50));
            m.p99_ms.push(outcome.latency_ms(0.99));
            m.ok += outcome.ok;
            m.errors += outcome.errors;
            if m.first_error.is_none() {
                m.first_error = outcome.first_error.clone();
            }
            eprintln!(
                "  round {} {label:<28} c={:<3} {:>8.0} req/s  p50 {:.3} ms  p99 {:.3} ms  errors {}",
                round + 1,
                plan.concurrency,
                outcome.rps(),
                outcome.latency_ms(0.50),
                outcome.latency_ms(0.99),
                outcome.errors
            );
        }
    }
    results
}

/// CPU time used so far: by the whole machine (all cores), by this
/// harness, and by the subject's process.
struct CpuSample {
    machine: Duration,
    harness: Duration,
    process: Option<Duration>,
}

impl CpuSample {
    /// `None` when `/proc` cannot be read (the figures are then left out).
    fn take(process: Option<u32>) -> Option<CpuSample> {
        Some(CpuSample {
            machine: machine_cpu_time().ok()?,
            harness: cpu_time(std::process::id()).ok()?,
            process: process.and_then(|pid| cpu_time(pid).ok()),
        })
    }
}
