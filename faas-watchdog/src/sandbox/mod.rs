//! The sandbox for function processes: no orphans, a mount namespace per
//! function instance, memory and CPU limits.
//!
//! A [`Sandbox`] is opened once per host process (the gateway, or
//! `fwatchdog`): it finds out what this machine allows, owns a parent
//! cgroup and records what to reap after a crash. Each watchdog is then
//! given the sandbox and its function's [`Isolation`] in
//! [`crate::Options`]; every process it spawns gets:
//!
//! - **no orphans**: `PR_SET_PDEATHSIG` = `SIGKILL` (and a check that the
//!   parent is still there), its own process group, and a cgroup per
//!   instance (or, without cgroups, its process group recorded), so what a
//!   killed gateway left is reaped by the next one ([`reap`]);
//! - **a mount namespace** (as root, or in a user namespace mapping the
//!   user to itself where unprivileged user namespaces are allowed): the
//!   host's file system bound as it is, except the function's secrets
//!   bound read-only at [`SECRETS_MOUNT`], the hidden directories (the
//!   provider's state dir) replaced by an empty tmpfs with only the
//!   function's own working dir shown again, and with
//!   `read_only_root`, `/` read-only with a private writable tmpfs on
//!   `/tmp`. The network is the host's. Fork modes share one namespace per
//!   function (as the calls of one container share its file system), http
//!   mode builds one per process;
//! - **limits**: `memory.max`/`cpu.max` (cgroup v2) or
//!   `memory.limit_in_bytes`/`cpu.cfs_quota_us` (v1) on the instance's
//!   cgroup (fork modes: per call, from a pool of instances; http mode: per
//!   process); where cgroups cannot be written, memory falls back to
//!   `RLIMIT_AS`. A call whose process the kernel killed for memory gets a
//!   502 naming the limit.
//!
//! Every function process is started with `clone(CLONE_VM | CLONE_VFORK)`
//! (what `posix_spawn` does, so the gateway's page tables are not copied)
//! and runs the sandbox's set-up before `exec`, in the one module of the
//! workspace allowed `unsafe` (`sandbox/child.rs`); it is waited for
//! through a pidfd. In fork modes each instance has a spawner thread
//! (`sandbox/spawner.rs`) that moved itself into the instance's v1 cgroups
//! and the function's namespace once, so each call's process is born in
//! them instead of joining them. A `fork` with a `pre_exec` hook cost the gateway about
//! 0.5 ms more CPU per fork-mode call (BENCHMARKS.md §7), and a trampoline
//! (re-executing a helper that sets up and then execs the function) about
//! 1 ms (a second `exec`).

pub mod bounds;
mod cgroup;
pub(crate) mod child;
mod jail;
mod mounts;
mod nursery;
mod record;
mod spawner;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use faas_core::SandboxInfo;

pub(crate) use jail::{Jail, Lease, MemoryCheck};
pub use mounts::{View, SECRETS_MOUNT};
pub use record::reap;

/// The features a sandbox can have, as `/system/info` names them.
pub mod feature {
    /// Children die with their watchdog; leftovers are reaped at start.
    pub const NO_ORPHANS: &str = "no-orphans";
    /// A mount namespace per function instance.
    pub const MOUNT_NAMESPACE: &str = "mount-namespace";
    /// `readOnlyRootFilesystem` makes `/` read-only.
    pub const READ_ONLY_ROOT: &str = "read-only-root";
    /// `limits.memory` is enforced.
    pub const MEMORY_LIMIT: &str = "memory-limit";
    /// `limits.cpu` is enforced.
    pub const CPU_LIMIT: &str = "cpu-limit";
}

/// Whether the sandbox is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SandboxMode {
    /// Processes run as before: no sandbox.
    Off,
    /// Every feature this machine allows.
    #[default]
    Auto,
    /// Every feature, or refuse to start naming the one missing.
    Required,
}

impl fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SandboxMode::Off => "off",
            SandboxMode::Auto => "auto",
            SandboxMode::Required => "required",
        })
    }
}

impl FromStr for SandboxMode {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(SandboxMode::Off),
            "auto" => Ok(SandboxMode::Auto),
            "required" => Ok(SandboxMode::Required),
            _ => Err(format!("{value:?} is not one of off, auto, required")),
        }
    }
}

/// How a [`Sandbox`] is opened.
#[derive(Debug, Clone, Default)]
pub struct SandboxSettings {
    /// Off, auto or required.
    pub mode: SandboxMode,
    /// The name of the parent cgroup, created under this process's own
    /// (unique per host process, e.g. `faas-rs-<pid>`).
    pub cgroup_name: String,
    /// Where to record what to reap after a crash (the provider's state
    /// dir); what a previous sandbox recorded there is reaped on open.
    /// `None`: nothing recorded (processes still die with their parent).
    pub record_dir: Option<PathBuf>,
}

