//! The last tick each cron function fired, kept across restarts so
//! `com.openfaas.cron.catch-up` knows which tick was missed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use tokio::sync::Mutex;

/// Where the last fired tick of each function is kept (milliseconds since
/// the Unix epoch, by `name.namespace`).
#[async_trait]
pub trait TickLog: Send + Sync + 'static {
    /// The last tick recorded for `function`.
    async fn last(&self, function: &str) -> Result<Option<i64>, String>;
    /// Records that `function` fired `tick`.
    async fn record(&self, function: &str, tick: i64) -> Result<(), String>;
}

/// A JSON file (one gateway with the embedded queue): rewritten whole and
/// renamed into place at each record.
#[derive(Debug)]
pub struct FileTickLog {
    path: PathBuf,
    ticks: Mutex<BTreeMap<String, i64>>,
}

impl FileTickLog {
    /// Opens (or starts) the log at `path`, creating its directory.
    pub async fn open(path: PathBuf) -> Result<FileTickLog, String> {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let ticks = match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
        };
        Ok(FileTickLog { path, ticks: Mutex::new(ticks) })
    }
}

#[async_trait]
impl TickLog for FileTickLog {
    async fn last(&self, function: &str) -> Result<Option<i64>, String> {
        Ok(self.ticks.lock().await.get(function).copied())
    }

    async fn record(&self, function: &str, tick: i64) -> Result<(), String> {
        let mut ticks = self.ticks.lock().await;
        ticks.insert(function.to_owned(), tick);
        let bytes = serde_json::to_vec(&*ticks).map_err(|e| e.to_string())?;
        let temporary = self.path.with_extension("tmp");
        tokio::fs::write(&temporary, bytes).await.map_err(|e| format!("cannot write {}: {e}", temporary.display()))?;
        tokio::fs::rename(&temporary, &self.path)
            .await
            .map_err(|e| format!("cannot replace {}: {e}", self.path.display()))
    }
}

/// A JetStream stream holding one message per function (several gateways
/// sharing a NATS queue share it too).
#[derive(Debug)]
pub struct NatsTickLog {
    context: jetstream::Context,
    stream: stream::Stream,
    prefix: String,
}

impl NatsTickLog {
    /// Creates stream `name` (subjects `name.*`) unless it exists.
    pub async fn open(client: async_nats::Client, name: &str) -> Result<NatsTickLog, String> {
        let context = jetstream::new(client);
        let stream = context
            .get_or_create_stream(stream::Config {
                name: name.to_owned(),
                subjects: vec![format!("{name}.*")],
                storage: stream::StorageType::File,
                max_messages_per_subject: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("cannot create the tick stream {name}: {e}"))?;
        Ok(NatsTickLog { context, stream, prefix: name.to_owned() })
    }

    /// A subject token for `function` (`name.namespace` has a dot).
    fn subject(&self, function: &str) -> String {
        format!("{}.{}", self.prefix, function.replace('.', "_"))
    }
}

#[async_trait]
impl TickLog for NatsTickLog {
    async fn last(&self, function: &str) -> Result<Option<i64>, String> {
        match self.stream.get_last_raw_message_by_subject(&self.subject(function)).await {
            Ok(message) => Ok(std::str::from_utf8(&message.payload).ok().and_then(|t| t.parse().ok())),
            Err(err) if err.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(format!("cannot read the last tick of {function}: {err}")),
        }
    }

    async fn record(&self, function: &str, tick: i64) -> Result<(), String> {
        let ack = self
            .context
            .publish(self.subject(function), tick.to_string().into())
            .await
            .map_err(|e| format!("cannot record a tick of {function}: {e}"))?;
        ack.await.map(|_| ()).map_err(|e| format!("cannot record a tick of {function}: {e}"))
    }
}
