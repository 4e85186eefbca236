//! The NATS JetStream queue: several gateways share one queue.
//!
//! Calls are published to a work-queue stream (`{stream}`, subject
//! `{stream}.calls`, file storage) and consumed through one durable pull
//! consumer (`workers`) with explicit acks: JetStream hands each message to
//! one gateway at a time and redelivers it when it is not acked within
//! `ack_wait` (a worker still busy with it sends progress acks). A retry is
//! a `Nak` with the backoff delay; the attempt count is JetStream's
//! delivery count. Dead letters go to a second stream (`{stream}_DEAD`,
//! subject `{stream}_DEAD.{id}`, one message per id) and are replayed by
//! publishing the call again and deleting the dead letter.
//!
//! A call is stored as one message whose payload is the request body as it
//! arrived and whose `Faas-Call` header holds the rest (base64 of its JSON
//! without the body); dead letters likewise, with `Faas-Dead-Letter`. So a
//! body may use nearly all of the server's `max_payload` (1 MiB by
//! default): what does not fit is refused with
//! [`AsyncError::TooLarge`] (413) naming that limit, and
//! [`Queue::body_limit`] lets the API refuse it before reading it all.
//! Messages of the earlier format (the whole call as JSON, the body in
//! base64) are still read.
//!
//! When the server cannot be reached, a new call is refused at once
//! ([`AsyncError::Nats`], 503 "the call was not queued") rather than
//! buffered by the client; a call whose storing was cut off by the
//! connection dropping is held until the client has reconnected and the
//! server confirmed it (published again under the same `Nats-Msg-Id`, so
//! stored once), for up to 30 s. The workers keep claiming through the
//! outage (failed claims are retried every second) and calls claimed
//! before it are redelivered after `ack_wait`.
//!
//! JetStream's delivery count does not say why a call came back: a `Nak`
//! for a retry and a claim that expired because its gateway died both count.
//! So before a `Nak`, the queue records "nacked at delivery `n`" in a third
//! stream (`{stream}_RETRIES`, subject `{stream}_RETRIES.{id}`, one message
//! per id, purged when the call is settled). A call delivered again whose
//! previous delivery was not recorded there is a redelivery
//! ([`Claimed::redelivered`]): it may have run already.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, Consumer};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, AckKind};
use async_trait::async_trait;
use base64::Engine;
use futures_util::StreamExt;

use crate::call::{now_ms, Claimed, DeadLetter, FailedStage, Handle, QueuedCall};
use crate::error::AsyncError;
use crate::queue::Queue;

/// The durable consumer's name, shared by every gateway.
const CONSUMER: &str = "workers";
/// The most dead letters [`Queue::dead_letters`] reads.
const MAX_LISTED: u64 = 10_000;
/// The header holding a call's metadata; the payload is its body.
const CALL_HEADER: &str = "Faas-Call";
/// The header holding a dead letter's metadata; the payload is its body.
const DEAD_HEADER: &str = "Faas-Dead-Letter";
/// Bytes of `max_payload` a call leaves free, so that its dead letter (the
/// same call with a stage and a reason) always fits.
const DEAD_LETTER_ROOM: usize = 4096;
/// Bytes of `max_payload` assumed for a call's headers when telling callers
/// the largest body before reading it.
const HEADER_ROOM: usize = 4096;
/// The longest reason kept with a dead letter, in bytes.
const MAX_REASON: usize = 1024;
/// How long a call whose storing was cut off by a lost connection is held
/// for the client to reconnect and the server to confirm it.
const CONFIRM_WITHIN: Duration = Duration::from_secs(30);
/// How often a held call checks whether the client is connected again.
const RECONNECT_POLL: Duration = Duration::from_millis(100);
/// How long a retry record is kept if its call is never settled.
const RETRY_RECORD_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// How to reach and name the JetStream queue.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    /// The server, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// The work stream's name (the dead letters use `{stream}_DEAD`).
    /// Default `FAAS_ASYNC`.
    pub stream: String,
    /// How long a delivered call may go without an ack or a progress ack
    /// before JetStream hands it to another worker. Default 30s.
    pub ack_wait: Duration,
}

