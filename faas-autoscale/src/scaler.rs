//! [`Scaler`]: the provider wrapper that scales functions.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use faas_core::{
    Body, Error, FunctionDeployment, FunctionRef, FunctionStatus, Layer, Provider, Result, SharedProvider,
};
use http::{Request, Response};
use http_body_util::BodyExt;

use crate::clock::{Clock, Timeline, TokioClock};
use crate::cold_start;
use crate::config::ScalingConfig;
use crate::error::ScaleError;
use crate::labels::{ScaleSettings, ScaleType, SCALE_TARGET, SCALE_TYPE};
use crate::metrics::ScalingMetrics;
use crate::state::{lock, FunctionState, FunctionView};

/// Wraps any provider and scales its functions; see the crate docs for the
/// behaviour. Every operation is delegated; `deploy` and `update` validate
/// the scaling labels first, `scale` records a manual floor, `delete`
/// forgets the function and `invoke` counts calls in flight and holds
/// calls to functions without a ready replica while one is started.
///
/// The autoscaler runs only once [`Scaler::spawn`] is called (or on each
/// [`Scaler::autoscale_once`]). Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct Scaler {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) provider: SharedProvider,
    pub(crate) config: ScalingConfig,
    pub(crate) time: Timeline,
    pub(crate) metrics: ScalingMetrics,
    pub(crate) functions: RwLock<HashMap<FunctionRef, Arc<FunctionState>>>,
    /// Functions whose state is being refreshed after a failed call.
    refreshing: std::sync::Mutex<std::collections::HashSet<FunctionRef>>,
}

impl std::fmt::Debug for Scaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scaler").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Scaler {
    /// Wraps `provider` with `config`, on tokio's clock.
    pub fn new(provider: SharedProvider, config: ScalingConfig) -> Scaler {
        Scaler::with_clock(provider, config, Arc::new(TokioClock))
    }

    /// Wraps `provider` with `config`, deciding by `clock` (a
    /// [`crate::ManualClock`] in tests).
    pub fn with_clock(provider: SharedProvider, config: ScalingConfig, clock: Arc<dyn Clock>) -> Scaler {
        Scaler {
            inner: Arc::new(Inner {
                provider,
                config,
                time: Timeline::new(clock),
                metrics: ScalingMetrics::new(),
                functions: RwLock::new(HashMap::new()),
                refreshing: std::sync::Mutex::new(Default::default()),
            }),
        }
    }

    /// The wrapped provider.
    pub fn provider(&self) -> &SharedProvider {
        &self.inner.provider
    }

    /// The thresholds in force.
    pub fn config(&self) -> &ScalingConfig {
        &self.inner.config
    }

    /// The layer's metrics; register them with
    /// [`ScalingMetrics::register`] to serve them.
    pub fn metrics(&self) -> &ScalingMetrics {
        &self.inner.metrics
    }

    /// What the layer knows of `function`, if it has seen it.
    pub fn function(&self, function: &FunctionRef) -> Option<FunctionView> {
        self.inner.known(function).map(|state| state.view())
    }

    /// One autoscaler pass: lists every namespace to learn of functions
    /// and their replicas, then decides and applies each function's
    /// replicas. [`Scaler::spawn`] runs this every [`ScalingConfig::tick`].
    pub async fn autoscale_once(&self) {
        self.inner.autoscale_once().await;
    }

    /// Runs [`Scaler::autoscale_once`] every [`ScalingConfig::tick`] until
    /// the returned task is dropped or aborted.
    pub fn spawn(&self) -> AutoscalerTask {
        let inner = self.inner.clone();
        let every = inner.config.tick;
        AutoscalerTask(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                inner.autoscale_once().await;
            }
        }))
    }
}

/// The autoscaler loop started by [`Scaler::spawn`]; stops when dropped.
#[derive(Debug)]
pub struct AutoscalerTask(tokio::task::JoinHandle<()>);

impl AutoscalerTask {
    /// Stops the loop (as dropping does).
    pub fn abort(&self) {
        self.0.abort();
    }
}

impl Drop for AutoscalerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Inner {
    /// The state of `function`, if the layer has seen it.
    pub(crate) fn known(&self, function: &FunctionRef) -> Option<Arc<FunctionState>> {
        self.functions.read().unwrap_or_else(|e| e.into_inner()).get(function).cloned()
    }

    /// Records a function first seen with `status`; the existing state if
    /// another task recorded it meanwhile.
    pub(crate) fn insert_seen(&self, function: &FunctionRef, status: &FunctionStatus) -> Arc<FunctionState> {
        let now = self.time.now();
        let micros = self.time.micros_at(now);
        let state = self
            .functions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(function.clone())
            .or_insert_with(|| Arc::new(FunctionState::new(function.clone(), status, &self.config, now, micros)))
            .clone();
        self.metrics.set_desired(function, state.replicas());
        self.metrics.set_actual(function, state.available());
        state
    }

    /// `deployment`'s scaling settings, refusing bad labels, and scale type
    /// `cpu` on a provider that cannot measure CPU, with `Invalid` naming
    /// the label.
    fn validate(&self, deployment: &FunctionDeployment) -> Result<ScaleSettings> {
        let settings = ScaleSettings::from_labels(deployment.labels.as_ref(), &self.config)?;
        if settings.kind == ScaleType::Cpu && !self.provider.capabilities().cpu_usage {
            let reason = "the provider cannot measure CPU: use capacity or rps";
            return Err(ScaleError::label(SCALE_TYPE, reason).into());
        }
        Ok(settings)
    }

