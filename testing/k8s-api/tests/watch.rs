//! Watch streams: events from a resourceVersion, selectors, bookmarks,
//! timeouts and 410 Expired.

mod common;

use bytes::Bytes;
use common::{assert_status, Client};
use http_body_util::{BodyExt as _, Full};
use k8s_test_server::{Options, TestServer};
use serde_json::{json, Value};

const CONFIGMAPS: &str = "/api/v1/namespaces/fn/configmaps";

async fn server() -> (TestServer, Client) {
    let options = Options { namespaces: vec!["fn".into()], controller: false, ..Options::default() };
    let server = TestServer::start(options).await.expect("server");
    let client = Client::new(server.addr());
    (server, client)
}

fn rv(object: &Value) -> String {
    object["metadata"]["resourceVersion"].as_str().expect("resourceVersion").to_string()
}

#[tokio::test]
async fn watch_from_a_resource_version_streams_every_later_change_in_order() {
    let (server, client) = server().await;
    let before = client.post(CONFIGMAPS, &json!({"metadata": {"name": "before"}})).await.json();
    let list = client.get(CONFIGMAPS).await.json();
    let mut watch = client.stream(&format!("{CONFIGMAPS}?watch=1&resourceVersion={}", rv(&list))).await;
    client.post(CONFIGMAPS, &json!({"metadata": {"name": "a"}, "data": {"k": "1"}})).await;
    client.patch(&format!("{CONFIGMAPS}/a"), "application/merge-patch+json", &json!({"data": {"k": "2"}})).await;
    client.delete(&format!("{CONFIGMAPS}/a"), None).await;
    let added = watch.event().await.unwrap();
    assert_eq!(added["type"], "ADDED");
    assert_eq!(added["object"]["kind"], "ConfigMap", "watch objects carry their kind");
    assert_eq!(added["object"]["apiVersion"], "v1");
    assert_eq!(added["object"]["metadata"]["name"], "a");
    let modified = watch.event().await.unwrap();
    assert_eq!(modified["type"], "MODIFIED");
    assert_eq!(modified["object"]["data"]["k"], "2");
    let deleted = watch.event().await.unwrap();
    assert_eq!(deleted["type"], "DELETED");
    let versions: Vec<u64> = [&added, &modified, &deleted].iter().map(|e| rv(&e["object"]).parse().unwrap()).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    // Watching from before "before" was created replays it.
    let mut replay = client.stream(&format!("{CONFIGMAPS}?watch=true&resourceVersion=1")).await;
    let first = replay.event().await.unwrap();
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["metadata"]["name"], before["metadata"]["name"]);
    assert_eq!(server.requests("watch", "configmaps"), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn watch_without_resource_version_starts_with_synthetic_added_events() {
    let (server, client) = server().await;
    client.post(CONFIGMAPS, &json!({"metadata": {"name": "x"}})).await;
    let mut watch = client.stream(&format!("{CONFIGMAPS}?watch=1")).await;
    let event = watch.event().await.unwrap();
    assert_eq!(event["type"], "ADDED");
    assert_eq!(event["object"]["metadata"]["name"], "x");
    // Streaming lists: sendInitialEvents ends with an annotated bookmark.
    let path = format!(
        "{CONFIGMAPS}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
    );
    let mut watch = client.stream(&path).await;
    assert_eq!(watch.event().await.unwrap()["type"], "ADDED");
    let bookmark = watch.event().await.unwrap();
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
    server.shutdown().await;
}

#[tokio::test]
async fn watch_with_a_label_selector_sees_objects_enter_and_leave_it() {
    let (server, client) = server().await;
    let list = client.get(CONFIGMAPS).await.json();
    let mut watch =
        client.stream(&format!("{CONFIGMAPS}?watch=1&labelSelector=app%3Dx&resourceVersion={}", rv(&list))).await;
    client.post(CONFIGMAPS, &json!({"metadata": {"name": "other", "labels": {"app": "y"}}})).await;
    client.post(CONFIGMAPS, &json!({"metadata": {"name": "m", "labels": {"app": "y"}}})).await;
    client
        .patch(
            &format!("{CONFIGMAPS}/m"),
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"app": "x"}}}),
        )
        .await;
    client
        .patch(
            &format!("{CONFIGMAPS}/m"),
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"app": "z"}}}),
        )
        .await;
    let entered = watch.event().await.unwrap();
    assert_eq!((entered["type"].as_str(), entered["object"]["metadata"]["name"].as_str()), (Some("ADDED"), Some("m")));
    let left = watch.event().await.unwrap();
    assert_eq!(left["type"], "DELETED");
    assert_eq!(left["object"]["metadata"]["labels"]["app"], "z");
    server.shutdown().await;
}