impl JetStreamConfig {
    /// The defaults for a server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        JetStreamConfig { url: url.into(), stream: "FAAS_ASYNC".to_owned(), ack_wait: Duration::from_secs(30) }
    }
}

/// A queue in NATS JetStream, shared by every gateway using the same
/// server and stream.
pub struct JetStreamQueue {
    client: async_nats::Client,
    context: jetstream::Context,
    consumer: Consumer<pull::Config>,
    dead: stream::Stream,
    /// Which delivery of a call ended in a `Nak` (see the module docs).
    retries: stream::Stream,
    work_subject: String,
    dead_prefix: String,
    retries_prefix: String,
    ack_wait: Duration,
}

impl std::fmt::Debug for JetStreamQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamQueue").field("subject", &self.work_subject).finish_non_exhaustive()
    }
}

fn nats(what: &'static str) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> AsyncError {
    move |source| AsyncError::Nats { what, source }
}

/// Whether `id` can be a subject token (call ids are UUIDs).
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn boxed<E: std::error::Error + Send + Sync + 'static>(err: E) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(err)
}

impl JetStreamQueue {
    /// Connects, and creates the streams and the consumer unless they exist.
    pub async fn open(config: &JetStreamConfig) -> Result<JetStreamQueue, AsyncError> {
        let client =
            async_nats::connect(config.url.as_str()).await.map_err(boxed).map_err(nats("connect to the server"))?;
        let context = jetstream::new(client.clone());
        let work_subject = format!("{}.calls", config.stream);
        let work = context
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects: vec![work_subject.clone()],
                retention: RetentionPolicy::WorkQueue,
                storage: StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(boxed)
            .map_err(nats("create the work stream"))?;
        let dead_stream = format!("{}_DEAD", config.stream);
        let dead = context
            .get_or_create_stream(stream::Config {
                name: dead_stream.clone(),
                subjects: vec![format!("{dead_stream}.*")],
                retention: RetentionPolicy::Limits,
                storage: StorageType::File,
                max_messages_per_subject: 1,
                ..Default::default()
            })
            .await
            .map_err(boxed)
            .map_err(nats("create the dead-letter stream"))?;
        let retries_stream = format!("{}_RETRIES", config.stream);
        let retries = context
            .get_or_create_stream(stream::Config {
                name: retries_stream.clone(),
                subjects: vec![format!("{retries_stream}.*")],
                retention: RetentionPolicy::Limits,
                storage: StorageType::File,
                max_messages_per_subject: 1,
                max_age: RETRY_RECORD_AGE,
                ..Default::default()
            })
            .await
            .map_err(boxed)
            .map_err(nats("create the retry stream"))?;
        let consumer = work
            .get_or_create_consumer(
                CONSUMER,
                pull::Config {
                    durable_name: Some(CONSUMER.to_owned()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: config.ack_wait,
                    ..Default::default()
                },
            )
            .await
            .map_err(boxed)
            .map_err(nats("create the consumer"))?;
        Ok(JetStreamQueue {
            client,
            context,
            consumer,
            dead,
            retries,
            work_subject,
            dead_prefix: dead_stream,
            retries_prefix: retries_stream,
            ack_wait: config.ack_wait,
        })
    }

    /// The subject of `id`'s retry record; `None` for ids that cannot be a
    /// subject token (never ours: ours are UUIDs).
    fn retry_subject(&self, id: &str) -> Option<String> {
        valid_id(id).then(|| format!("{}.{id}", self.retries_prefix))
    }

    /// Whether delivery `delivery` of call `id` ended in our `Nak`. Unsure
    /// (the record cannot be read) counts as no: a possible duplicate.
    async fn nacked_at(&self, id: &str, delivery: i64) -> bool {
        let Some(subject) = self.retry_subject(id) else { return false };
        match self.retries.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => {
                std::str::from_utf8(&message.payload).ok().and_then(|t| t.parse::<i64>().ok()) == Some(delivery)
            }
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => false,
            Err(err) => {
                tracing::debug!(call_id = id, error = %err, "cannot read a retry record; counting a redelivery");
                false
            }
        }
    }

