//! Cold starts without a cgroup join (cgroup v1): a thread that waits
//! inside a spare instance's cgroups, so that the first process of a new
//! http-mode instance is born in them.
//!
//! Why: a process that joins a v1 cgroup takes a global lock for writing
//! that waits for an RCU grace period (10–15 ms on an idle 2-core VM, more
//! under load): that was most of a sandboxed cold start. The nursery's
//! thread makes the next spare (empty cgroups, no limits) and moves itself
//! in ahead of time; a cold start takes the spare, renames it to the
//! instance's name, writes its limits and has the thread start its
//! process, which is born there. The thread then makes the next spare and
//! moves into it, off every caller's path.
//!
//! The thread lives as long as the sandbox, even when making a spare
//! fails (it tries again later): the processes it started have the
//! parent-death signal, which Linux sends when the *thread* that started
//! them ends. The memory a thread of the gateway uses is charged to the
//! gateway's own cgroup, not the spare's (see `spawner.rs`).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use super::cgroup::Instance;
use super::child::OwnedExec;
use super::spawner::{enter, Job, Reply};

/// The nursery thread's stack: it only hands processes to `clone`.
const STACK_SIZE: usize = 128 * 1024;
/// How long the thread waits before trying again to make a spare, at
/// first and at most.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Makes the next spare: empty cgroups, no limits.
pub(crate) type Make = Box<dyn FnMut() -> Result<Instance, String> + Send>;

/// What the thread is told after a spare was taken.
enum Order {
    /// Start this process (the taker's first).
    Spawn(Job),
    /// The taker will not start one: move on.
    Skip,
}

/// The nursery thread and the spare it waits in.
pub(crate) struct Nursery {
    /// The spare the thread is in, until a cold start takes it.
    ready: Arc<Mutex<Option<Instance>>>,
    orders: Mutex<Option<mpsc::Sender<Order>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Nursery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nursery").field("ready", &self.ready).finish_non_exhaustive()
    }
}

impl Nursery {
    /// Starts the thread, which makes its first spare with `make` and
    /// moves into it.
    pub(crate) fn start(make: Make) -> Result<Nursery, String> {
        let ready = Arc::new(Mutex::new(None));
        let (orders_tx, orders_rx) = mpsc::channel();
        let shared = ready.clone();
        let thread = std::thread::Builder::new()
            .name("faas-nursery".into())
            .stack_size(STACK_SIZE)
            .spawn(move || run(make, &shared, &orders_rx))
            .map_err(|e| format!("cannot start the sandbox's nursery thread: {e}"))?;
        Ok(Nursery { ready, orders: Mutex::new(Some(orders_tx)), thread: Mutex::new(Some(thread)) })
    }

    /// The spare the thread is in, if one is ready, and the ticket with
    /// which its thread starts one process in it. The caller names and
    /// limits it ([`Instance::adopt`]) before it starts the process.
    pub(crate) fn take(&self) -> Option<(Instance, Ticket)> {
        let orders = self.orders.lock().ok()?.clone()?;
        let spare = self.ready.try_lock().ok()?.take()?;
        Some((spare, Ticket { orders: Some(orders) }))
    }

    /// Ends the thread (once outstanding tickets are used or dropped) and
    /// removes the spare it was in.
    pub(crate) fn close(&self) {
        drop(self.orders.lock().ok().and_then(|mut orders| orders.take()));
        let thread = self.thread.lock().ok().and_then(|mut thread| thread.take());
        if let Some(thread) = thread {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
        drop(self.ready.lock().ok().and_then(|mut ready| ready.take()));
    }
}

impl Drop for Nursery {
    fn drop(&mut self) {
        // Not joined here: the sandbox may be dropped on the thread itself.
        // With its orders closed it ends on its own.
        drop(self.orders.get_mut().ok().and_then(|orders| orders.take()));
    }
}

/// The right to have the nursery's thread start one process in the spare
/// taken with it; dropped unused, it lets the thread move on.
pub(crate) struct Ticket {
    orders: Option<mpsc::Sender<Order>>,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").finish_non_exhaustive()
    }
}