/// A sandbox that cannot be opened in `required` mode.
#[derive(Debug, thiserror::Error)]
#[error("--sandbox required: {feature} is not available on this machine: {reason}")]
pub struct SandboxError {
    /// The missing feature.
    pub feature: &'static str,
    /// Why it is missing.
    pub reason: String,
}

/// How mount namespaces are made here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Namespaces {
    None,
    /// As root: built once on a thread, joined by children.
    Root,
    /// In a user namespace, built by each child.
    User,
}

/// What this machine allows, a parent cgroup and the crash records.
#[derive(Debug)]
pub struct Sandbox {
    mode: SandboxMode,
    namespaces: Namespaces,
    cgroups: Mutex<Option<cgroup::Parent>>,
    /// The cgroup version and whether each controller is there.
    cgroup_version: Option<cgroup::Version>,
    memory_cgroup: bool,
    cpu_cgroup: bool,
    journal: Option<record::Journal>,
    record_dir: Option<PathBuf>,
    info: SandboxInfo,
    next_instance: AtomicU64,
    /// cgroup v1: the threads that wait in spare instances for http-mode
    /// cold starts, without and with a cpu cgroup (`nursery.rs`); started
    /// when the first http-mode function of that kind is deployed.
    nurseries: [OnceLock<Option<nursery::Nursery>>; 2],
}

