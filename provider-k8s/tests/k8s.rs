//! The provider's Kubernetes-specific promises, each against its own test
//! API server: reads served from the watch cache, conflicts retried,
//! RBAC and quota refusals, an unreachable API server, objects that are not
//! ours, both invoke modes, rolling updates without failed calls and
//! foreground deletes.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_core::{Error, FunctionRef, LogRequest, Provider, Secret, DEFAULT_NAMESPACE};
use faas_testkit::function::ShellFunction;
use faas_testkit::{invoke_bytes, wait_for};
use futures_util::StreamExt;
use http::{HeaderMap, Method, StatusCode};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, ResourceQuota, Secret as KubeSecret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, PostParams};
use kube::Api;
use provider_k8s::{InvokeMode, SCALE_MIN_LABEL};

const SETTLE: Duration = Duration::from_secs(30);

fn function(name: &str) -> FunctionRef {
    FunctionRef::new(name, DEFAULT_NAMESPACE)
}

async fn get_text(provider: &dyn Provider, function: &FunctionRef, path: &str) -> Result<(StatusCode, String), Error> {
    let (status, _, body) = invoke_bytes(provider, function, Method::GET, path, HeaderMap::new(), Vec::new()).await?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// 2,000 functions (at zero replicas: no process starts) are listed and
/// read from the watch cache: the API server counts no request other than
/// watches (a reflector may reconnect its watch at any time) while `list` and
/// `status` are called again and again; a LIST or GET per call would count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_functions_are_listed_from_the_cache() {
    const FUNCTIONS: usize = 2000;
    let server = common::server().await;
    let provider = Arc::new(common::provider(&server, InvokeMode::Endpoints).await);

    let started = Instant::now();
    let deployed: Vec<_> = futures_util::stream::iter(0..FUNCTIONS)
        .map(|i| {
            let provider = provider.clone();
            async move { provider.deploy(common::idle(&format!("fn-{i:04}"))).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let took = started.elapsed();
    for result in &deployed {
        assert!(result.is_ok(), "deploy: {result:?}");
    }
    println!("deployed {FUNCTIONS} functions in {took:?} ({} API requests so far)", server.total_requests());

    let listed = provider.list(DEFAULT_NAMESPACE).await.expect("list");
    assert_eq!(listed.len(), FUNCTIONS, "every function is listed right after its deploy");
    assert!(listed.iter().all(|f| f.replicas == 0 && f.available_replicas == 0));

    // Watch reconnects are the cache working, not list() calling the API.
    let not_watches =
        || -> u64 { server.requests_by_verb().into_iter().filter(|(verb, _)| verb != "watch").map(|(_, n)| n).sum() };
    let (lists, total) = (server.requests("list", "deployments"), not_watches());
    for round in 0..50 {
        let listed = provider.list(DEFAULT_NAMESPACE).await.expect("list");
        assert_eq!(listed.len(), FUNCTIONS);
        let status = provider.status(&function(&format!("fn-{:04}", (round * 37) % FUNCTIONS))).await.expect("status");
        assert_eq!(status.image, "faas-rs/idle:latest");
    }
    let (lists_after, total_after) = (server.requests("list", "deployments"), not_watches());
    println!(
        "deployment lists: {lists} before, {lists_after} after; requests but watches: {total} before, {total_after} after"
    );
    assert_eq!(lists_after, lists, "list() must not LIST deployments");
    assert_eq!(total_after, total, "list() and status() must not call the API server (watches aside)");
}

/// Writes refused with 409 Conflict are retried on a fresh read; more
/// conflicts than retries give a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_are_retried_then_reported() {
    let server = common::server().await;
    let provider = common::provider(&server, InvokeMode::Endpoints).await;
    let retries = provider.config().conflict_retries;
    let mut deployment = common::idle("conflicted");
    provider.deploy(deployment.clone()).await.expect("deploy");

    server.conflict_next_writes("deployments", 2);
    deployment.env_vars.insert("VERSION".into(), "2".into());
    provider.update(deployment.clone()).await.expect("an update retried past two conflicts");
    let status = provider.status(&function("conflicted")).await.expect("status");
    assert_eq!(status.env_vars.get("VERSION").map(String::as_str), Some("2"));

    server.conflict_next_writes("deployments/scale", 2);
    provider.scale(&function("conflicted"), 3).await.expect("a scale retried past two conflicts");
    assert_eq!(provider.status(&function("conflicted")).await.expect("status").replicas, 3);
    provider.scale(&function("conflicted"), 0).await.expect("scale to zero");

    server.conflict_next_writes("deployments", retries + 5);
    deployment.env_vars.insert("VERSION".into(), "3".into());
    let err = provider.update(deployment).await.expect_err("an update conflicting on every attempt");
    assert_eq!(err.status(), StatusCode::BAD_GATEWAY, "{err:?}");
    let message = err.message();
    assert!(message.contains("modified by another client"), "{message}");
    assert!(message.contains(&format!("{} attempts", retries + 1)), "{message}");
    let status = provider.status(&function("conflicted")).await.expect("status");
    assert_eq!(status.env_vars.get("VERSION").map(String::as_str), Some("2"), "the failed update took effect");
}

/// An RBAC refusal and an exhausted quota are `Forbidden` (403) with the
/// API server's message, and leave nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_and_quota_are_403_and_leave_nothing() {
    let server = common::server().await;
    let client = common::client(&server);

    // Without the right to watch deployments the provider refuses to start,
    // at once and saying why.
    server.forbid("list", "deployments", None);
    let started = Instant::now();
    let err = provider_k8s::K8sProvider::new(client.clone(), common::config(InvokeMode::Endpoints))
        .await
        .expect_err("a provider that cannot list deployments");
    println!("start refused after {:?}: {}", started.elapsed(), err.message());
    assert_eq!(err.status(), StatusCode::FORBIDDEN, "{err:?}");
    assert!(err.message().contains("forbidden"), "{}", err.message());
    server.allow_all();

    let provider = common::provider(&server, InvokeMode::Endpoints).await;
    let services: Api<Service> = Api::namespaced(client.clone(), DEFAULT_NAMESPACE);

    server.forbid("create", "deployments", Some(DEFAULT_NAMESPACE));
    let err = provider.deploy(common::idle("refused")).await.expect_err("deploy without the right to");
    assert_eq!(err.status(), StatusCode::FORBIDDEN, "{err:?}");
    assert!(matches!(err, Error::Forbidden { .. }), "{err:?}");
    assert!(err.message().contains("forbidden"), "the API server's message is kept: {}", err.message());
    assert!(matches!(provider.status(&function("refused")).await, Err(Error::NotFound { .. })));
    assert!(services.get_opt("refused").await.expect("read services").is_none(), "a service was left behind");
    server.allow_all();
    provider.deploy(common::idle("refused")).await.expect("deploy once allowed");

    let quota: ResourceQuota = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "two-deployments", "namespace": DEFAULT_NAMESPACE},
        "spec": {"hard": {"count/deployments.apps": "2"}}
    }))
    .expect("a quota");
    Api::<ResourceQuota>::namespaced(client.clone(), DEFAULT_NAMESPACE)
        .create(&PostParams::default(), &quota)
        .await
        .expect("create the quota");
    provider.deploy(common::idle("second")).await.expect("the second deployment fits the quota");
    let err = provider.deploy(common::idle("third")).await.expect_err("a deployment over the quota");
    assert_eq!(err.status(), StatusCode::FORBIDDEN, "{err:?}");
    assert!(err.message().contains("exceeded quota"), "{}", err.message());
    assert!(services.get_opt("third").await.expect("read services").is_none(), "a service was left behind");
    assert!(matches!(provider.status(&function("third")).await, Err(Error::NotFound { .. })));
}

