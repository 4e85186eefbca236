//! One function's sandbox: its mount plan (and, in fork modes as root, the
//! namespace its calls share), its limits and a pool of instances (each a
//! cgroup and, in fork modes, its spawner thread); and the [`Lease`] each
//! spawned process holds.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use faas_core::Body;
use http::{Response, StatusCode};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{geteuid, getpid};

use super::cgroup::{self, Instance, Limits};
use super::child::{self, ChildSetup, Namespace, OwnedExec, UserMaps};
use super::mounts::{Plan, View};
use super::nursery::Ticket;
use super::spawner::{Reply, Spawner};
use super::{Isolation, Namespaces, Sandbox, SandboxMode};

/// Builds `plan` in a new mount namespace on a thread of its own (only
/// that thread enters it), and returns the namespace.
fn build_on_thread(plan: Arc<Plan>) -> Result<OwnedFd, String> {
    let thread = std::thread::Builder::new().name("faas-sandbox".into()).spawn(move || {
        unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS)
            .map_err(|e| format!("cannot create a mount namespace: {}", e.desc()))?;
        let namespace =
            File::open("/proc/thread-self/ns/mnt").map_err(|e| format!("cannot open the namespace: {e}"))?;
        plan.run().map_err(|failed| format!("{}: {}", plan.describe(failed.step), failed.errno.desc()))?;
        Ok(OwnedFd::from(namespace))
    });
    match thread {
        Ok(handle) => handle.join().unwrap_or_else(|_| Err("the set-up thread panicked".into())),
        Err(e) => Err(format!("cannot start the set-up thread: {e}")),
    }
}

/// Finds out how mount namespaces can be made: `Ok(true)` as root (one is
/// built here to be sure), `Ok(false)` in a user namespace.
pub(crate) fn probe_namespaces() -> Result<bool, String> {
    let as_root = if geteuid().is_root() {
        match build_on_thread(Arc::new(Plan::build(&View::default()))) {
            Ok(_) => return Ok(true),
            Err(e) => Some(e),
        }
    } else {
        None
    };
    match child::can_unshare_user() {
        Ok(()) => Ok(false),
        Err(errno) => {
            let user = format!(
                "unprivileged user namespaces are not allowed ({}); run as root, or allow them \
                 (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)",
                errno.desc()
            );
            Err(match as_root {
                Some(root) => format!("{root}; {user}"),
                None => user,
            })
        }
    }
}

/// One function's sandbox, shared by the processes its watchdog spawns.
#[derive(Debug)]
pub(crate) struct Jail {
    sandbox: Arc<Sandbox>,
    isolation: Isolation,
    /// Whether processes get a mount namespace of their own (the sandbox
    /// has namespaces and no shared one was built).
    namespaced: bool,
    /// The mount plan, built when the first process starts: a plan holds
    /// a path per top-level host entry (about 9 KB), which 10,000
    /// functions at zero replicas would otherwise keep for nothing.
    plan: OnceLock<Arc<Plan>>,
    /// Fork modes as root: the namespace every call joins.
    shared: Option<Arc<OwnedFd>>,
    user: Option<Arc<UserMaps>>,
    limits: Limits,
    /// Fork modes: a process per call, started by each instance's
    /// spawner thread.
    per_call: bool,
    /// Http modes with cgroups: new instances come from the sandbox's
    /// nursery for instances with (`true`) or without a cpu cgroup.
    nursery: Option<bool>,
    /// Instances not in use, each with its cgroups empty.
    pool: Mutex<Vec<Slot>>,
}

/// One instance: its cgroups and, in fork modes, the thread that starts
/// its processes inside them (dropped first: it leaves the cgroups before
/// they are removed).
#[derive(Debug)]
struct Slot {
    spawner: Option<Spawner>,
    cgroup: Instance,
    /// Whether the kernel killed for memory there, with `limits.memory`.
    memory: Option<Arc<MemoryCheck>>,
}

