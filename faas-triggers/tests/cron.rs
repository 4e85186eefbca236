//! Cron triggers on injected time (no sleeping for ticks): ticks queued
//! in the embedded queue, run by the real workers over an in-memory
//! provider.

mod support;

use std::sync::Arc;

use faas_async::{EmbeddedQueue, Queue};
use faas_core::{FunctionRef, Provider, SharedProvider};
use faas_triggers::{FileTickLog, TickLog, TriggerLayer, TriggerSpec, CATCH_UP_ANNOTATION};
use support::{at, deployment, provider, settled, triggers, workers, Calls};

const FIVE_MINUTES: [(&str, &str); 2] = [("topic", "cron-function"), ("schedule", "*/5 * * * *")];

async fn embedded(dir: &std::path::Path) -> (Arc<dyn Queue>, Arc<dyn TickLog>) {
    let (queue, _) = EmbeddedQueue::open(&dir.join("async")).await.unwrap();
    let ticks = FileTickLog::open(dir.join("triggers/ticks.json")).await.unwrap();
    (Arc::new(queue), Arc::new(ticks))
}

fn spec(annotations: &[(&str, &str)]) -> Option<TriggerSpec> {
    let map = annotations.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    TriggerSpec::from_annotations(Some(&map)).unwrap()
}

#[tokio::test]
async fn every_five_minutes_runs_at_00_and_05_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, ticks) = embedded(dir.path()).await;
    let calls = Calls::default();
    let provider: SharedProvider = Arc::new(provider(calls.clone()));
    provider.deploy(deployment("report", &FIVE_MINUTES)).await.unwrap();
    let triggers = triggers(queue.clone(), ticks);
    let function = FunctionRef::new("report", "openfaas-fn");
    triggers.set(&function, spec(&FIVE_MINUTES), at("2026-03-01T11:59:30Z"));

    let mut fired = Vec::new();
    for now in [
        "2026-03-01T11:59:59Z",
        "2026-03-01T12:00:00Z",
        "2026-03-01T12:00:00.400Z",
        "2026-03-01T12:00:01Z",
        "2026-03-01T12:04:59Z",
        "2026-03-01T12:05:00Z",
        "2026-03-01T12:05:30Z",
    ] {
        fired.push(triggers.fire_due(at(now)).await);
    }
    assert_eq!(fired, [0, 1, 0, 0, 0, 1, 0]);
    let listed = triggers.list();
    assert_eq!(listed[0].next_run.as_deref(), Some("2026-03-01T12:10:00Z"));
    assert_eq!(listed[0].last_outcome.as_ref().unwrap().result, "queued");
    assert_eq!(triggers.metrics().fired_count("report.openfaas-fn", "cron"), 2);

    let (_, handle) = workers(queue, provider);
    let seen = settled(&calls, 2).await;
    handle.shutdown(std::time::Duration::from_secs(5)).await;
    let mut times: Vec<&str> = seen.iter().map(|s| s.headers["x-scheduled-time"].as_str()).collect();
    times.sort_unstable();
    assert_eq!(times, ["2026-03-01T12:00:00Z", "2026-03-01T12:05:00Z"], "{seen:?}");
    for call in &seen {
        assert_eq!((call.method.as_str(), call.body.as_str()), ("POST", ""));
        assert_eq!(call.headers["x-trigger"], "cron");
        assert_eq!(call.headers["x-schedule"], "*/5 * * * *");
    }
}