/// With the API server gone, writes fail promptly with `Unavailable` and
/// list keeps serving the last known state; once it is back, writes work
/// and the watch cache catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_is_503_and_recovered_from() {
    let server = common::server().await;
    let provider = common::provider(&server, InvokeMode::Endpoints).await;
    provider.deploy(common::idle("before")).await.expect("deploy");

    server.pause().await;
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(20), provider.deploy(common::idle("during")))
        .await
        .expect("deploy answers while the API server is down")
        .expect_err("deploy with the API server down");
    println!("deploy failed after {:?}: {}", started.elapsed(), err.message());
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE, "{err:?}");
    let listed = provider.list(DEFAULT_NAMESPACE).await.expect("list serves the cache");
    assert!(listed.iter().any(|f| f.name == "before"), "{listed:?}");

    server.resume().await.expect("the server listens again");
    wait_for(SETTLE, "deploy to work again", || async {
        match provider.deploy(common::idle("after")).await {
            Ok(()) | Err(Error::AlreadyExists { .. }) => Ok(()),
            Err(err) => Err(err.message()),
        }
    })
    .await;
    wait_for(SETTLE, "the cache to show the function deployed after the outage", || async {
        provider.status(&function("after")).await.map(|_| ()).map_err(|e| e.message())
    })
    .await;
    // A change made by another client reaches the cache: the watch is live.
    let client = common::client(&server);
    let deployments: Api<Deployment> = Api::namespaced(client, DEFAULT_NAMESPACE);
    let patch = serde_json::json!({"spec": {"replicas": 2}});
    deployments
        .patch_scale("before", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch))
        .await
        .expect("scale by another client");
    wait_for(SETTLE, "the watch to deliver another client's change", || async {
        match provider.status(&function("before")).await {
            Ok(status) if status.replicas == 2 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

/// A Deployment or Service of the function's name that the provider did not
/// create is refused, never changed, and is not a function.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_that_are_not_ours_are_left_alone() {
    let server = common::server().await;
    let provider = common::provider(&server, InvokeMode::Endpoints).await;
    let client = common::client(&server);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), DEFAULT_NAMESPACE);
    let services: Api<Service> = Api::namespaced(client.clone(), DEFAULT_NAMESPACE);

    let foreign: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "labels": {"app": "web", "faas_function": "web"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}
            }
        }
    }))
    .expect("a deployment");
    let foreign = deployments.create(&PostParams::default(), &foreign).await.expect("create a foreign deployment");

    let err = provider.deploy(common::idle("web")).await.expect_err("deploy over a foreign deployment");
    assert_eq!(err.status(), StatusCode::CONFLICT, "{err:?}");
    assert!(err.message().contains("not managed by faas-rs"), "{}", err.message());
    // Untouched: same spec, labels and generation (the controller may
    // still write its status).
    let untouched = |after: &Deployment| {
        assert_eq!(after.metadata.generation, foreign.metadata.generation, "the foreign deployment was changed");
        assert_eq!(after.metadata.labels, foreign.metadata.labels, "the foreign deployment was relabelled");
        assert_eq!(after.spec, foreign.spec, "the foreign deployment's spec was changed");
    };
    untouched(&deployments.get("web").await.expect("the foreign deployment is still there"));
    assert!(services.get_opt("web").await.expect("read services").is_none(), "a service was created");

    assert!(!provider.list(DEFAULT_NAMESPACE).await.expect("list").iter().any(|f| f.name == "web"));
    assert!(matches!(provider.status(&function("web")).await, Err(Error::NotFound { .. })));
    assert!(matches!(provider.update(common::idle("web")).await, Err(Error::NotFound { .. })));
    assert!(matches!(provider.scale(&function("web"), 1).await, Err(Error::NotFound { .. })));
    assert!(matches!(provider.delete(&function("web")).await, Err(Error::NotFound { .. })));
    untouched(&deployments.get("web").await.expect("the foreign deployment survives"));

    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "api"},
        "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]}
    }))
    .expect("a service");
    let service = services.create(&PostParams::default(), &service).await.expect("create a foreign service");
    let err = provider.deploy(common::idle("api")).await.expect_err("deploy over a foreign service");
    assert_eq!(err.status(), StatusCode::CONFLICT, "{err:?}");
    assert!(err.message().contains("Service openfaas-fn/api"), "{}", err.message());
    assert!(deployments.get_opt("api").await.expect("read deployments").is_none(), "a deployment was created");
    let after = services.get("api").await.expect("the foreign service is still there");
    assert_eq!(after.metadata.resource_version, service.metadata.resource_version);
}

