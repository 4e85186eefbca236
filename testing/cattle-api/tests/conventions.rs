//! The server's API conventions, one test per rule: rancher/api-spec's
//! collections, links, filters, pagination, errors and schema discovery,
//! authentication, and Cattle's states, transitioning fields and actions.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use cattle_test_server::{Options, TestServer};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

struct Api {
    server: TestServer,
    auth: Option<String>,
}

impl Api {
    async fn start() -> Api {
        let server = TestServer::start(Options::default()).await.unwrap();
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            server.access_key(),
            server.secret_key()
        ));
        Api { server, auth: Some(format!("Basic {token}")) }
    }

    async fn call(&self, method: Method, url: &str, body: Option<Value>) -> (StatusCode, http::HeaderMap, Value) {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let url = if url.starts_with("http") { url.to_owned() } else { format!("{}{url}", self.server.url()) };
        let mut request = Request::builder().method(method).uri(&url);
        if let Some(auth) = &self.auth {
            request = request.header("authorization", auth);
        }
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let response = client.request(request.body(Full::new(bytes)).unwrap()).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        (parts.status, parts.headers, json)
    }

    async fn get(&self, url: &str) -> Value {
        let (status, _, body) = self.call(Method::GET, url, None).await;
        assert_eq!(status, StatusCode::OK, "GET {url}: {body}");
        body
    }

    async fn post(&self, url: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, body) = self.call(Method::POST, url, Some(body)).await;
        (status, body)
    }

    /// A stack, active.
    async fn stack(&self, name: &str) -> Value {
        let (status, stack) = self.post("/stacks", json!({ "name": name })).await;
        assert_eq!(status, StatusCode::CREATED, "{stack}");
        self.wait(&stack, "active").await
    }

    /// A started service running `fprocess` with `scale` instances.
    async fn service(&self, stack: &Value, name: &str, fprocess: &str, scale: u64) -> Value {
        let body = json!({
            "name": name, "stackId": stack["id"], "scale": scale, "startOnCreate": true,
            "launchConfig": {
                "imageUuid": "docker:functions/test:1",
                "environment": { "fprocess": fprocess, "VERSION": "one" },
                "ports": ["8080/tcp"],
                "healthCheck": { "port": 8080, "requestLine": "GET /_/health HTTP/1.0", "interval": 50, "healthyThreshold": 1 },
            },
        });
        let (status, service) = self.post("/services", body).await;
        assert_eq!(status, StatusCode::CREATED, "{service}");
        service
    }

    /// Polls `resource`'s self link until its state is `state`.
    async fn wait(&self, resource: &Value, state: &str) -> Value {
        let link = resource["links"]["self"].as_str().unwrap().to_owned();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.get(&link).await;
            if now["state"] == state {
                return now;
            }
            assert!(tokio::time::Instant::now() < deadline, "{link} never became {state}: {now}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn assert_error(body: &Value, status: u16, code: &str) {
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[tokio::test]
async fn requests_without_valid_keys_get_401_with_an_error_object() {
    let mut api = Api::start().await;
    api.auth = None;
    let (status, headers, body) = api.call(Method::GET, "/services", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, 401, "Unauthorized");
    assert!(headers.contains_key("x-api-schemas") && headers.contains_key("www-authenticate"));
    api.auth = Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("test-access-key:wrong")));
    assert_eq!(api.call(Method::GET, "/schemas", None).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn schemas_are_discovered_from_the_x_api_schemas_header() {
    let api = Api::start().await;
    let (_, headers, root) = api.call(Method::GET, "", None).await;
    assert_eq!(root["type"], "apiVersion");
    let schemas_url = headers["x-api-schemas"].to_str().unwrap().to_owned();
    let schemas = api.get(&schemas_url).await;
    assert_eq!((schemas["type"].as_str(), schemas["resourceType"].as_str()), (Some("collection"), Some("schema")));
    let service = schemas["data"].as_array().unwrap().iter().find(|s| s["id"] == "service").unwrap();
    let collection = service["links"]["collection"].as_str().unwrap();
    assert!(collection.ends_with("/v2-beta/projects/1a5/services"), "{collection}");
    assert_eq!(service["collectionMethods"], json!(["GET", "POST"]));
    assert_eq!(service["resourceActions"]["upgrade"]["input"], "serviceUpgrade");
    assert_eq!(api.get(collection).await["resourceType"], "service");
    assert_eq!(api.get("/schemas/launchConfig").await["resourceFields"]["secrets"]["type"], "array[secretReference]");
    assert!(api.get("/schemas").await["data"].as_array().unwrap().iter().any(|s| s["id"] == "secret"));
}

#[tokio::test]
async fn collections_have_data_links_filters_and_pagination() {
    let api = Api::start().await;
    let stack = api.stack("shape").await;
    for name in ["alpha", "beta", "gamma"] {
        api.service(&stack, name, "cat", 0).await;
    }
    let all = api.get("/services").await;
    assert_eq!(all["type"], "collection");
    assert_eq!(all["resourceType"], "service");
    assert!(all["links"]["self"].as_str().unwrap().ends_with("/services"));
    assert_eq!(all["createTypes"]["service"], all["links"]["self"]);
    assert_eq!(all["data"].as_array().unwrap().len(), 3);
    assert_eq!(all["filters"]["name"], Value::Null);
    let resource = &all["data"][0];
    assert_eq!(resource["type"], "service");
    assert!(resource["id"].as_str().unwrap().starts_with("1s"));
    assert!(resource["links"]["self"].as_str().unwrap().ends_with(resource["id"].as_str().unwrap()));
    assert!(resource["links"]["instances"].is_string() && resource["actions"].is_object());

    let page = api.get("/services?limit=2").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["pagination"]["partial"], true);
    let next = api.get(page["pagination"]["next"].as_str().unwrap()).await;
    assert_eq!(next["data"].as_array().unwrap().len(), 1);
    assert_eq!(next["pagination"]["partial"], false);
}

#[tokio::test]
async fn filters_select_by_name_stack_and_modifier() {
    let api = Api::start().await;
    let (one, two) = (api.stack("one").await, api.stack("two").await);
    api.service(&one, "web", "cat", 0).await;
    api.service(&one, "worker", "cat", 0).await;
    api.service(&two, "web", "cat", 0).await;
    let count = |v: &Value| v["data"].as_array().unwrap().len();
    assert_eq!(count(&api.get("/services?name=web").await), 2);
    let by_stack = api.get(&format!("/services?stackId={}", one["id"].as_str().unwrap())).await;
    assert_eq!(count(&by_stack), 2);
    let both = api.get(&format!("/services?name=web&stackId={}", two["id"].as_str().unwrap())).await;
    assert_eq!(count(&both), 1);
    assert_eq!(both["filters"]["name"], json!([{ "modifier": "eq", "value": "web" }]));
    assert_eq!(count(&api.get("/services?name_prefix=wo").await), 1);
    assert_eq!(count(&api.get("/services?name_ne=web").await), 1);
    let (status, _, body) = api.call(Method::GET, "/services?stackId_prefix=1", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, 422, "InvalidFilterModifier");
    assert_eq!(count(&api.get(&format!("{}/services", one["links"]["self"].as_str().unwrap())).await), 2);
}

#[tokio::test]
async fn errors_are_error_objects_with_status_code_and_message() {
    let api = Api::start().await;
    let (status, _, body) = api.call(Method::GET, "/services/1s999", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, 404, "NotFound");
    let v1 = format!("{}/v1/services", api.server.url().trim_end_matches("/v2-beta"));
    let (status, _, body) = api.call(Method::GET, &v1, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["message"].as_str().unwrap().contains("/v2-beta only"), "{body}");
    let (status, body) = api.post("/services", json!({ "scale": 1 })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, 422, "MissingRequired");
    assert_eq!(body["fieldName"], "name");
    let stack = api.stack("errors").await;
    let service = api.service(&stack, "svc", "cat", 0).await;
    let (status, body) = api
        .post(
            "/services",
            json!({ "name": "svc", "stackId": stack["id"], "launchConfig": { "imageUuid": "docker:x" } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, 422, "NotUnique");
    let (status, _, body) =
        api.call(Method::PUT, service["links"]["self"].as_str().unwrap(), Some(json!({ "scale": "two" }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, 422, "InvalidType");
    let (status, body) = api
        .post("/services", json!({ "name": "img", "stackId": stack["id"], "launchConfig": { "imageUuid": "nginx" } }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, 422, "InvalidFormat");
    let (status, _, body) = api.call(Method::DELETE, "/instances", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, 405, "MethodNotAllowed");
}

#[tokio::test]
async fn states_transition_with_transitioning_fields_and_actions_follow_the_state() {
    let api = Api::start().await;
    let stack = api.stack("states").await;
    let service = api.service(&stack, "svc", "cat", 1).await;
    assert_eq!(service["state"], "registering");
    assert_eq!(service["transitioning"], "yes");
    let active = api.wait(&service, "active").await;
    assert_eq!(active["transitioning"], "no");
    let actions = active["actions"].as_object().unwrap();
    assert!(actions.contains_key("upgrade") && actions.contains_key("remove"), "{actions:?}");
    assert!(!actions.contains_key("finishupgrade") && !actions.contains_key("rollback"), "{actions:?}");
    let finish = format!("{}/?action=finishupgrade", active["links"]["self"].as_str().unwrap());
    let (status, body) = api.post(&finish, json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, 422, "InvalidState");
    assert!(body["message"].as_str().unwrap().contains("active"), "{body}");

    let instances = api.get(active["links"]["instances"].as_str().unwrap()).await;
    let instance = &instances["data"][0];
    assert_eq!((instance["state"].as_str(), instance["healthState"].as_str()), (Some("running"), Some("healthy")));
    assert!(instance["primaryIpAddress"].as_str().unwrap().starts_with("10.42."));

    let (status, _, removing) = api.call(Method::DELETE, active["links"]["self"].as_str().unwrap(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((removing["state"].as_str(), removing["transitioning"].as_str()), (Some("removing"), Some("yes")));
    let removed = api.wait(&active, "removed").await;
    assert!(removed["removed"].is_string() && removed["actions"].as_object().unwrap().is_empty());
}

#[tokio::test]
async fn instances_are_real_watchdogs_on_their_public_endpoints() {
    let api = Api::start().await;
    let stack = api.stack("real").await;
    let service = api.wait(&api.service(&stack, "echo", "cat", 2).await, "active").await;
    let endpoints = service["publicEndpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 2, "{service}");
    for endpoint in endpoints {
        let url = format!("http://{}:{}/", endpoint["ipAddress"].as_str().unwrap(), endpoint["port"]);
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let request = Request::post(&url).body(Full::new(Bytes::from_static(b"ping"))).unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "ping");
    }
    assert_eq!(api.server.running_instances(), 2);
}

#[tokio::test]
async fn instances_are_separate_fwatchdog_processes_and_stopping_leaves_none() {
    let api = Api::start().await;
    let fwatchdog = std::fs::canonicalize(api.server.fwatchdog().unwrap()).unwrap();
    let stack = api.stack("processes").await;
    let service = api.wait(&api.service(&stack, "echo", "cat", 2).await, "active").await;
    let instances = api.get(service["links"]["instances"].as_str().unwrap()).await;
    let mut pids = Vec::new();
    for instance in instances["data"].as_array().unwrap() {
        let pid = api.server.instance_pid(instance["id"].as_str().unwrap()).expect("a running instance has a pid");
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert_eq!(exe, fwatchdog, "instance {} runs {}", instance["id"], exe.display());
        assert_ne!(pid, std::process::id());
        pids.push(pid);
    }
    assert_eq!(pids.len(), 2);
    assert_ne!(pids[0], pids[1], "one process per instance");

    // A container that dies: its instance leaves `running`, says why, and
    // its port (the health check's) answers no more.
    let killed = &instances["data"][0];
    let port = service["publicEndpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["instanceId"] == killed["id"])
        .and_then(|e| e["port"].as_u64())
        .unwrap() as u16;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pids[0] as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let failed = api.wait(killed, "error").await;
    assert_eq!(failed["transitioning"], "error", "{failed}");
    assert!(failed["transitioningMessage"].as_str().unwrap().contains("fwatchdog exited"), "{failed}");
    assert_eq!(api.server.instance_pid(killed["id"].as_str().unwrap()), None);
    let health = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert!(health.is_err(), "the killed instance's port still answers");
    let after = api.get(service["links"]["self"].as_str().unwrap()).await;
    assert_eq!(after["publicEndpoints"].as_array().unwrap().len(), 1, "{after}");

    // Stopping the service stops (and reaps) every fwatchdog it ran.
    let (status, body) = api.post(after["actions"]["deactivate"].as_str().unwrap(), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    api.wait(&service, "inactive").await;
    for pid in &pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "fwatchdog {pid} is still there");
    }
    assert_eq!(api.server.running_instances(), 0);
}

#[tokio::test]
async fn upgrade_then_rollback_then_upgrade_and_finish() {
    let api = Api::start().await;
    let stack = api.stack("upgrades").await;
    let service = api.wait(&api.service(&stack, "svc", "cat", 1).await, "active").await;
    let mut launch_config = service["launchConfig"].clone();
    launch_config["environment"]["VERSION"] = json!("two");
    let input = json!({ "inServiceStrategy": { "launchConfig": launch_config, "startFirst": true, "batchSize": 1, "intervalMillis": 10 } });
    let (status, upgrading) = api.post(service["actions"]["upgrade"].as_str().unwrap(), input.clone()).await;
    assert_eq!(status, StatusCode::OK, "{upgrading}");
    assert_eq!((upgrading["state"].as_str(), upgrading["transitioning"].as_str()), (Some("upgrading"), Some("yes")));
    assert!(upgrading["actions"]["cancelupgrade"].is_string());
    let upgraded = api.wait(&service, "upgraded").await;
    assert_eq!(upgraded["launchConfig"]["environment"]["VERSION"], "two");
    assert_eq!(upgraded["upgrade"]["inServiceStrategy"]["previousLaunchConfig"]["environment"]["VERSION"], "one");
    let actions = upgraded["actions"].as_object().unwrap();
    assert!(
        actions.contains_key("finishupgrade") && actions.contains_key("rollback") && !actions.contains_key("upgrade")
    );
    let states = |v: &Value| -> Vec<String> {
        v["data"].as_array().unwrap().iter().map(|i| i["state"].as_str().unwrap().to_owned()).collect()
    };
    let instances = api.get(upgraded["links"]["instances"].as_str().unwrap()).await;
    assert_eq!(states(&instances), ["stopped", "running"], "the old instance is kept, stopped");

    api.post(upgraded["actions"]["rollback"].as_str().unwrap(), json!({})).await;
    let rolled_back = api.wait(&service, "active").await;
    assert_eq!(rolled_back["launchConfig"]["environment"]["VERSION"], "one");
    let instances = api.get(rolled_back["links"]["instances"].as_str().unwrap()).await;
    let running: Vec<&Value> =
        instances["data"].as_array().unwrap().iter().filter(|i| i["state"] == "running").collect();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0]["environment"]["VERSION"], "one", "the old instance runs again");

    api.post(rolled_back["actions"]["upgrade"].as_str().unwrap(), input).await;
    let upgraded = api.wait(&service, "upgraded").await;
    api.post(upgraded["actions"]["finishupgrade"].as_str().unwrap(), json!({})).await;
    let finished = api.wait(&service, "active").await;
    assert_eq!(finished["launchConfig"]["environment"]["VERSION"], "two");
    assert_eq!(finished["upgrade"], Value::Null);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let instances = api.get(finished["links"]["instances"].as_str().unwrap()).await;
        let live: Vec<String> = states(&instances).into_iter().filter(|s| s != "removed").collect();
        if live == ["running"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "old instances were not removed: {live:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn scale_changes_wait_for_an_upgrade_to_be_finished_or_rolled_back() {
    let api = Api::start().await;
    let stack = api.stack("scaling").await;
    let service = api.wait(&api.service(&stack, "svc", "cat", 1).await, "active").await;
    let link = service["links"]["self"].as_str().unwrap().to_owned();
    let put_scale = |scale: u64| {
        let (api, link) = (&api, link.clone());
        async move {
            let (status, _, body) = api.call(Method::PUT, &link, Some(json!({ "scale": scale }))).await;
            (status, body)
        }
    };
    let mut launch_config = service["launchConfig"].clone();
    launch_config["environment"]["VERSION"] = json!("two");
    let input = json!({ "inServiceStrategy": { "launchConfig": launch_config, "startFirst": true, "batchSize": 1, "intervalMillis": 2000 } });
    let (status, upgrading) = api.post(service["actions"]["upgrade"].as_str().unwrap(), input).await;
    assert_eq!((status, upgrading["state"].as_str()), (StatusCode::OK, Some("upgrading")), "{upgrading}");

    for state in ["upgrading", "upgraded"] {
        let now = api.wait(&service, state).await;
        let (status, body) = put_scale(2).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a scale change while {state}: {body}");
        assert_error(&body, 422, "InvalidState");
        assert!(body["message"].as_str().unwrap().contains(state), "{body}");
        let (status, body) = put_scale(1).await;
        assert_eq!(status, StatusCode::OK, "the same scale is no change, accepted while {state}: {body}");
        assert_eq!(api.get(&link).await["scale"], 1, "{now}");
    }

    let upgraded = api.get(&link).await;
    api.post(upgraded["actions"]["finishupgrade"].as_str().unwrap(), json!({})).await;
    api.wait(&service, "active").await;
    let (status, body) = put_scale(2).await;
    assert_eq!((status, body["state"].as_str()), (StatusCode::OK, Some("updating-active")), "{body}");
    assert_eq!(api.wait(&service, "active").await["scale"], 2);
}
