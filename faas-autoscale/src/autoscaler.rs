//! One autoscaler pass: learn every function's replicas from the
//! provider, decide each function's replicas, apply them with
//! `Provider::scale`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use faas_core::FunctionRef;
use tokio::time::Instant;

use crate::decision::Observation;
use crate::labels::ScaleType;
use crate::scaler::Inner;
use crate::state::{lock, FunctionState};

impl Inner {
    /// Refreshes what the layer knows, then decides and applies each
    /// function's replicas.
    pub(crate) async fn autoscale_once(self: &Arc<Self>) {
        self.refresh().await;
        let states: Vec<Arc<FunctionState>> =
            self.functions.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        let now = self.time.now();
        for state in states {
            self.evaluate(&state, now).await;
        }
    }

    /// Lists every namespace: new functions are tracked, known ones get
    /// their replicas, availability and settings updated (unless the layer
    /// scaled them meanwhile), vanished ones are forgotten.
    async fn refresh(&self) {
        let namespaces = if self.provider.capabilities().namespaces {
            match self.provider.list_namespaces().await {
                Ok(namespaces) => namespaces,
                Err(err) => {
                    tracing::warn!(error = %err.message(), "autoscaler: cannot list namespaces");
                    return;
                }
            }
        } else {
            vec![self.provider.default_namespace().to_owned()]
        };
        for namespace in namespaces {
            let before: HashMap<FunctionRef, (Arc<FunctionState>, u64)> = self
                .functions
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter(|(f, _)| f.namespace == namespace)
                .map(|(f, state)| (f.clone(), (state.clone(), state.epoch())))
                .collect();
            let statuses = match self.provider.list(&namespace).await {
                Ok(statuses) => statuses,
                Err(err) => {
                    tracing::warn!(%namespace, error = %err.message(), "autoscaler: cannot list functions");
                    continue;
                }
            };
            let mut present = HashSet::new();
            for status in statuses {
                let space = if status.namespace.is_empty() { namespace.as_str() } else { status.namespace.as_str() };
                let function = FunctionRef::new(&status.name, space);
                match before.get(&function) {
                    Some((state, epoch)) => {
                        state.observe(&status, &self.config, *epoch);
                        self.metrics.set_actual(&function, state.available());
                    }
                    None => {
                        self.insert_seen(&function, &status);
                    }
                }
                present.insert(function);
            }
            for function in before.keys().filter(|f| !present.contains(*f)) {
                tracing::debug!(%function, "autoscaler: function gone; forgetting it");
                self.forget(function);
            }
        }
    }

    /// Decides `state`'s replicas at `now` and applies a change.
    async fn evaluate(&self, state: &FunctionState, now: Instant) {
        let function = &state.function;
        let settings = state.settings();
        let micros = self.time.micros_at(now);
        let busy = state.busy_at(micros);
        let inflight = state.inflight();
        let rate = lock(&state.rate).observe(now, state.begun(), self.config.panic_window);
        let cpu = match settings.kind {
            ScaleType::Cpu => match self.provider.cpu_usage(function).await {
                Ok(used) => Some(used),
                Err(err) => {
                    tracing::debug!(%function, error = %err.message(), "autoscaler: cannot read CPU use");
                    None
                }
            },
            _ => None,
        };
        let decision = {
            let mut memory = lock(&state.decider);
            let span = now.saturating_duration_since(memory.at);
            let load = match settings.kind {
                ScaleType::Capacity if span.is_zero() => inflight as f64,
                ScaleType::Capacity => busy.wrapping_sub(memory.busy) as f64 / span.as_micros() as f64,
                ScaleType::Rps => rate,
                ScaleType::Cpu => match (cpu, memory.cpu) {
                    // Millicores: CPU seconds per second, times 1000. A
                    // replica gone since the last look takes its CPU time
                    // with it: the sum can drop, then counts as idle once.
                    (Some(used), Some(before)) if !span.is_zero() => {
                        used.saturating_sub(before).as_secs_f64() / span.as_secs_f64() * 1000.0
                    }
                    _ => 0.0,
                },
            };
            memory.at = now;
            memory.busy = busy;
            memory.cpu = cpu;
            memory.decider.decide(
                &settings,
                &self.config,
                Observation {
                    now,
                    load,
                    span,
                    current: state.replicas(),
                    ready: state.available(),
                    inflight,
                    idle_for: state.idle_for(micros),
                },
            )
        };
        self.metrics.set_inflight(function, inflight);
        self.metrics.set_rate(function, rate);
        self.metrics.set_scale(function, settings.kind, settings.target, decision.load);
        self.metrics.set_desired(function, decision.desired);
        if decision.desired == state.replicas() {
            return;
        }
        // A scale from zero or a manual scale in progress decides for now.
        let Ok(_scaling) = state.scale_lock.try_lock() else { return };
        let current = state.replicas();
        if decision.desired == current {
            return;
        }
        state.bump_epoch();
        let available = state.available();
        if decision.desired == 0 {
            // Mark the function unavailable first, then make sure no call
            // began meanwhile: a call counts itself in flight before it
            // looks at availability, so one of the two sees the other.
            state.set_available(0);
            if state.inflight() > 0 || state.idle_for(self.time.micros()) < settings.zero_duration {
                state.set_available(available);
                return;
            }
            tracing::info!(%function, idle_for = ?settings.zero_duration, "scaling an idle function to zero");
        } else {
            tracing::info!(
                %function,
                from = current,
                to = decision.desired,
                scale_type = %settings.kind,
                load = decision.load,
                panicking = decision.panicking,
                "autoscaling"
            );
        }
        match self.provider.scale(function, decision.desired).await {
            Ok(()) => {
                state.set_replicas(decision.desired);
                if decision.desired == 0 {
                    self.metrics.set_actual(function, 0);
                }
            }
            Err(err) => {
                state.set_available(available);
                tracing::warn!(%function, to = decision.desired, error = %err.message(), "autoscaler: scale failed");
            }
        }
    }
}
