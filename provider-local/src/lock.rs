//! The state dir's lock: one gateway per state dir.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{io_err, LocalError};
use crate::files::FILE_MODE;

/// An exclusive `flock` on `<state>/lock`, holding this process's pid.
/// Released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct StateLock {
    _flock: Flock<File>,
}

impl StateLock {
    /// Takes the lock, waiting up to `patience` for a holder to let go; if
    /// another process (or another provider in this one) still holds it,
    /// fails with [`LocalError::Locked`] naming the holder's pid.
    ///
    /// Why wait at all: a gateway killed with `kill -9` releases the lock
    /// only once every copy of its descriptor is closed, and a function
    /// process it was starting holds a copy until its `exec` (which can
    /// wait on a loaded machine's cgroup migration). A restart right
    /// after the kill would otherwise be refused.
    pub(crate) fn acquire(state_dir: &Path, patience: Duration) -> Result<StateLock, LocalError> {
        let path = state_dir.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(io_err("open", &path))?;
        let give_up = Instant::now() + patience;
        let mut file = file;
        let mut flock = loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(flock) => break flock,
                Err((held, Errno::EWOULDBLOCK)) if Instant::now() < give_up => {
                    file = held;
                    std::thread::sleep(LOCK_POLL);
                }
                Err(failed) => return Err(refused(state_dir, failed)),
            }
        };
        write_pid(&mut flock, &path)?;
        Ok(StateLock { _flock: flock })
    }
}

/// How long a starting gateway waits for the state dir's lock.
pub(crate) const PATIENCE: Duration = Duration::from_secs(5);

/// How often a held lock is tried again.
const LOCK_POLL: Duration = Duration::from_millis(20);

/// The error for a lock not taken: held (naming the holder), or failed.
fn refused(state_dir: &Path, failed: (File, Errno)) -> LocalError {
    match failed {
        (mut file, Errno::EWOULDBLOCK) => {
            let mut text = String::new();
            let holder = match file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse::<u32>().ok()) {
                Some(pid) => format!("pid {pid}"),
                None => "unknown pid".to_owned(),
            };
            LocalError::Locked { dir: state_dir.to_path_buf(), holder }
        }
        (_, errno) => LocalError::LockFailed { dir: state_dir.to_path_buf(), source: errno },
    }
}

fn write_pid(file: &mut File, path: &PathBuf) -> Result<(), LocalError> {
    file.set_len(0).map_err(io_err("truncate", path))?;
    file.seek(SeekFrom::Start(0)).map_err(io_err("seek", path))?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes()).map_err(io_err("write", path))?;
    file.sync_all().map_err(io_err("sync", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_pid_until_the_first_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(tmp.path(), Duration::ZERO).unwrap();
        let err = StateLock::acquire(tmp.path(), Duration::from_millis(50)).unwrap_err();
        let expected = format!(
            "state directory {} is in use by another gateway (pid {})",
            tmp.path().display(),
            std::process::id()
        );
        assert_eq!(err.to_string(), expected);
        drop(first);
        StateLock::acquire(tmp.path(), Duration::ZERO).unwrap();
    }

    #[test]
    fn a_lock_let_go_while_waiting_is_taken() {
        let tmp = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(tmp.path(), Duration::ZERO).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(first);
        });
        StateLock::acquire(tmp.path(), Duration::from_secs(30)).expect("taken once the holder lets go");
        release.join().unwrap();
    }
}
