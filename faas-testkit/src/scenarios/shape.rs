use std::collections::BTreeMap;

use faas_core::{FunctionRef, FunctionStatus, DEFAULT_NAMESPACE, FUNCTION_LABEL, SCALE_MIN_LABEL};
use serde_json::Value;

use crate::helpers::{expect_invalid, expect_not_found, ok, wait_for};
use crate::scenario::{run_scenario, Scenario};
use crate::subject::Subject;

/// Every function carries `faas_function=<name>` in `status` and `list`,
/// as OpenFaaS's providers label them: set at deploy, kept across updates
/// (also one that sends no labels), the same single entry when the user
/// sends it with the function's name, and refused (`Invalid`, naming
/// `labels.faas_function`, nothing created) with another name.
pub async fn function_label(subject: &Subject) {
    run_scenario(subject, "function_label", |s| async move {
        let provider = s.provider();
        let name = s.name("lab");
        let mut deployment = s.deployment(&name, DEFAULT_NAMESPACE);
        deployment.labels.get_or_insert_with(Default::default).insert("faas-testkit/colour".into(), "blue".into());
        let function = deployment.function_ref();
        ok("function_label: deploy", provider.deploy(deployment.clone()).await);
        let mut expected = deployment.labels.clone().unwrap_or_default();
        expected.insert(FUNCTION_LABEL.to_owned(), name.clone());
        assert_labels(&s, &function, &expected, "after deploy").await;

        let mut unlabelled = deployment.clone();
        unlabelled.labels = None;
        ok("function_label: update without labels", provider.update(unlabelled).await);
        let only_function = BTreeMap::from([(FUNCTION_LABEL.to_owned(), name.clone())]);
        assert_labels(&s, &function, &only_function, "after an update without labels").await;

        let mut relabelled = deployment.clone();
        let echoed = BTreeMap::from([(FUNCTION_LABEL.to_owned(), name.clone()), ("faas-testkit/x".into(), "y".into())]);
        relabelled.labels = Some(echoed.clone());
        ok("function_label: update sending faas_function", provider.update(relabelled).await);
        assert_labels(&s, &function, &echoed, "after an update sending faas_function itself").await;

        let own = s.name("own");
        let mut sends_it = s.deployment(&own, DEFAULT_NAMESPACE);
        sends_it.labels.get_or_insert_with(Default::default).insert(FUNCTION_LABEL.into(), own.clone());
        let sent = sends_it.labels.clone().unwrap_or_default();
        let own_ref = sends_it.function_ref();
        ok("function_label: deploy sending faas_function=<its name>", provider.deploy(sends_it).await);
        assert_labels(&s, &own_ref, &sent, "when deployed with faas_function").await;

        let wrong = s.name("wrong");
        let mut other_name = s.deployment(&wrong, DEFAULT_NAMESPACE);
        other_name.labels.get_or_insert_with(Default::default).insert(FUNCTION_LABEL.into(), name.clone());
        let wrong_ref = other_name.function_ref();
        let field = format!("labels.{FUNCTION_LABEL}");
        expect_invalid(
            "function_label: deploy with another function's name",
            provider.deploy(other_name).await,
            &field,
        );
        let status = provider.status(&wrong_ref).await;
        expect_not_found("function_label: status after the refused deploy", status, "function");
    })
    .await
}

/// Every status has the same shape on every provider: `labels`,
/// `annotations` and `envVars` JSON objects, `secrets` and `constraints`
/// arrays, never `null` or missing, both from `status` and `list`, for a
/// function deployed with no annotations and no secrets (whose
/// `annotations` are `{}`, `secrets` `[]`, `labels` only the sent ones
/// plus `faas_function`), before and after it is ready and after an
/// update.
pub async fn status_shape(subject: &Subject) {
    run_scenario(subject, "status_shape", |s| async move {
        let provider = s.provider();
        let name = s.name("shape");
        let mut deployment = s.deployment(&name, DEFAULT_NAMESPACE);
        deployment.annotations = None;
        deployment.secrets.clear();
        let function = deployment.function_ref();
        ok("status_shape: deploy", provider.deploy(deployment.clone()).await);
        let labels = deployment.labels_with_function();

        let check = |when: &'static str, status: FunctionStatus| {
            let json = shape("status_shape", when, &status);
            assert_eq!(json["annotations"], Value::Object(Default::default()), "status_shape: annotations {when}");
            assert_eq!(json["secrets"], Value::Array(Vec::new()), "status_shape: secrets {when}");
            assert_eq!(shown_labels(&status, &labels).as_ref(), Some(&labels), "status_shape: labels {when}");
            for (key, value) in &deployment.env_vars {
                assert_eq!(status.env_vars.get(key), Some(value), "status_shape: envVars[{key}] {when}");
            }
        };
        check("right after deploy", ok("status_shape: status", provider.status(&function).await));
        check("in list", listed(&s, &function).await);
        s.wait_ready(&function).await;
        check("once ready", ok("status_shape: status once ready", provider.status(&function).await));

        let mut updated = deployment.clone();
        updated.annotations = Some(BTreeMap::new());
        ok("status_shape: update", provider.update(updated).await);
        check("after an update", ok("status_shape: status after update", provider.status(&function).await));
        check("in list after an update", listed(&s, &function).await);
    })
    .await
}

