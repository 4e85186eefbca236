//! Thousands of objects: paginated lists and watches stay correct with the
//! controller running.

mod common;

use bytes::Bytes;
use common::{eventually, Client};
use http_body_util::{BodyExt as _, Full};
use k8s_test_server::{Options, TestServer};
use serde_json::{json, Value};

#[tokio::test]
async fn two_thousand_deployments_list_in_pages_of_500() {
    let options = Options { namespaces: vec!["fn".into()], ..Options::default() };
    let server = TestServer::start(options).await.expect("server");
    let client = Client::new(server.addr());
    let stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let started = std::time::Instant::now();
    for i in 0..2000 {
        let name = format!("fn-{i:04}");
        for (path, body) in [
            ("/apis/apps/v1/namespaces/fn/deployments", common::deployment(&name, 0, &[("fprocess", "cat")])),
            ("/api/v1/namespaces/fn/services", common::service(&name)),
        ] {
            let request = http::Request::post(path)
                .header("host", server.addr().to_string())
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.status(), 201);
            response.into_body().collect().await.unwrap();
        }
    }
    eprintln!("4000 creates in {:?}", started.elapsed());
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &token {
            Some(t) => format!("/apis/apps/v1/deployments?limit=500&continue={t}"),
            None => "/apis/apps/v1/deployments?limit=500".to_string(),
        };
        let page = client.get(&path).await.json();
        pages += 1;
        names.extend(
            page["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        token = page["metadata"]["continue"].as_str().map(String::from);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(names.len(), 2000);
    // The controller reconciled every deployment (replicas 0: no processes).
    eventually("every deployment observed", || async {
        let list = client.get("/apis/apps/v1/namespaces/fn/deployments?limit=0").await.json();
        list["items"].as_array().unwrap().iter().all(|d| d["status"]["observedGeneration"] == 1).then_some(())
    })
    .await;
    let slices: Value = client.get("/apis/discovery.k8s.io/v1/endpointslices").await.json();
    assert_eq!(slices["items"].as_array().unwrap().len(), 2000);
    let patch = json!({"spec": {"replicas": 1}});
    let reply = client
        .patch("/apis/apps/v1/namespaces/fn/deployments/fn-1999/scale", "application/merge-patch+json", &patch)
        .await;
    assert_eq!(reply.status, 200);
    eventually("fn-1999 to be ready", || async {
        let d = client.get("/apis/apps/v1/namespaces/fn/deployments/fn-1999").await.json();
        (d["status"]["readyReplicas"] == 1).then_some(())
    })
    .await;
    eprintln!("done in {:?}", started.elapsed());
    server.shutdown().await;
}
