//! End to end, the production setup: the gateway image (`faas-rs/gateway:ci`,
//! faas-gateway built with `--features swarm`) runs as a Swarm service on the
//! functions' overlay network with the engine's socket mounted, and reaches
//! functions by their service names. Through its HTTP API only: deploy a
//! function, invoke it, scale to 3 and see 3 available, update its env with
//! calls running and none failing, delete it.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, Mount, MountType, NetworkAttachmentConfig,
    ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec, TaskSpecPlacement,
};
use bollard::query_parameters::{InspectServiceOptions, ListTasksOptions};
use bollard::Docker;
use faas_testkit::wait_for;
use http::{Method, StatusCode};

use common::{FUNCTION_IMAGE, GATEWAY_IMAGE, NETWORK, SETTLE, TEST_LABEL};

/// The gateway's address on the host and an HTTP client.
struct Gateway {
    base: String,
    client: common::HttpClient,
}

impl Gateway {
    async fn request(&self, method: Method, path: &str, body: &str) -> Result<(StatusCode, String), String> {
        common::request(&self.client, &self.base, method, path, body).await
    }

    async fn expect(&self, method: Method, path: &str, body: &str, expected: StatusCode) -> String {
        let (status, text) = self.request(method.clone(), path, body).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status, expected, "{method} {path}: {text}");
        text
    }

    async fn wait_available(&self, name: &str, replicas: u64) {
        wait_for(SETTLE, &format!("{name} to report {replicas} available replicas"), || async {
            let (status, text) = self.request(Method::GET, &format!("/system/function/{name}"), "").await?;
            let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{status} {text}: {e}"))?;
            let available = json["availableReplicas"].as_u64().unwrap_or(0);
            let wanted = json["replicas"].as_u64().unwrap_or(0);
            match (available, wanted) == (replicas, replicas) {
                true => Ok(()),
                false => Err(format!("replicas {wanted}, available {available}")),
            }
        })
        .await
    }
}

/// The gateway's service spec: on the functions' network, the engine's
/// socket mounted, its port published on the host.
fn gateway_spec(name: &str) -> ServiceSpec {
    let labels: HashMap<String, String> = HashMap::from([(TEST_LABEL.to_owned(), common::run_id().to_owned())]);
    ServiceSpec {
        name: Some(name.to_owned()),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(GATEWAY_IMAGE.to_owned()),
                env: Some(vec![
                    format!("FAAS_SWARM_NETWORK={NETWORK}"),
                    format!("FAAS_SWARM_LABELS={TEST_LABEL}={}", common::run_id()),
                    "RUST_LOG=info".to_owned(),
                ]),
                mounts: Some(vec![Mount {
                    typ: Some(MountType::BIND),
                    source: Some("/var/run/docker.sock".to_owned()),
                    target: Some("/var/run/docker.sock".to_owned()),
                    ..Mount::default()
                }]),
                init: Some(true),
                ..TaskSpecContainerSpec::default()
            }),
            placement: Some(TaskSpecPlacement {
                constraints: Some(vec!["node.role == manager".to_owned()]),
                ..TaskSpecPlacement::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(NETWORK.to_owned()),
                ..NetworkAttachmentConfig::default()
            }]),
            ..TaskSpec::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..ServiceSpecMode::default()
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(bollard::models::EndpointSpecModeEnum::DNSRR),
            ports: Some(vec![EndpointPortConfig {
                target_port: Some(8080),
                publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                ..EndpointPortConfig::default()
            }]),
        }),
        ..ServiceSpec::default()
    }
}

