//! The gateway built with `--features cattle`, run as a process with
//! `--provider cattle` against `cattle-test-server` (a test server built
//! from Rancher's documentation, not a real Rancher): a function deployed,
//! invoked and deleted through the gateway's HTTP API.

#![cfg(feature = "cattle")]

mod common;
mod remote;

use cattle_test_server::{Options, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_lives_and_dies_through_the_cattle_gateway() {
    let server = TestServer::start(Options::default()).await.expect("the test Cattle server starts");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut cmd = common::command(&state);
    // Outside any Rancher network: functions are reached at the ports
    // their containers publish.
    cmd.args(["--provider", "cattle"])
        .env("CATTLE_URL", server.url())
        .env("CATTLE_ACCESS_KEY", server.access_key())
        .env("CATTLE_SECRET_KEY", server.secret_key())
        .env("CATTLE_INVOKE", "public-endpoints")
        .env_remove("CATTLE_STACK");
    let gateway = common::Gateway::spawn(cmd, &state).await;
    remote::function_life(&gateway, "cattle", "rev-cattle").await;
    drop(gateway);
    server.shutdown().await;
}
