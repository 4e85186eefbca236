//! The REST conventions, one test per rule, without the controller.

mod common;

use common::{assert_status, eventually, namespace, Client};
use k8s_test_server::{Options, TestServer};
use serde_json::{json, Value};

async fn server() -> (TestServer, Client) {
    let options = Options { namespaces: vec!["fn".into()], controller: false, ..Options::default() };
    let server = TestServer::start(options).await.expect("server");
    let client = Client::new(server.addr());
    (server, client)
}

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/fn/deployments";
const SECRETS: &str = "/api/v1/namespaces/fn/secrets";
const CONFIGMAPS: &str = "/api/v1/namespaces/fn/configmaps";

fn deployment(name: &str) -> Value {
    common::deployment(name, 1, &[("fprocess", "cat")])
}

fn rv(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"].as_str().expect("resourceVersion").parse().expect("numeric rv")
}

#[tokio::test]
async fn discovery_documents_list_groups_and_resources() {
    let (server, client) = server().await;
    let api = client.get("/api").await.json();
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));
    let apis = client.get("/apis").await.json();
    assert_eq!(apis["kind"], "APIGroupList");
    let names: Vec<&str> = apis["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"apps") && names.contains(&"discovery.k8s.io"), "{names:?}");
    let apps = client.get("/apis/apps/v1").await.json();
    assert_eq!(apps["kind"], "APIResourceList");
    assert_eq!(apps["groupVersion"], "apps/v1");
    let scale = apps["resources"].as_array().unwrap().iter().find(|r| r["name"] == "deployments/scale").unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["group"], "autoscaling");
    let core = client.get("/api/v1").await.json();
    for name in ["namespaces", "secrets", "services", "pods", "pods/log", "services/proxy", "resourcequotas"] {
        assert!(core["resources"].as_array().unwrap().iter().any(|r| r["name"] == name), "{name}");
    }
    assert_eq!(client.get("/version").await.json()["major"], "1");
    assert_eq!(server.requests("get", ""), 5);
    server.shutdown().await;
}

