//! The state dir's lock: one gateway per state dir.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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
    /// Takes the lock without waiting; if another process (or another
    /// provider in this one) holds it, fails with [`LocalError::Locked`]
    /// naming the holder's pid.
    pub(crate) fn acquire(state_dir: &Path) -> Result<StateLock, LocalError> {
        let path = state_dir.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(io_err("open", &path))?;
        let mut flock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(flock) => flock,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut text = String::new();
                let holder = match file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse::<u32>().ok()) {
                    Some(pid) => format!("pid {pid}"),
                    None => "unknown pid".to_owned(),
                };
                return Err(LocalError::Locked { dir: state_dir.to_path_buf(), holder });
            }
            Err((_, errno)) => return Err(LocalError::LockFailed { dir: state_dir.to_path_buf(), source: errno }),
        };
        write_pid(&mut flock, &path)?;
        Ok(StateLock { _flock: flock })
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
        let first = StateLock::acquire(tmp.path()).unwrap();
        let err = StateLock::acquire(tmp.path()).unwrap_err();
        let expected = format!(
            "state directory {} is in use by another gateway (pid {})",
            tmp.path().display(),
            std::process::id()
        );
        assert_eq!(err.to_string(), expected);
        drop(first);
        StateLock::acquire(tmp.path()).unwrap();
    }
}
