//! `deploy/k8s/` against what the provider really does: the manifests
//! parse, the gateway's environment is a valid configuration, and the
//! service account's RBAC grants every request the provider made through a
//! whole function life (recorded by the test API server as RBAC would
//! authorise them) and nothing it did not make.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use faas_core::{FunctionRef, LogRequest, Provider, Secret, DEFAULT_NAMESPACE};
use faas_testkit::function::ShellFunction;
use faas_testkit::{invoke_bytes, wait_for};
use futures_util::StreamExt;
use http::{HeaderMap, Method, StatusCode};
use k8s_test_server::Access;
use provider_k8s::{InvokeMode, K8sConfig, K8sProvider};
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(30);

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s")
}

/// Every document of every `*.yaml` directly in `deploy/k8s/` (what
/// `kubectl apply -f deploy/k8s/` applies), in file order.
fn manifests() -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .expect("deploy/k8s exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", deploy_dir().display());
    files
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).expect("a readable manifest");
            let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
            docs.into_iter().filter(|doc| !doc.is_null())
        })
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|doc| doc["kind"] == kind).collect()
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().map(|items| items.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// The gateway Deployment, its service account (name, namespace) and its
/// container's environment.
fn gateway(docs: &[Value]) -> (String, String, BTreeMap<String, String>) {
    let deployments = of_kind(docs, "Deployment");
    let [gateway] = deployments.as_slice() else { panic!("one gateway Deployment expected, found {deployments:?}") };
    let spec = &gateway["spec"]["template"]["spec"];
    let account = spec["serviceAccountName"].as_str().expect("the gateway names its service account").to_owned();
    let namespace = gateway["metadata"]["namespace"].as_str().expect("the gateway's namespace").to_owned();
    let env = spec["containers"][0]["env"]
        .as_array()
        .expect("the gateway's environment")
        .iter()
        .map(|var| (var["name"].as_str().unwrap().to_owned(), var["value"].as_str().unwrap_or_default().to_owned()))
        .collect();
    (account, namespace, env)
}

/// One permission as a rule grants it: (group, resource, verb).
type Grant = (String, String, String);

/// What the manifests grant `account` in `namespace`: the grants valid in
/// every namespace and at cluster scope (ClusterRoleBindings), and those
/// valid in one namespace only (RoleBindings).
struct Rbac {
    cluster: BTreeSet<Grant>,
    namespaced: BTreeMap<String, BTreeSet<Grant>>,
}

fn rbac(docs: &[Value], account: &str, namespace: &str) -> Rbac {
    let rules_of = |kind: &str, name: &str, binding_namespace: Option<&str>| -> BTreeSet<Grant> {
        let role = docs
            .iter()
            .find(|doc| {
                doc["kind"] == kind
                    && doc["metadata"]["name"] == name
                    && (kind == "ClusterRole" || doc["metadata"]["namespace"].as_str() == binding_namespace)
            })
            .unwrap_or_else(|| panic!("{kind} {name} is bound but not defined"));
        let mut grants = BTreeSet::new();
        for rule in role["rules"].as_array().expect("a role has rules") {
            assert!(rule.get("resourceNames").is_none(), "resourceNames are not expected: {rule}");
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    for verb in strings(&rule["verbs"]) {
                        grants.insert((group.to_owned(), resource.to_owned(), verb.to_owned()));
                    }
                }
            }
        }
        grants
    };
    let binds_us = |binding: &Value| {
        binding["subjects"].as_array().is_some_and(|subjects| {
            subjects
                .iter()
                .any(|s| s["kind"] == "ServiceAccount" && s["name"] == account && s["namespace"] == namespace)
        })
    };
    let mut rbac = Rbac { cluster: BTreeSet::new(), namespaced: BTreeMap::new() };
    for binding in of_kind(docs, "ClusterRoleBinding").into_iter().filter(|b| binds_us(b)) {
        assert_eq!(binding["roleRef"]["kind"], "ClusterRole", "{binding}");
        rbac.cluster.extend(rules_of("ClusterRole", binding["roleRef"]["name"].as_str().unwrap(), None));
    }
    for binding in of_kind(docs, "RoleBinding").into_iter().filter(|b| binds_us(b)) {
        let ns = binding["metadata"]["namespace"].as_str().expect("a RoleBinding is namespaced");
        let role_kind = binding["roleRef"]["kind"].as_str().unwrap();
        let grants = rules_of(role_kind, binding["roleRef"]["name"].as_str().unwrap(), Some(ns));
        rbac.namespaced.entry(ns.to_owned()).or_default().extend(grants);
    }
    rbac
}

