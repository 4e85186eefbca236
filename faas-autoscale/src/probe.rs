//! Measuring one scale from zero, against any provider: for benchmarks and
//! for each provider's own end-to-end test.

use std::time::Duration;

use bytes::Bytes;
use faas_core::{Body, Error, FunctionRef, Provider, Result, SharedProvider};
use http::{Request, StatusCode};
use tokio::time::Instant;

use crate::config::ScalingConfig;
use crate::scaler::Scaler;

/// The most response body [`scale_from_zero`] reads.
const BODY_LIMIT: u64 = 1 << 20;

/// One measured scale from zero.
#[derive(Debug, Clone)]
pub struct ColdStart {
    /// The status the call was answered with.
    pub status: StatusCode,
    /// From the call to its response headers: hold, scale-up, readiness
    /// and the call itself.
    pub latency: Duration,
    /// The response body (at most 1 MiB).
    pub body: Bytes,
    /// Replicas the function had once answered.
    pub replicas: u64,
}

/// Scales the existing `function` to zero directly on `provider`, waits
/// (at most `settle`) until its status shows no replica, then calls it
/// through a fresh [`Scaler`] with `request` and measures how long the
/// answer took. The function is left at its scaled-up replicas.
///
/// Fails with the provider's error, or with `Timeout` when the function
/// does not reach zero or does not answer within `settle`.
pub async fn scale_from_zero(
    provider: SharedProvider,
    function: &FunctionRef,
    request: Request<Body>,
    settle: Duration,
) -> Result<ColdStart> {
    provider.scale(function, 0).await?;
    let deadline = Instant::now() + settle;
    let mut pause = Duration::from_millis(10);
    loop {
        let status = provider.status(function).await?;
        if status.replicas == 0 && status.available_replicas == 0 {
            break;
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!(
                    "scaling {function} to zero (still {} replicas, {} available)",
                    status.replicas, status.available_replicas
                ),
                seconds: settle.as_secs_f64(),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
    let config = ScalingConfig { hold_timeout: settle, ..ScalingConfig::default() };
    let scaler = Scaler::new(provider.clone(), config);
    let started = Instant::now();
    let response = scaler.invoke(function, request).await?;
    let latency = started.elapsed();
    let status = response.status();
    let remaining = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
    let body =
        tokio::time::timeout(remaining, response.into_body().collect_limited(BODY_LIMIT)).await.map_err(|_| {
            Error::Timeout { what: format!("reading {function}'s answer"), seconds: settle.as_secs_f64() }
        })??;
    let replicas = provider.status(function).await?.replicas;
    Ok(ColdStart { status, latency, body, replicas })
}
