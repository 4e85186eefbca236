//! The state dir's layout and its records.
//!
//! ```text
//! <state>/lock                          flock + pid of the gateway using the dir
//! <state>/functions/<ns>/<name>.json    one FunctionRecord per function
//! <state>/namespaces/<name>.json        one FunctionNamespace per namespace
//! <state>/secrets/<ns>/<name>           secret values (0600, dirs 0700)
//! <state>/run/<ns>/<name>/              a function's working dir
//! <state>/run/<ns>/<name>/secrets/<s>   copies of the function's secrets ($SECRETS_DIR)
//! ```
//!
//! Every write is atomic ([`write_atomic`]); unreadable or corrupt records
//! are reported with `tracing` and skipped when loading.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use faas_core::{FunctionDeployment, FunctionNamespace, FunctionRef};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{io_err, LocalError};
use crate::files::{is_temporary, private_dir, remove_dir_all, remove_file, write_atomic};
use crate::secrets::{file_names, SecretStore};

/// What is saved of a function: its deployment and what the provider
/// decided about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionRecord {
    /// The deployment, with its namespace filled in.
    pub(crate) deployment: FunctionDeployment,
    /// Desired replicas.
    pub(crate) replicas: u64,
    /// When it was first deployed.
    pub(crate) created_at: DateTime<Utc>,
}

impl FunctionRecord {
    /// The function's name and namespace.
    pub(crate) fn function_ref(&self) -> FunctionRef {
        self.deployment.function_ref()
    }
}

/// The state dir.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    root: PathBuf,
}

impl Store {
    /// Uses `root` as the state dir, creating its directories (0700).
    pub(crate) fn open(root: &Path) -> Result<Store, LocalError> {
        let store = Store { root: root.to_path_buf() };
        private_dir(root)?;
        for sub in ["functions", "namespaces", "run"] {
            private_dir(&root.join(sub))?;
        }
        store.secrets().create_dir()?;
        Ok(store)
    }

    /// The secrets' store.
    pub(crate) fn secrets(&self) -> SecretStore {
        SecretStore::new(self.root.join("secrets"))
    }

    fn function_path(&self, function: &FunctionRef) -> PathBuf {
        self.root.join("functions").join(&function.namespace).join(format!("{}.json", function.name))
    }

    fn namespace_path(&self, name: &str) -> PathBuf {
        self.root.join("namespaces").join(format!("{name}.json"))
    }

    /// Saves a function's record.
    pub(crate) fn save_function(&self, record: &FunctionRecord) -> Result<(), LocalError> {
        write_atomic(&self.function_path(&record.function_ref()), &to_json(record))
    }

    /// Forgets a function's record.
    pub(crate) fn remove_function(&self, function: &FunctionRef) -> Result<(), LocalError> {
        remove_file(&self.function_path(function))
    }

    /// Every readable, valid function record. Others are logged and skipped.
    pub(crate) fn load_functions(&self) -> Vec<FunctionRecord> {
        let dir = self.root.join("functions");
        let namespaces = match subdirs(&dir) {
            Ok(namespaces) => namespaces,
            Err(err) => {
                tracing::error!(error = %error_chain(&err), "cannot list saved functions; none restored");
                return Vec::new();
            }
        };
        let mut records = Vec::new();
        for namespace in namespaces {
            let ns_dir = dir.join(&namespace);
            for path in json_files(&ns_dir) {
                let Some(record) = load::<FunctionRecord>(&path, "function record") else { continue };
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                let fref = record.function_ref();
                if let Err(err) = record.deployment.validate() {
                    tracing::error!(path = %path.display(), error = %err, "skipping an invalid saved function");
                } else if fref.name != stem || fref.namespace != namespace {
                    tracing::error!(path = %path.display(), function = %fref, "skipping a saved function whose file name does not match its name");
                } else {
                    records.push(record);
                }
            }
        }
        records
    }

    /// Saves a namespace.
    pub(crate) fn save_namespace(&self, namespace: &FunctionNamespace) -> Result<(), LocalError> {
        write_atomic(&self.namespace_path(&namespace.name), &to_json(namespace))
    }

    /// Forgets a namespace.
    pub(crate) fn remove_namespace(&self, name: &str) -> Result<(), LocalError> {
        remove_file(&self.namespace_path(name))?;
        remove_dir_if_empty(&self.root.join("functions").join(name));
        remove_dir_if_empty(&self.root.join("run").join(name));
        self.secrets().remove_namespace(name)
    }

    /// Every readable, valid namespace. Others are logged and skipped.
    pub(crate) fn load_namespaces(&self) -> Vec<FunctionNamespace> {
        let mut namespaces = Vec::new();
        for path in json_files(&self.root.join("namespaces")) {
            let Some(namespace) = load::<FunctionNamespace>(&path, "namespace") else { continue };
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            if faas_core::validate::namespace("name", &namespace.name).is_err() || namespace.name != stem {
                tracing::error!(path = %path.display(), "skipping a saved namespace with an invalid or mismatched name");
            } else {
                namespaces.push(namespace);
            }
        }
        namespaces
    }

    /// A function's working dir.
    pub(crate) fn run_dir(&self, function: &FunctionRef) -> PathBuf {
        self.root.join("run").join(&function.namespace).join(&function.name)
    }

    /// The dir holding a function's copies of its secrets (`$SECRETS_DIR`).
    pub(crate) fn secrets_dir(&self, function: &FunctionRef) -> PathBuf {
        self.run_dir(function).join("secrets")
    }

