//! # faas-triggers
//!
//! Functions called on a schedule or for each NATS message, configured by
//! the annotations OpenFaaS's cron-connector and nats-connector read, so a
//! stack file written for them works unchanged:
//!
//! - **cron**: `topic: cron-function` and `schedule: "*/5 * * * *"` (5
//!   fields, `@hourly`-style shortcuts, `@every 30s`), in UTC or the IANA
//!   zone of `com.openfaas.cron.timezone`. Each tick is one asynchronous
//!   call (empty `POST /`, headers `X-Trigger: cron`, `X-Schedule`,
//!   `X-Scheduled-Time`) in faas-async's durable queue, with its retries and
//!   dead letters. Its id is derived from the function and the tick, so
//!   gateways sharing a NATS queue queue it once (JetStream's duplicate
//!   window) and the embedded queue does not hold it twice. Missed ticks
//!   are not replayed, except the last one with
//!   `com.openfaas.cron.catch-up: "true"`.
//! - **NATS subjects**: `topic: a,b` calls the function for each message
//!   on `a` and `b` (body as the body, headers as `X-Nats-*`, the subject
//!   as `X-Topic`), subscribed in one queue group across gateways and
//!   queued durably on arrival; the answer goes to the message's reply
//!   subject ([`NatsReplier`]).
//!
//! [`TriggerLayer`] wraps the provider so deploys, updates and deletes set
//! the triggers (bad annotations: 400) and refreshes them from the
//! provider; [`api::router`] serves `GET /system/triggers`;
//! [`TriggerMetrics`] counts `gateway_trigger_fired_total` and
//! `gateway_trigger_failed_total`. Give [`Triggers`] to the dispatcher as
//! its [`faas_async::CallObserver`] and each trigger's last outcome is what
//! its call came to (`answered 200`, `retrying ...`, `dead-lettered ...`).

pub mod api;
mod layer;
mod metrics;
mod nats;
mod observer;
mod registry;
mod schedule;
mod spec;
mod ticklog;

pub use layer::TriggerLayer;
pub use metrics::TriggerMetrics;
pub use nats::{spawn_subscriber, NatsReplier, NATS_HEADER_PREFIX, QUEUE_GROUP, TOPIC_HEADER};
pub use registry::{tick_id, Outcome, TriggerInfo, Triggers, SCHEDULED_TIME_HEADER, SCHEDULE_HEADER, TRIGGER_HEADER};
pub use schedule::{Schedule, ACCEPTED_SCHEDULES, MIN_INTERVAL};
pub use spec::{
    TriggerSpec, CATCH_UP_ANNOTATION, CRON_TOPIC, SCHEDULE_ANNOTATION, TIMEZONE_ANNOTATION, TOPIC_ANNOTATION,
};
pub use ticklog::{FileTickLog, NatsTickLog, TickLog};
