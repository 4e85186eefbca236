//! The HTTP API called as a tower service: every route, status code and
//! error path, without a socket.

mod support;

use axum::body::Body as AxumBody;
use axum::Router;
use base64::Engine;
use faas_core::api::{
    self, ApiConfig, BasicAuth, CALL_ID_HEADER, DURATION_HEADER, PLATFORM_ERROR_HEADER, START_TIME_HEADER,
};
use faas_core::{FunctionStatus, GatewayInfo, ProviderInfo, Secret, VersionInfo};
use http::{header, Method, Request, StatusCode};
use support::{body_bytes, MemoryProvider};
use tower::ServiceExt;

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

async fn call(app: &Router, method: Method, uri: &str, body: impl Into<AxumBody>) -> Reply {
    let request = Request::builder().method(method).uri(uri).body(body.into()).unwrap();
    send(app, request).await
}

async fn send(app: &Router, request: Request<AxumBody>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body_bytes(body).await).into(),
    }
}

fn app() -> Router {
    api::router(MemoryProvider::new().shared(), ApiConfig::default())
}

const ECHO: &str = r#"{"service":"echo","image":"ghcr.io/example/echo:1","envProcess":"cat","envVars":{"A":"1"},"labels":{"team":"a"}}"#;

async fn deployed() -> Router {
    let app = app();
    assert_eq!(call(&app, Method::POST, "/system/functions", ECHO).await.status, StatusCode::ACCEPTED);
    app
}