impl Jail {
    /// The function's sandbox; `None` when the sandbox is off. `shared`:
    /// one namespace for every process (fork modes), else one per process.
    pub(crate) fn new(sandbox: &Arc<Sandbox>, isolation: Isolation, shared: bool) -> Result<Option<Arc<Jail>>, String> {
        if sandbox.mode == SandboxMode::Off {
            return Ok(None);
        }
        let per_call = shared;
        // The shared namespace is built now and its plan not kept: every
        // call's process is started in it.
        let shared = match (sandbox.namespaces, shared) {
            (Namespaces::Root, true) => Some(Arc::new(build_on_thread(Arc::new(Plan::build(&isolation.view)))?)),
            _ => None,
        };
        let user = (sandbox.namespaces == Namespaces::User).then(|| Arc::new(UserMaps::identity()));
        let limits = Limits {
            memory: isolation.memory.as_ref().map(|(bytes, _)| *bytes).filter(|_| sandbox.memory_cgroup),
            cpu: isolation.cpu.filter(|_| sandbox.cpu_cgroup),
        };
        let nursery = match per_call {
            false => Some(limits.cpu.is_some()),
            true => None,
        };
        // Started now, so that its first spare is ready for the first
        // process (making one waits for an RCU grace period).
        if let Some(cpu) = nursery {
            sandbox.nursery(cpu);
        }
        Ok(Some(Arc::new(Jail {
            sandbox: sandbox.clone(),
            namespaced: sandbox.namespaces != Namespaces::None && shared.is_none(),
            isolation,
            plan: OnceLock::new(),
            shared,
            user,
            limits,
            per_call,
            nursery,
            pool: Mutex::new(Vec::new()),
        })))
    }

    /// The mount plan of the function's view, built on first use (from the
    /// host's file system as it is then).
    fn plan(&self) -> Arc<Plan> {
        self.plan.get_or_init(|| Arc::new(Plan::build(&self.isolation.view))).clone()
    }

    /// An instance with the function's limits, from the pool if one is
    /// free; in fork modes with its spawner thread. A new http-mode
    /// instance is the nursery's spare when one is ready, with the ticket
    /// that starts its process there.
    fn slot(&self) -> Result<(Option<Slot>, Option<Ticket>), String> {
        if let Some(slot) = self.pool.lock().ok().and_then(|mut pool| pool.pop()) {
            return Ok((Some(slot), None));
        }
        if let Some((mut cgroup, ticket)) = self.nursery.and_then(|cpu| self.sandbox.nursery(cpu)?.take()) {
            match cgroup.adopt(&self.sandbox.instance_name(&self.isolation.label), &self.limits) {
                Ok(()) => {
                    let memory = self.memory_check(&cgroup);
                    return Ok((Some(Slot { spawner: None, cgroup, memory }), Some(ticket)));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "a spare instance could not be adopted");
                    // The thread moves on first, so the spare can go.
                    drop(ticket);
                    drop(cgroup);
                }
            }
        }
        let cgroup = {
            let parent = self.sandbox.cgroups.lock().map_err(|_| "cgroup state poisoned".to_string())?;
            match parent.as_ref() {
                Some(parent) => parent.instance(&self.sandbox.instance_name(&self.isolation.label), &self.limits)?,
                None => return Ok((None, None)),
            }
        };
        let spawner = match self.per_call {
            true => Some(Spawner::start(cgroup.thread_files(), self.shared.clone())?),
            false => None,
        };
        let memory = self.memory_check(&cgroup);
        Ok((Some(Slot { spawner, cgroup, memory }), None))
    }

    /// What tells whether the kernel killed for memory in `cgroup`, with
    /// `limits.memory`.
    fn memory_check(&self, cgroup: &Instance) -> Option<Arc<MemoryCheck>> {
        let (_, text) = self.isolation.memory.as_ref()?;
        cgroup.oom_file().map(|file| {
            Arc::new(MemoryCheck {
                file,
                seen: AtomicU64::new(0),
                message: format!("function {} exceeded its memory limit of {text}", self.isolation.label),
            })
        })
    }

    /// What a child does to enter the sandbox before `exec`, and the lease
    /// held for as long as the process runs.
    pub(crate) fn prepare(self: &Arc<Self>) -> Result<(ChildSetup, Lease), String> {
        let (slot, ticket) = self.slot()?;
        let mut entered = slot.as_ref().and_then(|s| s.spawner.as_ref()).map(Spawner::entered).unwrap_or_default();
        entered.cgroups |= ticket.is_some();
        let namespace = match &self.shared {
            Some(_) if entered.namespace => Namespace::Host,
            Some(shared) => Namespace::Join(shared.clone()),
            None if !self.namespaced => Namespace::Host,
            None if self.sandbox.namespaces == Namespaces::Root => {
                Namespace::Join(Arc::new(build_on_thread(self.plan())?))
            }
            None => Namespace::Build { plan: self.plan(), user: self.user.clone() },
        };
        let address_space = match (&self.isolation.memory, self.sandbox.memory_cgroup) {
            (Some((bytes, _)), false) => Some(*bytes),
            _ => None,
        };
        let memory = slot.as_ref().and_then(|slot| slot.memory.clone());
        if let Some(check) = &memory {
            // Only kills from here on are this process's.
            check.seen.store(cgroup::oom_kills(&check.file), Ordering::SeqCst);
        }
        let setup = ChildSetup {
            parent: getpid(),
            cgroup_procs: match &slot {
                Some(slot) if !entered.cgroups => slot.cgroup.procs_files(),
                _ => Vec::new(),
            },
            address_space,
            namespace,
        };
        Ok((setup, Lease { jail: self.clone(), slot, ticket, pgid: None }))
    }

    /// Takes back an instance once its processes are gone.
    fn give_back(&self, slot: Slot) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(slot);
        }
    }
}

