//! The processes the harness starts: the binaries it needs, guards that
//! stop them, and what `/proc` says about them.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::Res;

/// How long a stopped process gets to exit on SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The programs the scenarios run.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub gateway: PathBuf,
    pub watchdog: PathBuf,
    pub echo: PathBuf,
    /// The real Python interpreter (not a shim), if there is one.
    pub python: Option<PathBuf>,
    pub cat: PathBuf,
}

impl Binaries {
    /// Builds the release binaries with cargo (unless `build` is false) and
    /// finds them next to this executable.
    pub fn prepare(build: bool) -> Res<Binaries> {
        let here = std::env::current_exe()?;
        let dir = here.parent().ok_or("the harness has no directory")?.to_path_buf();
        if build {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("no workspace dir")?;
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            eprintln!("building the release binaries (faas-gateway, fwatchdog, bench-echo)...");
            let status = Command::new(cargo)
                .current_dir(workspace)
                .args(["build", "--release", "-p", "faas-gateway", "-p", "faas-watchdog", "-p", "faas-benches"])
                .args(["--bin", "faas-gateway", "--bin", "fwatchdog", "--bin", "bench-echo"])
                .env("CARGO_TARGET_DIR", dir.parent().ok_or("no target dir")?)
                .status()?;
            if !status.success() {
                return Err(format!("cargo build failed: {status}").into());
            }
        }
        let find = |name: &str| -> Res<PathBuf> {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!(
                    "{} is missing: run `cargo build --release -p faas-gateway -p faas-watchdog -p faas-benches`",
                    path.display()
                )
                .into())
            }
        };
        Ok(Binaries {
            gateway: find("faas-gateway")?,
            watchdog: find("fwatchdog")?,
            echo: find("bench-echo")?,
            python: real_python(),
            cat: which("cat").ok_or("`cat` is not on PATH")?,
        })
    }
}

/// `name` resolved on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// The interpreter `python3` really runs (pyenv and the like put a shell
/// script shim on PATH, which would add its own start-up to every spawn).
fn real_python() -> Option<PathBuf> {
    let out = Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output().ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && path.is_file()).then_some(path)
}

/// The command that starts a server under test (a gateway, a watchdog, a
/// function called directly) as a daemon starts: in a session of its own,
/// through util-linux's `setsid`, which calls `setsid(2)` and execs
/// `program` in place (same pid). With the kernel's `sched_autogroup` on
/// (Debian's default), the scheduler weighs each session's tasks as one
/// group; a server left in the harness's session shared one group with
/// the load threads, unlike a daemon under load from other machines, and
/// a function the sandbox put in a cpu cgroup was weighed apart from both
/// (BENCHMARKS.md, section 7).
pub fn server_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("setsid");
    command.arg(program);
    command
}

/// A free loopback port (bound, then released).
pub fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A process the harness started: SIGTERM then SIGKILL when dropped.
pub struct Proc {
    child: Child,
    what: String,
}

impl Proc {
    pub fn spawn(mut command: Command, what: &str) -> Res<Proc> {
        let child = command.spawn().map_err(|e| format!("cannot start {what} ({command:?}): {e}"))?;
        Ok(Proc { child, what: what.to_owned() })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the process (SIGTERM, then SIGKILL after the grace) and reaps it.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let until = Instant::now() + STOP_GRACE;
        while Instant::now() < until {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.what);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running `faas-gateway` on the local provider, with its own state dir.
pub struct Gateway {
    pub proc: Proc,
    pub addr: SocketAddr,
    _state: tempfile::TempDir,
}

impl Gateway {
    /// Starts the gateway on a free port with an empty state dir; its log
    /// goes to `<log_dir>/<label>.log`.
    pub fn start(bins: &Binaries, log_dir: &Path, label: &str) -> Res<Gateway> {
        Gateway::start_with(bins, log_dir, label, &[])
    }

    /// [`Gateway::start`] with extra flags.
    pub fn start_with(bins: &Binaries, log_dir: &Path, label: &str, flags: &[&str]) -> Res<Gateway> {
        let state = tempfile::Builder::new().prefix("faas-bench-state-").tempdir()?;
        let log = std::fs::File::create(log_dir.join(format!("{label}.log")))?;
        let mut command = server_command(&bins.gateway);
        command
            .args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state.path())
            .args(flags)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut proc = Proc::spawn(command, &format!("faas-gateway ({label})"))?;
        let stdout = proc.child.stdout.take().ok_or("no gateway stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the gateway never blocks on a full pipe.
            let mut sink = String::new();
            while matches!(reader.read_line(&mut sink), Ok(n) if n > 0) {
                sink.clear();
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).map_err(|_| "the gateway did not say where it listens")?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first gateway line {line:?}"))?
            .parse()?;
        Ok(Gateway { proc, addr, _state: state })
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }
}

/// What `/proc/<pid>/status` says about memory and threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Footprint {
    pub rss_kb: u64,
    pub hwm_kb: u64,
    pub threads: u64,
}

pub fn footprint(pid: u32) -> Res<Footprint> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Ok(Footprint { rss_kb: field("VmRSS:"), hwm_kb: field("VmHWM:"), threads: field("Threads:") })
}

