//! The only code of the workspace that allows `unsafe`: how a function's
//! process is started (`clone` with `CLONE_VM | CLONE_VFORK`, as
//! `posix_spawn` does) and what it does before `exec`.
//!
//! Why not `fork`: a fork copies the page tables of the whole gateway and
//! makes every page it writes afterwards fault once (copy-on-write). With
//! a 100 MB parent that is about 3.5 ms of CPU per process against 1 ms
//! for a `vfork`-style start (BENCHMARKS.md §7), and fork-mode functions
//! start a process per call. The standard library only avoids `fork` when
//! nothing runs before `exec`; the sandbox needs its set-up there.
//!
//! Review rules: the child shares the parent's memory while the calling
//! thread is suspended and the parent's other threads keep running. So it
//! only reads data prepared before the `clone` ([`Frame`], [`ChildSetup`]:
//! `CString`s, byte buffers, pointer arrays, open fds) and makes one
//! system call at a time (through nix or libc): nothing allocates, locks,
//! formats or unwinds. It reports a failure as an errno written to an
//! atomic in the parent's frame, then `_exit`s; the parent sees it once
//! the child has exec'd or exited.
//!
//! Order (crun's and bubblewrap's): parent-death signal first, so a parent
//! that dies from here on takes the child with it; then the cgroup, so
//! everything after is charged and limited; then rlimits; then the mount
//! namespace; then the process group, the working directory and the
//! standard streams; the signal mask last, right before `exec`.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, FdFlag, OFlag};
use nix::libc;
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, dup2, getppid, setpgid, Pid};

use super::mounts::Plan;

/// The child's stack (it runs on its own while the parent's thread waits).
/// The set-up is a flat sequence of system calls; this is ample.
const STACK_SIZE: usize = 256 * 1024;

/// How the child gets its mount namespace.
#[derive(Debug, Clone)]
pub(crate) enum Namespace {
    /// None: the host's view.
    Host,
    /// Join one built beforehand (as root).
    Join(Arc<OwnedFd>),
    /// Build its own: unshare the mount namespace (and a user namespace
    /// mapping this user to itself, when not root), then run the plan.
    Build { plan: Arc<Plan>, user: Option<Arc<UserMaps>> },
}

/// The contents of `/proc/self/{uid_map,gid_map}` for a user namespace
/// that maps the user to itself.
#[derive(Debug)]
pub(crate) struct UserMaps {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

impl UserMaps {
    /// Maps the current user and group to themselves.
    pub(crate) fn identity() -> UserMaps {
        let uid = nix::unistd::geteuid();
        let gid = nix::unistd::getegid();
        UserMaps { uid_map: format!("{uid} {uid} 1\n").into_bytes(), gid_map: format!("{gid} {gid} 1\n").into_bytes() }
    }
}

/// The sandbox's part of a child's set-up, prepared in the parent.
#[derive(Debug)]
pub(crate) struct ChildSetup {
    /// The process that starts the child (checked after the parent-death
    /// signal is set, in case it died before).
    pub(crate) parent: Pid,
    /// `cgroup.procs` files to write `0` to.
    pub(crate) cgroup_procs: Vec<CString>,
    /// `RLIMIT_AS` in bytes, where cgroups cannot limit memory.
    pub(crate) address_space: Option<u64>,
    pub(crate) namespace: Namespace,
}

/// Writes `data` to `path` with one `open`, one `write` and one `close`.
fn write_file(path: &CStr, data: &[u8]) -> Result<(), Errno> {
    let raw = open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    // SAFETY: `raw` was just returned by `open` and is owned by nothing
    // else; the OwnedFd closes it once, when dropped at the end of this
    // function (dropping an OwnedFd is a `close` call, nothing more).
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    nix::unistd::write(fd.as_fd(), data)?;
    Ok(())
}

impl ChildSetup {
    /// Runs in the child. System calls only (see the module docs).
    fn run(&self) -> Result<(), Errno> {
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
        if getppid() != self.parent {
            // The parent died before the signal was set: never run.
            return Err(Errno::ESRCH);
        }
        for procs in &self.cgroup_procs {
            write_file(procs, b"0")?;
        }
        if let Some(bytes) = self.address_space {
            setrlimit(Resource::RLIMIT_AS, bytes, bytes)?;
        }
        match &self.namespace {
            Namespace::Host => {}
            Namespace::Join(fd) => setns(fd.as_fd(), CloneFlags::CLONE_NEWNS)?,
            Namespace::Build { plan, user } => {
                match user {
                    Some(maps) => {
                        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)?;
                        write_file(c"/proc/self/setgroups", b"deny")?;
                        write_file(c"/proc/self/uid_map", &maps.uid_map)?;
                        write_file(c"/proc/self/gid_map", &maps.gid_map)?;
                    }
                    None => unshare(CloneFlags::CLONE_NEWNS)?,
                }
                plan.run().map_err(|failed| failed.errno)?;
            }
        }
        Ok(())
    }
}