/// Held while a sandboxed process runs: its instance (back to the pool,
/// or removed, when dropped) and its entry in the crash record.
#[derive(Debug)]
pub(crate) struct Lease {
    jail: Arc<Jail>,
    slot: Option<Slot>,
    /// The slot is the nursery's spare: its thread starts the process.
    ticket: Option<Ticket>,
    pgid: Option<i32>,
}

impl Lease {
    /// Records the started process's group (where there are no cgroups).
    pub(crate) fn started(&mut self, pid: u32) {
        let Ok(pgid) = i32::try_from(pid) else { return };
        if let Some(journal) = &self.jail.sandbox.journal {
            journal.started(pgid);
            self.pgid = Some(pgid);
        }
    }

    /// Starts `exec` in the instance: from the nursery's thread for a
    /// spare, from the instance's spawner thread in fork modes, else from
    /// this thread (the child then joins the cgroups itself).
    pub(crate) async fn spawn(&mut self, exec: OwnedExec) -> Reply {
        if let Some(ticket) = self.ticket.take() {
            return ticket.spawn(exec).await;
        }
        match self.slot.as_ref().and_then(|slot| slot.spawner.as_ref()) {
            Some(spawner) => spawner.spawn(exec).await,
            None => exec.spawn(),
        }
    }

    /// Tells whether the kernel killed the process for memory.
    pub(crate) fn memory(&self) -> Option<Arc<MemoryCheck>> {
        self.slot.as_ref()?.memory.clone()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // An unused ticket lets the nursery's thread leave the spare first.
        drop(self.ticket.take());
        if let (Some(pgid), Some(journal)) = (self.pgid, &self.jail.sandbox.journal) {
            journal.ended(pgid);
        }
        let Some(slot) = self.slot.take() else { return };
        if slot.cgroup.is_empty() {
            self.jail.give_back(slot);
            return;
        }
        // Processes still exiting: wait for them off the async threads.
        let jail = self.jail.clone();
        let settle = move || {
            for _ in 0..200 {
                slot.cgroup.kill_all();
                if slot.cgroup.is_empty() {
                    jail.give_back(slot);
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            drop(slot);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(settle)),
            Err(_) => settle(),
        }
    }
}

/// Tells whether the kernel's OOM killer struck in an instance's cgroup
/// since it was last asked.
#[derive(Debug)]
pub(crate) struct MemoryCheck {
    file: PathBuf,
    seen: AtomicU64,
    message: String,
}

impl MemoryCheck {
    /// The 502 a call gets when its process was killed for memory (`None`
    /// if it was not).
    pub(crate) fn exceeded(&self) -> Option<Response<Body>> {
        let now = cgroup::oom_kills(&self.file);
        let before = self.seen.fetch_max(now, Ordering::SeqCst);
        (now > before).then(|| crate::watchdog::platform_response(StatusCode::BAD_GATEWAY, self.message.clone()))
    }
}
