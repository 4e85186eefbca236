use std::time::{Duration, Instant};

use super::chart::{csv, Sample};
use super::ledger::{classify_churn_call, ChurnState, Failure, Ledger, CHANGE_WINDOW};
use provider_local::DEFAULT_LOG_LINES;

use super::actors::{ring_fill_time, steady_log_rates, CHURN_CYCLE};
use super::{growth_pct, SoakPlan};
use crate::stats::linear_fit;

#[test]
fn churn_explains_failures_only_near_a_change_or_while_deleted() {
    let long_ago = Instant::now();
    let began = long_ago + CHANGE_WINDOW * 3;
    let deployed = ChurnState { deployed: true, changed: long_ago };
    let deleted = ChurnState { deployed: false, changed: long_ago };
    let not_found = Failure::Status(404);

    let (class, explained) = classify_churn_call(&not_found, began, deleted, deleted);
    assert!(explained && class.contains("deleted"), "{class}");
    let (_, explained) = classify_churn_call(&not_found, began, deployed, deleted);
    assert!(explained, "deleted during the call");

    let updated = ChurnState { deployed: true, changed: began - CHANGE_WINDOW / 2 };
    let (class, explained) = classify_churn_call(&Failure::Status(502), began, updated, updated);
    assert!(explained && class.contains("just (re)deployed"), "{class}");
    let during = ChurnState { deployed: true, changed: began + Duration::from_millis(5) };
    assert!(classify_churn_call(&Failure::NoAnswer("reset".into()), began, deployed, during).1);

    let (class, explained) = classify_churn_call(&Failure::Status(502), began, deployed, deployed);
    assert!(!explained, "a deployed, unchanged function must not fail: {class}");
    assert!(class.contains("unchanged for 30 s"), "{class}");
}

#[test]
fn the_ledger_counts_explained_and_unexplained_apart() {
    let ledger = Ledger::default();
    let now = Instant::now();
    let deleted = ChurnState { deployed: false, changed: now };
    ledger.ok("sync http");
    ledger.ok("sync http");
    ledger.churn_failed(&Failure::Status(404), now, deleted, deleted);
    ledger.churn_failed(&Failure::Status(404), now, deleted, deleted);
    ledger.failed("fork", &Failure::NoAnswer("/function/soak-fork: no answer within 60s".into()));
    assert_eq!(ledger.error_totals(), (2, 1));
    assert_eq!(ledger.successes()["sync http"], 2);
    let rows = ledger.error_rows();
    assert_eq!(rows[0].count, 2);
    assert!(rows[0].explained);
    assert_eq!(rows[1].class, "fork: timeout");
    assert!(!rows[1].explained);
}

#[test]
fn flatness_is_growth_per_ten_minutes_in_percent_of_the_mean() {
    // 100 MiB growing 0.5 MiB per 10 minutes: 0.5%; sampled every 10 s.
    let points: Vec<(f64, f64)> =
        (0..180).map(|i| (f64::from(i) * 10.0, 100.0 + f64::from(i) * 10.0 * 0.5 / 600.0)).collect();
    let growth = growth_pct(&linear_fit(&points).unwrap());
    assert!((growth - 0.5).abs() < 0.01, "{growth}");
    // A leak of 1 MiB a minute is far beyond 1%.
    let leak: Vec<(f64, f64)> = (0..18).map(|i| (f64::from(i) * 10.0, 100.0 + f64::from(i) / 6.0)).collect();
    assert!(growth_pct(&linear_fit(&leak).unwrap()) > 5.0);
}

#[test]
fn warmup_lasts_until_every_log_ring_is_full() {
    let plan = |minutes: u64| SoakPlan { duration: Duration::from_secs(minutes * 60), label: "soak" };
    let full = plan(30).rings_full();
    for (name, per_second) in steady_log_rates() {
        let lines = per_second * full.as_secs_f64();
        assert!(lines >= DEFAULT_LOG_LINES as f64 - 1e-6, "{name}'s ring holds {lines:.0} lines at the warm-up's end");
    }
    assert!(full >= CHURN_CYCLE);
    // Not longer than the slowest ring: `soak-fork`, 10 calls of 2 lines a second.
    assert_eq!(ring_fill_time(DEFAULT_LOG_LINES), (Duration::from_secs(500), "soak-fork"));
    assert_eq!(plan(30).warmup(), full);
    // A short run keeps half of itself to fit.
    assert_eq!(plan(3).warmup(), Duration::from_secs(90));
}

#[test]
fn samples_write_as_csv_with_a_header() {
    let sample = Sample { t_s: 10.0, rss_kb: 20480, fds: 31, threads: 9, ok: 5, ..Default::default() };
    let text = csv(&[sample]);
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("t_s,rss_mib,fds,threads,"));
    assert_eq!(lines.next().unwrap(), "10.0,20.00,31,9,0,0,5,0,0");
    assert_eq!(lines.next(), None);
}
