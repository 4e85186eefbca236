//! The embedded queue: one `redb` database file in the gateway's state
//! directory. Every change is one transaction committed with redb's
//! default immediate durability (fsync before the commit returns), so a
//! call accepted before a crash is still there after it.
//!
//! Tables: `calls` (id → the call), `ready` ((due time in ms, id) → ()),
//! `leased` (id → claim time in ms: claimed, outcome not yet known) and
//! `dead` (id → dead letter). A call is in exactly one of `ready`, `leased`
//! or `dead`. One process opens the file at a time (redb locks it); when it
//! opens, every leased call is made ready again, since whoever claimed it is
//! gone: that is the at-least-once guarantee across crashes.
//!
//! Within a process a lease also ends when its worker stops renewing it: a
//! worker holding a claim renews it every third of the lease timeout
//! ([`EmbeddedQueue::with_lease_timeout`], default
//! [`DEFAULT_LEASE_TIMEOUT`]) through [`Queue::keep_alive`], however long
//! the function runs. A lease not renewed for the whole timeout (its worker
//! panicked, or writing its outcome failed) is made ready again by the next
//! claim, and that claim is flagged a redelivery.
//!
//! Every transaction runs on the queue's own thread (`faas-queue`), one at
//! a time, in the order asked. redb admits one write transaction at a time
//! anyway; run on tokio's blocking pool, concurrent enqueues, claims and
//! settlements each took a pool thread to wait for that lock (and its
//! fsync), so the pool grew to the most that had ever waited at once and,
//! reused in turn, never shrank: a soak's gateway gained a thread at each
//! moment of contention (BENCHMARKS.md, "10. Soak").

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition};
use tokio::sync::Notify;

use crate::call::{now_ms, Claimed, DeadLetter, FailedStage, Handle, QueuedCall};
use crate::error::AsyncError;
use crate::queue::Queue;

const CALLS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("calls");
const READY: TableDefinition<'_, (u64, &str), ()> = TableDefinition::new("ready");
const LEASED: TableDefinition<'_, &str, u64> = TableDefinition::new("leased");
const DEAD: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("dead");

/// The file name of the database inside the queue's directory.
pub const DATABASE_FILE: &str = "queue.redb";

/// How long a lease lasts without being renewed by default: 5 minutes.
/// Live workers renew theirs, so this is only how soon the call of a worker
/// that is gone runs again.
pub const DEFAULT_LEASE_TIMEOUT: Duration = Duration::from_secs(300);

/// One piece of work for the queue's thread.
type Job = Box<dyn FnOnce(&Database) + Send>;

/// The thread that owns the database and runs every transaction, in the
/// order they are sent. It ends, closing the database, once the sender is
/// dropped and the work sent before is done.
struct Worker {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    fn start(db: Database) -> std::io::Result<Worker> {
        let (jobs, receiver) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new().name("faas-queue".into()).spawn(move || {
            for job in receiver {
                // A transaction that panics fails its own call (its reply
                // is dropped), not the queue.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&db)));
            }
        })?;
        Ok(Worker { jobs: Some(jobs), thread: Some(thread) })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.jobs.take());
        // The database is closed when this returns, so that the same file
        // can be opened again at once. (Not joined from the thread itself,
        // should the queue be dropped by its own work.)
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// A durable queue on this machine, in one redb file.
pub struct EmbeddedQueue {
    worker: Worker,
    path: PathBuf,
    /// Wakes a waiting claim when a call is enqueued or replayed.
    wake: Notify,
    /// Calls that were leased when the database was opened, or whose lease
    /// expired since: their next claim is a redelivery.
    recovered: Arc<Mutex<HashSet<String>>>,
    /// How long a lease lasts without being renewed.
    lease_timeout: Duration,
    /// When claims last looked for expired leases (ms since the epoch).
    last_sweep_ms: AtomicU64,
}

impl std::fmt::Debug for EmbeddedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedQueue").field("path", &self.path).finish_non_exhaustive()
    }
}