    /// Drops `claimed`'s retry record, if it may have one.
    async fn forget_retries(&self, claimed: &Claimed, message: &jetstream::Message) {
        let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
        let Some(subject) = self.retry_subject(&claimed.call.id) else { return };
        if delivered > 1 {
            if let Err(err) = self.retries.purge().filter(subject).await {
                tracing::debug!(call_id = claimed.call.id, error = %err, "cannot drop a retry record");
            }
        }
    }

    /// Publishes `call` to the work stream and waits for the stream to
    /// store it; [`AsyncError::TooLarge`] if it does not fit in a message.
    async fn publish(&self, call: &QueuedCall) -> Result<(), AsyncError> {
        let fields = [
            // Deduplicates a retried publish of the same call.
            ("Nats-Msg-Id", format!("{}-{}", call.id, call.accepted_at_ms)),
            (CALL_HEADER, encode_meta(&call.without_body().encode()?)),
        ];
        let size = wire_size(&fields, call.body.len());
        let max = self.client.server_info().max_payload;
        let limit = max.saturating_sub(DEAD_LETTER_ROOM);
        if size > limit {
            return Err(AsyncError::TooLarge {
                limit: limit as u64,
                message: format!(
                    "the call needs {size} bytes in a NATS message (its body and headers), more than the {limit} \
                     the NATS server's max_payload of {max} bytes leaves ({DEAD_LETTER_ROOM} are kept for its dead \
                     letter); raise max_payload in the nats-server configuration to queue larger calls"
                ),
            });
        }
        // While the client is reconnecting it would buffer the message and
        // the caller would wait, its call stored later or not at all:
        // refuse at once instead, so the call is clearly not queued (503)
        // and the caller can retry.
        if !self.connected() {
            return Err(AsyncError::Nats {
                what: "publish a call",
                source: "not connected to the NATS server (it is down or unreachable; the gateway keeps \
                         reconnecting); the call was not queued"
                    .into(),
            });
        }
        // Cut off by a lost connection, the message may still sit in the
        // client's buffer and be stored once it reconnects: so the call is
        // held and published again (its Nats-Msg-Id makes that one copy)
        // until the server confirms it, rather than refused and run anyway.
        let deadline = tokio::time::Instant::now() + CONFIRM_WITHIN;
        loop {
            let stored = async {
                let ack = self
                    .context
                    .publish_with_headers(self.work_subject.clone(), headers(fields.clone()), call.body.clone().into())
                    .await?;
                ack.await
            };
            let err = match stored.await {
                Ok(_) => return Ok(()),
                Err(err) if matches!(err.kind(), PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe) => err,
                Err(err) => return Err(AsyncError::Nats { what: "store a call", source: boxed(err) }),
            };
            tracing::debug!(call_id = call.id, error = %err, "storing a call was cut off; confirming it once reconnected");
            while !self.connected() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(RECONNECT_POLL).await;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AsyncError::Nats {
                    what: "store a call",
                    source: format!(
                        "the NATS server did not confirm the call within {CONFIRM_WITHIN:?} ({err}); it was \
                         sent as the connection dropped and may still be queued when the server is back"
                    )
                    .into(),
                });
            }
        }
    }

    /// Whether the client is connected to the server now.
    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    fn message(claimed: &Claimed) -> Result<&jetstream::Message, AsyncError> {
        match &claimed.handle {
            Handle::Nats(message) => Ok(message),
            Handle::Local => Err(AsyncError::Invalid {
                field: "claim".to_owned(),
                reason: "this call was not claimed from JetStream".to_owned(),
            }),
        }
    }
}