/// `replicas` is the desired count from the moment deploy returns:
/// `com.openfaas.scale.min` (here 2) applied at creation, 1 without it;
/// `availableReplicas` is the ready count, never above it, and reaches it.
pub async fn initial_replicas(subject: &Subject) {
    run_scenario(subject, "initial_replicas", |s| async move {
        let provider = s.provider();
        let two = s.name("min2");
        let mut deployment = s.deployment(&two, DEFAULT_NAMESPACE);
        deployment.labels.get_or_insert_with(Default::default).insert(SCALE_MIN_LABEL.into(), "2".into());
        let function = deployment.function_ref();
        ok("initial_replicas: deploy with scale.min 2", provider.deploy(deployment).await);
        let status = ok("initial_replicas: status right after deploy", provider.status(&function).await);
        assert_eq!(status.replicas, 2, "initial_replicas: replicas right after deploying with {SCALE_MIN_LABEL}: 2");
        assert!(
            status.available_replicas <= 2,
            "initial_replicas: availableReplicas {} > 2",
            status.available_replicas
        );
        assert_eq!(listed(&s, &function).await.replicas, 2, "initial_replicas: replicas in list after deploy");

        let one = s.name("min1");
        let default = s.deployment(&one, DEFAULT_NAMESPACE);
        let default_ref = default.function_ref();
        ok("initial_replicas: deploy without scale.min", provider.deploy(default).await);
        let status = ok("initial_replicas: status of the default", provider.status(&default_ref).await);
        assert_eq!(status.replicas, 1, "initial_replicas: replicas right after deploying without {SCALE_MIN_LABEL}");

        let what = format!("initial_replicas: {function} to have availableReplicas = 2");
        wait_for(s.settle(), &what, || async {
            let status = provider.status(&function).await.map_err(|e| e.message())?;
            match (status.replicas, status.available_replicas) {
                (2, 2) => Ok(()),
                (replicas, available) => Err(format!("replicas = {replicas}, availableReplicas = {available}")),
            }
        })
        .await;
    })
    .await
}

/// Waits until `status` of `function` shows exactly `expected` as labels
/// (in `list` too).
async fn assert_labels(s: &Scenario, function: &FunctionRef, expected: &BTreeMap<String, String>, when: &str) {
    let what = format!("{}: labels of {function} {when} to be {expected:?}", s.scenario());
    wait_for(s.settle(), &what, || async {
        let status = s.provider().status(function).await.map_err(|e| e.message())?;
        match shown_labels(&status, expected).as_ref() == Some(expected) {
            true => Ok(()),
            false => Err(format!("status.labels = {:?}", status.labels)),
        }
    })
    .await;
    let entry = listed(s, function).await;
    assert_eq!(shown_labels(&entry, expected).as_ref(), Some(expected), "{}: labels in list {when}", s.scenario());
}

/// The labels the scaling layer reports when a function does not set them
/// (the type and target in use, under OpenFaaS's names): a status may carry
/// them beside the sent ones.
const REPORTED_BY_SCALING: [&str; 2] = ["com.openfaas.scale.type", "com.openfaas.scale.target"];

/// `status`'s labels without those the scaling layer adds on its own
/// (see [`REPORTED_BY_SCALING`]) that `sent` does not hold.
fn shown_labels(status: &FunctionStatus, sent: &BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    let mut labels = status.labels.clone()?;
    labels.retain(|key, _| sent.contains_key(key) || !REPORTED_BY_SCALING.contains(&key.as_str()));
    Some(labels)
}

/// `function`'s entry in `list` of its namespace.
async fn listed(s: &Scenario, function: &FunctionRef) -> FunctionStatus {
    let what = format!("{}: list({})", s.scenario(), function.namespace);
    let all = ok(&what, s.provider().list(&function.namespace).await);
    all.into_iter()
        .find(|f| f.name == function.name)
        .unwrap_or_else(|| panic!("{what} does not show {}", function.name))
}

/// The status as JSON, after checking that the five map and list fields
/// are there with the right JSON type.
fn shape(scenario: &str, when: &str, status: &FunctionStatus) -> Value {
    let json = serde_json::to_value(status).expect("a status serializes");
    for (field, object) in
        [("labels", true), ("annotations", true), ("envVars", true), ("secrets", false), ("constraints", false)]
    {
        let value = &json[field];
        let right = if object { value.is_object() } else { value.is_array() };
        let kind = if object { "an object" } else { "an array" };
        assert!(right, "{scenario}: {field} {when} must be {kind}, is {value} in {json}");
    }
    json
}
