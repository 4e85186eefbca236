//! What the trigger tests share: a provider recording each call, and the
//! asynchronous workers running against it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use custom_provider::InMemoryProvider;
use faas_async::{AsyncMetrics, Dispatcher, DispatcherConfig, DispatcherHandle, Queue};
use faas_core::{Body, FunctionDeployment, Provider, SharedProvider};
use faas_triggers::{TriggerMetrics, Triggers};
use http::{Request, Response};

/// How long a test waits for calls to arrive.
pub const WAIT: Duration = Duration::from_secs(60);

/// One call the function received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub function: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// Every call received, in order.
pub type Calls = Arc<Mutex<Vec<Seen>>>;

/// An in-memory provider whose image `recorder` records each call and
/// answers `done: <body>`.
pub fn provider(calls: Calls) -> InMemoryProvider {
    InMemoryProvider::new().with_handler("recorder", move |request: Request<Body>, context| {
        let calls = calls.clone();
        async move {
            let (parts, body) = request.into_parts();
            let headers = parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let body = String::from_utf8_lossy(&body.collect_limited(1 << 20).await.unwrap()).into_owned();
            calls.lock().unwrap().push(Seen {
                function: context.name.clone(),
                method: parts.method.to_string(),
                headers,
                body: body.clone(),
            });
            Response::builder().status(200).body(Body::from(format!("done: {body}"))).unwrap()
        }
    })
}

/// A deployment of the recorder with `annotations`.
pub fn deployment(name: &str, annotations: &[(&str, &str)]) -> FunctionDeployment {
    FunctionDeployment {
        service: name.to_owned(),
        image: "recorder".to_owned(),
        annotations: Some(annotations.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
        ..FunctionDeployment::default()
    }
}

/// Workers running `queue`'s calls on `provider`.
pub fn workers(queue: Arc<dyn Queue>, provider: SharedProvider) -> (Arc<Dispatcher>, DispatcherHandle) {
    let dispatcher = Dispatcher::new(queue, provider, DispatcherConfig::default(), Arc::new(AsyncMetrics::new()));
    let handle = dispatcher.spawn();
    (dispatcher, handle)
}

/// Triggers over `queue` and `ticks`.
pub fn triggers(queue: Arc<dyn Queue>, ticks: Arc<dyn faas_triggers::TickLog>) -> Arc<Triggers> {
    Triggers::new(queue, ticks, Arc::new(TriggerMetrics::new()))
}

/// Waits until `calls` holds `count` calls (at most [`WAIT`]), then a
/// little longer to see that no more arrive; returns them.
pub async fn settled(calls: &Calls, count: usize) -> Vec<Seen> {
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = calls.lock().unwrap().len();
        if seen >= count {
            break;
        }
        assert!(Instant::now() < deadline, "{seen} of {count} calls after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Time for a duplicate to show up, if there were one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    calls.lock().unwrap().clone()
}

/// An RFC 3339 time.
pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// Deploys through `provider` (unwrapping).
pub async fn deploy(provider: &dyn Provider, deployment: FunctionDeployment) {
    provider.deploy(deployment).await.unwrap();
}