fn covers(grants: &BTreeSet<Grant>, access: &Access) -> Option<Grant> {
    let wanted = [
        (access.group.clone(), access.resource.clone(), access.verb.clone()),
        (access.group.clone(), access.resource.clone(), "*".to_owned()),
        (access.group.clone(), "*".to_owned(), access.verb.clone()),
        ("*".to_owned(), access.resource.clone(), access.verb.clone()),
    ];
    wanted.into_iter().find(|grant| grants.contains(grant))
}

/// A whole function life through the provider, as the in-cluster gateway
/// of `20-gateway.yaml` would run it: secrets, deploy with a secret, calls,
/// update, scale, logs (read and followed), list, status, namespaces,
/// delete.
async fn function_life(provider: &K8sProvider) {
    let secret = Secret { name: "api-key".into(), value: "first".into(), ..Secret::default() };
    provider.create_secret(secret).await.expect("create a secret");
    let secret = Secret { name: "api-key".into(), value: "s3cr3t".into(), ..Secret::default() };
    provider.update_secret(secret).await.expect("update the secret");
    assert!(provider.list_secrets(DEFAULT_NAMESPACE).await.expect("list secrets").iter().any(|s| s.name == "api-key"));

    let script = ShellFunction::write().expect("the conformance script is written");
    let mut deployment = script.deployment("life");
    deployment.secrets = vec!["api-key".into()];
    provider.deploy(deployment.clone()).await.expect("deploy");
    let function = FunctionRef::new("life", DEFAULT_NAMESPACE);
    let call = |path: &'static str| {
        let function = function.clone();
        async move {
            let (status, _, body) = invoke_bytes(provider, &function, Method::GET, path, HeaderMap::new(), Vec::new())
                .await
                .map_err(|e| e.message())?;
            if status == StatusCode::OK {
                Ok(String::from_utf8_lossy(&body).into_owned())
            } else {
                Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
            }
        }
    };
    let value = wait_for(SETTLE, "the function reads its secret", || call("/secret/api-key")).await;
    assert_eq!(value, "s3cr3t");

    deployment.env_vars = BTreeMap::from([("GREETING".to_owned(), "hello".to_owned())]);
    provider.update(deployment).await.expect("update");
    let greeting = wait_for(SETTLE, "the updated function answers", || async {
        match call("/env/GREETING").await? {
            text if text == "hello" => Ok(text),
            other => Err(format!("still the old version: {other:?}")),
        }
    })
    .await;
    assert_eq!(greeting, "hello");

    provider.scale(&function, 2).await.expect("scale");
    wait_for(SETTLE, "two available replicas", || async {
        match provider.status(&function).await {
            Ok(status) if status.available_replicas == 2 => Ok(()),
            Ok(status) => Err(format!("{} available", status.available_replicas)),
            Err(e) => Err(e.message()),
        }
    })
    .await;
    call("/log/hello-logs").await.expect("a call that logs");

    let request = LogRequest { name: "life".into(), namespace: DEFAULT_NAMESPACE.into(), ..LogRequest::default() };
    wait_for(SETTLE, "the logged line", || async {
        let messages: Vec<_> = provider.logs(request.clone()).await.map_err(|e| e.message())?.collect().await;
        if messages.iter().any(|m| m.as_ref().is_ok_and(|m| m.text.contains("hello-logs"))) {
            Ok(())
        } else {
            Err(format!("{} messages, none with the line", messages.len()))
        }
    })
    .await;
    let follow = LogRequest { follow: true, ..request };
    let mut stream = provider.logs(follow).await.expect("follow the logs");
    let first = tokio::time::timeout(SETTLE, stream.next()).await.expect("a followed line arrives");
    assert!(first.is_some_and(|m| m.is_ok()), "the followed stream yields a message");
    drop(stream);

    assert!(provider.list(DEFAULT_NAMESPACE).await.expect("list").iter().any(|f| f.name == "life"));
    assert!(provider.list_namespaces().await.expect("namespaces").iter().any(|n| n == DEFAULT_NAMESPACE));
    provider.get_namespace(DEFAULT_NAMESPACE).await.expect("get the function namespace");

    provider.delete(&function).await.expect("delete");
    provider.delete_secret(DEFAULT_NAMESPACE, "api-key").await.expect("delete the secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifests_grant_exactly_what_the_provider_uses() {
    let docs = manifests();
    for doc in &docs {
        assert!(doc["apiVersion"].is_string() && doc["kind"].is_string(), "not a Kubernetes object: {doc}");
    }
    let (account, account_namespace, env) = gateway(&docs);
    assert!(
        of_kind(&docs, "ServiceAccount").iter().any(|sa| sa["metadata"]["name"] == account.as_str()
            && sa["metadata"]["namespace"] == account_namespace.as_str()),
        "the gateway's service account {account} is defined in {account_namespace}"
    );
    let config = K8sConfig::from_vars(|name| env.get(name).cloned()).expect("the gateway's environment is valid");
    assert_eq!(config.invoke, InvokeMode::Endpoints, "the in-cluster gateway calls pods directly");
    assert!(!config.manage_namespaces, "namespace management is the optional manifest's business");
    let function_namespace = of_kind(&docs, "Namespace")
        .into_iter()
        .find(|ns| ns["metadata"]["name"] == config.namespace.as_str())
        .unwrap_or_else(|| panic!("the function namespace {} is created", config.namespace));
    assert_eq!(function_namespace["metadata"]["labels"]["openfaas"], "1", "the function namespace is labelled");
    assert_eq!(config.namespace, DEFAULT_NAMESPACE, "the workload below runs in the manifests' namespace");

    let rbac = rbac(&docs, &account, &account_namespace);
    assert!(rbac.namespaced.contains_key(&config.namespace), "a RoleBinding grants rights in {}", config.namespace);

    let server = common::server().await;
    let provider_config = K8sConfig { manage_namespaces: false, ..common::config(InvokeMode::Endpoints) };
    let provider = K8sProvider::new(common::client(&server), provider_config).await.expect("the provider starts");
    function_life(&provider).await;

    let accesses = server.accesses();
    let mut used = BTreeSet::new();
    let mut missing = Vec::new();
    for access in &accesses {
        let namespaced = access.namespace.as_ref().and_then(|ns| rbac.namespaced.get(ns));
        match covers(&rbac.cluster, access)
            .map(|grant| (None, grant))
            .or_else(|| namespaced.and_then(|grants| covers(grants, access)).map(|g| (access.namespace.clone(), g)))
        {
            Some(grant) => {
                used.insert(grant);
            }
            None => missing.push(access),
        }
    }
    assert!(missing.is_empty(), "requests the manifests do not grant the gateway: {missing:#?}");

    let unused: Vec<_> = rbac
        .cluster
        .iter()
        .map(|grant| (None, grant.clone()))
        .chain(rbac.namespaced.iter().flat_map(|(ns, grants)| grants.iter().map(|g| (Some(ns.clone()), g.clone()))))
        .filter(|grant| !used.contains(grant))
        .collect();
    assert!(unused.is_empty(), "grants no request of the provider needed (least privilege): {unused:?}");
    println!("{} distinct requests, each granted; {} grants, each used", accesses.len(), used.len());
    server.shutdown().await;
}
