//! The controller: Deployments run as real fwatchdog processes, readiness,
//! EndpointSlices, the service proxy, rolling updates, scaling, logs and
//! secret volumes.

mod common;

use std::collections::HashMap;

use common::{assert_status, eventually, Client};
use k8s_test_server::{Options, TestServer};
use serde_json::{json, Value};

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/fn/deployments";
const SERVICES: &str = "/api/v1/namespaces/fn/services";
const PODS: &str = "/api/v1/namespaces/fn/pods";

async fn server() -> (TestServer, Client) {
    let options = Options { namespaces: vec!["fn".into()], ..Options::default() };
    let server = TestServer::start(options).await.expect("server");
    let client = Client::new(server.addr());
    (server, client)
}

async fn deployment_status(client: &Client, name: &str) -> Value {
    client.get(&format!("{DEPLOYMENTS}/{name}")).await.json()["status"].clone()
}

/// Waits until the deployment has `n` ready replicas and no others.
async fn wait_ready(client: &Client, name: &str, n: i64) -> Value {
    eventually(&format!("{name} to have {n} ready replicas"), || async {
        let status = deployment_status(client, name).await;
        let ready = status["readyReplicas"].as_i64().unwrap_or(0);
        let replicas = status["replicas"].as_i64().unwrap_or(0);
        (ready == n && replicas == n).then_some(status)
    })
    .await
}

async fn pods_of(client: &Client, name: &str) -> Vec<Value> {
    client.get(&format!("{PODS}?labelSelector=faas_function%3D{name}")).await.json()["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The pods now, by name, the pod template hash of the first one, and a
/// watch of pods from that listing on.
async fn pods_then_watch(client: &Client) -> (String, HashMap<String, Value>, common::Lines) {
    let list = client.get(PODS).await.json();
    let old_hash = list["items"][0]["metadata"]["labels"]["pod-template-hash"].as_str().unwrap().to_string();
    let pods = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["metadata"]["name"].as_str().unwrap().to_string(), p.clone()))
        .collect();
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap();
    let watch = client.stream(&format!("{PODS}?watch=1&resourceVersion={rv}")).await;
    (old_hash, pods, watch)
}

