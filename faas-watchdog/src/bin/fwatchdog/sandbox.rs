//! `fwatchdog`'s sandbox settings, from the environment: `sandbox`
//! (`off` by default, `auto`, `required`), `memory_limit` (`20Mi`, at
//! least `4Mi`), `cpu_limit` (`0.5`, above 0 and at most the machine's
//! cores), `read_only_root` (`true`/`false`) and
//! `secrets_path` (a directory bound read-only at
//! `/var/openfaas/secrets`).

use std::path::PathBuf;
use std::sync::Arc;

use faas_core::validate;
use faas_watchdog::sandbox::{bounds, View};
use faas_watchdog::{Isolation, Sandbox, SandboxMode, SandboxSettings};

/// The sandbox (none when `sandbox` is off) and the function's isolation.
pub(crate) fn from_env() -> Result<(Option<Arc<Sandbox>>, Isolation), String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mode: SandboxMode = match var("sandbox") {
        Some(v) => v.parse().map_err(|e| format!("sandbox: {e}"))?,
        None => SandboxMode::Off,
    };
    let memory = var("memory_limit").map(|text| bounds::memory_limit("memory_limit", &text)).transpose();
    let cpu = var("cpu_limit").map(|text| bounds::cpu_limit("cpu_limit", &text)).transpose();
    let read_only_root = var("read_only_root").map(|text| validate::boolean("read_only_root", &text)).transpose();
    let (memory, cpu, read_only_root) = (
        memory.map_err(|e| e.to_string())?,
        cpu.map_err(|e| e.to_string())?,
        read_only_root.map_err(|e| e.to_string())?.unwrap_or(false),
    );
    let isolation = Isolation {
        label: "fwatchdog".into(),
        view: View { secrets: var("secrets_path").map(PathBuf::from), read_only_root, ..View::default() },
        memory,
        cpu,
    };
    if mode == SandboxMode::Off {
        return Ok((None, isolation));
    }
    let settings = SandboxSettings { mode, cgroup_name: format!("fwatchdog-{}", std::process::id()), record_dir: None };
    let sandbox = Sandbox::open(settings).map_err(|e| e.to_string())?;
    tracing::info!(sandbox = ?sandbox.info(), "sandbox");
    Ok((Some(sandbox), isolation))
}
