use faas_core::{FunctionNamespace, FunctionRef, LogRequest, Secret, DEFAULT_NAMESPACE};

use crate::helpers::{expect_not_found, expect_unsupported, ok};
use crate::scenario::run_scenario;
use crate::subject::Subject;

/// Every operation whose capability flag is false returns `Unsupported`,
/// listing and reading namespaces works whatever the flags, the flags are
/// consistent, and `info` names the provider.
pub async fn capabilities(subject: &Subject) {
    run_scenario(subject, "capabilities", |s| async move {
        let provider = s.provider();
        let caps = s.capabilities();
        let info = ok("capabilities: info", provider.info().await);
        assert!(!info.name.trim().is_empty(), "capabilities: info() must name the provider ({info:?})");
        assert!(caps.logs || !caps.log_follow, "capabilities: log_follow without logs ({caps:?})");
        assert!(
            caps.namespaces || !caps.manage_namespaces,
            "capabilities: manage_namespaces without namespaces ({caps:?})"
        );

        let secret = Secret {
            name: s.name("sec"),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            value: "value".to_owned(),
            ..Secret::default()
        };
        if !caps.secrets {
            expect_unsupported("capabilities: list_secrets", provider.list_secrets(DEFAULT_NAMESPACE).await);
            expect_unsupported("capabilities: create_secret", provider.create_secret(secret.clone()).await);
            expect_unsupported("capabilities: update_secret", provider.update_secret(secret.clone()).await);
            let deleted = provider.delete_secret(DEFAULT_NAMESPACE, &secret.name).await;
            expect_unsupported("capabilities: delete_secret", deleted);
        }
        let logs = |follow| LogRequest {
            name: s.name("logs"),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            follow,
            ..LogRequest::default()
        };
        if !caps.logs {
            expect_unsupported("capabilities: logs", provider.logs(logs(false)).await.map(|_| "a stream"));
        }
        if !caps.log_follow {
            expect_unsupported("capabilities: logs(follow)", provider.logs(logs(true)).await.map(|_| "a stream"));
        }
        // Listing and reading namespaces is never unsupported: without
        // `namespaces` they answer the one namespace (the namespaces
        // scenario checks what they answer).
        ok("capabilities: list_namespaces", provider.list_namespaces().await);
        ok("capabilities: get_namespace(default)", provider.get_namespace(DEFAULT_NAMESPACE).await);
        if !caps.manage_namespaces {
            let namespace = FunctionNamespace { name: s.name("ns"), ..FunctionNamespace::default() };
            expect_unsupported("capabilities: create_namespace", provider.create_namespace(namespace.clone()).await);
            expect_unsupported("capabilities: update_namespace", provider.update_namespace(namespace.clone()).await);
            expect_unsupported("capabilities: delete_namespace", provider.delete_namespace(&namespace.name).await);
        }
        let missing = FunctionRef::new(s.name("cpu"), DEFAULT_NAMESPACE);
        if caps.cpu_usage {
            expect_not_found("capabilities: cpu_usage of no function", provider.cpu_usage(&missing).await, "function");
        } else {
            expect_unsupported("capabilities: cpu_usage", provider.cpu_usage(&missing).await);
        }
    })
    .await
}