#[tokio::test]
async fn deployments_run_as_processes_behind_the_service_proxy() {
    let (server, client) = server().await;
    assert_eq!(client.post(SERVICES, &common::service("echo")).await.status, 201);
    let proxy = format!("{SERVICES}/echo:http/proxy/some/path?x=1");
    let reply = client.request("POST", &proxy, Some("text/plain"), b"hello".to_vec()).await;
    let status = assert_status(&reply, 503, "ServiceUnavailable");
    assert!(status["message"].as_str().unwrap().contains("no endpoints available for service"));
    assert_eq!(client.post(DEPLOYMENTS, &common::deployment("echo", 1, &[("fprocess", "cat")])).await.status, 201);
    let status = wait_ready(&client, "echo", 1).await;
    assert_eq!(status["availableReplicas"], 1);
    assert_eq!(status["updatedReplicas"], 1);
    assert_eq!(status["observedGeneration"], 1);
    let available = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Available").unwrap();
    assert_eq!(available["status"], "True");
    let pods = pods_of(&client, "echo").await;
    assert_eq!(pods.len(), 1);
    let pod = &pods[0];
    assert_eq!(pod["status"]["phase"], "Running");
    assert!(pod["status"]["podIP"].as_str().unwrap().starts_with("127.77."));
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    assert_eq!(pod["metadata"]["labels"]["faas_function"], "echo");
    assert!(pod["metadata"]["labels"]["pod-template-hash"].is_string());
    // The proxy forwards the body and the function's response streams back.
    let reply = eventually("the proxy to answer", || async {
        let reply = client.request("POST", &proxy, Some("text/plain"), b"hello".to_vec()).await;
        (reply.status == 200).then_some(reply)
    })
    .await;
    assert_eq!(reply.text(), "hello");
    let big = vec![b'x'; 3 * 1024 * 1024 + 17];
    let reply =
        client.request("POST", &format!("{SERVICES}/echo/proxy/"), Some("application/octet-stream"), big.clone()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), big.len(), "proxy bodies are streamed, not limited like API bodies");
    assert!(server.requests("proxy", "services/proxy") >= 3);
    // The process listens on the pod IP.
    let ip = pod["status"]["podIP"].as_str().unwrap();
    assert!(tokio::net::TcpStream::connect((ip, 8080)).await.is_ok());
    // Foreground deletion: the pods go first, then the deployment; the process stops.
    let reply = client.delete(&format!("{DEPLOYMENTS}/echo"), Some(&json!({"propagationPolicy": "Foreground"}))).await;
    assert_eq!(reply.status, 200);
    eventually("the deployment to be gone", || async {
        (client.get(&format!("{DEPLOYMENTS}/echo")).await.status == 404).then_some(())
    })
    .await;
    assert!(pods_of(&client, "echo").await.is_empty());
    eventually("the process to stop listening", || async {
        tokio::net::TcpStream::connect((ip, 8080)).await.is_err().then_some(())
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn endpoint_slices_follow_pod_readiness() {
    let (server, client) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("ready");
    let probe = common::script(dir.path(), "probe.sh", &format!("test -f {} && echo ok || exit 1", flag.display()));
    let mut d = common::deployment("flaky", 1, &[("fprocess", &probe)]);
    d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = json!("/");
    client.post(SERVICES, &common::service("flaky")).await;
    client.post(DEPLOYMENTS, &d).await;
    let slice_ready = |want: bool| {
        let client = client.clone();
        async move {
            let slices = client
                .get("/apis/discovery.k8s.io/v1/namespaces/fn/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dflaky")
                .await
                .json();
            let slice = slices["items"].as_array()?.first()?.clone();
            let endpoint = slice["endpoints"].as_array()?.first()?.clone();
            (endpoint["conditions"]["ready"] == want).then_some(slice)
        }
    };
    let slice = eventually("a not-ready endpoint", || slice_ready(false)).await;
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice["metadata"]["labels"]["faas_function"], "flaky", "the service's labels are copied");
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(slice["ports"], json!([{"name": "http", "port": 8080, "protocol": "TCP"}]));
    assert_eq!(slice["endpoints"][0]["targetRef"]["kind"], "Pod");
    assert!(slice["endpoints"][0]["addresses"][0].as_str().unwrap().starts_with("127.77."));
    assert_status(&client.get(&format!("{SERVICES}/flaky/proxy/")).await, 503, "ServiceUnavailable");
    std::fs::write(&flag, "").unwrap();
    eventually("a ready endpoint", || slice_ready(true)).await;
    assert_eq!(deployment_status(&client, "flaky").await["readyReplicas"], 1);
    assert_eq!(client.get(&format!("{SERVICES}/flaky/proxy/")).await.text().trim(), "ok");
    std::fs::remove_file(&flag).unwrap();
    eventually("the endpoint to be not ready again", || slice_ready(false)).await;
    eventually("readyReplicas to drop", || async {
        deployment_status(&client, "flaky").await["readyReplicas"].is_null().then_some(())
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn rolling_update_with_max_unavailable_zero_never_drops_below_the_ready_replicas() {
    let (server, client) = server().await;
    client.post(DEPLOYMENTS, &common::deployment("roll", 2, &[("fprocess", "cat"), ("v", "1")])).await;
    wait_ready(&client, "roll", 2).await;
    let (old_hash, mut pods, mut watch) = pods_then_watch(&client).await;
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "roll", "env": [{"name": "v", "value": "2"}]}]}}}});
    let reply = client.patch(&format!("{DEPLOYMENTS}/roll"), "application/strategic-merge-patch+json", &patch).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["metadata"]["generation"], 2);
    let mut max_total = 0;
    loop {
        let event = watch.event().await.expect("pod events");
        let name = event["object"]["metadata"]["name"].as_str().unwrap().to_string();
        if event["type"] == "DELETED" {
            pods.remove(&name);
        } else {
            pods.insert(name, event["object"].clone());
        }
        let live: Vec<&Value> = pods.values().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).collect();
        let ready = live.iter().filter(|p| is_ready(p)).count();
        max_total = max_total.max(live.len());
        assert!(ready >= 2, "ready pods dropped to {ready} during the rollout");
        let done = pods.len() == 2
            && pods.values().all(|p| p["metadata"]["labels"]["pod-template-hash"] != old_hash.as_str() && is_ready(p));
        if done {
            break;
        }
    }
    assert_eq!(max_total, 3, "maxSurge 1 allows one extra pod");
    let status = wait_ready(&client, "roll", 2).await;
    assert_eq!(status["observedGeneration"], 2);
    assert_eq!(status["updatedReplicas"], 2);
    server.shutdown().await;
}