#[tokio::test]
async fn the_last_outcome_is_what_the_call_came_to() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, ticks) = embedded(dir.path()).await;
    let calls = Calls::default();
    let provider: SharedProvider = Arc::new(provider(calls.clone()));
    provider.deploy(deployment("report", &FIVE_MINUTES)).await.unwrap();
    let triggers = triggers(queue.clone(), ticks);
    let report = FunctionRef::new("report", "openfaas-fn");
    // Never deployed: its tick is queued, and the provider answers 404.
    let ghost = FunctionRef::new("ghost", "openfaas-fn");
    triggers.set(&report, spec(&FIVE_MINUTES), at("2026-03-01T11:59:30Z"));
    triggers.set(&ghost, spec(&FIVE_MINUTES), at("2026-03-01T11:59:30Z"));
    assert_eq!(triggers.fire_due(at("2026-03-01T12:00:00Z")).await, 2);
    let outcome = |function: &str| {
        let listed = triggers.list().into_iter().find(|t| t.function == function).unwrap();
        listed.last_outcome.unwrap()
    };
    assert_eq!(
        (outcome("report.openfaas-fn").result, outcome("report.openfaas-fn").status),
        ("queued".to_owned(), None)
    );

    let dispatcher =
        faas_async::Dispatcher::new(queue, provider, Default::default(), Arc::new(faas_async::AsyncMetrics::new()));
    assert!(dispatcher.set_observer(triggers.clone()));
    let handle = dispatcher.spawn();
    settled(&calls, 1).await;
    let deadline = std::time::Instant::now() + support::WAIT;
    while outcome("ghost.openfaas-fn").status.is_none() || outcome("report.openfaas-fn").status.is_none() {
        assert!(std::time::Instant::now() < deadline, "{:?}", triggers.list());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    handle.shutdown(std::time::Duration::from_secs(5)).await;
    let report = outcome("report.openfaas-fn");
    assert_eq!((report.result.as_str(), report.status), ("answered 200", Some(200)));
    let ghost = outcome("ghost.openfaas-fn");
    assert_eq!((ghost.result.as_str(), ghost.status), ("answered 404", Some(404)));
}

#[tokio::test]
async fn a_stalled_gateway_runs_the_latest_due_tick_only() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, ticks) = embedded(dir.path()).await;
    let triggers = triggers(queue.clone(), ticks);
    let function = FunctionRef::new("report", "openfaas-fn");
    triggers.set(&function, spec(&FIVE_MINUTES), at("2026-03-01T12:01:00Z"));
    // 12:05, 12:10, 12:15 and 12:20 all passed unseen: one call, for 12:20.
    assert_eq!(triggers.fire_due(at("2026-03-01T12:21:00Z")).await, 1);
    let claimed = queue.claim(std::time::Duration::from_secs(5)).await.unwrap().unwrap();
    let time = claimed.call.headers.iter().find(|(k, _)| k == "X-Scheduled-Time").unwrap();
    assert_eq!(time.1, b"2026-03-01T12:20:00Z");
    assert!(queue.claim(std::time::Duration::from_millis(100)).await.unwrap().is_none());
}

#[tokio::test]
async fn a_crash_between_queueing_and_running_still_runs_the_tick_once() {
    let dir = tempfile::tempdir().unwrap();
    let function = FunctionRef::new("report", "openfaas-fn");
    {
        // The first gateway queues the 12:00 tick and dies before any worker runs it.
        let (queue, ticks) = embedded(dir.path()).await;
        let triggers = triggers(queue, ticks);
        triggers.set(&function, spec(&FIVE_MINUTES), at("2026-03-01T11:59:00Z"));
        assert_eq!(triggers.fire_due(at("2026-03-01T12:00:00Z")).await, 1);
    }
    // The restarted gateway, with catch-up on: the tick was recorded, so
    // not queued again, and the queue still holds it.
    let (queue, ticks) = embedded(dir.path()).await;
    let triggers = triggers(queue.clone(), ticks);
    let annotations = [FIVE_MINUTES[0], FIVE_MINUTES[1], (CATCH_UP_ANNOTATION, "true")];
    triggers.set(&function, spec(&annotations), at("2026-03-01T12:01:00Z"));
    assert_eq!(triggers.fire_due(at("2026-03-01T12:01:00Z")).await, 0);

    let calls = Calls::default();
    let provider: SharedProvider = Arc::new(provider(calls.clone()));
    provider.deploy(deployment("report", &annotations)).await.unwrap();
    let (_, handle) = workers(queue.clone(), provider);
    let seen = settled(&calls, 1).await;
    handle.shutdown(std::time::Duration::from_secs(5)).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].headers["x-scheduled-time"], "2026-03-01T12:00:00Z");
}

