//! Pods as processes: each pod bound to this "node" runs its first
//! container as a real `fwatchdog` process on its own loopback address,
//! with its logs captured, its readiness probed and its secret volumes
//! written to a per-pod directory.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use faas_test_support::process::{self, Stop, StopAsked};
use serde_json::{json, Value};
use tokio::sync::{watch, OnceCell};
use tokio::task::JoinHandle;

use crate::kinds;
pub(crate) use crate::pod_spec::container_port;
use crate::pod_spec::{container_env, materialise_volumes, resolve_port};
use crate::store::{self, str_at};
use crate::{lock, Shared};

/// The node name pods are bound to.
pub(crate) const NODE: &str = "k8s-test-server";
/// Lines kept per pod.
const LOG_LINES: usize = 10_000;
/// How often a pod that is not ready yet is probed.
const PROBE_FAST: Duration = Duration::from_millis(100);
/// How often a ready pod is probed (at most; a shorter periodSeconds is not
/// possible, periodSeconds is at least 1).
const PROBE_SLOW: Duration = Duration::from_millis(500);

/// A pod's captured output.
#[derive(Debug)]
pub(crate) struct PodLogs {
    inner: Mutex<LogsInner>,
    /// Bumped on every line and when the container stops.
    pub(crate) notify: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct LogsInner {
    lines: VecDeque<(DateTime<Utc>, String)>,
    /// Lines ever appended (the index of the next line).
    total: u64,
    running: bool,
}

impl PodLogs {
    fn new() -> PodLogs {
        PodLogs { inner: Mutex::new(LogsInner::default()), notify: watch::channel(0).0 }
    }

    fn push(&self, line: String) {
        let mut inner = lock(&self.inner);
        inner.lines.push_back((Utc::now(), line));
        inner.total += 1;
        while inner.lines.len() > LOG_LINES {
            inner.lines.pop_front();
        }
        drop(inner);
        self.notify.send_modify(|n| *n += 1);
    }

    fn set_running(&self, running: bool) {
        lock(&self.inner).running = running;
        self.notify.send_modify(|n| *n += 1);
    }

    /// Lines with index >= `from` (global indices), the next index, and
    /// whether the container is running.
    pub(crate) fn read(&self, from: u64) -> (Vec<(DateTime<Utc>, String)>, u64, bool) {
        let inner = lock(&self.inner);
        let first = inner.total - inner.lines.len() as u64;
        let skip = from.saturating_sub(first) as usize;
        (inner.lines.iter().skip(skip).cloned().collect(), inner.total, inner.running)
    }
}

struct PodHandle {
    logs: Arc<PodLogs>,
    stop: Stop,
    task: JoinHandle<()>,
}

/// The pods running on this node.
#[derive(Default)]
pub(crate) struct Runtime {
    pods: Mutex<HashMap<String, PodHandle>>,
    fwatchdog: OnceCell<Result<PathBuf, String>>,
}

/// Pod IPs in use by every server of this process.
static IPS: Mutex<Option<HashSet<Ipv4Addr>>> = Mutex::new(None);

/// A free pod IP in 127.77.0.0/16: not used by a server of this process and
/// with `port` free (other processes, such as other test binaries running
/// servers, use the same range). The search starts at a random address.
fn allocate_ip(port: u16) -> Option<Ipv4Addr> {
    let mut ips = lock(&IPS);
    let ips = ips.get_or_insert_with(HashSet::new);
    let start = u32::from(uuid::Uuid::new_v4().as_u128() as u16);
    for i in 0..65_536u32 {
        let n = (start + i) % 65_536;
        let ip = Ipv4Addr::from((127u32 << 24) | (77 << 16) | n);
        let last = ip.octets()[3];
        if last == 0 || last == 255 || ips.contains(&ip) {
            continue;
        }
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            ips.insert(ip);
            return Some(ip);
        }
    }
    None
}

fn release_ip(ip: Ipv4Addr) {
    if let Some(ips) = lock(&IPS).as_mut() {
        ips.remove(&ip);
    }
}

impl Runtime {
    /// Whether a pod (by uid) has a runtime.
    pub(crate) fn has(&self, uid: &str) -> bool {
        lock(&self.pods).contains_key(uid)
    }

    /// The uids of every pod with a runtime.
    pub(crate) fn uids(&self) -> Vec<String> {
        lock(&self.pods).keys().cloned().collect()
    }