#[async_trait]
impl Queue for JetStreamQueue {
    fn kind(&self) -> &'static str {
        "nats"
    }

    async fn enqueue(&self, call: QueuedCall) -> Result<(), AsyncError> {
        self.publish(&call).await
    }

    async fn claim(&self, wait: Duration) -> Result<Option<Claimed>, AsyncError> {
        let mut batch = self
            .consumer
            .batch()
            .max_messages(1)
            .expires(wait.max(Duration::from_millis(100)))
            .messages()
            .await
            .map_err(boxed)
            .map_err(nats("fetch calls"))?;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| AsyncError::Nats { what: "receive a call", source: e })?;
            let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
            match decode_call(message.headers.as_ref(), &message.payload) {
                Ok(mut call) => {
                    call.attempts = u32::try_from(delivered.max(1)).unwrap_or(u32::MAX);
                    // Delivered before, and not because we asked for a retry.
                    let redelivered = delivered > 1 && !self.nacked_at(&call.id, delivered - 1).await;
                    return Ok(Some(Claimed { call, redelivered, handle: Handle::Nats(Arc::new(message)) }));
                }
                Err(err) => {
                    // Not one of ours: terminate it so it is not redelivered forever.
                    tracing::warn!(error = %err, "dropping an undecodable message from the async stream");
                    let _ = message.ack_with(AckKind::Term).await;
                }
            }
        }
        Ok(None)
    }

    async fn ack(&self, claimed: &Claimed) -> Result<(), AsyncError> {
        let message = Self::message(claimed)?;
        message.double_ack().await.map_err(nats("ack a call"))?;
        self.forget_retries(claimed, message).await;
        Ok(())
    }

    async fn nack(&self, claimed: &Claimed, delay: Duration) -> Result<(), AsyncError> {
        let message = Self::message(claimed)?;
        // Recorded first: the next delivery then knows it is a retry. If
        // the record fails, it counts as a redelivery, which is only a
        // metric.
        let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
        if let Some(subject) = self.retry_subject(&claimed.call.id) {
            let recorded = async {
                self.context.publish(subject, delivered.to_string().into()).await.map_err(boxed)?.await.map_err(boxed)
            };
            if let Err(err) = recorded.await {
                tracing::debug!(call_id = claimed.call.id, error = %err, "cannot record a retry");
            }
        }
        message.ack_with(AckKind::Nak(Some(delay))).await.map_err(nats("nak a call"))
    }

    async fn dead_letter(&self, claimed: &Claimed, stage: FailedStage, reason: String) -> Result<(), AsyncError> {
        let message = Self::message(claimed)?;
        let reason = short_reason(reason);
        let dead = DeadLetter { call: claimed.call.without_body(), stage, reason, dead_at_ms: now_ms() };
        let fields = [(DEAD_HEADER, encode_meta(&dead.encode()?))];
        let subject = format!("{}.{}", self.dead_prefix, claimed.call.id);
        self.context
            .publish_with_headers(subject, headers(fields), claimed.call.body.clone().into())
            .await
            .map_err(boxed)
            .map_err(nats("publish a dead letter"))?
            .await
            .map_err(boxed)
            .map_err(nats("store a dead letter"))?;
        message.double_ack().await.map_err(nats("ack a dead-lettered call"))?;
        self.forget_retries(claimed, message).await;
        Ok(())
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, AsyncError> {
        let state = self.dead.get_info().await.map_err(boxed).map_err(nats("read the dead-letter stream"))?.state;
        let mut out = Vec::new();
        if state.messages == 0 {
            return Ok(out);
        }
        let last = state.last_sequence.min(state.first_sequence.saturating_add(MAX_LISTED));
        for sequence in state.first_sequence..=last {
            // Deleted (replayed) sequences are gaps.
            if let Ok(message) = self.dead.get_raw_message(sequence).await {
                out.push(decode_dead(message.subject.as_str(), &message.headers, &message.payload)?);
            }
        }
        out.sort_by(|a, b| a.dead_at_ms.cmp(&b.dead_at_ms).then_with(|| a.call.id.cmp(&b.call.id)));
        Ok(out)
    }

    async fn replay(&self, id: &str) -> Result<QueuedCall, AsyncError> {
        if !valid_id(id) {
            return Err(AsyncError::NotFound(id.to_owned()));
        }
        let message = match self.dead.get_last_raw_message_by_subject(&format!("{}.{id}", self.dead_prefix)).await {
            Ok(message) => message,
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => {
                return Err(AsyncError::NotFound(id.to_owned()))
            }
            Err(err) => return Err(AsyncError::Nats { what: "read a dead letter", source: boxed(err) }),
        };
        let mut call = decode_dead(id, &message.headers, &message.payload)?.call;
        call.attempts = 0;
        // A fresh message id: the replay is a new publish, not a duplicate.
        call.accepted_at_ms = now_ms();
        self.publish(&call).await?;
        self.dead.delete_message(message.sequence).await.map_err(boxed).map_err(nats("delete a dead letter"))?;
        Ok(call)
    }

    fn body_limit(&self) -> Option<(u64, String)> {
        let max = self.client.server_info().max_payload;
        let room = DEAD_LETTER_ROOM + HEADER_ROOM;
        let bytes = max.saturating_sub(room) as u64;
        Some((bytes, format!("the NATS server's max_payload of {max} bytes, less {room} kept for the call's headers")))
    }

    fn keep_alive_interval(&self) -> Option<Duration> {
        Some(self.ack_wait / 3)
    }

    async fn keep_alive(&self, claimed: &Claimed) -> Result<(), AsyncError> {
        Self::message(claimed)?.ack_with(AckKind::Progress).await.map_err(nats("extend a claim"))
    }
}

