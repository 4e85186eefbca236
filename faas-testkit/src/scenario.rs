//! The context a scenario runs in: a unique name prefix, helpers bound to
//! the subject, and cleanup of everything created with the prefix.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use faas_core::{Capabilities, FunctionDeployment, FunctionRef, Provider, DEFAULT_NAMESPACE};
use futures_util::FutureExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::function::CONFORMANCE_HEADER;
use crate::helpers::{echo_expected, invoke_bytes, ok, wait_for};
use crate::subject::{FunctionBuilder, Subject};

/// The label the kit puts on every function it deploys, valued with the
/// scenario's name.
pub const SCENARIO_LABEL: &str = "faas-testkit/scenario";

/// How long each cleanup call may take before it is abandoned.
const CLEANUP_CALL_LIMIT: Duration = Duration::from_secs(30);

/// One run of one scenario: every function, secret and namespace it
/// creates is named with [`Scenario::name`], so that [`run_scenario`] can
/// delete them all at the end.
#[derive(Clone)]
pub struct Scenario {
    scenario: &'static str,
    prefix: String,
    provider: Arc<dyn Provider>,
    function: FunctionBuilder,
    settle: Duration,
    capabilities: Capabilities,
}

impl Scenario {
    fn new(subject: &Subject, scenario: &'static str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Scenario {
            scenario,
            prefix: format!("ct{}-", &id[..8]),
            provider: subject.provider.clone(),
            function: subject.function.clone(),
            settle: subject.settle,
            capabilities: subject.provider.capabilities(),
        }
    }

    /// The provider under test.
    pub fn provider(&self) -> &dyn Provider {
        self.provider.as_ref()
    }

    /// The provider under test, shared (for spawned tasks).
    pub fn shared_provider(&self) -> Arc<dyn Provider> {
        self.provider.clone()
    }

    /// The provider's capabilities, read once when the scenario started.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// The subject's settle time.
    pub fn settle(&self) -> Duration {
        self.settle
    }

    /// The scenario's name.
    pub fn scenario(&self) -> &'static str {
        self.scenario
    }

    /// A name unique to this run: the run's prefix followed by `tag`
    /// (keep tags short and DNS-safe).
    pub fn name(&self, tag: &str) -> String {
        format!("{}{tag}", self.prefix)
    }

    /// Reports that part of the scenario is skipped because the provider
    /// does not support `what`.
    pub fn skip(&self, what: &str) {
        eprintln!("skipped: {}: provider does not support {what}", self.scenario);
    }

    /// The subject's deployment of the conformance function as `name` in
    /// `namespace`, labelled with [`SCENARIO_LABEL`].
    pub fn deployment(&self, name: &str, namespace: &str) -> FunctionDeployment {
        let mut deployment = (self.function)(name, namespace);
        deployment.service = name.to_owned();
        deployment.namespace = namespace.to_owned();
        deployment
            .labels
            .get_or_insert_with(Default::default)
            .insert(SCENARIO_LABEL.to_owned(), self.scenario.to_owned());
        deployment
    }

    /// Deploys `deployment` and waits until it has an available replica.
    pub async fn deploy_ready(&self, deployment: FunctionDeployment) -> FunctionRef {
        let function = deployment.function_ref();
        ok(&format!("{}: deploy {function}", self.scenario), self.provider.deploy(deployment).await);
        self.wait_ready(&function).await;
        function
    }

    /// Waits until `function` reports at least one available replica.
    pub async fn wait_ready(&self, function: &FunctionRef) {
        let what = format!("{}: {function} to have availableReplicas >= 1", self.scenario);
        wait_for(self.settle, &what, || async {
            match self.provider.status(function).await {
                Ok(status) if status.available_replicas >= 1 => Ok(()),
                Ok(status) => Err(format!("availableReplicas = {}", status.available_replicas)),
                Err(err) => Err(err.message()),
            }
        })
        .await
    }

    /// Calls `function` and returns status and body, or the provider's
    /// error (for waits, where an error is an observation, not a failure).
    pub async fn try_call(
        &self,
        function: &FunctionRef,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> faas_core::Result<(StatusCode, Vec<u8>)> {
        let (status, _, bytes) = invoke_bytes(self.provider(), function, method, path_and_query, headers, body).await?;
        Ok((status, bytes.to_vec()))
    }

    /// Calls `function` and returns status and body, panicking if the
    /// provider returns an error.
    pub async fn call(
        &self,
        function: &FunctionRef,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        let what = format!("{}: {method} {path_and_query} on {function}", self.scenario);
        ok(&what, self.try_call(function, method.clone(), path_and_query, headers, body).await)
    }

    /// `GET path` on `function`: expects 200 and returns the body as text.
    pub async fn get_text(&self, function: &FunctionRef, path: &str) -> String {
        let (status, body) = self.call(function, Method::GET, path, HeaderMap::new(), Vec::new()).await;
        let text = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, StatusCode::OK, "{}: GET {path} on {function} answered {status}: {text:?}", self.scenario);
        text
    }

    /// Calls the echo path and asserts the function saw the method, path,
    /// query, `X-Conformance` header and body that were sent.
    pub async fn assert_echo(&self, function: &FunctionRef, method: Method, path_and_query: &str, body: &[u8]) {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let header = format!("{}-{}", self.scenario, method.as_str().to_ascii_lowercase());
        let mut headers = HeaderMap::new();
        headers.insert(CONFORMANCE_HEADER, HeaderValue::from_str(&header).expect("the header value is ASCII"));
        let (status, got) = self.call(function, method.clone(), path_and_query, headers, body.to_vec()).await;
        let expected = echo_expected(&method, path, query, &header, body);
        assert_eq!(status, StatusCode::OK, "{}: echo {method} {path_and_query} answered {status}", self.scenario);
        assert!(
            got == expected,
            "{}: echo {method} {path_and_query} on {function}:\n expected {:?}\n      got {:?}",
            self.scenario,
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(&got)
        );
    }

    /// Deletes every function, secret and namespace named with this run's
    /// prefix. Failures are reported on stderr, never raised, so that a
    /// failing scenario's own panic is what the test shows.
    async fn cleanup(&self) {
        let provider = self.provider();
        let mut namespaces = vec![DEFAULT_NAMESPACE.to_owned()];
        if self.capabilities.namespaces {
            if let Some(listed) = self.quietly("list namespaces", provider.list_namespaces()).await {
                namespaces.extend(listed.into_iter().filter(|ns| ns != DEFAULT_NAMESPACE));
            }
        }
        for namespace in &namespaces {
            if let Some(functions) = self.quietly("list functions", provider.list(namespace)).await {
                for function in functions.iter().filter(|f| f.name.starts_with(&self.prefix)) {
                    let function = FunctionRef::new(&function.name, namespace);
                    self.quietly(&format!("delete function {function}"), provider.delete(&function)).await;
                }
            }
            // Tried even when secrets are not declared: a provider that
            // wrongly accepted one must not keep it.
            if let Some(secrets) = self.quietly("list secrets", provider.list_secrets(namespace)).await {
                for secret in secrets.iter().filter(|s| s.name.starts_with(&self.prefix)) {
                    let what = format!("delete secret {} in {namespace}", secret.name);
                    self.quietly(&what, provider.delete_secret(namespace, &secret.name)).await;
                }
            }
        }
        if self.capabilities.manage_namespaces {
            for namespace in namespaces.iter().filter(|ns| ns.starts_with(&self.prefix)) {
                self.quietly(&format!("delete namespace {namespace}"), provider.delete_namespace(namespace)).await;
            }
        }
    }

    /// Runs one cleanup call, bounded in time; `None` (and a note on
    /// stderr) when it fails. `NotFound` counts as done, and `Unsupported`
    /// as nothing to do.
    async fn quietly<T>(&self, what: &str, call: impl Future<Output = faas_core::Result<T>>) -> Option<T> {
        match tokio::time::timeout(CLEANUP_CALL_LIMIT, call).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(faas_core::Error::NotFound { .. } | faas_core::Error::Unsupported { .. })) => None,
            Ok(Err(err)) => {
                eprintln!("cleanup: {}: {what} failed: {}", self.scenario, err.message());
                None
            }
            Err(_) => {
                eprintln!("cleanup: {}: {what} did not finish within {CLEANUP_CALL_LIMIT:?}", self.scenario);
                None
            }
        }
    }
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("scenario", &self.scenario)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Runs `body` as the scenario `name` against `subject`: gives it a fresh
/// [`Scenario`], bounds it by [`Subject::scenario_deadline`], then deletes
/// everything created with the run's prefix, and finally resumes the
/// body's panic, if it panicked.
pub async fn run_scenario<F, Fut>(subject: &Subject, name: &'static str, body: F)
where
    F: FnOnce(Scenario) -> Fut,
    Fut: Future<Output = ()>,
{
    let scenario = Scenario::new(subject, name);
    let deadline = subject.scenario_deadline();
    let outcome = AssertUnwindSafe(tokio::time::timeout(deadline, body(scenario.clone()))).catch_unwind().await;
    scenario.cleanup().await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("{name}: the scenario did not finish within {deadline:?}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