#[tokio::test]
async fn scale_subresource_starts_and_stops_pods() {
    let (server, client) = server().await;
    client.post(DEPLOYMENTS, &common::deployment("sc", 1, &[("fprocess", "cat")])).await;
    wait_ready(&client, "sc", 1).await;
    let reply = client
        .patch(&format!("{DEPLOYMENTS}/sc/scale"), "application/merge-patch+json", &json!({"spec": {"replicas": 3}}))
        .await;
    assert_eq!(reply.status, 200);
    wait_ready(&client, "sc", 3).await;
    let scale = client.get(&format!("{DEPLOYMENTS}/sc/scale")).await.json();
    assert_eq!(scale["status"]["replicas"], 3);
    let ips: std::collections::HashSet<String> =
        pods_of(&client, "sc").await.iter().map(|p| p["status"]["podIP"].as_str().unwrap().to_string()).collect();
    assert_eq!(ips.len(), 3, "one IP per pod");
    let mut scale = scale;
    scale["spec"]["replicas"] = json!(0);
    assert_eq!(client.put(&format!("{DEPLOYMENTS}/sc/scale"), &scale).await.status, 200);
    eventually("every pod to be gone", || async { pods_of(&client, "sc").await.is_empty().then_some(()) }).await;
    let status = deployment_status(&client, "sc").await;
    assert!(status["replicas"].is_null() && status["readyReplicas"].is_null(), "{status}");
    server.shutdown().await;
}

#[tokio::test]
async fn pod_logs_serve_tail_lines_timestamps_and_follow() {
    let (server, client) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let pod = ready_logger(&client, dir.path(), "logger").await;
    let log_path = format!("{PODS}/{pod}/log");
    let mut follow = client.stream(&format!("{log_path}?follow=true&tailLines=0")).await;
    for i in 0..3 {
        let reply = client.request("POST", &format!("{SERVICES}/logger/proxy/?n={i}"), None, b"x".to_vec()).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let line = follow.next().await.expect("a followed line");
        if line.contains("called with") {
            seen.push(line);
        }
    }
    assert!(seen[0].contains("n=0") && seen[2].contains("n=2"), "{seen:?}");
    let tail = client.get(&format!("{log_path}?tailLines=1")).await;
    assert_eq!(tail.status, 200);
    assert_eq!(tail.text().lines().count(), 1);
    let all = client.get(&format!("{log_path}?timestamps=true")).await.text();
    let first = all.lines().next().unwrap();
    let (ts, _) = first.split_once(' ').unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{first}");
    assert!(all.contains("called with n=1"));
    assert_eq!(server.requests("get", "pods/log"), 3);
    assert_status(&client.get(&format!("{PODS}/nope/log")).await, 404, "NotFound");
    assert_status(&client.get(&format!("{log_path}?container=other")).await, 400, "BadRequest");
    server.shutdown().await;
}

