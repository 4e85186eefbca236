//! The local provider's sandbox, through the real gateway binary: no
//! orphans after a SIGKILL, a mount namespace per function, memory limits,
//! and what `/system/info` reports. Needs root (as CI runs); skipped
//! otherwise.

mod common;

use std::time::{Duration, Instant};

use common::{script, Gateway};
use http::StatusCode;
use serde_json::json;

/// A scratch dir outside /tmp (a read-only root gets a private /tmp, so
/// scripts there would be invisible), traversable by any user.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: the sandbox tests run as root (as CI does)");
    false
}

/// Pids of live (not zombie) processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        if String::from_utf8_lossy(&cmdline).contains(marker) && !common::process_gone(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Waits (bounded by `within`) until exactly `count` processes carry `marker`.
async fn wait_count(marker: &str, count: usize, within: Duration) -> Vec<i32> {
    let deadline = Instant::now() + within;
    loop {
        let pids = processes_with(marker);
        if pids.len() == count || Instant::now() >= deadline {
            return pids;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_killed_gateway_leaves_no_function_process_and_its_successor_runs_exactly_the_replicas() {
    if !root() {
        return;
    }
    let tmp = scratch();
    let state = tmp.path().join("state");
    let marker = format!("orphan-marker-{}", std::process::id());
    // http mode: a server that also starts a grandchild (outside the reach
    // of the parent-death signal), to be reaped by the next gateway.
    let server = script(
        tmp.path(),
        "server.sh",
        &format!(
            "python3 -c 'import time; time.sleep(1000)' {marker}-grandchild &\n\
             exec python3 -c 'import http.server, os; http.server.test(port=int(os.environ[\"PORT\"]), bind=\"127.0.0.1\")' {marker}-http\n"
        ),
    );
    let slow =
        script(tmp.path(), "slow.sh", &format!("exec python3 -c 'import time; time.sleep(1000)' {marker}-fork\n"));
    let gateway = Gateway::start(&state, &["--no-autoscale"]).await;
    gateway
        .deploy(json!({"service": "web", "image": "local", "envProcess": format!("sh {}", server.display()),
            "envVars": {"mode": "http"}, "labels": {"com.openfaas.scale.min": "2"}}))
        .await;
    gateway.deploy(json!({"service": "slow", "image": "local", "envProcess": format!("sh {}", slow.display())})).await;
    gateway.wait_available("web", 2).await;
    // A fork-mode call in flight.
    let addr = gateway.addr;
    let call = tokio::spawn(async move {
        let request = http::Request::post("/function/slow").body(faas_core::Body::from("x")).unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(60), common::open_call(addr, request)).await;
    });
    assert_eq!(wait_count(&format!("{marker}-http"), 2, common::WAIT).await.len(), 2);
    assert_eq!(wait_count(&format!("{marker}-fork"), 1, common::WAIT).await.len(), 1);
    assert_eq!(wait_count(&format!("{marker}-grandchild"), 2, common::WAIT).await.len(), 2);

    nix::sys::signal::kill(gateway.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    let mut gateway = gateway;
    gateway.wait_exit().await;
    let http_left = wait_count(&format!("{marker}-http"), 0, Duration::from_secs(1)).await;
    let fork_left = wait_count(&format!("{marker}-fork"), 0, Duration::from_secs(1)).await;
    assert!(killed.elapsed() < Duration::from_secs(2));
    assert!(http_left.is_empty(), "http-mode processes outlived the gateway: {http_left:?}");
    assert!(fork_left.is_empty(), "fork-mode processes outlived the gateway: {fork_left:?}");
    call.abort();

    // The successor reaps the grandchildren and runs exactly the replicas.
    let successor = Gateway::start(&state, &["--no-autoscale"]).await;
    successor.wait_available("web", 2).await;
    let grandchildren = wait_count(&format!("{marker}-grandchild"), 2, common::WAIT).await;
    let http = processes_with(&format!("{marker}-http"));
    assert_eq!(http.len(), 2, "exactly the 2 replicas run after the restart: {http:?}");
    assert_eq!(grandchildren.len(), 2, "only the new instances' grandchildren are left: {grandchildren:?}");
    assert!(processes_with(&format!("{marker}-fork")).is_empty());
    drop(successor);
    assert!(wait_count(&marker, 0, common::WAIT).await.is_empty(), "a clean shutdown leaves nothing");
}

#[tokio::test]
async fn functions_see_their_own_secrets_and_a_read_only_root_and_are_held_to_their_memory_limit() {
    if !root() {
        return;
    }
    let tmp = scratch();
    let state = tmp.path().join("state");
    let gateway = Gateway::start(&state, &[]).await;
    let (status, info) = gateway.get("/system/info").await;
    assert_eq!(status, StatusCode::OK);
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let features = &info["provider"]["sandbox"]["features"];
    for feature in ["no-orphans", "mount-namespace", "read-only-root", "memory-limit", "cpu-limit"] {
        assert!(features[feature].is_string(), "{feature} is in force as root: {info}");
    }
    assert_eq!(info["provider"]["sandbox"]["mode"], "auto");

    for (name, value) in [("token", "s3cret"), ("other", "not-yours")] {
        let (status, body) =
            gateway.call("POST", "/system/secrets", json!({"name": name, "value": value}).to_string()).await;
        assert!(status.is_success(), "{body}");
    }
    let probe = script(
        tmp.path(),
        "probe.sh",
        &format!(
            "cat /var/openfaas/secrets/token; echo; ls /var/openfaas/secrets; echo \"dir=$SECRETS_DIR\"; \
             cat \"$SECRETS_DIR/token\"; echo; ls {state}/secrets 2>&1 | head -1; ls {state}/run/openfaas-fn; \
             echo x > /tmp/w && echo tmp-ok; (echo x > /etc/faas-sandbox-probe) 2>&1 || echo etc-refused\n",
            state = state.display()
        ),
    );
    let deploy = |name: &str, read_only: bool| {
        json!({"service": name, "image": "local", "envProcess": format!("sh {}", probe.display()),
            "secrets": ["token"], "readOnlyRootFilesystem": read_only})
    };
    gateway.deploy(deploy("reader", true)).await;
    gateway.deploy(json!({"service": "neighbour", "image": "local", "envProcess": "cat", "secrets": ["other"]})).await;
    let (status, body) = gateway.call("POST", "/function/reader", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "s3cret", "{body}");
    assert_eq!(lines[1], "token", "only its own secret: {body}");
    assert!(lines[2].starts_with("dir=") && lines[2].ends_with("/run/openfaas-fn/reader/secrets"), "{body}");
    assert_eq!(lines[3], "s3cret", "SECRETS_DIR still works: {body}");
    assert!(lines[4].contains("No such file"), "the state dir's secrets are invisible: {body}");
    assert_eq!(lines[5], "reader", "other functions' dirs are invisible: {body}");
    assert!(body.contains("tmp-ok"), "a private writable /tmp: {body}");
    assert!(body.contains("Read-only file system") && body.contains("etc-refused"), "{body}");
    assert!(!std::path::Path::new("/etc/faas-sandbox-probe").exists());

    // Without readOnlyRootFilesystem the root is writable (checked on
    // /tmp's host side only, to leave /etc alone): the secrets are the same.
    gateway.deploy(deploy("writer", false)).await;
    let (status, body) = gateway.call("POST", "/function/writer", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.starts_with("s3cret\ntoken\n"), "{body}");
    // The writable root did write the host's /etc: remove the probe, so
    // that the read-only check above holds on the next run too.
    assert!(body.contains("etc-refused") || std::path::Path::new("/etc/faas-sandbox-probe").exists(), "{body}");
    let _ = std::fs::remove_file("/etc/faas-sandbox-probe");

    // 20Mi: allocating 200 MB gets the kernel's OOM kill, answered 502.
    let hog = script(
        tmp.path(),
        "hog.py",
        "import sys\nif sys.stdin.read().strip() == 'hog':\n    x = bytearray(200 * 1024 * 1024)\n    x[::4096] = b'y' * len(x[::4096])\nprint('fine')\n",
    );
    gateway
        .deploy(json!({"service": "hog", "image": "local", "envProcess": format!("python3 {}", hog.display()),
            "limits": {"memory": "20Mi"}}))
        .await;
    let (status, body) = gateway.call("POST", "/function/hog", "hog").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body, "function hog.openfaas-fn exceeded its memory limit of 20Mi");
    let (status, body) = gateway.call("POST", "/function/hog", "small").await;
    assert_eq!((status, body.trim()), (StatusCode::OK, "fine"), "the next call works");

    // Bad limits are refused at deploy, naming the field; nothing is created.
    for (limits, field) in [
        (json!({"memory": "3Mi"}), "limits.memory"),
        (json!({"cpu": "0"}), "limits.cpu"),
        (json!({"cpu": "4096"}), "limits.cpu"),
    ] {
        let deployment = json!({"service": "bad", "image": "local", "envProcess": "cat", "limits": limits});
        let (status, body) = gateway.call("POST", "/system/functions", deployment.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains(field), "{body}");
        assert_eq!(gateway.get("/system/function/bad").await.0, StatusCode::NOT_FOUND);
    }
    let missing = json!({"service": "bad", "image": "local", "envProcess": "cat", "secrets": ["nope"]});
    let (status, body) = gateway.call("POST", "/system/functions", missing.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("secrets"), "{body}");
    assert!(!state.join("run/openfaas-fn/bad").exists(), "nothing was created");

    // The gateway's cgroups go with it.
    let cgroup = features["no-orphans"].as_str().unwrap().rsplit(' ').next().unwrap().to_owned();
    assert!(std::path::Path::new(&cgroup).is_dir(), "{cgroup}");
    drop(gateway);
    assert!(!std::path::Path::new(&cgroup).exists(), "{cgroup} is removed at shutdown");
}

#[tokio::test]
async fn required_refuses_to_start_naming_what_is_missing_and_rootless_auto_still_isolates() {
    if !root() {
        return;
    }
    // Run as nobody: unprivileged user namespaces (where allowed) give the
    // mount namespace, cgroups are not writable. Everything nobody needs
    // (the binary, the state dir, the scripts) lives under the system's
    // temp dir: the target dir may be under a home nobody cannot enter.
    let tmp = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let binary = tmp.path().join("faas-gateway");
    std::fs::copy(common::binary(), &binary).unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    let nobody_command = |state: &std::path::Path| {
        let mut cmd = common::command_of(&binary, state);
        cmd.arg("--listen").arg("127.0.0.1:0");
        cmd
    };
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    nix::unistd::chown(&state, Some(65534.into()), Some(65534.into())).unwrap();
    let mut required = nobody_command(&state);
    required.args(["--sandbox", "required"]).uid(65534).gid(65534);
    use std::os::unix::process::CommandExt;
    let (status, stderr) = common::run_to_failure(required).await;
    assert!(!status.success());
    assert!(stderr.contains("--sandbox required") && stderr.contains("cpu-limit"), "{stderr}");

    let mut auto = nobody_command(&state);
    auto.uid(65534).gid(65534);
    let gateway = Gateway::spawn(auto, &state).await;
    let (_, info) = gateway.get("/system/info").await;
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let sandbox = &info["provider"]["sandbox"];
    assert!(sandbox["unavailable"]["cpu-limit"].is_string(), "{info}");
    assert!(sandbox["features"]["memory-limit"].as_str().unwrap().contains("RLIMIT_AS"), "{info}");
    if sandbox["features"]["mount-namespace"].is_string() {
        // Outside /tmp: with readOnlyRootFilesystem the function gets a
        // private /tmp of its own.
        let scripts = tempfile::tempdir_in("/var/tmp").unwrap();
        std::fs::set_permissions(scripts.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let ro = script(scripts.path(), "ro.sh", "touch /usr/x 2>&1; ls /var/openfaas/secrets && echo ok\n");
        gateway
            .deploy(json!({"service": "ro", "image": "local", "envProcess": format!("sh {}", ro.display()),
                "readOnlyRootFilesystem": true}))
            .await;
        let (status, body) = gateway.call("POST", "/function/ro", "").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("Read-only file system") && body.contains("ok"), "rootless: {body}");
    } else {
        eprintln!("unprivileged user namespaces are not allowed here: {info}");
    }
}
