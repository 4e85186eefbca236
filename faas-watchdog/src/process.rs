//! Spawning function processes in their own process groups, and killing
//! those groups.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::config::{resolve_program_in, ConfigError, DEFAULT_PATH};
use crate::sandbox::{Jail, Lease};

/// How to start the function's program: resolved once, spawned many times.
#[derive(Debug, Clone)]
pub(crate) struct ProcessSpec {
    /// The resolved executable.
    pub(crate) program: PathBuf,
    /// The program as written in `fprocess` (argv\[0\]).
    pub(crate) arg0: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) working_dir: Option<PathBuf>,
    /// The function's sandbox, if it has one.
    pub(crate) jail: Option<Arc<Jail>>,
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
        Ok(ProcessSpec { program, arg0: arg0.clone(), args: words[1..].to_vec(), env: env.clone(), working_dir, jail })
    }

    /// A command with the complete environment, all three streams piped,
    /// in a new process group, killed if dropped.
    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg0(&self.arg0)
            .args(&self.args)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &self.working_dir {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Spawns `command` (made by [`ProcessSpec::command`]), in the
    /// function's sandbox if it has one; the lease is held while the
    /// process runs.
    pub(crate) fn spawn(&self, mut command: Command) -> std::io::Result<(Child, Option<Lease>)> {
        let mut lease = match &self.jail {
            Some(jail) => Some(
                jail.prepare(&mut command, self.working_dir.as_deref())
                    .map_err(|e| std::io::Error::other(format!("sandbox: {e}")))?,
            ),
            None => None,
        };
        let child = command.spawn()?;
        if let (Some(lease), Some(pid)) = (&mut lease, child.id()) {
            lease.started(pid);
        }
        Ok((child, lease))
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
