//! The local provider's own behaviour, with real processes in temporary
//! state dirs: persistence, locking, validation, readiness, scaling, http
//! mode, updates under load, secret files and corrupt state.

use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use faas_core::{
    Body, Error, FunctionDeployment, FunctionNamespace, FunctionRef, FunctionStatus, LogRequest, Provider, Secret,
    DEFAULT_NAMESPACE,
};
use faas_test_support::python::write_http_function;
use futures_util::StreamExt;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use provider_local::{LocalConfig, LocalProvider, LAST_ERROR_ANNOTATION, WATCHDOG_INSTANCE};
use tempfile::TempDir;

/// Bound on every wait for an eventual state.
const SETTLE: Duration = Duration::from_secs(30);
/// Grace given to `shutdown` in the tests.
const GRACE: Duration = Duration::from_secs(5);

/// A script answering with `$GREETING`, the secret file named by the
/// request path (`/secret/<name>`), or the request body (anything else).
const SCRIPT: &str = r#"#!/bin/sh
case ${Http_Path:-/} in
/greeting) printf '%s' "$GREETING" ;;
/secret/*) cat "$SECRETS_DIR/${Http_Path#/secret/}" ;;
/slow) sleep 1; printf 'version=%s' "$VERSION" ;;
*) cat ;;
esac
"#;

/// The handler of an HTTP server on `$PORT` (`faas_test_support::python`)
/// answering every GET with `pong from $NAME`.
const HTTP_SERVER: &str = r#"    def do_GET(self):
        self.reply(("pong from " + os.environ.get("NAME", "?")).encode())
"#;

struct Fixture {
    dir: TempDir,
    script: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("a temporary dir");
        let script = dir.path().join("function.sh");
        std::fs::write(&script, SCRIPT).expect("the script is written");
        Fixture { dir, script }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    async fn open(&self) -> LocalProvider {
        LocalProvider::open(LocalConfig::new(self.state())).await.expect("the provider opens")
    }

    /// The script deployed in streaming (fork) mode.
    fn deployment(&self, name: &str, namespace: &str) -> FunctionDeployment {
        deployment(name, namespace, &format!("sh {}", self.script.display()), &[("mode", "streaming")])
    }
}

fn deployment(name: &str, namespace: &str, env_process: &str, vars: &[(&str, &str)]) -> FunctionDeployment {
    FunctionDeployment {
        service: name.to_owned(),
        namespace: namespace.to_owned(),
        image: "local".to_owned(),
        env_process: env_process.to_owned(),
        env_vars: vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..FunctionDeployment::default()
    }
}

fn with_label(mut deployment: FunctionDeployment, key: &str, value: &str) -> FunctionDeployment {
    deployment.labels.get_or_insert_with(BTreeMap::new).insert(key.to_owned(), value.to_owned());
    deployment
}

fn fref(name: &str, namespace: &str) -> FunctionRef {
    FunctionRef::new(name, namespace)
}

/// Calls `path` on `function` with `body`; the status and whole body.
async fn call(
    provider: &LocalProvider,
    function: &FunctionRef,
    path: &str,
    body: &str,
) -> Result<(StatusCode, String), Error> {
    let request =
        Request::builder().method(Method::POST).uri(path).body(Body::from(body.to_owned())).expect("a request");
    let response =
        tokio::time::timeout(SETTLE, provider.invoke(function, request)).await.expect("the call answers in time")?;
    let status = response.status();
    let bytes: Bytes = tokio::time::timeout(SETTLE, response.into_body().collect())
        .await
        .expect("the body ends in time")
        .map_err(|e| Error::backend("test", "the body failed", e))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// `call` expecting 200; the body.
async fn call_ok(provider: &LocalProvider, function: &FunctionRef, path: &str, body: &str) -> String {
    match call(provider, function, path, body).await {
        Ok((StatusCode::OK, text)) => text,
        Ok((status, text)) => panic!("{path} on {function} answered {status}: {text:?}"),
        Err(err) => panic!("{path} on {function} failed: {}", err.message()),
    }
}

/// Polls `check` until it gives `Some`, failing after [`SETTLE`] with what
/// was last seen.
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; last seen: {last}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn status(provider: &LocalProvider, function: &FunctionRef) -> FunctionStatus {
    provider.status(function).await.unwrap_or_else(|e| panic!("status of {function}: {}", e.message()))
}

async fn wait_available(provider: &LocalProvider, function: &FunctionRef, replicas: u64) {
    wait_for(&format!("{function} to have {replicas} available replicas"), || async {
        let s = status(provider, function).await;
        if s.available_replicas == replicas {
            Ok(())
        } else {
            Err(format!("replicas {} available {} annotations {:?}", s.replicas, s.available_replicas, s.annotations))
        }
    })
    .await
}

fn invalid_field(result: Result<(), Error>) -> (String, String) {
    match result {
        Err(Error::Invalid { field, reason }) => (field, reason),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

fn secret(name: &str, namespace: &str, value: &str) -> Secret {
    Secret { name: name.to_owned(), namespace: namespace.to_owned(), value: value.to_owned(), ..Secret::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_shutdown_and_reopen() {
    let fixture = Fixture::new();
    let provider = fixture.open().await;
    let team = FunctionNamespace {
        name: "team".into(),
        labels: BTreeMap::from([("tier".into(), "gold".into())]),
        ..Default::default()
    };
    provider.create_namespace(team.clone()).await.unwrap();
    provider.create_secret(secret("token", "team", "t0ken")).await.unwrap();
    let mut one = fixture.deployment("one", DEFAULT_NAMESPACE);
    one.env_vars.insert("GREETING".into(), "hello".into());
    provider.deploy(one).await.unwrap();
    let mut two = fixture.deployment("two", "team");
    two.secrets.push("token".into());
    provider.deploy(two).await.unwrap();
    provider.scale(&fref("two", "team"), 3).await.unwrap();
    let created = status(&provider, &fref("one", DEFAULT_NAMESPACE)).await.created_at;
    assert!(created.is_some());
    provider.shutdown(GRACE).await;
    assert!(matches!(provider.list(DEFAULT_NAMESPACE).await, Err(Error::Unavailable { .. })));

    let reopened = fixture.open().await;
    assert_eq!(reopened.list_namespaces().await.unwrap(), ["openfaas-fn", "team"]);
    assert_eq!(reopened.get_namespace("team").await.unwrap(), team);
    let secrets = reopened.list_secrets("team").await.unwrap();
    assert_eq!(secrets.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["token"]);
    let listed = reopened.list(DEFAULT_NAMESPACE).await.unwrap();
    assert_eq!(listed.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["one"]);
    assert_eq!(listed[0].created_at, created, "createdAt is kept");
    let two = status(&reopened, &fref("two", "team")).await;
    assert_eq!(two.replicas, 3, "replicas are kept");
    wait_available(&reopened, &fref("two", "team"), 3).await;
    assert_eq!(call_ok(&reopened, &fref("one", DEFAULT_NAMESPACE), "/greeting", "").await, "hello");
    assert_eq!(call_ok(&reopened, &fref("two", "team"), "/secret/token", "").await, "t0ken");
    reopened.shutdown(GRACE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_provider_on_the_same_dir_is_refused() {
    let fixture = Fixture::new();
    let first = fixture.open().await;
    let err = LocalProvider::open(LocalConfig::new(fixture.state())).await.expect_err("the dir is locked");
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    let expected = format!(
        "state directory {} is in use by another gateway (pid {})",
        fixture.state().display(),
        std::process::id()
    );
    assert!(err.message().contains(&expected), "{}", err.message());
    first.shutdown(GRACE).await;
    let second = fixture.open().await;
    second.shutdown(GRACE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_deployments_are_invalid_naming_the_field() {
    let fixture = Fixture::new();
    let provider = fixture.open().await;
    let (field, _) = invalid_field(provider.deploy(deployment("f", DEFAULT_NAMESPACE, "", &[])).await);
    assert_eq!(field, "envProcess");
    let (field, reason) =
        invalid_field(provider.deploy(deployment("f", DEFAULT_NAMESPACE, "no-such-program-4711 --x", &[])).await);
    assert_eq!(field, "envProcess");
    assert!(reason.contains("no-such-program-4711"), "{reason}");
    let (field, _) =
        invalid_field(provider.deploy(deployment("f", DEFAULT_NAMESPACE, "cat", &[("mode", "fork")])).await);
    assert_eq!(field, "envVars.mode");
    let (field, _) = invalid_field(provider.deploy(fixture.deployment("Not_A_Name", DEFAULT_NAMESPACE)).await);
    assert_eq!(field, "service");
    let mut with_secret = fixture.deployment("f", DEFAULT_NAMESPACE);
    with_secret.secrets.push("missing".into());
    let (field, reason) = invalid_field(provider.deploy(with_secret).await);
    assert_eq!(field, "secrets");
    assert!(reason.contains("missing"), "{reason}");
    match provider.deploy(fixture.deployment("f", "nowhere")).await {
        Err(Error::NotFound { kind: "namespace", name }) => assert_eq!(name, "nowhere"),
        other => panic!("expected NotFound namespace, got {other:?}"),
    }
    assert!(provider.list(DEFAULT_NAMESPACE).await.unwrap().is_empty(), "nothing refused was deployed");
    provider.shutdown(GRACE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_exits_at_once_reports_why() {
    let fixture = Fixture::new();
    let provider = fixture.open().await;
    let missing = fixture.dir.path().join("no-such-script.sh");
    let function = fref("dies", DEFAULT_NAMESPACE);
    let d = deployment("dies", DEFAULT_NAMESPACE, &format!("sh {}", missing.display()), &[("mode", "http")]);
    provider.deploy(d).await.unwrap();
    let error = wait_for("the last-error annotation", || async {
        let s = status(&provider, &function).await;
        match s.annotations.as_ref().and_then(|a| a.get(LAST_ERROR_ANNOTATION)) {
            Some(error) => Ok(error.clone()),
            None => Err(format!("available {} annotations {:?}", s.available_replicas, s.annotations)),
        }
    })
    .await;
    assert!(!error.is_empty());
    let s = status(&provider, &function).await;
    assert_eq!((s.replicas, s.available_replicas), (1, 0));
    let request = LogRequest { name: "dies".into(), namespace: DEFAULT_NAMESPACE.into(), ..LogRequest::default() };
    wait_for("a watchdog line in the logs", || async {
        let lines: Vec<_> = provider.logs(request.clone()).await.unwrap().collect().await;
        let lines: Vec<_> = lines.into_iter().map(|m| m.unwrap()).collect();
        if lines.iter().any(|m| m.instance == WATCHDOG_INSTANCE && !m.text.is_empty()) {
            Ok(())
        } else {
            Err(format!("{lines:?}"))
        }
    })
    .await;
    provider.shutdown(GRACE).await;
}

/// What a function at zero replicas does not need (its sandbox's mount
/// plan, the monitor of its health) is made when it is first scaled up: it
/// then runs, and says why when it cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployed_at_zero_then_scaled_up_runs_and_reports_why_not() {
    let fixture = Fixture::new();
    let provider = fixture.open().await;
    let echo = fref("later", DEFAULT_NAMESPACE);
    let at_zero = |d: FunctionDeployment| with_label(d, "com.openfaas.scale.min", "0");
    provider.deploy(at_zero(fixture.deployment("later", DEFAULT_NAMESPACE))).await.unwrap();
    assert_eq!(status(&provider, &echo).await.replicas, 0);
    provider.scale(&echo, 1).await.unwrap();
    assert_eq!(call_ok(&provider, &echo, "/", "hello").await, "hello");

    let dies = fref("dies-later", DEFAULT_NAMESPACE);
    let missing = fixture.dir.path().join("no-such-script.sh");
    let d = deployment("dies-later", DEFAULT_NAMESPACE, &format!("sh {}", missing.display()), &[("mode", "http")]);
    provider.deploy(at_zero(d)).await.unwrap();
    provider.scale(&dies, 1).await.unwrap();
    let request =
        LogRequest { name: "dies-later".into(), namespace: DEFAULT_NAMESPACE.into(), ..LogRequest::default() };
    wait_for("the monitor's line in the logs", || async {
        let lines: Vec<_> = provider.logs(request.clone()).await.unwrap().collect().await;
        let lines: Vec<_> = lines.into_iter().map(|m| m.unwrap()).collect();
        if lines.iter().any(|m| m.instance == WATCHDOG_INSTANCE && m.text.starts_with("instances not ready")) {
            Ok(())
        } else {
            Err(format!("{lines:?}"))
        }
    })
    .await;
    provider.shutdown(GRACE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_to_zero_stays_listed_and_refuses_calls() {
    let fixture = Fixture::new();
    let provider = fixture.open().await;
    let function = fref("zero", DEFAULT_NAMESPACE);
    provider.deploy(fixture.deployment("zero", DEFAULT_NAMESPACE)).await.unwrap();
    assert_eq!(call_ok(&provider, &function, "/", "before").await, "before");
    provider.scale(&function, 0).await.unwrap();
    let listed = provider.list(DEFAULT_NAMESPACE).await.unwrap();
    assert_eq!(listed.iter().map(|f| (f.name.as_str(), f.replicas)).collect::<Vec<_>>(), [("zero", 0)]);
    match call(&provider, &function, "/", "x").await {
        Err(err @ Error::Unavailable { .. }) => {
            assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(err.message().contains("scaled to zero"), "{}", err.message());
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(matches!(provider.scale(&function, 1001).await, Err(Error::Invalid { .. })));
    provider.scale(&function, 1).await.unwrap();
    wait_available(&provider, &function, 1).await;
    assert_eq!(call_ok(&provider, &function, "/", "after").await, "after");
    assert!(status(&provider, &function).await.invocation_count >= 2.0);
    provider.shutdown(GRACE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mode_runs_the_replicas_behind_the_balancer() {
    let fixture = Fixture::new();
    let server = write_http_function(fixture.dir.path(), "server.py", HTTP_SERVER).unwrap();
    let python = which_python();
    let provider = fixture.open().await;
    let function = fref("web", DEFAULT_NAMESPACE);
    let d = deployment(
        "web",
        DEFAULT_NAMESPACE,
        &format!("{python} {}", server.display()),
        &[("mode", "http"), ("NAME", "web")],
    );
    provider.deploy(with_label(d, "com.openfaas.scale.min", "2")).await.unwrap();
    assert_eq!(status(&provider, &function).await.replicas, 2);
    wait_available(&provider, &function, 2).await;
    let request = || Request::builder().uri("/ping").body(Body::empty()).unwrap();
    for _ in 0..4 {
        let response = provider.invoke(&function, request()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "pong from web");
    }
    provider.scale(&function, 1).await.unwrap();
    wait_available(&provider, &function, 1).await;
    provider.shutdown(GRACE).await;
}

/// The real python3 (not a version manager's shim), which must be installed.
fn which_python() -> String {
    let output = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is needed for the http mode test");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_drops_no_call_in_flight() {
    let fixture = Fixture::new();
    let provider = fixture.open().await;
    let function = fref("steady", DEFAULT_NAMESPACE);
    let mut d = with_label(fixture.deployment("steady", DEFAULT_NAMESPACE), "com.openfaas.scale.min", "8");
    d.env_vars.insert("VERSION".into(), "1".into());
    provider.deploy(d.clone()).await.unwrap();
    wait_available(&provider, &function, 8).await;
    let created = status(&provider, &function).await.created_at;

    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (provider, function) = (provider.clone(), function.clone());
        calls.spawn(async move { call(&provider, &function, "/slow", "").await });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.env_vars.insert("VERSION".into(), "2".into());
    provider.update(d).await.unwrap();
    for _ in 0..8 {
        let (provider, function) = (provider.clone(), function.clone());
        calls.spawn(async move { call(&provider, &function, "/slow", "").await });
    }
    let mut versions = Vec::new();
    while let Some(joined) = calls.join_next().await {
        match joined.unwrap() {
            Ok((StatusCode::OK, body)) => versions.push(body),
            other => panic!("a call around the update failed: {other:?}"),
        }
    }
    assert_eq!(versions.len(), 16);
    assert!(versions.contains(&"version=1".to_owned()) && versions.contains(&"version=2".to_owned()), "{versions:?}");
    let after = status(&provider, &function).await;
    assert_eq!(after.replicas, 8, "update keeps the replicas");
    assert_eq!(after.created_at, created, "update keeps createdAt");
    provider.shutdown(GRACE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_private_files_refreshed_on_update() {
    let fixture = Fixture::new();
    let provider = fixture.open().await;
    provider.create_secret(secret("db.password", DEFAULT_NAMESPACE, "first")).await.unwrap();
    let mut d = fixture.deployment("reader", DEFAULT_NAMESPACE);
    d.secrets.push("db.password".into());
    provider.deploy(d).await.unwrap();
    let function = fref("reader", DEFAULT_NAMESPACE);
    assert_eq!(call_ok(&provider, &function, "/secret/db.password", "").await, "first");

    let stored = fixture.state().join("secrets/openfaas-fn/db.password");
    assert_eq!(mode(&stored), 0o600);
    assert_eq!(mode(stored.parent().unwrap()), 0o700);
    let copy = fixture.state().join("run/openfaas-fn/reader/secrets/db.password");
    assert_eq!(mode(&copy), 0o600);
    assert_eq!(mode(copy.parent().unwrap()), 0o700);
    assert_eq!(mode(&fixture.state()), 0o700);

    provider.update_secret(secret("db.password", DEFAULT_NAMESPACE, "second")).await.unwrap();
    assert_eq!(call_ok(&provider, &function, "/secret/db.password", "").await, "second");
    provider.shutdown(GRACE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_state_file_is_skipped_and_the_rest_loaded() {
    let fixture = Fixture::new();
    let provider = fixture.open().await;
    provider.deploy(fixture.deployment("good", DEFAULT_NAMESPACE)).await.unwrap();
    provider.deploy(fixture.deployment("bad", DEFAULT_NAMESPACE)).await.unwrap();
    provider.create_namespace(FunctionNamespace { name: "team".into(), ..Default::default() }).await.unwrap();
    provider.deploy(fixture.deployment("member", "team")).await.unwrap();
    provider.shutdown(GRACE).await;
    std::fs::write(fixture.state().join("functions/openfaas-fn/bad.json"), b"{\"deployment\": tru").unwrap();
    std::fs::write(fixture.state().join("namespaces/team.json"), b"\0\0\0").unwrap();

    let reopened = fixture.open().await;
    let listed = reopened.list(DEFAULT_NAMESPACE).await.unwrap();
    assert_eq!(listed.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["good"]);
    assert_eq!(call_ok(&reopened, &fref("good", DEFAULT_NAMESPACE), "/", "ok").await, "ok");
    // The function whose namespace record was lost keeps its namespace.
    let team = reopened.list("team").await.unwrap();
    assert_eq!(team.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["member"]);
    assert_eq!(call_ok(&reopened, &fref("member", "team"), "/", "still").await, "still");
    reopened.shutdown(GRACE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_with_functions_cannot_be_deleted() {
    let fixture = Fixture::new();
    let provider = fixture.open().await;
    provider.create_namespace(FunctionNamespace { name: "team".into(), ..Default::default() }).await.unwrap();
    provider.deploy(fixture.deployment("f", "team")).await.unwrap();
    let (field, reason) = invalid_field(provider.delete_namespace("team").await);
    assert_eq!(field, "namespace");
    assert_eq!(reason, "namespace team still has 1 function");
    let (field, _) = invalid_field(provider.delete_namespace(DEFAULT_NAMESPACE).await);
    assert_eq!(field, "namespace");
    provider.delete(&fref("f", "team")).await.unwrap();
    provider.delete_namespace("team").await.unwrap();
    assert!(matches!(provider.list("team").await, Err(Error::NotFound { kind: "namespace", .. })));
    provider.shutdown(GRACE).await;
}
