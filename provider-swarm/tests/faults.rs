//! The fault matrix's Swarm rows, on the real engine, through the
//! gateway's stack as `faas-gateway --provider swarm` builds it (the
//! scaling layer with its autoscaler over the provider, served by
//! `faas_core::api::router` on a real socket), one instance for the whole
//! test: nothing is restarted.
//!
//! - A task's container killed under load (`docker kill`): calls fail at
//!   most while the swarm replaces the task, then answer again.
//! - A service removed behind the gateway's back (`docker service rm`):
//!   calls get 404 once the gateway notices, and it keeps serving.
//!
//! Skipped with instructions without a usable swarm, failed on CI.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::query_parameters::{KillContainerOptions, ListTasksOptions};
use bollard::Docker;
use faas_autoscale::{Scaler, ScalingConfig};
use faas_core::api::ApiConfig;
use faas_core::{FunctionDeployment, SharedProvider};
use faas_testkit::wait_for;
use http::{Method, StatusCode};

use common::{FUNCTION_IMAGE, SETTLE};

/// The gateway's stack over the swarm provider, listening on loopback.
struct Gateway {
    base: String,
    client: common::HttpClient,
    _autoscaler: faas_autoscale::AutoscalerTask,
}

impl Gateway {
    async fn start(docker: Docker) -> Gateway {
        let provider: SharedProvider = Arc::new(common::provider(docker).await);
        let scaler = Scaler::new(provider, ScalingConfig::default());
        let autoscaler = scaler.spawn();
        let router = faas_core::api::router(Arc::new(scaler), ApiConfig::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Gateway { base: format!("http://{addr}"), client: common::http_client(), _autoscaler: autoscaler }
    }

    async fn request(&self, method: Method, path: &str, body: &str) -> Result<(StatusCode, String), String> {
        common::request(&self.client, &self.base, method, path, body).await
    }

    async fn deploy_cat(&self, name: &str) {
        let deployment = FunctionDeployment {
            service: name.to_owned(),
            image: FUNCTION_IMAGE.to_owned(),
            env_process: "cat".to_owned(),
            ..FunctionDeployment::default()
        };
        let body = serde_json::to_string(&deployment).expect("a deployment as JSON");
        let (status, text) = self.request(Method::POST, "/system/functions", &body).await.expect("deploy");
        assert_eq!(status, StatusCode::ACCEPTED, "deploy {name}: {text}");
        wait_for(SETTLE, &format!("{name} to answer"), || async {
            match self.request(Method::POST, &format!("/function/{name}"), "ping").await? {
                (StatusCode::OK, text) if text == "ping" => Ok(()),
                (status, text) => Err(format!("{status}: {text}")),
            }
        })
        .await;
    }
}

/// The ids of the containers of `service`'s tasks the engine reports
/// running.
async fn running_containers(docker: &Docker, service: &str) -> Result<Vec<String>, String> {
    let filters = HashMap::from([
        ("service".to_owned(), vec![service.to_owned()]),
        ("desired-state".to_owned(), vec!["running".to_owned()]),
    ]);
    let tasks =
        docker.list_tasks(Some(ListTasksOptions { filters: Some(filters) })).await.map_err(|e| e.to_string())?;
    Ok(tasks
        .into_iter()
        .filter_map(|task| task.status)
        .filter(|status| status.state.map(|s| s.to_string()).as_deref() == Some("running"))
        .filter_map(|status| status.container_status.and_then(|c| c.container_id))
        .collect())
}

/// One call's outcome and when it was answered.
type Outcome = (Instant, Result<StatusCode, String>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_task_fails_calls_only_until_the_swarm_replaces_it() {
    let Some(docker) = common::engine("faults", &[FUNCTION_IMAGE]).await else { return };
    let name = common::unique("swkill");
    common::with_cleanup(docker.clone(), &name.clone(), async move {
        let gateway = Arc::new(Gateway::start(docker.clone()).await);
        gateway.deploy_cat(&name).await;
        let container = wait_for(SETTLE, "one running container", || async {
            match running_containers(&docker, &name).await?.as_slice() {
                [one] => Ok(one.clone()),
                other => Err(format!("running containers: {other:?}")),
            }
        })
        .await;

        // Load: two callers in a loop for the whole test.
        let (stop, outcomes) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::<Outcome>::new())));
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let (gateway, stop, outcomes, path) =
                    (gateway.clone(), stop.clone(), outcomes.clone(), format!("/function/{name}"));
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let outcome =
                            gateway.request(Method::POST, &path, "under load").await.map(|(status, _)| status);
                        let failed = !matches!(outcome, Ok(StatusCode::OK));
                        outcomes.lock().unwrap().push((Instant::now(), outcome));
                        if failed {
                            // Failures come fast; do not spin on them.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;

        let killed_at = Instant::now();
        docker
            .kill_container(&container, Some(KillContainerOptions { signal: "SIGKILL".to_owned() }))
            .await
            .expect("docker kill the task's container");
        // The swarm's replacement: another container running.
        let replacement = wait_for(SETTLE, "the swarm to run a replacement container", || async {
            let running = running_containers(&docker, &name).await?;
            match running.iter().find(|id| **id != container) {
                Some(id) => Ok(id.clone()),
                None => Err(format!("running containers: {running:?}")),
            }
        })
        .await;
        let replaced_at = Instant::now();
        // Then calls must answer again, without restarting anything.
        wait_for(SETTLE, "calls to answer 200 again after the replacement", || async {
            let tail: Vec<_> = outcomes.lock().unwrap().iter().rev().take(10).cloned().collect();
            match tail.len() == 10 && tail.iter().all(|(at, o)| *at > replaced_at && matches!(o, Ok(StatusCode::OK))) {
                true => Ok(()),
                false => Err(format!("last outcomes: {:?}", tail.iter().map(|(_, o)| o).collect::<Vec<_>>())),
            }
        })
        .await;
        stop.store(true, Ordering::Relaxed);
        for caller in callers {
            caller.await.expect("a caller does not panic");
        }

        let outcomes = outcomes.lock().unwrap().clone();
        let failures: Vec<_> = outcomes.iter().filter(|(_, o)| !matches!(o, Ok(StatusCode::OK))).collect();
        let last_failure = failures.iter().map(|(at, _)| *at).max();
        // The swarm reports the new task running before its watchdog
        // listens and its health check passes: that start is part of the
        // replacement, bounded here by 10 s.
        const STARTING: Duration = Duration::from_secs(10);
        if let Some(last) = last_failure {
            assert!(
                last <= replaced_at + STARTING,
                "calls failed {:?} after the replacement container {replacement} was running: {:?}",
                last - replaced_at,
                failures.iter().map(|(_, o)| o).collect::<Vec<_>>()
            );
        }
        for (at, outcome) in &failures {
            assert!(*at >= killed_at, "a call failed before the kill: {outcome:?}");
        }
        let ok = outcomes.len() - failures.len();
        assert!(ok > 20, "too few calls answered: {ok}");
        eprintln!(
            "docker kill: replacement running after {:?}; {} of {} calls failed, the last {:?} after the kill; \
             statuses: {:?}",
            replaced_at - killed_at,
            failures.len(),
            outcomes.len(),
            last_failure.map(|last| last - killed_at),
            failures.iter().map(|(_, o)| o.clone()).collect::<std::collections::BTreeSet<_>>()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_removed_behind_the_gateways_back_is_404_and_the_gateway_keeps_serving() {
    let Some(docker) = common::engine("faults", &[FUNCTION_IMAGE]).await else { return };
    let name = common::unique("swgone");
    common::with_cleanup(docker.clone(), &name.clone(), async move {
        let gateway = Gateway::start(docker.clone()).await;
        gateway.deploy_cat(&name).await;
        // The gateway knows the function well: listed, called.
        let (status, list) = gateway.request(Method::GET, "/system/functions", "").await.expect("list");
        assert!(status == StatusCode::OK && list.contains(&name), "{status}: {list}");

        let removed_at = Instant::now();
        docker.delete_service(&name).await.expect("docker service rm");
        let path = format!("/function/{name}");
        let mut seen = Vec::new();
        let took = loop {
            let (status, text) = gateway.request(Method::POST, &path, "still there?").await.expect("an answer");
            seen.push(status);
            match status {
                StatusCode::NOT_FOUND => break removed_at.elapsed(),
                // What the gateway may say until it notices.
                StatusCode::OK | StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(removed_at.elapsed() < SETTLE, "no 404 within {SETTLE:?}: {seen:?}, last {text}");
                }
                other => panic!("a call to the removed service got {other}: {text}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        // It stays 404, everywhere, and the gateway still serves.
        for _ in 0..3 {
            let (status, text) = gateway.request(Method::POST, &path, "still there?").await.expect("a call");
            assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
        }
        let (status, text) = gateway.request(Method::GET, &format!("/system/function/{name}"), "").await.unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
        let (status, list) = gateway.request(Method::GET, "/system/functions", "").await.expect("list");
        assert!(status == StatusCode::OK && !list.contains(&name), "{status}: {list}");
        // Deploying the name again works at once: nothing stale is kept.
        gateway.deploy_cat(&name).await;
        eprintln!("docker service rm: 404 after {took:?}; statuses on the way: {seen:?}");
    })
    .await;
}
