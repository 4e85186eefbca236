//! The Swarm provider's own behaviour on the real engine: errors that
//! leave nothing behind, the service spec as the engine stores it, secrets
//! and read-only root filesystems inside containers, busybox utilities as
//! fork-mode functions, an http-mode function, and rolling updates under
//! load. Skipped with instructions without a usable swarm, failed on CI.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::{InspectContainerOptions, InspectServiceOptions, ListTasksOptions};
use bollard::Docker;
use faas_core::{Error, FunctionDeployment, FunctionRef, FunctionResources, Provider, Secret, DEFAULT_NAMESPACE};
use faas_testkit::{invoke_bytes, wait_for};
use http::{HeaderMap, Method, StatusCode};
use provider_swarm::{InvokeMode, SwarmConfig, SwarmProvider};

use common::{FUNCTION_IMAGE, HTTP_IMAGE, SETTLE};

fn deployment(name: &str, image: &str, env_process: &str) -> FunctionDeployment {
    FunctionDeployment {
        service: name.to_owned(),
        image: image.to_owned(),
        env_process: env_process.to_owned(),
        ..FunctionDeployment::default()
    }
}

async fn call(provider: &SwarmProvider, function: &FunctionRef, path: &str, body: &[u8]) -> (StatusCode, String) {
    let result = invoke_bytes(provider, function, Method::POST, path, HeaderMap::new(), body.to_vec()).await;
    let (status, _, bytes) = result.unwrap_or_else(|e| panic!("POST {path} on {function}: {}", e.message()));
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn wait_available(provider: &SwarmProvider, function: &FunctionRef, replicas: u64) {
    wait_for(SETTLE, &format!("{function} to have {replicas} available replicas"), || async {
        let status = provider.status(function).await.map_err(|e| e.message())?;
        match status.available_replicas == replicas && status.replicas == replicas {
            true => Ok(()),
            false => Err(format!("replicas {}, available {}", status.replicas, status.available_replicas)),
        }
    })
    .await
}

/// The health check command of the service's running container.
async fn container_health_check(docker: &Docker, service: &str) -> Vec<String> {
    let filters = HashMap::from([
        ("service".to_owned(), vec![service.to_owned()]),
        ("desired-state".to_owned(), vec!["running".to_owned()]),
    ]);
    let tasks = docker.list_tasks(Some(ListTasksOptions { filters: Some(filters) })).await.expect("list tasks");
    let container = tasks
        .into_iter()
        .find_map(|t| t.status.and_then(|s| s.container_status).and_then(|c| c.container_id))
        .expect("a running task with a container");
    let inspected = docker.inspect_container(&container, None::<InspectContainerOptions>).await.expect("inspect");
    inspected.config.and_then(|c| c.healthcheck).and_then(|h| h.test).unwrap_or_default()
}

#[tokio::test]
async fn an_unreachable_engine_is_unavailable_with_the_reason() {
    // A socket file nobody listens on: connections are refused.
    let dir = tempfile::tempdir().expect("a temporary dir");
    let path = dir.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind a socket"));
    let docker = Docker::connect_with_unix(path.to_str().unwrap(), 5, bollard::API_DEFAULT_VERSION)
        .expect("a client for a socket path can be built");
    let err = SwarmProvider::new(docker, SwarmConfig::default()).await.expect_err("no engine there");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE, "{}", err.message());
    assert!(err.message().contains("cannot reach the Docker engine"), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_starting_at_once_share_the_network_one_of_them_creates() {
    // What parallel tests and gateways starting together do: several race to
    // create a network that does not exist yet. Every one must start, on the
    // same network (a swarm manager answers the losers with a 500 "name
    // conflicts", which once failed a CI run).
    let Some(docker) = common::engine("providers_starting_at_once", &[]).await else { return };
    let network = common::unique("swnet");
    let mut config = common::config(InvokeMode::Published { host: None });
    config.network = network.clone();
    let starts = (0..6).map(|_| SwarmProvider::new(docker.clone(), config.clone()));
    let outcomes: Vec<Result<String, String>> = futures_util::future::join_all(starts)
        .await
        .into_iter()
        .map(|p| p.map(|p| p.network_id().to_owned()).map_err(|e| e.message()))
        .collect();
    // The network carries the run's label, so `.ci/run` sweeps it should
    // this removal not happen.
    let removed = docker.remove_network(&network).await;
    let ids: Vec<String> = outcomes.into_iter().collect::<Result<_, _>>().expect("every provider starts");
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "the providers ended on different networks: {ids:?}");
    removed.expect("the network the providers created can be removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_images_and_secrets_are_refused_before_anything_is_created() {
    let Some(docker) = common::engine("missing_images_and_secrets", &[FUNCTION_IMAGE]).await else { return };
    let provider = common::provider(docker.clone()).await;
    let name = common::unique("swmiss");
    common::with_cleanup(docker.clone(), &name.clone(), async move {
        let err = provider
            .deploy(deployment(&name, "faas-rs/never-built:none", "cat"))
            .await
            .expect_err("an image the engine lacks is refused");
        assert!(matches!(&err, Error::Invalid { field, .. } if field == "image"), "{err:?}");
        assert!(err.message().contains("not present on the Docker engine"), "{}", err.message());

        let mut with_secret = deployment(&name, FUNCTION_IMAGE, "cat");
        with_secret.secrets.push(format!("{name}-nosuch"));
        let err = provider.deploy(with_secret).await.expect_err("a missing secret is refused");
        assert!(matches!(&err, Error::Invalid { field, .. } if field == "secrets"), "{err:?}");

        let inspected = docker.inspect_service(&name, None::<InspectServiceOptions>).await;
        assert!(inspected.is_err(), "a refused deployment left a service behind: {inspected:?}");
        let listed = provider.list(DEFAULT_NAMESPACE).await.expect("list");
        assert!(!listed.iter().any(|f| f.name == name), "a refused deployment is listed");

        let err = provider.list("other-namespace").await.expect_err("only the default namespace exists");
        assert_eq!(err.status(), StatusCode::NOT_IMPLEMENTED);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_spec_carries_the_deployment_and_containers_see_it() {
    let Some(docker) = common::engine("service_spec", &[FUNCTION_IMAGE]).await else { return };
    let provider = common::provider(docker.clone()).await;
    let name = common::unique("swspec");
    common::with_cleanup(docker.clone(), &name.clone(), async move {
        let secret = format!("{name}-token");
        let value = b"s3cret\0bytes\n".to_vec();
        let created = provider
            .create_secret(Secret { name: secret.clone(), raw_value: value.clone(), ..Secret::default() })
            .await;
        created.expect("create the secret");

        let mut d = deployment(&name, FUNCTION_IMAGE, "sh /conformance.sh");
        d.env_vars.insert("GREETING".into(), "hello swarm".into());
        d.labels = Some(BTreeMap::from([("team".into(), "blue".into())]));
        d.annotations = Some(BTreeMap::from([("topic".into(), "tests".into())]));
        d.limits = Some(FunctionResources { memory: "64Mi".into(), cpu: "500m".into() });
        d.requests = Some(FunctionResources { memory: "8Mi".into(), cpu: "10m".into() });
        d.constraints = vec!["node.role == manager".into()];
        d.secrets = vec![secret.clone()];
        d.read_only_root_filesystem = true;
        provider.deploy(d.clone()).await.expect("deploy");
        let function = d.function_ref();

        let service = docker.inspect_service(&name, None::<InspectServiceOptions>).await.expect("the service exists");
        let spec = service.spec.expect("a spec");
        let labels = spec.labels.expect("labels");
        assert_eq!(labels.get("com.openfaas.function"), Some(&name));
        assert_eq!(labels.get("team").map(String::as_str), Some("blue"));
        assert_eq!(labels.get("com.openfaas.annotations.topic").map(String::as_str), Some("tests"));
        let task = spec.task_template.expect("a task template");
        let container = task.container_spec.expect("a container spec");
        assert_eq!(container.read_only, Some(true));
        assert_eq!(container.init, Some(true));
        assert!(container.env.unwrap().contains(&"fprocess=sh /conformance.sh".to_owned()));
        let limits = task.resources.as_ref().and_then(|r| r.limits.clone()).expect("limits");
        assert_eq!((limits.memory_bytes, limits.nano_cpus), (Some(64 << 20), Some(500_000_000)));
        let reservations = task.resources.and_then(|r| r.reservations).expect("reservations");
        assert_eq!((reservations.memory_bytes, reservations.nano_cpus), (Some(8 << 20), Some(10_000_000)));
        assert_eq!(task.placement.and_then(|p| p.constraints).unwrap_or_default(), ["node.role == manager"]);
        let update = spec.update_config.expect("an update config");
        assert_eq!(update.order.map(|o| o.to_string()).as_deref(), Some("start-first"));

        wait_available(&provider, &function, 1).await;
        // The engine reports the service's health check under a name
        // bollard does not read back; the running container shows it.
        let health = container_health_check(&docker, &name).await;
        assert_eq!(health, ["CMD", "/usr/bin/faas-healthcheck"]);
        let status = provider.status(&function).await.expect("status");
        assert_eq!(status.to_deployment().limits, d.limits, "limits read back as written");
        assert!(status.created_at.is_some());

        let (code, body) = call(&provider, &function, "/env/GREETING", b"").await;
        assert_eq!((code, body.as_str()), (StatusCode::OK, "hello swarm"));
        let result =
            invoke_bytes(&provider, &function, Method::GET, &format!("/secret/{secret}"), HeaderMap::new(), Vec::new())
                .await;
        let (code, _, bytes) = result.expect("read the secret");
        assert_eq!((code, bytes.to_vec()), (StatusCode::OK, value), "the secret mounted at /var/openfaas/secrets");

        // Read-only root: the function cannot write outside its mounts.
        let mut writer = deployment(&format!("{name}-ro"), FUNCTION_IMAGE, "touch /written");
        writer.read_only_root_filesystem = true;
        provider.deploy(writer.clone()).await.expect("deploy the writer");
        wait_available(&provider, &writer.function_ref(), 1).await;
        let (code, body) = call(&provider, &writer.function_ref(), "/", b"").await;
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR, "writing / succeeded: {body}");
        assert!(body.contains("Read-only file system"), "{body}");

        // A secret in use cannot be deleted; once the function is gone it can.
        let err = provider.delete_secret(DEFAULT_NAMESPACE, &secret).await.expect_err("in use");
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
        provider.delete(&function).await.expect("delete");
        provider.delete_secret(DEFAULT_NAMESPACE, &secret).await.expect("delete the secret");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busybox_utilities_and_http_mode_serve_calls() {
    let Some(docker) = common::engine("utilities_and_http_mode", &[FUNCTION_IMAGE, HTTP_IMAGE]).await else {
        return;
    };
    let provider = common::provider(docker.clone()).await;
    let name = common::unique("swutil");
    common::with_cleanup(docker.clone(), &name.clone(), async move {
        let wc = deployment(&format!("{name}-wc"), FUNCTION_IMAGE, "wc -c");
        let mut http = deployment(&format!("{name}-http"), HTTP_IMAGE, "");
        http.env_vars.insert("GREETING".into(), "hi".into());
        provider.deploy(wc.clone()).await.expect("deploy wc");
        provider.deploy(http.clone()).await.expect("deploy the http-mode function");
        wait_available(&provider, &wc.function_ref(), 1).await;
        wait_available(&provider, &http.function_ref(), 1).await;

        let (code, body) = call(&provider, &wc.function_ref(), "/", &[b'x'; 12345]).await;
        assert_eq!((code, body.trim()), (StatusCode::OK, "12345"));
        let result =
            invoke_bytes(&provider, &http.function_ref(), Method::GET, "/", HeaderMap::new(), Vec::new()).await;
        let (code, _, bytes) = result.expect("call the http-mode function");
        assert_eq!(
            (code, String::from_utf8_lossy(&bytes).as_ref()),
            (StatusCode::OK, "http-mode method=GET greeting=hi")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_roll_without_failed_calls_and_scale_spreads_them() {
    let Some(docker) = common::engine("rolling_update", &[FUNCTION_IMAGE]).await else { return };
    let provider = Arc::new(common::provider(docker.clone()).await);
    let name = common::unique("swroll");
    common::with_cleanup(docker.clone(), &name.clone(), async move {
        let mut d = deployment(&name, FUNCTION_IMAGE, "sh /conformance.sh");
        d.env_vars.insert("VERSION".into(), "1".into());
        let function = d.function_ref();
        provider.deploy(d.clone()).await.expect("deploy");
        wait_available(&provider, &function, 1).await;
        provider.scale(&function, 2).await.expect("scale to 2");
        wait_available(&provider, &function, 2).await;

        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(std::sync::Mutex::new(Vec::new())));
        let caller = {
            let (provider, function, stop, ok, failed) =
                (provider.clone(), function.clone(), stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                let mut seen_two = false;
                while !stop.load(Ordering::Relaxed) {
                    let result = invoke_bytes(
                        provider.as_ref(),
                        &function,
                        Method::GET,
                        "/env/VERSION",
                        HeaderMap::new(),
                        Vec::new(),
                    )
                    .await;
                    match result {
                        Ok((StatusCode::OK, _, body)) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            seen_two |= body.as_ref() == b"2";
                        }
                        Ok((status, _, body)) => failed.lock().unwrap().push(format!("{status}: {body:?}")),
                        Err(e) => failed.lock().unwrap().push(e.message()),
                    }
                }
                seen_two
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut updated = d.clone();
        updated.env_vars.insert("VERSION".into(), "2".into());
        provider.update(updated).await.expect("update");
        // Until the rolling update completed on the engine.
        wait_for(SETTLE, "the rolling update to complete", || async {
            let service =
                docker.inspect_service(&name, None::<InspectServiceOptions>).await.map_err(|e| e.to_string())?;
            let state = service.update_status.and_then(|u| u.state).map(|s| s.to_string());
            match state.as_deref() {
                Some("completed") => Ok(()),
                other => Err(format!("update state {other:?}")),
            }
        })
        .await;
        wait_available(&provider, &function, 2).await;
        stop.store(true, Ordering::Relaxed);
        let seen_two = caller.await.expect("the caller does not panic");
        let failed = failed.lock().unwrap().clone();
        assert!(failed.is_empty(), "{} calls failed during the update: {failed:?}", failed.len());
        assert!(ok.load(Ordering::Relaxed) > 10, "too few calls ran during the update");
        assert!(seen_two, "no call saw the updated environment");
        let status = provider.status(&function).await.expect("status");
        assert_eq!(status.env_vars.get("VERSION").map(String::as_str), Some("2"));
        assert_eq!(status.replicas, 2, "an update keeps the replicas");
    })
    .await;
}

/// The texts of `function`'s log lines, as `GET /system/logs` serves them.
async fn log_texts(provider: &SwarmProvider, function: &FunctionRef) -> Vec<String> {
    use futures_util::StreamExt;
    let request = faas_core::LogRequest {
        name: function.name.clone(),
        namespace: function.namespace.clone(),
        tail: 100,
        ..faas_core::LogRequest::default()
    };
    match provider.logs(request).await {
        Ok(stream) => stream.filter_map(|m| async move { m.ok().map(|m| m.text) }).collect().await,
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdogs_call_lines_reach_the_logs_unless_log_calls_is_false() {
    let Some(docker) = common::engine("call_log_lines", &[FUNCTION_IMAGE, HTTP_IMAGE]).await else { return };
    let provider = common::provider(docker.clone()).await;
    let name = common::unique("swlog");
    common::with_cleanup(docker.clone(), &name.clone(), async move {
        let fork = deployment(&format!("{name}-fork"), FUNCTION_IMAGE, "cat");
        let mut quiet = deployment(&format!("{name}-quiet"), FUNCTION_IMAGE, "cat");
        quiet.env_vars.insert("log_calls".into(), "false".into());
        let http = deployment(&format!("{name}-http"), HTTP_IMAGE, "");
        for d in [&fork, &quiet, &http] {
            provider.deploy(d.clone()).await.expect("deploy");
        }
        for d in [&fork, &quiet, &http] {
            wait_available(&provider, &d.function_ref(), 1).await;
        }
        assert_eq!(call(&provider, &fork.function_ref(), "/", b"12345").await, (StatusCode::OK, "12345".into()));
        assert_eq!(call(&provider, &quiet.function_ref(), "/", b"12345").await, (StatusCode::OK, "12345".into()));
        // busybox httpd serves GET (a POST to a non-CGI path is its 501).
        let result =
            invoke_bytes(&provider, &http.function_ref(), Method::GET, "/", HeaderMap::new(), Vec::new()).await;
        let (code, _, bytes) = result.expect("call the http-mode function");
        let body = String::from_utf8_lossy(&bytes).into_owned();
        assert_eq!(code, StatusCode::OK, "{body}");

        let provider = &provider;
        let (fork_ref, quiet_ref, http_ref) = (fork.function_ref(), quiet.function_ref(), http.function_ref());
        let fork_ref = &fork_ref;
        wait_for(SETTLE, "the fork call's lines in the logs", || async move {
            let texts = log_texts(provider, fork_ref).await;
            let forking = texts.iter().any(|t| t.ends_with("Forking fprocess."));
            let wrote = texts.iter().any(|t| t.contains("Wrote 5 Bytes - Duration: "));
            if forking && wrote {
                Ok(())
            } else {
                Err(format!("{texts:?}"))
            }
        })
        .await;
        let http_line = format!("GET / - 200 OK - ContentLength: {}B (", body.len());
        wait_for(SETTLE, "the http call's line in the logs", || {
            let http_line = http_line.clone();
            let http = http_ref.clone();
            async move {
                let texts = log_texts(provider, &http).await;
                if texts.iter().any(|t| t.contains(&http_line)) {
                    Ok(())
                } else {
                    Err(format!("{texts:?}"))
                }
            }
        })
        .await;
        let texts = log_texts(provider, &quiet_ref).await;
        assert!(texts.iter().all(|t| !t.contains("Forking fprocess.") && !t.contains("Wrote ")), "{texts:?}");
    })
    .await;
}