#[tokio::test]
async fn function_lifecycle_status_codes() {
    let app = deployed().await;

    let dup = call(&app, Method::POST, "/system/functions", ECHO).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert!(dup.body.contains("already exists"), "{}", dup.body);

    let list = call(&app, Method::GET, "/system/functions", AxumBody::empty()).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.headers[header::CONTENT_TYPE], "application/json");
    let functions: Vec<FunctionStatus> = serde_json::from_str(&list.body).unwrap();
    assert_eq!(functions.len(), 1);
    assert_eq!((functions[0].name.as_str(), functions[0].namespace.as_str()), ("echo", "openfaas-fn"));
    assert_eq!(functions[0].env_vars["A"], "1");

    let status = call(&app, Method::GET, "/system/function/echo", AxumBody::empty()).await;
    assert_eq!(status.status, StatusCode::OK);
    let status: FunctionStatus = serde_json::from_str(&status.body).unwrap();
    assert_eq!(status.image, "ghcr.io/example/echo:1");

    let updated = ECHO.replace(r#""A":"1""#, r#""A":"2""#);
    assert_eq!(call(&app, Method::PUT, "/system/functions", updated).await.status, StatusCode::ACCEPTED);
    let status = call(&app, Method::GET, "/system/function/echo", AxumBody::empty()).await;
    assert!(status.body.contains(r#""A":"2""#), "{}", status.body);

    let scale = call(&app, Method::POST, "/system/scale-function/echo", r#"{"serviceName":"echo","replicas":3}"#).await;
    assert_eq!(scale.status, StatusCode::ACCEPTED);
    let status = call(&app, Method::GET, "/system/function/echo", AxumBody::empty()).await;
    assert!(status.body.contains(r#""replicas":3"#), "{}", status.body);

    let delete = call(&app, Method::DELETE, "/system/functions", r#"{"functionName":"echo"}"#).await;
    assert_eq!(delete.status, StatusCode::ACCEPTED);
    for (method, uri, body) in [
        (Method::DELETE, "/system/functions", r#"{"functionName":"echo"}"#),
        (Method::PUT, "/system/functions", ECHO),
        (Method::GET, "/system/function/echo", ""),
        (Method::POST, "/system/scale-function/echo", r#"{"replicas":1}"#),
        (Method::POST, "/function/echo", "hi"),
    ] {
        let reply = call(&app, method.clone(), uri, body).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert_eq!(reply.headers[PLATFORM_ERROR_HEADER], "platform");
        assert!(reply.body.contains("echo.openfaas-fn"), "{}", reply.body);
    }
}

#[tokio::test]
async fn bad_input_is_400_naming_the_problem() {
    let app = app();
    let cases = [
        (Method::POST, "/system/functions", "{not json", "malformed JSON"),
        (Method::POST, "/system/functions", "", "empty body"),
        (Method::POST, "/system/functions", r#"{"service":"Bad_Name"}"#, "invalid service"),
        (Method::POST, "/system/functions", r#"{"service":""}"#, "invalid service: must not be empty"),
        (Method::POST, "/system/functions", r#"{"service":"a","envVars":{"1X":"y"}}"#, "invalid envVars.1X"),
        (Method::POST, "/system/functions", r#"{"service":"a","labels":{"-x":"y"}}"#, "invalid labels.-x"),
        (Method::POST, "/system/functions", r#"{"service":"a","limits":{"memory":"lots"}}"#, "invalid limits.memory"),
        (Method::POST, "/system/functions", r#"{"service":"a","secrets":["Bad"]}"#, "invalid secrets"),
        (Method::POST, "/system/functions", r#"{"service":"a","namespace":"Team"}"#, "invalid namespace"),
        (Method::POST, "/system/functions?namespace=a.b", r#"{"service":"a"}"#, "invalid namespace"),
        (Method::POST, "/system/functions", r#"{"service":"a","envVars":"x"}"#, "malformed JSON: invalid type"),
        (Method::POST, "/system/scale-function/a", r#"{"replicas":-1}"#, "malformed JSON"),
        (Method::POST, "/system/scale-function/a", r#"{"replicas":100000}"#, "invalid replicas"),
        (Method::POST, "/system/scale-function/a", r#"{"serviceName":"b","replicas":1}"#, "invalid serviceName"),
        (Method::POST, "/system/scale-function/Bad", r#"{"replicas":1}"#, "invalid name"),
        (Method::DELETE, "/system/functions", r#"{"functionName":""}"#, "invalid functionName"),
        (Method::GET, "/system/function/Bad", "", "invalid name"),
        (Method::GET, "/system/functions?namespace=UPPER", "", "invalid namespace"),
        (Method::POST, "/system/secrets", r#"{"name":"Bad","value":"x"}"#, "invalid name"),
        (Method::POST, "/system/secrets", r#"{"name":"ok"}"#, "invalid value"),
        (Method::POST, "/system/secrets", r#"{"name":"ok","rawValue":"%%%"}"#, "not valid base64"),
        (Method::GET, "/system/logs", "", "invalid name: the function's name is required"),
        (Method::GET, "/system/logs?name=a&since=yesterday", "", "invalid since"),
        (Method::GET, "/system/logs?name=a&tail=many", "", "invalid tail"),
        (Method::GET, "/system/logs?name=a&follow=maybe", "", "invalid follow"),
        (Method::POST, "/system/namespace/Bad", "", "invalid name"),
        (Method::POST, "/system/namespace/team-b", r#"{"name":"team-c"}"#, "does not match"),
    ];
    for (method, uri, body, expected) in cases {
        let reply = call(&app, method.clone(), uri, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {uri} {body}: {}", reply.body);
        assert!(reply.body.contains(expected), "{method} {uri} {body}: expected {expected:?} in {:?}", reply.body);
        assert_eq!(reply.headers[PLATFORM_ERROR_HEADER], "platform");
        assert!(reply.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
    }
}

#[tokio::test]
async fn watchdog_durations_and_booleans_are_checked_at_deploy() {
    let app = app();
    let deploy = |vars: &str| format!(r#"{{"service":"w","image":"i","envProcess":"cat","envVars":{{{vars}}}}}"#);
    let cases = [
        (r#""exec_timeout":"1x""#, "envVars.exec_timeout"),
        (r#""exec_timeout":"--""#, "envVars.exec_timeout"),
        (r#""read_timeout":"9999999h""#, "envVars.read_timeout"),
        (r#""write_timeout":"-5s""#, "envVars.write_timeout"),
        (r#""healthcheck_interval":"often""#, "envVars.healthcheck_interval"),
        (r#""ready_timeout":"1d""#, "envVars.ready_timeout"),
        (r#""log_calls":"maybe""#, "envVars.log_calls"),
    ];
    for (vars, field) in cases {
        for method in [Method::POST, Method::PUT] {
            let reply = call(&app, method.clone(), "/system/functions", deploy(vars)).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {vars}: {}", reply.body);
            assert!(reply.body.contains(&format!("invalid {field}: ")), "{vars}: {}", reply.body);
            if field != "envVars.log_calls" {
                assert!(reply.body.contains("1m30s") && reply.body.contains("plain seconds"), "{}", reply.body);
            }
        }
    }
    let listed = call(&app, Method::GET, "/system/functions", AxumBody::empty()).await;
    assert_eq!(listed.body.trim(), "[]", "nothing was created");
    let ok = deploy(r#""exec_timeout":"1m30s","read_timeout":"2.5","log_calls":"false""#);
    assert_eq!(call(&app, Method::POST, "/system/functions", ok).await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn oversized_json_is_413_with_or_without_a_declared_length() {
    let app = app();
    let big = format!(r#"{{"service":"a","image":"{}"}}"#, "x".repeat(1024 * 1024));
    let request = Request::post("/system/functions")
        .header(header::CONTENT_LENGTH, big.len())
        .body(AxumBody::from(big.clone()))
        .unwrap();
    let declared = send(&app, request).await;
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", declared.body);
    assert!(declared.body.contains("1048576 bytes"), "{}", declared.body);

    // A declared length over the limit is refused before any of the body is
    // read: this body never yields a byte, so reading it would hang.
    let never = futures_util::stream::pending::<Result<Vec<u8>, std::io::Error>>();
    let request = Request::post("/system/functions")
        .header(header::CONTENT_LENGTH, 1024 * 1024 + 1)
        .body(AxumBody::from_stream(never))
        .unwrap();
    let refused = tokio::time::timeout(std::time::Duration::from_secs(10), send(&app, request))
        .await
        .expect("refused on the declared length alone, without reading the body");
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", refused.body);

    let chunks = futures_util::stream::iter(
        big.into_bytes().chunks(64 * 1024).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>(),
    );
    let request = Request::post("/system/functions").body(AxumBody::from_stream(chunks)).unwrap();
    assert!(request.headers().get(header::CONTENT_LENGTH).is_none());
    let streamed = send(&app, request).await;
    assert_eq!(streamed.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(streamed.body.contains("1048576 bytes"), "{}", streamed.body);

    let small_limit =
        api::router(MemoryProvider::new().shared(), ApiConfig { max_body_bytes: 10, ..Default::default() });
    assert_eq!(call(&small_limit, Method::POST, "/system/functions", ECHO).await.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn every_error_variant_is_served_with_its_status() {
    let app = app();
    let cases = [
        ("notfound", 404),
        ("exists", 409),
        ("invalid", 400),
        ("toolarge", 413),
        ("unsupported", 501),
        ("overloaded", 429),
        ("forbidden", 403),
        ("unavailable", 503),
        ("timeout", 504),
        ("nospace", 507),
        ("backend", 502),
    ];
    for (variant, code) in cases {
        for uri in [format!("/system/function/fail-{variant}"), format!("/function/fail-{variant}/x")] {
            let reply = call(&app, Method::GET, &uri, AxumBody::empty()).await;
            assert_eq!(reply.status.as_u16(), code, "{uri}: {}", reply.body);
            assert_eq!(reply.headers[PLATFORM_ERROR_HEADER], "platform", "{uri}");
        }
    }
    let backend = call(&app, Method::GET, "/system/function/fail-backend", AxumBody::empty()).await;
    assert_eq!(backend.body, "memory backend error: task failed: engine said no\n");
    let request = Request::get("/system/function/fail-backend").body(AxumBody::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let attached = response.extensions().get::<api::ErrorMessage>().expect("the message rides along for middleware");
    assert_eq!(attached.0, "memory backend error: task failed: engine said no");
}

#[tokio::test]
async fn invocation_passes_everything_through_and_stamps_call_headers() {
    let app = deployed().await;
    for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS, Method::HEAD]
    {
        let request = Request::builder()
            .method(method.clone())
            .uri("/function/echo/a/b?x=1&y=%20")
            .header("x-test", "yes")
            .body(AxumBody::from("payload"))
            .unwrap();
        let reply = send(&app, request).await;
        assert_eq!(reply.status, StatusCode::OK, "{method}");
        assert_eq!(reply.headers["x-echo-method"], method.as_str());
        assert_eq!(reply.headers["x-echo-uri"], "/a/b?x=1&y=%20");
        assert_eq!(reply.headers["x-echo-function"], "echo.openfaas-fn");
        assert_eq!(reply.headers["x-echo-x-test"], "yes");
        if method != Method::HEAD {
            assert_eq!(reply.body, "payload", "{method}");
        }
        let call_id = reply.headers[CALL_ID_HEADER].to_str().unwrap();
        assert_eq!(call_id.len(), 36, "a UUID: {call_id}");
        assert_eq!(reply.headers["x-echo-x-call-id"], call_id, "the function saw the same call id");
        assert_eq!(reply.headers["x-echo-x-start-time"], reply.headers[START_TIME_HEADER]);
        let duration: f64 = reply.headers[DURATION_HEADER].to_str().unwrap().parse().unwrap();
        assert!(duration >= 0.0);
        assert!(reply.headers.get(PLATFORM_ERROR_HEADER).is_none());
    }

    let request = Request::get("/function/echo").header(CALL_ID_HEADER, "mine").body(AxumBody::empty()).unwrap();
    let reply = send(&app, request).await;
    assert_eq!(reply.headers[CALL_ID_HEADER], "mine");
    assert_eq!(reply.headers["x-echo-uri"], "/");
}

#[tokio::test]
async fn a_functions_own_500_is_not_marked_as_a_platform_error() {
    let app = app();
    let deploy = call(&app, Method::POST, "/system/functions", r#"{"service":"crash"}"#).await;
    assert_eq!(deploy.status, StatusCode::ACCEPTED);
    let reply = call(&app, Method::POST, "/function/crash", "x").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.body, "boom");
    assert!(reply.headers.get(PLATFORM_ERROR_HEADER).is_none());
}

#[tokio::test]
async fn namespaces_are_resolved_from_body_then_query_then_default() {
    let app = app();
    let in_body = r#"{"service":"a","namespace":"team-a"}"#;
    assert_eq!(call(&app, Method::POST, "/system/functions", in_body).await.status, StatusCode::ACCEPTED);
    let in_query = r#"{"service":"b"}"#;
    assert_eq!(
        call(&app, Method::POST, "/system/functions?namespace=team-a", in_query).await.status,
        StatusCode::ACCEPTED
    );
    let list = call(&app, Method::GET, "/system/functions?namespace=team-a", AxumBody::empty()).await;
    let names: Vec<String> =
        serde_json::from_str::<Vec<FunctionStatus>>(&list.body).unwrap().into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["a", "b"]);
    let default = call(&app, Method::GET, "/system/functions", AxumBody::empty()).await;
    assert_eq!(default.body, "[]");
    assert_eq!(call(&app, Method::GET, "/function/a.team-a", AxumBody::empty()).await.status, StatusCode::OK);
    assert_eq!(call(&app, Method::GET, "/function/a", AxumBody::empty()).await.status, StatusCode::NOT_FOUND);

    let single = api::router(MemoryProvider::without_optional_features().shared(), ApiConfig::default());
    let reply = call(&single, Method::GET, "/system/functions?namespace=team-a", AxumBody::empty()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.body.contains("namespace \"team-a\" not found"), "{}", reply.body);
}

#[tokio::test]
async fn secrets_routes() {
    let app = app();
    let create = call(&app, Method::POST, "/system/secrets", r#"{"name":"db","value":"hunter2"}"#).await;
    assert_eq!(create.status, StatusCode::CREATED);
    let again = call(&app, Method::POST, "/system/secrets", r#"{"name":"db","value":"x"}"#).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let raw = base64::engine::general_purpose::STANDARD.encode([0u8, 1, 2, 255]);
    let update = call(&app, Method::PUT, "/system/secrets", format!(r#"{{"name":"db","rawValue":"{raw}"}}"#)).await;
    assert_eq!(update.status, StatusCode::ACCEPTED);
    let list = call(&app, Method::GET, "/system/secrets", AxumBody::empty()).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body, r#"[{"name":"db","namespace":"openfaas-fn"}]"#, "values never listed");
    let missing = call(&app, Method::PUT, "/system/secrets", r#"{"name":"nope","value":"x"}"#).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let delete = call(&app, Method::DELETE, "/system/secrets", r#"{"name":"db"}"#).await;
    assert_eq!(delete.status, StatusCode::ACCEPTED);
    let gone = call(&app, Method::DELETE, "/system/secrets", r#"{"name":"db"}"#).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    let without = api::router(MemoryProvider::without_optional_features().shared(), ApiConfig::default());
    let reply = call(&without, Method::POST, "/system/secrets", r#"{"name":"db","value":"x"}"#).await;
    assert_eq!(reply.status, StatusCode::NOT_IMPLEMENTED);
    assert!(reply.body.contains("secrets is not supported"), "{}", reply.body);
}

#[tokio::test]
async fn secret_values_are_decoded_from_raw_bytes() {
    let secret: Secret = serde_json::from_str(r#"{"name":"k","rawValue":"AAEC/w=="}"#).unwrap();
    assert_eq!(secret.bytes(), [0, 1, 2, 255]);
    assert!(!format!("{secret:?}").contains("AAEC"));
}

#[tokio::test]
async fn namespace_routes() {
    let app = app();
    let list = call(&app, Method::GET, "/system/namespaces", AxumBody::empty()).await;
    assert_eq!(list.body, r#"["openfaas-fn","team-a"]"#);
    let one = call(&app, Method::GET, "/system/namespace/team-a", AxumBody::empty()).await;
    assert_eq!((one.status, one.body.as_str()), (StatusCode::OK, r#"{"name":"team-a"}"#));
    assert_eq!(
        call(&app, Method::GET, "/system/namespace/none", AxumBody::empty()).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, Method::POST, "/system/namespace/team-b", AxumBody::empty()).await.status,
        StatusCode::CREATED
    );
    let labelled = r#"{"labels":{"owner":"ops"}}"#;
    assert_eq!(call(&app, Method::POST, "/system/namespace/team-b", labelled).await.status, StatusCode::CREATED);
    assert_eq!(
        call(&app, Method::POST, "/system/namespace/team-a", AxumBody::empty()).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(call(&app, Method::PUT, "/system/namespace/team-a", labelled).await.status, StatusCode::ACCEPTED);
    assert_eq!(
        call(&app, Method::DELETE, "/system/namespace/team-a", AxumBody::empty()).await.status,
        StatusCode::ACCEPTED
    );

    // Without namespaces: the one namespace is listed and read, other
    // names are unknown, and only managing namespaces is unsupported.
    let without = api::router(MemoryProvider::without_optional_features().shared(), ApiConfig::default());
    let list = call(&without, Method::GET, "/system/namespaces", AxumBody::empty()).await;
    assert_eq!((list.status, list.body.as_str()), (StatusCode::OK, r#"["openfaas-fn"]"#));
    let one = call(&without, Method::GET, "/system/namespace/openfaas-fn", AxumBody::empty()).await;
    assert_eq!((one.status, one.body.as_str()), (StatusCode::OK, r#"{"name":"openfaas-fn"}"#));
    let other = call(&without, Method::GET, "/system/namespace/team-a", AxumBody::empty()).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.body);
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let managed = call(&without, method.clone(), "/system/namespace/openfaas-fn", AxumBody::empty()).await;
        assert_eq!(managed.status, StatusCode::NOT_IMPLEMENTED, "{method}: {}", managed.body);
    }
}

#[tokio::test]
async fn info_as_provider_and_as_gateway() {
    let app = app();
    let reply = call(&app, Method::GET, "/system/info", AxumBody::empty()).await;
    let info: ProviderInfo = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        (info.name.as_str(), info.orchestration.as_str(), info.version.release.as_str()),
        ("memory", "none", "1.0.0")
    );
    assert!(reply.body.contains(r#""provider":"memory""#), "{}", reply.body);

    let version = VersionInfo { sha: "deadbeef".into(), release: "0.1.0".into(), ..Default::default() };
    let gateway =
        api::router(MemoryProvider::new().shared(), ApiConfig { gateway_version: Some(version), ..Default::default() });
    let reply = call(&gateway, Method::GET, "/system/info", AxumBody::empty()).await;
    let info: GatewayInfo = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(info.provider.name, "memory");
    assert_eq!(info.version.sha, "deadbeef");
    assert_eq!(info.arch, std::env::consts::ARCH);
}

#[tokio::test]
async fn logs_are_newline_delimited_json() {
    let provider = MemoryProvider::new();
    for (i, name) in ["a", "b", "a"].iter().enumerate() {
        provider.logs.lock().unwrap().push(faas_core::LogMessage {
            name: (*name).into(),
            namespace: "openfaas-fn".into(),
            instance: "a-1".into(),
            timestamp: chrono::DateTime::from_timestamp(1_700_000_000 + i as i64, 0).unwrap(),
            text: format!("line {i}"),
        });
    }
    let app = api::router(provider.shared(), ApiConfig::default());
    let reply = call(&app, Method::GET, "/system/logs?name=a&tail=10", AxumBody::empty()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/x-ndjson");
    let lines: Vec<_> = reply.body.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0],
        r#"{"name":"a","namespace":"openfaas-fn","instance":"a-1","timestamp":"2023-11-14T22:13:20Z","text":"line 0"}"#
    );
    assert!(reply.body.ends_with('\n'));
}

#[tokio::test]
async fn basic_auth_guards_system_routes_only() {
    let credentials = BasicAuth { user: "admin".into(), password: "pw".into() };
    let app =
        api::router(MemoryProvider::new().shared(), ApiConfig { basic_auth: Some(credentials), ..Default::default() });
    let denied = call(&app, Method::GET, "/system/functions", AxumBody::empty()).await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert!(denied.headers[header::WWW_AUTHENTICATE].to_str().unwrap().starts_with("Basic realm="));
    let wrong = Request::get("/system/functions")
        .header(header::AUTHORIZATION, "Basic YWRtaW46eA==")
        .body(AxumBody::empty())
        .unwrap();
    assert_eq!(send(&app, wrong).await.status, StatusCode::UNAUTHORIZED);
    let ok = Request::get("/system/functions")
        .header(header::AUTHORIZATION, "Basic YWRtaW46cHc=")
        .body(AxumBody::empty())
        .unwrap();
    assert_eq!(send(&app, ok).await.status, StatusCode::OK);
    assert_eq!(call(&app, Method::GET, "/healthz", AxumBody::empty()).await.status, StatusCode::OK);
    // Invocation is not behind the credentials: an unknown function is 404, not 401.
    assert_eq!(call(&app, Method::GET, "/function/echo", AxumBody::empty()).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn impossible_function_names_are_404_on_invocation_and_400_on_system_routes() {
    let app = deployed().await;
    let long = "a".repeat(64);
    let long_path = format!("/function/{long}");
    let long_namespace = format!("/function/echo.{long}/x");
    for uri in [
        "/function/.openfaas-fn",
        "/function/Not_Valid",
        "/function/echo./x?q=1",
        "/function/-a",
        &long_path,
        &long_namespace,
    ] {
        for method in [Method::GET, Method::POST] {
            let reply = call(&app, method.clone(), uri, AxumBody::empty()).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {uri}: {}", reply.body);
            assert!(reply.body.starts_with("function ") && reply.body.contains("not found"), "{uri}: {}", reply.body);
            assert_eq!(reply.headers[PLATFORM_ERROR_HEADER], "platform", "{uri}");
        }
    }
    // A valid name still reaches the function; system routes keep 400.
    assert_eq!(call(&app, Method::POST, "/function/echo", "hi").await.status, StatusCode::OK);
    let system = call(&app, Method::GET, &format!("/system/function/{long}"), AxumBody::empty()).await;
    assert_eq!(system.status, StatusCode::BAD_REQUEST, "{}", system.body);
}

#[tokio::test]
async fn unknown_routes_are_404_from_the_platform() {
    let app = app();
    let reply = call(&app, Method::GET, "/nope", AxumBody::empty()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.headers[PLATFORM_ERROR_HEADER], "platform");
    let healthz = call(&app, Method::GET, "/healthz", AxumBody::empty()).await;
    assert_eq!((healthz.status, healthz.body.as_str()), (StatusCode::OK, "OK\n"));
}