    /// Creates the function's working dir and fills its secrets dir with
    /// exactly `secrets` (name, value), removing copies no longer wanted.
    pub(crate) fn prepare_run_dir(
        &self,
        function: &FunctionRef,
        secrets: &[(String, Vec<u8>)],
    ) -> Result<(), LocalError> {
        private_dir(&self.run_dir(function))?;
        let dir = self.secrets_dir(function);
        private_dir(&dir)?;
        for stale in file_names(&dir)? {
            if !secrets.iter().any(|(name, _)| *name == stale) {
                remove_file(&dir.join(stale))?;
            }
        }
        for (name, value) in secrets {
            write_atomic(&dir.join(name), value)?;
        }
        Ok(())
    }

    /// Replaces or removes (`None`) one secret's copy in a function's
    /// secrets dir.
    pub(crate) fn refresh_secret_copy(
        &self,
        function: &FunctionRef,
        name: &str,
        value: Option<&[u8]>,
    ) -> Result<(), LocalError> {
        let path = self.secrets_dir(function).join(name);
        match value {
            Some(value) => write_atomic(&path, value),
            None => remove_file(&path),
        }
    }

    /// Removes a function's working dir and secret copies.
    pub(crate) fn remove_run_dir(&self, function: &FunctionRef) -> Result<(), LocalError> {
        remove_dir_all(&self.run_dir(function))
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Reads and parses one record; logs and returns `None` if it cannot.
fn load<T: DeserializeOwned>(path: &Path, what: &'static str) -> Option<T> {
    let result = fs::read(path).map_err(io_err("read", path)).and_then(|bytes| {
        serde_json::from_slice(&bytes).map_err(|source| LocalError::Corrupt { what, path: path.to_path_buf(), source })
    });
    match result {
        Ok(value) => Some(value),
        Err(err) => {
            tracing::error!(path = %path.display(), error = %error_chain(&err), "skipping an unreadable saved {what}");
            None
        }
    }
}

/// The `.json` files in `dir`, sorted; a dir that cannot be listed is
/// logged and has none.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    match file_names(dir) {
        Ok(mut names) => {
            names.retain(|n| n.ends_with(".json") && !is_temporary(n));
            names.sort();
            names.into_iter().map(|n| dir.join(n)).collect()
        }
        Err(err) => {
            tracing::error!(error = %error_chain(&err), "skipping saved state that cannot be listed");
            Vec::new()
        }
    }
}

/// The names of the subdirectories of `dir`, sorted.
fn subdirs(dir: &Path) -> Result<Vec<String>, LocalError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

fn remove_dir_if_empty(dir: &Path) {
    if let Err(e) = fs::remove_dir(dir) {
        if e.kind() != ErrorKind::NotFound {
            tracing::debug!(dir = %dir.display(), error = %e, "leaving a namespace directory that is not empty");
        }
    }
}

pub(crate) use faas_core::error_chain;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn record(name: &str, namespace: &str) -> FunctionRecord {
        FunctionRecord {
            deployment: FunctionDeployment {
                service: name.into(),
                namespace: namespace.into(),
                image: "img".into(),
                env_process: "cat".into(),
                env_vars: BTreeMap::from([("mode".into(), "streaming".into())]),
                ..FunctionDeployment::default()
            },
            replicas: 3,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn records_round_trip_and_corrupt_ones_are_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let a = record("a", "openfaas-fn");
        let b = record("b", "team");
        store.save_function(&a).unwrap();
        store.save_function(&b).unwrap();
        fs::write(tmp.path().join("functions/openfaas-fn/broken.json"), b"{ not json").unwrap();
        fs::write(tmp.path().join("functions/team/wrong-name.json"), to_json(&record("c", "team"))).unwrap();
        fs::write(tmp.path().join("functions/team/.b.json.tmp-1-1"), b"partial").unwrap();
        let mut loaded = store.load_functions();
        loaded.sort_by(|x, y| x.deployment.service.cmp(&y.deployment.service));
        assert_eq!(loaded, vec![a.clone(), b]);
        store.remove_function(&a.function_ref()).unwrap();
        assert_eq!(store.load_functions().len(), 1);
    }

    #[test]
    fn namespaces_round_trip_and_corrupt_ones_are_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let ns = FunctionNamespace {
            name: "team".into(),
            labels: BTreeMap::from([("a".into(), "b".into())]),
            ..Default::default()
        };
        store.save_namespace(&ns).unwrap();
        fs::write(tmp.path().join("namespaces/bad.json"), b"[]").unwrap();
        assert_eq!(store.load_namespaces(), vec![ns]);
        store.remove_namespace("team").unwrap();
        assert!(store.load_namespaces().is_empty());
    }

    #[test]
    fn run_dirs_hold_exactly_the_wanted_secrets_privately() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let f = FunctionRef::new("f", "openfaas-fn");
        store.prepare_run_dir(&f, &[("one".into(), b"1".to_vec()), ("two".into(), b"2".to_vec())]).unwrap();
        store.prepare_run_dir(&f, &[("two".into(), b"22".to_vec())]).unwrap();
        let dir = store.secrets_dir(&f);
        assert_eq!(file_names(&dir).unwrap(), ["two"]);
        assert_eq!(fs::read(dir.join("two")).unwrap(), b"22");
        assert_eq!(fs::metadata(dir.join("two")).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        store.refresh_secret_copy(&f, "two", Some(b"3")).unwrap();
        assert_eq!(fs::read(dir.join("two")).unwrap(), b"3");
        store.refresh_secret_copy(&f, "two", None).unwrap();
        assert!(file_names(&dir).unwrap().is_empty());
        store.remove_run_dir(&f).unwrap();
        assert!(!store.run_dir(&f).exists());
    }
}
