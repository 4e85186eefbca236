//! A thread that starts one fork-mode instance's processes from inside
//! the instance's cgroups (cgroup v1) and the function's mount namespace,
//! so that each process is born in them instead of joining them.
//!
//! Why: a fork-mode call starts a process, and a process that joins a v1
//! cgroup (writes `cgroup.procs`) takes a global lock for writing that
//! waits for an RCU grace period and holds up every `fork` on the machine
//! meanwhile; a call with memory and cpu limits joined two hierarchies.
//! A child inherits the cgroups and the mount namespace of the thread that
//! clones it, so a thread that moved itself in once (a v1 `tasks` write,
//! `setns`) starts every call's process with neither (BENCHMARKS.md §7).
//!
//! Why a thread of the gateway may sit in a memory cgroup with a limit:
//! the kernel charges memory to the cgroup of the owner of the memory
//! (the gateway's main thread), not to the thread's, and the memory
//! cgroup's OOM killer only considers thread-group leaders. So the limit
//! neither counts nor kills the gateway; the instance's processes, each
//! with its own memory once it has exec'd, are counted and killed. The
//! sandbox's tests allocate past a limit this way and the gateway lives.
//! On cgroup v2 a thread cannot leave its process's cgroup: there the
//! thread only enters the namespace and each child joins the cgroup.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::sync::oneshot;

use super::child::OwnedExec;

/// The spawner thread's stack: it only hands processes to `clone` (whose
/// child runs on a stack of its own).
const STACK_SIZE: usize = 128 * 1024;

/// What the spawner thread entered, so the child need not.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entered {
    /// The instance's cgroups (v1 `tasks` files).
    pub(crate) cgroups: bool,
    /// The function's mount namespace.
    pub(crate) namespace: bool,
}

/// A started process (its pid and pidfd), or why it did not start.
pub(super) type Reply = io::Result<(Pid, OwnedFd)>;

/// A process to start, and where to send the answer.
pub(super) struct Job {
    pub(super) exec: OwnedExec,
    pub(super) reply: oneshot::Sender<Reply>,
}