impl Ticket {
    /// Starts `exec` from the nursery's thread, inside the spare. A
    /// process started for a caller that has gone away is killed.
    pub(crate) async fn spawn(mut self, exec: OwnedExec) -> Reply {
        let gone = || std::io::Error::other("the sandbox's nursery thread has ended");
        let orders = self.orders.take().ok_or_else(gone)?;
        let (reply, answer) = oneshot::channel();
        orders.send(Order::Spawn(Job { exec, reply })).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(orders) = self.orders.take() {
            let _ = orders.send(Order::Skip);
        }
    }
}

/// The nursery thread: make a spare, move in, publish it, wait for the
/// one order its taker sends, again; until the nursery is closed.
fn run(mut make: Make, ready: &Mutex<Option<Instance>>, orders: &mpsc::Receiver<Order>) {
    let mut retry = RETRY_FIRST;
    // Spares this thread could not (wholly) move into: removed once it
    // has moved somewhere else.
    let mut failed: Vec<Instance> = Vec::new();
    loop {
        let spare = make().and_then(|spare| match enter(&spare.thread_files(), None) {
            Ok(()) => Ok(spare),
            Err(e) => {
                failed.push(spare);
                Err(e)
            }
        });
        let spare = match spare {
            Ok(spare) => spare,
            Err(e) => {
                tracing::debug!(error = %e, "the sandbox's nursery cannot make a spare instance; trying again later");
                match orders.recv_timeout(retry) {
                    Err(RecvTimeoutError::Disconnected) => return,
                    // No spare was published, so no order can be for one.
                    Ok(Order::Spawn(job)) => {
                        let _ = job.reply.send(Err(std::io::Error::other("no spare instance")));
                    }
                    Ok(Order::Skip) | Err(RecvTimeoutError::Timeout) => {}
                }
                retry = (retry * 2).min(RETRY_MAX);
                continue;
            }
        };
        retry = RETRY_FIRST;
        // This thread has left the cgroups of those now.
        failed.clear();
        match ready.lock() {
            Ok(mut ready) => *ready = Some(spare),
            Err(_) => return,
        }
        match orders.recv() {
            Ok(Order::Spawn(job)) => job.run(),
            Ok(Order::Skip) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::path::PathBuf;
    use std::time::Instant;

    use nix::sys::signal::kill;
    use nix::sys::wait::{waitpid, WaitStatus};

    use super::*;
    use crate::sandbox::cgroup::{Limits, Parent};
    use crate::sandbox::spawner;
    use crate::sandbox::spawner::tests::{path_of, piped_exec};

    fn v1_parent(test: &str) -> Option<Arc<Parent>> {
        spawner::tests::v1_parent(&format!("nursery-{test}")).map(Arc::new)
    }

    fn nursery(parent: &Arc<Parent>) -> Nursery {
        let parent = parent.clone();
        let mut n = 0;
        Nursery::start(Box::new(move || {
            n += 1;
            parent.spare(&format!("spare-{n}"), true)
        }))
        .unwrap()
    }

    /// The spare, once the thread has made one and moved in (bounded).
    fn take(nursery: &Nursery) -> (Instance, Ticket) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(taken) = nursery.take() {
                return taken;
            }
            assert!(Instant::now() < deadline, "no spare within 5 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn read(path: PathBuf) -> String {
        std::fs::read_to_string(path).unwrap().trim().to_owned()
    }

    #[test]
    fn a_cold_start_is_born_in_the_adopted_spare_and_outlives_the_threads_next_move() {
        let Some(parent) = v1_parent("born") else { return };
        let nursery = nursery(&parent);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let before = std::fs::read_to_string("/proc/thread-self/cgroup").unwrap();

        let (mut instance, ticket) = take(&nursery);
        instance.adopt("fn-a", &Limits { memory: Some(32 << 20), cpu: Some(0.5) }).unwrap();
        let (first, out) = piped_exec(&["/bin/sh", "-c", "cat /proc/self/cgroup; exec sleep 30"]);
        let (pid, _pidfd) = runtime.block_on(ticket.spawn(first)).unwrap();
        let mut out = std::fs::File::from(out);
        let mut text = String::new();
        // The cgroups come first; `sleep` keeps the pipe open.
        let mut buf = [0u8; 4096];
        while !text.contains("memory:") || !text.contains(":cpu") {
            let n = out.read(&mut buf).unwrap();
            assert!(n > 0, "{text}");
            text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        for controller in ["memory", "cpu"] {
            assert!(path_of(&text, controller).ends_with("/fn-a"), "{controller} of the child: {text}");
        }
        let memory = parent.memory.as_ref().unwrap().join("fn-a");
        let cpu = parent.cpu.as_ref().unwrap().join("fn-a");
        assert_eq!(read(memory.join("memory.limit_in_bytes")), (32u64 << 20).to_string());
        assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
        // (Only v1's memory and cpu: another test moves this process in v2.)
        let after = std::fs::read_to_string("/proc/thread-self/cgroup").unwrap();
        for controller in ["memory", "cpu"] {
            assert_eq!(path_of(&before, controller), path_of(&after, controller), "the caller did not move");
        }

        // The thread moves into the next spare; the process it started
        // lives on (its parent-death signal is for the thread's end).
        let (second, ticket) = take(&nursery);
        assert_ne!(second.thread_files(), instance.thread_files());
        std::thread::sleep(Duration::from_millis(100));
        assert!(kill(pid, None).is_ok(), "the first process still runs");
        assert_eq!(read(memory.join("tasks")), pid.to_string(), "only the process is left in fn-a");
        drop(ticket);

        kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        assert!(matches!(waitpid(pid, None).unwrap(), WaitStatus::Signaled(..)));
        let _ = out.read_to_string(&mut String::new());
        drop(out);
        drop(instance);
        assert!(!memory.exists() && !cpu.exists(), "fn-a removed once empty");
        // Closing removes the spare the thread waits in.
        drop(second);
        nursery.close();
        let left: Vec<_> = std::fs::read_dir(parent.memory.as_ref().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "cgroups left under the parent: {left:?}");
    }

    #[test]
    fn a_ticket_dropped_unused_lets_the_thread_move_on() {
        let Some(parent) = v1_parent("skip") else { return };
        let nursery = nursery(&parent);
        let (first, ticket) = take(&nursery);
        drop(ticket);
        let (second, ticket) = take(&nursery);
        assert_ne!(first.thread_files(), second.thread_files());
        // The thread left the first spare, so it can be removed at once.
        let dirs: Vec<PathBuf> = first.thread_files().iter().map(|f| f.parent().unwrap().to_owned()).collect();
        let started = Instant::now();
        drop(first);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
        // Closed before `parent` goes, as the sandbox does: the thread has
        // left its spare by then.
        drop(ticket);
        nursery.close();
        drop(second);
    }

    #[test]
    fn a_spare_that_cannot_take_the_name_is_an_error_naming_it_and_is_removed() {
        let Some(parent) = v1_parent("clash") else { return };
        let nursery = nursery(&parent);
        let taken = parent.instance("taken", &Limits::default()).unwrap();
        let (mut spare, ticket) = take(&nursery);
        let err = spare.adopt("taken", &Limits::default()).unwrap_err();
        assert!(err.starts_with("cannot rename cgroup ") && err.contains(" to taken: "), "{err}");
        // As the jail does: the thread moves on, then the spare goes.
        let dirs: Vec<PathBuf> = spare.thread_files().iter().map(|f| f.parent().unwrap().to_owned()).collect();
        drop(ticket);
        let (next, next_ticket) = take(&nursery);
        let started = Instant::now();
        drop(spare);
        assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
        assert!(started.elapsed() < Duration::from_secs(1), "removed at once: the thread had left");
        drop((next_ticket, taken));
        nursery.close();
        drop(next);
    }

    #[test]
    fn a_spare_that_cannot_be_made_is_tried_again_and_nothing_starts_meanwhile() {
        let Some(parent) = v1_parent("retry") else { return };
        let tries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (counted, parent2) = (tries.clone(), parent.clone());
        let nursery = Nursery::start(Box::new(move || {
            // The first two attempts fail, as when the parent is busy.
            match counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 | 1 => Err("not now".into()),
                n => parent2.spare(&format!("spare-{n}"), false),
            }
        }))
        .unwrap();
        assert!(nursery.take().is_none(), "no spare before one was made");
        let (spare, ticket) = take(&nursery);
        assert!(tries.load(std::sync::atomic::Ordering::SeqCst) >= 3);
        assert_eq!(spare.thread_files().len(), 1, "memory only, as asked");
        drop(ticket);
        nursery.close();
        drop(spare);
    }
}
