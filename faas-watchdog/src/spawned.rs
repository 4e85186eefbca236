//! A function's process once started: its pipes, waiting for it (through a
//! pidfd, so no signal handler or global reaper is involved) and killing
//! it. Started by [`crate::process::ProcessSpec::spawn`].

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

/// A started process, killed (and reaped) if dropped before it was waited
/// for.
#[derive(Debug)]
pub(crate) struct Proc {
    pid: u32,
    /// Readable once the process has exited; `None` once reaped.
    pidfd: Option<AsyncFd<OwnedFd>>,
    status: Option<ExitStatus>,
    /// Its standard input, when piped.
    pub(crate) stdin: Option<pipe::Sender>,
    /// Its standard output.
    pub(crate) stdout: Option<pipe::Receiver>,
    /// Its standard error.
    pub(crate) stderr: Option<pipe::Receiver>,
}

impl Proc {
    /// Wraps a just-started process (needs the Tokio runtime).
    pub(crate) fn new(
        pid: Pid,
        pidfd: OwnedFd,
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> io::Result<Proc> {
        // Whatever fails below, the process is not left behind.
        let mut proc =
            Proc { pid: pid.as_raw() as u32, pidfd: None, status: None, stdin: None, stdout: None, stderr: None };
        let pidfd = crate::sandbox::child::watch_exit(pidfd);
        let pidfd = match pidfd {
            Ok(pidfd) => pidfd,
            Err(e) => {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
                return Err(e);
            }
        };
        proc.pidfd = Some(pidfd);
        proc.stdin = stdin.map(pipe::Sender::from_owned_fd).transpose()?;
        proc.stdout = Some(pipe::Receiver::from_owned_fd(stdout)?);
        proc.stderr = Some(pipe::Receiver::from_owned_fd(stderr)?);
        Ok(proc)
    }

    /// Its pid, while it has not been reaped.
    pub(crate) fn id(&self) -> Option<u32> {
        self.status.is_none().then_some(self.pid)
    }

    /// Waits for it to exit and reaps it.
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            let Some(pidfd) = &self.pidfd else {
                return Err(io::Error::other("the process is no longer tracked"));
            };
            let mut ready = pidfd.readable().await?;
            ready.clear_ready();
        }
    }

    /// Reaps it if it has exited.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let Some(pidfd) = &self.pidfd else {
            return Err(io::Error::other("the process is no longer tracked"));
        };
        let Some(status) = reap(pidfd.get_ref(), WaitPidFlag::WNOHANG)? else {
            return Ok(None);
        };
        self.status = Some(status);
        self.pidfd = None;
        Ok(Some(status))
    }

    /// Sends it `SIGKILL` (nothing if it was reaped already).
    pub(crate) fn start_kill(&mut self) -> io::Result<()> {
        if self.status.is_none() {
            // The pid cannot have been reused: only this handle reaps it.
            kill(Pid::from_raw(self.pid as i32), Signal::SIGKILL)?;
        }
        Ok(())
    }
}

