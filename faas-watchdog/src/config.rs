//! The watchdog's configuration, read from environment variables the way
//! OpenFaaS's watchdogs read theirs.

use std::collections::HashMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// How the watchdog runs the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A process per call; the whole stdout is read, then the response is sent.
    Serializing,
    /// A process per call; stdin and stdout stream both ways.
    #[default]
    Streaming,
    /// A pool of long-running HTTP servers the watchdog proxies to.
    Http,
    /// Files served from a directory.
    Static,
}

impl Mode {
    const NAMES: &'static str = "serializing, streaming, http, static";

    fn as_str(self) -> &'static str {
        match self {
            Mode::Serializing => "serializing",
            Mode::Streaming => "streaming",
            Mode::Http => "http",
            Mode::Static => "static",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ConfigError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "serializing" => Ok(Mode::Serializing),
            "streaming" => Ok(Mode::Streaming),
            "http" => Ok(Mode::Http),
            "static" => Ok(Mode::Static),
            _ => Err(ConfigError::invalid("mode", format!("{value:?} is not one of {}", Mode::NAMES))),
        }
    }
}

/// A configuration the watchdog cannot work with.
///
/// Every variant names the environment variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable's value breaks its rule.
    #[error("{var}: {reason}")]
    Invalid {
        /// The environment variable (`mode`, `exec_timeout`, ...).
        var: &'static str,
        /// The rule that was broken, in words.
        reason: String,
    },
    /// The program named by `fprocess` cannot be found.
    #[error("fprocess: executable {program:?} not found on PATH")]
    ProgramNotFound {
        /// The first word of `fprocess`.
        program: String,
    },
    /// The program named by `fprocess` exists but cannot be executed.
    #[error("fprocess: {path:?} is not executable")]
    NotExecutable {
        /// Where the program was found.
        path: PathBuf,
    },
}

impl ConfigError {
    pub(crate) fn invalid(var: &'static str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { var, reason: reason.into() }
    }

    /// The environment variable this error is about.
    pub fn var(&self) -> &'static str {
        match self {
            ConfigError::Invalid { var, .. } => var,
            ConfigError::ProgramNotFound { .. } | ConfigError::NotExecutable { .. } => "fprocess",
        }
    }

    /// The broken rule, without the variable's name.
    fn reason(&self) -> String {
        match self {
            ConfigError::Invalid { reason, .. } => reason.clone(),
            ConfigError::ProgramNotFound { program } => format!("executable {program:?} not found on PATH"),
            ConfigError::NotExecutable { path } => format!("{path:?} is not executable"),
        }
    }
}

impl From<ConfigError> for faas_core::Error {
    fn from(err: ConfigError) -> Self {
        let field = match err.var() {
            "fprocess" => "envProcess".to_string(),
            var => format!("envVars.{var}"),
        };
        faas_core::Error::Invalid { field, reason: err.reason() }
    }
}

