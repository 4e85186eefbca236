//! [`Metered`]: a provider wrapper recording invocation metrics and keeping
//! `gateway_service_count` current.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::{Body, BoxError, FunctionRef, FunctionStatus, Layer, Provider, Result, SharedProvider};
use http::{Request, Response};
use http_body::{Frame, SizeHint};

use super::{FunctionSeries, Metrics};
use crate::history::{History, Recorder};

/// Wraps any provider and records, without changing any answer:
///
/// - per call: `gateway_function_invocation_total` and
///   `gateway_functions_seconds`, labelled with the status the caller got
///   (the function's, or the platform error's; calls to functions that do
///   not exist are not counted, so made-up names cannot add series); a
///   streamed response is timed to the end of its body or to the moment
///   the client went away;
///   one `debug` log line per call, platform failures (5xx) at `warn`;
/// - `gateway_service_count` from every `status` and `scale`, and from
///   [`Metered::refresh_service_counts`], which the server runs
///   periodically (listings themselves pass through untouched).
///
/// With [`Metered::with_history`], calls and listings also feed the
/// portal's [`History`]. Every other method is delegated as is.
pub struct Metered {
    inner: SharedProvider,
    metrics: Arc<Metrics>,
    history: Option<Arc<History>>,
}

impl std::fmt::Debug for Metered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered").field("metrics", &self.metrics).finish_non_exhaustive()
    }
}

impl Metered {
    /// Wraps `inner`, recording into `metrics`.
    pub fn new(inner: SharedProvider, metrics: Arc<Metrics>) -> Self {
        Metered { inner, metrics, history: None }
    }

    /// Also records every call into `history`, and closes one of its
    /// passes at each [`Metered::refresh_service_counts`].
    pub fn with_history(mut self, history: Arc<History>) -> Self {
        self.history = Some(history);
        self
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &SharedProvider {
        &self.inner
    }

    /// The registry this wrapper records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Lists every namespace (just the default one when the provider has no
    /// namespaces) so `gateway_service_count` matches the deployed
    /// functions, dropping the series of deleted ones.
    pub async fn refresh_service_counts(&self) -> Result<()> {
        let namespaces = if self.inner.capabilities().namespaces {
            self.inner.list_namespaces().await?
        } else {
            vec![self.inner.default_namespace().to_owned()]
        };
        let pass = self.history.as_ref().map(|history| history.begin_pass());
        for namespace in namespaces {
            let functions = self.inner.list(&namespace).await?;
            self.record_listing(&namespace, &functions);
            if let (Some(history), Some(pass)) = (&self.history, pass) {
                history.sample(pass, &namespace, &functions);
            }
        }
        Ok(())
    }

    /// Sets `gateway_service_count` from a full listing of `namespace` and
    /// drops the series of functions no longer in it.
    fn record_listing(&self, namespace: &str, functions: &[FunctionStatus]) {
        let mut present = BTreeSet::new();
        for status in functions {
            let function =
                FunctionRef::new(&status.name, if status.namespace.is_empty() { namespace } else { &status.namespace });
            self.metrics.set_replicas(&function, status.replicas);
            present.insert(function);
        }
        self.metrics.retain_functions(namespace, &present);
    }

    /// Runs [`Metered::refresh_service_counts`] every `every` until the
    /// returned task is aborted; failures are logged at `warn`.
    pub fn spawn_refresh(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(err) = self.refresh_service_counts().await {
                    tracing::warn!(error = %err.message(), "cannot refresh gateway_service_count");
                }
            }
        })
    }
}

#[async_trait]
impl Layer for Metered {
    fn inner(&self) -> &dyn Provider {
        &*self.inner
    }

    async fn status(&self, function: &FunctionRef) -> Result<FunctionStatus> {
        match self.inner.status(function).await {
            Ok(status) => {
                self.metrics.set_replicas(function, status.replicas);
                Ok(status)
            }
            Err(err) => {
                if matches!(err, faas_core::Error::NotFound { .. }) {
                    self.metrics.forget_function(function);
                }
                Err(err)
            }
        }
    }

    async fn delete(&self, function: &FunctionRef) -> Result<()> {
        self.inner.delete(function).await?;
        self.metrics.forget_function(function);
        if let Some(history) = &self.history {
            history.forget(function);
        }
        Ok(())
    }

    async fn scale(&self, function: &FunctionRef, replicas: u64) -> Result<()> {
        self.inner.scale(function, replicas).await?;
        self.metrics.set_replicas(function, replicas);
        Ok(())
    }

    async fn invoke(&self, function: &FunctionRef, request: Request<Body>) -> Result<Response<Body>> {
        let started = Instant::now();
        match self.inner.invoke(function, request).await {
            Ok(response) => {
                let record = CallRecord {
                    series: self.metrics.function_series(function),
                    history: self.history.as_ref().map(|history| history.recorder(function)),
                    code: response.status().as_u16(),
                    started,
                };
                Ok(response.map(|body| Body::new(MeteredBody { inner: body, record: Some(record) })))
            }
            Err(err) => {
                let code = err.status().as_u16();
                let elapsed = started.elapsed();
                // Unknown functions are not counted: any name can be asked
                // for, and each would add a series.
                if !matches!(err, faas_core::Error::NotFound { .. }) {
                    self.metrics.record_invocation(function, code, elapsed);
                    if let Some(history) = &self.history {
                        history.record(function, code, elapsed);
                    }
                }
                let message = err.message();
                let duration_ms = elapsed.as_secs_f64() * 1000.0;
                if err.status().is_server_error() {
                    tracing::warn!(function = %function, status = code, duration_ms, error = %message, "function call failed");
                } else {
                    tracing::debug!(function = %function, status = code, duration_ms, error = %message, "function call refused");
                }
                Err(err)
            }
        }
    }
}

/// One answered call, recorded exactly once: when its response body ends,
/// fails, or is dropped (the client went away). Its series were resolved
/// when the response came: nothing is looked up or allocated here.
struct CallRecord {
    series: Arc<FunctionSeries>,
    history: Option<Recorder>,
    code: u16,
    started: Instant,
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        self.series.record(self.code, elapsed);
        if let Some(history) = &self.history {
            history.record(self.code, elapsed);
        }
        tracing::debug!(
            function = self.series.name(),
            status = self.code,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "function call"
        );
    }
}

/// A response body that records its call when it is done.
struct MeteredBody {
    inner: Body,
    record: Option<CallRecord>,
}

impl http_body::Body for MeteredBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, BoxError>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(poll, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.record.take();
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
