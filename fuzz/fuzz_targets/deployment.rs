//! A deployment's JSON (`POST`/`PUT /system/functions`) decoded into
//! `FunctionDeployment` and validated, as the API does.
//!
//! Properties: never a panic; a refused deployment is `Invalid` naming one
//! of its fields; an accepted one encodes and decodes to itself, names a
//! function whose reference round-trips, starts a replica count within the
//! limit, and its stored form (the status a provider reports) decodes to
//! a status that gives back a deployment that is valid too.
#![no_main]

use faas_core::validate::MAX_REPLICAS;
use faas_core::{FunctionDeployment, FunctionRef, FunctionStatus, FUNCTION_LABEL};
use faas_fuzz::expect_invalid;
use libfuzzer_sys::fuzz_target;

/// Every field `validate` may name.
const FIELDS: [&str; 9] =
    ["service", "namespace", "envVars.", "secrets", "labels.", "annotations.", "limits.", "requests.", "body"];

fuzz_target!(|data: &[u8]| {
    let Ok(deployment) = serde_json::from_slice::<FunctionDeployment>(data) else { return };
    if let Err(err) = deployment.validate() {
        expect_invalid(&err, &FIELDS);
        return;
    }
    let encoded = serde_json::to_vec(&deployment).expect("a deployment encodes");
    let decoded: FunctionDeployment = serde_json::from_slice(&encoded).expect("an encoded deployment decodes");
    assert_eq!(decoded, deployment);

    let function = deployment.function_ref();
    assert_eq!(FunctionRef::parse(&function.to_string()).expect("a valid deployment's reference parses"), function);
    let replicas = deployment.initial_replicas().expect("validate checked the replicas");
    assert!(replicas <= MAX_REPLICAS);

    let status = FunctionStatus::from_deployment(&deployment);
    let stored = serde_json::to_vec(&status).expect("a status encodes");
    let status_back: FunctionStatus = serde_json::from_slice(&stored).expect("an encoded status decodes");
    assert_eq!(status_back, status);
    let redeployed = status_back.to_deployment();
    redeployed.validate().expect("the deployment a provider reports back is valid");
    assert_eq!(redeployed.labels.as_ref().and_then(|l| l.get(FUNCTION_LABEL)), Some(&deployment.service));
    assert_eq!(redeployed.initial_replicas().ok(), Some(replicas));
});