/// Calls reach the pods in both invoke modes (straight to the pod
/// addresses, and through the API server's service proxy), and an update
/// rolls without a failed call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_invoke_modes_answer_and_updates_drop_no_call() {
    let server = common::server().await;
    let endpoints = Arc::new(common::provider(&server, InvokeMode::Endpoints).await);
    let proxied = common::provider(&server, InvokeMode::ServiceProxy).await;
    let script = ShellFunction::write().expect("the conformance script is written");
    let mut deployment = script.deployment("echo");
    deployment.env_vars = BTreeMap::from([("GREETING".to_owned(), "one".to_owned())]);
    endpoints.deploy(deployment.clone()).await.expect("deploy");
    let echo = function("echo");
    wait_for(SETTLE, "echo to be available", || async {
        match endpoints.status(&echo).await {
            Ok(status) if status.available_replicas >= 1 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    let slices: Api<EndpointSlice> = Api::namespaced(common::client(&server), DEFAULT_NAMESPACE);
    let listed = slices.list(&ListParams::default().labels("kubernetes.io/service-name=echo")).await.expect("slices");
    let addresses: Vec<&String> =
        listed.items.iter().flat_map(|s| s.endpoints.iter().flatten()).flat_map(|e| &e.addresses).collect();
    assert!(!addresses.is_empty() && addresses.iter().all(|a| a.starts_with("127.77.")), "{addresses:?}");

    let proxy_calls = server.requests("proxy", "services/proxy");
    assert_eq!(
        get_text(endpoints.as_ref(), &echo, "/env/GREETING").await.expect("call"),
        (StatusCode::OK, "one".into())
    );
    assert_eq!(server.requests("proxy", "services/proxy"), proxy_calls, "endpoints mode went through the API server");
    let (status, body) = get_text(&proxied, &echo, "/through/proxy?x=1").await.expect("call through the proxy");
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("method=GET\npath=/through/proxy\nquery=x=1\n"), "{body:?}");
    assert!(server.requests("proxy", "services/proxy") > proxy_calls, "service-proxy mode did not use the proxy");

    // Calls in a loop, one after the other, from before the update until
    // the new version has answered five times: every one must succeed.
    let pods: Api<Pod> = Api::namespaced(common::client(&server), DEFAULT_NAMESPACE);
    let pod_names = || async {
        let listed = pods.list(&ListParams::default().labels("faas_function=echo")).await.expect("list pods");
        listed.items.into_iter().filter_map(|p| p.metadata.name).collect::<Vec<_>>()
    };
    let before = pod_names().await;
    let first_call = Arc::new(tokio::sync::Notify::new());
    let caller = {
        let (provider, first_call) = (endpoints.clone(), first_call.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            let (mut seen, mut errors) = (BTreeMap::<String, u64>::new(), Vec::new());
            while seen.get("two").copied().unwrap_or(0) < 5 && Instant::now() < deadline {
                match get_text(provider.as_ref(), &echo_ref(), "/env/GREETING").await {
                    Ok((StatusCode::OK, text)) => *seen.entry(text).or_default() += 1,
                    other => errors.push(format!("{other:?}")),
                }
                first_call.notify_one();
            }
            (seen, errors)
        })
    };
    first_call.notified().await;
    deployment.env_vars.insert("GREETING".into(), "two".into());
    endpoints.update(deployment).await.expect("update");
    let (seen, errors) = caller.await.expect("the calling task");
    let calls: u64 = seen.values().sum::<u64>() + errors.len() as u64;
    println!("{calls} calls during the rolling update: {seen:?}, {} failed", errors.len());
    assert!(errors.is_empty(), "calls failed during the update: {errors:?}");
    assert!(seen.get("one").is_some_and(|n| *n > 0), "no call reached the old version: {seen:?}");
    assert_eq!(seen.get("two"), Some(&5), "the new version did not answer: {seen:?}");
    assert_eq!(seen.len(), 2, "{seen:?}");
    wait_for(SETTLE, "the old pod to be replaced", || async {
        let now = pod_names().await;
        match now.len() == 1 && !before.contains(&now[0]) {
            true => Ok(()),
            false => Err(format!("pods {now:?}, before {before:?}")),
        }
    })
    .await;
    drop(proxied);
    drop(endpoints);
    server.shutdown().await;
}

