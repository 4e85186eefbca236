use std::collections::BTreeMap;

use faas_core::{FunctionNamespace, DEFAULT_NAMESPACE};
use http::Method;

use crate::helpers::{expect_already_exists, expect_not_found, ok, wait_for};
use crate::scenario::run_scenario;
use crate::subject::Subject;

/// On every provider the default namespace is listed and can be read, and
/// an unknown one is `NotFound`; a provider without namespaces lists
/// exactly its one namespace (as OpenFaaS's providers without namespaces
/// answer `["openfaas-fn"]`). Where namespaces can be managed, a new one
/// holds its own functions and goes away when deleted.
pub async fn namespaces(subject: &Subject) {
    run_scenario(subject, "namespaces", |s| async move {
        let provider = s.provider();
        let listed = ok("namespaces: list_namespaces", provider.list_namespaces().await);
        assert!(listed.iter().any(|n| n == DEFAULT_NAMESPACE), "namespaces: {DEFAULT_NAMESPACE} not in {listed:?}");
        if !s.capabilities().namespaces {
            assert_eq!(listed, [DEFAULT_NAMESPACE], "namespaces: a provider without namespaces lists its one");
        }
        let default = ok("namespaces: get_namespace(default)", provider.get_namespace(DEFAULT_NAMESPACE).await);
        assert_eq!(default.name, DEFAULT_NAMESPACE, "namespaces: get_namespace(default).name");
        let never = s.name("never");
        expect_not_found("namespaces: get_namespace(unknown)", provider.get_namespace(&never).await, "namespace");

        if !s.capabilities().manage_namespaces {
            s.skip(if s.capabilities().namespaces { "namespace management" } else { "namespaces but the default" });
            return;
        }
        let name = s.name("ns");
        let labels = BTreeMap::from([("faas-testkit/scenario".to_owned(), "namespaces".to_owned())]);
        let namespace = FunctionNamespace { name: name.clone(), labels, annotations: BTreeMap::new() };
        ok("namespaces: create", provider.create_namespace(namespace.clone()).await);
        expect_already_exists("namespaces: create twice", provider.create_namespace(namespace.clone()).await);
        let got = ok("namespaces: get", provider.get_namespace(&name).await);
        assert_eq!(got.name, name, "namespaces: get.name");
        for (key, value) in &namespace.labels {
            assert_eq!(got.labels.get(key), Some(value), "namespaces: labels[{key}] ({got:?})");
        }
        let listed = ok("namespaces: list_namespaces", provider.list_namespaces().await);
        assert!(listed.contains(&name), "namespaces: {name} not in {listed:?}");

        let mut annotated = namespace.clone();
        annotated.annotations.insert("faas-testkit/note".into(), "updated".into());
        ok("namespaces: update", provider.update_namespace(annotated).await);
        let got = ok("namespaces: get after update", provider.get_namespace(&name).await);
        let note = got.annotations.get("faas-testkit/note").map(String::as_str);
        assert_eq!(note, Some("updated"), "namespaces: annotation after update ({got:?})");

        let function_name = s.name("inns");
        let function = s.deploy_ready(s.deployment(&function_name, &name)).await;
        assert_eq!(function.namespace, name, "namespaces: the deployment's namespace");
        s.assert_echo(&function, Method::POST, "/in/namespace?ns=1", b"namespaced").await;
        let inside = ok("namespaces: list(new namespace)", provider.list(&name).await);
        assert!(inside.iter().any(|f| f.name == function_name), "namespaces: list({name}) lacks {function_name}");
        let status = ok("namespaces: status", provider.status(&function).await);
        assert_eq!(status.namespace, name, "namespaces: status.namespace");
        let outside = ok("namespaces: list(default)", provider.list(DEFAULT_NAMESPACE).await);
        assert!(
            !outside.iter().any(|f| f.name == function_name),
            "namespaces: list({DEFAULT_NAMESPACE}) shows {function_name}, deployed in {name}"
        );

        ok("namespaces: delete function", provider.delete(&function).await);
        wait_for(s.settle(), "namespaces: the function to be gone", || async {
            match provider.status(&function).await {
                Err(faas_core::Error::NotFound { .. }) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        ok("namespaces: delete namespace", provider.delete_namespace(&name).await);
        expect_not_found("namespaces: get after delete", provider.get_namespace(&name).await, "namespace");
        let listed = ok("namespaces: list_namespaces after delete", provider.list_namespaces().await);
        assert!(!listed.contains(&name), "namespaces: {name} still listed after delete");
        expect_not_found("namespaces: delete twice", provider.delete_namespace(&name).await, "namespace");
    })
    .await
}