impl Job {
    /// Starts the process from this thread and answers; a process started
    /// for a caller that has gone away meanwhile is killed and reaped, as
    /// nobody would wait for it.
    pub(super) fn run(self) {
        let Job { exec, reply } = self;
        let started = exec.spawn();
        // The parent's copies of the child's stdio close before the caller
        // reads the child's output.
        drop(exec);
        if let Err(Ok((pid, _pidfd))) = reply.send(started) {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

/// One instance's spawner thread; it leaves (ends) when dropped.
#[derive(Debug)]
pub(crate) struct Spawner {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    entered: Entered,
}

impl Spawner {
    /// Starts a thread that moves itself into the cgroups of
    /// `thread_files` (v1 `tasks` files) and into `namespace`, then starts
    /// the processes it is given. Errors say which step failed.
    pub(crate) fn start(thread_files: Vec<PathBuf>, namespace: Option<Arc<OwnedFd>>) -> Result<Spawner, String> {
        let entered = Entered { cgroups: !thread_files.is_empty(), namespace: namespace.is_some() };
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), String>>(1);
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("faas-spawner".into())
            .stack_size(STACK_SIZE)
            .spawn(move || {
                // A failure ends the thread, which leaves whatever it joined.
                let entered = enter(&thread_files, namespace.as_deref());
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if !ok {
                    return;
                }
                while let Ok(job) = jobs_rx.recv() {
                    job.run();
                }
            })
            .map_err(|e| format!("cannot start a spawner thread: {e}"))?;
        let spawner = Spawner { jobs: Some(jobs_tx), thread: Some(thread), entered };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(spawner),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the spawner thread ended before it was ready".into()),
        }
    }

    /// What the thread entered: the child skips those steps.
    pub(crate) fn entered(&self) -> Entered {
        self.entered
    }

    /// Starts `exec` from the spawner thread; the caller's thread goes on
    /// with other work meanwhile. A process started for a caller that has
    /// gone away is killed and reaped.
    pub(crate) async fn spawn(&self, exec: OwnedExec) -> Reply {
        let gone = || io::Error::other("the sandbox's spawner thread has ended");
        let (reply, answer) = oneshot::channel();
        self.jobs.as_ref().ok_or_else(gone)?.send(Job { exec, reply }).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        // Closing the queue ends the thread, which leaves its cgroups (so
        // they can be removed next).
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs on the spawner thread: the cgroups first (their files are the
/// host's paths), then the namespace.
pub(super) fn enter(thread_files: &[PathBuf], namespace: Option<&OwnedFd>) -> Result<(), String> {
    for file in thread_files {
        std::fs::write(file, "0")
            .map_err(|e| format!("cannot move the spawner thread into {}: {e}", file.display()))?;
    }
    if let Some(namespace) = namespace {
        // A thread shares its file system context with the others; `setns`
        // into a mount namespace needs it to have its own.
        unshare(CloneFlags::CLONE_FS)
            .map_err(|e| format!("spawner thread: cannot unshare its file system context: {}", e.desc()))?;
        setns(namespace.as_fd(), CloneFlags::CLONE_NEWNS)
            .map_err(|e| format!("spawner thread: cannot enter the function's mount namespace: {}", e.desc()))?;
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use std::ffi::CString;
    use std::io::Read;

    use nix::fcntl::OFlag;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{getpid, pipe2};

    use std::future::Future;

    use super::*;
    use crate::sandbox::cgroup::{oom_kills, own_path, Limits, Parent, Version};
    use crate::sandbox::child::{ChildSetup, Namespace};

    /// A v1 parent cgroup for one test, or `None` (skipped) where this
    /// process cannot make one: the spawner and nursery threads are for v1.
    pub(in crate::sandbox) fn v1_parent(test: &str) -> Option<Parent> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return None;
        }
        match Parent::create(&format!("faas-rs-spawner-{test}-{}", std::process::id())) {
            Ok(parent) if parent.version == Version::V1 && parent.memory.is_some() && parent.cpu.is_some() => {
                Some(parent)
            }
            _ => {
                eprintln!("skipped: needs the cgroup v1 memory and cpu hierarchies");
                None
            }
        }
    }

    /// An exec of `argv` (set up as in the sandbox, with nothing left to
    /// join) whose stdout is the returned pipe end.
    pub(in crate::sandbox) fn piped_exec(argv: &[&str]) -> (OwnedExec, OwnedFd) {
        let argv: Vec<CString> = argv.iter().map(|a| CString::new(*a).unwrap()).collect();
        let (out_read, out_write) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let null = || OwnedFd::from(std::fs::File::options().read(true).write(true).open("/dev/null").unwrap());
        let exec = OwnedExec {
            program: Arc::from(argv[0].as_c_str()),
            argv: Arc::from(argv),
            envp: Vec::new(),
            working_dir: None,
            stdio: [null(), out_write, null()],
            setup: Some(ChildSetup {
                parent: getpid(),
                cgroup_procs: Vec::new(),
                address_space: None,
                namespace: Namespace::Host,
            }),
        };
        (exec, out_read)
    }

    /// Starts `argv` through `spawner`; returns its stdout and how it ended.
    fn run(spawner: &Spawner, argv: &[&str]) -> (String, WaitStatus) {
        let (exec, out_read) = piped_exec(argv);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (pid, _pidfd) = runtime.block_on(spawner.spawn(exec)).unwrap();
        let mut out = String::new();
        std::fs::File::from(out_read).read_to_string(&mut out).unwrap();
        (out, waitpid(pid, None).unwrap())
    }

    /// An exec of `/bin/sh -c script` with stdio on `/dev/null`.
    fn shell(script: &str) -> OwnedExec {
        let argv: Vec<CString> = ["/bin/sh", "-c", script].iter().map(|a| CString::new(*a).unwrap()).collect();
        let null = || OwnedFd::from(std::fs::File::options().read(true).write(true).open("/dev/null").unwrap());
        OwnedExec {
            program: Arc::from(argv[0].as_c_str()),
            argv: Arc::from(argv),
            envp: Vec::new(),
            working_dir: None,
            stdio: [null(), null(), null()],
            setup: None,
        }
    }

    #[test]
    fn a_cgroup_the_thread_cannot_enter_is_an_error_naming_it() {
        let missing = std::env::temp_dir().join(format!("faas-rs-no-such-cgroup-{}", std::process::id()));
        let err = Spawner::start(vec![missing.join("tasks")], None).unwrap_err();
        assert!(
            err.starts_with("cannot move the spawner thread into ") && err.contains(&*missing.to_string_lossy()),
            "{err}"
        );
    }

    #[test]
    fn a_process_started_for_a_caller_that_went_away_is_killed() {
        let spawner = Spawner::start(Vec::new(), None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let script = format!("sleep 0.3; touch {}", marker.display());
        // The caller goes away after handing over the job, before the
        // answer: a poll that found it ready already is tried again.
        let mut went_away = false;
        for _ in 0..20 {
            let mut call = Box::pin(spawner.spawn(shell(&script)));
            let waker = std::task::Waker::noop();
            match call.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
                std::task::Poll::Pending => {
                    drop(call);
                    went_away = true;
                    break;
                }
                std::task::Poll::Ready(started) => {
                    let (pid, _) = started.unwrap();
                    let _ = kill(pid, Signal::SIGKILL);
                    let _ = nix::sys::wait::waitpid(pid, None);
                }
            }
        }
        assert!(went_away, "the answer was always there at the first poll");
        // The spawner handles jobs in order: once this one is answered, the
        // abandoned one was handled.
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (pid, _) = runtime.block_on(spawner.spawn(shell("exit 0"))).unwrap();
        assert_eq!(waitpid(pid, None).unwrap(), WaitStatus::Exited(pid, 0));
        std::thread::sleep(std::time::Duration::from_millis(600));
        assert!(!marker.exists(), "the abandoned process was killed before it ran on");
    }

    /// The cgroup of `controller` in `/proc/<..>/cgroup` text.
    pub(in crate::sandbox) fn path_of(cgroups: &str, controller: &str) -> String {
        own_path(cgroups, |_, controllers| controllers.split(',').any(|c| c == controller)).unwrap()
    }

    #[test]
    fn processes_are_born_in_the_instance_cgroups_and_the_caller_stays_out() {
        let Some(parent) = v1_parent("born") else { return };
        let instance = parent.instance("i", &Limits { memory: Some(32 << 20), cpu: Some(0.5) }).unwrap();
        let before = std::fs::read_to_string("/proc/thread-self/cgroup").unwrap();
        let spawner = Spawner::start(instance.thread_files(), None).unwrap();
        assert_eq!(spawner.entered(), Entered { cgroups: true, namespace: false });

        let (out, status) = run(&spawner, &["/bin/cat", "/proc/self/cgroup"]);
        assert_eq!(status, WaitStatus::Exited(status.pid().unwrap(), 0), "{out}");
        for controller in ["memory", "cpu"] {
            assert!(path_of(&out, controller).ends_with("/i"), "{controller} of the child: {out}");
        }
        let after = std::fs::read_to_string("/proc/thread-self/cgroup").unwrap();
        // (Only v1's memory and cpu: another test moves this process in v2.)
        for controller in ["memory", "cpu"] {
            assert_eq!(path_of(&before, controller), path_of(&after, controller), "the calling thread did not move");
        }
        assert!(instance.is_empty(), "only the spawner thread is left, and it does not count");
        instance.kill_all(); // never this process, whose thread is in there

        // Once the spawner is gone its thread has left: the cgroups go.
        drop(spawner);
        let dirs: Vec<PathBuf> = instance.thread_files().iter().map(|f| f.parent().unwrap().to_owned()).collect();
        drop(instance);
        for dir in dirs {
            assert!(!dir.exists(), "{} removed", dir.display());
        }
    }

    #[test]
    fn a_process_past_the_memory_limit_is_killed_and_the_spawners_process_is_not() {
        let Some(parent) = v1_parent("oom") else { return };
        let python = "/usr/bin/python3";
        if !std::path::Path::new(python).exists() {
            eprintln!("skipped: needs {python}");
            return;
        }
        let instance = parent.instance("hog", &Limits { memory: Some(20 << 20), cpu: None }).unwrap();
        let spawner = Spawner::start(instance.thread_files(), None).unwrap();
        // This process holds more memory than the child may: were it
        // counted in the cgroup or chosen by its OOM killer, it would be.
        let held = std::hint::black_box(vec![1u8; 96 << 20]);

        let hog = "x = bytearray(200 << 20); x[::4096] = b'y' * len(x[::4096]); print('survived')";
        let (out, status) = run(&spawner, &[python, "-c", hog]);
        assert!(matches!(status, WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)), "{status:?} {out}");
        assert_eq!(oom_kills(&instance.oom_file().unwrap()), 1);
        assert_eq!(held.len(), 96 << 20);

        // The instance still works after the kill.
        let (out, status) = run(&spawner, &[python, "-c", "print('fine')"]);
        assert_eq!((out.trim(), status), ("fine", WaitStatus::Exited(status.pid().unwrap(), 0)));
    }
}