#[tokio::test]
async fn projected_secret_volumes_are_files_under_secrets_dir() {
    let (server, client) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let function = common::script(dir.path(), "read.sh", "cat \"$SECRETS_DIR/$Http_Query\"");
    let secret = json!({"metadata": {"name": "api-key"}, "stringData": {"key": "s3cr3t"}});
    assert_eq!(client.post("/api/v1/namespaces/fn/secrets", &secret).await.status, 201);
    let mut d = common::deployment("reader", 1, &[("fprocess", &function)]);
    d["spec"]["template"]["spec"]["volumes"] = json!([{"name": "secrets", "projected": {"sources": [
        {"secret": {"name": "api-key", "items": [{"key": "key", "path": "api-key"}]}}]}}]);
    d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "secrets", "mountPath": "/var/openfaas/secrets", "readOnly": true}]);
    assert_eq!(client.post(DEPLOYMENTS, &d).await.status, 201);
    client.post(SERVICES, &common::service("reader")).await;
    wait_ready(&client, "reader", 1).await;
    let reply = eventually("the function to answer", || async {
        let reply = client.get(&format!("{SERVICES}/reader/proxy/?api-key")).await;
        (reply.status == 200).then_some(reply)
    })
    .await;
    assert_eq!(reply.text(), "s3cr3t");
    server.shutdown().await;
}

