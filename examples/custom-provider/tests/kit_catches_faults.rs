//! The kit must fail providers that break the contract, and clean up after
//! itself when it does: each test wraps the in-memory provider in one
//! fault and checks that the scenario meant to catch it panics, naming the
//! broken promise, and leaves nothing behind.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use custom_provider::InMemoryProvider;
use faas_core::{
    Body, Capabilities, FunctionDeployment, FunctionRef, FunctionStatus, Layer, Provider, Result, DEFAULT_NAMESPACE,
    FUNCTION_LABEL,
};
use faas_testkit::function::respond;
use faas_testkit::{scenarios, Subject};
use futures_util::{FutureExt, StreamExt};
use http::{Request, Response};

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// A second deploy of a name succeeds silently.
    AcceptsDuplicates,
    /// `update` returns Ok and changes nothing.
    IgnoresUpdates,
    /// Claims no secrets support while serving secrets.
    HidesSecrets,
    /// Loses the first chunk of every response body.
    DropsFirstChunk,
    /// Starts every function at one replica, whatever its scale.min.
    IgnoresScaleMin,
    /// Reports functions without their `faas_function` label.
    HidesFunctionLabel,
}

struct Faulty {
    inner: InMemoryProvider,
    fault: Fault,
}

#[async_trait]
impl Layer for Faulty {
    fn inner(&self) -> &dyn Provider {
        &self.inner
    }

    fn capabilities(&self) -> Capabilities {
        let mut capabilities = self.inner.capabilities();
        if self.fault == Fault::HidesSecrets {
            capabilities.secrets = false;
        }
        capabilities
    }

    async fn status(&self, function: &FunctionRef) -> Result<FunctionStatus> {
        let mut status = self.inner.status(function).await?;
        if self.fault == Fault::HidesFunctionLabel {
            status.labels.get_or_insert_with(Default::default).remove(FUNCTION_LABEL);
        }
        Ok(status)
    }

    async fn deploy(&self, deployment: FunctionDeployment) -> Result<()> {
        if self.fault == Fault::IgnoresScaleMin {
            let function = deployment.function_ref();
            self.inner.deploy(deployment).await?;
            return self.inner.scale(&function, 1).await;
        }
        match self.inner.deploy(deployment).await {
            Err(faas_core::Error::AlreadyExists { .. }) if self.fault == Fault::AcceptsDuplicates => Ok(()),
            other => other,
        }
    }
    async fn update(&self, deployment: FunctionDeployment) -> Result<()> {
        if self.fault == Fault::IgnoresUpdates {
            return self.inner.status(&deployment.function_ref()).await.map(drop);
        }
        self.inner.update(deployment).await
    }

    async fn invoke(&self, function: &FunctionRef, request: Request<Body>) -> Result<Response<Body>> {
        let response = self.inner.invoke(function, request).await?;
        if self.fault != Fault::DropsFirstChunk {
            return Ok(response);
        }
        use http_body_util::BodyExt;
        Ok(response.map(|body| Body::from_stream(body.into_data_stream().skip(1))))
    }
}

fn subject(fault: Fault) -> Subject {
    let inner = InMemoryProvider::new().with_handler("conformance", |request, cx| async move {
        respond(request, &cx.env, &cx.secrets, &|line| cx.log(line)).await
    });
    Subject::new(Arc::new(Faulty { inner, fault }), |name, namespace| FunctionDeployment {
        service: name.to_owned(),
        namespace: namespace.to_owned(),
        image: "conformance".to_owned(),
        ..FunctionDeployment::default()
    })
    .with_settle(Duration::from_millis(500))
}

/// Runs `scenario`, expects it to panic with a message containing
/// `expected`, and checks that its functions and secrets were cleaned up.
async fn expect_failure<F, Fut>(fault: Fault, scenario: F, expected: &str)
where
    F: FnOnce(Subject) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let subject = subject(fault);
    let outcome = AssertUnwindSafe(scenario(subject.clone())).catch_unwind().await;
    let payload = match outcome {
        Ok(()) => panic!("the scenario passed a provider with a fault; expected a failure about {expected:?}"),
        Err(payload) => payload,
    };
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(message.contains(expected), "the scenario failed, but not as expected ({expected:?}): {message}");
    let left = subject.provider.list(DEFAULT_NAMESPACE).await.unwrap();
    assert!(left.is_empty(), "the failed scenario left functions behind: {left:?}");
    let secrets = subject.provider.list_secrets(DEFAULT_NAMESPACE).await.unwrap();
    assert!(secrets.is_empty(), "the failed scenario left secrets behind: {secrets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_deploy_catches_a_silent_second_deploy() {
    let run = |s: Subject| async move { scenarios::duplicate_deploy(&s).await };
    expect_failure(Fault::AcceptsDuplicates, run, "expected Error::AlreadyExists").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_catches_an_ignored_update() {
    let run = |s: Subject| async move { scenarios::lifecycle(&s).await };
    expect_failure(Fault::IgnoresUpdates, run, "waiting for lifecycle: /env/GREETING").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_catches_an_undeclared_operation() {
    let run = |s: Subject| async move { scenarios::capabilities(&s).await };
    expect_failure(Fault::HidesSecrets, run, "capabilities: list_secrets: expected Error::Unsupported").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_body_catches_lost_bytes() {
    let run = |s: Subject| async move { scenarios::large_body(&s).await };
    expect_failure(Fault::DropsFirstChunk, run, "large_body: bytes that came back").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_catches_lost_bytes() {
    let run = |s: Subject| async move { scenarios::concurrent_invocations(&s).await };
    expect_failure(Fault::DropsFirstChunk, run, "concurrent_invocations: call").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_replicas_catches_a_provider_ignoring_scale_min() {
    let run = |s: Subject| async move { scenarios::initial_replicas(&s).await };
    expect_failure(Fault::IgnoresScaleMin, run, "initial_replicas: replicas right after deploying").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_label_catches_a_missing_label() {
    let run = |s: Subject| async move { scenarios::function_label(&s).await };
    expect_failure(Fault::HidesFunctionLabel, run, "waiting for function_label: labels of").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shape_catches_a_missing_label() {
    let run = |s: Subject| async move { scenarios::status_shape(&s).await };
    expect_failure(Fault::HidesFunctionLabel, run, "status_shape: labels right after deploy").await;
}