/// The watchdog's settings. Build it with [`Config::from_vars`] or
/// [`Config::from_env`]; every field has the default documented on it.
#[derive(Debug, Clone)]
pub struct Config {
    /// The command line to run, split on ASCII whitespace into program and
    /// arguments (no quoting, as OpenFaaS does). Required except in static
    /// mode.
    pub fprocess: String,
    /// How the function is run; default [`Mode::Streaming`].
    pub mode: Mode,
    /// HTTP mode: a fixed upstream to proxy to (the pool is then limited to
    /// one process). `None`: each process gets a free port in env `PORT`.
    pub upstream_url: Option<http::Uri>,
    /// The binary's listen port; default 8080.
    pub port: u16,
    /// The binary's listen address (env `listen_address`); default
    /// `0.0.0.0`. A loopback address keeps a function reachable only from
    /// its own host, as for a sidecar behind a local proxy.
    pub listen_address: std::net::IpAddr,
    /// The binary's request header and body read timeout; default 10s.
    pub read_timeout: Duration,
    /// The binary's drain grace on SIGTERM; default 10s.
    pub write_timeout: Duration,
    /// Bounds a whole call; `None` (or `0` in the environment) is no limit.
    pub exec_timeout: Option<Duration>,
    /// Calls in flight at most; beyond it calls get 429. 0 is unlimited.
    pub max_inflight: usize,
    /// Fork modes: the response Content-Type; default the request's, else `text/plain`.
    pub content_type: Option<String>,
    /// The binary: prefix the function's log lines with a timestamp and the
    /// stream; default true.
    pub prefix_logs: bool,
    /// A log line per call in OpenFaaS's wording (env `log_calls`);
    /// default true.
    pub log_calls: bool,
    /// Static mode: the directory served; default `/home/app/public`.
    pub static_path: PathBuf,
    /// How long a call waits for a ready instance before 503; default 10s.
    pub ready_timeout: Duration,
    /// The binary: threads serving connections, each with its own
    /// single-threaded runtime (a connection and the calls it makes stay
    /// on one thread); 0, the default, serves them on one shared
    /// work-stealing runtime (opt-in for now, see benches/PROFILE.md).
    pub serve_threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fprocess: String::new(),
            mode: Mode::default(),
            upstream_url: None,
            port: 8080,
            listen_address: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            exec_timeout: None,
            max_inflight: 0,
            content_type: None,
            prefix_logs: true,
            log_calls: true,
            static_path: PathBuf::from("/home/app/public"),
            ready_timeout: Duration::from_secs(10),
            serve_threads: 0,
        }
    }
}

impl Config {
    /// Reads the configuration from `(name, value)` pairs. Unknown names are
    /// ignored; empty values count as unset.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .filter(|(_, v)| !v.as_ref().trim().is_empty())
            .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().trim().to_string()))
            .collect();
        let get = |name: &str| vars.get(name).map(String::as_str);
        let mut config = Config::default();

        if let Some(mode) = get("mode") {
            config.mode = mode.parse()?;
        }
        if let Some(fprocess) = get("fprocess") {
            config.fprocess = fprocess.to_string();
        }
        if config.mode != Mode::Static && config.fprocess.is_empty() {
            return Err(ConfigError::invalid("fprocess", format!("required in {} mode", config.mode)));
        }
        if let Some(url) = get("upstream_url") {
            config.upstream_url = Some(parse_upstream(url)?);
        }
        if let Some(port) = get("port") {
            config.port = match port.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(ConfigError::invalid("port", format!("{port:?} is not a port number (1-65535)"))),
            };
        }
        if let Some(addr) = get("listen_address") {
            config.listen_address = addr.parse().map_err(|_| {
                ConfigError::invalid("listen_address", format!("{addr:?} is not an IPv4 or IPv6 address"))
            })?;
        }
        if let Some(v) = get("read_timeout") {
            config.read_timeout = parse_duration("read_timeout", v)?;
        }
        if let Some(v) = get("write_timeout") {
            config.write_timeout = parse_duration("write_timeout", v)?;
        }
        if let Some(v) = get("exec_timeout") {
            let d = parse_duration("exec_timeout", v)?;
            config.exec_timeout = (!d.is_zero()).then_some(d);
        }
        if let Some(v) = get("ready_timeout") {
            config.ready_timeout = parse_duration("ready_timeout", v)?;
        }
        if let Some(v) = get("max_inflight") {
            config.max_inflight = v
                .parse()
                .map_err(|_| ConfigError::invalid("max_inflight", format!("{v:?} is not a non-negative integer")))?;
        }
        if let Some(v) = get("content_type") {
            if http::HeaderValue::from_str(v).is_err() {
                return Err(ConfigError::invalid("content_type", format!("{v:?} is not a valid header value")));
            }
            config.content_type = Some(v.to_string());
        }
        if let Some(v) = get("prefix_logs") {
            config.prefix_logs = parse_bool("prefix_logs", v)?;
        }
        if let Some(v) = get("log_calls") {
            config.log_calls = parse_bool("log_calls", v)?;
        }
        if let Some(v) = get("serve_threads") {
            let threads = v.parse::<usize>().ok().filter(|n| *n <= 1024);
            config.serve_threads = threads.ok_or_else(|| {
                ConfigError::invalid("serve_threads", format!("{v:?} is not a number of threads (0-1024)"))
            })?;
        }
        if let Some(v) = get("static_path") {
            config.static_path = PathBuf::from(v);
        }
        Ok(config)
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))))
    }

    /// `fprocess` split into program and arguments.
    pub(crate) fn command_words(&self) -> Vec<String> {
        self.fprocess.split_ascii_whitespace().map(str::to_string).collect()
    }
}

