//! What the gateway tests against remote orchestrators' test servers
//! share: one function's whole life through the gateway's HTTP API.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;

use crate::common::{Gateway, WAIT};

/// Checks `/system/info` names `orchestration`, then deploys `name`
/// (`rev` as its process), waits until it is available, invokes it,
/// deletes it and waits until it is gone.
pub async fn function_life(gateway: &Gateway, orchestration: &str, name: &str) {
    let (status, body) = gateway.get("/system/info").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["provider"]["orchestration"], orchestration, "{body}");

    gateway.deploy(json!({"service": name, "image": "faas-rs/rev:latest", "envProcess": "rev"})).await;
    let status = gateway.wait_available(name, 1).await;
    assert_eq!(status["image"], "faas-rs/rev:latest", "{status}");

    let (status, body) = gateway.call("POST", &format!("/function/{name}"), "hello gateway\n").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "yawetag olleh\n"), "invoke {name}");

    let (status, body) = gateway.call("DELETE", "/system/functions", json!({ "functionName": name }).to_string()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "delete {name}: {body}");
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = gateway.get(&format!("/system/function/{name}")).await;
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(Instant::now() < deadline, "{name} is still there after its delete: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = gateway.get("/system/functions").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "[]"), "nothing is left");
}