/// CPU time (user + system) the process has used so far.
pub fn cpu_time(pid: u32) -> Res<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = text.rsplit_once(')').map(|(_, r)| r).ok_or("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the name.
    let total = ticks(11) + ticks(12);
    // /proc reports in USER_HZ, which Linux fixes at 100 for user space.
    Ok(Duration::from_millis(total * 10))
}

/// CPU time (user, system, interrupts; not idle or I/O wait) that every
/// core of the machine has used so far, from `/proc/stat`.
pub fn machine_cpu_time() -> Res<Duration> {
    let text = std::fs::read_to_string("/proc/stat")?;
    let line = text.lines().find(|l| l.starts_with("cpu ")).ok_or("no cpu line in /proc/stat")?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).map(|v| v.parse().unwrap_or(0)).collect();
    let at = |i: usize| ticks.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal: all but idle and iowait.
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    Ok(Duration::from_millis(busy * 10))
}

/// Samples a process's RSS every few milliseconds until stopped; the peak.
pub struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                if let Ok(f) = footprint(pid) {
                    peak = peak.max(f.rss_kb);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        });
        RssSampler { stop, thread: Some(thread) }
    }

    /// Stops sampling; the peak RSS seen, in KiB.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0)
    }
}

/// Whether this gateway has a scaling layer that can be turned off with
/// `--no-autoscale` (from its `--help`).
pub fn gateway_has_autoscale(bins: &Binaries) -> bool {
    Command::new(&bins.gateway)
        .arg("--help")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("--no-autoscale"))
        .unwrap_or(false)
}

/// How many file descriptors `pid` has open (entries of `/proc/<pid>/fd`).
pub fn open_fds(pid: u32) -> Res<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// Raises this process's open-file limit to its hard limit (processes it
/// starts inherit it) and returns the new limit.
pub fn raise_fd_limit() -> Res<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

/// CPU bandwidth throttling of the instance cgroups a sandboxed gateway
/// made: summed over the cgroups below its `faas-rs-<pid>` cpu cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Throttling {
    /// Enforcement periods in which a cgroup used up its quota.
    pub periods: u64,
    /// Time its tasks waited for the next period.
    pub waited: Duration,
}

impl Throttling {
    /// What happened between `earlier` and this reading.
    pub fn since(self, earlier: Throttling) -> Throttling {
        Throttling {
            periods: self.periods.saturating_sub(earlier.periods),
            waited: self.waited.saturating_sub(earlier.waited),
        }
    }
}

/// The throttling of `pid`'s instance cgroups so far (cgroup v1's
/// `nr_throttled` and `throttled_time` in ns, or v2's `nr_throttled` and
/// `throttled_usec`); `None` when it made no cpu cgroup.
pub fn cpu_throttling(pid: u32) -> Option<Throttling> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // Mount points of the v1 cpu controller and of v2, whichever exist.
    let roots = mountinfo.lines().filter_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let point = left.split_whitespace().nth(4)?;
        let mut right = right.split_whitespace();
        let (fstype, options) = (right.next()?, right.nth(1)?);
        let cpu = fstype == "cgroup2" || (fstype == "cgroup" && options.split(',').any(|o| o == "cpu"));
        cpu.then(|| PathBuf::from(point))
    });
    let name = format!("faas-rs-{pid}");
    let parent = roots.into_iter().find_map(|root| find_dir(&root, &name, 4))?;
    let mut total = Throttling::default();
    let mut pending = vec![parent];
    while let Some(dir) = pending.pop() {
        if let Ok(stat) = std::fs::read_to_string(dir.join("cpu.stat")) {
            let field =
                |key: &str| stat.lines().find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok()).unwrap_or(0);
            total.periods += field("nr_throttled ");
            total.waited +=
                Duration::from_nanos(field("throttled_time ")) + Duration::from_micros(field("throttled_usec "));
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            pending.extend(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
        }
    }
    Some(total)
}

/// The directory called `name` at most `depth` levels below `root`.
fn find_dir(root: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let entries = std::fs::read_dir(root).ok()?;
    let dirs: Vec<PathBuf> =
        entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect();
    if let Some(found) = dirs.iter().find(|d| d.file_name() == Some(std::ffi::OsStr::new(name))) {
        return Some(found.clone());
    }
    if depth == 0 {
        return None;
    }
    dirs.iter().find_map(|d| find_dir(d, name, depth - 1))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    /// The session id of `pid` (field 6 of `/proc/<pid>/stat`).
    fn session_of(pid: &str) -> String {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(3).unwrap().to_owned()
    }

    #[test]
    fn a_server_runs_in_a_session_of_its_own_under_the_pid_it_was_given() {
        let mut child = super::server_command("sleep").arg("30").spawn().unwrap();
        let pid = child.id().to_string();
        // `setsid` execs the program in place: the child's pid becomes `sleep`.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap().trim_end() != "sleep" {
            assert!(Instant::now() < deadline, "pid {pid} never became sleep");
            std::thread::sleep(Duration::from_millis(5));
        }
        let session = session_of(&pid);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(session, pid, "the server leads a session of its own");
        assert_ne!(session, session_of("self"), "not the harness's session");
    }
}
