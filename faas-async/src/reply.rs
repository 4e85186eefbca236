//! Answers published back to whoever asked: a call carrying
//! [`REPLY_SUBJECT_HEADER`] has its function's response handed to the
//! dispatcher's [`Replier`] (faas-triggers publishes it to the NATS
//! message's reply subject).

use async_trait::async_trait;

use crate::callback::FunctionResponse;

/// The header naming where a call's answer goes (a NATS reply subject).
/// Only the gateway's triggers set it: the HTTP API drops it from the
/// calls it accepts.
pub const REPLY_SUBJECT_HEADER: &str = "x-faas-reply-subject";

/// Delivers a call's answer to the reply subject it names.
#[async_trait]
pub trait Replier: Send + Sync + 'static {
    /// Sends `response` to `subject`; an error is the reason, in words.
    async fn reply(&self, subject: &str, response: &FunctionResponse) -> Result<(), String>;
}
