//! The gateway process itself: restarts, exclusive state directories,
//! address conflicts, basic auth, /system/info, the protocols and timeouts
//! of its connections, and graceful shutdown.

mod common;

use std::time::Duration;

use common::{basic, command, run_to_failure, script, Gateway, WAIT};
use faas_core::Body;
use http::{Request, StatusCode};
use serde_json::json;

#[tokio::test]
async fn after_a_restart_every_deployment_is_back_and_invocable() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut gateway = Gateway::start(&state, &[]).await;
    gateway.deploy(json!({"service": "cat-a", "image": "cat", "envProcess": "cat"})).await;
    gateway
        .deploy(json!({"service": "rev", "image": "rev", "envProcess": "rev", "envVars": {"mode": "serializing"}}))
        .await;
    let (status, body) = gateway
        .call("POST", "/system/scale-function/cat-a", json!({"serviceName": "cat-a", "replicas": 2}).to_string())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    gateway.wait_available("cat-a", 2).await;

    gateway.terminate();
    assert!(gateway.wait_exit().await.success(), "SIGTERM exits 0; stderr:\n{}", gateway.stderr());

    let gateway = Gateway::start(&state, &[]).await;
    let (status, body) = gateway.get("/system/functions").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut names: Vec<&str> = list.as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["cat-a", "rev"], "{body}");
    let status = gateway.wait_available("cat-a", 2).await;
    assert_eq!(status["replicas"], 2, "replicas survive a restart: {status}");
    gateway.wait_available("rev", 1).await;
    assert_eq!(gateway.call("POST", "/function/cat-a", "same").await, (StatusCode::OK, "same".to_owned()));
    assert_eq!(gateway.call("POST", "/function/rev", "abc\n").await, (StatusCode::OK, "cba\n".to_owned()));
}

#[tokio::test]
async fn a_second_gateway_on_the_same_state_dir_exits_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let first = Gateway::start(&state, &[]).await;

    let (status, stderr) = run_to_failure(command(&state)).await;
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("in use by another gateway"), "{stderr}");

    // The first one is unaffected.
    assert_eq!(first.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_second_gateway_on_the_same_state_dir_and_port_names_the_state_dir_not_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let first = Gateway::start(&state, &[]).await;

    // The same fixed address as the first: the lock is what it must hit.
    let mut cmd = common::command_without_listen(&state);
    cmd.arg("--listen").arg(first.addr.to_string());
    let (status, stderr) = run_to_failure(cmd).await;
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("in use by another gateway"), "{stderr}");
    assert!(!stderr.contains("cannot listen on"), "{stderr}");

    assert_eq!(first.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_listen_address_in_use_exits_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut cmd = common::command_without_listen(&dir.path().join("state"));
    cmd.env("FAAS_LISTEN", &addr);
    let (status, stderr) = run_to_failure(cmd).await;
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains(&format!("cannot listen on {addr}")) && stderr.contains("already in use"), "{stderr}");
}

#[tokio::test]
async fn basic_auth_protects_the_system_routes_only() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();

    // On, but the files are missing: refuse to start, naming the file.
    let mut cmd = command(&dir.path().join("state"));
    cmd.arg("--basic-auth").arg("--secret-mount-path").arg(&secrets);
    let (status, stderr) = run_to_failure(cmd).await;
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("basic-auth-user"), "{stderr}");

    // Empty password file: same.
    std::fs::write(secrets.join("basic-auth-user"), "admin\n").unwrap();
    std::fs::write(secrets.join("basic-auth-password"), "\n").unwrap();
    let mut cmd = command(&dir.path().join("state"));
    cmd.env("basic_auth", "true").env("secret_mount_path", &secrets);
    let (status, stderr) = run_to_failure(cmd).await;
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("basic-auth-password") && stderr.contains("empty"), "{stderr}");

    // OpenFaaS's environment variables turn it on.
    std::fs::write(secrets.join("basic-auth-password"), "s3cret-pass\n").unwrap();
    let state = dir.path().join("state");
    let mut cmd = command(&state);
    cmd.env("basic_auth", "true").env("secret_mount_path", &secrets);
    let gateway = Gateway::spawn(cmd, &state).await;

    let request = Request::get("/system/functions").body(Body::empty()).unwrap();
    let (status, headers, _) = gateway.send(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get("www-authenticate").is_some_and(|v| v.to_str().unwrap().starts_with("Basic")), "{headers:?}");

    let request =
        Request::get("/system/functions").header("authorization", basic("admin", "wrong")).body(Body::empty()).unwrap();
    assert_eq!(gateway.send(request).await.0, StatusCode::UNAUTHORIZED);

    let request = Request::get("/system/functions")
        .header("authorization", basic("admin", "s3cret-pass"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = gateway.send(request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));

    // Invocations, /metrics and /healthz stay open.
    assert_eq!(gateway.get("/function/unknown").await.0, StatusCode::NOT_FOUND);
    assert_eq!(gateway.get("/metrics").await.0, StatusCode::OK);
    assert_eq!(gateway.get("/healthz").await.0, StatusCode::OK);
    assert!(!gateway.stderr().contains("s3cret-pass"), "the password is never logged");
}

#[tokio::test]
async fn system_info_reports_the_provider_and_the_gateway_version() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(&dir.path().join("state"), &[]).await;
    let (status, body) = gateway.get("/system/info").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["provider"]["provider"], "local", "{body}");
    assert_eq!(info["provider"]["orchestration"], "process", "{body}");
    assert_eq!(info["version"]["release"], env!("CARGO_PKG_VERSION"), "{body}");
    assert!(!info["version"]["sha"].as_str().unwrap_or_default().is_empty(), "{body}");
    assert!(!info["arch"].as_str().unwrap_or_default().is_empty(), "{body}");
}

