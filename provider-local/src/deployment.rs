//! Checking a deployment and turning it into the watchdog's settings.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use faas_core::{Error, FunctionDeployment};
use faas_watchdog::{resolve_program, Config};

/// The PATH used to find a function's program when its environment has none
/// (the watchdog spawns with the same default).
const FALLBACK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The watchdog settings of `deployment`: its `envVars` plus
/// `fprocess = envProcess`, with `default_exec_timeout` applied when the
/// envVars set no `exec_timeout`.
///
/// Fails with `Invalid` naming `service` (or another field of the
/// deployment), `envProcess` when it is missing, or `envVars.<var>` for a
/// bad watchdog setting.
pub(crate) fn watchdog_config(
    deployment: &FunctionDeployment,
    default_exec_timeout: Option<Duration>,
) -> Result<Config, Error> {
    deployment.validate()?;
    let static_mode = deployment.env_vars.get("mode").is_some_and(|m| m.trim() == "static");
    if deployment.env_process.trim().is_empty() && !static_mode {
        return Err(Error::invalid("envProcess", "is required: it is the command that runs the function"));
    }
    let vars = deployment
        .env_vars
        .iter()
        .filter(|(k, _)| k.as_str() != "fprocess")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([("fprocess", deployment.env_process.as_str())]);
    let mut config = Config::from_vars(vars)?;
    let sets_exec_timeout = deployment.env_vars.get("exec_timeout").is_some_and(|v| !v.trim().is_empty());
    if !sets_exec_timeout {
        config.exec_timeout = default_exec_timeout.filter(|d| !d.is_zero());
    }
    Ok(config)
}

/// Checks that the program `envProcess` names exists and is executable,
/// looking it up on the process's own `PATH` (relative paths from its
/// working dir `run_dir`). Nothing to check in static mode.
pub(crate) fn check_program(
    deployment: &FunctionDeployment,
    env: &BTreeMap<String, String>,
    run_dir: &Path,
) -> Result<(), Error> {
    let Some(program) = deployment.env_process.split_ascii_whitespace().next() else { return Ok(()) };
    let path_var = env.get("PATH").map(String::as_str).unwrap_or(FALLBACK_PATH);
    let located = if program.contains('/') && !Path::new(program).is_absolute() {
        run_dir.join(program).to_string_lossy().into_owned()
    } else {
        program.to_owned()
    };
    resolve_program(&located, path_var).map(|_| ()).map_err(|e| Error::from(e).with_field("envProcess"))
}

/// Renames the field of an `Invalid` error, keeping its reason.
trait WithField {
    fn with_field(self, field: &str) -> Self;
}

impl WithField for Error {
    fn with_field(self, field: &str) -> Self {
        match self {
            Error::Invalid { reason, .. } => Error::Invalid { field: field.to_owned(), reason },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(env_process: &str, vars: &[(&str, &str)]) -> FunctionDeployment {
        FunctionDeployment {
            service: "f".into(),
            image: "img".into(),
            env_process: env_process.into(),
            env_vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..FunctionDeployment::default()
        }
    }

    fn field(result: Result<impl std::fmt::Debug, Error>) -> String {
        match result {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn config_comes_from_env_vars_and_env_process() {
        let d = deployment("cat -n", &[("mode", "serializing"), ("fprocess", "ignored")]);
        let config = watchdog_config(&d, Some(Duration::from_secs(7))).unwrap();
        assert_eq!(config.fprocess, "cat -n");
        assert_eq!(config.mode.to_string(), "serializing");
        assert_eq!(config.exec_timeout, Some(Duration::from_secs(7)));
        let own = deployment("cat", &[("exec_timeout", "2s")]);
        assert_eq!(
            watchdog_config(&own, Some(Duration::from_secs(7))).unwrap().exec_timeout,
            Some(Duration::from_secs(2))
        );
        let none = deployment("cat", &[("exec_timeout", "0")]);
        assert_eq!(watchdog_config(&none, Some(Duration::from_secs(7))).unwrap().exec_timeout, None);
    }

    #[test]
    fn bad_deployments_name_their_field() {
        assert_eq!(field(watchdog_config(&deployment("", &[]), None)), "envProcess");
        assert_eq!(field(watchdog_config(&deployment("  ", &[("mode", "http")]), None)), "envProcess");
        assert_eq!(field(watchdog_config(&deployment("cat", &[("mode", "fork")]), None)), "envVars.mode");
        assert_eq!(
            field(watchdog_config(&deployment("cat", &[("exec_timeout", "soon")]), None)),
            "envVars.exec_timeout"
        );
        let mut bad_name = deployment("cat", &[]);
        bad_name.service = "Bad_Name".into();
        assert_eq!(field(watchdog_config(&bad_name, None)), "service");
        watchdog_config(&deployment("", &[("mode", "static")]), None).unwrap();
    }

    #[test]
    fn programs_are_looked_up_on_the_process_path() {
        let env = BTreeMap::from([("PATH".to_owned(), "/usr/bin:/bin".to_owned())]);
        check_program(&deployment("sh -c true", &[]), &env, Path::new("/")).unwrap();
        let err = check_program(&deployment("no-such-program-xyz --flag", &[]), &env, Path::new("/")).unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, reason } if field == "envProcess" && reason.contains("no-such-program-xyz")),
            "{err:?}"
        );
        let empty_path = BTreeMap::from([("PATH".to_owned(), "/nonexistent".to_owned())]);
        assert_eq!(field(check_program(&deployment("sh", &[]), &empty_path, Path::new("/"))), "envProcess");
    }
}
