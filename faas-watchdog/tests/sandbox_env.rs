//! `fwatchdog`'s sandbox, configured by environment variables as
//! OpenFaaS's watchdog is configured: `sandbox`, `memory_limit`,
//! `cpu_limit`, `read_only_root`, `secrets_path`. Needs root (as CI runs);
//! skipped otherwise. Bad values: `binary.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// A function that reports what it sees: its secret at the OpenFaaS path,
/// whether `/etc` is writable, the limits of its own cgroups (v1, as on
/// this machine and CI),
/// and on request allocates 200 MB or sleeps.
const PROBE: &str = r#"
import errno, os, sys, time
ask = sys.stdin.read().strip()
if ask == "hog":
    x = bytearray(200 * 1024 * 1024)
    x[::4096] = b"y" * len(x[::4096])
if ask == "sleep":
    time.sleep(1000)
print("secret=" + open("/var/openfaas/secrets/token").read().strip())
try:
    open("/etc/faas-fwatchdog-sandbox-probe", "w").write("x")
    print("etc=written")
except OSError as e:
    print("etc=" + errno.errorcode[e.errno])
print("tmp=" + str(open("/tmp/w", "w").write("x")))
mounts = {}
for line in open("/proc/self/mountinfo"):
    left, right = line.split(" - ", 1)
    fields, rest = left.split(), right.split()
    if rest[0] == "cgroup2":
        mounts["v2"] = (fields[4], fields[3])
    elif rest[0] == "cgroup":
        for option in rest[2].split(","):
            mounts[option] = (fields[4], fields[3])
def read(key, path, name):
    point, root = mounts[key]
    relative = path[len(root):] if root != "/" and path.startswith(root) else path
    return open(point + relative + "/" + name).read().strip()
for line in open("/proc/self/cgroup"):
    hid, controllers, path = line.rstrip("\n").split(":", 2)
    controllers = controllers.split(",")
    if "memory" in controllers:
        print("memory=" + read("memory", path, "memory.limit_in_bytes"))
    if "cpu" in controllers:
        print("cpu=" + read("cpu", path, "cpu.cfs_quota_us"))
"#;

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: fwatchdog's sandbox tests run as root (as CI does)");
    false
}

/// A scratch dir outside /tmp: with `read_only_root` the function gets a
/// private /tmp, so a script there would be invisible to it.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