#[tokio::test]
async fn catch_up_runs_the_last_missed_tick_once_and_only_when_asked() {
    let function = FunctionRef::new("report", "openfaas-fn");
    for (catch_up, expected) in [(false, 0), (true, 1)] {
        let dir = tempfile::tempdir().unwrap();
        {
            let (queue, ticks) = embedded(dir.path()).await;
            let triggers = triggers(queue, ticks);
            triggers.set(&function, spec(&FIVE_MINUTES), at("2026-03-01T11:59:00Z"));
            assert_eq!(triggers.fire_due(at("2026-03-01T12:00:00Z")).await, 1);
        }
        // Down from 12:02 to 12:17: 12:05, 12:10 and 12:15 were missed.
        let (queue, ticks) = embedded(dir.path()).await;
        let triggers = triggers(queue.clone(), ticks);
        let flag = if catch_up { "true" } else { "false" };
        let annotations = [FIVE_MINUTES[0], FIVE_MINUTES[1], (CATCH_UP_ANNOTATION, flag)];
        triggers.set(&function, spec(&annotations), at("2026-03-01T12:17:00Z"));
        assert_eq!(triggers.fire_due(at("2026-03-01T12:17:00Z")).await, expected, "catch-up {catch_up}");
        assert_eq!(triggers.fire_due(at("2026-03-01T12:18:00Z")).await, 0);
        let mut times = Vec::new();
        while let Some(claimed) = queue.claim(std::time::Duration::from_millis(200)).await.unwrap() {
            let time = claimed.call.headers.iter().find(|(k, _)| k == "X-Scheduled-Time").unwrap().1.clone();
            times.push(String::from_utf8(time).unwrap());
            queue.ack(&claimed).await.unwrap();
        }
        // The 12:00 call is still queued (no worker ran), plus the catch-up.
        let mut expected_times = vec!["2026-03-01T12:00:00Z".to_owned()];
        if catch_up {
            expected_times.push("2026-03-01T12:15:00Z".to_owned());
        }
        times.sort();
        assert_eq!(times, expected_times, "catch-up {catch_up}");
    }
}

#[tokio::test]
async fn triggers_follow_deploys_updates_and_deletes_and_refuse_bad_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, ticks) = embedded(dir.path()).await;
    let triggers = triggers(queue, ticks);
    let layer = Arc::new(TriggerLayer::new(Arc::new(provider(Calls::default())), triggers.clone()));
    let provider: &dyn Provider = &*layer;

    provider.deploy(deployment("report", &FIVE_MINUTES)).await.unwrap();
    let listed = triggers.list();
    assert_eq!((listed.len(), listed[0].schedule.as_deref()), (1, Some("*/5 * * * *")));

    let hourly = [("topic", "cron-function"), ("schedule", "@hourly"), ("com.openfaas.cron.timezone", "Asia/Kolkata")];
    provider.update(deployment("report", &hourly)).await.unwrap();
    let listed = triggers.list();
    assert_eq!(listed[0].schedule.as_deref(), Some("@hourly"));
    assert_eq!(listed[0].timezone.as_deref(), Some("Asia/Kolkata"));
    // Kolkata is UTC+05:30: its hours start at :30 UTC.
    assert!(listed[0].next_run.as_deref().unwrap().ends_with(":30:00Z"), "{listed:?}");

    for (annotations, field) in [
        (vec![("topic", "cron-function"), ("schedule", "every day")], "annotations.schedule"),
        (vec![("topic", "cron-function"), ("schedule", "@every 100ms")], "annotations.schedule"),
        (
            vec![("topic", "cron-function"), ("schedule", "@daily"), ("com.openfaas.cron.timezone", "Utopia")],
            "com.openfaas.cron.timezone",
        ),
    ] {
        let err = provider.deploy(deployment("bad", &annotations)).await.unwrap_err();
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
        assert!(err.message().contains(field), "{}", err.message());
        let err = provider.update(deployment("report", &annotations)).await.unwrap_err();
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
    }
    // Refused deploys never reached the backend; the refused update left the schedule.
    assert!(provider.status(&FunctionRef::new("bad", "openfaas-fn")).await.is_err());
    assert_eq!(triggers.list()[0].schedule.as_deref(), Some("@hourly"));

    provider.update(deployment("report", &[("topic", "orders,audit")])).await.unwrap();
    assert_eq!(triggers.list()[0].subjects.as_deref(), Some(&["orders".to_owned(), "audit".to_owned()][..]));
    assert_eq!(triggers.subjects().borrow().keys().cloned().collect::<Vec<_>>(), ["audit", "orders"]);

    provider.delete(&FunctionRef::new("report", "openfaas-fn")).await.unwrap();
    assert!(triggers.list().is_empty());
    assert!(triggers.subjects().borrow().is_empty());

    // Functions deployed behind the layer's back are found by a refresh.
    faas_core::Layer::inner(&*layer)
        .deploy(deployment("nightly", &[("topic", "cron-function"), ("schedule", "@daily")]))
        .await
        .unwrap();
    layer.refresh().await.unwrap();
    assert_eq!(triggers.list()[0].function, "nightly.openfaas-fn");
}

