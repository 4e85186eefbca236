//! Triggers over NATS against a real `nats-server` the test starts
//! (faas-test-support's harness): two gateways sharing one JetStream queue
//! run each cron tick once, and each message on a subject once; replies
//! reach the reply subject.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use faas_async::{JetStreamConfig, JetStreamQueue, Queue};
use faas_core::{FunctionRef, SharedProvider};
use faas_test_support::nats::{nats_server, NatsServer};
use faas_triggers::{spawn_subscriber, NatsReplier, NatsTickLog, TickLog, TriggerSpec, Triggers};
use futures_util::future::join;
use support::{at, deployment, provider, settled, triggers, workers, Calls, Seen, WAIT};

/// One gateway's share: its own connection to the queue and the tick log.
async fn gateway(server: &NatsServer) -> (Arc<dyn Queue>, Arc<Triggers>, async_nats::Client) {
    let queue: Arc<dyn Queue> =
        Arc::new(JetStreamQueue::open(&JetStreamConfig::new(server.url.clone())).await.unwrap());
    let client = async_nats::connect(server.url.as_str()).await.unwrap();
    let ticks: Arc<dyn TickLog> = Arc::new(NatsTickLog::open(client.clone(), "FAAS_TRIGGER_TICKS").await.unwrap());
    (queue.clone(), triggers(queue, ticks), client)
}

fn spec(annotations: &[(&str, &str)]) -> Option<TriggerSpec> {
    let map = annotations.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    TriggerSpec::from_annotations(Some(&map)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_on_one_nats_queue_run_each_tick_once() {
    let Some(server) = nats_server().await else { return };
    let annotations = [("topic", "cron-function"), ("schedule", "*/5 * * * *")];
    let calls = Calls::default();
    let provider: SharedProvider = Arc::new(provider(calls.clone()));
    provider.deploy(deployment("report", &annotations)).await.unwrap();
    let function = FunctionRef::new("report", "openfaas-fn");

    let (queue_one, one, _c1) = gateway(&server).await;
    let (queue_two, two, _c2) = gateway(&server).await;
    for triggers in [&one, &two] {
        triggers.set(&function, spec(&annotations), at("2026-03-01T11:58:00Z"));
    }
    let (_, workers_one) = workers(queue_one, provider.clone());
    let (_, workers_two) = workers(queue_two, provider.clone());
    for now in ["2026-03-01T12:00:00Z", "2026-03-01T12:05:00Z", "2026-03-01T12:10:00.250Z"] {
        // Both gateways see the tick and queue it.
        let (a, b) = join(one.fire_due(at(now)), two.fire_due(at(now))).await;
        assert_eq!((a, b), (1, 1), "{now}");
    }
    let seen = settled(&calls, 3).await;
    workers_one.shutdown(Duration::from_secs(5)).await;
    workers_two.shutdown(Duration::from_secs(5)).await;
    let times: Vec<&str> = seen.iter().map(|s| s.headers["x-scheduled-time"].as_str()).collect();
    assert_eq!(seen.len(), 3, "{times:?}");
    let distinct: BTreeSet<&str> = times.iter().copied().collect();
    assert_eq!(
        distinct.into_iter().collect::<Vec<_>>(),
        ["2026-03-01T12:00:00Z", "2026-03-01T12:05:00Z", "2026-03-01T12:10:00Z"]
    );
}

/// Publishes `probe` on `subject` until a call with it arrived (the
/// subscriptions are up), at most [`WAIT`].
async fn wait_subscribed(client: &async_nats::Client, calls: &Calls, subject: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    let probe = format!("probe {subject}");
    loop {
        client.publish(subject.to_owned(), probe.clone().into()).await.unwrap();
        client.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if calls.lock().unwrap().iter().any(|s| s.body == probe) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no subscription on {subject}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_message_on_the_subjects_runs_once_across_two_gateways_and_replies_come_back() {
    let Some(server) = nats_server().await else { return };
    let annotations = [("topic", "orders.new,audit")];
    let calls = Calls::default();
    let provider: SharedProvider = Arc::new(provider(calls.clone()));
    provider.deploy(deployment("handler", &annotations)).await.unwrap();
    let function = FunctionRef::new("handler", "openfaas-fn");

    let mut running = Vec::new();
    for _ in 0..2 {
        let (queue, triggers, client) = gateway(&server).await;
        triggers.set(&function, spec(&annotations), chrono::Utc::now());
        let (dispatcher, handle) = workers(queue, provider.clone());
        assert!(dispatcher.set_replier(Arc::new(NatsReplier::new(client.clone()))));
        running.push((spawn_subscriber(triggers.clone(), client), handle, triggers));
    }
    let publisher = async_nats::connect(server.url.as_str()).await.unwrap();
    for subject in ["orders.new", "audit"] {
        wait_subscribed(&publisher, &calls, subject).await;
    }
    let probes = calls.lock().unwrap().len();

    for i in 0..1000 {
        let subject = if i % 2 == 0 { "orders.new" } else { "audit" };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Order-Id", i.to_string().as_str());
        publisher.publish_with_headers(subject, headers, format!("message {i}").into()).await.unwrap();
    }
    publisher.flush().await.unwrap();
    let seen: Vec<Seen> =
        settled(&calls, probes + 1000).await.into_iter().filter(|s| !s.body.starts_with("probe")).collect();
    assert_eq!(seen.len(), 1000, "calls for 1,000 messages");
    let bodies: BTreeSet<&str> = seen.iter().map(|s| s.body.as_str()).collect();
    assert_eq!(bodies.len(), 1000, "no message ran twice");
    for call in &seen {
        let i: usize = call.body.strip_prefix("message ").unwrap().parse().unwrap();
        assert_eq!(call.headers["x-nats-order-id"], i.to_string());
        assert_eq!(call.headers["x-topic"], if i % 2 == 0 { "orders.new" } else { "audit" });
        assert_eq!((call.headers["x-trigger"].as_str(), call.method.as_str()), ("nats", "POST"));
    }
    // Both gateways share the work, each counting what it queued.
    let fired: u64 = running.iter().map(|(_, _, t)| t.metrics().fired_count("handler.openfaas-fn", "nats")).sum();
    assert_eq!(fired as usize, probes + 1000);

    // A request gets the function's answer on its reply subject.
    let reply = tokio::time::timeout(WAIT, publisher.request("orders.new", "ping".into())).await.unwrap().unwrap();
    assert_eq!(&reply.payload[..], b"done: ping");
    assert_eq!(reply.headers.as_ref().and_then(|h| h.get("x-function-status")).map(|v| v.as_str()), Some("200"));

    // A delete stops the subscription: nothing more arrives.
    for (_, _, triggers) in &running {
        triggers.set(&function, None, chrono::Utc::now());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = calls.lock().unwrap().len();
    publisher.publish("audit", "after delete".into()).await.unwrap();
    publisher.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(calls.lock().unwrap().len(), before);
    for (subscriber, handle, _) in running {
        subscriber.abort();
        handle.shutdown(Duration::from_secs(5)).await;
    }
}