fn echo_ref() -> FunctionRef {
    function("echo")
}

/// Logs come from every pod of the function, the pod name as the
/// instance; `instance` and `tail` narrow them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_merge_the_pods_and_name_them() {
    let server = common::server().await;
    let provider = common::provider(&server, InvokeMode::Endpoints).await;
    let script = ShellFunction::write().expect("the conformance script is written");
    let mut deployment = script.deployment("chatty");
    deployment.labels = Some(BTreeMap::from([(SCALE_MIN_LABEL.to_owned(), "2".to_owned())]));
    provider.deploy(deployment).await.expect("deploy");
    let chatty = function("chatty");
    wait_for(SETTLE, "two available replicas", || async {
        match provider.status(&chatty).await {
            Ok(status) if status.available_replicas == 2 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(common::client(&server), DEFAULT_NAMESPACE);
    let mut names: Vec<String> = pods
        .list(&ListParams::default().labels("faas_function=chatty"))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");

    // Round-robin spreads the calls: both pods write lines.
    for i in 0..6 {
        let (status, _) = get_text(&provider, &chatty, &format!("/log/line-{i}")).await.expect("call");
        assert_eq!(status, StatusCode::OK);
    }
    let request = LogRequest { name: "chatty".into(), namespace: DEFAULT_NAMESPACE.into(), ..LogRequest::default() };
    let read = |request: LogRequest| {
        let provider = &provider;
        async move {
            let stream = provider.logs(request).await.map_err(|e| e.message())?;
            let messages: Vec<_> = stream
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()
                .map_err(|e: Error| e.message())?;
            Ok::<Vec<faas_core::LogMessage>, String>(messages)
        }
    };
    let all = wait_for(SETTLE, "the six lines in the logs of both pods", || async {
        let messages = read(request.clone()).await?;
        let lines: Vec<_> = messages.iter().filter(|m| m.text.contains("line-")).collect();
        let mut instances: Vec<_> = lines.iter().map(|m| m.instance.clone()).collect();
        instances.sort();
        instances.dedup();
        if lines.len() == 6 && instances == names {
            Ok(messages)
        } else {
            Err(format!("{} lines from {instances:?}", lines.len()))
        }
    })
    .await;
    assert!(all.windows(2).all(|w| w[0].timestamp <= w[1].timestamp), "messages are oldest first");
    assert!(all.iter().all(|m| m.name == "chatty" && m.namespace == DEFAULT_NAMESPACE));

    let one = read(LogRequest { instance: names[0].clone(), ..request.clone() }).await.expect("logs of one pod");
    assert!(!one.is_empty() && one.iter().all(|m| m.instance == names[0]), "{one:?}");
    let tail = read(LogRequest { tail: 1, ..request.clone() }).await.expect("the last line");
    assert_eq!(tail.len(), 1, "{tail:?}");
    assert_eq!(tail[0], *all.last().expect("some lines"));
}

/// Secrets are the provider's own: a deployment naming a missing secret is
/// `Invalid` on `secrets`, and a Kubernetes Secret it did not create is
/// neither listed, mounted, changed nor deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_our_secrets_are_used() {
    let server = common::server().await;
    let provider = common::provider(&server, InvokeMode::Endpoints).await;
    let secrets: Api<KubeSecret> = Api::namespaced(common::client(&server), DEFAULT_NAMESPACE);

    let mut deployment = common::idle("needs-secret");
    deployment.secrets = vec!["api-key".into()];
    match provider.deploy(deployment.clone()).await {
        Err(Error::Invalid { field, reason }) => {
            assert_eq!(field, "secrets");
            assert!(reason.contains("api-key"), "{reason}");
        }
        other => panic!("deploy with a missing secret: {other:?}"),
    }

    let foreign: KubeSecret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "api-key"},
        "stringData": {"api-key": "not-ours"}
    }))
    .expect("a secret");
    secrets.create(&PostParams::default(), &foreign).await.expect("create a foreign secret");
    assert!(matches!(provider.deploy(deployment.clone()).await, Err(Error::Invalid { .. })));
    assert!(provider.list_secrets(DEFAULT_NAMESPACE).await.expect("list secrets").is_empty());
    let update = Secret { name: "api-key".into(), value: "mine".into(), ..Secret::default() };
    assert!(matches!(provider.update_secret(update.clone()).await, Err(Error::NotFound { .. })));
    assert!(matches!(provider.delete_secret(DEFAULT_NAMESPACE, "api-key").await, Err(Error::NotFound { .. })));
    assert!(matches!(provider.create_secret(update).await, Err(Error::AlreadyExists { .. })));
    assert!(secrets.get_opt("api-key").await.expect("read secrets").is_some(), "the foreign secret was deleted");

    let ours = Secret { name: "token".into(), raw_value: b"\0\xffraw".to_vec(), ..Secret::default() };
    provider.create_secret(ours).await.expect("create a secret");
    let stored = secrets.get("token").await.expect("the secret");
    assert_eq!(stored.data.expect("data").get("token").expect("key = name").0, b"\0\xffraw");
    deployment.secrets = vec!["token".into()];
    provider.deploy(deployment).await.expect("deploy with an existing secret");
    let status = provider.status(&function("needs-secret")).await.expect("status");
    assert_eq!(status.secrets, ["token"]);
}

