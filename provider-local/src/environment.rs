//! The environment of a function's processes.

use std::collections::BTreeMap;
use std::path::Path;

/// The only variables taken from the gateway's own environment: anything
/// else there (tokens, cloud credentials) must not leak into functions.
pub(crate) const INHERITED: [&str; 6] = ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER"];

/// The variable naming the directory that holds the function's secrets.
pub(crate) const SECRETS_DIR: &str = "SECRETS_DIR";

/// The inherited part, read through `lookup` (`std::env::var` in the
/// provider).
pub(crate) fn base_env(lookup: impl Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    INHERITED.iter().filter_map(|name| lookup(name).map(|value| ((*name).to_owned(), value))).collect()
}

/// A function's complete environment: `base`, then the deployment's
/// `env_vars` (which may override it), then `SECRETS_DIR`.
pub(crate) fn process_env(
    base: &BTreeMap<String, String>,
    env_vars: &BTreeMap<String, String>,
    secrets_dir: &Path,
) -> BTreeMap<String, String> {
    let mut env = base.clone();
    env.extend(env_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.insert(SECRETS_DIR.to_owned(), secrets_dir.to_string_lossy().into_owned());
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_minimal_base_is_inherited() {
        let gateway = BTreeMap::from([
            ("PATH", "/bin"),
            ("HOME", "/home/g"),
            ("AWS_SECRET_ACCESS_KEY", "nope"),
            ("GATEWAY_TOKEN", "nope"),
        ]);
        let base = base_env(|name| gateway.get(name).map(|v| v.to_string()));
        assert_eq!(
            base,
            BTreeMap::from([("HOME".to_owned(), "/home/g".to_owned()), ("PATH".to_owned(), "/bin".to_owned())])
        );
        let vars = BTreeMap::from([("PATH".to_owned(), "/opt/bin".to_owned()), ("mode".to_owned(), "http".to_owned())]);
        let env = process_env(&base, &vars, Path::new("/state/run/ns/f/secrets"));
        assert_eq!(env["PATH"], "/opt/bin");
        assert_eq!(env["mode"], "http");
        assert_eq!(env["SECRETS_DIR"], "/state/run/ns/f/secrets");
        assert_eq!(env.len(), 4);
    }
}
