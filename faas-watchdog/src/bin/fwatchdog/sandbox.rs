//! `fwatchdog`'s sandbox settings, from the environment: `sandbox`
//! (`off` by default, `auto`, `required`), `memory_limit` (`20Mi`),
//! `cpu_limit` (`0.5`), `read_only_root` (`true`/`false`) and
//! `secrets_path` (a directory bound read-only at
//! `/var/openfaas/secrets`).

use std::path::PathBuf;
use std::sync::Arc;

use faas_watchdog::sandbox::View;
use faas_watchdog::{Isolation, Sandbox, SandboxMode, SandboxSettings};

/// The sandbox (none when `sandbox` is off) and the function's isolation.
pub(crate) fn from_env() -> Result<(Option<Arc<Sandbox>>, Isolation), String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mode: SandboxMode = match var("sandbox") {
        Some(v) => v.parse().map_err(|e| format!("sandbox: {e}"))?,
        None => SandboxMode::Off,
    };
    let memory = match var("memory_limit") {
        Some(text) => {
            let bytes = faas_core::validate::quantity_value("memory_limit", &text).map_err(|e| e.to_string())?;
            Some((bytes as u64, text))
        }
        None => None,
    };
    let cpu = match var("cpu_limit") {
        Some(text) => Some(faas_core::validate::quantity_value("cpu_limit", &text).map_err(|e| e.to_string())?),
        None => None,
    };
    let read_only_root = match var("read_only_root") {
        Some(v) => faas_core::validate::boolean("read_only_root", &v).map_err(|e| e.to_string())?,
        None => false,
    };
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
