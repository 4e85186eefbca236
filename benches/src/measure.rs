//! Measuring subjects against each other: alternating, round by round.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::load::{self, EchoCaller, Plan, SpawnCat, Worker};
use crate::stats::{median, spread_pct};

/// Something called in a loop.
#[derive(Debug, Clone)]
pub enum Subject {
    /// POSTs to `path` on `addr`, expecting the body echoed.
    Http { addr: SocketAddr, path: String },
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

impl Subject {
    pub fn http(addr: SocketAddr, path: &str) -> Subject {
        Subject::Http { addr, path: path.to_owned() }
    }

    fn worker(&self, i: usize) -> Caller {
        match self {
            Subject::Http { addr, path } => Caller::Echo(EchoCaller::new(*addr, path, i)),
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

    /// `rps ±spread%`.
    pub fn rps_text(&self) -> String {
        format!("{:.0} ±{:.0}%", self.rps(), self.spread())
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
            let mut outcome = load::run(plan, |w| subject.worker(w)).await;
            let m = &mut results[i];
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