#[tokio::test]
async fn sigterm_lets_a_slow_call_finish_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("slow.started");
    let slow = script(dir.path(), "slow.sh", &format!("touch {}\nsleep 2\necho slow-done\n", started.display()));
    let state = dir.path().join("state");
    let mut gateway = Gateway::start(&state, &[]).await;
    gateway.deploy(json!({"service": "slow", "image": "sh", "envProcess": format!("sh {}", slow.display())})).await;
    gateway.wait_available("slow", 1).await;

    let addr = gateway.addr;
    let call = tokio::spawn(async move {
        let request = Request::post("/function/slow").body(Body::empty()).unwrap();
        let (response, _connection) = common::open_call(addr, request).await;
        let status = response.status();
        let body = http_body_util::BodyExt::collect(response.into_body()).await.map(|b| b.to_bytes());
        (status, body)
    });
    let deadline = tokio::time::Instant::now() + WAIT;
    while !started.exists() {
        assert!(tokio::time::Instant::now() < deadline, "the slow call never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gateway.terminate();

    let (status, body) = tokio::time::timeout(WAIT, call).await.expect("the call finishes").unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.expect("the whole body arrives"), "slow-done\n");
    let exit = gateway.wait_exit().await;
    assert!(exit.success(), "{exit:?}; stderr:\n{}", gateway.stderr());
}

#[tokio::test]
async fn the_read_timeout_closes_silent_slow_and_idle_keep_alive_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(&dir.path().join("state"), &["--read-timeout", "1s"]).await;

    // Sends nothing at all.
    let mut silent = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    // Sends half a request head and stalls.
    let mut slow = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // Makes one keep-alive request, then sends nothing more (Go's
    // `IdleTimeout`, which OpenFaaS leaves at the read timeout).
    let mut idle = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();

    for (what, stream) in [("silent", &mut silent), ("slow", &mut slow)] {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "the {what} connection is still open after {WAIT:?}");
        assert!(!String::from_utf8_lossy(&buf).contains("200 OK"), "{what}: {buf:?}");
    }
    let mut buf = Vec::new();
    let read = tokio::time::timeout(WAIT, idle.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the idle keep-alive connection is still open after {WAIT:?}");
    let answers = String::from_utf8_lossy(&buf);
    assert!(answers.starts_with("HTTP/1.1 200 OK") && answers.matches("HTTP/1.1").count() == 1, "{answers}");
    // A prompt client is served as usual.
    assert_eq!(gateway.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn http2_with_prior_knowledge_and_http1_heads_in_pieces_are_both_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(&dir.path().join("state"), &[]).await;

    // HTTP/2 without an upgrade: the gateway recognises the preface.
    let stream = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    for _ in 0..2 {
        let request = Request::get(gateway.uri("/healthz")).body(Body::empty()).unwrap();
        let response = tokio::time::timeout(WAIT, sender.send_request(request)).await.unwrap().unwrap();
        assert_eq!((response.version(), response.status()), (http::Version::HTTP_2, StatusCode::OK));
    }

    // HTTP/1.1 heads whose first bytes could begin HTTP/2's preface ("P"),
    // or could not ("G"), each sent in pieces, twice on one keep-alive
    // connection.
    let post = "OST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    let get = "ET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for (first, rest, status) in [("P", post, "HTTP/1.1 405"), ("G", get, "HTTP/1.1 200 OK")] {
        let mut stream = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        for _ in 0..2 {
            stream.write_all(first.as_bytes()).await.unwrap();
            stream.flush().await.unwrap();
            stream.write_all(rest.as_bytes()).await.unwrap();
            let mut buf = [0u8; 512];
            let n = tokio::time::timeout(WAIT, stream.read(&mut buf)).await.unwrap().unwrap();
            let answer = String::from_utf8_lossy(&buf[..n]);
            assert!(answer.starts_with(status), "{first}{rest}: {answer}");
        }
    }
}

#[tokio::test]
async fn the_drain_on_sigterm_is_bounded_by_the_write_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("stuck.pid");
    let stuck = script(dir.path(), "stuck.sh", &format!("echo $$ > {}\nexec sleep 600\n", pid_file.display()));
    let state = dir.path().join("state");
    let mut gateway = Gateway::start(&state, &["--write-timeout", "2s"]).await;
    gateway
        .deploy(json!({
            "service": "stuck", "image": "sh",
            "envProcess": format!("sh {}", stuck.display()),
            "envVars": {"exec_timeout": "10m"}
        }))
        .await;
    gateway.wait_available("stuck", 1).await;

    let addr = gateway.addr;
    let call = tokio::spawn(async move {
        let request = Request::post("/function/stuck").body(Body::empty()).unwrap();
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        sender.send_request(request).await.map(|r| r.status())
    });
    let pid = common::wait_pid_file(&pid_file).await;
    gateway.terminate();

    let exit = gateway.wait_exit().await;
    assert!(exit.success(), "{exit:?}; stderr:\n{}", gateway.stderr());
    common::wait_gone(pid, "the call still running when the drain ran out").await;
    let outcome = tokio::time::timeout(WAIT, call).await.expect("the client learns the call's fate").unwrap();
    assert!(!matches!(outcome, Ok(StatusCode::OK)), "{outcome:?}");
}