    /// Adds the scale type and target in use to `status`'s labels, under
    /// OpenFaaS's names, where the function does not set them itself (the
    /// gateway-wide defaults then apply).
    fn show_scaling(&self, status: &mut FunctionStatus) {
        let settings = ScaleSettings::lenient(status.labels.as_ref(), &self.config);
        let labels = status.labels.get_or_insert_with(Default::default);
        labels.entry(SCALE_TYPE.to_owned()).or_insert_with(|| settings.kind.to_string());
        labels.entry(SCALE_TARGET.to_owned()).or_insert_with(|| settings.target.to_string());
    }

    /// Forgets `function` and its series.
    pub(crate) fn forget(&self, function: &FunctionRef) {
        self.functions.write().unwrap_or_else(|e| e.into_inner()).remove(function);
        self.metrics.forget(function);
    }

    /// The state of `function`, asking the provider's status at first
    /// sight. `None` when the status cannot be read for another reason than
    /// the function not existing: the call then goes through untracked.
    async fn state_for(&self, function: &FunctionRef) -> Result<Option<Arc<FunctionState>>> {
        if let Some(state) = self.known(function) {
            return Ok(Some(state));
        }
        match self.provider.status(function).await {
            Ok(status) => Ok(Some(self.insert_seen(function, &status))),
            Err(err @ Error::NotFound { .. }) => Err(err),
            Err(err) => {
                tracing::debug!(%function, error = %err.message(), "cannot read the status; calling untracked");
                Ok(None)
            }
        }
    }

    /// Re-reads `state`'s status in the background (once at a time), after
    /// a call failed as if the function had no ready replica.
    fn refresh_soon(self: &Arc<Self>, state: Arc<FunctionState>) {
        if !lock(&self.refreshing).insert(state.function.clone()) {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            let epoch = state.epoch();
            match inner.provider.status(&state.function).await {
                Ok(status) => {
                    if state.observe(&status, &inner.config, epoch) {
                        inner.metrics.set_actual(&state.function, state.available());
                    }
                }
                Err(Error::NotFound { .. }) => inner.forget(&state.function),
                Err(err) => tracing::debug!(function = %state.function, error = %err.message(), "cannot refresh"),
            }
            lock(&inner.refreshing).remove(&state.function);
        });
    }
}

#[async_trait]
impl Layer for Scaler {
    fn inner(&self) -> &dyn Provider {
        &*self.inner.provider
    }

    async fn status(&self, function: &FunctionRef) -> Result<FunctionStatus> {
        let mut status = self.inner.provider.status(function).await?;
        self.inner.show_scaling(&mut status);
        Ok(status)
    }

    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>> {
        let mut statuses = self.inner.provider.list(namespace).await?;
        for status in &mut statuses {
            self.inner.show_scaling(status);
        }
        Ok(statuses)
    }

    async fn deploy(&self, deployment: FunctionDeployment) -> Result<()> {
        self.inner.validate(&deployment)?;
        let function = deployment.function_ref();
        self.inner.provider.deploy(deployment).await?;
        // A function of the same name deleted behind the layer's back.
        self.inner.forget(&function);
        Ok(())
    }

    async fn update(&self, deployment: FunctionDeployment) -> Result<()> {
        let settings = self.inner.validate(&deployment)?;
        let function = deployment.function_ref();
        self.inner.provider.update(deployment).await?;
        if let Some(state) = self.inner.known(&function) {
            state.set_settings(settings);
        }
        Ok(())
    }

    async fn delete(&self, function: &FunctionRef) -> Result<()> {
        self.inner.provider.delete(function).await?;
        self.inner.forget(function);
        Ok(())
    }

    async fn scale(&self, function: &FunctionRef, replicas: u64) -> Result<()> {
        let Some(state) = self.inner.known(function) else {
            return self.inner.provider.scale(function, replicas).await;
        };
        let _scaling = state.scale_lock.lock().await;
        state.bump_epoch();
        let available = state.available();
        if replicas == 0 {
            // Calls arriving during the scale-down are held, not failed.
            state.set_available(0);
        }
        if let Err(err) = self.inner.provider.scale(function, replicas).await {
            state.set_available(available);
            return Err(err);
        }
        state.set_replicas(replicas);
        lock(&state.decider).decider.floor(self.inner.time.now(), replicas);
        self.inner.metrics.set_desired(function, replicas);
        tracing::info!(%function, replicas, "manual scale: a floor until the stable window passes");
        Ok(())
    }

    async fn invoke(&self, function: &FunctionRef, request: Request<Body>) -> Result<Response<Body>> {
        let Some(state) = self.inner.state_for(function).await? else {
            return self.inner.provider.invoke(function, request).await;
        };
        // Counted in flight before looking at availability: the idler marks
        // a function unavailable before checking for calls in flight, so
        // one of the two always sees the other.
        let call = state.begin(self.inner.time.micros(), self.inner.time.clone());
        if state.available() == 0 {
            cold_start::hold(&self.inner, &state).await?;
        }
        match self.inner.provider.invoke(function, request).await {
            Ok(response) => Ok(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _counted_until_the_body_is_gone = &call;
                    frame
                }))
            })),
            Err(err) => {
                drop(call);
                if matches!(err, Error::Unavailable { .. }) {
                    // Scaled to zero behind the layer's back, perhaps: the
                    // next call knows.
                    self.inner.refresh_soon(state);
                }
                Err(err)
            }
        }
    }
}
