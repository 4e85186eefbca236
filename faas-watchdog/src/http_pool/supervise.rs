//! One slot's supervision: start its process, probe it until it serves,
//! restart it with backoff when it exits, drain and stop it when told to.

use super::*;

/// How a process's run ended.
enum Ended {
    /// It exited by itself; why, in words.
    Exited(String),
    /// The slot was told to stop, and the process is gone.
    Stopped,
}

/// A slot's supervisor: starts the process, probes it, restarts it with
/// backoff, drains and stops it when told to, then leaves the pool.
pub(super) async fn run_slot(shared: Arc<Shared>, slot: Arc<Slot>, mut orders: watch::Receiver<Order>) {
    let mut backoff = MIN_BACKOFF;
    while *orders.borrow_and_update() == Order::Run {
        let started = Instant::now();
        match start_process(&shared, &slot).await {
            Ok(running) => match watch_process(&shared, &slot, running, &mut orders).await {
                Ended::Stopped => break,
                Ended::Exited(why) => {
                    tracing::warn!(instance = %slot.name, "{why}");
                    slot.set_status(Some(why));
                }
            },
            Err(why) => {
                tracing::warn!(instance = %slot.name, "{why}");
                slot.set_status(Some(why));
            }
        }
        slot.ready.store(false, Ordering::SeqCst);
        slot.pid.store(0, Ordering::SeqCst);
        shared.changed.notify_waiters();
        if started.elapsed() >= RESET_AFTER {
            backoff = MIN_BACKOFF;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = orders.changed() => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    slot.ready.store(false, Ordering::SeqCst);
    if let Ok(mut state) = shared.state.lock() {
        state.slots.retain(|s| !Arc::ptr_eq(s, &slot));
    }
    shared.changed.notify_waiters();
}

/// A process just started by [`start_process`].
struct Running {
    child: Proc,
    /// The address whose TCP connect makes the instance ready.
    probe_addr: String,
    /// The last lines of its output, for the exit message.
    tail: SharedTail,
    /// The tasks forwarding its output to the log sink.
    pumps: Vec<JoinHandle<()>>,
    /// Its sandbox cgroup, held until it has been stopped and reaped.
    lease: Option<Lease>,
}

/// Spawns the slot's process.
async fn start_process(shared: &Shared, slot: &Slot) -> Result<Running, String> {
    let mut env = shared.env.clone();
    let (base, probe_addr) = match &shared.upstream {
        Some(upstream) => {
            let host = upstream.host().unwrap_or("127.0.0.1").trim_start_matches('[').trim_end_matches(']');
            let port = upstream.port_u16().unwrap_or(80);
            let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
            (upstream.clone(), addr)
        }
        None => {
            let port = free_port().map_err(|e| format!("no free port for {}: {e}", slot.name))?;
            env.insert("PORT".into(), port.to_string());
            let base: Uri = format!("http://127.0.0.1:{port}").parse().map_err(|e| format!("{e}"))?;
            (base, format!("127.0.0.1:{port}"))
        }
    };
    let spec = ProcessSpec::resolve(&shared.words, &env, shared.working_dir.clone(), shared.jail.clone())
        .map_err(|e| e.to_string())?;
    let (mut child, lease) =
        spec.spawn(&BTreeMap::new(), Input::Null).await.map_err(|e| format!("could not start {:?}: {e}", spec.arg0))?;
    if let Ok(mut memory) = slot.memory.lock() {
        *memory = lease.as_ref().and_then(Lease::memory);
    }
    let pid = child.id().unwrap_or(0);
    let tail = SharedTail::default();
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        let name = slot.name.clone();
        pumps.push(tokio::spawn(pump_lines(out, name, Stream::Stdout, shared.sink.clone(), Some(tail.clone()))));
    }
    if let Some(err) = child.stderr.take() {
        let name = slot.name.clone();
        pumps.push(tokio::spawn(pump_lines(err, name, Stream::Stderr, shared.sink.clone(), Some(tail.clone()))));
    }
    slot.pid.store(pid, Ordering::SeqCst);
    if let Ok(mut slot_base) = slot.base.lock() {
        *slot_base = Some(base);
    }
    tracing::debug!(instance = %slot.name, pid, "started");
    Ok(Running { child, probe_addr, tail, pumps, lease })
}

/// Probes the running process until it exits or the slot is told to stop.
async fn watch_process(shared: &Shared, slot: &Slot, running: Running, orders: &mut watch::Receiver<Order>) -> Ended {
    let Running { mut child, probe_addr, tail, pumps, lease: _lease } = running;
    let probe_addr = probe_addr.as_str();
    let started = Instant::now();
    let pid = child.id().unwrap_or(0);
    // When the instance was last seen not ready (started, or failed a
    // probe after it had been ready).
    let mut unready_since = Some(started);
    loop {
        let interval = if slot.ready.load(Ordering::SeqCst) {
            unready_since = None;
            PROBE_READY
        } else {
            starting_interval(unready_since.get_or_insert_with(Instant::now).elapsed())
        };
        tokio::select! {
            status = child.wait() => {
                slot.ready.store(false, Ordering::SeqCst);
                shared.changed.notify_waiters();
                kill_group(pid);
                let status = match status {
                    Ok(status) => status.to_string(),
                    Err(e) => format!("an unknown status ({e})"),
                };
                let ran = started.elapsed();
                let when = if ran < Duration::from_secs(1) {
                    "right after start".to_string()
                } else {
                    format!("after {:.1}s", ran.as_secs_f64())
                };
                // Let the output that explains the exit reach the tail.
                let _ = tokio::time::timeout(OUTPUT_DRAIN, futures_util::future::join_all(pumps)).await;
                let tail = tail.lock().map(|t| t.text()).unwrap_or_default();
                let mut why = format!("{} exited with {status} {when}", slot.name);
                if !tail.is_empty() {
                    why.push_str(": ");
                    why.push_str(&tail);
                }
                return Ended::Exited(why);
            }
            _ = orders.changed() => {
                let order = *orders.borrow_and_update();
                if order == Order::Run {
                    continue;
                }
                slot.ready.store(false, Ordering::SeqCst);
                shared.changed.notify_waiters();
                if order == Order::Drain {
                    drain(shared, slot, &mut child, orders).await;
                }
                kill_group(pid);
                let _ = child.start_kill();
                let _ = child.wait().await;
                tracing::debug!(instance = %slot.name, pid, "stopped");
                return Ended::Stopped;
            }
            _ = tokio::time::sleep(interval) => probe(shared, slot, probe_addr).await,
            _ = slot.wake.notified() => probe(shared, slot, probe_addr).await,
        }
    }
}

/// The probe interval of an instance that has been starting (or not ready)
/// for `waited`: an eighth of it, within [`PROBE_FIRST`] and
/// [`PROBE_STARTING`] ([`faas_core::poll::pause_after`]).
fn starting_interval(waited: Duration) -> Duration {
    faas_core::poll::pause_after(waited, PROBE_FIRST, PROBE_STARTING)
}

/// Waits for the slot's calls to finish (bounded by `exec_timeout` when
/// set), the process to exit, or an order to stop now.
async fn drain(shared: &Shared, slot: &Slot, child: &mut Proc, orders: &mut watch::Receiver<Order>) {
    let drained = crate::gate::until_zero(&slot.inflight, &slot.drained);
    let limit = async {
        match shared.drain_limit {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let stop_now = async {
        while orders.changed().await.is_ok() {
            if *orders.borrow_and_update() == Order::Stop {
                return;
            }
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = drained => {}
        _ = limit => {}
        _ = stop_now => {}
        _ = child.wait() => {}
    }
}

/// Marks the slot ready when a TCP connect succeeds, not ready otherwise.
async fn probe(shared: &Shared, slot: &Slot, addr: &str) {
    let epoch = slot.epoch.load(Ordering::SeqCst);
    let connected =
        matches!(tokio::time::timeout(PROBE_CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await, Ok(Ok(_)));
    if connected && slot.epoch.load(Ordering::SeqCst) == epoch {
        if !slot.ready.swap(true, Ordering::SeqCst) {
            slot.set_status(None);
            tracing::debug!(instance = %slot.name, "ready");
            shared.changed.notify_waiters();
        }
    } else if !connected && slot.ready.swap(false, Ordering::SeqCst) {
        shared.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When probes that start at 0 and follow [`starting_interval`] first
    /// find a process that is ready at `ready`.
    fn seen_at(ready: Duration) -> Duration {
        let mut now = Duration::ZERO;
        while now < ready {
            now += starting_interval(now);
        }
        now
    }

    #[test]
    fn a_starting_process_is_seen_ready_at_most_an_eighth_late() {
        for ms in 1..=3000u64 {
            let ready = Duration::from_millis(ms);
            let late = seen_at(ready) - ready;
            assert!(late <= PROBE_FIRST.max(ready / 8), "ready at {ready:?}, seen {late:?} late");
        }
        // Doubling from 1 ms saw a process ready at 16 ms only at 31 ms.
        assert!(seen_at(Duration::from_millis(16)) <= Duration::from_millis(18));
    }

    #[test]
    fn probes_of_a_slow_start_stay_few() {
        let probes = |until: Duration| {
            let (mut now, mut n) = (Duration::ZERO, 0);
            while now < until {
                now += starting_interval(now);
                n += 1;
            }
            n
        };
        // One connect attempt per probe: the first second costs about 50,
        // then ten a second.
        assert!(probes(Duration::from_secs(1)) <= 60, "{}", probes(Duration::from_secs(1)));
        assert!(probes(Duration::from_secs(10)) <= 160, "{}", probes(Duration::from_secs(10)));
    }
}