/// The host port the gateway's running task published.
async fn published_port(docker: &Docker, service: &str) -> Result<u16, String> {
    let filters = HashMap::from([
        ("service".to_owned(), vec![service.to_owned()]),
        ("desired-state".to_owned(), vec!["running".to_owned()]),
    ]);
    let tasks =
        docker.list_tasks(Some(ListTasksOptions { filters: Some(filters) })).await.map_err(|e| e.to_string())?;
    for task in tasks {
        let status = task.status.unwrap_or_default();
        let state = status.state.map(|s| s.to_string()).unwrap_or_default();
        if state != "running" {
            return Err(format!("gateway task {state}: {:?} {:?}", status.message, status.err));
        }
        let port =
            status.port_status.and_then(|p| p.ports).unwrap_or_default().into_iter().find_map(|p| p.published_port);
        if let Some(port) = port {
            return u16::try_from(port).map_err(|e| e.to_string());
        }
    }
    Err("no running gateway task yet".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_as_a_swarm_service_runs_a_function_through_its_life() {
    let Some(docker) = common::engine("gateway_service", &[GATEWAY_IMAGE, FUNCTION_IMAGE]).await else { return };
    // The network exists once a provider has started.
    drop(common::provider(docker.clone()).await);
    let prefix = common::unique("swgw");
    let gateway_name = format!("{prefix}-gateway");
    let function = format!("{prefix}-fn");
    common::with_cleanup(docker.clone(), &prefix.clone(), async move {
        docker.create_service(gateway_spec(&gateway_name), None).await.expect("create the gateway service");
        let port =
            wait_for(SETTLE, "the gateway task to run and publish its port", || published_port(&docker, &gateway_name))
                .await;
        let gateway = Gateway { base: format!("http://127.0.0.1:{port}"), client: common::http_client() };
        wait_for(SETTLE, "the gateway to answer /healthz", || async {
            match gateway.request(Method::GET, "/healthz", "").await? {
                (StatusCode::OK, _) => Ok(()),
                (status, text) => Err(format!("{status}: {text}")),
            }
        })
        .await;
        let info = gateway.expect(Method::GET, "/system/info", "", StatusCode::OK).await;
        assert!(info.contains("\"swarm\""), "the gateway serves the swarm provider: {info}");

        let deploy = serde_json::json!({
            "service": function,
            "image": FUNCTION_IMAGE,
            "envProcess": "sh /conformance.sh",
            "envVars": {"VERSION": "1"},
        });
        gateway.expect(Method::POST, "/system/functions", &deploy.to_string(), StatusCode::ACCEPTED).await;
        gateway.wait_available(&function, 1).await;
        let echoed = gateway
            .expect(Method::POST, &format!("/function/{function}/via/gateway?x=1"), "hello", StatusCode::OK)
            .await;
        assert_eq!(echoed, "method=POST\npath=/via/gateway\nquery=x=1\nheader=\nbody=hello");

        let scale = serde_json::json!({"serviceName": function, "replicas": 3});
        let path = format!("/system/scale-function/{function}");
        let (status, text) = gateway.request(Method::POST, &path, &scale.to_string()).await.expect("scale");
        assert!(status.is_success(), "scale: {status} {text}");
        gateway.wait_available(&function, 3).await;

        // Calls keep running through the rolling update; none may fail.
        let gateway = Arc::new(gateway);
        let (stop, ok, failed) =
            (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let (gateway, stop, ok, failed, path) = (
                    gateway.clone(),
                    stop.clone(),
                    ok.clone(),
                    failed.clone(),
                    format!("/function/{function}/env/VERSION"),
                );
                tokio::spawn(async move {
                    let mut saw_two = false;
                    while !stop.load(Ordering::Relaxed) {
                        match gateway.request(Method::GET, &path, "").await {
                            Ok((StatusCode::OK, body)) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                saw_two |= body == "2";
                            }
                            Ok((status, body)) => failed.lock().unwrap().push(format!("{status}: {body}")),
                            Err(e) => failed.lock().unwrap().push(e),
                        }
                    }
                    saw_two
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let update = serde_json::json!({
            "service": function,
            "image": FUNCTION_IMAGE,
            "envProcess": "sh /conformance.sh",
            "envVars": {"VERSION": "2"},
        });
        gateway.expect(Method::PUT, "/system/functions", &update.to_string(), StatusCode::ACCEPTED).await;
        wait_for(SETTLE, "the rolling update to complete", || async {
            let service =
                docker.inspect_service(&function, None::<InspectServiceOptions>).await.map_err(|e| e.to_string())?;
            match service.update_status.and_then(|u| u.state).map(|s| s.to_string()).as_deref() {
                Some("completed") => Ok(()),
                other => Err(format!("update state {other:?}")),
            }
        })
        .await;
        gateway.wait_available(&function, 3).await;
        stop.store(true, Ordering::Relaxed);
        let mut saw_two = false;
        for caller in callers {
            saw_two |= caller.await.expect("a caller does not panic");
        }
        let failed = failed.lock().unwrap().clone();
        assert!(failed.is_empty(), "{} calls failed during the update: {failed:?}", failed.len());
        assert!(ok.load(Ordering::Relaxed) > 10, "too few calls ran during the update");
        assert!(saw_two, "no call saw the updated environment");

        let delete = serde_json::json!({"functionName": function});
        gateway.expect(Method::DELETE, "/system/functions", &delete.to_string(), StatusCode::ACCEPTED).await;
        gateway.expect(Method::GET, &format!("/system/function/{function}"), "", StatusCode::NOT_FOUND).await;
    })
    .await;
}