#[tokio::test]
async fn crashing_containers_are_restarted_with_a_restart_count() {
    let (server, client) = server().await;
    client.post(DEPLOYMENTS, &common::deployment("crash", 1, &[("fprocess", "/nonexistent/program")])).await;
    // Between restarts the container waits in CrashLoopBackOff, as a kubelet's does.
    let pod = eventually("two restarts, waiting in CrashLoopBackOff", || async {
        let pods = pods_of(&client, "crash").await;
        let pod = pods.first()?.clone();
        let status = &pod["status"]["containerStatuses"][0];
        let waiting = status["state"]["waiting"]["reason"] == "CrashLoopBackOff";
        (status["restartCount"].as_i64()? >= 2 && waiting).then_some(pod)
    })
    .await;
    assert!(pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        .as_str()
        .unwrap()
        .contains("back-off"));
    let last = &pod["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 2, "{pod}");
    assert_eq!(last["reason"], "Error");
    assert!(!is_ready(&pod));
    let name = pod["metadata"]["name"].as_str().unwrap();
    let logs = client.get(&format!("{PODS}/{name}/log")).await.text();
    assert!(logs.contains("invalid configuration"), "{logs}");
    let status = deployment_status(&client, "crash").await;
    assert_eq!(status["unavailableReplicas"], 1);
    server.shutdown().await;
}

/// The log of a pod's container, read through the API.
/// Deploys `name`, one pod of a function that logs each call's query on
/// stderr and echoes its body, waits until it is ready and names its pod.
async fn ready_logger(client: &Client, dir: &std::path::Path, name: &str) -> String {
    let function = common::script(dir, "fn.sh", "echo \"called with $Http_Query\" >&2\ncat");
    client.post(SERVICES, &common::service(name)).await;
    client.post(DEPLOYMENTS, &common::deployment(name, 1, &[("fprocess", &function)])).await;
    wait_ready(client, name, 1).await;
    pods_of(client, name).await[0]["metadata"]["name"].as_str().unwrap().to_string()
}

async fn log_text(client: &Client, pod: &str, query: &str) -> String {
    let reply = client.get(&format!("{PODS}/{pod}/log?{query}")).await;
    assert_eq!(reply.status, 200, "{query}: {}", reply.text());
    reply.text()
}

#[tokio::test]
async fn pod_logs_since_seconds_since_time_and_limit_bytes() {
    let (server, client) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let pod = ready_logger(&client, dir.path(), "since").await;
    let call = |n: u32| {
        let client = client.clone();
        async move {
            let reply = client.request("POST", &format!("{SERVICES}/since/proxy/?n={n}"), None, b"x".to_vec()).await;
            assert_eq!(reply.status, 200, "{}", reply.text());
        }
    };
    let logged = |n: u32| {
        let (client, pod) = (client.clone(), pod.clone());
        async move {
            let text = log_text(&client, &pod, "timestamps=true").await;
            text.lines()
                .find(|l| l.ends_with(&format!("called with n={n}")))
                .map(|l| l.split(' ').next().unwrap().to_string())
        }
    };
    for n in 0..3 {
        call(n).await;
    }
    eventually("the three calls to be logged", || logged(2)).await;
    // sinceTime: only lines at or after the time (RFC 3339, here a line's own timestamp).
    let t1 = logged(1).await.unwrap();
    let since = log_text(&client, &pod, &format!("sinceTime={t1}")).await;
    assert!(!since.contains("n=0") && since.contains("n=1") && since.contains("n=2"), "{since}");
    assert!(since.lines().next().unwrap().ends_with("called with n=1"), "the line at sinceTime comes first: {since}");
    // sinceSeconds: relative to now; older lines drop out as time passes.
    assert!(log_text(&client, &pod, "sinceSeconds=3600").await.contains("n=0"));
    eventually("n=0 to be older than sinceSeconds=1", || async {
        (!log_text(&client, &pod, "sinceSeconds=1").await.contains("n=0")).then_some(())
    })
    .await;
    call(3).await;
    eventually("a fresh line within sinceSeconds=60", || async {
        let text = log_text(&client, &pod, "sinceSeconds=60").await;
        text.contains("n=3").then_some(())
    })
    .await;
    let status = assert_status(&client.get(&format!("{PODS}/{pod}/log?sinceSeconds=0")).await, 422, "Invalid");
    assert!(status["message"].as_str().unwrap().contains("sinceSeconds"), "{status}");
    // limitBytes: the output stops after that many bytes, even mid-line;
    // timestamps count towards it.
    let full = log_text(&client, &pod, "").await;
    let first_line = full.lines().next().unwrap().len();
    let limit = first_line + 4;
    assert_eq!(log_text(&client, &pod, &format!("limitBytes={limit}")).await, full[..limit]);
    let stamped = log_text(&client, &pod, "timestamps=true").await;
    assert_eq!(log_text(&client, &pod, "timestamps=true&limitBytes=20").await, stamped[..20]);
    // A followed log ends at the limit although the container keeps running.
    let mut follow = client.stream(&format!("{PODS}/{pod}/log?follow=true&limitBytes=5")).await;
    assert_eq!(follow.next().await.as_deref(), Some(&full[..5]));
    assert!(follow.next().await.is_none(), "the stream ends at limitBytes");
    server.shutdown().await;
}

#[tokio::test]
async fn deleting_a_pod_sends_sigterm_then_sigkill_after_the_grace_period() {
    let (server, client) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let function = common::script(dir.path(), "slow.sh", &format!("touch {}\nsleep 45", started.display()));
    // On SIGTERM fwatchdog drains in-flight calls for write_timeout (120 s
    // here) and the call takes 45 s: only SIGKILL ends it within DEADLINE.
    let pod = json!({"metadata": {"name": "term"}, "spec": {
        "terminationGracePeriodSeconds": 2,
        "containers": [{"name": "term", "image": "example/fn:1", "ports": [{"containerPort": 8080}],
            "env": [{"name": "fprocess", "value": function}, {"name": "write_timeout", "value": "120s"}]}]}});
    assert_eq!(client.post(PODS, &pod).await.status, 201);
    let pod = eventually("the pod to be ready", || async {
        let pod = client.get(&format!("{PODS}/term")).await.json();
        is_ready(&pod).then_some(pod)
    })
    .await;
    let ip = pod["status"]["podIP"].as_str().unwrap().to_string();
    let mut follow = client.stream(&format!("{PODS}/term/log?follow=true&tailLines=0")).await;
    let in_flight = tokio::spawn(async move {
        let stream = tokio::net::TcpStream::connect((ip.as_str(), 8080)).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        let request = http::Request::post("/").header("host", "pod").body(http_body_util::Empty::<bytes::Bytes>::new());
        let response = sender.send_request(request.unwrap()).await.map_err(std::io::Error::other)?;
        http_body_util::BodyExt::collect(response.into_body()).await.map_err(std::io::Error::other)?;
        Ok::<_, std::io::Error>(())
    });
    eventually("the call to be in flight", || async { started.exists().then_some(()) }).await;
    let reply = client.delete(&format!("{PODS}/term"), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let deleting = reply.json();
    assert_eq!(deleting["kind"], "Pod", "a pod in its grace period is returned, not a Status");
    assert!(deleting["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(deleting["metadata"]["deletionGracePeriodSeconds"], 2, "the pod's terminationGracePeriodSeconds");
    // SIGTERM first: the watchdog sees a catchable signal and starts draining.
    loop {
        let line = follow.next().await.expect("the drain to be logged before the log ends");
        if line.contains("signal received; draining") {
            break;
        }
    }
    // Then SIGKILL once the grace period is over: the call is cut, the pod goes.
    assert!(follow.next().await.is_none_or(|l| !l.contains("stopped")), "killed, not stopped after draining");
    let call = tokio::time::timeout(common::DEADLINE, in_flight).await.expect("the call to end").unwrap();
    assert!(call.is_err(), "the in-flight call was cut by SIGKILL, not completed");
    eventually("the pod object to go", || async {
        (client.get(&format!("{PODS}/term")).await.status == 404).then_some(())
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn recreate_strategy_stops_every_old_pod_before_starting_new_ones() {
    let (server, client) = server().await;
    let mut d = common::deployment("rec", 2, &[("fprocess", "cat"), ("v", "1")]);
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    assert_eq!(client.post(DEPLOYMENTS, &d).await.status, 201);
    wait_ready(&client, "rec", 2).await;
    let (old_hash, mut pods, mut watch) = pods_then_watch(&client).await;
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "rec", "env": [{"name": "v", "value": "2"}]}]}}}});
    let reply = client.patch(&format!("{DEPLOYMENTS}/rec"), "application/strategic-merge-patch+json", &patch).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let mut saw_none = false;
    loop {
        let event = watch.event().await.expect("pod events");
        let name = event["object"]["metadata"]["name"].as_str().unwrap().to_string();
        if event["type"] == "DELETED" {
            pods.remove(&name);
        } else {
            pods.insert(name, event["object"].clone());
        }
        let old = pods.values().filter(|p| p["metadata"]["labels"]["pod-template-hash"] == old_hash.as_str()).count();
        let new = pods.len() - old;
        // Upstream: all existing pods are killed (gone, not just terminating)
        // before new ones are created.
        assert!(old == 0 || new == 0, "{old} old and {new} new pods at once");
        saw_none |= pods.is_empty();
        if new == 2 && pods.values().all(is_ready) {
            break;
        }
    }
    assert!(saw_none, "there was a moment with no pod at all");
    let status = wait_ready(&client, "rec", 2).await;
    assert_eq!(status["updatedReplicas"], 2);
    server.shutdown().await;
}

