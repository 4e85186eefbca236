//! Cattle-specific behaviour against the test server: upgrades with calls
//! running, rollback of a failing upgrade, scales during and after an
//! upgrade, wrong keys, a server that is down, URL normalisation, a server
//! without secrets, and pagination.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cattle_test_server::{Options, TestServer};
use faas_core::{Error, FunctionRef, Provider, Secret, DEFAULT_NAMESPACE};
use faas_testkit::function::{watchdog_deployment, ShellFunction};
use faas_testkit::{invoke_bytes, wait_for};
use http::{HeaderMap, Method, StatusCode};
use provider_cattle::CattleProvider;

const SETTLE: Duration = Duration::from_secs(20);

async fn get(provider: &CattleProvider, function: &FunctionRef, path: &str) -> Result<(StatusCode, String), Error> {
    let (status, _, body) = invoke_bytes(provider, function, Method::GET, path, HeaderMap::new(), Vec::new()).await?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn wait_available(provider: &CattleProvider, function: &FunctionRef, replicas: u64) {
    wait_for(SETTLE, &format!("{function} to have {replicas} available replicas"), || async {
        let status = provider.status(function).await.map_err(|e| e.message())?;
        if status.available_replicas == replicas && status.replicas == replicas {
            Ok(())
        } else {
            Err(format!("replicas {}, available {}", status.replicas, status.available_replicas))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_with_calls_running_loses_no_call() {
    let (_server, provider) = common::start(Options::default()).await;
    let script = ShellFunction::write().expect("the conformance script is written");
    let mut deployment = script.deployment("rolling");
    deployment.env_vars.insert("VERSION".into(), "one".into());
    deployment.labels = Some([("com.openfaas.scale.min".to_owned(), "2".to_owned())].into());
    provider.deploy(deployment.clone()).await.unwrap();
    let function = deployment.function_ref();
    wait_available(&provider, &function, 2).await;

    let provider = Arc::new(provider);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ok, seen_two) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut callers = Vec::new();
    for _ in 0..4 {
        let (provider, function, stop, ok, seen_two) =
            (provider.clone(), function.clone(), stop.clone(), ok.clone(), seen_two.clone());
        callers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match get(&provider, &function, "/env/VERSION").await {
                    Ok((StatusCode::OK, text)) if text == "one" || text == "two" => {
                        ok.fetch_add(1, Ordering::SeqCst);
                        if text == "two" {
                            seen_two.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Ok((status, text)) => failures.push(format!("{status}: {text}")),
                    Err(err) => failures.push(err.message()),
                }
            }
            failures
        }));
    }
    let mut updated = deployment.clone();
    updated.env_vars.insert("VERSION".into(), "two".into());
    tokio::time::timeout(Duration::from_secs(60), provider.update(updated))
        .await
        .expect("the update finishes")
        .unwrap();
    // Keep calling a little after the update, when only new instances run.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    for caller in callers {
        failures.extend(caller.await.unwrap());
    }
    assert!(failures.is_empty(), "{} calls failed during the upgrade: {failures:?}", failures.len());
    assert!(ok.load(Ordering::SeqCst) > 20, "too few calls ran: {}", ok.load(Ordering::SeqCst));
    assert!(seen_two.load(Ordering::SeqCst) > 0, "no call reached the new version");
    assert_eq!(get(&provider, &function, "/env/VERSION").await.unwrap().1, "two");
    let status = provider.status(&function).await.unwrap();
    assert_eq!((status.replicas, status.env_vars["VERSION"].as_str()), (2, "two"), "replicas are kept");
    wait_available(&provider, &function, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_upgrade_is_rolled_back_and_the_old_version_keeps_answering() {
    let server = TestServer::start(Options::default()).await.unwrap();
    let mut config = common::config(&server);
    config.upgrade_timeout = Duration::from_secs(2);
    let provider = CattleProvider::connect(config).await.unwrap();
    let script = ShellFunction::write().expect("the conformance script is written");
    let mut deployment = script.deployment("failing");
    deployment.env_vars.insert("VERSION".into(), "good".into());
    provider.deploy(deployment.clone()).await.unwrap();
    let function = deployment.function_ref();
    wait_available(&provider, &function, 1).await;

    // The new version's program does not exist: its instances never pass
    // the health check.
    let mut broken = deployment.clone();
    broken.env_process = "/nonexistent/faas-program".into();
    broken.env_vars.insert("VERSION".into(), "broken".into());
    let provider = Arc::new(provider);
    let caller = {
        let (provider, function) = (provider.clone(), function.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for _ in 0..20 {
                answers.push(get(&provider, &function, "/env/VERSION").await.map_err(|e| e.message()));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answers
        })
    };
    let err = provider.update(broken).await.expect_err("the upgrade cannot succeed");
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    let message = err.message();
    assert!(message.contains("rolled back") && message.contains("failing"), "{message}");
    for answer in caller.await.unwrap() {
        assert_eq!(answer, Ok((StatusCode::OK, "good".to_owned())), "a call during the failed upgrade");
    }
    let status = provider.status(&function).await.unwrap();
    assert_eq!(status.env_process, script.fprocess(), "the old launch config is back");
    assert_eq!(status.env_vars["VERSION"], "good");
    assert_eq!(get(&provider, &function, "/env/VERSION").await.unwrap().1, "good");
    wait_available(&provider, &function, 1).await;
    // The service is usable again: a good update goes through.
    let mut fixed = deployment.clone();
    fixed.env_vars.insert("VERSION".into(), "fixed".into());
    provider.update(fixed).await.unwrap();
    assert_eq!(get(&provider, &function, "/env/VERSION").await.unwrap().1, "fixed");
}

/// A scale sent while an update upgrades the service (the autoscaler or a
/// cold start during a user's update) waits for the upgrade, which Rancher
/// does not let a scale change interrupt, then applies: both succeed and
/// the function ends at the new version and the new scale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_during_an_update_waits_for_the_upgrade_then_applies() {
    let server = TestServer::start(Options::default()).await.unwrap();
    let mut config = common::config(&server);
    // Long pauses between batches: upgrading two instances takes seconds.
    config.upgrade_interval = Duration::from_millis(1500);
    let provider = Arc::new(CattleProvider::connect(config).await.unwrap());
    let script = ShellFunction::write().expect("the conformance script is written");
    let mut deployment = script.deployment("busy");
    deployment.env_vars.insert("VERSION".into(), "one".into());
    deployment.labels = Some([("com.openfaas.scale.min".to_owned(), "2".to_owned())].into());
    provider.deploy(deployment.clone()).await.unwrap();
    let function = deployment.function_ref();
    wait_available(&provider, &function, 2).await;

    let mut updated = deployment.clone();
    updated.env_vars.insert("VERSION".into(), "two".into());
    let update = {
        let provider = provider.clone();
        tokio::spawn(async move { provider.update(updated).await })
    };
    common::wait_state(&server, "busy", "upgrading").await;
    provider.scale(&function, 3).await.unwrap_or_else(|e| panic!("a scale during the upgrade: {}", e.message()));
    update.await.unwrap().unwrap_or_else(|e| panic!("the update: {}", e.message()));
    let service = common::wait_state(&server, "busy", "active").await;
    assert_eq!(service["scale"], 3, "{service}");
    assert_eq!(service["launchConfig"]["environment"]["VERSION"], "two", "{service}");
    wait_available(&provider, &function, 3).await;
    assert_eq!(get(&provider, &function, "/env/VERSION").await.unwrap().1, "two");
}

/// An upgrade another client started and left at `upgraded` does not block
/// scaling for ever: once the bounded wait has run out, the scale finishes
/// the upgrade, as an update would, and applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_settles_an_upgrade_left_unfinished() {
    let server = TestServer::start(Options::default()).await.unwrap();
    let mut config = common::config(&server);
    config.transition_timeout = Duration::from_secs(3);
    let provider = CattleProvider::connect(config).await.unwrap();
    let script = ShellFunction::write().expect("the conformance script is written");
    let mut deployment = script.deployment("stale");
    deployment.env_vars.insert("VERSION".into(), "one".into());
    provider.deploy(deployment.clone()).await.unwrap();
    let function = deployment.function_ref();
    wait_available(&provider, &function, 1).await;

    // Healthy instances are seen a tick before their service is `active`
    // (and offers `upgrade`), as on a real server.
    let service = common::wait_state(&server, "stale", "active").await;
    let mut launch_config = service["launchConfig"].clone();
    launch_config["environment"]["VERSION"] = serde_json::json!("two");
    let input = serde_json::json!({ "inServiceStrategy": {
        "launchConfig": launch_config, "startFirst": true, "batchSize": 1, "intervalMillis": 10,
    } });
    let upgrade = service["actions"]["upgrade"].as_str().unwrap();
    let (status, body) = common::rancher(&server, Method::POST, upgrade, Some(input)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    common::wait_state(&server, "stale", "upgraded").await;

    provider
        .scale(&function, 2)
        .await
        .unwrap_or_else(|e| panic!("a scale of a service left upgraded: {}", e.message()));
    let service = common::wait_state(&server, "stale", "active").await;
    assert_eq!(service["scale"], 2, "{service}");
    assert_eq!(service["launchConfig"]["environment"]["VERSION"], "two", "finished, not rolled back: {service}");
    wait_available(&provider, &function, 2).await;
}

#[tokio::test]
async fn wrong_keys_are_a_clear_unavailable_error() {
    let server = TestServer::start(Options::default()).await.unwrap();
    let mut config = common::config(&server);
    config.secret_key = "not-the-secret".into();
    let err = CattleProvider::connect(config).await.expect_err("wrong keys are refused");
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    let message = err.message();
    assert!(message.contains("401") && message.contains("access key"), "{message}");
    assert!(!message.contains("not-the-secret"), "the secret key leaks: {message}");
}

#[tokio::test]
async fn a_server_that_is_down_is_unavailable() {
    let (server, provider) = common::start(Options::default()).await;
    let config = common::config(&server);
    server.shutdown().await;
    let err = provider.list(DEFAULT_NAMESPACE).await.expect_err("the server is down");
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(err.message().contains("cannot reach the Rancher API"), "{}", err.message());
    let err = CattleProvider::connect(config).await.expect_err("nothing listens");
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn v1_and_project_urls_are_accepted() {
    let server = TestServer::start(Options::default()).await.unwrap();
    let base = server.url().trim_end_matches("/v2-beta").to_owned();
    for url in [format!("{base}/v1"), base.clone(), server.project_url(), format!("{base}/v1/projects/1a5")] {
        let mut config = common::config(&server);
        config.url = url.clone();
        let provider = CattleProvider::connect(config).await.unwrap_or_else(|e| panic!("{url}: {}", e.message()));
        assert!(provider.api_url().contains("/v2-beta"), "{url} -> {}", provider.api_url());
        provider.list(DEFAULT_NAMESPACE).await.unwrap();
    }
}

#[tokio::test]
async fn without_the_secret_schema_secrets_are_unsupported() {
    let (_server, provider) = common::start(Options { secrets: false, ..Options::default() }).await;
    assert!(!provider.capabilities().secrets);
    let secret = Secret { name: "db".into(), value: "v".into(), ..Secret::default() };
    let err = provider.create_secret(secret).await.unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    let mut deployment = watchdog_deployment("needs-secret", "cat");
    deployment.secrets = vec!["db".into()];
    let err = provider.deploy(deployment).await.unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(provider.list(DEFAULT_NAMESPACE).await.unwrap().is_empty());
}

#[tokio::test]
async fn listings_follow_pagination_and_skip_other_services() {
    let (_server, provider) = common::start(Options { page_size: 1, ..Options::default() }).await;
    for name in ["p1", "p2", "p3"] {
        provider.deploy(watchdog_deployment(name, "cat")).await.unwrap();
    }
    let mut names: Vec<String> = provider.list(DEFAULT_NAMESPACE).await.unwrap().into_iter().map(|f| f.name).collect();
    names.sort();
    assert_eq!(names, ["p1", "p2", "p3"]);
    let other = FunctionRef::new("p1", "elsewhere");
    assert!(matches!(provider.status(&other).await, Err(Error::Unsupported { .. })));
    provider.delete(&FunctionRef::new("p2", DEFAULT_NAMESPACE)).await.unwrap();
    let names: Vec<String> = provider.list(DEFAULT_NAMESPACE).await.unwrap().into_iter().map(|f| f.name).collect();
    assert_eq!(names.len(), 2, "a removed service is not listed: {names:?}");
}
