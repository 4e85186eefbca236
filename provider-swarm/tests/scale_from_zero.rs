//! The scaling layer on real Swarm: a function scaled to zero is invoked
//! through `faas-autoscale`, which scales the service up, waits for a task
//! that passes its health check, and forwards the held call. Skipped with
//! instructions without a usable swarm, failed on CI.

mod common;

use std::sync::Arc;

use faas_core::{FunctionDeployment, SharedProvider};
use http::{Request, StatusCode};

use common::{FUNCTION_IMAGE, SETTLE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_scaled_to_zero_is_invoked_and_answers() {
    let Some(docker) = common::engine("scale_from_zero", &[FUNCTION_IMAGE]).await else { return };
    let provider: SharedProvider = Arc::new(common::provider(docker.clone()).await);
    let name = common::unique("swzero");
    common::with_cleanup(docker.clone(), &name.clone(), async move {
        let deployment = FunctionDeployment {
            service: name.clone(),
            image: FUNCTION_IMAGE.to_owned(),
            env_process: "cat".to_owned(),
            ..FunctionDeployment::default()
        };
        let function = deployment.function_ref();
        provider.deploy(deployment).await.expect("deploy cat");

        let request = Request::post("/").body(faas_core::Body::from("ping from zero")).unwrap();
        let cold = faas_autoscale::scale_from_zero(provider.clone(), &function, request, SETTLE)
            .await
            .unwrap_or_else(|e| panic!("scaled to zero, invoked, answered: {}", e.message()));
        assert_eq!(cold.status, StatusCode::OK, "{:?}", cold.body);
        assert_eq!(cold.body, "ping from zero");
        assert!(cold.replicas >= 1, "the layer scaled the service back up");
        let status = provider.status(&function).await.expect("status");
        assert!(status.available_replicas >= 1, "a healthy task serves the function: {status:?}");
        eprintln!("swarm scale from zero: first answer after {:?}", cold.latency);
    })
    .await;
}
