//! A `Layer` forwards what it does not override and is a `Provider`.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use faas_core::{Body, FunctionDeployment, FunctionRef, Layer, Provider, Result, Secret, SharedProvider};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use support::MemoryProvider;

/// Overrides `invoke` (counts and tags calls) and `capabilities` (hides
/// secrets); everything else is forwarded.
struct Tagging {
    inner: SharedProvider,
    calls: AtomicU64,
}

#[async_trait::async_trait]
impl Layer for Tagging {
    fn inner(&self) -> &dyn Provider {
        &*self.inner
    }

    fn capabilities(&self) -> faas_core::Capabilities {
        let mut caps = self.inner.capabilities();
        caps.secrets = false;
        caps
    }

    async fn invoke(&self, function: &FunctionRef, request: Request<Body>) -> Result<Response<Body>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut response = self.inner.invoke(function, request).await?;
        response.headers_mut().insert("x-tagged", "yes".parse().unwrap());
        Ok(response)
    }
}

#[tokio::test]
async fn a_layer_forwards_what_it_does_not_override() {
    let inner: SharedProvider = Arc::new(MemoryProvider::new());
    let layer = Arc::new(Tagging { inner: inner.clone(), calls: AtomicU64::new(0) });
    let provider: SharedProvider = layer.clone();

    provider.deploy(FunctionDeployment { service: "echo".into(), ..Default::default() }).await.unwrap();
    assert_eq!(inner.list("openfaas-fn").await.unwrap().len(), 1, "deploy reached the inner provider");
    assert_eq!(provider.list("openfaas-fn").await.unwrap()[0].name, "echo");
    provider.scale(&FunctionRef::new("echo", ""), 3).await.unwrap();
    assert_eq!(inner.status(&FunctionRef::new("echo", "")).await.unwrap().replicas, 3);
    provider.create_secret(Secret { name: "k".into(), value: "v".into(), ..Default::default() }).await.unwrap();
    assert_eq!(inner.list_secrets("").await.unwrap().len(), 1, "secrets forwarded too");
    assert_eq!(provider.info().await.unwrap().name, "memory");

    let response = provider
        .invoke(&FunctionRef::new("echo", ""), Request::post("/").body(Body::from("hi")).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-tagged"], "yes", "the override ran");
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "hi", "and called through");
    assert_eq!(layer.calls.load(Ordering::SeqCst), 1);

    assert!(inner.capabilities().secrets && !provider.capabilities().secrets, "capabilities overridden");
    let missing = provider.status(&FunctionRef::new("nope", "")).await.unwrap_err();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND, "errors come back unchanged");
}