/// Reaps the process behind `pidfd` if it has exited (waits for it to,
/// without `WNOHANG`).
fn reap(pidfd: &OwnedFd, flags: WaitPidFlag) -> io::Result<Option<ExitStatus>> {
    loop {
        return match waitid(Id::PIDFd(pidfd.as_fd()), WaitPidFlag::WEXITED | flags) {
            Ok(WaitStatus::Exited(_, code)) => Ok(Some(ExitStatus::from_raw((code & 0xff) << 8))),
            Ok(WaitStatus::Signaled(_, signal, core)) => {
                Ok(Some(ExitStatus::from_raw(signal as i32 | if core { 0x80 } else { 0 })))
            }
            Ok(_) => Ok(None),
            Err(Errno::EINTR) => continue,
            Err(errno) => Err(errno.into()),
        };
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        let _ = self.start_kill();
        if let Ok(Some(_)) = self.try_wait() {
            return;
        }
        let Some(pidfd) = self.pidfd.take() else { return };
        // Killed but not dead yet: reap it once it is, off this thread.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let _ = pidfd.readable().await;
                    let _ = reap(pidfd.get_ref(), WaitPidFlag::empty());
                });
            }
            Err(_) => {
                let pidfd = pidfd.into_inner();
                let _ = std::thread::Builder::new()
                    .name("faas-reap".into())
                    .spawn(move || reap(&pidfd, WaitPidFlag::empty()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::ffi::OsString;

    use tokio::io::AsyncReadExt;

    use crate::process::{Input, ProcessSpec};

    fn shell(script: &str, env: &[(&str, &str)], working_dir: Option<&str>) -> ProcessSpec {
        let words = ["sh", "-c", script].map(String::from);
        let mut vars: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        vars.insert("PATH".into(), "/usr/bin:/bin".into());
        ProcessSpec::resolve(&words, &vars, working_dir.map(Into::into), None).expect("sh resolves")
    }

    async fn output(spec: &ProcessSpec, extra: &[(&str, &str)]) -> (String, std::process::ExitStatus) {
        let extra: BTreeMap<OsString, OsString> = extra.iter().map(|(k, v)| (k.into(), v.into())).collect();
        let (mut proc, _) = spec.spawn(&extra, Input::Null).await.expect("the process starts");
        let mut out = String::new();
        proc.stdout.take().unwrap().read_to_string(&mut out).await.unwrap();
        (out, proc.wait().await.unwrap())
    }

    #[tokio::test]
    async fn exit_codes_and_signals_are_reported_and_the_process_is_reaped() {
        let (_, status) = output(&shell("exit 3", &[], None), &[]).await;
        assert_eq!(status.code(), Some(3));
        let (_, status) = output(&shell("kill -9 $$", &[], None), &[]).await;
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
    }

    #[tokio::test]
    async fn the_call_environment_wins_over_the_function_environment() {
        let spec = shell("echo \"$A $B\"", &[("A", "function"), ("B", "kept")], None);
        let (out, _) = output(&spec, &[("A", "call")]).await;
        assert_eq!(out, "call kept\n");
    }

    #[tokio::test]
    async fn the_child_has_its_own_group_no_blocked_signals_and_sigpipe_at_its_default() {
        // Rust ignores SIGPIPE in this test process and its signal mask may
        // hold anything: the child must start clean, in its own group.
        let script = "grep -E '^(SigBlk|SigIgn)' /proc/self/status; echo \"$$ $(cut -d' ' -f5 /proc/self/stat)\"";
        let spec = shell(script, &[], None);
        let (out, _) = output(&spec, &[]).await;
        let field = |name: &str| {
            let line = out.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {out}"));
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        assert_eq!(field("SigBlk:"), 0, "{out}");
        assert_eq!(field("SigIgn:") & (1 << (libc_sigpipe() - 1)), 0, "SIGPIPE is ignored in the child: {out}");
        // The shell's pid, and the group of its child `cut`: the shell's.
        let ids: Vec<&str> = out.lines().last().unwrap().split(' ').collect();
        assert_eq!(ids[0], ids[1], "the process leads its own group: {out}");
    }

    fn libc_sigpipe() -> u32 {
        nix::sys::signal::Signal::SIGPIPE as u32
    }

    #[tokio::test]
    async fn a_step_failing_before_exec_is_the_spawn_error() {
        let spec = shell("true", &[], Some("/nonexistent/working/dir"));
        let err = spec.spawn(&BTreeMap::new(), Input::Null).await.expect_err("chdir fails in the child");
        assert_eq!(err.raw_os_error(), Some(nix::errno::Errno::ENOENT as i32), "{err}");
    }

    #[tokio::test]
    async fn an_environment_value_with_a_nul_byte_is_refused_naming_the_variable() {
        let spec = shell("true", &[("BROKEN", "a\0b")], None);
        let err = spec.spawn(&BTreeMap::new(), Input::Null).await.expect_err("no process starts");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), "environment variable BROKEN holds a NUL byte");
    }

    #[tokio::test]
    async fn a_dropped_process_is_killed() {
        let spec = shell("sleep 30", &[], None);
        let (proc, _) = spec.spawn(&BTreeMap::new(), Input::Null).await.expect("the process starts");
        let pid = proc.id().unwrap();
        drop(proc);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        // Killed, then reaped (its /proc entry goes only then).
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(std::time::Instant::now() < deadline, "process {pid} outlived its handle");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