impl Sandbox {
    /// Reaps what a crashed predecessor recorded, then probes this
    /// machine. In `required` mode a missing feature is an error naming it.
    pub fn open(settings: SandboxSettings) -> Result<Arc<Sandbox>, SandboxError> {
        if let Some(dir) = &settings.record_dir {
            let reaped = reap(dir);
            if !reaped.is_empty() {
                tracing::warn!(reaped = ?reaped, "killed what a previous gateway left running");
            }
        }
        let mut info = SandboxInfo { mode: settings.mode.to_string(), ..SandboxInfo::default() };
        let mut sandbox = Sandbox {
            mode: settings.mode,
            namespaces: Namespaces::None,
            cgroups: Mutex::new(None),
            cgroup_version: None,
            memory_cgroup: false,
            cpu_cgroup: false,
            journal: None,
            record_dir: settings.record_dir.clone(),
            info: SandboxInfo::default(),
            next_instance: AtomicU64::new(0),
            nurseries: [OnceLock::new(), OnceLock::new()],
        };
        if settings.mode == SandboxMode::Off {
            for name in [
                feature::NO_ORPHANS,
                feature::MOUNT_NAMESPACE,
                feature::READ_ONLY_ROOT,
                feature::MEMORY_LIMIT,
                feature::CPU_LIMIT,
            ] {
                info.unavailable.insert(name.into(), "the sandbox is off".into());
            }
            sandbox.info = info;
            return Ok(Arc::new(sandbox));
        }
        let mut missing: Vec<(&'static str, String)> = Vec::new();

        match jail::probe_namespaces() {
            Ok(root) => {
                sandbox.namespaces = if root { Namespaces::Root } else { Namespaces::User };
                let how = if root { "as root" } else { "in a user namespace (rootless)" };
                info.features.insert(feature::MOUNT_NAMESPACE.into(), format!("one per function instance, {how}"));
                info.features
                    .insert(feature::READ_ONLY_ROOT.into(), "bind mounts remounted read-only, private /tmp".into());
            }
            Err(why) => {
                missing.push((feature::MOUNT_NAMESPACE, why.clone()));
                missing.push((feature::READ_ONLY_ROOT, format!("needs a mount namespace: {why}")));
            }
        }

        // Several sandboxes in one process (tests) each get their own parent.
        static OPENED: AtomicU64 = AtomicU64::new(0);
        let parent = if settings.cgroup_name.is_empty() {
            Err("no cgroup name was given".to_string())
        } else {
            let n = OPENED.fetch_add(1, Ordering::Relaxed);
            let name = if n == 0 { settings.cgroup_name.clone() } else { format!("{}-{n}", settings.cgroup_name) };
            cgroup::Parent::create(&name)
        };
        let parent = parent.and_then(|parent| {
            // Writing limits is what matters: try it once.
            let limits = cgroup::Limits { memory: Some(64 << 20), cpu: parent.cpu.as_ref().map(|_| 1.0) };
            parent.instance("probe", &limits).map(|_| parent)
        });
        let orphans = match &parent {
            Ok(parent) => {
                let version = match parent.version {
                    cgroup::Version::V1 => "v1",
                    cgroup::Version::V2 => "v2",
                };
                sandbox.cgroup_version = Some(parent.version);
                sandbox.memory_cgroup = parent.memory.is_some();
                sandbox.cpu_cgroup = parent.cpu.is_some();
                if sandbox.memory_cgroup {
                    let file =
                        if parent.version == cgroup::Version::V1 { "memory.limit_in_bytes" } else { "memory.max" };
                    info.features.insert(feature::MEMORY_LIMIT.into(), format!("cgroup {version} ({file})"));
                }
                if sandbox.cpu_cgroup {
                    let file = if parent.version == cgroup::Version::V1 { "cpu.cfs_quota_us" } else { "cpu.max" };
                    info.features.insert(feature::CPU_LIMIT.into(), format!("cgroup {version} ({file})"));
                } else {
                    missing.push((feature::CPU_LIMIT, format!("no cgroup {version} cpu controller")));
                }
                if let Some(dir) = &settings.record_dir {
                    if let Err(e) = record::save_cgroups(dir, &parent.records()) {
                        tracing::warn!(error = %e, "cannot record the sandbox's cgroups");
                    }
                }
                format!("parent-death signal; a cgroup per instance under {}", parent.dirs()[0].display())
            }
            Err(why) => {
                info.features.insert(
                    feature::MEMORY_LIMIT.into(),
                    format!("RLIMIT_AS (address space; cgroups cannot be written: {why})"),
                );
                missing.push((feature::CPU_LIMIT, format!("cgroups cannot be written: {why}")));
                match &settings.record_dir {
                    Some(dir) => match record::Journal::create(dir) {
                        Ok(journal) => {
                            sandbox.journal = Some(journal);
                            "parent-death signal; process groups recorded for reaping".into()
                        }
                        Err(e) => format!("parent-death signal (process groups cannot be recorded: {e})"),
                    },
                    None => "parent-death signal".into(),
                }
            }
        };
        info.features.insert(feature::NO_ORPHANS.into(), orphans);
        *sandbox.cgroups.lock().unwrap_or_else(|e| e.into_inner()) = parent.ok();

        for (name, why) in missing {
            if settings.mode == SandboxMode::Required {
                // Whatever was made is removed when `sandbox` drops.
                return Err(SandboxError { feature: name, reason: why });
            }
            info.unavailable.insert(name.into(), why);
        }
        sandbox.info = info;
        Ok(Arc::new(sandbox))
    }

    /// The mode asked for.
    pub fn mode(&self) -> SandboxMode {
        self.mode
    }

    /// What is in force and what is not, as `/system/info` shows it.
    pub fn info(&self) -> SandboxInfo {
        self.info.clone()
    }

    /// Whether `feature` (one of [`feature`]) is in force.
    pub fn has(&self, feature: &str) -> bool {
        self.info.features.contains_key(feature)
    }

    /// Removes the parent cgroup (killing anything still in it) and the
    /// crash records. Call it once every watchdog has shut down.
    ///
    /// A v2 leaf this process moved itself into cannot be removed while it
    /// runs: it stays recorded, for the next sandbox to remove.
    pub fn close(&self) {
        // The nurseries' threads leave their spares before the parent goes.
        for nursery in self.nurseries.iter().filter_map(|n| n.get()).flatten() {
            nursery.close();
        }
        let parent = self.cgroups.lock().unwrap_or_else(|e| e.into_inner()).take();
        let leaf = parent.as_ref().and_then(|p| p.leaf.clone());
        drop(parent);
        if let Some(dir) = &self.record_dir {
            record::clear(dir);
            if let Some(leaf) = leaf {
                if let Err(e) = record::save_cgroups(dir, &[leaf]) {
                    tracing::warn!(error = %e, "cannot record the sandbox's cgroup v2 leaf");
                }
            }
        }
    }

    /// The nursery for instances with (`cpu`) or without a cpu cgroup,
    /// started on first use; `None` where there is none to have: without
    /// cgroup v1 (on v2 a thread cannot leave its process's cgroup), or
    /// without the cgroups such an instance has.
    fn nursery(self: &Arc<Self>, cpu: bool) -> Option<&nursery::Nursery> {
        if self.cgroup_version != Some(cgroup::Version::V1) || (cpu && !self.cpu_cgroup) || !self.memory_cgroup {
            return None;
        }
        self.nurseries[usize::from(cpu)]
            .get_or_init(|| {
                let sandbox = Arc::downgrade(self);
                let make = move || {
                    let sandbox = sandbox.upgrade().ok_or("the sandbox is gone")?;
                    let name = sandbox.instance_name("spare");
                    let parent = sandbox.cgroups.lock().map_err(|_| "cgroup state poisoned".to_string())?;
                    let spare = parent.as_ref().ok_or("the sandbox is closed")?.spare(&name, cpu);
                    spare
                };
                nursery::Nursery::start(Box::new(make))
                    .map_err(|e| tracing::warn!(error = %e, "cold starts will join their cgroups"))
                    .ok()
            })
            .as_ref()
    }

    fn instance_name(&self, label: &str) -> String {
        let n = self.next_instance.fetch_add(1, Ordering::Relaxed);
        let clean: String =
            label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
        format!("{clean}-{n}")
    }
}

/// What one function asks of the sandbox.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Isolation {
    /// `name.namespace`, in messages (`function f.openfaas-fn exceeded its
    /// memory limit of 20Mi`).
    pub label: String,
    /// The file system the function sees.
    pub view: View,
    /// The memory limit in bytes, and as the user wrote it.
    pub memory: Option<(u64, String)>,
    /// The CPU limit in cores.
    pub cpu: Option<f64>,
}