#[tokio::test]
async fn create_get_and_list_with_resource_versions() {
    let (server, client) = server().await;
    let created = client.post(DEPLOYMENTS, &deployment("a")).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let created = created.json();
    assert_eq!(created["kind"], "Deployment");
    assert_eq!(created["apiVersion"], "apps/v1");
    assert_eq!(created["metadata"]["namespace"], "fn");
    assert_eq!(created["metadata"]["generation"], 1);
    assert!(created["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert!(created["metadata"]["creationTimestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    // Defaults, as the API server sets them.
    assert_eq!(created["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 1);
    assert_eq!(created["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(created["spec"]["template"]["spec"]["restartPolicy"], "Always");
    let got = client.get(&format!("{DEPLOYMENTS}/a")).await.json();
    assert_eq!(got, created);
    let b = client.post(DEPLOYMENTS, &deployment("b")).await.json();
    assert!(rv(&b) > rv(&created));
    let list = client.get(DEPLOYMENTS).await.json();
    assert_eq!(list["kind"], "DeploymentList");
    assert_eq!(list["apiVersion"], "apps/v1");
    assert_eq!(rv(&list), rv(&b));
    let names: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b"]);
    // Cluster-wide list.
    let all = client.get("/apis/apps/v1/deployments").await.json();
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    assert_eq!(server.requests("create", "deployments"), 2);
    assert_eq!(server.requests("list", "deployments"), 2);
    assert_eq!(server.requests("get", "deployments"), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn create_twice_is_already_exists_and_missing_is_not_found() {
    let (server, client) = server().await;
    assert_eq!(client.post(DEPLOYMENTS, &deployment("a")).await.status, 201);
    let status = assert_status(&client.post(DEPLOYMENTS, &deployment("a")).await, 409, "AlreadyExists");
    assert_eq!(status["message"], "deployments.apps \"a\" already exists");
    assert_eq!(status["details"], json!({"name": "a", "group": "apps", "kind": "deployments"}));
    let status = assert_status(&client.get(&format!("{DEPLOYMENTS}/nope")).await, 404, "NotFound");
    assert_eq!(status["message"], "deployments.apps \"nope\" not found");
    let status = assert_status(&client.get(&format!("{SECRETS}/nope")).await, 404, "NotFound");
    assert_eq!(status["message"], "secrets \"nope\" not found");
    assert_eq!(status["details"]["group"], "");
    // A namespace that does not exist.
    let reply = client.post("/api/v1/namespaces/ghost/secrets", &json!({"metadata": {"name": "s"}})).await;
    let status = assert_status(&reply, 404, "NotFound");
    assert_eq!(status["message"], "namespaces \"ghost\" not found");
    server.shutdown().await;
}

#[tokio::test]
async fn update_with_stale_resource_version_is_a_conflict() {
    let (server, client) = server().await;
    let created = client.post(DEPLOYMENTS, &deployment("a")).await.json();
    let mut first = created.clone();
    first["spec"]["replicas"] = json!(3);
    let updated = client.put(&format!("{DEPLOYMENTS}/a"), &first).await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    let updated = updated.json();
    assert!(rv(&updated) > rv(&created));
    assert_eq!(updated["metadata"]["generation"], 2, "a spec change bumps the generation");
    // The same stale version again.
    let mut second = created.clone();
    second["spec"]["replicas"] = json!(5);
    let status = assert_status(&client.put(&format!("{DEPLOYMENTS}/a"), &second).await, 409, "Conflict");
    assert_eq!(
        status["message"],
        "Operation cannot be fulfilled on deployments.apps \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // Without a resourceVersion: an unconditional update.
    let mut unconditional = updated.clone();
    unconditional["metadata"].as_object_mut().unwrap().remove("resourceVersion");
    unconditional["spec"]["replicas"] = json!(4);
    assert_eq!(client.put(&format!("{DEPLOYMENTS}/a"), &unconditional).await.status, 200);
    // A no-op update keeps the resourceVersion.
    let current = client.get(&format!("{DEPLOYMENTS}/a")).await.json();
    let again = client.put(&format!("{DEPLOYMENTS}/a"), &current).await.json();
    assert_eq!(rv(&again), rv(&current));
    // Name mismatch.
    let status = assert_status(&client.put(&format!("{DEPLOYMENTS}/other"), &current).await, 404, "NotFound");
    assert!(status["message"].as_str().unwrap().contains("other"));
    server.shutdown().await;
}

#[tokio::test]
async fn status_is_ignored_on_the_main_resource_and_written_by_the_subresource() {
    let (server, client) = server().await;
    let created = client.post(DEPLOYMENTS, &deployment("a")).await.json();
    let mut with_status = created.clone();
    with_status["status"] = json!({"replicas": 7});
    let updated = client.put(&format!("{DEPLOYMENTS}/a"), &with_status).await.json();
    assert_eq!(updated["status"], json!({}));
    with_status["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"].clone();
    let reply = client.put(&format!("{DEPLOYMENTS}/a/status"), &with_status).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["status"]["replicas"], 7);
    assert_eq!(server.requests("update", "deployments/status"), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn patch_variants_merge_strategic_and_json_patch() {
    let (server, client) = server().await;
    let path = format!("{DEPLOYMENTS}/a");
    let mut d = deployment("a");
    d["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "fprocess", "value": "cat"}, {"name": "A", "value": "1"}]);
    client.post(DEPLOYMENTS, &d).await;
    // Merge patch: lists are replaced, null deletes.
    let merge = json!({"metadata": {"labels": {"x": "1"}}, "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "example/fn:2"}]}}}});
    let reply = client.patch(&path, "application/merge-patch+json", &merge).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let patched = reply.json();
    assert_eq!(patched["metadata"]["labels"], json!({"faas_function": "a", "x": "1"}));
    assert!(patched["spec"]["template"]["spec"]["containers"][0]["env"].is_null(), "merge patch replaced the list");
    let reply =
        client.patch(&path, "application/merge-patch+json", &json!({"metadata": {"labels": {"x": null}}})).await;
    assert_eq!(reply.json()["metadata"]["labels"], json!({"faas_function": "a"}));
    // Strategic merge patch: containers merge by name, env by name.
    let smp =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "env": [{"name": "B", "value": "2"}]}]}}}});
    let reply = client.patch(&path, "application/strategic-merge-patch+json", &smp).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let container = &reply.json()["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "example/fn:2", "other container fields are kept");
    assert_eq!(container["env"], json!([{"name": "B", "value": "2"}]));
    let smp =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "env": [{"name": "C", "value": "3"}]}]}}}});
    let container = client.patch(&path, "application/strategic-merge-patch+json", &smp).await.json()["spec"]
        ["template"]["spec"]["containers"][0]
        .clone();
    assert_eq!(container["env"], json!([{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]));
    // JSON patch.
    let ops = json!([{"op": "replace", "path": "/spec/replicas", "value": 3}, {"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}}]);
    let reply = client.patch(&path, "application/json-patch+json", &ops).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["spec"]["replicas"], 3);
    assert_eq!(reply.json()["metadata"]["annotations"]["k"], "v");
    let failing = json!([{"op": "test", "path": "/spec/replicas", "value": 9}]);
    assert_status(&client.patch(&path, "application/json-patch+json", &failing).await, 422, "Invalid");
    // A resourceVersion in the patch is a precondition.
    let stale = json!({"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 2}});
    assert_status(&client.patch(&path, "application/merge-patch+json", &stale).await, 409, "Conflict");
    // Server-side apply is not served.
    let reply = client.request("PATCH", &path, Some("application/apply-patch+yaml"), b"spec: {}".to_vec()).await;
    assert_status(&reply, 415, "UnsupportedMediaType");
    assert_status(
        &client.patch(&format!("{DEPLOYMENTS}/nope"), "application/merge-patch+json", &json!({})).await,
        404,
        "NotFound",
    );
    assert_eq!(server.requests("patch", "deployments"), 9);
    server.shutdown().await;
}

#[tokio::test]
async fn validation_errors_are_422_invalid_with_causes() {
    let (server, client) = server().await;
    let mut bad = deployment("Bad_Name");
    bad["spec"]["template"]["metadata"]["labels"] = json!({"faas_function": "other"});
    bad["spec"]["template"]["spec"]["containers"][0].as_object_mut().unwrap().remove("image");
    let status = assert_status(&client.post(DEPLOYMENTS, &bad).await, 422, "Invalid");
    assert_eq!(status["details"]["kind"], "Deployment");
    assert_eq!(status["details"]["group"], "apps");
    assert_eq!(status["details"]["name"], "Bad_Name");
    let causes = status["details"]["causes"].as_array().unwrap();
    let fields: Vec<&str> = causes.iter().map(|c| c["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"metadata.name"), "{fields:?}");
    assert!(fields.contains(&"spec.template.metadata.labels"), "{fields:?}");
    assert!(fields.contains(&"spec.template.spec.containers[0].image"), "{fields:?}");
    let image = causes.iter().find(|c| c["field"] == "spec.template.spec.containers[0].image").unwrap();
    assert_eq!(image["reason"], "FieldValueRequired");
    assert!(status["message"].as_str().unwrap().starts_with("Deployment.apps \"Bad_Name\" is invalid: ["));
    // Missing selector.
    let mut no_selector = deployment("a");
    no_selector["spec"].as_object_mut().unwrap().remove("selector");
    let status = assert_status(&client.post(DEPLOYMENTS, &no_selector).await, 422, "Invalid");
    assert_eq!(status["details"]["causes"][0]["field"], "spec.selector");
    // Namespace names are DNS-1123 labels.
    let status = assert_status(&client.post("/api/v1/namespaces", &namespace("a.b")).await, 422, "Invalid");
    assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");
    // Immutable selector.
    let created = client.post(DEPLOYMENTS, &deployment("a")).await.json();
    let mut changed = created.clone();
    changed["spec"]["selector"]["matchLabels"]["extra"] = json!("x");
    changed["spec"]["template"]["metadata"]["labels"]["extra"] = json!("x");
    let status = assert_status(&client.put(&format!("{DEPLOYMENTS}/a"), &changed).await, 422, "Invalid");
    assert!(status["details"]["causes"][0]["message"].as_str().unwrap().contains("field is immutable"));
    // Service: clusterIP immutable, ports required.
    let svc = client.post("/api/v1/namespaces/fn/services", &common::service("svc")).await.json();
    assert!(svc["spec"]["clusterIP"].as_str().unwrap().starts_with("10.9"));
    let mut moved = svc.clone();
    moved["spec"]["clusterIP"] = json!("10.96.99.99");
    let status = assert_status(&client.put("/api/v1/namespaces/fn/services/svc", &moved).await, 422, "Invalid");
    assert_eq!(status["details"]["causes"][0]["field"], "spec.clusterIP");
    let no_ports = json!({"metadata": {"name": "np"}, "spec": {"selector": {"a": "b"}}});
    let status = assert_status(&client.post("/api/v1/namespaces/fn/services", &no_ports).await, 422, "Invalid");
    assert_eq!(status["details"]["causes"][0]["field"], "spec.ports");
    server.shutdown().await;
}

#[tokio::test]
async fn body_namespace_must_match_the_url() {
    let (server, client) = server().await;
    let mut d = deployment("a");
    d["metadata"]["namespace"] = json!("default");
    let status = assert_status(&client.post(DEPLOYMENTS, &d).await, 400, "BadRequest");
    assert!(status["message"].as_str().unwrap().contains("does not match the namespace"));
    d["metadata"]["namespace"] = json!("fn");
    assert_eq!(client.post(DEPLOYMENTS, &d).await.status, 201);
    let wrong_kind = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}});
    assert_status(&client.post(DEPLOYMENTS, &wrong_kind).await, 400, "BadRequest");
    assert_status(
        &client.request("POST", DEPLOYMENTS, Some("application/json"), b"{not json".to_vec()).await,
        400,
        "BadRequest",
    );
    server.shutdown().await;
}

#[tokio::test]
async fn secrets_merge_string_data_and_default_to_opaque() {
    let (server, client) = server().await;
    let secret = json!({"metadata": {"name": "s"}, "data": {"a": "YQ=="}, "stringData": {"b": "bee"}});
    let created = client.post(SECRETS, &secret).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let created = created.json();
    assert_eq!(created["type"], "Opaque");
    assert_eq!(created["data"], json!({"a": "YQ==", "b": "YmVl"}));
    assert!(created["stringData"].is_null(), "stringData is never returned");
    let got = client.get(&format!("{SECRETS}/s")).await.json();
    assert!(got["stringData"].is_null());
    let bad = json!({"metadata": {"name": "t"}, "data": {"a": "not base64!"}});
    assert_status(&client.post(SECRETS, &bad).await, 400, "BadRequest");
    let bad_key = json!({"metadata": {"name": "u"}, "data": {"a/b": "YQ=="}});
    assert_status(&client.post(SECRETS, &bad_key).await, 422, "Invalid");
    server.shutdown().await;
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let (server, client) = server().await;
    for (name, labels) in [
        ("a", json!({"app": "x", "tier": "web"})),
        ("b", json!({"app": "y"})),
        ("c", json!({"app": "z", "tier": "db"})),
    ] {
        let cm = json!({"metadata": {"name": name, "labels": labels}});
        assert_eq!(client.post(CONFIGMAPS, &cm).await.status, 201);
    }
    let names = |v: Value| -> Vec<String> {
        v["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().to_string()).collect()
    };
    let cases = [
        ("app%3Dx", vec!["a"]),
        ("app%3D%3Dy", vec!["b"]),
        ("app!%3Dx", vec!["b", "c"]),
        ("app%20in%20(x,z)", vec!["a", "c"]),
        ("app%20notin%20(x,z)", vec!["b"]),
        ("tier", vec!["a", "c"]),
        ("!tier", vec!["b"]),
        ("app%3Dz,tier%3Ddb", vec!["c"]),
    ];
    for (selector, expected) in cases {
        let list = client.get(&format!("{CONFIGMAPS}?labelSelector={selector}")).await.json();
        assert_eq!(names(list), expected, "{selector}");
    }
    let list = client.get(&format!("{CONFIGMAPS}?fieldSelector=metadata.name%3Db")).await.json();
    assert_eq!(names(list), ["b"]);
    let list = client.get(&format!("{CONFIGMAPS}?fieldSelector=metadata.name!%3Db")).await.json();
    assert_eq!(names(list), ["a", "c"]);
    let list = client.get("/api/v1/configmaps?fieldSelector=metadata.namespace%3Dfn").await.json();
    assert_eq!(names(list), ["a", "b", "c"]);
    assert_status(&client.get(&format!("{CONFIGMAPS}?labelSelector=app%20in%20x")).await, 400, "BadRequest");
    assert_status(&client.get(&format!("{CONFIGMAPS}?fieldSelector=spec.foo%3D1")).await, 400, "BadRequest");
    server.shutdown().await;
}

#[tokio::test]
async fn pagination_with_limit_and_continue_is_a_consistent_snapshot() {
    let (server, client) = server().await;
    for i in 0..7 {
        client.post(CONFIGMAPS, &json!({"metadata": {"name": format!("cm-{i}")}})).await;
    }
    let first = client.get(&format!("{CONFIGMAPS}?limit=3")).await.json();
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    assert_eq!(first["metadata"]["remainingItemCount"], 4);
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    // Changes after the first page do not show up in later pages.
    client.post(CONFIGMAPS, &json!({"metadata": {"name": "cm-9"}})).await;
    client.delete(&format!("{CONFIGMAPS}/cm-5"), None).await;
    let mut names: Vec<String> =
        first["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().into()).collect();
    let mut token = Some(token);
    while let Some(t) = token {
        let page = client.get(&format!("{CONFIGMAPS}?limit=3&continue={t}")).await.json();
        assert_eq!(page["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"], "same snapshot");
        names.extend(
            page["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        token = page["metadata"]["continue"].as_str().map(String::from);
    }
    assert_eq!(names, (0..7).map(|i| format!("cm-{i}")).collect::<Vec<_>>());
    assert_status(&client.get(&format!("{CONFIGMAPS}?limit=3&continue=garbage")).await, 400, "BadRequest");
    server.shutdown().await;
}

#[tokio::test]
async fn delete_returns_status_or_object_and_honours_preconditions() {
    let (server, client) = server().await;
    let secret = client.post(SECRETS, &json!({"metadata": {"name": "s"}})).await.json();
    let wrong = json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}});
    assert_status(&client.delete(&format!("{SECRETS}/s"), Some(&wrong)).await, 409, "Conflict");
    let right =
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": secret["metadata"]["uid"]}});
    let reply = client.delete(&format!("{SECRETS}/s"), Some(&right)).await;
    assert_eq!(reply.status, 200);
    let status = reply.json();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["status"], "Success");
    assert_eq!(status["details"]["name"], "s");
    assert_status(&client.delete(&format!("{SECRETS}/s"), None).await, 404, "NotFound");
    // Services return the deleted object.
    client.post("/api/v1/namespaces/fn/services", &common::service("svc")).await;
    let reply = client.delete("/api/v1/namespaces/fn/services/svc", None).await.json();
    assert_eq!(reply["kind"], "Service");
    // deletecollection with a selector.
    for name in ["x1", "x2", "y1"] {
        let app = &name[..1];
        client.post(CONFIGMAPS, &json!({"metadata": {"name": name, "labels": {"app": app}}})).await;
    }
    let reply = client.delete(&format!("{CONFIGMAPS}?labelSelector=app%3Dx"), None).await.json();
    assert_eq!(reply["kind"], "ConfigMapList");
    assert_eq!(reply["items"].as_array().unwrap().len(), 2);
    let left = client.get(CONFIGMAPS).await.json();
    assert_eq!(left["items"].as_array().unwrap().len(), 1);
    assert_eq!(server.requests("deletecollection", "configmaps"), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn delete_propagation_background_foreground_and_orphan() {
    let (server, client) = server().await;
    let pods = "/api/v1/namespaces/fn/pods";
    let pod = |name: &str, owner: &Value| {
        json!({"metadata": {"name": name, "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"containers": [{"name": "c", "image": "i"}]}})
    };
    let count = |client: Client| async move { client.get(pods).await.json()["items"].as_array().unwrap().len() };
    // Foreground: the owner stays (deletionTimestamp + finalizer) until its dependents are gone.
    let a = client.post(DEPLOYMENTS, &deployment("a")).await.json();
    assert_eq!(client.post(pods, &pod("a-1", &a)).await.status, 201);
    let reply = client.delete(&format!("{DEPLOYMENTS}/a"), Some(&json!({"propagationPolicy": "Foreground"}))).await;
    assert_eq!(reply.status, 200);
    let pending = reply.json();
    assert!(pending["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(pending["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    eventually("foreground deletion to finish", || {
        let client = client.clone();
        async move { (client.get(&format!("{DEPLOYMENTS}/a")).await.status == 404).then_some(()) }
    })
    .await;
    assert_eq!(count(client.clone()).await, 0);
    // Background: the owner goes at once, dependents after.
    let b = client.post(DEPLOYMENTS, &deployment("b")).await.json();
    client.post(pods, &pod("b-1", &b)).await;
    let reply = client.delete(&format!("{DEPLOYMENTS}/b"), Some(&json!({"propagationPolicy": "Background"}))).await;
    assert_eq!(reply.json()["status"], "Success");
    eventually("dependents to be collected", || {
        let client = client.clone();
        async move { (count(client).await == 0).then_some(()) }
    })
    .await;
    // Orphan: dependents stay, without the owner reference.
    let c = client.post(DEPLOYMENTS, &deployment("c")).await.json();
    client.post(pods, &pod("c-1", &c)).await;
    client.delete(&format!("{DEPLOYMENTS}/c?propagationPolicy=Orphan"), None).await;
    let orphan = client.get(&format!("{pods}/c-1")).await.json();
    assert!(orphan["metadata"]["ownerReferences"].as_array().is_none_or(|r| r.is_empty()), "{orphan}");
    server.shutdown().await;
}

#[tokio::test]
async fn namespace_deletion_terminates_then_removes_its_objects() {
    let (server, client) = server().await;
    assert_eq!(client.post("/api/v1/namespaces", &namespace("doomed")).await.status, 201);
    client.post("/api/v1/namespaces/doomed/secrets", &json!({"metadata": {"name": "s"}})).await;
    // A finalizer holds the namespace in Terminating.
    let held = json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
    assert_eq!(client.post("/api/v1/namespaces/doomed/configmaps", &held).await.status, 201);
    let reply = client.delete("/api/v1/namespaces/doomed", None).await;
    assert_eq!(reply.status, 200);
    let ns = reply.json();
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert!(ns["metadata"]["deletionTimestamp"].is_string());
    let held = eventually("the held object to be deleting", || {
        let client = client.clone();
        async move {
            let cm = client.get("/api/v1/namespaces/doomed/configmaps/held").await.json();
            cm["metadata"]["deletionTimestamp"].is_string().then_some(cm)
        }
    })
    .await;
    assert_eq!(client.get("/api/v1/namespaces/doomed").await.json()["status"]["phase"], "Terminating");
    let reply = client.post("/api/v1/namespaces/doomed/secrets", &json!({"metadata": {"name": "late"}})).await;
    let status = assert_status(&reply, 403, "Forbidden");
    assert_eq!(status["details"]["causes"][0]["reason"], "NamespaceTerminating");
    // Removing the finalizer lets the object, then the namespace, go.
    let mut released = held.clone();
    released["metadata"]["finalizers"] = json!([]);
    assert_eq!(client.put("/api/v1/namespaces/doomed/configmaps/held", &released).await.status, 200);
    eventually("the namespace to be removed", || {
        let client = client.clone();
        async move { (client.get("/api/v1/namespaces/doomed").await.status == 404).then_some(()) }
    })
    .await;
    assert_eq!(client.get("/api/v1/namespaces/doomed/secrets/s").await.status, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn resource_quota_refuses_creates_with_403() {
    let (server, client) = server().await;
    let quota = json!({"metadata": {"name": "q"}, "spec": {"hard": {"count/deployments.apps": "1", "secrets": "5"}}});
    assert_eq!(client.post("/api/v1/namespaces/fn/resourcequotas", &quota).await.status, 201);
    assert_eq!(client.post(DEPLOYMENTS, &deployment("a")).await.status, 201);
    let status = assert_status(&client.post(DEPLOYMENTS, &deployment("b")).await, 403, "Forbidden");
    assert_eq!(
        status["message"],
        "deployments.apps \"b\" is forbidden: exceeded quota: q, requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1"
    );
    assert_eq!(status["details"]["kind"], "deployments");
    eventually("quota status to be current", || {
        let client = client.clone();
        async move {
            let q = client.get("/api/v1/namespaces/fn/resourcequotas/q").await.json();
            (q["status"]["used"]["count/deployments.apps"] == "1").then_some(())
        }
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn forbid_hook_refuses_like_rbac_until_allow_all() {
    let (server, client) = server().await;
    server.forbid("create", "deployments", Some("fn"));
    let status = assert_status(&client.post(DEPLOYMENTS, &deployment("a")).await, 403, "Forbidden");
    assert_eq!(
        status["message"],
        "deployments.apps is forbidden: User \"system:anonymous\" cannot create resource \"deployments\" in API group \"apps\" in the namespace \"fn\""
    );
    // Other verbs and namespaces are not affected.
    assert_eq!(client.get(DEPLOYMENTS).await.status, 200);
    assert_eq!(client.post("/apis/apps/v1/namespaces/default/deployments", &deployment("a")).await.status, 201);
    server.forbid("*", "namespaces", None);
    let status = assert_status(&client.get("/api/v1/namespaces").await, 403, "Forbidden");
    assert!(status["message"].as_str().unwrap().contains("at the cluster scope"));
    server.allow_all();
    assert_eq!(client.post(DEPLOYMENTS, &deployment("a")).await.status, 201);
    assert_eq!(client.get("/api/v1/namespaces").await.status, 200);
    assert_eq!(server.requests("create", "deployments"), 3, "refused requests are counted too");
    server.shutdown().await;
}

#[tokio::test]
async fn conflict_hook_refuses_the_next_writes_and_bumps_the_version() {
    let (server, client) = server().await;
    let created = client.post(DEPLOYMENTS, &deployment("a")).await.json();
    server.conflict_next_writes("deployments", 2);
    let patch = json!({"spec": {"replicas": 2}});
    assert_status(
        &client.patch(&format!("{DEPLOYMENTS}/a"), "application/merge-patch+json", &patch).await,
        409,
        "Conflict",
    );
    let bumped = client.get(&format!("{DEPLOYMENTS}/a")).await.json();
    assert!(rv(&bumped) > rv(&created), "another writer moved the version on");
    assert_status(&client.put(&format!("{DEPLOYMENTS}/a"), &bumped).await, 409, "Conflict");
    let reply = client.patch(&format!("{DEPLOYMENTS}/a"), "application/merge-patch+json", &patch).await;
    assert_eq!(reply.status, 200, "the third write passes");
    assert_eq!(reply.json()["spec"]["replicas"], 2);
    server.shutdown().await;
}

#[tokio::test]
async fn scale_subresource_reads_and_writes_replicas() {
    let (server, client) = server().await;
    client.post(DEPLOYMENTS, &deployment("a")).await;
    let scale = client.get(&format!("{DEPLOYMENTS}/a/scale")).await.json();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"]["selector"], "faas_function=a");
    let mut put = scale.clone();
    put["spec"]["replicas"] = json!(4);
    let reply = client.put(&format!("{DEPLOYMENTS}/a/scale"), &put).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["spec"]["replicas"], 4);
    // The stale version again: conflict.
    assert_status(&client.put(&format!("{DEPLOYMENTS}/a/scale"), &put).await, 409, "Conflict");
    let reply = client
        .patch(&format!("{DEPLOYMENTS}/a/scale"), "application/merge-patch+json", &json!({"spec": {"replicas": 0}}))
        .await;
    assert_eq!(reply.json()["spec"]["replicas"], 0);
    assert_eq!(client.get(&format!("{DEPLOYMENTS}/a")).await.json()["spec"]["replicas"], 0);
    let negative = client
        .patch(&format!("{DEPLOYMENTS}/a/scale"), "application/merge-patch+json", &json!({"spec": {"replicas": -1}}))
        .await;
    let status = assert_status(&negative, 422, "Invalid");
    assert_eq!(status["details"]["kind"], "Scale");
    assert_eq!(server.requests("get", "deployments/scale"), 1);
    assert_eq!(server.requests("update", "deployments/scale"), 2);
    assert_eq!(server.requests("patch", "deployments/scale"), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn pause_cuts_connections_and_resume_serves_the_same_state() {
    let (server, client) = server().await;
    client.post(DEPLOYMENTS, &deployment("a")).await;
    let mut watch = client.stream(&format!("{DEPLOYMENTS}?watch=1&resourceVersion=1")).await;
    assert_eq!(watch.event().await.unwrap()["type"], "ADDED");
    server.pause().await;
    assert!(watch.next().await.is_none(), "the watch is cut");
    assert!(client.send("GET", DEPLOYMENTS, None, Vec::new()).await.is_err(), "refused while paused");
    server.resume().await.expect("resume");
    let list = client.get(DEPLOYMENTS).await.json();
    assert_eq!(list["items"][0]["metadata"]["name"], "a");
    server.shutdown().await;
}

#[tokio::test]
async fn partial_object_metadata_and_unacceptable_media_types() {
    let (server, client) = server().await;
    client.post(DEPLOYMENTS, &deployment("a")).await;
    let accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
    let list = client.get_accept(DEPLOYMENTS, accept).await.json();
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(list["items"][0]["metadata"]["name"], "a");
    assert!(list["items"][0]["spec"].is_null());
    let one = client
        .get_accept(&format!("{DEPLOYMENTS}/a"), "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1")
        .await
        .json();
    assert_eq!(one["kind"], "PartialObjectMetadata");
    let reply = client.get_accept(DEPLOYMENTS, "application/vnd.kubernetes.protobuf").await;
    assert_status(&reply, 406, "NotAcceptable");
    server.shutdown().await;
}

#[tokio::test]
async fn generate_name_appends_a_random_suffix_when_no_name_is_given() {
    let (server, client) = server().await;
    let generated = json!({"metadata": {"generateName": "gen-"}});
    let first = client.post(CONFIGMAPS, &generated).await;
    assert_eq!(first.status, 201, "{}", first.text());
    let first = first.json();
    let name = first["metadata"]["name"].as_str().unwrap().to_string();
    // Upstream: the prefix plus 5 random lowercase alphanumerics; generateName is kept.
    assert!(name.starts_with("gen-") && name.len() == "gen-".len() + 5, "{name}");
    assert!(name["gen-".len()..].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{name}");
    assert_eq!(first["metadata"]["generateName"], "gen-");
    assert_eq!(client.get(&format!("{CONFIGMAPS}/{name}")).await.status, 200);
    let second = client.post(CONFIGMAPS, &generated).await.json();
    assert_ne!(second["metadata"]["name"], first["metadata"]["name"], "each create draws a new name");
    // A name, when given, wins over generateName.
    let named = client.post(CONFIGMAPS, &json!({"metadata": {"name": "fixed", "generateName": "gen-"}})).await.json();
    assert_eq!(named["metadata"]["name"], "fixed");
    server.shutdown().await;
}

#[tokio::test]
async fn dry_run_is_refused_with_400_and_changes_nothing() {
    let (server, client) = server().await;
    let reply = client.post(&format!("{CONFIGMAPS}?dryRun=All"), &json!({"metadata": {"name": "dry"}})).await;
    assert_status(&reply, 400, "BadRequest");
    assert_status(&client.get(&format!("{CONFIGMAPS}/dry")).await, 404, "NotFound");
    client.post(CONFIGMAPS, &json!({"metadata": {"name": "wet"}, "data": {"k": "1"}})).await;
    let patch = json!({"data": {"k": "2"}});
    let reply = client.patch(&format!("{CONFIGMAPS}/wet?dryRun=All"), "application/merge-patch+json", &patch).await;
    assert_status(&reply, 400, "BadRequest");
    let options = json!({"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]});
    assert_status(&client.delete(&format!("{CONFIGMAPS}/wet"), Some(&options)).await, 400, "BadRequest");
    let wet = client.get(&format!("{CONFIGMAPS}/wet")).await;
    assert_eq!(wet.status, 200, "a refused dry-run delete deletes nothing");
    assert_eq!(wet.json()["data"]["k"], "1", "a refused dry-run patch changes nothing");
    server.shutdown().await;
}

#[tokio::test]
async fn protobuf_request_bodies_are_415_unsupported_media_type() {
    let (server, client) = server().await;
    let reply = client
        .request("POST", CONFIGMAPS, Some("application/vnd.kubernetes.protobuf"), b"k8s\x00\x0a\x02v1".to_vec())
        .await;
    assert_status(&reply, 415, "UnsupportedMediaType");
    assert_eq!(client.get(CONFIGMAPS).await.json()["items"], json!([]), "nothing was created");
    server.shutdown().await;
}

#[tokio::test]
async fn request_bodies_over_3_mib_are_413_request_entity_too_large() {
    let (server, client) = server().await;
    // The API server's limit for a request body is 3 MiB (3145728 bytes).
    let filler = "x".repeat(3 * 1024 * 1024);
    let big = json!({"metadata": {"name": "big"}, "data": {"k": filler}});
    let reply = client.post(CONFIGMAPS, &big).await;
    let status = assert_status(&reply, 413, "RequestEntityTooLarge");
    assert!(status["message"].as_str().unwrap().contains("3145728"), "{status}");
    assert_status(&client.get(&format!("{CONFIGMAPS}/big")).await, 404, "NotFound");
    // Just under the limit is accepted.
    let fits = json!({"metadata": {"name": "fits"}, "data": {"k": "x".repeat(3 * 1024 * 1024 - 100)}});
    assert_eq!(client.post(CONFIGMAPS, &fits).await.status, 201);
    server.shutdown().await;
}

#[tokio::test]
async fn strategic_merge_patch_retain_keys_and_delete_from_primitive_list() {
    let (server, client) = server().await;
    let path = format!("{DEPLOYMENTS}/a");
    client.post(DEPLOYMENTS, &deployment("a")).await;
    // The upstream example: switching to Recreate must drop rollingUpdate,
    // which only $retainKeys (the strategy's patch strategy) can do.
    let recreate = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let reply = client.patch(&path, "application/strategic-merge-patch+json", &recreate).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["spec"]["strategy"], json!({"type": "Recreate"}));
    // $deleteFromPrimitiveList/<field> removes values from a merged primitive list.
    let cm = json!({"metadata": {"name": "f", "finalizers": ["example.com/a", "example.com/b", "example.com/c"]}});
    client.post(CONFIGMAPS, &cm).await;
    let delete = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/b"]}});
    let reply = client.patch(&format!("{CONFIGMAPS}/f"), "application/strategic-merge-patch+json", &delete).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["metadata"]["finalizers"], json!(["example.com/a", "example.com/c"]));
    // Finalizers merge (patchStrategy merge): a patch adds, it does not replace.
    let add = json!({"metadata": {"finalizers": ["example.com/d"]}});
    let reply = client.patch(&format!("{CONFIGMAPS}/f"), "application/strategic-merge-patch+json", &add).await;
    assert_eq!(reply.json()["metadata"]["finalizers"], json!(["example.com/a", "example.com/c", "example.com/d"]));
    server.shutdown().await;
}

#[tokio::test]
async fn resource_quota_status_reports_hard_and_current_usage() {
    let (server, client) = server().await;
    client.post(SECRETS, &json!({"metadata": {"name": "before"}})).await;
    let quota = json!({"metadata": {"name": "q"}, "spec": {"hard": {"secrets": "5", "count/configmaps": "3", "services": "2"}}});
    assert_eq!(client.post("/api/v1/namespaces/fn/resourcequotas", &quota).await.status, 201);
    let status_of = |client: Client| async move {
        client.get("/api/v1/namespaces/fn/resourcequotas/q").await.json()["status"].clone()
    };
    // Objects created before the quota are counted; status.hard mirrors spec.hard.
    let want = json!({"hard": {"secrets": "5", "count/configmaps": "3", "services": "2"},
        "used": {"secrets": "1", "count/configmaps": "0", "services": "0"}});
    eventually("the quota's first status", || {
        let (client, want) = (client.clone(), want.clone());
        async move { (status_of(client).await == want).then_some(()) }
    })
    .await;
    client.post(SECRETS, &json!({"metadata": {"name": "after"}})).await;
    client.post(CONFIGMAPS, &json!({"metadata": {"name": "c"}})).await;
    eventually("usage to rise", || {
        let client = client.clone();
        async move {
            let used = status_of(client).await["used"].clone();
            (used == json!({"secrets": "2", "count/configmaps": "1", "services": "0"})).then_some(())
        }
    })
    .await;
    client.delete(&format!("{SECRETS}/before"), None).await;
    eventually("usage to fall after a delete", || {
        let client = client.clone();
        async move { (status_of(client).await["used"]["secrets"] == "1").then_some(()) }
    })
    .await;
    server.shutdown().await;
}
