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

/// The value of `file` in the cgroup v1 `controller` hierarchy of a
/// process whose `/proc/<pid>/cgroup` is `cgroups`, read on the host side.
fn v1_limit(cgroups: &str, controller: &str, file: &str) -> String {
    let path = cgroups
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers.split(',').any(|c| c == controller).then_some(path)
        })
        .unwrap_or_else(|| panic!("no {controller} line in {cgroups}"));
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let (root, point) = mountinfo
        .lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let (fields, rest): (Vec<&str>, Vec<&str>) = (left.split(' ').collect(), right.split(' ').collect());
            (rest[0] == "cgroup" && rest[2].split(',').any(|o| o == controller)).then(|| (fields[3], fields[4]))
        })
        .unwrap_or_else(|| panic!("no cgroup v1 {controller} hierarchy"));
    let relative = if root != "/" { path.strip_prefix(root).unwrap_or(path) } else { path };
    let dir = std::path::Path::new(point).join(relative.trim_start_matches('/'));
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).trim().to_owned()
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

/// An http-mode function (`sh <script>`) whose server carries
/// `<marker>-http` and that also starts a grandchild `<marker>-grandchild`
/// (outside the reach of the parent-death signal), to be reaped by the
/// next gateway.
fn orphan_server(dir: &std::path::Path, marker: &str) -> std::path::PathBuf {
    script(
        dir,
        "server.sh",
        &format!(
            "python3 -c 'import time; time.sleep(1000)' {marker}-grandchild &\n\
             exec python3 -c 'import http.server, os; http.server.test(port=int(os.environ[\"PORT\"]), bind=\"127.0.0.1\")' {marker}-http\n"
        ),
    )
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
    let server = orphan_server(tmp.path(), &marker);
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
async fn a_relative_state_dir_still_gives_functions_their_secrets() {
    if !root() {
        return;
    }
    let tmp = scratch();
    // `--state-dir state`, run from `tmp`: the secrets' bind mount and the
    // hidden state dir are absolute paths all the same.
    let mut cmd = common::command(std::path::Path::new("state"));
    cmd.current_dir(tmp.path());
    let gateway = Gateway::spawn(cmd, &tmp.path().join("state")).await;
    let (status, body) =
        gateway.call("POST", "/system/secrets", json!({"name": "token", "value": "s3cret"}).to_string()).await;
    assert!(status.is_success(), "{body}");
    let probe = script(tmp.path(), "probe.sh", "cat /var/openfaas/secrets/token\n");
    gateway
        .deploy(json!({"service": "reader", "image": "local", "envProcess": format!("sh {}", probe.display()),
            "secrets": ["token"]}))
        .await;
    let (status, body) = gateway.call("POST", "/function/reader", "").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "s3cret"), "stderr:\n{}", gateway.stderr());
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

    // limits.cpu and limits.memory are written to the instance's cgroups
    // (v1 here, as on CI); requests are recorded only.
    gateway
        .deploy(json!({"service": "quota", "image": "local", "envProcess": "cat /proc/self/cgroup",
            "limits": {"memory": "32Mi", "cpu": "250m"}, "requests": {"memory": "16Mi", "cpu": "100m"}}))
        .await;
    let (status, cgroups) = gateway.call("POST", "/function/quota", "").await;
    assert_eq!(status, StatusCode::OK, "{cgroups}");
    assert_eq!(v1_limit(&cgroups, "cpu", "cpu.cfs_quota_us"), "25000", "250m of a 100ms period: {cgroups}");
    assert_eq!(v1_limit(&cgroups, "memory", "memory.limit_in_bytes"), (32u64 << 20).to_string());
    let (_, status) = gateway.get("/system/function/quota").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["requests"], json!({"memory": "16Mi", "cpu": "100m"}), "{status}");

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

/// A gateway run as nobody: everything nobody needs (the binary, the state
/// dir, the scripts) lives under the system's temp dir, as the target dir
/// may be under a home nobody cannot enter.
struct Nobody {
    tmp: tempfile::TempDir,
    binary: std::path::PathBuf,
    state: std::path::PathBuf,
}

impl Nobody {
    fn new() -> Nobody {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let binary = tmp.path().join("faas-gateway");
        std::fs::copy(common::binary(), &binary).unwrap();
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        let state = tmp.path().join("state");
        std::fs::create_dir(&state).unwrap();
        nix::unistd::chown(&state, Some(65534.into()), Some(65534.into())).unwrap();
        Nobody { tmp, binary, state }
    }

    /// The gateway on the state dir, as nobody, on a free port.
    fn command(&self) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = common::command_of(&self.binary, &self.state);
        cmd.arg("--listen").arg("127.0.0.1:0").uid(65534).gid(65534);
        cmd
    }
}