/// What one claim transaction found.
enum Found {
    Call(Box<Claimed>),
    /// The earliest ready call is due at this time (ms).
    DueAt(u64),
    Empty,
}

impl EmbeddedQueue {
    /// Opens (or creates) the queue in directory `dir`, creating the
    /// directory, and makes calls left leased by a previous process ready
    /// again. Returns how many were recovered.
    pub async fn open(dir: &Path) -> Result<(EmbeddedQueue, usize), AsyncError> {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(&dir)).await.map_err(AsyncError::Task)?
    }

    fn open_blocking(dir: &Path) -> Result<(EmbeddedQueue, usize), AsyncError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| AsyncError::store("create the queue directory", redb::StorageError::Io(e)))?;
        let path = dir.join(DATABASE_FILE);
        let db = Database::create(&path).map_err(|e| AsyncError::store("open the database", e))?;
        let mut recovered = HashSet::new();
        let tx = db.begin_write().map_err(|e| AsyncError::store("begin a transaction", e))?;
        {
            let calls = tx.open_table(CALLS).map_err(|e| AsyncError::store("open the calls table", e))?;
            let mut ready = tx.open_table(READY).map_err(|e| AsyncError::store("open the ready table", e))?;
            let mut leased = tx.open_table(LEASED).map_err(|e| AsyncError::store("open the leased table", e))?;
            tx.open_table(DEAD).map_err(|e| AsyncError::store("open the dead table", e))?;
            let now = now_ms();
            while let Some((id, _)) = leased.pop_first().map_err(|e| AsyncError::store("read the leased table", e))? {
                let id = id.value().to_owned();
                if calls.get(id.as_str()).map_err(|e| AsyncError::store("read a call", e))?.is_some() {
                    ready.insert((now, id.as_str()), ()).map_err(|e| AsyncError::store("requeue a call", e))?;
                    recovered.insert(id);
                }
            }
        }
        tx.commit().map_err(|e| AsyncError::store("commit the recovery", e))?;
        let count = recovered.len();
        let worker =
            Worker::start(db).map_err(|e| AsyncError::store("start the queue's thread", redb::StorageError::Io(e)))?;
        let queue = EmbeddedQueue {
            worker,
            path,
            wake: Notify::new(),
            recovered: Arc::new(Mutex::new(recovered)),
            lease_timeout: DEFAULT_LEASE_TIMEOUT,
            last_sweep_ms: AtomicU64::new(now_ms()),
        };
        Ok((queue, count))
    }

    /// Sets how long a lease lasts without being renewed (at least 30ms;
    /// default [`DEFAULT_LEASE_TIMEOUT`]).
    pub fn with_lease_timeout(mut self, timeout: Duration) -> Self {
        self.lease_timeout = timeout.max(Duration::from_millis(30));
        self
    }

    /// How long a lease lasts without being renewed.
    pub fn lease_timeout(&self) -> Duration {
        self.lease_timeout
    }

    /// The lease cutoff (ms) if it is time to look for expired leases: a
    /// few times per lease timeout, not at every claim.
    fn sweep_due(&self) -> Option<u64> {
        let now = now_ms();
        let timeout = u64::try_from(self.lease_timeout.as_millis()).unwrap_or(u64::MAX);
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < timeout / 4 {
            return None;
        }
        self.last_sweep_ms.store(now, Ordering::Relaxed);
        Some(now.saturating_sub(timeout))
    }

    /// How long until claims look for expired leases again.
    fn next_sweep_in(&self) -> Duration {
        let timeout = u64::try_from(self.lease_timeout.as_millis()).unwrap_or(u64::MAX);
        let since = now_ms().saturating_sub(self.last_sweep_ms.load(Ordering::Relaxed));
        Duration::from_millis((timeout / 4).saturating_sub(since).max(1))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the queue's thread with the database, after the
    /// work sent before it.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, AsyncError> + Send + 'static,
    ) -> Result<T, AsyncError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |db| {
            let _ = reply.send(work(db));
        });
        let failed = |why: &str| {
            AsyncError::store(
                "run a transaction on the queue's thread",
                redb::StorageError::Io(std::io::Error::other(why)),
            )
        };
        let sent = self.worker.jobs.as_ref().is_some_and(|jobs| jobs.send(job).is_ok());
        if !sent {
            return Err(failed("the thread has ended"));
        }
        answer.await.map_err(|_| failed("the transaction panicked"))?
    }

    /// Makes calls leased before `cutoff` (ms) ready again, as
    /// redeliveries; how many.
    fn expire_leases(
        tx: &redb::WriteTransaction,
        cutoff: u64,
        now: u64,
        recovered: &Mutex<HashSet<String>>,
    ) -> Result<usize, AsyncError> {
        let mut leased = tx.open_table(LEASED).map_err(|e| AsyncError::store("open the leased table", e))?;
        let mut expired = Vec::new();
        for entry in leased.iter().map_err(|e| AsyncError::store("read the leased table", e))? {
            let (id, since) = entry.map_err(|e| AsyncError::store("read a lease", e))?;
            if since.value() < cutoff {
                expired.push(id.value().to_owned());
            }
        }
        let calls = tx.open_table(CALLS).map_err(|e| AsyncError::store("open the calls table", e))?;
        let mut ready = tx.open_table(READY).map_err(|e| AsyncError::store("open the ready table", e))?;
        for id in &expired {
            leased.remove(id.as_str()).map_err(|e| AsyncError::store("end a lease", e))?;
            if calls.get(id.as_str()).map_err(|e| AsyncError::store("read a call", e))?.is_some() {
                ready.insert((now, id.as_str()), ()).map_err(|e| AsyncError::store("requeue a call", e))?;
                recovered.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone());
            }
        }
        Ok(expired.len())
    }

    fn try_claim(db: &Database, recovered: &Mutex<HashSet<String>>, sweep: Option<u64>) -> Result<Found, AsyncError> {
        let now = now_ms();
        let tx = db.begin_write().map_err(|e| AsyncError::store("begin a transaction", e))?;
        if let Some(cutoff) = sweep {
            let expired = Self::expire_leases(&tx, cutoff, now, recovered)?;
            if expired > 0 {
                tracing::warn!(expired, "asynchronous calls whose worker stopped renewing its lease will run again");
            }
        }
        let found = {
            let mut ready = tx.open_table(READY).map_err(|e| AsyncError::store("open the ready table", e))?;
            let first = ready.first().map_err(|e| AsyncError::store("read the ready table", e))?.map(|(key, _)| {
                let (due, id) = key.value();
                (due, id.to_owned())
            });
            match first {
                None => Found::Empty,
                Some((due, _)) if due > now => Found::DueAt(due),
                Some((due, id)) => {
                    ready.remove((due, id.as_str())).map_err(|e| AsyncError::store("take a ready call", e))?;
                    let mut calls = tx.open_table(CALLS).map_err(|e| AsyncError::store("open the calls table", e))?;
                    let bytes = calls
                        .get(id.as_str())
                        .map_err(|e| AsyncError::store("read a call", e))?
                        .map(|guard| guard.value().to_vec());
                    match bytes {
                        // A ready entry without its call cannot be served;
                        // dropping the entry is all there is to do.
                        None => Found::DueAt(now),
                        Some(bytes) => {
                            let mut call = QueuedCall::decode(&id, &bytes)?;
                            call.attempts = call.attempts.saturating_add(1);
                            calls
                                .insert(id.as_str(), call.encode()?.as_slice())
                                .map_err(|e| AsyncError::store("count an attempt", e))?;
                            let mut leased =
                                tx.open_table(LEASED).map_err(|e| AsyncError::store("open the leased table", e))?;
                            leased.insert(id.as_str(), now).map_err(|e| AsyncError::store("lease a call", e))?;
                            let redelivered =
                                recovered.lock().unwrap_or_else(PoisonError::into_inner).remove(id.as_str());
                            Found::Call(Box::new(Claimed { call, redelivered, handle: Handle::Local }))
                        }
                    }
                }
            }
        };
        tx.commit().map_err(|e| AsyncError::store("commit a claim", e))?;
        Ok(found)
    }

    /// Removes `id` from the leased table, and from the calls table too
    /// unless `keep` holds the record to write back.
    fn settle(db: &Database, id: &str, then: Settle) -> Result<(), AsyncError> {
        let tx = db.begin_write().map_err(|e| AsyncError::store("begin a transaction", e))?;
        {
            let mut leased = tx.open_table(LEASED).map_err(|e| AsyncError::store("open the leased table", e))?;
            leased.remove(id).map_err(|e| AsyncError::store("release a lease", e))?;
            let mut calls = tx.open_table(CALLS).map_err(|e| AsyncError::store("open the calls table", e))?;
            match then {
                Settle::Done => {
                    calls.remove(id).map_err(|e| AsyncError::store("remove a call", e))?;
                }
                Settle::RetryAt(due) => {
                    let mut ready = tx.open_table(READY).map_err(|e| AsyncError::store("open the ready table", e))?;
                    ready.insert((due, id), ()).map_err(|e| AsyncError::store("requeue a call", e))?;
                }
                Settle::Dead(dead) => {
                    calls.remove(id).map_err(|e| AsyncError::store("remove a call", e))?;
                    let mut table = tx.open_table(DEAD).map_err(|e| AsyncError::store("open the dead table", e))?;
                    table
                        .insert(id, dead.encode()?.as_slice())
                        .map_err(|e| AsyncError::store("store a dead letter", e))?;
                }
            }
        }
        tx.commit().map_err(|e| AsyncError::store("commit an outcome", e))
    }
}