/// What to execute and how, prepared in the parent.
pub(crate) struct Exec<'a> {
    /// The resolved program.
    pub(crate) program: &'a CStr,
    /// `argv`, `argv[0]` first.
    pub(crate) argv: &'a [CString],
    /// `envp`, each `NAME=value`.
    pub(crate) envp: &'a [CString],
    /// The working directory (entered after the namespace).
    pub(crate) working_dir: Option<&'a CStr>,
    /// The child's standard input, output and error.
    pub(crate) stdio: [BorrowedFd<'a>; 3],
    /// The sandbox's set-up, if the function has one.
    pub(crate) setup: Option<&'a ChildSetup>,
}

/// An [`Exec`] that owns what it points to, so that it can be handed to
/// another thread (a [`super::spawner::Spawner`]) to start.
pub(crate) struct OwnedExec {
    pub(crate) program: Arc<CStr>,
    pub(crate) argv: Arc<[CString]>,
    pub(crate) envp: Vec<CString>,
    pub(crate) working_dir: Option<Arc<CStr>>,
    /// The child's standard input, output and error (the parent's copies
    /// are closed when this is dropped).
    pub(crate) stdio: [OwnedFd; 3],
    pub(crate) setup: Option<ChildSetup>,
}

impl OwnedExec {
    /// Starts it on this thread, as [`spawn`] does.
    pub(crate) fn spawn(&self) -> io::Result<(Pid, OwnedFd)> {
        spawn(&Exec {
            program: &self.program,
            argv: &self.argv,
            envp: &self.envp,
            working_dir: self.working_dir.as_deref(),
            stdio: [self.stdio[0].as_fd(), self.stdio[1].as_fd(), self.stdio[2].as_fd()],
            setup: self.setup.as_ref(),
        })
    }
}

/// Everything the child reads: borrowed from the parent's frame, which
/// outlives the child's use of it (the parent's thread is suspended until
/// the child has exec'd or exited).
struct Frame<'a> {
    exec: &'a Exec<'a>,
    argv: &'a [*const c_char],
    envp: &'a [*const c_char],
    /// The errno of the step that failed; 0 while none has.
    failure: &'a AtomicI32,
}

impl Frame<'_> {
    /// Runs in the child; returns only on failure.
    fn run(&self) -> Errno {
        match self.prepare() {
            Err(errno) => errno,
            Ok(()) => {
                // SAFETY: `program`, `argv` and `envp` are NUL-terminated
                // strings and NULL-terminated arrays of them, prepared in
                // the parent and alive for as long as the child runs.
                unsafe { libc::execve(self.exec.program.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
                Errno::last()
            }
        }
    }

    fn prepare(&self) -> Result<(), Errno> {
        reset_signal_handlers()?;
        if let Some(setup) = self.exec.setup {
            setup.run()?;
        }
        setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
        if let Some(dir) = self.exec.working_dir {
            chdir(dir)?;
        }
        for (target, fd) in self.exec.stdio.iter().enumerate() {
            let (fd, target) = (fd.as_raw_fd(), target as RawFd);
            if fd == target {
                // Already in place: only keep it open across `exec`.
                fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
            } else {
                dup2(fd, target)?;
            }
        }
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
        Ok(())
    }
}

/// Gives every signal that has a handler in the parent its default action
/// (the handlers are the parent's code, in memory the child shares), and
/// `SIGPIPE` too, which Rust programs ignore and their children should not.
/// Ignored signals stay ignored, as across `exec`.
fn reset_signal_handlers() -> Result<(), Errno> {
    for signal in 1..=libc::SIGRTMAX() {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `sigaction` with a zeroed, then filled, local struct;
        // querying and setting dispositions is async-signal-safe, and the
        // child has its own copy of the handler table (no CLONE_SIGHAND).
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            if old.sa_sigaction == libc::SIG_DFL || (old.sa_sigaction == libc::SIG_IGN && signal != libc::SIGPIPE) {
                continue;
            }
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            if libc::sigaction(signal, &default, std::ptr::null_mut()) != 0 {
                return Err(Errno::last());
            }
        }
    }
    Ok(())
}

extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Frame` the parent passed to `clone`, alive and
    // unchanged while the parent's thread is suspended (CLONE_VFORK).
    let frame = unsafe { &*(arg as *const Frame<'_>) };
    let errno = frame.run();
    frame.failure.store(errno as i32, Ordering::SeqCst);
    // SAFETY: `_exit` ends the child at once, running nothing of the
    // parent's (no atexit handlers, no buffers flushed).
    unsafe { libc::_exit(127) }
}

/// Starts `exec` as a new process: returns its pid and a pidfd for it
/// (from which it is waited for). Fails with the errno of the step that
/// failed in the child, the child then already reaped.
pub(crate) fn spawn(exec: &Exec<'_>) -> io::Result<(Pid, OwnedFd)> {
    let argv: Vec<*const c_char> = exec.argv.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
    let envp: Vec<*const c_char> = exec.envp.iter().map(|e| e.as_ptr()).chain([std::ptr::null()]).collect();
    let failure = AtomicI32::new(0);
    let frame = Frame { exec, argv: &argv, envp: &envp, failure: &failure };
    // Left uninitialized: zeroing 256 KiB was about 6% of the gateway's
    // CPU in fork mode (perf), and the child writes before it reads.
    let mut stack: Vec<std::mem::MaybeUninit<u8>> = Vec::with_capacity(STACK_SIZE);
    // The stack grows down from its end, 16-byte aligned.
    let top = stack.spare_capacity_mut().as_mut_ptr().cast::<u8>().wrapping_add(STACK_SIZE);
    let top = top.wrapping_sub(top as usize % 16);
    let mut pidfd: c_int = -1;
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD;

    // No handler of this process may run in the child before it has reset
    // them: block every signal around the clone (the child unblocks them
    // after the reset), as posix_spawn does.
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), Some(&mut old))?;
    // SAFETY: `child_main` only reads `frame` and what it borrows, all of
    // which outlive the child's use (CLONE_VFORK suspends this thread until
    // the child execs or exits); it runs on `stack`, which is not touched
    // by this thread meanwhile; `pidfd` receives the pidfd (CLONE_PIDFD).
    let pid = unsafe {
        libc::clone(
            child_main,
            top.cast::<c_void>(),
            flags,
            &frame as *const Frame<'_> as *mut c_void,
            &mut pidfd as *mut c_int,
        )
    };
    let clone_error = Errno::last();
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    drop(stack);
    if pid < 0 {
        return Err(clone_error.into());
    }
    // SAFETY: CLONE_PIDFD stored a new pidfd, owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let pid = Pid::from_raw(pid);
    match failure.load(Ordering::SeqCst) {
        0 => Ok((pid, pidfd)),
        errno => {
            let _ = nix::sys::wait::waitpid(pid, None);
            Err(io::Error::from_raw_os_error(errno))
        }
    }
}

/// Registers a child's pidfd with the Tokio runtime (readable once the
/// child has exited).
pub(crate) fn watch_exit(pidfd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the OwnedFd owns an open pidfd, which the AsyncFd owns from
    // here on and never replaces or closes while registered.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)
}

/// Whether this process may create a user namespace with a mount
/// namespace in it, tried in a child that exits right after (the program is
/// never executed).
pub(crate) fn can_unshare_user() -> Result<(), Errno> {
    let mut command = std::process::Command::new("/proc/self/exe");
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child and makes one system
    // call (`unshare`), then returns an error built without allocating, so
    // the child reports it and exits without executing anything.
    unsafe {
        command.pre_exec(|| {
            unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
                .map_err(|errno| io::Error::from_raw_os_error(errno as i32))?;
            Err(io::Error::from_raw_os_error(Errno::ECANCELED as i32))
        });
    }
    match command.spawn() {
        Err(e) if e.raw_os_error() == Some(Errno::ECANCELED as i32) => Ok(()),
        Err(e) => Err(e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EINVAL)),
        Ok(mut child) => {
            // Cannot happen (the hook always fails), but never leave it.
            let _ = child.kill();
            let _ = child.wait();
            Err(Errno::EINVAL)
        }
    }
}