/// With `cluster_wide` off the provider watches its one namespace: it
/// deploys and lists there, refuses other namespaces, lists and reads only
/// that one, and reports managing namespaces unsupported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaced_provider_serves_its_namespace_only() {
    let server = common::server().await;
    let config = provider_k8s::K8sConfig { cluster_wide: false, ..common::config(InvokeMode::Endpoints) };
    let provider = provider_k8s::K8sProvider::new(common::client(&server), config).await.expect("the provider starts");
    let caps = provider.capabilities();
    assert!(!caps.namespaces && !caps.manage_namespaces, "{caps:?}");
    assert_eq!(provider.list_namespaces().await.expect("namespaces"), [DEFAULT_NAMESPACE]);
    assert_eq!(provider.get_namespace(DEFAULT_NAMESPACE).await.expect("its namespace").name, DEFAULT_NAMESPACE);
    assert!(matches!(provider.get_namespace("other").await, Err(Error::NotFound { .. })));
    let other = faas_core::FunctionNamespace { name: "other".into(), ..Default::default() };
    assert!(matches!(provider.create_namespace(other).await, Err(Error::Unsupported { .. })));

    provider.deploy(common::idle("local")).await.expect("deploy in the provider's namespace");
    let listed = provider.list(DEFAULT_NAMESPACE).await.expect("list");
    assert_eq!(listed.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["local"]);
    let mut elsewhere = common::idle("remote");
    elsewhere.namespace = "other".into();
    assert!(matches!(provider.deploy(elsewhere).await, Err(Error::Invalid { field, .. }) if field == "namespace"));
    assert!(matches!(provider.list("other").await, Err(Error::Invalid { .. })));
}

