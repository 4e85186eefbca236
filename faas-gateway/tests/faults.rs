//! The fault matrix rows that run against the real binary with the local
//! provider: a function process killed from outside mid-call, and the
//! state directory's file system filling up.

mod common;

use common::{script, wait_pid_file, Gateway, WAIT};
use faas_core::Body;
use faas_test_support::python::write_http_function;
use http::{Request, StatusCode};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

/// An HTTP-mode function's handler (`faas_test_support::python`): `POST
/// /slow` writes the server's pid to the file named by `PID_FILE` and then
/// sleeps; anything else answers `ok`.
const PY_SLOW: &str = r#"    def do_POST(self):
        if self.path.startswith("/slow"):
            with open(os.environ["PID_FILE"] + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(os.environ["PID_FILE"] + ".tmp", os.environ["PID_FILE"])
            time.sleep(600)
        self.reply(b"ok")
"#;

#[tokio::test]
async fn a_function_process_killed_mid_call_is_a_502_and_the_next_call_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let server = write_http_function(dir.path(), "slow.py", PY_SLOW).unwrap();
    let pid_file = dir.path().join("slow.pid");
    let gateway = Gateway::start(&dir.path().join("state"), &[]).await;
    gateway
        .deploy(json!({
            "service": "slow", "image": "python3",
            "envProcess": format!("python3 {}", server.display()),
            "envVars": {"mode": "http", "PID_FILE": pid_file.display().to_string(), "exec_timeout": "5m"}
        }))
        .await;
    gateway.wait_available("slow", 1).await;
    assert_eq!(gateway.call("POST", "/function/slow/hello", "").await, (StatusCode::OK, "ok".to_owned()));

    let addr = gateway.addr;
    let call = tokio::spawn(async move {
        let request = Request::post("/function/slow/slow").body(Body::from("work")).unwrap();
        let (response, _connection) = common::open_call(addr, request).await;
        let status = response.status();
        let platform = response.headers().get("x-faas-error").is_some();
        let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        (status, platform, String::from_utf8_lossy(&body).into_owned())
    });
    let pid = wait_pid_file(&pid_file).await;
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("SIGKILL delivered to the function process");

    let (status, platform, body) = tokio::time::timeout(WAIT, call).await.expect("the call ends once killed").unwrap();
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(platform, "the 502 is marked as the platform's");
    assert!(body.contains("slow-0 failed during the call"), "not a clear message: {body:?}");

    // The watchdog restarts the instance and the next call waits for it:
    // served without touching the gateway.
    assert_eq!(gateway.call("POST", "/function/slow/again", "").await, (StatusCode::OK, "ok".to_owned()));
}

/// A small tmpfs mounted (as root) for the length of a test, unmounted on
/// drop. `None` where mounting is not permitted (a developer's machine
/// without root); on CI that is a failure.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "faas-rs-test", &at.display().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root and must be able to mount a tmpfs");
            eprintln!("skipped: cannot mount a tmpfs here (not root?)");
            return None;
        }
        Some(Tmpfs(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Waits until `path` exists.
async fn wait_path(path: &std::path::Path) {
    let deadline = std::time::Instant::now() + WAIT;
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "{} never appeared", path.display());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Writes `path` until the file system holding it is full; returns how
/// much it wrote.
fn fill(path: &std::path::Path) -> u64 {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 << 10];
    let mut written = 0u64;
    // Bounded: the tmpfs is a few MiB.
    for _ in 0..100_000 {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(err) => {
                assert_eq!(err.raw_os_error(), Some(nix::libc::ENOSPC), "{err}");
                break;
            }
        }
    }
    written
}

#[tokio::test]
async fn a_full_state_file_system_answers_507_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let Some(_tmpfs) = Tmpfs::mount(&state, "16m") else { return };
    let (started, go, out) = (dir.path().join("started"), dir.path().join("go"), dir.path().join("out"));
    let hold = script(
        dir.path(),
        "hold.sh",
        &format!(
            "touch {started}\nwhile [ ! -f {go} ]; do sleep 0.1; done\ncat > {out}\n",
            started = started.display(),
            go = go.display(),
            out = out.display()
        ),
    );
    let mut gateway = Gateway::start(&state, &[]).await;
    gateway.deploy(json!({"service": "hold", "image": "sh", "envProcess": format!("sh {}", hold.display())})).await;
    gateway.wait_available("hold", 1).await;
    // An asynchronous call in the queue (and running, held) before the disk fills.
    let (status, body) = gateway.call("POST", "/async-function/hold", "queued-before").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    wait_path(&started).await;

    let filled = fill(&state.join("filler"));
    assert!(filled > 0);
    let (status, body) = gateway
        .call("POST", "/system/functions", json!({"service": "late", "image": "sh", "envProcess": "cat"}).to_string())
        .await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert!(body.contains("out of storage") && body.contains("No space left on device"), "{body}");
    // The existing deployment is still listed and served.
    let (status, list) = gateway.get("/system/functions").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let names: Vec<String> = serde_json::from_str::<serde_json::Value>(&list)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["hold"], "{list}");

    // Space returns: the held call finishes with its body, deploys work.
    std::fs::remove_file(state.join("filler")).unwrap();
    std::fs::write(&go, "").unwrap();
    wait_path(&out).await;
    let deadline = std::time::Instant::now() + WAIT;
    while std::fs::read_to_string(&out).unwrap() != "queued-before" {
        assert!(std::time::Instant::now() < deadline, "the queued call's body never arrived whole");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    gateway.deploy(json!({"service": "late", "image": "sh", "envProcess": "cat"})).await;

    // And all of it is on disk: a restarted gateway has both.
    gateway.terminate();
    assert!(gateway.wait_exit().await.success(), "stderr:\n{}", gateway.stderr());
    drop(gateway);
    let gateway = Gateway::start(&state, &[]).await;
    gateway.wait_available("hold", 1).await;
    gateway.wait_available("late", 1).await;
    assert_eq!(gateway.call("POST", "/function/late", "back").await, (StatusCode::OK, "back".to_owned()));
    let (status, dead) = gateway.get("/system/async/dead-letters").await;
    assert_eq!((status, dead.trim()), (StatusCode::OK, "[]"), "the held call did not end as a dead letter");
}
