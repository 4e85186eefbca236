//! The provider's settings.

use std::path::PathBuf;
use std::time::Duration;

use faas_watchdog::SandboxMode;

/// The default capacity of each function's log ring, in lines.
pub const DEFAULT_LOG_LINES: usize = 10_000;

/// How a [`crate::LocalProvider`] is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// Where deployments, secrets, namespaces and working dirs live. The
    /// caller chooses it (the gateway uses its data dir); it is created if
    /// missing, with mode 0700.
    pub state_dir: PathBuf,
    /// How many lines of each function's output are kept for `logs`.
    pub log_lines: usize,
    /// The `exec_timeout` of functions whose `envVars` set none; `None`
    /// means calls are not bounded.
    pub default_exec_timeout: Option<Duration>,
    /// The sandbox of function processes (see `faas_watchdog::sandbox`):
    /// `Auto` (the default) uses what this machine allows, `Required`
    /// refuses to open without every feature, `Off` runs processes bare.
    pub sandbox: SandboxMode,
}

impl LocalConfig {
    /// Settings using `state_dir`, keeping [`DEFAULT_LOG_LINES`] lines per
    /// function, with no default `exec_timeout`, the sandbox on `Auto`.
    pub fn new(state_dir: impl Into<PathBuf>) -> LocalConfig {
        LocalConfig {
            state_dir: state_dir.into(),
            log_lines: DEFAULT_LOG_LINES,
            default_exec_timeout: None,
            sandbox: SandboxMode::Auto,
        }
    }
}