#[tokio::test]
async fn bookmarks_are_sent_when_allowed_and_timeout_seconds_ends_the_stream() {
    let (server, client) = server().await;
    let list = client.get(CONFIGMAPS).await.json();
    let path = format!("{CONFIGMAPS}?watch=1&resourceVersion={}&allowWatchBookmarks=true&timeoutSeconds=3", rv(&list));
    let mut watch = client.stream(&path).await;
    let bookmark = watch.event().await.unwrap();
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(bookmark["object"]["kind"], "ConfigMap");
    assert_eq!(bookmark["object"]["apiVersion"], "v1");
    let bookmark_rv: u64 = rv(&bookmark["object"]).parse().unwrap();
    assert!(bookmark_rv >= rv(&list).parse().unwrap());
    // The stream ends by itself (timeoutSeconds=3).
    while let Some(event) = watch.event().await {
        assert_eq!(event["type"], "BOOKMARK");
    }
    // Without allowWatchBookmarks, no bookmark precedes the first real event.
    let path = format!("{CONFIGMAPS}?watch=1&resourceVersion={}&timeoutSeconds=5", rv(&list));
    let mut plain = client.stream(&path).await;
    client.post(CONFIGMAPS, &json!({"metadata": {"name": "after"}})).await;
    assert_eq!(plain.event().await.unwrap()["type"], "ADDED");
    server.shutdown().await;
}

#[tokio::test]
async fn too_old_resource_versions_are_410_expired() {
    let (server, client) = server().await;
    let first = client.post(CONFIGMAPS, &json!({"metadata": {"name": "c"}, "data": {"n": "0"}})).await.json();
    for i in 0..3 {
        client.post(CONFIGMAPS, &json!({"metadata": {"name": format!("page-{i}")}})).await;
    }
    let page = client.get(&format!("{CONFIGMAPS}?limit=1")).await.json();
    let token = page["metadata"]["continue"].as_str().unwrap().to_string();
    // More than the 10,000 events kept per kind, over one keep-alive connection.
    let stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    for i in 1..=10_001 {
        let request = http::Request::patch(format!("{CONFIGMAPS}/c"))
            .header("host", server.addr().to_string())
            .header("content-type", "application/merge-patch+json")
            .body(Full::new(Bytes::from(json!({"data": {"n": i.to_string()}}).to_string())))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
    }
    let mut watch = client.stream(&format!("{CONFIGMAPS}?watch=1&resourceVersion={}", rv(&first))).await;
    let error = watch.event().await.unwrap();
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["object"]["kind"], "Status");
    assert_eq!(error["object"]["code"], 410);
    assert_eq!(error["object"]["reason"], "Expired");
    assert!(error["object"]["message"].as_str().unwrap().starts_with("too old resource version"));
    assert!(watch.next().await.is_none(), "the stream ends after the error");
    let reply = client.get(&format!("{CONFIGMAPS}?limit=1&continue={token}")).await;
    let status = assert_status(&reply, 410, "Expired");
    assert!(status["message"].as_str().unwrap().contains("continue parameter is too old"));
    // A recent version still works.
    let list = client.get(CONFIGMAPS).await.json();
    let mut watch =
        client.stream(&format!("{CONFIGMAPS}?watch=1&resourceVersion={}&timeoutSeconds=5", rv(&list))).await;
    client.delete(&format!("{CONFIGMAPS}/c"), None).await;
    assert_eq!(watch.event().await.unwrap()["type"], "DELETED");
    server.shutdown().await;
}

#[tokio::test]
async fn single_object_watch_by_field_selector() {
    let (server, client) = server().await;
    let list = client.get(CONFIGMAPS).await.json();
    let path = format!("{CONFIGMAPS}?watch=1&fieldSelector=metadata.name%3Db&resourceVersion={}", rv(&list));
    let mut watch = client.stream(&path).await;
    client.post(CONFIGMAPS, &json!({"metadata": {"name": "a"}})).await;
    client.post(CONFIGMAPS, &json!({"metadata": {"name": "b"}})).await;
    let event = watch.event().await.unwrap();
    assert_eq!(event["object"]["metadata"]["name"], "b");
    server.shutdown().await;
}

#[tokio::test]
async fn legacy_watch_path_prefix_streams_like_watch_true() {
    let (server, client) = server().await;
    let list = client.get(CONFIGMAPS).await.json();
    // The deprecated `/watch/` prefix: a collection, and a single object by name.
    let mut collection =
        client.stream(&format!("/api/v1/watch/namespaces/fn/configmaps?resourceVersion={}", rv(&list))).await;
    let mut one =
        client.stream(&format!("/api/v1/watch/namespaces/fn/configmaps/b?resourceVersion={}", rv(&list))).await;
    client.post(CONFIGMAPS, &json!({"metadata": {"name": "a"}})).await;
    client.post(CONFIGMAPS, &json!({"metadata": {"name": "b"}})).await;
    let first = collection.event().await.unwrap();
    assert_eq!((first["type"].as_str(), first["object"]["metadata"]["name"].as_str()), (Some("ADDED"), Some("a")));
    assert_eq!(collection.event().await.unwrap()["object"]["metadata"]["name"], "b");
    let only = one.event().await.unwrap();
    assert_eq!((only["type"].as_str(), only["object"]["metadata"]["name"].as_str()), (Some("ADDED"), Some("b")));
    assert_eq!(server.requests("watch", "configmaps"), 2, "counted as watches, not lists or gets");
    assert_eq!(server.requests_by_verb().get("watch"), Some(&2));
    server.shutdown().await;
}
