//! What a sandbox records so that the next one can reap what it left
//! after a crash: the cgroups it owns (`cgroups`, one directory a line),
//! and, where there are no cgroups, the process groups it started
//! (`groups`, a journal of `+<pgid> <start time>` and `-<pgid>` lines).
//! A process group is only killed if its leader still has the recorded
//! start time, so a reused pid is never killed.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::cgroup;

/// Compact the journal when it has this many lines more than live groups.
const COMPACT_AFTER: usize = 10_000;

/// The start time of process `pid` (clock ticks since boot, field 22 of
/// `/proc/<pid>/stat`), `None` if there is no such process.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Kills what a previous sandbox recorded in `dir` (every process in its
/// cgroups, every process group whose leader has the recorded start time),
/// removes its cgroups and clears the records. Returns what was reaped, in
/// words, for the log.
pub fn reap(dir: &Path) -> Vec<String> {
    let mut reaped = Vec::new();
    let cgroups = dir.join("cgroups");
    for line in fs::read_to_string(&cgroups).unwrap_or_default().lines().filter(|l| !l.trim().is_empty()) {
        let path = PathBuf::from(line.trim());
        if path.is_dir() {
            cgroup::remove_tree(&path);
            reaped.push(format!("cgroup {}", path.display()));
        }
    }
    let groups = dir.join("groups");
    for (pgid, start) in live_groups(&fs::read_to_string(&groups).unwrap_or_default()) {
        if start_time(pgid) == Some(start) && killpg(Pid::from_raw(pgid), Signal::SIGKILL).is_ok() {
            reaped.push(format!("process group {pgid}"));
        }
    }
    let _ = fs::remove_file(cgroups);
    let _ = fs::remove_file(groups);
    reaped
}

/// The groups a journal leaves alive.
fn live_groups(journal: &str) -> HashMap<i32, u64> {
    let mut live = HashMap::new();
    for line in journal.lines() {
        if let Some(rest) = line.strip_prefix('+') {
            let mut parts = rest.split_whitespace();
            if let (Some(Ok(pgid)), Some(Ok(start))) = (parts.next().map(str::parse), parts.next().map(str::parse)) {
                live.insert(pgid, start);
            }
        } else if let Some(Ok(pgid)) = line.strip_prefix('-').map(|p| p.trim().parse::<i32>()) {
            live.remove(&pgid);
        }
    }
    live
}

/// Writes the cgroup record.
pub(crate) fn save_cgroups(dir: &Path, cgroups: &[PathBuf]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let text: String = cgroups.iter().map(|p| format!("{}\n", p.display())).collect();
    fs::write(dir.join("cgroups"), text)
}

/// Removes every record (a clean shutdown leaves nothing to reap).
pub(crate) fn clear(dir: &Path) {
    for name in ["cgroups", "groups"] {
        if let Err(e) = fs::remove_file(dir.join(name)) {
            if e.kind() != ErrorKind::NotFound {
                tracing::warn!(error = %e, "cannot remove a sandbox record");
            }
        }
    }
}

/// The process-group journal.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    state: Mutex<JournalState>,
}

#[derive(Debug)]
struct JournalState {
    file: File,
    live: HashMap<i32, u64>,
    lines: usize,
}

impl Journal {
    /// Starts an empty journal in `dir`.
    pub(crate) fn create(dir: &Path) -> std::io::Result<Journal> {
        fs::create_dir_all(dir)?;
        let path = dir.join("groups");
        let file = OpenOptions::new().create(true).write(true).truncate(true).open(&path)?;
        Ok(Journal { path, state: Mutex::new(JournalState { file, live: HashMap::new(), lines: 0 }) })
    }

    /// Records a process group that started.
    pub(crate) fn started(&self, pgid: i32) {
        let Some(start) = start_time(pgid) else { return };
        let Ok(mut state) = self.state.lock() else { return };
        state.live.insert(pgid, start);
        let line = format!("+{pgid} {start}\n");
        self.append(&mut state, &line);
    }

    /// Records a process group that ended.
    pub(crate) fn ended(&self, pgid: i32) {
        let Ok(mut state) = self.state.lock() else { return };
        if state.live.remove(&pgid).is_some() {
            let line = format!("-{pgid}\n");
            self.append(&mut state, &line);
        }
    }

    fn append(&self, state: &mut JournalState, line: &str) {
        if let Err(e) = state.file.write_all(line.as_bytes()) {
            tracing::warn!(error = %e, "cannot record a process group");
        }
        state.lines += 1;
        if state.lines > state.live.len() + COMPACT_AFTER {
            let text: String = state.live.iter().map(|(pgid, start)| format!("+{pgid} {start}\n")).collect();
            let temporary = self.path.with_extension("new");
            let rewritten = fs::write(&temporary, &text).and_then(|()| fs::rename(&temporary, &self.path));
            match rewritten.and_then(|()| OpenOptions::new().append(true).open(&self.path)) {
                Ok(file) => {
                    state.file = file;
                    state.lines = state.live.len();
                }
                Err(e) => tracing::warn!(error = %e, "cannot compact the process-group record"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_leaves_only_groups_that_did_not_end() {
        let live = live_groups("+10 100\n+11 110\n-10\n+12 120\ngarbage\n-99\n");
        assert_eq!(live, HashMap::from([(11, 110), (12, 120)]));
    }

    #[test]
    fn start_times_are_read_for_live_processes_only() {
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(start_time(me).is_some());
        assert_eq!(start_time(i32::MAX), None);
    }

    #[test]
    fn a_reused_pid_is_never_killed() {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let mut victim = std::process::Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
        let pid = i32::try_from(victim.id()).unwrap();
        let start = start_time(pid).unwrap();
        // A record of the same pid with another start time: a different
        // process that had this pid before.
        fs::write(dir.path().join("groups"), format!("+{pid} {}\n", start + 1)).unwrap();
        assert!(reap(dir.path()).is_empty());
        assert!(victim.try_wait().unwrap().is_none(), "the unrelated process must live");
        // The right start time: it is reaped.
        fs::write(dir.path().join("groups"), format!("+{pid} {start}\n")).unwrap();
        assert_eq!(reap(dir.path()), vec![format!("process group {pid}")]);
        let status = victim.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
        assert!(!dir.path().join("groups").exists());
    }
}
