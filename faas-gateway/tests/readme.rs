//! The README's quick start, run verbatim against the real gateway binary,
//! so the commands a newcomer pastes keep working.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Gateway;

/// The first `sh` block under the README's "Quick start" heading.
fn quick_start() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let section = readme.split("## Quick start").nth(1).expect("README has a Quick start section");
    let block = section.split("```sh\n").nth(1).expect("the section has an sh block");
    block.split("\n```").next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_quick_start_works_verbatim() {
    let script = quick_start();
    assert!(
        script.contains("GW=${GW:-http://127.0.0.1:8080}"),
        "the block sets GW so this test can point it elsewhere"
    );
    let state = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(&state.path().join("state"), &[]).await;
    let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap();

    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("GW", format!("http://{}", gateway.addr))
            .current_dir(&repo_root)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the quick start finishes in time")
    .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "quick start failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

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
    // The script ends by deleting both functions.
    assert_eq!(gateway.get("/system/functions").await, (http::StatusCode::OK, "[]".to_owned()));
}