#[tokio::test]
async fn pods_over_quota_give_the_deployment_a_replica_failure_condition() {
    let (server, client) = server().await;
    let quota = json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "1"}}});
    assert_eq!(client.post("/api/v1/namespaces/fn/resourcequotas", &quota).await.status, 201);
    client.post(DEPLOYMENTS, &common::deployment("over", 2, &[("fprocess", "cat")])).await;
    let failure = eventually("a ReplicaFailure condition", || async {
        let status = deployment_status(&client, "over").await;
        status["conditions"].as_array()?.iter().find(|c| c["type"] == "ReplicaFailure").cloned()
    })
    .await;
    assert_eq!(failure["status"], "True");
    assert_eq!(failure["reason"], "FailedCreate");
    let message = failure["message"].as_str().unwrap();
    assert!(
        message.contains("is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"),
        "{message}"
    );
    assert_eq!(pods_of(&client, "over").await.len(), 1, "the pod within the quota is created");
    // The quota's usage is recounted in the background, as Kubernetes's
    // quota controller does: it reaches the one pod.
    eventually("the quota's status.used to count the pod", || async {
        let q = client.get("/api/v1/namespaces/fn/resourcequotas/q").await.json();
        (q["status"]["used"]["pods"] == "1").then_some(())
    })
    .await;
    // Once the quota allows it the missing pod is created and the condition goes.
    client.delete("/api/v1/namespaces/fn/resourcequotas/q", None).await;
    let status = wait_ready(&client, "over", 2).await;
    let conditions = status["conditions"].as_array().unwrap();
    assert!(conditions.iter().all(|c| c["type"] != "ReplicaFailure"), "{status}");
    server.shutdown().await;
}

