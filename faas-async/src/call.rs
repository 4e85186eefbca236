//! What the queue holds: a whole request, and what became of it.

use base64::Engine;
use faas_core::FunctionRef;
use serde::{Deserialize, Serialize};

use crate::error::AsyncError;

/// One accepted asynchronous call: the whole request as it arrived, its
/// callback and its attempts so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedCall {
    /// The call's id (`X-Call-Id`), a UUID.
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The function's namespace.
    pub namespace: String,
    /// The HTTP method.
    pub method: String,
    /// The path below the function and the query (`/a/b?x=1`, `/` at least).
    pub path_and_query: String,
    /// The request headers in order, values as raw bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The request body.
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
    /// Where the function's response is posted, if anywhere.
    pub callback_url: Option<String>,
    /// Invocation attempts started so far.
    pub attempts: u32,
    /// When the call was accepted, in milliseconds since the Unix epoch.
    pub accepted_at_ms: u64,
}

impl QueuedCall {
    /// A `POST /` call of `function` with `body`, no headers and no
    /// callback, accepted now: what a trigger queues (with its own headers
    /// and, for a schedule, its tick as the time accepted).
    pub fn post(id: impl Into<String>, function: &FunctionRef, body: Vec<u8>) -> Self {
        QueuedCall {
            id: id.into(),
            name: function.name.clone(),
            namespace: function.namespace.clone(),
            method: "POST".to_owned(),
            path_and_query: "/".to_owned(),
            headers: Vec::new(),
            body,
            callback_url: None,
            attempts: 0,
            accepted_at_ms: now_ms(),
        }
    }

    /// The function called.
    pub fn function(&self) -> FunctionRef {
        FunctionRef::new(self.name.clone(), self.namespace.clone())
    }

    /// Encodes the call for storage.
    pub fn encode(&self) -> Result<Vec<u8>, AsyncError> {
        serde_json::to_vec(self).map_err(|source| AsyncError::Record { id: self.id.clone(), source })
    }

    /// Decodes a stored call.
    pub fn decode(id: &str, bytes: &[u8]) -> Result<Self, AsyncError> {
        serde_json::from_slice(bytes).map_err(|source| AsyncError::Record { id: id.to_owned(), source })
    }

    /// The call without its body (for backends storing the body apart).
    pub(crate) fn without_body(&self) -> QueuedCall {
        QueuedCall {
            id: self.id.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            method: self.method.clone(),
            path_and_query: self.path_and_query.clone(),
            headers: self.headers.clone(),
            body: Vec::new(),
            callback_url: self.callback_url.clone(),
            attempts: self.attempts,
            accepted_at_ms: self.accepted_at_ms,
        }
    }
}

/// A call taken from the queue by one worker.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The call; `attempts` already counts the attempt this claim starts.
    pub call: QueuedCall,
    /// Whether the queue handed this call out before without hearing its
    /// outcome (a crash or a lost worker): it may have run already.
    pub redelivered: bool,
    /// What the queue needs to settle the claim.
    pub(crate) handle: Handle,
}

/// The queue's own reference to a claimed call.
#[derive(Clone, Default)]
pub(crate) enum Handle {
    /// The embedded queue finds the call by its id.
    #[default]
    Local,
    /// The JetStream message to ack.
    Nats(std::sync::Arc<async_nats::jetstream::Message>),
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Handle::Local => f.write_str("Local"),
            Handle::Nats(_) => f.write_str("Nats"),
        }
    }
}

/// Which stage of a call failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailedStage {
    /// The function gave no final answer within the allowed attempts.
    Invoke,
    /// The function answered, but the callback could not be delivered.
    Callback,
}

/// A call that failed for good, kept until it is replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The call, with the attempts it made.
    pub call: QueuedCall,
    /// What failed.
    pub stage: FailedStage,
    /// The last failure, in words.
    pub reason: String,
    /// When it was dead-lettered, in milliseconds since the Unix epoch.
    pub dead_at_ms: u64,
}

impl DeadLetter {
    /// Encodes the dead letter for storage.
    pub fn encode(&self) -> Result<Vec<u8>, AsyncError> {
        serde_json::to_vec(self).map_err(|source| AsyncError::Record { id: self.call.id.clone(), source })
    }

    /// Decodes a stored dead letter.
    pub fn decode(id: &str, bytes: &[u8]) -> Result<Self, AsyncError> {
        serde_json::from_slice(bytes).map_err(|source| AsyncError::Record { id: id.to_owned(), source })
    }
}

/// A dead letter as `GET /system/async/dead-letters` lists it (no body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterSummary {
    /// The call's id.
    pub id: String,
    /// `name.namespace`.
    pub function: String,
    /// The HTTP method.
    pub method: String,
    /// Path and query below the function.
    pub path: String,
    /// The callback URL, if any.
    pub callback_url: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// `invoke` or `callback`.
    pub stage: FailedStage,
    /// The last failure.
    pub reason: String,
    /// Body size in bytes.
    pub body_bytes: usize,
    /// When it was dead-lettered, in milliseconds since the Unix epoch.
    pub dead_at_ms: u64,
}

impl From<&DeadLetter> for DeadLetterSummary {
    fn from(dead: &DeadLetter) -> Self {
        DeadLetterSummary {
            id: dead.call.id.clone(),
            function: dead.call.function().to_string(),
            method: dead.call.method.clone(),
            path: dead.call.path_and_query.clone(),
            callback_url: dead.call.callback_url.clone(),
            attempts: dead.call.attempts,
            stage: dead.stage,
            reason: dead.reason.clone(),
            body_bytes: dead.call.body.len(),
            dead_at_ms: dead.dead_at_ms,
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

mod base64_bytes {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_round_trip_with_binary_bodies_and_headers() {
        let call = QueuedCall {
            id: "id-1".into(),
            name: "echo".into(),
            namespace: "openfaas-fn".into(),
            method: "PUT".into(),
            path_and_query: "/a?b=1".into(),
            headers: vec![("x-bin".into(), vec![0xff, 0x00])],
            body: vec![0, 1, 2, 255],
            callback_url: Some("http://127.0.0.1:1/cb".into()),
            attempts: 2,
            accepted_at_ms: 7,
        };
        let bytes = call.encode().unwrap();
        assert_eq!(QueuedCall::decode("id-1", &bytes).unwrap(), call);
        assert!(matches!(QueuedCall::decode("id-1", b"{"), Err(AsyncError::Record { .. })));
    }
}
