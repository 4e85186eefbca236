//! File helpers for the state dir: private directories and crash-safe writes.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{io_err, LocalError};

/// Mode of every directory the provider creates: owner only.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of every file the provider writes: owner read/write only.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents with mode 0700, and tightens `dir`
/// itself to 0700 if it existed with a looser mode.
pub(crate) fn private_dir(dir: &Path) -> Result<(), LocalError> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(io_err("create directory", dir))?;
    let mode = fs::metadata(dir).map_err(io_err("inspect", dir))?.permissions().mode() & 0o777;
    if mode != DIR_MODE {
        fs::set_permissions(dir, Permissions::from_mode(DIR_MODE)).map_err(io_err("set permissions of", dir))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` so that a crash at any point leaves either the
/// old file or the new one, never a mix: a temporary file in the same
/// directory (mode 0600) is written and fsynced, renamed over `path`, and
/// the directory is fsynced so the rename itself is durable.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LocalError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    private_dir(dir)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{file_name}.tmp-{}-{n}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        file.write_all(bytes).map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("sync", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename into place", path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Fsyncs a directory, making renames and removals in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LocalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("sync directory", dir))
}

/// Removes a file; a file that is already gone is not an error.
pub(crate) fn remove_file(path: &Path) -> Result<(), LocalError> {
    match fs::remove_file(path) {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

/// Removes a directory tree; one that is already gone is not an error.
pub(crate) fn remove_dir_all(path: &Path) -> Result<(), LocalError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

/// Whether a directory entry is a leftover temporary file of
/// [`write_atomic`] (skipped when loading).
pub(crate) fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temporaries() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a/b/record.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("record.json")]);
    }

    #[test]
    fn private_dir_tightens_an_existing_open_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("open");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn removing_missing_things_is_fine() {
        let tmp = tempfile::tempdir().unwrap();
        remove_file(&tmp.path().join("nope")).unwrap();
        remove_dir_all(&tmp.path().join("nope")).unwrap();
        assert!(is_temporary(".x.json.tmp-1-2"));
        assert!(!is_temporary("x.json"));
    }
}