#[tokio::test]
async fn tcp_socket_readiness_probes_decide_readiness() {
    let (server, client) = server().await;
    let mut d = common::deployment("tcp", 1, &[("fprocess", "cat")]);
    d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = json!({"tcpSocket": {"port": 8081}});
    client.post(DEPLOYMENTS, &d).await;
    let ip = eventually("the pod's IP", || async {
        let pod = pods_of(&client, "tcp").await.first()?.clone();
        pod["status"]["podIP"].as_str().map(String::from)
    })
    .await;
    // The watchdog answers on 8080, yet nothing listens on the probed port.
    eventually("the watchdog to listen", || async {
        tokio::net::TcpStream::connect((ip.as_str(), 8080)).await.is_ok().then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(!is_ready(&pods_of(&client, "tcp").await[0]), "ready without anything on the probed port");
    let listener = tokio::net::TcpListener::bind((ip.as_str(), 8081)).await.expect("bind the probed port");
    let accept = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    wait_ready(&client, "tcp", 1).await;
    accept.abort();
    let _ = accept.await;
    eventually("the pod to be not ready once the port closes", || async {
        (!is_ready(&pods_of(&client, "tcp").await[0])).then_some(())
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn env_values_from_secret_key_ref_config_map_key_ref_and_field_ref() {
    let (server, client) = server().await;
    let secret = json!({"metadata": {"name": "creds"}, "stringData": {"password": "hunter2"}});
    assert_eq!(client.post("/api/v1/namespaces/fn/secrets", &secret).await.status, 201);
    let cm = json!({"metadata": {"name": "settings"}, "data": {"level": "debug"}});
    assert_eq!(client.post("/api/v1/namespaces/fn/configmaps", &cm).await.status, 201);
    let mut d = common::deployment("envy", 1, &[("fprocess", "env")]);
    let field = |path: &str| json!({"fieldRef": {"apiVersion": "v1", "fieldPath": path}});
    let env = d["spec"]["template"]["spec"]["containers"][0]["env"].as_array_mut().unwrap();
    for (name, from) in [
        ("PASSWORD", json!({"secretKeyRef": {"name": "creds", "key": "password"}})),
        ("LEVEL", json!({"configMapKeyRef": {"name": "settings", "key": "level"}})),
        ("MISSING", json!({"secretKeyRef": {"name": "creds", "key": "nope", "optional": true}})),
        ("POD_NAME", field("metadata.name")),
        ("POD_NAMESPACE", field("metadata.namespace")),
        ("POD_IP", field("status.podIP")),
        ("NODE", field("spec.nodeName")),
        ("FUNCTION", field("metadata.labels['faas_function']")),
    ] {
        env.push(json!({"name": name, "valueFrom": from}));
    }
    client.post(DEPLOYMENTS, &d).await;
    client.post(SERVICES, &common::service("envy")).await;
    wait_ready(&client, "envy", 1).await;
    let pod = pods_of(&client, "envy").await[0].clone();
    let text = eventually("the function to answer", || async {
        let reply = client.get(&format!("{SERVICES}/envy/proxy/")).await;
        (reply.status == 200).then_some(reply.text())
    })
    .await;
    let vars: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    assert_eq!(vars.get("PASSWORD"), Some(&"hunter2"), "secret values are decoded");
    assert_eq!(vars.get("LEVEL"), Some(&"debug"));
    assert_eq!(vars.get("MISSING"), None, "an optional missing key leaves the variable unset");
    assert_eq!(vars.get("POD_NAME").copied(), pod["metadata"]["name"].as_str());
    assert_eq!(vars.get("POD_NAMESPACE"), Some(&"fn"));
    assert_eq!(vars.get("POD_IP").copied(), pod["status"]["podIP"].as_str());
    assert_eq!(vars.get("NODE").copied(), pod["spec"]["nodeName"].as_str());
    assert_eq!(vars.get("FUNCTION"), Some(&"envy"));
    server.shutdown().await;
}