/// Metadata (a JSON record) as a header value.
fn encode_meta(json: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(json)
}

/// A header value back into the JSON record.
fn decode_meta(id: &str, value: &str) -> Result<Vec<u8>, AsyncError> {
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|e| AsyncError::Record { id: id.to_owned(), source: serde::de::Error::custom(e) })
}

fn headers<const N: usize>(fields: [(&str, String); N]) -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    for (name, value) in fields {
        headers.insert(name, value.as_str());
    }
    headers
}

/// What a message with these headers and a payload of `payload` bytes
/// counts against the server's `max_payload`: the payload and the header
/// block as the client writes it (`NATS/1.0\r\n`, `name: value\r\n` each,
/// `\r\n`).
fn wire_size(fields: &[(&str, String)], payload: usize) -> usize {
    let block: usize = fields.iter().map(|(name, value)| name.len() + 2 + value.len() + 2).sum();
    "NATS/1.0\r\n".len() + block + 2 + payload
}

/// A call from a work message: metadata in its header and the body as its
/// payload, or the earlier format (all JSON).
fn decode_call(headers: Option<&async_nats::HeaderMap>, payload: &[u8]) -> Result<QueuedCall, AsyncError> {
    const UNKNOWN: &str = "(jetstream message)";
    match headers.and_then(|h| h.get(CALL_HEADER)) {
        Some(meta) => {
            let mut call = QueuedCall::decode(UNKNOWN, &decode_meta(UNKNOWN, meta.as_str())?)?;
            call.body = payload.to_vec();
            Ok(call)
        }
        None => QueuedCall::decode(UNKNOWN, payload),
    }
}

/// A dead letter from its message, in either format.
fn decode_dead(id: &str, headers: &async_nats::HeaderMap, payload: &[u8]) -> Result<DeadLetter, AsyncError> {
    match headers.get(DEAD_HEADER) {
        Some(meta) => {
            let mut dead = DeadLetter::decode(id, &decode_meta(id, meta.as_str())?)?;
            dead.call.body = payload.to_vec();
            Ok(dead)
        }
        None => DeadLetter::decode(id, payload),
    }
}

/// `reason` on one line and at most [`MAX_REASON`] bytes, so a dead letter
/// stays within the room its call left.
fn short_reason(reason: String) -> String {
    let mut line: String = reason.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if line.len() > MAX_REASON {
        let mut end = MAX_REASON - 3;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push_str("...");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_size_is_what_the_client_writes() {
        let fields = [("A", "xy".to_owned()), ("Nats-Msg-Id", "1".to_owned())];
        // NATS/1.0\r\n A: xy\r\n Nats-Msg-Id: 1\r\n \r\n + 5 bytes of payload
        assert_eq!(wire_size(&fields, 5), 10 + 7 + 16 + 2 + 5);
    }

    #[test]
    fn reasons_are_kept_short_and_on_one_line() {
        assert_eq!(short_reason("a\nb".to_owned()), "a b");
        let long = short_reason("é".repeat(MAX_REASON));
        assert!(long.len() <= MAX_REASON && long.ends_with("..."), "{}", long.len());
    }
}