/// Delete is foreground: as soon as it returns the function is gone for the
/// provider, but its Deployment stays, marked for deletion and held by the
/// `foregroundDeletion` finalizer, while its pod stops (a call in flight
/// keeps the pod's watchdog draining); the Deployment goes once the pod is
/// gone, and the Service with it. A background delete would have removed
/// the Deployment at once and left its pods to the garbage collector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_is_foreground_the_deployment_goes_after_its_pods() {
    use http_body_util::BodyExt;

    let server = common::server().await;
    let provider = common::provider(&server, InvokeMode::Endpoints).await;
    let client = common::client(&server);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), DEFAULT_NAMESPACE);
    let services: Api<Service> = Api::namespaced(client.clone(), DEFAULT_NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(client, DEFAULT_NAMESPACE);
    let script = ShellFunction::write().expect("the conformance script is written");
    provider.deploy(script.deployment("doomed")).await.expect("deploy");
    let doomed = function("doomed");
    wait_for(SETTLE, "doomed to be available", || async {
        match provider.status(&doomed).await {
            Ok(status) if status.available_replicas == 1 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // A call to `/cat` whose request body stays open: in flight until the
    // sender is dropped.
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(1);
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    tx.send(bytes::Bytes::from("first")).await.expect("the first chunk");
    let request = http::Request::post("/cat").body(faas_core::Body::from_stream(chunks)).expect("a request");
    let response = tokio::time::timeout(SETTLE, provider.invoke(&doomed, request))
        .await
        .expect("the call is answered in time")
        .expect("the call");
    assert_eq!(response.status(), StatusCode::OK);
    let mut answer = response.into_body();
    let echoed = answer.frame().await.expect("a first frame").expect("no error").into_data().expect("data");
    assert_eq!(echoed, "first", "the call is running in the pod");

    provider.delete(&doomed).await.expect("delete");
    assert!(matches!(provider.status(&doomed).await, Err(Error::NotFound { .. })), "gone for the provider at once");
    let deleting =
        deployments.get_opt("doomed").await.expect("read deployments").expect("the Deployment is still there");
    assert!(deleting.metadata.deletion_timestamp.is_some(), "{:?}", deleting.metadata);
    let finalizers = deleting.metadata.finalizers.clone().unwrap_or_default();
    assert!(finalizers.iter().any(|f| f == "foregroundDeletion"), "finalizers {finalizers:?}");

    wait_for(SETTLE, "its pod to be stopping while the Deployment waits for it", || async {
        let listed =
            pods.list(&ListParams::default().labels("faas_function=doomed")).await.map_err(|e| e.to_string())?;
        let stopping = listed.items.iter().filter(|p| p.metadata.deletion_timestamp.is_some()).count();
        let deployment = deployments.get_opt("doomed").await.map_err(|e| e.to_string())?;
        match (listed.items.len(), stopping, deployment) {
            (1, 1, Some(_)) => Ok(()),
            (_, _, None) => panic!("the Deployment went before its pod: a background delete"),
            (pods, stopping, Some(_)) => Err(format!("{pods} pods, {stopping} stopping")),
        }
    })
    .await;

    // The call ends, the pod stops, then the Deployment and Service go.
    drop(tx);
    let _ = tokio::time::timeout(SETTLE, answer.collect()).await;
    wait_for(SETTLE, "the Deployment, its pod and the Service to be gone", || async {
        let listed =
            pods.list(&ListParams::default().labels("faas_function=doomed")).await.map_err(|e| e.to_string())?;
        let deployment = deployments.get_opt("doomed").await.map_err(|e| e.to_string())?;
        let service = services.get_opt("doomed").await.map_err(|e| e.to_string())?;
        match (listed.items.len(), deployment.is_some(), service.is_some()) {
            (0, false, false) => Ok(()),
            (pods, deployment, service) => Err(format!("{pods} pods, deployment {deployment}, service {service}")),
        }
    })
    .await;
    drop(provider);
    server.shutdown().await;
}