    /// A pod's logs.
    pub(crate) fn logs(&self, uid: &str) -> Option<Arc<PodLogs>> {
        lock(&self.pods).get(uid).map(|h| h.logs.clone())
    }

    /// Starts a pod's runtime.
    pub(crate) fn start(&self, shared: &Arc<Shared>, pod: &Value) {
        let uid = store::uid_of(pod).to_string();
        let mut pods = lock(&self.pods);
        if pods.contains_key(&uid) {
            return;
        }
        let port = container_port(pod);
        let logs = Arc::new(PodLogs::new());
        // Every address refusing the port means something listens on the
        // wildcard address (0.0.0.0:port) on this host: the pod still runs
        // (and fails to bind, as a container would), saying why.
        let ip = allocate_ip(port).unwrap_or_else(|| {
            logs.push(format!(
                "k8s-test-server: no address in 127.77.0.0/16 has port {port} free: is a process listening on \
                 0.0.0.0:{port}?"
            ));
            Ipv4Addr::new(127, 77, 255, 254)
        });
        let (stop, asked) = process::stop_channel();
        let (ns, name) = store::key_of(pod);
        let task = tokio::spawn(run_pod(shared.clone(), ns, name, uid.clone(), ip, logs.clone(), asked));
        pods.insert(uid, PodHandle { logs, stop, task });
    }

    /// Asks a pod's process to stop (SIGTERM, SIGKILL after `grace` s).
    pub(crate) fn stop(&self, uid: &str, grace: i64) {
        if let Some(handle) = lock(&self.pods).get(uid) {
            handle.stop.ask(Duration::from_secs(u64::try_from(grace).unwrap_or(0)));
        }
    }

    fn finished(&self, uid: &str, ip: Ipv4Addr) {
        lock(&self.pods).remove(uid);
        release_ip(ip);
    }

    /// Kills every pod process and waits for them.
    pub(crate) async fn kill_all(&self) {
        let handles: Vec<PodHandle> = lock(&self.pods).drain().map(|(_, h)| h).collect();
        for handle in &handles {
            handle.stop.ask(Duration::ZERO);
        }
        for handle in handles {
            let abort = handle.task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(10), handle.task).await.is_err() {
                abort.abort();
            }
        }
    }

    /// Aborts every pod task (their processes are killed on drop).
    pub(crate) fn abort_all(&self) {
        for (_, handle) in lock(&self.pods).drain() {
            handle.task.abort();
        }
    }

    /// The fwatchdog binary pods run, resolved once.
    pub(crate) async fn fwatchdog(&self, shared: &Shared) -> Result<PathBuf, String> {
        self.fwatchdog
            .get_or_init(|| faas_test_support::fwatchdog::resolve(shared.options.fwatchdog.clone()))
            .await
            .clone()
    }
}

/// Applies `f` to a pod's stored object (if it is still the pod `uid`)
/// and stores the result when it changed.
pub(crate) fn update_pod(shared: &Shared, ns: &str, name: &str, uid: &str, f: impl FnOnce(&mut Value)) {
    let pods = kinds::by_plural("pods");
    let mut store = shared.store();
    let Some(pod) = store.get(pods, ns, name) else { return };
    if store::uid_of(&pod) != uid {
        return;
    }
    let mut new = (*pod).clone();
    f(&mut new);
    store::strip_nulls(&mut new);
    if new != *pod {
        store.replace(pods, new);
    }
}

fn remove_pod(shared: &Shared, ns: &str, name: &str, uid: &str) {
    let pods = kinds::by_plural("pods");
    let mut store = shared.store();
    if store.get(pods, ns, name).is_some_and(|p| store::uid_of(&p) == uid) {
        store.remove(pods, ns, name);
    }
}

fn container_status(container: &Value, restarts: u64, ready: bool, state: Value, last: Value) -> Value {
    json!([{
        "name": container["name"],
        "image": container["image"],
        "imageID": "",
        "ready": ready,
        "started": state.get("running").is_some(),
        "restartCount": restarts,
        "state": state,
        "lastState": last,
    }])
}