/// A queue that refuses every new call (as a full disk or a NATS outage
/// does) and otherwise is the embedded one.
struct Refusing(Arc<dyn Queue>);

#[async_trait::async_trait]
impl Queue for Refusing {
    fn kind(&self) -> &'static str {
        "refusing"
    }
    async fn enqueue(&self, _call: faas_async::QueuedCall) -> Result<(), faas_async::AsyncError> {
        Err(faas_async::AsyncError::Nats { what: "publish a call", source: "no server".into() })
    }
    async fn claim(&self, wait: std::time::Duration) -> Result<Option<faas_async::Claimed>, faas_async::AsyncError> {
        self.0.claim(wait).await
    }
    async fn ack(&self, claimed: &faas_async::Claimed) -> Result<(), faas_async::AsyncError> {
        self.0.ack(claimed).await
    }
    async fn nack(
        &self,
        claimed: &faas_async::Claimed,
        delay: std::time::Duration,
    ) -> Result<(), faas_async::AsyncError> {
        self.0.nack(claimed, delay).await
    }
    async fn dead_letter(
        &self,
        claimed: &faas_async::Claimed,
        stage: faas_async::FailedStage,
        reason: String,
    ) -> Result<(), faas_async::AsyncError> {
        self.0.dead_letter(claimed, stage, reason).await
    }
    async fn dead_letters(&self) -> Result<Vec<faas_async::DeadLetter>, faas_async::AsyncError> {
        self.0.dead_letters().await
    }
    async fn replay(&self, id: &str) -> Result<faas_async::QueuedCall, faas_async::AsyncError> {
        self.0.replay(id).await
    }
}

#[tokio::test]
async fn a_tick_the_queue_refuses_is_counted_as_failed_and_shown_as_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, ticks) = embedded(dir.path()).await;
    let triggers = triggers(Arc::new(Refusing(queue)), ticks);
    let function = FunctionRef::new("report", "openfaas-fn");
    triggers.set(&function, spec(&FIVE_MINUTES), at("2026-03-01T11:59:30Z"));
    assert_eq!(triggers.fire_due(at("2026-03-01T12:00:00Z")).await, 0, "nothing was queued");
    assert_eq!(triggers.metrics().failed_count("report.openfaas-fn", "cron"), 1);
    assert_eq!(triggers.metrics().fired_count("report.openfaas-fn", "cron"), 0);
    let outcome = triggers.list()[0].last_outcome.clone().unwrap();
    assert!(outcome.result.starts_with("failed: ") && outcome.result.contains("NATS"), "{outcome:?}");
    assert_eq!(outcome.status, None);
}
