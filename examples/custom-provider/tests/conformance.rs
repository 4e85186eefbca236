//! The whole conformance kit, run against the in-memory provider.

use std::sync::Arc;
use std::time::Duration;

use custom_provider::InMemoryProvider;
use faas_core::FunctionDeployment;
use faas_testkit::function::respond;
use faas_testkit::Subject;

async fn subject() -> Subject {
    let provider = InMemoryProvider::new().with_handler("conformance", |request, cx| async move {
        respond(request, &cx.env, &cx.secrets, &|line| cx.log(line)).await
    });
    Subject::new(Arc::new(provider), |name, namespace| FunctionDeployment {
        service: name.to_owned(),
        namespace: namespace.to_owned(),
        image: "conformance".to_owned(),
        ..FunctionDeployment::default()
    })
    // Everything converges at once in memory: fail fast if it does not.
    .with_settle(Duration::from_secs(5))
}

faas_testkit::conformance_tests!(async { subject().await });