fn set_conditions(status: &mut Value, ready: bool, started_at: &str) {
    let r = if ready { "True" } else { "False" };
    let keep = |t: &str, s: &str| -> String {
        status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == t && c["status"] == s)
            .and_then(|c| c["lastTransitionTime"].as_str())
            .map(String::from)
            .unwrap_or_else(store::now)
    };
    let conditions = json!([
        {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": keep("PodReadyToStartContainers", "True")},
        {"type": "Initialized", "status": "True", "lastTransitionTime": keep("Initialized", "True")},
        {"type": "Ready", "status": r, "lastTransitionTime": keep("Ready", r)},
        {"type": "ContainersReady", "status": r, "lastTransitionTime": keep("ContainersReady", r)},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": keep("PodScheduled", "True")},
    ]);
    status["conditions"] = conditions;
    if status["startTime"].is_null() {
        status["startTime"] = json!(started_at);
    }
}

/// Probes once: Some(timeout) and the result.
async fn probe(pod: &Value, ip: Ipv4Addr) -> bool {
    let container = &pod["spec"]["containers"][0];
    let probe = &container["readinessProbe"];
    let timeout = Duration::from_secs(probe["timeoutSeconds"].as_u64().unwrap_or(1).max(1));
    if probe["httpGet"].is_object() {
        let port = resolve_port(pod, &probe["httpGet"]["port"]);
        let path = probe["httpGet"]["path"].as_str().unwrap_or("/");
        let host =
            probe["httpGet"]["host"].as_str().filter(|h| !h.is_empty()).map(String::from).unwrap_or(ip.to_string());
        let headers: Vec<(String, String)> = probe["httpGet"]["httpHeaders"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| (str_at(h, &["name"]).to_string(), str_at(h, &["value"]).to_string()))
            .collect();
        let call = async move {
            let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await.ok()?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.ok()?;
            tokio::spawn(connection);
            let mut request = http::Request::get(path)
                .header(http::header::HOST, format!("{host}:{port}"))
                .header(http::header::USER_AGENT, "kube-probe/1.33");
            for (k, v) in &headers {
                request = request.header(k.as_str(), v.as_str());
            }
            let request = request.body(http_body_util::Empty::<bytes::Bytes>::new()).ok()?;
            let response = sender.send_request(request).await.ok()?;
            Some((200..400).contains(&response.status().as_u16()))
        };
        return tokio::time::timeout(timeout, call).await.ok().flatten().unwrap_or(false);
    }
    let port = if probe["tcpSocket"].is_object() {
        resolve_port(pod, &probe["tcpSocket"]["port"])
    } else {
        container_port(pod)
    };
    matches!(tokio::time::timeout(timeout, tokio::net::TcpStream::connect((ip, port))).await, Ok(Ok(_)))
}

fn waiting(shared: &Shared, ns: &str, name: &str, uid: &str, reason: &str, message: &str, restarts: u64) {
    update_pod(shared, ns, name, uid, |pod| {
        let container = pod["spec"]["containers"][0].clone();
        let last = pod["status"]["containerStatuses"][0]["lastState"].clone();
        let state = json!({"waiting": {"reason": reason, "message": message}});
        pod["status"]["containerStatuses"] = container_status(&container, restarts, false, state, last);
        set_conditions(&mut pod["status"], false, &store::now());
    });
}

async fn run_pod(
    shared: Arc<Shared>,
    ns: String,
    name: String,
    uid: String,
    ip: Ipv4Addr,
    logs: Arc<PodLogs>,
    mut stop: StopAsked,
) {
    let outcome = run_containers(&shared, &ns, &name, &uid, ip, &logs, &mut stop).await;
    if outcome.is_none() {
        // The pod ended on its own (restartPolicy): wait to be deleted.
        stop.wait().await;
    }
    logs.set_running(false);
    remove_pod(&shared, &ns, &name, &uid);
    shared.pods.finished(&uid, ip);
}

