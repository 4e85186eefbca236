//! Function processes of the API emulators: a real `fwatchdog` standing in
//! for a container (its environment, its own directory, its output read
//! line by line), stopped as a container runtime stops one (SIGTERM, then
//! SIGKILL to its process group after a grace period).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The variables taken from the test's own environment, as a container
/// image brings its own `PATH` and `HOME`.
pub const INHERITED: [&str; 4] = ["PATH", "HOME", "LANG", "TMPDIR"];

/// A container's environment: [`INHERITED`] from this process, `HOSTNAME`
/// (the pod's or instance's name), then `environment` (the container's
/// own, which wins).
pub fn container_env(hostname: &str, environment: BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> =
        INHERITED.iter().filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v))).collect();
    env.insert("HOSTNAME".to_owned(), hostname.to_owned());
    env.extend(environment);
    env
}

/// The command running `binary` with exactly `env`, in `dir`, stdin
/// closed, stdout and stderr piped (see [`read_lines`]), in a process group
/// of its own (its children are stopped with it) and killed when dropped.
pub fn command(binary: &Path, env: &BTreeMap<String, String>, dir: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .envs(env)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    command
}

/// Hands each line `reader` yields (without its line end, invalid UTF-8
/// replaced) to `line`, until the end of the output.
pub fn read_lines(
    reader: impl AsyncRead + Unpin + Send + 'static,
    mut line: impl FnMut(String) + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => line(String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_owned()),
            }
        }
    })
}

/// Waits (at most a second each) for the readers of a process that ended,
/// so that its last lines are read.
pub async fn drain(readers: impl IntoIterator<Item = JoinHandle<()>>) {
    for reader in readers {
        let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
    }
}

/// Stops `child` as a container runtime does: SIGTERM, then SIGKILL to its
/// process group if it still runs after `grace`; its exit status.
pub async fn terminate(child: &mut Child, grace: Duration) -> std::io::Result<ExitStatus> {
    // Not reaped yet (only the caller waits for it): the pid is still its.
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        if let Ok(status) = tokio::time::timeout(grace, child.wait()).await {
            return status;
        }
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.start_kill();
    child.wait().await
}

/// Asks a process's owner to stop it, with a grace period: the first ask
/// counts, later ones are ignored.
#[derive(Debug)]
pub struct Stop {
    grace: watch::Sender<Option<Duration>>,
}

/// What the owner of a process waits on: [`Stop`]'s ask.
#[derive(Debug, Clone)]
pub struct StopAsked {
    grace: watch::Receiver<Option<Duration>>,
}

/// A [`Stop`] and the [`StopAsked`] its owner waits on.
pub fn stop_channel() -> (Stop, StopAsked) {
    let (grace, asked) = watch::channel(None);
    (Stop { grace }, StopAsked { grace: asked })
}

impl Stop {
    /// Asks for a stop with `grace` unless one was asked already.
    pub fn ask(&self, grace: Duration) {
        self.grace.send_if_modified(|asked| {
            if asked.is_some() {
                return false;
            }
            *asked = Some(grace);
            true
        });
    }

    /// Whether a stop was asked.
    pub fn is_asked(&self) -> bool {
        self.grace.borrow().is_some()
    }
}

impl StopAsked {
    /// Waits until a stop is asked; its grace. A [`Stop`] dropped without
    /// asking asks for no grace.
    pub async fn wait(&mut self) -> Duration {
        match self.grace.wait_for(Option::is_some).await {
            Ok(grace) => grace.unwrap_or_default(),
            Err(_) => Duration::ZERO,
        }
    }
}

/// A port free on 127.0.0.1 now (another process may take it before it is
/// used: callers that bind it retry).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    Ok(listener.local_addr()?.port())
}

/// How many of this process's threads are named `name` (from
/// `/proc/self/task/*/comm`): for tests that a runtime or a pool started,
/// or did not start, threads.
pub fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task lists this process's threads")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn a_process_that_ignores_sigterm_is_killed_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let env = container_env("pod-a", BTreeMap::from([("GREETING".to_owned(), "hi".to_owned())]));
        assert_eq!(env["HOSTNAME"], "pod-a");
        let script = "trap '' TERM; echo \"$GREETING from $HOSTNAME\"; echo second; exec sleep 600";
        let mut child = command(Path::new("/bin/sh"), &env, dir.path()).args(["-c", script]).spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        let reader = read_lines(child.stdout.take().unwrap(), move |line| kept.lock().unwrap().push(line));
        let deadline = Instant::now() + Duration::from_secs(30);
        while lines.lock().unwrap().len() < 2 {
            assert!(Instant::now() < deadline, "the process wrote {:?}", lines.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let (stop, mut asked) = stop_channel();
        stop.ask(Duration::from_millis(300));
        stop.ask(Duration::from_secs(600));
        let grace = asked.wait().await;
        assert_eq!(grace, Duration::from_millis(300), "the first ask counts");
        let started = Instant::now();
        let status = terminate(&mut child, grace).await.unwrap();
        assert!(!status.success());
        assert!(started.elapsed() >= grace, "SIGTERM was ignored, the grace was waited");
        drain([reader]).await;
        assert_eq!(*lines.lock().unwrap(), ["hi from pod-a", "second"]);
    }

    #[tokio::test]
    async fn a_dropped_stop_asks_for_no_grace() {
        let (stop, mut asked) = stop_channel();
        drop(stop);
        assert_eq!(asked.wait().await, Duration::ZERO);
    }
}