/// What becomes of a claimed call.
enum Settle {
    Done,
    RetryAt(u64),
    Dead(Box<DeadLetter>),
}

#[async_trait]
impl Queue for EmbeddedQueue {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn enqueue(&self, call: QueuedCall) -> Result<(), AsyncError> {
        let bytes = call.encode()?;
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(|e| AsyncError::store("begin a transaction", e))?;
            let known = {
                let calls = tx.open_table(CALLS).map_err(|e| AsyncError::store("open the calls table", e))?;
                let dead = tx.open_table(DEAD).map_err(|e| AsyncError::store("open the dead table", e))?;
                calls.get(call.id.as_str()).map_err(|e| AsyncError::store("read a call", e))?.is_some()
                    || dead.get(call.id.as_str()).map_err(|e| AsyncError::store("read a dead letter", e))?.is_some()
            };
            // The same id again while it is queued or dead: already here.
            if known {
                return tx.abort().map_err(|e| AsyncError::store("end a transaction", e));
            }
            {
                let mut calls = tx.open_table(CALLS).map_err(|e| AsyncError::store("open the calls table", e))?;
                calls.insert(call.id.as_str(), bytes.as_slice()).map_err(|e| AsyncError::store("store a call", e))?;
                let mut ready = tx.open_table(READY).map_err(|e| AsyncError::store("open the ready table", e))?;
                ready.insert((now_ms(), call.id.as_str()), ()).map_err(|e| AsyncError::store("queue a call", e))?;
            }
            tx.commit().map_err(|e| AsyncError::store("commit a call", e))
        })
        .await?;
        self.wake.notify_one();
        Ok(())
    }

    async fn claim(&self, wait: Duration) -> Result<Option<Claimed>, AsyncError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let recovered = self.recovered.clone();
            let sweep = self.sweep_due();
            let found = self.blocking(move |db| Self::try_claim(db, &recovered, sweep)).await?;
            let until = match found {
                Found::Call(claimed) => return Ok(Some(*claimed)),
                Found::DueAt(due) => {
                    let in_ms = due.saturating_sub(now_ms());
                    (tokio::time::Instant::now() + Duration::from_millis(in_ms)).min(deadline)
                }
                Found::Empty => deadline,
            }
            .min(tokio::time::Instant::now() + self.next_sweep_in());
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn ack(&self, claimed: &Claimed) -> Result<(), AsyncError> {
        let id = claimed.call.id.clone();
        self.blocking(move |db| Self::settle(db, &id, Settle::Done)).await
    }

    async fn nack(&self, claimed: &Claimed, delay: Duration) -> Result<(), AsyncError> {
        let id = claimed.call.id.clone();
        let due = now_ms().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        self.blocking(move |db| Self::settle(db, &id, Settle::RetryAt(due))).await?;
        self.wake.notify_one();
        Ok(())
    }

    async fn dead_letter(&self, claimed: &Claimed, stage: FailedStage, reason: String) -> Result<(), AsyncError> {
        let id = claimed.call.id.clone();
        let dead = DeadLetter { call: claimed.call.clone(), stage, reason, dead_at_ms: now_ms() };
        self.blocking(move |db| Self::settle(db, &id, Settle::Dead(Box::new(dead)))).await
    }

    fn keep_alive_interval(&self) -> Option<Duration> {
        Some(self.lease_timeout / 3)
    }

    /// Renews the lease, unless it ended (expired and re-queued) already.
    async fn keep_alive(&self, claimed: &Claimed) -> Result<(), AsyncError> {
        let id = claimed.call.id.clone();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(|e| AsyncError::store("begin a transaction", e))?;
            {
                let mut leased = tx.open_table(LEASED).map_err(|e| AsyncError::store("open the leased table", e))?;
                let held = leased.get(id.as_str()).map_err(|e| AsyncError::store("read a lease", e))?.is_some();
                if held {
                    leased.insert(id.as_str(), now_ms()).map_err(|e| AsyncError::store("renew a lease", e))?;
                }
            }
            tx.commit().map_err(|e| AsyncError::store("commit a renewal", e))
        })
        .await
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, AsyncError> {
        let mut all = self
            .blocking(|db| {
                let tx = db.begin_read().map_err(|e| AsyncError::store("begin a read", e))?;
                let table = tx.open_table(DEAD).map_err(|e| AsyncError::store("open the dead table", e))?;
                let mut out = Vec::new();
                for entry in table.iter().map_err(|e| AsyncError::store("list dead letters", e))? {
                    let (id, bytes) = entry.map_err(|e| AsyncError::store("read a dead letter", e))?;
                    out.push(DeadLetter::decode(id.value(), bytes.value())?);
                }
                Ok(out)
            })
            .await?;
        all.sort_by(|a, b| a.dead_at_ms.cmp(&b.dead_at_ms).then_with(|| a.call.id.cmp(&b.call.id)));
        Ok(all)
    }

    async fn replay(&self, id: &str) -> Result<QueuedCall, AsyncError> {
        let id = id.to_owned();
        let call = self
            .blocking(move |db| {
                let tx = db.begin_write().map_err(|e| AsyncError::store("begin a transaction", e))?;
                let call = {
                    let mut dead = tx.open_table(DEAD).map_err(|e| AsyncError::store("open the dead table", e))?;
                    let Some(bytes) = dead
                        .remove(id.as_str())
                        .map_err(|e| AsyncError::store("take a dead letter", e))?
                        .map(|guard| guard.value().to_vec())
                    else {
                        return Err(AsyncError::NotFound(id));
                    };
                    let mut call = DeadLetter::decode(&id, &bytes)?.call;
                    call.attempts = 0;
                    let mut calls = tx.open_table(CALLS).map_err(|e| AsyncError::store("open the calls table", e))?;
                    calls
                        .insert(id.as_str(), call.encode()?.as_slice())
                        .map_err(|e| AsyncError::store("store a call", e))?;
                    let mut ready = tx.open_table(READY).map_err(|e| AsyncError::store("open the ready table", e))?;
                    ready.insert((now_ms(), id.as_str()), ()).map_err(|e| AsyncError::store("queue a call", e))?;
                    call
                };
                tx.commit().map_err(|e| AsyncError::store("commit a replay", e))?;
                Ok(call)
            })
            .await?;
        self.wake.notify_one();
        Ok(call)
    }
}

