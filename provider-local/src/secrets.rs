//! Secrets on disk: `secrets/<namespace>/<name>`, one file per secret
//! holding its bytes, readable only by the gateway's user.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::{io_err, LocalError};
use crate::files::{is_temporary, private_dir, remove_file, write_atomic};

/// The secrets of every namespace, under one directory.
#[derive(Debug, Clone)]
pub(crate) struct SecretStore {
    dir: PathBuf,
}

impl SecretStore {
    /// A store rooted at `dir` (created on first write).
    pub(crate) fn new(dir: PathBuf) -> SecretStore {
        SecretStore { dir }
    }

    fn path(&self, namespace: &str, name: &str) -> PathBuf {
        self.dir.join(namespace).join(name)
    }

    /// Whether the secret exists.
    pub(crate) fn exists(&self, namespace: &str, name: &str) -> bool {
        self.path(namespace, name).is_file()
    }

    /// Writes (creates or replaces) a secret's value, atomically, mode 0600.
    pub(crate) fn write(&self, namespace: &str, name: &str, value: &[u8]) -> Result<(), LocalError> {
        write_atomic(&self.path(namespace, name), value)
    }

    /// A secret's value, `None` if it does not exist.
    pub(crate) fn read(&self, namespace: &str, name: &str) -> Result<Option<Vec<u8>>, LocalError> {
        let path = self.path(namespace, name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", path)(e)),
        }
    }

    /// Removes a secret; one that does not exist is not an error.
    pub(crate) fn remove(&self, namespace: &str, name: &str) -> Result<(), LocalError> {
        remove_file(&self.path(namespace, name))
    }

    /// The names of the secrets in `namespace`, sorted.
    pub(crate) fn names(&self, namespace: &str) -> Result<Vec<String>, LocalError> {
        let dir = self.dir.join(namespace);
        let mut names = file_names(&dir)?;
        names.retain(|n| !is_temporary(n) && faas_core::validate::secret_name("name", n).is_ok());
        names.sort();
        Ok(names)
    }

    /// Removes `namespace`'s (empty) secrets directory.
    pub(crate) fn remove_namespace(&self, namespace: &str) -> Result<(), LocalError> {
        let dir = self.dir.join(namespace);
        match fs::remove_dir(&dir) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(io_err("remove", dir)(e)),
            _ => Ok(()),
        }
    }

    /// Creates the store's directory, private to the user.
    pub(crate) fn create_dir(&self) -> Result<(), LocalError> {
        private_dir(&self.dir)
    }
}

/// The names of the regular files in `dir`; a missing dir has none.
pub(crate) fn file_names(dir: &Path) -> Result<Vec<String>, LocalError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if let (true, Some(name)) = (is_file, entry.file_name().to_str()) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn secrets_round_trip_privately() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SecretStore::new(tmp.path().join("secrets"));
        assert!(!store.exists("ns", "db.password"));
        assert_eq!(store.read("ns", "db.password").unwrap(), None);
        assert!(store.names("ns").unwrap().is_empty());
        store.write("ns", "db.password", b"s3cret").unwrap();
        store.write("ns", "api-key", b"k").unwrap();
        store.write("other", "x", b"y").unwrap();
        assert!(store.exists("ns", "db.password"));
        assert_eq!(store.read("ns", "db.password").unwrap().as_deref(), Some(&b"s3cret"[..]));
        assert_eq!(store.names("ns").unwrap(), ["api-key", "db.password"]);
        let path = tmp.path().join("secrets/ns/db.password");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        store.write("ns", "db.password", b"new").unwrap();
        assert_eq!(store.read("ns", "db.password").unwrap().as_deref(), Some(&b"new"[..]));
        store.remove("ns", "db.password").unwrap();
        store.remove("ns", "db.password").unwrap();
        assert_eq!(store.names("ns").unwrap(), ["api-key"]);
    }
}
