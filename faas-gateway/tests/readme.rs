//! The README's quick start and the asynchronous calls page's example
//! (docs/async.md), run verbatim against the real gateway binary, so the
//! commands a newcomer pastes keep working.

mod common;

use std::time::Duration;

use common::{markdown, Gateway};

/// The first `sh` block under the README's "Quick start" heading.
fn quick_start() -> String {
    markdown::sh_block("README.md", "## Quick start", 0)
}

/// The quick start cut after its scale step, so the test can check that
/// the step took effect before the rest (logs, delete) runs: `curl -s`
/// prints an error body and exits 0, so a failing scale would not fail the
/// script itself.
fn split_after_scale(script: &str) -> (String, String) {
    let lines: Vec<&str> = script.lines().collect();
    let scale = lines
        .iter()
        .position(|line| line.contains("/system/scale-function/hello"))
        .expect("the quick start scales the hello function");
    let one_line = lines[scale].trim_start().starts_with("curl ") && !lines[scale].trim_end().ends_with('\\');
    assert!(one_line, "the scale step is one curl command: {}", lines[scale]);
    (lines[..=scale].join("\n"), lines[scale + 1..].join("\n"))
}

/// Runs `script` with bash (`-euo pipefail`) at the repository root
/// against `gateway`.
async fn run_script(script: &str, gateway: &Gateway) -> std::process::Output {
    let repo_root = markdown::repo_root();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .env("GW", format!("http://{}", gateway.addr))
            .current_dir(&repo_root)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the quick start finishes in time")
    .expect("bash runs");
    assert!(
        output.status.success(),
        "quick start failed: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_quick_start_works_verbatim() {
    let script = quick_start();
    assert!(
        script.contains("GW=${GW:-http://127.0.0.1:8080}"),
        "the block sets GW so this test can point it elsewhere"
    );
    let (up_to_scale, rest) = split_after_scale(&script);
    let state = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(&state.path().join("state"), &[]).await;

    let first = run_script(&up_to_scale, &gateway).await;
    // The scale step took effect: two replicas asked for, and both come up.
    let (code, body) = gateway.get("/system/function/hello").await;
    let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(
        (code, &status["replicas"]),
        (http::StatusCode::OK, &serde_json::json!(2)),
        "after the scale step: {body}"
    );
    gateway.wait_available("hello", 2).await;
    let second = run_script(&rest, &gateway).await;
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned() + &String::from_utf8_lossy(&second.stdout);

    // sha512 of "hello", as `sha512sum` prints it for stdin.
    let digest = "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca7\
                  2323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043  -";
    assert!(stdout.contains(digest), "sha512sum answered: {stdout}");
    assert!(stdout.contains("Hello from Python, pid "), "the http-mode function answered: {stdout}");
    assert!(
        stdout.contains(r#""path": "/any/path", "query": "x=1", "bytes": 10"#),
        "sub-path, query and body: {stdout}"
    );
    assert!(
        stdout.contains(r#""name":"hello""#) && stdout.contains(r#""availableReplicas":1"#),
        "list/status: {stdout}"
    );
    assert!(stdout.contains(r#""text":"GET / -> 200""#), "the function's log line: {stdout}");
    // The watchdog's lines for the sha512sum call: 128 hex digits, "  -" and a newline.
    assert!(
        stdout.contains(r#""name":"sha512sum""#)
            && stdout.contains(r#""text":"Forking fprocess.""#)
            && stdout.contains(r#""text":"Wrote 132 Bytes - Duration: "#),
        "sha512sum's call lines from /system/logs: {stdout}"
    );
    // The script ends by deleting both functions.
    assert_eq!(gateway.get("/system/functions").await, (http::StatusCode::OK, "[]".to_owned()));
}

/// The first `sh` block of docs/async.md.
fn async_example() -> String {
    markdown::sh_block("docs/async.md", "# Asynchronous calls", 0)
}

/// Stops a process group (the example's shell and its background
/// receiver) when dropped, a failed assertion included.
struct KillGroup(nix::unistd::Pid);

impl Drop for KillGroup {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(self.0, nix::sys::signal::Signal::SIGKILL);
    }
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// docs/async.md's example: its commands as they are, except for the
/// ports. The page uses the quick start's fixed 8080 (gateway) and 8090
/// (callback receiver); tests run in parallel with other gateways and a
/// developer's own, so this test cannot own those ports safely and
/// substitutes free ones (the gateway's port 0 address and a port the OS
/// just handed out) for them, and only them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_async_example_calls_back() {
    use tokio::io::AsyncBufReadExt;

    let example = async_example();
    for fixed in ["http://127.0.0.1:8080/", "(\"127.0.0.1\", 8090)", "http://127.0.0.1:8090/done"] {
        assert!(example.contains(fixed), "the example uses {fixed}: {example}");
    }
    let state = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(&state.path().join("state"), &[]).await;
    let receiver = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = example
        .replace("http://127.0.0.1:8080/", &format!("http://{}/", gateway.addr))
        .replace("8090", &receiver.to_string());

    // Its own process group: the receiver stays in the background after
    // the script ends, and is stopped with the group at the end.
    let mut child = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("bash runs");
    let _group = KillGroup(nix::unistd::Pid::from_raw(child.id().expect("a pid") as i32));
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        let mut call_id = None;
        while let Some(line) = lines.next_line().await.expect("the output is readable") {
            let line = line.trim_end().to_owned();
            seen.push(line.clone());
            if let Some(id) = line.to_ascii_lowercase().strip_prefix("x-call-id: ") {
                call_id = Some(id.to_owned());
            }
            if let Some(id) = &call_id {
                if line == format!("{id} 200 cnysa olleh") {
                    return true;
                }
            }
        }
        false
    })
    .await;
    let output = seen.join("\n");
    assert_eq!(outcome, Ok(true), "the receiver never printed `<uuid> 200 cnysa olleh`:\n{output}");
    assert!(seen.iter().any(|line| line == "HTTP/1.1 202 Accepted"), "curl printed the 202:\n{output}");
    let id = seen.iter().find_map(|line| line.to_ascii_lowercase().strip_prefix("x-call-id: ").map(str::to_owned));
    assert!(id.as_deref().is_some_and(is_uuid), "an X-Call-Id UUID:\n{output}");
}
