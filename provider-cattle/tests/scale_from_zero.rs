//! The scaling layer over the Cattle provider and the test Cattle server: a
//! function scaled to zero is invoked through `faas_autoscale`, which scales
//! its service up, waits for an instance that passes its health check, and
//! forwards the held call.

mod common;

use std::sync::Arc;

use cattle_test_server::Options;
use faas_test_support::scale_from_zero::a_call_wakes_the_function;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_scaled_to_zero_is_woken_by_a_call_through_the_scaler() {
    let (_server, provider) = common::start(Options::default()).await;
    a_call_wakes_the_function(Arc::new(provider), "a healthy instance").await;
}