async fn call(client: &HttpClient, port: u16, body: &'static str) -> (u16, String) {
    let request =
        http::Request::post(format!("http://127.0.0.1:{port}/")).body(Full::new(Bytes::from_static(body.as_bytes())));
    let response = client.request(request.unwrap()).await.expect("fwatchdog answers");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn wait_healthy(client: &HttpClient, port: u16) {
    bounded("the health check to pass", async {
        loop {
            let request =
                http::Request::get(format!("http://127.0.0.1:{port}/_/health")).body(Full::new(Bytes::new())).unwrap();
            if client.request(request).await.is_ok_and(|r| r.status() == 200) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// The value of `key=` in the probe's answer.
fn value<'a>(body: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    body.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap_or_else(|| panic!("no {key} in {body}"))
}

/// The parent cgroups (v1 memory and cpu) of the fwatchdog whose pid is
/// `pid`: `fwatchdog-<pid>` under the cgroup it inherited from this test.
fn parents_of(pid: u32) -> Vec<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    ["memory", "cpu"]
        .into_iter()
        .map(|controller| {
            let path = own
                .lines()
                .find_map(|l| {
                    let mut parts = l.splitn(3, ':');
                    let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                    controllers.split(',').any(|c| c == controller).then_some(path)
                })
                .unwrap_or_else(|| panic!("no cgroup v1 {controller} line in {own}"));
            v1_dir(controller, path).join(format!("fwatchdog-{pid}"))
        })
        .collect()
}

/// The directory of a v1 cgroup (`controller`'s hierarchy) by its path.
fn v1_dir(controller: &str, path: &str) -> PathBuf {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in mountinfo.lines() {
        let (left, right) = line.split_once(" - ").unwrap();
        let (fields, rest): (Vec<&str>, Vec<&str>) = (left.split(' ').collect(), right.split(' ').collect());
        if rest[0] == "cgroup" && rest[2].split(',').any(|o| o == controller) {
            let relative = if fields[3] != "/" { path.strip_prefix(fields[3]).unwrap_or(path) } else { path };
            return Path::new(fields[4]).join(relative.trim_start_matches('/'));
        }
    }
    panic!("no cgroup v1 {controller} hierarchy");
}

/// Pids of live processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        if String::from_utf8_lossy(&cmdline).contains(marker) && alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// The settings a `sandbox=required` fwatchdog is started with.
struct Started {
    child: tokio::process::Child,
    logs: tokio::task::JoinHandle<String>,
    port: u16,
    client: HttpClient,
    marker: String,
    _dir: tempfile::TempDir,
}

async fn start_required(extra: &[(&str, &str)]) -> Started {
    let dir = scratch();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("token"), "s3cret").unwrap();
    let probe = script(dir.path(), "probe.py", PROBE);
    let marker = format!("fwatchdog-sandbox-{}-{}", std::process::id(), free_port());
    let fprocess = format!("{} {} {marker}", python(), probe.display());
    let port = free_port();
    let (port_text, secrets_text) = (port.to_string(), secrets.display().to_string());
    let mut vars = vec![
        ("fprocess", fprocess.as_str()),
        ("port", port_text.as_str()),
        ("sandbox", "required"),
        ("secrets_path", secrets_text.as_str()),
        ("write_timeout", "2s"),
    ];
    vars.extend_from_slice(extra);
    let (child, logs) = spawn_fwatchdog(&vars);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    wait_healthy(&client, port).await;
    Started { child, logs, port, client, marker, _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fwatchdog_env_sets_secrets_read_only_root_and_limits_and_removes_its_cgroups_on_exit() {
    if !root() {
        return;
    }
    let mut run = start_required(&[("memory_limit", "20Mi"), ("cpu_limit", "0.5"), ("read_only_root", "true")]).await;
    let (status, body) = bounded("a probe call", call(&run.client, run.port, "")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(value(&body, "secret"), "s3cret", "secrets_path is bound at /var/openfaas/secrets: {body}");
    assert_eq!(value(&body, "etc"), "EROFS", "read_only_root: {body}");
    assert_eq!(value(&body, "tmp"), "1", "a private writable /tmp: {body}");
    assert!(!Path::new("/etc/faas-fwatchdog-sandbox-probe").exists());
    assert_eq!(value(&body, "memory"), (20u64 << 20).to_string(), "memory_limit in the cgroup: {body}");
    assert_eq!(value(&body, "cpu"), "50000", "cpu_limit 0.5 of a 100ms period: {body}");
    let parents = parents_of(run.child.id().unwrap());
    assert!(parents.iter().all(|p| p.is_dir()), "fwatchdog's own cgroups: {parents:?}");

    let (status, body) = bounded("a call over the limit", call(&run.client, run.port, "hog")).await;
    assert_eq!((status, body.as_str()), (502, "function fwatchdog exceeded its memory limit of 20Mi"));
    let (status, body) = bounded("the next call", call(&run.client, run.port, "")).await;
    assert_eq!((status, value(&body, "secret")), (200, "s3cret"), "the next call works: {body}");

    kill(Pid::from_raw(run.child.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let exit = bounded("fwatchdog to exit", run.child.wait()).await.unwrap();
    assert!(exit.success(), "{exit}");
    let logs = bounded("stderr", &mut run.logs).await.unwrap();
    assert!(parents.iter().all(|p| !p.exists()), "its cgroups {parents:?} are removed at exit: {logs}");
    assert!(processes_with(&run.marker).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_fwatchdog_leaves_no_function_process() {
    if !root() {
        return;
    }
    // read_only_root: the probe's write to /etc must not reach the host.
    let mut run = start_required(&[("memory_limit", "64Mi"), ("read_only_root", "true")]).await;
    let (status, body) = bounded("a probe call", call(&run.client, run.port, "")).await;
    assert_eq!(status, 200, "{body}");
    let parents = parents_of(run.child.id().unwrap());
    let (client, port) = (run.client.clone(), run.port);
    let sleeping = tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(60), call(&client, port, "sleep")).await;
    });
    wait_until("the sleeping call's process", || processes_with(&run.marker).len() == 1).await;

    kill(Pid::from_raw(run.child.id().unwrap() as i32), Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    bounded("fwatchdog to die", run.child.wait()).await.unwrap();
    while !processes_with(&run.marker).is_empty() && killed.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left = processes_with(&run.marker);
    assert!(left.is_empty(), "function processes outlived fwatchdog by 1s: {left:?}");
    sleeping.abort();
    // fwatchdog keeps no crash record (a container's end removes its
    // cgroups): what its kill left holds no process, and is removed here.
    for parent in parents {
        let Ok(entries) = std::fs::read_dir(&parent) else { continue };
        for entry in entries.filter_map(Result::ok).filter(|e| e.path().is_dir()) {
            // A killed process leaves its cgroup when it is reaped, by init
            // here (fwatchdog is gone): allow init a moment to get to it.
            let procs_file = entry.path().join("cgroup.procs");
            let read = || std::fs::read_to_string(&procs_file).unwrap_or_default();
            let settle = Instant::now();
            while !read().trim().is_empty() && settle.elapsed() < Duration::from_secs(5) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let procs = read();
            assert!(procs.trim().is_empty(), "{}: {procs}", entry.path().display());
            let _ = std::fs::remove_dir(entry.path());
        }
        let _ = std::fs::remove_dir(&parent);
    }
}
