//! Finding the `fwatchdog` binary (faas-watchdog's `src/bin/fwatchdog`) for
//! test servers that run functions as real watchdog processes, as a
//! container would (`k8s-test-server`'s pods, `cattle-test-server`'s
//! instances).
//!
//! ```no_run
//! # async fn run() -> Result<(), String> {
//! let fwatchdog = faas_test_support::fwatchdog::resolve(None).await?;
//! let status = std::process::Command::new(&fwatchdog).env("fprocess", "cat").status();
//! # let _ = status;
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tokio::sync::OnceCell;

/// The variable naming the binary to use.
pub const ENV: &str = "FAAS_FWATCHDOG";

/// The binary cargo built for this process, built at most once.
static BUILT: OnceCell<Result<PathBuf, String>> = OnceCell::const_new();

/// The fwatchdog binary to run:
///
/// 1. `configured`, when given;
/// 2. else env `FAAS_FWATCHDOG`;
/// 3. else the `fwatchdog` cargo built beside the running executable
///    (`target/<profile>/`, for a test binary in `target/<profile>/deps/`)
///    when its dep-info (`fwatchdog.d`) shows it was built from this
///    checkout's sources and none of them is newer than it (as `cargo test
///    --workspace` leaves it; a binary another checkout left in a shared
///    target dir, or one older than an edit, is not taken);
/// 4. else, under cargo (`cargo test` and `cargo run` set `CARGO`),
///    `$CARGO build -p faas-watchdog --bin fwatchdog` in that profile, once
///    per process, and the executable cargo reports;
/// 5. else any `fwatchdog` next to the running executable or in its
///    parent directories.
///
/// The error says what was tried; the path is not checked to exist for 1
/// and 2 (running it says so).
pub async fn resolve(configured: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(path) = configured {
        return Ok(path);
    }
    if let Some(path) = std::env::var_os(ENV) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok();
    if let Some(fresh) = exe.as_deref().and_then(fresh_sibling) {
        return Ok(fresh);
    }
    if let Ok(cargo) = std::env::var("CARGO") {
        return BUILT.get_or_init(|| build(cargo, exe.clone())).await.clone();
    }
    exe.iter()
        .flat_map(|exe| exe.ancestors().skip(1).take(3))
        .map(|dir| dir.join("fwatchdog"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| format!("no fwatchdog binary: set {ENV}, or run under cargo (cargo test) so that it is built"))
}

/// `target/<profile>` for an executable in it or in its `deps`.
fn profile_dir(exe: &Path) -> Option<&Path> {
    let dir = exe.parent()?;
    if dir.ends_with("deps") {
        dir.parent()
    } else {
        Some(dir)
    }
}

/// The `fwatchdog` beside `exe` when cargo built it from this checkout and
/// it is up to date: its dep-info lists this workspace's `fwatchdog` main
/// source and none of the sources it lists is newer than the binary.
fn fresh_sibling(exe: &Path) -> Option<PathBuf> {
    let profile = profile_dir(exe)?;
    let binary = profile.join("fwatchdog");
    let built = std::fs::metadata(&binary).and_then(|m| m.modified()).ok()?;
    let info = std::fs::read_to_string(profile.join("fwatchdog.d")).ok()?;
    let (_, sources) = info.lines().next()?.split_once(": ")?;
    let sources: Vec<&Path> = sources.split_whitespace().map(Path::new).collect();
    let main = workspace_root().join("faas-watchdog/src/bin/fwatchdog/main.rs");
    if !sources.contains(&main.as_path()) {
        return None;
    }
    let unchanged = |source: &&Path| std::fs::metadata(source).and_then(|m| m.modified()).is_ok_and(|m| m <= built);
    sources.iter().all(unchanged).then_some(binary)
}

/// This checkout's workspace root (this crate is `testing/support`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap_or(Path::new(".")).to_path_buf()
}

/// Builds fwatchdog with `cargo` in the profile `exe` runs from and returns
/// the executable cargo reports.
async fn build(cargo: String, exe: Option<PathBuf>) -> Result<PathBuf, String> {
    let release = exe.as_deref().and_then(profile_dir).is_some_and(|dir| dir.ends_with("release"));
    let mut command = tokio::process::Command::new(&cargo);
    command.args(["build", "--quiet", "--message-format=json", "-p", "faas-watchdog", "--bin", "fwatchdog"]);
    if release {
        command.arg("--release");
    }
    let output = command
        .current_dir(workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .await
        .map_err(|e| format!("running {cargo} build: {e}"))?;
    if !output.status.success() {
        return Err(format!("{cargo} build -p faas-watchdog --bin fwatchdog failed: {}", output.status));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact" && message["target"]["name"] == "fwatchdog")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("{cargo} build reported no fwatchdog executable"))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    /// A profile dir holding an `fwatchdog` built from `main` at `built`.
    fn profile(main: &Path, built: SystemTime) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("fwatchdog");
        std::fs::write(&binary, b"binary").unwrap();
        std::fs::File::options().write(true).open(&binary).unwrap().set_modified(built).unwrap();
        let info = format!("{}: {}\n", binary.display(), main.display());
        std::fs::write(dir.path().join("fwatchdog.d"), info).unwrap();
        dir
    }

    #[test]
    fn only_a_binary_built_from_this_checkout_since_its_last_edit_is_taken() {
        let main = workspace_root().join("faas-watchdog/src/bin/fwatchdog/main.rs");
        let later = SystemTime::now() + Duration::from_secs(60);

        let fresh = profile(&main, later);
        let exe = fresh.path().join("deps").join("a-test");
        assert_eq!(fresh_sibling(&exe), Some(fresh.path().join("fwatchdog")));

        let other_checkout = profile(Path::new("/elsewhere/faas-watchdog/src/bin/fwatchdog/main.rs"), later);
        assert_eq!(fresh_sibling(&other_checkout.path().join("deps").join("a-test")), None);

        let before_an_edit = profile(&main, SystemTime::UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(fresh_sibling(&before_an_edit.path().join("a-binary")), None);
    }

    #[tokio::test]
    async fn a_configured_path_wins() {
        let path = PathBuf::from("/opt/fwatchdog");
        assert_eq!(resolve(Some(path.clone())).await, Ok(path));
    }
}