#[tokio::test]
async fn required_refuses_to_start_naming_what_is_missing_and_rootless_auto_still_isolates() {
    if !root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let nobody = Nobody::new();
    let state = &nobody.state;
    let mut required = nobody.command();
    required.args(["--sandbox", "required"]);
    let (status, stderr) = common::run_to_failure(required).await;
    assert!(!status.success());
    assert!(stderr.contains("--sandbox required") && stderr.contains("cpu-limit"), "{stderr}");

    let gateway = Gateway::spawn(nobody.command(), state).await;
    let (_, info) = gateway.get("/system/info").await;
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let sandbox = &info["provider"]["sandbox"];
    assert!(sandbox["unavailable"]["cpu-limit"].is_string(), "{info}");
    assert!(sandbox["features"]["memory-limit"].as_str().unwrap().contains("RLIMIT_AS"), "{info}");
    // RLIMIT_AS holds: allocating 200 MB under 64Mi fails inside the
    // function (MemoryError), the call answers what the function answers,
    // a small call works.
    let scripts = tempfile::tempdir_in("/var/tmp").unwrap();
    std::fs::set_permissions(scripts.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let hog = script(
        scripts.path(),
        "hog.py",
        "import sys\ntry:\n    x = bytearray(200 * 1024 * 1024) if sys.stdin.read() == 'hog' else b''\n    print('fine')\n\
         except MemoryError:\n    print('refused')\n",
    );
    gateway
        .deploy(json!({"service": "hog", "image": "local", "envProcess": format!("python3 {}", hog.display()),
            "limits": {"memory": "64Mi"}}))
        .await;
    let (status, body) = gateway.call("POST", "/function/hog", "hog").await;
    assert_eq!((status, body.trim()), (StatusCode::OK, "refused"), "RLIMIT_AS of 64Mi");
    let (status, body) = gateway.call("POST", "/function/hog", "small").await;
    assert_eq!((status, body.trim()), (StatusCode::OK, "fine"));
    if sandbox["features"]["mount-namespace"].is_string() {
        // Outside /tmp (the scripts dir above): with readOnlyRootFilesystem
        // the function gets a private /tmp of its own.
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

/// Point 1 without cgroups (the gateway as nobody): the parent-death
/// signal takes the function processes with the killed gateway, and the
/// successor reaps the grandchild through the recorded process group.
#[tokio::test]
async fn a_killed_rootless_gateway_leaves_no_function_process_and_its_successor_reaps_the_rest() {
    if !root() {
        return;
    }
    let nobody = Nobody::new();
    let marker = format!("rootless-orphan-{}", std::process::id());
    let server = orphan_server(nobody.tmp.path(), &marker);
    let gateway = Gateway::spawn(nobody.command(), &nobody.state).await;
    let (_, info) = gateway.get("/system/info").await;
    assert!(info.contains("process groups recorded for reaping"), "{info}");
    gateway
        .deploy(json!({"service": "web", "image": "local", "envProcess": format!("sh {}", server.display()),
            "envVars": {"mode": "http"}}))
        .await;
    gateway.wait_available("web", 1).await;
    assert_eq!(wait_count(&format!("{marker}-grandchild"), 1, common::WAIT).await.len(), 1);

    let mut gateway = gateway;
    nix::sys::signal::kill(gateway.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    gateway.wait_exit().await;
    let left = wait_count(&format!("{marker}-http"), 0, Duration::from_secs(1)).await;
    assert!(left.is_empty(), "the http-mode process outlived the gateway by 1s: {left:?}");
    let grandchildren = processes_with(&format!("{marker}-grandchild"));
    assert_eq!(grandchildren.len(), 1, "the grandchild escaped the parent-death signal: {grandchildren:?}");

    let successor = Gateway::spawn(nobody.command(), &nobody.state).await;
    successor.wait_available("web", 1).await;
    let stale: Vec<i32> = wait_count(&format!("{marker}-grandchild"), 1, common::WAIT)
        .await
        .into_iter()
        .filter(|pid| grandchildren.contains(pid))
        .collect();
    assert!(stale.is_empty(), "the successor reaped the old grandchild: {stale:?}");
    assert_eq!(processes_with(&format!("{marker}-http")).len(), 1, "exactly the one replica");
    drop(successor);
    assert!(wait_count(&marker, 0, common::WAIT).await.is_empty(), "a clean shutdown leaves nothing");
}

/// `--sandbox off`: `/system/info` says every feature is off, and a
/// function runs bare (no `/var/openfaas/secrets`, its secrets only in
/// `$SECRETS_DIR`) with its limits and `readOnlyRootFilesystem` recorded.
/// Runs as any user.
#[tokio::test]
async fn sandbox_off_runs_functions_bare_and_says_so() {
    let tmp = scratch();
    let state = tmp.path().join("state");
    let gateway = Gateway::start(&state, &["--sandbox", "off"]).await;
    let (_, info) = gateway.get("/system/info").await;
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let sandbox = &info["provider"]["sandbox"];
    assert_eq!(sandbox["mode"], "off", "{info}");
    assert_eq!(sandbox["features"], json!({}), "{info}");
    for feature in ["no-orphans", "mount-namespace", "read-only-root", "memory-limit", "cpu-limit"] {
        assert_eq!(sandbox["unavailable"][feature], "the sandbox is off", "{info}");
    }
    let (status, body) =
        gateway.call("POST", "/system/secrets", json!({"name": "token", "value": "s3cret"}).to_string()).await;
    assert!(status.is_success(), "{body}");
    let probe = script(
        tmp.path(),
        "bare.sh",
        "ls /var/openfaas/secrets 2>/dev/null || echo no-openfaas-path; cat \"$SECRETS_DIR/token\"; echo\n",
    );
    let limits = json!({"memory": "20Mi", "cpu": "500m"});
    gateway
        .deploy(json!({"service": "bare", "image": "local", "envProcess": format!("sh {}", probe.display()),
            "secrets": ["token"], "limits": limits, "readOnlyRootFilesystem": true}))
        .await;
    let (status, body) = gateway.call("POST", "/function/bare", "").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "no-openfaas-path\ns3cret\n"));
    let (_, status) = gateway.get("/system/function/bare").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!((&status["limits"], &status["readOnlyRootFilesystem"]), (&limits, &json!(true)), "{status}");
}
