//! What the Swarm tests share: finding a usable engine (or skipping with
//! instructions, failing instead on CI), the test images, labels that mark
//! every object a run creates, and cleanup.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::time::Duration;

use bollard::query_parameters::{ListSecretsOptions, ListServicesOptions};
use bollard::Docker;
use futures_util::FutureExt;
use provider_swarm::{InvokeMode, SwarmConfig, SwarmProvider};

/// The label on everything the tests create, valued with the run's id;
/// `.ci/run` removes whatever still carries it when it exits.
pub const TEST_LABEL: &str = "faas-rs.test";
/// The fork-mode test function: fwatchdog, busybox and /conformance.sh.
pub const FUNCTION_IMAGE: &str = "faas-rs/test-fn:ci";
/// The http-mode test function.
pub const HTTP_IMAGE: &str = "faas-rs/test-http:ci";
/// The gateway built with `--features swarm`.
pub const GATEWAY_IMAGE: &str = "faas-rs/gateway:ci";
/// The overlay network the tests' functions join.
pub const NETWORK: &str = "faas-rs-test";
/// How long eventual states may take on the engine.
pub const SETTLE: Duration = Duration::from_secs(60);

const HOW_TO_RUN: &str = "to run them: install Debian's busybox-static, put the engine in swarm mode \
     (`docker swarm init --advertise-addr <this machine's address>`), build the test images \
     (`provider-swarm/scripts/build-images.sh`), then `cargo test -p provider-swarm`";

/// This test process's run id.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        std::env::var("FAAS_SWARM_TEST_RUN")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..8].to_owned())
    })
}

/// Whether this is CI, where the engine must be there.
fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A client of a usable engine (reachable, a swarm manager, holding
/// `images`), or `None` after printing why the test is skipped and how to
/// run it. On CI (`CI` set) an unusable engine fails the test instead.
pub async fn engine(test: &str, images: &[&str]) -> Option<Docker> {
    match check_engine(images).await {
        Ok(docker) => Some(docker),
        Err(reason) if on_ci() => panic!("{test}: no usable Docker swarm on CI: {reason}; {HOW_TO_RUN}"),
        Err(reason) => {
            eprintln!("skipped: {test}: no usable Docker swarm: {reason}; {HOW_TO_RUN}");
            None
        }
    }
}

async fn check_engine(images: &[&str]) -> Result<Docker, String> {
    let docker = Docker::connect_with_defaults().map_err(|e| format!("cannot connect: {e}"))?;
    let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
        .await
        .map_err(|_| "the engine did not answer within 10s".to_owned())?
        .map_err(|e| format!("the engine is unreachable: {e}"))?;
    let info = docker.info().await.map_err(|e| format!("cannot read the engine's info: {e}"))?;
    let swarm = info.swarm.unwrap_or_default();
    if swarm.control_available != Some(true) {
        return Err(format!("the engine is not a swarm manager (state {:?})", swarm.local_node_state));
    }
    for image in images {
        docker.inspect_image(image).await.map_err(|e| format!("image {image} is missing: {e}"))?;
    }
    Ok(docker)
}

/// The tests' provider configuration: their network and run label, and
/// `invoke`.
pub fn config(invoke: InvokeMode) -> SwarmConfig {
    SwarmConfig {
        network: NETWORK.to_owned(),
        invoke,
        labels: BTreeMap::from([(TEST_LABEL.to_owned(), run_id().to_owned())]),
        ..SwarmConfig::default()
    }
}

/// A provider reaching functions through the ports they publish (the test
/// process runs on the host, outside the overlay network).
pub async fn provider(docker: Docker) -> SwarmProvider {
    SwarmProvider::new(docker, config(InvokeMode::Published { host: None }))
        .await
        .unwrap_or_else(|e| panic!("the provider starts: {}", e.message()))
}

/// A name unique to this test run: `<tag>-<8 hex>`.
pub fn unique(tag: &str) -> String {
    format!("{tag}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Runs `body`, then removes every service and secret whose name starts
/// with `prefix` and that carries this run's label, even when `body`
/// panicked; then resumes the panic.
pub async fn with_cleanup<Fut: Future<Output = ()>>(docker: Docker, prefix: &str, body: Fut) {
    let outcome = AssertUnwindSafe(tokio::time::timeout(Duration::from_secs(600), body)).catch_unwind().await;
    remove_created(&docker, prefix).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("the test did not finish within 600s"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Removes this run's services and secrets named with `prefix`.
pub async fn remove_created(docker: &Docker, prefix: &str) {
    let label = format!("{TEST_LABEL}={}", run_id());
    let filters = HashMap::from([("label".to_owned(), vec![label.clone()])]);
    let services = docker
        .list_services(Some(ListServicesOptions { filters: Some(filters.clone()), ..Default::default() }))
        .await
        .unwrap_or_default();
    for service in services {
        let name = service.spec.and_then(|s| s.name).unwrap_or_default();
        if name.starts_with(prefix) {
            if let Err(e) = docker.delete_service(&name).await {
                eprintln!("cleanup: remove service {name}: {e}");
            }
        }
    }
    let secrets = docker.list_secrets(Some(ListSecretsOptions { filters: Some(filters) })).await.unwrap_or_default();
    for secret in secrets {
        let name = secret.spec.and_then(|s| s.name).unwrap_or_default();
        if name.starts_with(prefix) {
            let id = secret.id.unwrap_or_default();
            if let Err(e) = docker.delete_secret(&id).await {
                eprintln!("cleanup: remove secret {name}: {e}");
            }
        }
    }
}

/// An HTTP client of a gateway under test.
pub type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

/// A new [`HttpClient`].
pub fn http_client() -> HttpClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// `method {base}{path}` with a JSON `body`: the status and text, or why
/// there is none within 30 s.
pub async fn request(
    client: &HttpClient,
    base: &str,
    method: http::Method,
    path: &str,
    body: &str,
) -> Result<(http::StatusCode, String), String> {
    use http_body_util::BodyExt;
    let request = http::Request::builder()
        .method(method.clone())
        .uri(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body.to_owned())))
        .map_err(|e| e.to_string())?;
    let call = async {
        let response = client.request(request).await.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status();
        let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .map_err(|_| format!("{method} {path}: no answer in 30s"))?
}
