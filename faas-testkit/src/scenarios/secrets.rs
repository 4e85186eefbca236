use faas_core::{Secret, DEFAULT_NAMESPACE};
use http::{HeaderMap, Method, StatusCode};

use crate::helpers::{expect_already_exists, expect_not_found, ok, wait_for};
use crate::scenario::{run_scenario, Scenario};
use crate::subject::Subject;

/// Secrets: create, list without values, duplicates refused, mounted into
/// functions, updated (as raw bytes), deleted.
pub async fn secrets(subject: &Subject) {
    run_scenario(subject, "secrets", |s| async move {
        if !s.capabilities().secrets {
            s.skip("secrets");
            return;
        }
        let provider = s.provider();
        let name = s.name("sec");
        let secret = |value: &str, raw: &[u8]| Secret {
            name: name.clone(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            value: value.to_owned(),
            raw_value: raw.to_vec(),
        };
        ok("secrets: create", provider.create_secret(secret("first-value", b"")).await);
        let listed = ok("secrets: list", provider.list_secrets(DEFAULT_NAMESPACE).await);
        let entry = listed.iter().find(|x| x.name == name).unwrap_or_else(|| panic!("secrets: list lacks {name}"));
        assert!(
            entry.value.is_empty() && entry.raw_value.is_empty(),
            "secrets: list_secrets must not return values (got {} bytes for {name})",
            entry.bytes().len()
        );
        expect_already_exists("secrets: create twice", provider.create_secret(secret("other", b"")).await);

        let first = deploy_with_secret(&s, "use1", &name).await;
        wait_secret(&s, &first, &name, b"first-value").await;

        let raw: &[u8] = b"second\0value\xff\n";
        ok("secrets: update with rawValue", provider.update_secret(secret("", raw)).await);
        let second = deploy_with_secret(&s, "use2", &name).await;
        wait_secret(&s, &second, &name, raw).await;

        let missing = Secret { name: s.name("nosuch"), value: "v".into(), ..secret("", b"") };
        expect_not_found("secrets: update a secret never created", provider.update_secret(missing).await, "secret");

        for function in [&first, &second] {
            ok(&format!("secrets: delete {function}"), provider.delete(function).await);
        }
        ok("secrets: delete", provider.delete_secret(DEFAULT_NAMESPACE, &name).await);
        let listed = ok("secrets: list after delete", provider.list_secrets(DEFAULT_NAMESPACE).await);
        assert!(!listed.iter().any(|x| x.name == name), "secrets: {name} is still listed after delete");
        expect_not_found("secrets: delete twice", provider.delete_secret(DEFAULT_NAMESPACE, &name).await, "secret");
    })
    .await
}

async fn deploy_with_secret(s: &Scenario, tag: &str, secret: &str) -> faas_core::FunctionRef {
    let mut deployment = s.deployment(&s.name(tag), DEFAULT_NAMESPACE);
    deployment.secrets.push(secret.to_owned());
    s.deploy_ready(deployment).await
}

async fn wait_secret(s: &Scenario, function: &faas_core::FunctionRef, name: &str, expected: &[u8]) {
    let what = format!("secrets: /secret/{name} on {function} to return {:?}", String::from_utf8_lossy(expected));
    let path = format!("/secret/{name}");
    wait_for(s.settle(), &what, || async {
        let result = s.try_call(function, Method::GET, &path, HeaderMap::new(), Vec::new()).await;
        let (status, body) = result.map_err(|e| e.message())?;
        if status == StatusCode::OK && body == expected {
            Ok(())
        } else {
            Err(format!("{status}: {:?}", String::from_utf8_lossy(&body)))
        }
    })
    .await
}