/// Runs the pod's container until stopped (Some) or terminal (None).
async fn run_containers(
    shared: &Arc<Shared>,
    ns: &str,
    name: &str,
    uid: &str,
    ip: Ipv4Addr,
    logs: &Arc<PodLogs>,
    stop: &mut StopAsked,
) -> Option<()> {
    let root = match tempfile::Builder::new().prefix("k8s-test-server-pod-").tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            waiting(shared, ns, name, uid, "CreateContainerError", &e.to_string(), 0);
            stop.wait().await;
            return Some(());
        }
    };
    let fwatchdog = match shared.pods.fwatchdog(shared).await {
        Ok(path) => path,
        Err(e) => {
            waiting(shared, ns, name, uid, "CreateContainerError", &format!("fwatchdog: {e}"), 0);
            stop.wait().await;
            return Some(());
        }
    };
    let mut restarts: u64 = 0;
    let mut backoff = Duration::from_millis(500);
    loop {
        let pod = {
            let store = shared.store();
            store.get(kinds::by_plural("pods"), ns, name).filter(|p| store::uid_of(p) == uid)
        };
        let Some(pod) = pod else { return Some(()) };
        let env = container_env(shared, &pod, ip).and_then(|mut env| {
            env.extend(materialise_volumes(shared, &pod, root.path())?);
            Ok(env)
        });
        let mut env = match env {
            Ok(env) => env,
            Err(message) => {
                waiting(shared, ns, name, uid, "CreateContainerConfigError", &message, restarts);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stop.wait() => return Some(()),
                }
            }
        };
        let port = container_port(&pod);
        env.insert("listen_address".to_string(), ip.to_string());
        env.insert("port".to_string(), port.to_string());
        let mut child = match process::command(&fwatchdog, &process::container_env(name, env), root.path()).spawn() {
            Ok(child) => child,
            Err(e) => {
                waiting(
                    shared,
                    ns,
                    name,
                    uid,
                    "CreateContainerError",
                    &format!("{}: {e}", fwatchdog.display()),
                    restarts,
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => continue,
                    _ = stop.wait() => return Some(()),
                }
            }
        };
        logs.set_running(true);
        let push = |logs: &Arc<PodLogs>| {
            let logs = logs.clone();
            move |line| logs.push(line)
        };
        let readers = [
            child.stdout.take().map(|o| process::read_lines(o, push(logs))),
            child.stderr.take().map(|e| process::read_lines(e, push(logs))),
        ];
        let started_at = store::now();
        let container = pod["spec"]["containers"][0].clone();
        let running = |ready: bool| {
            let container = container.clone();
            let started_at = started_at.clone();
            move |pod: &mut Value| {
                let last = pod["status"]["containerStatuses"][0]["lastState"].clone();
                let last = if last.is_null() { json!({}) } else { last };
                let status = &mut pod["status"];
                status["phase"] = json!("Running");
                status["hostIP"] = json!("127.0.0.1");
                status["hostIPs"] = json!([{"ip": "127.0.0.1"}]);
                status["podIP"] = json!(ip.to_string());
                status["podIPs"] = json!([{"ip": ip.to_string()}]);
                let state = json!({"running": {"startedAt": started_at}});
                status["containerStatuses"] = container_status(&container, restarts, ready, state, last);
                set_conditions(status, ready, &started_at);
            }
        };
        update_pod(shared, ns, name, uid, running(false));
        let mut ready = false;
        let exit = loop {
            let interval = if ready { PROBE_SLOW } else { PROBE_FAST };
            tokio::select! {
                status = child.wait() => break status.ok(),
                grace = stop.wait() => {
                    update_pod(shared, ns, name, uid, running(false));
                    let _ = process::terminate(&mut child, grace).await;
                    process::drain(readers.into_iter().flatten()).await;
                    return Some(());
                }
                _ = tokio::time::sleep(interval) => {
                    let now_ready = probe(&pod, ip).await;
                    if now_ready != ready {
                        ready = now_ready;
                        update_pod(shared, ns, name, uid, running(ready));
                    }
                }
            }
        };
        process::drain(readers.into_iter().flatten()).await;
        logs.set_running(false);
        let code = exit.and_then(|s| s.code()).unwrap_or(137);
        let finished_at = store::now();
        let terminated = json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
            "startedAt": started_at, "finishedAt": finished_at}});
        let policy = pod["spec"]["restartPolicy"].as_str().unwrap_or("Always").to_string();
        let restart = policy == "Always" || (policy == "OnFailure" && code != 0);
        if !restart {
            update_pod(shared, ns, name, uid, |pod| {
                pod["status"]["phase"] = json!(if code == 0 { "Succeeded" } else { "Failed" });
                pod["status"]["containerStatuses"] =
                    container_status(&container, restarts, false, terminated.clone(), json!({}));
                set_conditions(&mut pod["status"], false, &started_at);
            });
            return None;
        }
        update_pod(shared, ns, name, uid, |pod| {
            let state = json!({"waiting": {"reason": "CrashLoopBackOff",
                "message": format!("back-off {}ms restarting failed container", backoff.as_millis())}});
            pod["status"]["containerStatuses"] =
                container_status(&container, restarts, false, state, terminated.clone());
            set_conditions(&mut pod["status"], false, &started_at);
        });
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait() => return Some(()),
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
        restarts += 1;
    }
}
