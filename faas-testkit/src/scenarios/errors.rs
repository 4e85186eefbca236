use faas_core::{Body, Secret, DEFAULT_NAMESPACE};
use http::{Method, Request};

use crate::helpers::{expect_already_exists, expect_invalid, expect_not_found, ok};
use crate::scenario::run_scenario;
use crate::subject::Subject;

/// Deploying a name twice is `AlreadyExists`, and leaves the first
/// deployment working.
pub async fn duplicate_deploy(subject: &Subject) {
    run_scenario(subject, "duplicate_deploy", |s| async move {
        let name = s.name("dup");
        let deployment = s.deployment(&name, DEFAULT_NAMESPACE);
        let function = s.deploy_ready(deployment.clone()).await;
        let mut second = deployment.clone();
        second.env_vars.insert("SECOND".into(), "yes".into());
        expect_already_exists("duplicate_deploy: second deploy", s.provider().deploy(second).await);
        s.assert_echo(&function, Method::POST, "/still/works", b"first deployment").await;
        assert_eq!(s.get_text(&function, "/env/SECOND").await, "", "duplicate_deploy: the refused deploy took effect");
        let listed = ok("duplicate_deploy: list", s.provider().list(DEFAULT_NAMESPACE).await);
        let count = listed.iter().filter(|f| f.name == name).count();
        assert_eq!(count, 1, "duplicate_deploy: {name} is listed {count} times");
    })
    .await
}

/// Names that are not DNS-1123 labels are `Invalid`, naming the field.
pub async fn invalid_names(subject: &Subject) {
    run_scenario(subject, "invalid_names", |s| async move {
        let too_long = "x".repeat(64);
        for bad in ["Bad_Name", "", "a.b", too_long.as_str()] {
            let mut deployment = s.deployment(&s.name("valid"), DEFAULT_NAMESPACE);
            deployment.service = bad.to_owned();
            let what = format!("invalid_names: deploy with service {bad:?}");
            expect_invalid(&what, s.provider().deploy(deployment).await, "service");
        }
        let listed = ok("invalid_names: list", s.provider().list(DEFAULT_NAMESPACE).await);
        let leaked: Vec<_> = listed.iter().filter(|f| f.name.contains("Bad_Name") || f.name == "a.b").collect();
        assert!(leaked.is_empty(), "invalid_names: refused deployments are listed: {leaked:?}");

        if !s.capabilities().secrets {
            s.skip("secrets (secret name validation)");
            return;
        }
        for bad in ["Bad_Secret", "", "-leading-dash"] {
            let secret = Secret {
                name: bad.to_owned(),
                namespace: DEFAULT_NAMESPACE.to_owned(),
                value: "value".to_owned(),
                ..Secret::default()
            };
            let what = format!("invalid_names: create secret named {bad:?}");
            expect_invalid(&what, s.provider().create_secret(secret).await, "name");
        }
    })
    .await
}

/// Every operation on a function that was never deployed is `NotFound`.
pub async fn unknown_function(subject: &Subject) {
    run_scenario(subject, "unknown_function", |s| async move {
        let provider = s.provider();
        let deployment = s.deployment(&s.name("ghost"), DEFAULT_NAMESPACE);
        let function = deployment.function_ref();
        expect_not_found("unknown_function: status", provider.status(&function).await, "function");
        expect_not_found("unknown_function: update", provider.update(deployment).await, "function");
        expect_not_found("unknown_function: scale", provider.scale(&function, 1).await, "function");
        expect_not_found("unknown_function: delete", provider.delete(&function).await, "function");
        let request = Request::builder().method(Method::POST).uri("/").body(Body::from("x")).expect("a valid request");
        let invoked = provider.invoke(&function, request).await.map(|r| r.status());
        expect_not_found("unknown_function: invoke", invoked, "function");
        let listed = ok("unknown_function: list", provider.list(DEFAULT_NAMESPACE).await);
        assert!(!listed.iter().any(|f| f.name == function.name), "unknown_function: update or scale created it");
    })
    .await
}
