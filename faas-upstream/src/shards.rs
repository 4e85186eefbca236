//! [`Shards`]: serving each connection on one thread from start to end.
//!
//! A proxy on a work-stealing runtime pays for its threads: the task
//! reading a caller's request, the task driving the pooled connection to
//! the instance and the task writing the answer wake each other across
//! threads (a futex wake, often an inter-processor interrupt), and idle
//! workers are woken to steal work that is gone by the time they look.
//! On a loaded machine that was a fifth of the gateway's CPU per call
//! (benches/PROFILE.md).
//!
//! Shards are threads each running a single-threaded runtime. A connection
//! handed to one ([`Shards::spawn`]) is served there to its end, and the
//! calls it makes to instances go through connections owned by the same
//! thread: [`crate::Upstream`] keeps a pool per thread on a
//! single-threaded runtime. Nothing on that path crosses threads.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// How long a thread of the main runtime's blocking pool is kept once idle
/// (tokio's default is 10 s).
///
/// The pool starts a thread whenever a task finds none idle, so a burst of
/// blocking work (state writes, file reads) leaves as many threads as ran
/// at once; with 1 s they end a second after the burst instead of ten.
/// Work arriving more often than each thread's keep-alive still keeps them
/// all: idle threads are woken in turn, so none stays idle long enough. The
/// embedded async queue, whose transactions did that in the soak (31 → 35
/// threads, BENCHMARKS.md "10. Soak"), therefore has a thread of its own.
pub const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(1);

/// The builder of [`Shards::main_runtime`].
fn main_builder(threads: usize) -> tokio::runtime::Builder {
    let mut builder = match threads {
        0 => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    builder.enable_all().thread_keep_alive(BLOCKING_KEEP_ALIVE);
    builder
}

/// A connection's work: made on the shard (where its socket is
/// registered with that shard's runtime), then run there.
type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Threads each running a current-thread tokio runtime; work is handed to
/// them in turn. Dropping the value lets the threads end once their work
/// is done; whatever is still running then is dropped.
pub struct Shards {
    senders: Vec<mpsc::UnboundedSender<Job>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards").field("threads", &self.senders.len()).finish()
    }
}

impl Shards {
    /// The runtime a binary's `main` runs on beside `threads` serving
    /// threads: work-stealing when there are none (it serves everything),
    /// one thread when there are some (it only accepts connections and runs
    /// background work).
    ///
    /// Errors: the runtime could not be created.
    ///
    /// Its blocking pool keeps an idle thread for [`BLOCKING_KEEP_ALIVE`].
    pub fn main_runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
        main_builder(threads).build()
    }

    /// Starts `threads` shards (at least one), named `{name}-{i}`.
    ///
    /// Errors: a runtime or a thread could not be created.
    pub fn start(threads: usize, name: &str) -> std::io::Result<Shards> {
        let mut senders = Vec::with_capacity(threads.max(1));
        for i in 0..threads.max(1) {
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = rx.recv().await {
                        tokio::spawn(job());
                    }
                });
                // Whatever still runs is dropped; blocking work is not waited for.
                runtime.shutdown_background();
            })?;
            senders.push(tx);
        }
        Ok(Shards { senders, next: AtomicUsize::new(0) })
    }

    /// How many shards there are.
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    /// Never true: there is at least one shard.
    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// Runs `make()`'s future on the next shard, in turn. `make` runs on
    /// the shard, so sockets it registers (`TcpStream::from_std`) belong
    /// to that shard's runtime. Returns false when the shard is gone.
    pub fn spawn<F, Fut>(&self, make: F) -> bool
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.senders.len();
        self.senders[i].send(Box::new(move || Box::pin(make()))).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use faas_test_support::process::threads_named;

    use super::*;

    #[test]
    fn work_runs_on_each_shard_in_turn() {
        let shards = Shards::start(2, "test-shard").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            assert!(shards.spawn(move || async move {
                let flavor = tokio::runtime::Handle::current().runtime_flavor();
                let _ = tx.send((std::thread::current().name().map(str::to_owned), flavor));
            }));
        }
        let mut names: Vec<_> = (0..4)
            .map(|_| rx.recv_timeout(std::time::Duration::from_secs(30)).expect("every job runs"))
            .inspect(|(_, flavor)| assert_eq!(*flavor, tokio::runtime::RuntimeFlavor::CurrentThread))
            .map(|(name, _)| name.unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["test-shard-0", "test-shard-0", "test-shard-1", "test-shard-1"]);
    }

    #[test]
    fn the_main_runtimes_idle_blocking_threads_end_after_the_keep_alive() {
        const NAME: &str = "keep-alive-test";
        let runtime = main_builder(0).worker_threads(1).thread_name(NAME).build().unwrap();
        // Six blocking tasks at once: six pool threads beside the worker.
        runtime.block_on(async {
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
            let tasks: Vec<_> = (0..6)
                .map(|_| {
                    let barrier = barrier.clone();
                    tokio::task::spawn_blocking(move || {
                        barrier.wait();
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        assert_eq!(threads_named(NAME), 7, "the worker and six pool threads");
        // Back to the worker alone well before tokio's default 10 s.
        let idle = std::time::Instant::now();
        while threads_named(NAME) > 1 {
            assert!(
                idle.elapsed() < BLOCKING_KEEP_ALIVE * 4,
                "{} threads {:?} after the pool went idle",
                threads_named(NAME),
                idle.elapsed()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
