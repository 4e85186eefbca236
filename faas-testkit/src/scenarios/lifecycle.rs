use faas_core::{FunctionRef, FunctionStatus, DEFAULT_NAMESPACE};
use http::{HeaderMap, Method, StatusCode};

use crate::helpers::{expect_not_found, ok, wait_for};
use crate::scenario::{run_scenario, Scenario};
use crate::subject::Subject;

/// A function's whole life: deploy, status, list, invoke, update, scale,
/// delete, and `NotFound` for every operation afterwards.
pub async fn lifecycle(subject: &Subject) {
    run_scenario(subject, "lifecycle", |s| async move {
        let provider = s.provider();
        let name = s.name("life");
        let mut deployment = s.deployment(&name, DEFAULT_NAMESPACE);
        deployment.env_vars.insert("GREETING".into(), "one".into());
        deployment.labels.get_or_insert_with(Default::default).insert("faas-testkit/colour".into(), "blue".into());
        deployment.annotations.get_or_insert_with(Default::default).insert("faas-testkit/note".into(), "hello".into());
        let function = deployment.function_ref();
        ok("lifecycle: deploy", provider.deploy(deployment.clone()).await);

        let status = ok("lifecycle: status after deploy", provider.status(&function).await);
        assert_eq!(status.name, name, "lifecycle: status.name");
        assert_eq!(status.namespace, DEFAULT_NAMESPACE, "lifecycle: status.namespace");
        assert_eq!(status.image, deployment.image, "lifecycle: status.image");
        assert_eq!(status.env_process, deployment.env_process, "lifecycle: status.envProcess");
        for (key, value) in &deployment.env_vars {
            assert_eq!(
                status.env_vars.get(key),
                Some(value),
                "lifecycle: status.envVars[{key}] ({:?})",
                status.env_vars
            );
        }
        for (field, sent, got) in [
            ("labels", &deployment.labels, &status.labels),
            ("annotations", &deployment.annotations, &status.annotations),
        ] {
            for (key, value) in sent.iter().flatten() {
                let echoed = got.as_ref().and_then(|m| m.get(key));
                assert_eq!(echoed, Some(value), "lifecycle: status.{field}[{key}] ({got:?})");
            }
        }
        assert!(
            status.replicas >= 1,
            "lifecycle: a new function wants at least one replica, status says {}",
            status.replicas
        );
        assert!(status.created_at.is_some(), "lifecycle: status.createdAt is not set");

        let listed = ok("lifecycle: list", provider.list(DEFAULT_NAMESPACE).await);
        assert!(listed.iter().any(|f| f.name == name), "lifecycle: list({DEFAULT_NAMESPACE}) lacks {name}");

        s.wait_ready(&function).await;
        s.assert_echo(&function, Method::GET, "/", b"").await;
        s.assert_echo(&function, Method::POST, "/", b"posted body").await;
        s.assert_echo(&function, Method::PUT, "/nested/sub/path?x=1&y=two", b"put\nbody\0with nul").await;
        s.assert_echo(&function, Method::DELETE, "/items/7?force=true", b"").await;
        s.assert_echo(&function, Method::PATCH, "/a?", b"patched").await;

        assert_eq!(s.get_text(&function, "/env/GREETING").await, "one", "lifecycle: GREETING before the update");
        let mut updated = deployment.clone();
        updated.env_vars.insert("GREETING".into(), "two".into());
        ok("lifecycle: update", provider.update(updated).await);
        wait_for(s.settle(), "lifecycle: /env/GREETING to return \"two\" after the update", || async {
            let result = s.try_call(&function, Method::GET, "/env/GREETING", HeaderMap::new(), Vec::new()).await;
            match result.map_err(|e| e.message())? {
                (StatusCode::OK, text) if text == b"two" => Ok(()),
                (status, text) => Err(format!("{status}: {:?}", String::from_utf8_lossy(&text))),
            }
        })
        .await;
        let status = ok("lifecycle: status after update", provider.status(&function).await);
        assert_eq!(status.env_vars.get("GREETING").map(String::as_str), Some("two"), "lifecycle: envVars after update");

        for replicas in [2, 1] {
            ok(&format!("lifecycle: scale to {replicas}"), provider.scale(&function, replicas).await);
            wait_replicas(&s, &function, replicas).await;
        }
        s.assert_echo(&function, Method::POST, "/after/scale", b"still there").await;

        ok("lifecycle: delete", provider.delete(&function).await);
        wait_for(s.settle(), "lifecycle: status to say NotFound after delete", || async {
            match provider.status(&function).await {
                Err(faas_core::Error::NotFound { .. }) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        wait_for(s.settle(), "lifecycle: list to drop the deleted function", || async {
            let listed = provider.list(DEFAULT_NAMESPACE).await.map_err(|e| e.message())?;
            match listed.iter().any(|f| f.name == name) {
                false => Ok(()),
                true => Err(format!("{name} is still listed")),
            }
        })
        .await;
        let request = http::Request::builder().method(Method::GET).uri("/").body(faas_core::Body::empty());
        let invoked = provider.invoke(&function, request.expect("a valid request")).await.map(|r| r.status());
        expect_not_found("lifecycle: invoke after delete", invoked, "function");
        expect_not_found("lifecycle: delete after delete", provider.delete(&function).await, "function");
    })
    .await
}

/// Waits until `function` reports `replicas` desired and available.
async fn wait_replicas(s: &Scenario, function: &FunctionRef, replicas: u64) {
    let what = format!("lifecycle: {function} to report replicas = availableReplicas = {replicas}");
    wait_for(s.settle(), &what, || async {
        let status: FunctionStatus = s.provider().status(function).await.map_err(|e| e.message())?;
        if status.replicas == replicas && status.available_replicas == replicas {
            Ok(())
        } else {
            Err(format!("replicas = {}, availableReplicas = {}", status.replicas, status.available_replicas))
        }
    })
    .await
}
