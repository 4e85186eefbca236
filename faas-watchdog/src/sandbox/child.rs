//! The only code of the workspace that allows `unsafe`: what a function's
//! process does between `fork` and `exec` (`pre_exec`).
//!
//! Review rules: after `fork` in a multi-threaded parent, the child may only
//! make async-signal-safe calls. Everything below is one system call at a
//! time through nix (`prctl`, `getppid`, `open`, `write`, `close`,
//! `setrlimit`, `unshare`, `setns`, `mount`, `chdir`, ...), on data
//! prepared before the fork ([`ChildSetup`] holds `CString`s, byte buffers
//! and an open namespace fd): nothing allocates, locks or formats. Errors
//! are returned as raw OS errors (`io::Error::from_raw_os_error` does not
//! allocate), which the standard library passes to the parent through its
//! exec-status pipe.
//!
//! Order (crun's and bubblewrap's): parent-death signal first, so a parent
//! that dies from here on takes the child with it; then the cgroup, so
//! everything after is charged and limited; then rlimits; then the mount
//! namespace; then the working directory, which entering a namespace
//! resets.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::{chdir, getppid, Pid};

use super::mounts::Plan;

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

/// Everything a child does before `exec`, prepared in the parent.
#[derive(Debug)]
pub(crate) struct ChildSetup {
    /// The process that forks (checked after the parent-death signal is
    /// set, in case it died before).
    pub(crate) parent: Pid,
    /// `cgroup.procs` files to write `0` to.
    pub(crate) cgroup_procs: Vec<CString>,
    /// `RLIMIT_AS` in bytes, where cgroups cannot limit memory.
    pub(crate) address_space: Option<u64>,
    pub(crate) namespace: Namespace,
    /// The working directory, entered again after the namespace.
    pub(crate) working_dir: Option<CString>,
}

fn os(errno: Errno) -> io::Error {
    io::Error::from_raw_os_error(errno as i32)
}

/// Writes `data` to `path` with one `open`, one `write` and one `close`.
fn write_file(path: &std::ffi::CStr, data: &[u8]) -> Result<(), Errno> {
    let raw = open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    // SAFETY: `raw` was just returned by `open` and is owned by nothing
    // else; the OwnedFd closes it once, when dropped at the end of this
    // function (dropping an OwnedFd is a `close` call, nothing more).
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    nix::unistd::write(fd.as_fd(), data)?;
    Ok(())
}

impl ChildSetup {
    /// Runs in the child. Async-signal-safe only (see the module docs).
    fn run(&self) -> io::Result<()> {
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(os)?;
        if getppid() != self.parent {
            // The parent died before the signal was set: never run.
            return Err(os(Errno::ESRCH));
        }
        for procs in &self.cgroup_procs {
            write_file(procs, b"0").map_err(os)?;
        }
        if let Some(bytes) = self.address_space {
            setrlimit(Resource::RLIMIT_AS, bytes, bytes).map_err(os)?;
        }
        match &self.namespace {
            Namespace::Host => {}
            Namespace::Join(fd) => setns(fd.as_fd(), CloneFlags::CLONE_NEWNS).map_err(os)?,
            Namespace::Build { plan, user } => {
                match user {
                    Some(maps) => {
                        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).map_err(os)?;
                        write_file(c"/proc/self/setgroups", b"deny").map_err(os)?;
                        write_file(c"/proc/self/uid_map", &maps.uid_map).map_err(os)?;
                        write_file(c"/proc/self/gid_map", &maps.gid_map).map_err(os)?;
                    }
                    None => unshare(CloneFlags::CLONE_NEWNS).map_err(os)?,
                }
                plan.run().map_err(|failed| os(failed.errno))?;
            }
        }
        if let Some(dir) = &self.working_dir {
            chdir(dir.as_c_str()).map_err(os)?;
        }
        Ok(())
    }
}

/// Makes `command`'s child run `setup` before `exec`.
pub(crate) fn install(command: &mut tokio::process::Command, setup: Arc<ChildSetup>) {
    // SAFETY: the closure runs in the forked child before `exec`, where only
    // async-signal-safe calls are allowed: `ChildSetup::run` makes only
    // single system calls on data prepared here (see the module docs), and
    // `setup` is shared read-only (an `Arc` whose count the child never
    // changes: the closure borrows it).
    unsafe {
        command.pre_exec(move || setup.run());
    }
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
            unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).map_err(os)?;
            Err(os(Errno::ECANCELED))
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
