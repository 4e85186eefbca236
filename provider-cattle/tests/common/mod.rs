//! What the tests share: a test Cattle server and a provider connected to
//! it, configured for fast convergence.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cattle_test_server::{Options, TestServer};
use faas_core::FunctionDeployment;
use provider_cattle::{CattleConfig, CattleProvider, HealthCheck, Routing};

/// The provider's configuration for `server`: public-endpoint routing
/// (the tests run outside any Rancher network) and short intervals.
pub fn config(server: &TestServer) -> CattleConfig {
    let mut config = CattleConfig::new(server.url(), server.access_key(), server.secret_key());
    config.stack = "faas-test".to_owned();
    config.routing = Routing::PublicEndpoints;
    config.health_check = HealthCheck {
        interval: Duration::from_millis(100),
        response_timeout: Duration::from_millis(1000),
        healthy_threshold: 1,
        unhealthy_threshold: 3,
        initializing_timeout: Duration::from_secs(30),
    };
    config.upgrade_interval = Duration::from_millis(50);
    config.upgrade_timeout = Duration::from_secs(20);
    config.transition_timeout = Duration::from_secs(20);
    config.poll_interval = Duration::from_millis(25);
    config.request_timeout = Duration::from_secs(10);
    config
}

/// A server with `options` and a provider connected to it.
pub async fn start(options: Options) -> (TestServer, CattleProvider) {
    let server = TestServer::start(options).await.expect("the test server starts");
    let provider = CattleProvider::connect(config(&server)).await.expect("the provider connects");
    (server, provider)
}

/// Writes the conformance script and returns the directory (keep it alive)
/// and the `fprocess` that runs it.
pub fn script() -> (Arc<tempfile::TempDir>, String) {
    let dir = Arc::new(tempfile::tempdir().expect("a temporary dir"));
    let script = faas_testkit::function::write_shell_script(dir.path()).expect("the conformance script is written");
    (dir, format!("sh {}", script.display()))
}

/// A deployment of the conformance script as `name`.
pub fn deployment(name: &str, fprocess: &str) -> FunctionDeployment {
    FunctionDeployment {
        service: name.to_owned(),
        image: "faas-testkit/conformance-sh:latest".to_owned(),
        env_process: fprocess.to_owned(),
        env_vars: BTreeMap::from([("mode".to_owned(), "streaming".to_owned())]),
        ..FunctionDeployment::default()
    }
}
