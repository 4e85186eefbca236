//! The JSON of OpenFaaS's provider API, written by hand from the field
//! lists of its API documentation, read and written back unchanged.

use faas_core::{FunctionDeployment, FunctionStatus, ScaleServiceRequest, Secret};
use serde_json::{json, Value};

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(sample: &Value) -> Value {
    let typed: T = serde_json::from_value(sample.clone()).expect("sample deserializes");
    serde_json::to_value(&typed).unwrap()
}

#[test]
fn function_list_round_trips() {
    let sample = json!([
        {
            "name": "nodeinfo",
            "image": "functions/nodeinfo:latest",
            "namespace": "openfaas-fn",
            "envProcess": "node main.js",
            "envVars": {"write_debug": "true"},
            "constraints": ["node.platform.os == linux"],
            "secrets": ["api-key"],
            "labels": {"com.openfaas.scale.min": "2", "team": "web"},
            "annotations": {"topic": "nodes", "prometheus.io.scrape": "false"},
            "limits": {"memory": "128M", "cpu": "0.01"},
            "requests": {"memory": "64M", "cpu": "0.005"},
            "readOnlyRootFilesystem": true,
            "invocationCount": 1337,
            "replicas": 2,
            "availableReplicas": 2,
            "createdAt": "2022-03-24T11:05:42Z",
            "usage": {"cpu": 1.5, "totalMemoryBytes": 2097152}
        },
        {
            "name": "figlet",
            "image": "functions/figlet:0.13.0",
            "namespace": "openfaas-fn",
            "envVars": {},
            "constraints": [],
            "secrets": [],
            "labels": {},
            "annotations": {},
            "replicas": 1,
            "createdAt": "2021-01-02T03:04:05.123456789Z"
        }
    ]);
    assert_eq!(round_trip::<Vec<FunctionStatus>>(&sample), sample);
    let typed: Vec<FunctionStatus> = serde_json::from_value(sample).unwrap();
    assert_eq!(typed[0].available_replicas, 2);
    assert_eq!(typed[0].invocation_count, 1337.0);
    assert_eq!(typed[0].limits.as_ref().unwrap().memory, "128M");
    assert_eq!(typed[1].created_at.unwrap().timestamp_subsec_nanos(), 123_456_789);
}

#[test]
fn deployment_round_trips() {
    let sample = json!({
        "service": "nodeinfo",
        "image": "functions/nodeinfo:latest",
        "namespace": "openfaas-fn",
        "envProcess": "node main.js",
        "envVars": {"mode": "http"},
        "constraints": ["node.platform.os == linux"],
        "secrets": ["api-key"],
        "labels": {"team": "web"},
        "annotations": {"topic": "nodes"},
        "limits": {"memory": "128M"},
        "requests": {"cpu": "100m"},
        "readOnlyRootFilesystem": true
    });
    assert_eq!(round_trip::<FunctionDeployment>(&sample), sample);
    let scale = json!({"serviceName": "nodeinfo", "replicas": 3, "namespace": "openfaas-fn"});
    assert_eq!(round_trip::<ScaleServiceRequest>(&scale), scale);
    let secret = json!({"name": "api-key", "namespace": "openfaas-fn", "rawValue": "c2VjcmV0"});
    assert_eq!(round_trip::<Secret>(&secret), secret);
}

#[test]
fn unknown_fields_are_ignored_and_nulls_read_as_absent_as_go_does() {
    let sample = json!({
        "service": "a",
        "image": "i",
        "envVars": null,
        "constraints": null,
        "secrets": null,
        "labels": null,
        "limits": null,
        "someFutureField": {"nested": [1, 2]},
    });
    let deployment: FunctionDeployment = serde_json::from_value(sample).unwrap();
    assert!(deployment.env_vars.is_empty() && deployment.secrets.is_empty() && deployment.labels.is_none());
    assert_eq!(serde_json::to_value(&deployment).unwrap(), json!({"service": "a", "image": "i"}));
}

#[test]
fn zero_status_fields_are_omitted_but_maps_and_lists_are_always_written() {
    let status = FunctionStatus { name: "a".into(), image: "i".into(), ..Default::default() };
    let empty = json!({
        "name": "a", "image": "i", "envVars": {}, "constraints": [], "secrets": [], "labels": {}, "annotations": {}
    });
    assert_eq!(serde_json::to_value(&status).unwrap(), empty);
    // null in a client's JSON reads as empty and is written back as empty.
    let nulls = json!({"name": "a", "image": "i", "envVars": null, "constraints": null, "secrets": null,
        "labels": null, "annotations": null});
    assert_eq!(round_trip::<FunctionStatus>(&nulls), empty);
}
