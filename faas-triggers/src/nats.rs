//! NATS subjects: each message on a function's subjects becomes a queued
//! asynchronous call, and the function's answer goes to the message's
//! reply subject.
//!
//! Every gateway subscribes with the same queue group
//! ([`QUEUE_GROUP`]), so NATS hands each message to one of them; that
//! gateway persists it in the asynchronous queue before anything else, so
//! from then on it is not lost (core NATS itself keeps nothing: a message
//! published while no gateway listens is gone, as with nats-connector).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{SecondsFormat, Utc};
use faas_async::{FunctionResponse, QueuedCall, Replier, FUNCTION_STATUS_HEADER, REPLY_SUBJECT_HEADER};
use faas_core::FunctionRef;
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::registry::{Outcome, Triggers, TRIGGER_HEADER};

/// The queue group every gateway subscribes with.
pub const QUEUE_GROUP: &str = "faas-triggers";
/// Header of a NATS call: the subject the message came on (as
/// connector-sdk's `X-Topic`).
pub const TOPIC_HEADER: &str = "X-Topic";
/// Prefix of the headers carrying the message's own headers.
pub const NATS_HEADER_PREFIX: &str = "X-Nats-";

/// Subscribes to the subjects of [`Triggers::subjects`] and follows their
/// changes until aborted.
pub fn spawn_subscriber(triggers: Arc<Triggers>, client: async_nats::Client) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut wanted = triggers.subjects();
        let mut running: HashMap<String, JoinHandle<()>> = HashMap::new();
        loop {
            let subjects: Vec<String> = wanted.borrow_and_update().keys().cloned().collect();
            running.retain(|subject, task| {
                let keep = subjects.contains(subject);
                if !keep {
                    task.abort();
                }
                keep
            });
            for subject in subjects {
                if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(subject) {
                    let subject = slot.key().clone();
                    slot.insert(tokio::spawn(subscribe(triggers.clone(), client.clone(), subject, wanted.clone())));
                }
            }
            if wanted.changed().await.is_err() {
                break;
            }
        }
        running.values().for_each(JoinHandle::abort);
    })
}

/// One subject's subscription: each message queued for each function.
async fn subscribe(
    triggers: Arc<Triggers>,
    client: async_nats::Client,
    subject: String,
    wanted: watch::Receiver<BTreeMap<String, Vec<FunctionRef>>>,
) {
    let mut subscription = match client.queue_subscribe(subject.clone(), QUEUE_GROUP.to_owned()).await {
        Ok(subscription) => subscription,
        Err(err) => {
            tracing::error!(subject, error = %err, "cannot subscribe to a trigger subject");
            return;
        }
    };
    tracing::info!(subject, "subscribed to a trigger subject");
    while let Some(message) = subscription.next().await {
        let functions = wanted.borrow().get(&subject).cloned().unwrap_or_default();
        for function in functions {
            enqueue(&triggers, &function, &message).await;
        }
    }
}

/// Queues `message` as a call of `function`.
async fn enqueue(triggers: &Triggers, function: &FunctionRef, message: &async_nats::Message) {
    let name = function.to_string();
    let mut headers = vec![
        (TRIGGER_HEADER.to_owned(), b"nats".to_vec()),
        (TOPIC_HEADER.to_owned(), message.subject.as_bytes().to_vec()),
    ];
    for (header, values) in message.headers.iter().flat_map(|h| h.iter()) {
        for value in values {
            headers.push((format!("{NATS_HEADER_PREFIX}{header}"), value.as_str().as_bytes().to_vec()));
        }
    }
    if let Some(reply) = &message.reply {
        headers.push((REPLY_SUBJECT_HEADER.to_owned(), reply.as_bytes().to_vec()));
    }
    let now = Utc::now();
    let call = QueuedCall {
        headers,
        ..QueuedCall::post(uuid::Uuid::new_v4().to_string(), function, message.payload.to_vec())
    };
    let result = match triggers.queue().enqueue(call).await {
        Ok(()) => {
            triggers.metrics().fired(&name, "nats");
            "queued".to_owned()
        }
        Err(err) => {
            triggers.metrics().failed(&name, "nats");
            tracing::warn!(function = name, subject = %message.subject, error = %err, "cannot queue a NATS message");
            format!("failed: {err}")
        }
    };
    triggers.record_outcome(
        function,
        Outcome { at: now.to_rfc3339_opts(SecondsFormat::Millis, true), result, status: None },
    );
}

/// Publishes answers to NATS reply subjects: the function's body, with
/// its status in `X-Function-Status`.
#[derive(Debug, Clone)]
pub struct NatsReplier {
    client: async_nats::Client,
}

impl NatsReplier {
    /// Replies through `client`.
    pub fn new(client: async_nats::Client) -> NatsReplier {
        NatsReplier { client }
    }
}

#[async_trait]
impl Replier for NatsReplier {
    async fn reply(&self, subject: &str, response: &FunctionResponse) -> Result<(), String> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(FUNCTION_STATUS_HEADER, response.status.as_str());
        self.client
            .publish_with_headers(subject.to_owned(), headers, response.body.clone())
            .await
            .map_err(|e| e.to_string())?;
        self.client.flush().await.map_err(|e| e.to_string())
    }
}
