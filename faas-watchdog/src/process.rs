//! Starting function processes in their own process groups, and killing
//! those groups.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use nix::fcntl::OFlag;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{pipe2, Pid};

use crate::config::{resolve_program_in, ConfigError, DEFAULT_PATH};
use crate::sandbox::{child, Jail, Lease};
use crate::spawned::Proc;

/// How to start the function's program: resolved once, spawned many times.
#[derive(Debug, Clone)]
pub(crate) struct ProcessSpec {
    /// The program as written in `fprocess` (argv\[0\]).
    pub(crate) arg0: String,
    /// The resolved executable, for `execve`.
    program: Arc<CStr>,
    /// `argv`, `arg0` first.
    argv: Arc<[CString]>,
    env: BTreeMap<String, String>,
    working_dir: Option<Arc<CStr>>,
    /// The function's sandbox, if it has one.
    jail: Option<Arc<Jail>>,
}

/// What the process reads on its standard input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// A pipe the caller writes to ([`Proc::stdin`]).
    Piped,
    /// `/dev/null`.
    Null,
}

fn c_string(bytes: &[u8], what: &str) -> std::io::Result<CString> {
    CString::new(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what} holds a NUL byte")))
}

/// `NAME=value` for `envp`.
fn env_entry(name: &OsStr, value: &OsStr) -> std::io::Result<CString> {
    let mut entry = Vec::with_capacity(name.len() + value.len() + 1);
    entry.extend_from_slice(name.as_bytes());
    entry.push(b'=');
    entry.extend_from_slice(value.as_bytes());
    c_string(&entry, &format!("environment variable {}", name.to_string_lossy()))
}

impl ProcessSpec {
    /// Resolves `words[0]` against the `PATH` in `env` (or a default PATH).
    pub(crate) fn resolve(
        words: &[String],
        env: &BTreeMap<String, String>,
        working_dir: Option<PathBuf>,
        jail: Option<Arc<Jail>>,
    ) -> Result<ProcessSpec, ConfigError> {
        let Some(arg0) = words.first() else {
            return Err(ConfigError::invalid("fprocess", "is empty"));
        };
        let path_var = env.get("PATH").map(String::as_str).unwrap_or(DEFAULT_PATH);
        let program = resolve_program_in(arg0, path_var, working_dir.as_deref())?;
        let nul = |_| ConfigError::invalid("fprocess", "holds a NUL byte");
        let program = Arc::from(CString::new(program.into_os_string().into_vec()).map_err(nul)?);
        let argv = words.iter().map(|w| CString::new(w.as_bytes())).collect::<Result<Arc<[_]>, _>>().map_err(nul)?;
        let working_dir = working_dir
            .map(|dir| CString::new(dir.into_os_string().into_vec()).map(Arc::from))
            .transpose()
            .map_err(|_| ConfigError::invalid("working directory", "holds a NUL byte"))?;
        Ok(ProcessSpec { arg0: arg0.clone(), program, argv, env: env.clone(), working_dir, jail })
    }

    /// Starts the program with the function's environment plus `extra`
    /// (which wins over it), all three streams piped (stdin as `input`
    /// says), in a new process group and in the function's sandbox if it
    /// has one (started by the instance's spawner thread where it has one);
    /// the lease is held while the process runs.
    pub(crate) async fn spawn(
        &self,
        extra: &BTreeMap<OsString, OsString>,
        input: Input,
    ) -> std::io::Result<(Proc, Option<Lease>)> {
        let mut envp = Vec::with_capacity(self.env.len() + extra.len());
        for (name, value) in &self.env {
            if !extra.contains_key(OsStr::new(name)) {
                envp.push(env_entry(OsStr::new(name), OsStr::new(value))?);
            }
        }
        for (name, value) in extra {
            envp.push(env_entry(name, value)?);
        }
        let (stdin_child, stdin) = match input {
            Input::Piped => {
                let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
                (read, Some(write))
            }
            Input::Null => (OwnedFd::from(std::fs::File::open("/dev/null")?), None),
        };
        let (stdout, stdout_child) = pipe2(OFlag::O_CLOEXEC)?;
        let (stderr, stderr_child) = pipe2(OFlag::O_CLOEXEC)?;
        let (setup, mut lease) = match &self.jail {
            Some(jail) => {
                let (setup, lease) = jail.prepare().map_err(|e| std::io::Error::other(format!("sandbox: {e}")))?;
                (Some(setup), Some(lease))
            }
            None => (None, None),
        };
        let exec = child::OwnedExec {
            program: self.program.clone(),
            argv: self.argv.clone(),
            envp,
            working_dir: self.working_dir.clone(),
            stdio: [stdin_child, stdout_child, stderr_child],
            setup,
        };
        // Either way the parent's copies of the child's stdio are closed
        // once it has started (`exec` dropped).
        let (pid, pidfd) = match lease.as_mut() {
            Some(lease) => lease.spawn(exec).await?,
            None => exec.spawn()?,
        };
        let proc = Proc::new(pid, pidfd, stdin, stdout, stderr)?;
        if let Some(lease) = &mut lease {
            lease.started(pid.as_raw() as u32);
        }
        Ok((proc, lease))
    }
}

/// Sends SIGKILL to the process group `pgid`; a group that is gone already
/// is fine.
pub(crate) fn kill_group(pgid: u32) {
    if let Ok(raw) = i32::try_from(pgid) {
        if raw > 1 {
            let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
        }
    }
}

/// The process groups alive now, killed all at once on shutdown or when
/// the watchdog is dropped.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    live: Mutex<HashSet<u32>>,
}

impl Groups {
    pub(crate) fn add(&self, pgid: u32) {
        if let Ok(mut live) = self.live.lock() {
            live.insert(pgid);
        }
    }

    pub(crate) fn remove(&self, pgid: u32) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(&pgid);
        }
    }

    /// The group leaders' pids.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.live.lock().map(|live| live.iter().copied().collect()).unwrap_or_default()
    }

    pub(crate) fn kill_all(&self) {
        let pgids: Vec<u32> = match self.live.lock() {
            Ok(live) => live.iter().copied().collect(),
            Err(_) => return,
        };
        for pgid in pgids {
            kill_group(pgid);
        }
    }
}

/// True once the child `pid` has exited, even before it is reaped (the
/// exit status is left for its owner to collect).
pub(crate) fn has_exited(pid: u32) -> bool {
    use nix::errno::Errno;
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    let Ok(raw) = i32::try_from(pid) else { return true };
    if raw <= 0 {
        return true;
    }
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(Pid::from_raw(raw)), flags) {
        Ok(WaitStatus::StillAlive) => false,
        Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => true,
        Ok(_) => false,
        Err(Errno::ECHILD) => true,
        Err(_) => false,
    }
}
