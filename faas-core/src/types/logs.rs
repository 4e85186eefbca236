use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What logs to read: the query of `GET /system/logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogRequest {
    /// The function's name.
    pub name: String,
    /// Its namespace; empty means the default.
    pub namespace: String,
    /// Only this instance (replica), if not empty.
    pub instance: String,
    /// Only messages at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many of the latest messages; zero or less means all.
    pub tail: i64,
    /// Keep the stream open and send new messages as they are written.
    pub follow: bool,
}

/// One line a function wrote, as `GET /system/logs` streams it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogMessage {
    /// The function's name.
    pub name: String,
    /// Its namespace.
    #[serde(default)]
    pub namespace: String,
    /// The instance (replica) that wrote it.
    #[serde(default)]
    pub instance: String,
    /// When it was written.
    pub timestamp: DateTime<Utc>,
    /// The text, without its trailing newline.
    pub text: String,
}