fn parse_upstream(value: &str) -> Result<http::Uri, ConfigError> {
    let uri: http::Uri =
        value.parse().map_err(|e| ConfigError::invalid("upstream_url", format!("{value:?} is not a URL: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(ConfigError::invalid("upstream_url", format!("{value:?} must be an http:// URL")));
    }
    if uri.host().is_none() {
        return Err(ConfigError::invalid("upstream_url", format!("{value:?} has no host")));
    }
    Ok(uri)
}

/// Parses a boolean with the platform's one reading ([`faas_core::validate::boolean`]).
fn parse_bool(var: &'static str, value: &str) -> Result<bool, ConfigError> {
    faas_core::validate::boolean(var, value).map_err(|e| match e {
        faas_core::Error::Invalid { reason, .. } => ConfigError::invalid(var, reason),
        other => ConfigError::invalid(var, other.to_string()),
    })
}

/// Parses a duration with the platform's one parser ([`faas_core::duration`]):
/// Go's syntax (`500ms`, `1m30s`) or plain seconds (`10`, `1.5`).
pub(crate) fn parse_duration(var: &'static str, value: &str) -> Result<Duration, ConfigError> {
    faas_core::duration::parse(value).map_err(|e| ConfigError::invalid(var, e.to_string()))
}

/// A PATH used when the environment given to processes has none.
pub(crate) const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolves the first word of `fprocess` against `path_var` (a PATH-style
/// list); absolute/relative paths are checked directly.
///
/// Errors name `fprocess`: `executable "foo" not found on PATH`, or
/// `"/x/foo" is not executable`.
pub fn resolve_program(fprocess: &str, path_var: &str) -> Result<PathBuf, ConfigError> {
    resolve_program_in(fprocess, path_var, None)
}

/// [`resolve_program`] with relative paths taken from `base` (the
/// process's working directory) when given.
pub(crate) fn resolve_program_in(fprocess: &str, path_var: &str, base: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let Some(program) = fprocess.split_ascii_whitespace().next() else {
        return Err(ConfigError::invalid("fprocess", "is empty"));
    };
    if program.contains('/') {
        let path = match base {
            Some(base) if !Path::new(program).is_absolute() => base.join(program),
            _ => PathBuf::from(program),
        };
        return match executable(&path) {
            Some(true) => Ok(path),
            Some(false) => Err(ConfigError::NotExecutable { path }),
            None => Err(ConfigError::ProgramNotFound { program: program.to_string() }),
        };
    }
    let mut found_not_executable = None;
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { Path::new(".") } else { Path::new(dir) };
        let candidate = dir.join(program);
        match executable(&candidate) {
            Some(true) => return Ok(candidate),
            Some(false) => {
                found_not_executable.get_or_insert(candidate);
            }
            None => {}
        }
    }
    match found_not_executable {
        Some(path) => Err(ConfigError::NotExecutable { path }),
        None => Err(ConfigError::ProgramNotFound { program: program.to_string() }),
    }
}

/// `Some(true)` for an executable regular file, `Some(false)` for a file
/// that is not executable, `None` when there is no file.
fn executable(path: &Path) -> Option<bool> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return if meta.is_dir() { Some(false) } else { None };
    }
    Some(meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(pairs.iter().copied())
    }

    #[test]
    fn serving_threads_are_opt_in_and_bounded() {
        assert_eq!(vars(&[("fprocess", "cat")]).unwrap().serve_threads, 0);
        assert_eq!(vars(&[("fprocess", "cat"), ("serve_threads", "4")]).unwrap().serve_threads, 4);
        for bad in ["-1", "two", "1025"] {
            let err = vars(&[("fprocess", "cat"), ("serve_threads", bad)]).unwrap_err();
            assert!(err.to_string().starts_with("serve_threads: "), "{bad:?}: {err}");
        }
    }

    #[test]
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("x", "10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("x", "1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("x", "500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("x", "10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("x", "1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("x", "2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("x", "1m30s").unwrap(), Duration::from_secs(90));
        for bad in ["", "s", "10x", "-1", "1..2s", "ten", "1e999"] {
            let err = parse_duration("read_timeout", bad).unwrap_err();
            assert!(err.to_string().starts_with("read_timeout: "), "{bad:?}: {err}");
        }
    }

    #[test]
    fn defaults_apply() {
        let c = vars(&[("fprocess", "cat")]).unwrap();
        assert_eq!(c.mode, Mode::Streaming);
        assert_eq!(c.port, 8080);
        assert_eq!(c.listen_address.to_string(), "0.0.0.0");
        assert_eq!(c.read_timeout, Duration::from_secs(10));
        assert_eq!(c.write_timeout, Duration::from_secs(10));
        assert_eq!(c.ready_timeout, Duration::from_secs(10));
        assert_eq!(c.exec_timeout, None);
        assert_eq!(c.max_inflight, 0);
        assert!(c.prefix_logs);
        assert!(c.log_calls);
        assert!(c.upstream_url.is_none());
        assert_eq!(c.static_path, PathBuf::from("/home/app/public"));
    }

    #[test]
    fn every_variable_is_read() {
        let c = vars(&[
            ("fprocess", "python3  app.py --x"),
            ("mode", "HTTP"),
            ("upstream_url", "http://127.0.0.1:5000"),
            ("port", "9090"),
            ("listen_address", "127.0.0.7"),
            ("read_timeout", "5s"),
            ("write_timeout", "1m"),
            ("exec_timeout", "1m30s"),
            ("max_inflight", "4"),
            ("content_type", "application/json"),
            ("prefix_logs", "false"),
            ("log_calls", "off"),
            ("static_path", "/srv"),
            ("ready_timeout", "3"),
        ])
        .unwrap();
        assert_eq!(c.command_words(), ["python3", "app.py", "--x"]);
        assert_eq!(c.mode, Mode::Http);
        assert_eq!(c.upstream_url.unwrap().port_u16(), Some(5000));
        assert_eq!(c.port, 9090);
        assert_eq!(c.listen_address.to_string(), "127.0.0.7");
        assert_eq!(c.read_timeout, Duration::from_secs(5));
        assert_eq!(c.write_timeout, Duration::from_secs(60));
        assert_eq!(c.exec_timeout, Some(Duration::from_secs(90)));
        assert_eq!(c.max_inflight, 4);
        assert_eq!(c.content_type.as_deref(), Some("application/json"));
        assert!(!c.prefix_logs);
        assert!(!c.log_calls);
        assert_eq!(c.static_path, PathBuf::from("/srv"));
        assert_eq!(c.ready_timeout, Duration::from_secs(3));
    }

    #[test]
    fn zero_exec_timeout_is_none() {
        assert_eq!(vars(&[("fprocess", "cat"), ("exec_timeout", "0")]).unwrap().exec_timeout, None);
        assert_eq!(vars(&[("fprocess", "cat"), ("exec_timeout", "0s")]).unwrap().exec_timeout, None);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("fprocess", "cat"), ("mode", "fork")], "mode"),
            (&[("mode", "streaming")], "fprocess"),
            (&[("fprocess", "cat"), ("port", "0")], "port"),
            (&[("fprocess", "cat"), ("port", "70000")], "port"),
            (&[("fprocess", "cat"), ("listen_address", "localhost")], "listen_address"),
            (&[("fprocess", "cat"), ("exec_timeout", "soon")], "exec_timeout"),
            (&[("fprocess", "cat"), ("write_timeout", "10q")], "write_timeout"),
            (&[("fprocess", "cat"), ("max_inflight", "-1")], "max_inflight"),
            (&[("fprocess", "cat"), ("prefix_logs", "maybe")], "prefix_logs"),
            (&[("fprocess", "cat"), ("log_calls", "maybe")], "log_calls"),
            (&[("fprocess", "cat"), ("upstream_url", "ftp://x")], "upstream_url"),
            (&[("fprocess", "cat"), ("ready_timeout", "x")], "ready_timeout"),
        ];
        for (input, var) in cases {
            let err = vars(input).unwrap_err();
            assert_eq!(err.var(), *var, "{input:?}");
            assert!(err.to_string().starts_with(&format!("{var}: ")), "{err}");
        }
        let err = vars(&[("fprocess", "cat"), ("mode", "fork")]).unwrap_err();
        assert_eq!(err.to_string(), "mode: \"fork\" is not one of serializing, streaming, http, static");
    }

    #[test]
    fn static_mode_needs_no_fprocess() {
        let c = vars(&[("mode", "static"), ("static_path", "/tmp")]).unwrap();
        assert_eq!(c.mode, Mode::Static);
    }

    #[test]
    fn config_errors_map_to_invalid_fields() {
        let err: faas_core::Error = ConfigError::invalid("mode", "bad").into();
        assert!(
            matches!(&err, faas_core::Error::Invalid { field, reason } if field == "envVars.mode" && reason == "bad")
        );
        let err: faas_core::Error = ConfigError::ProgramNotFound { program: "nope".into() }.into();
        assert!(matches!(&err, faas_core::Error::Invalid { field, .. } if field == "envProcess"), "{err}");
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn mode_round_trips() {
        for mode in [Mode::Serializing, Mode::Streaming, Mode::Http, Mode::Static] {
            assert_eq!(mode.to_string().parse::<Mode>().unwrap(), mode);
        }
    }

    #[test]
    fn resolve_program_searches_path() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.path().join("data");
        std::fs::write(&plain, "x").unwrap();
        let path_var = format!("/nonexistent:{}", dir.path().display());

        assert_eq!(resolve_program("tool --flag", &path_var).unwrap(), exe);
        assert_eq!(resolve_program(exe.to_str().unwrap(), "").unwrap(), exe);
        let err = resolve_program("nope arg", &path_var).unwrap_err();
        assert_eq!(err.to_string(), "fprocess: executable \"nope\" not found on PATH");
        let err = resolve_program("data", &path_var).unwrap_err();
        assert!(matches!(err, ConfigError::NotExecutable { .. }), "{err}");
        assert!(err.to_string().contains("is not executable"), "{err}");
        assert!(matches!(resolve_program(plain.to_str().unwrap(), "").unwrap_err(), ConfigError::NotExecutable { .. }));
        assert!(matches!(resolve_program("/no/such/x", "").unwrap_err(), ConfigError::ProgramNotFound { .. }));
        assert!(resolve_program("  ", &path_var).is_err());
        assert!(resolve_program("sh -c x", DEFAULT_PATH).is_ok());
        let rel = resolve_program_in("./tool", "", Some(dir.path())).unwrap();
        assert_eq!(rel, dir.path().join("./tool"));
    }
}