#[cfg(test)]
mod tests {
    use faas_core::FunctionRef;
    use faas_test_support::process::threads_named;

    use super::*;

    fn call(id: &str) -> QueuedCall {
        QueuedCall::post(id, &FunctionRef::new("echo", "openfaas-fn"), b"hi".to_vec())
    }

    const NO_WAIT: Duration = Duration::from_millis(0);

    #[tokio::test]
    async fn calls_are_claimed_in_order_and_acked_once() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, recovered) = EmbeddedQueue::open(dir.path()).await.unwrap();
        assert_eq!(recovered, 0);
        assert!(queue.claim(NO_WAIT).await.unwrap().is_none());
        queue.enqueue(call("a")).await.unwrap();
        queue.enqueue(call("b")).await.unwrap();
        let a = queue.claim(NO_WAIT).await.unwrap().unwrap();
        assert_eq!((a.call.id.as_str(), a.call.attempts, a.redelivered), ("a", 1, false));
        queue.ack(&a).await.unwrap();
        let b = queue.claim(NO_WAIT).await.unwrap().unwrap();
        assert_eq!(b.call.id, "b");
        queue.ack(&b).await.unwrap();
        assert!(queue.claim(NO_WAIT).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_waiting_claim_wakes_on_enqueue() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Arc::new(EmbeddedQueue::open(dir.path()).await.unwrap().0);
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.claim(Duration::from_secs(20)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        queue.enqueue(call("late")).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap().unwrap().unwrap();
        assert_eq!(got.call.id, "late");
    }

    #[tokio::test]
    async fn nacked_calls_come_back_after_their_delay_with_attempts_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, _) = EmbeddedQueue::open(dir.path()).await.unwrap();
        queue.enqueue(call("r")).await.unwrap();
        let first = queue.claim(NO_WAIT).await.unwrap().unwrap();
        queue.nack(&first, Duration::from_millis(300)).await.unwrap();
        assert!(queue.claim(NO_WAIT).await.unwrap().is_none(), "not due yet");
        let again = queue.claim(Duration::from_secs(10)).await.unwrap().expect("due after the delay");
        assert_eq!((again.call.id.as_str(), again.call.attempts), ("r", 2));
    }

    #[tokio::test]
    async fn dead_letters_are_listed_and_replayed_with_attempts_reset() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, _) = EmbeddedQueue::open(dir.path()).await.unwrap();
        queue.enqueue(call("d")).await.unwrap();
        let claimed = queue.claim(NO_WAIT).await.unwrap().unwrap();
        queue.dead_letter(&claimed, FailedStage::Invoke, "503 every time".into()).await.unwrap();
        let dead = queue.dead_letters().await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].call.id.as_str(), dead[0].call.attempts, dead[0].stage), ("d", 1, FailedStage::Invoke));
        assert!(queue.claim(NO_WAIT).await.unwrap().is_none());
        assert!(matches!(queue.replay("nope").await, Err(AsyncError::NotFound(_))));
        queue.replay("d").await.unwrap();
        assert!(queue.dead_letters().await.unwrap().is_empty());
        let again = queue.claim(NO_WAIT).await.unwrap().unwrap();
        assert_eq!((again.call.id.as_str(), again.call.attempts), ("d", 1));
    }

    #[tokio::test]
    async fn a_lease_not_renewed_in_time_is_requeued_as_a_redelivery() {
        let dir = tempfile::tempdir().unwrap();
        let queue = EmbeddedQueue::open(dir.path()).await.unwrap().0.with_lease_timeout(Duration::from_millis(300));
        assert_eq!(queue.keep_alive_interval(), Some(Duration::from_millis(100)));
        queue.enqueue(call("renewed")).await.unwrap();
        let renewed = queue.claim(NO_WAIT).await.unwrap().unwrap();
        // A worker renewing its lease keeps it, however long it runs.
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            queue.keep_alive(&renewed).await.unwrap();
            assert!(queue.claim(NO_WAIT).await.unwrap().is_none(), "a renewed lease is not handed out again");
        }
        queue.ack(&renewed).await.unwrap();
        // A worker gone without an outcome: its call runs again.
        let dir = tempfile::tempdir().unwrap();
        let fresh = EmbeddedQueue::open(dir.path()).await.unwrap().0.with_lease_timeout(Duration::from_millis(300));
        fresh.enqueue(call("lost")).await.unwrap();
        let first = fresh.claim(NO_WAIT).await.unwrap().unwrap();
        assert!(!first.redelivered);
        assert!(fresh.claim(NO_WAIT).await.unwrap().is_none(), "still leased");
        let again = fresh.claim(Duration::from_secs(5)).await.unwrap().expect("requeued after the lease timeout");
        assert_eq!((again.call.id.as_str(), again.call.attempts, again.redelivered), ("lost", 2, true));
        // A late renewal of the old claim does not take the lease back.
        fresh.keep_alive(&first).await.unwrap();
        fresh.ack(&again).await.unwrap();
        fresh.keep_alive(&first).await.unwrap();
        assert!(fresh.claim(Duration::from_millis(500)).await.unwrap().is_none(), "done for good");
    }

    #[tokio::test]
    async fn reopening_requeues_leased_calls_as_redeliveries() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (queue, _) = EmbeddedQueue::open(dir.path()).await.unwrap();
            queue.enqueue(call("in-flight")).await.unwrap();
            queue.enqueue(call("queued")).await.unwrap();
            let claimed = queue.claim(NO_WAIT).await.unwrap().unwrap();
            assert_eq!(claimed.call.id, "in-flight");
            // Dropped without an outcome, as a crash would.
        }
        let (queue, recovered) = EmbeddedQueue::open(dir.path()).await.unwrap();
        assert_eq!(recovered, 1);
        let mut seen = Vec::new();
        while let Some(claimed) = queue.claim(NO_WAIT).await.unwrap() {
            seen.push((claimed.call.id.clone(), claimed.redelivered));
            queue.ack(&claimed).await.unwrap();
        }
        seen.sort();
        assert_eq!(seen, vec![("in-flight".to_owned(), true), ("queued".to_owned(), false)]);
    }

    #[tokio::test]
    async fn a_transaction_that_panics_fails_its_call_and_the_queue_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (queue, _) = EmbeddedQueue::open(dir.path()).await.unwrap();
        let err = queue.blocking(|_| -> Result<(), AsyncError> { panic!("a bug in a transaction") }).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "embedded queue store failed to run a transaction on the queue's thread",
            "{err:?}"
        );
        assert!(format!("{err:?}").contains("the transaction panicked"), "{err:?}");
        queue.enqueue(call("after")).await.unwrap();
        assert_eq!(queue.claim(NO_WAIT).await.unwrap().unwrap().call.id, "after");
    }

    #[test]
    fn concurrent_transactions_take_no_thread_of_the_runtime() {
        const NAME: &str = "queue-test-rt";
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(NAME)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        runtime.block_on(async {
            let queue = Arc::new(EmbeddedQueue::open(dir.path()).await.unwrap().0);
            // The workers and the pool thread that opened the file.
            let before = threads_named(NAME);
            let enqueues: Vec<_> = (0..64)
                .map(|i| {
                    let queue = queue.clone();
                    tokio::spawn(async move { queue.enqueue(call(&format!("c{i}"))).await })
                })
                .collect();
            for enqueue in enqueues {
                enqueue.await.unwrap().unwrap();
            }
            assert_eq!(threads_named(NAME), before, "64 transactions at once started runtime threads");
            let mut claimed = 0;
            while queue.claim(NO_WAIT).await.unwrap().is_some() {
                claimed += 1;
            }
            assert_eq!(claimed, 64);
        });
    }
}
