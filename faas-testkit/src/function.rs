//! The conformance function: the protocol every provider's test harness
//! deploys, as a POSIX shell script for watchdog-based providers and as an
//! in-process handler for providers that run handlers in memory.
//!
//! The request path below the function decides what it does (status 200
//! unless said otherwise):
//!
//! | path | response body |
//! |---|---|
//! | `/env/<NAME>` | the value of environment variable `NAME`, no trailing newline (empty if unset) |
//! | `/secret/<NAME>` | the bytes of `$SECRETS_DIR/<NAME>` (default `/var/openfaas/secrets`); missing: failure (500) |
//! | `/log/<TEXT>` | writes the line `<TEXT>` to stderr (the provider's logs); body `logged` |
//! | `/cat` | the request body, byte for byte |
//! | anything else (echo) | `method=<METHOD>\npath=<PATH>\nquery=<QUERY>\nheader=<X-Conformance>\nbody=` and the request body |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use faas_core::{Body, FunctionDeployment, Provider};
use futures_util::{stream, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;

use crate::Subject;

/// The header whose value the echo path reports on its `header=` line.
pub const CONFORMANCE_HEADER: &str = "x-conformance";

/// The default directory secrets are mounted in, as OpenFaaS mounts them.
pub const DEFAULT_SECRETS_DIR: &str = "/var/openfaas/secrets";

/// The conformance function as a POSIX `sh` script (dash and busybox sh),
/// for the watchdog's fork modes.
///
/// It reads the CGI-style environment the watchdog sets for each request
/// (`Http_Method`, `Http_Path`, `Http_Query`, `Http_X_Conformance`) and the
/// request body on stdin. Deploy it with `envProcess = "sh <path>"`, the
/// path being what [`write_shell_script`] returns.
pub const SHELL_SCRIPT: &str = r#"#!/bin/sh
# faas-testkit conformance function: the request path decides what it does.
# Input: the CGI-style environment the watchdog sets per request
# (Http_Method, Http_Path, Http_Query, Http_X_Conformance), body on stdin.
path=${Http_Path:-/}
case $path in
/env/*)
    name=${path#/env/}
    case $name in
    '' | [0-9]* | *[!A-Za-z0-9_]*) ;;
    *)
        eval "value=\${$name-}"
        printf '%s' "$value"
        ;;
    esac
    ;;
/secret/*)
    name=${path#/secret/}
    case $name in
    '' | .* | */*)
        echo "conformance: invalid secret name" >&2
        exit 1
        ;;
    esac
    exec cat "${SECRETS_DIR:-/var/openfaas/secrets}/$name"
    ;;
/log/*)
    printf '%s\n' "${path#/log/}" >&2
    printf 'logged'
    ;;
/cat)
    exec cat
    ;;
*)
    printf 'method=%s\npath=%s\nquery=%s\nheader=%s\nbody=' \
        "${Http_Method-}" "$path" "${Http_Query-}" "${Http_X_Conformance-}"
    exec cat
    ;;
esac
"#;

/// Writes [`SHELL_SCRIPT`] to `dir/conformance.sh` and returns its path.
pub fn write_shell_script(dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join("conformance.sh");
    std::fs::write(&path, SHELL_SCRIPT)?;
    Ok(path)
}

/// The conformance function of providers that run the watchdog on this
/// machine (processes, or containers that can read its directory):
/// [`SHELL_SCRIPT`] written to a temporary directory of its own, deployed
/// as `envProcess = "sh <path>"` in the watchdog's streaming mode. The
/// directory is removed when the last clone is dropped.
///
/// ```no_run
/// # use std::sync::Arc;
/// # fn run(provider: Arc<dyn faas_core::Provider>) -> std::io::Result<()> {
/// let function = faas_testkit::function::ShellFunction::write()?;
/// let subject = function.subject(provider, ());
/// # let _ = subject;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ShellFunction {
    dir: Arc<tempfile::TempDir>,
    fprocess: String,
}

impl ShellFunction {
    /// Writes the script to a new temporary directory.
    pub fn write() -> std::io::Result<ShellFunction> {
        let dir = tempfile::Builder::new().prefix("faas-testkit-").tempdir()?;
        let script = write_shell_script(dir.path())?;
        Ok(ShellFunction { fprocess: format!("sh {}", script.display()), dir: Arc::new(dir) })
    }

    /// The directory holding the script (free for a test's other files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `sh <path of the script>`: the deployment's `envProcess`.
    pub fn fprocess(&self) -> &str {
        &self.fprocess
    }

    /// A deployment of the script named `name`, in the provider's default
    /// namespace (see [`watchdog_deployment`]).
    pub fn deployment(&self, name: &str) -> FunctionDeployment {
        watchdog_deployment(name, &self.fprocess)
    }

    /// A subject for `provider` deploying this function; `keep` (a test
    /// server, a state directory, a task) lives as long as the subject.
    pub fn subject(self, provider: Arc<dyn Provider>, keep: impl Send + Sync + 'static) -> Subject {
        Subject::new(provider, move |name, namespace| {
            let _kept_alive_with_the_subject = &keep;
            FunctionDeployment { namespace: namespace.to_owned(), ..self.deployment(name) }
        })
    }
}

/// A deployment of `fprocess` run by the watchdog in streaming mode,
/// named `name`, in the provider's default namespace, with the image name
/// `faas-testkit/conformance-sh:latest` (for providers that need one).
pub fn watchdog_deployment(name: &str, fprocess: &str) -> FunctionDeployment {
    FunctionDeployment {
        service: name.to_owned(),
        image: "faas-testkit/conformance-sh:latest".to_owned(),
        env_process: fprocess.to_owned(),
        env_vars: BTreeMap::from([("mode".to_owned(), "streaming".to_owned())]),
        ..FunctionDeployment::default()
    }
}

/// The conformance protocol in-process, for providers that serve functions
/// with in-memory handlers.
///
/// `env` is the function's environment, `secrets` its secrets' bytes by
/// name, and `log` receives the lines the function writes to its logs.
/// Bodies stream: `/cat` returns the request body itself, and the echo
/// path streams it after its header lines.
pub async fn respond(
    request: Request<Body>,
    env: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, Vec<u8>>,
    log: &(dyn Fn(&str) + Send + Sync),
) -> Response<Body> {
    let path = request.uri().path().to_owned();
    if let Some(name) = path.strip_prefix("/env/") {
        let value = env.get(name).cloned().unwrap_or_default();
        return reply(StatusCode::OK, Body::from(value));
    }
    if let Some(name) = path.strip_prefix("/secret/") {
        return match secrets.get(name) {
            Some(bytes) => reply(StatusCode::OK, Body::from(bytes.clone())),
            None => reply(StatusCode::INTERNAL_SERVER_ERROR, Body::from(format!("secret {name:?} is not mounted"))),
        };
    }
    if let Some(text) = path.strip_prefix("/log/") {
        log(text);
        return reply(StatusCode::OK, Body::from("logged"));
    }
    if path == "/cat" {
        return reply(StatusCode::OK, request.into_body());
    }
    let header = request.headers().get(CONFORMANCE_HEADER).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let head = format!(
        "method={}\npath={}\nquery={}\nheader={}\nbody=",
        request.method(),
        path,
        request.uri().query().unwrap_or(""),
        header.unwrap_or_default()
    );
    let rest = request.into_body().into_data_stream();
    let body = stream::once(async move { Ok(Bytes::from(head)) }).chain(rest);
    reply(StatusCode::OK, Body::from_stream(body))
}

fn reply(status: StatusCode, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Output, Stdio};
    use std::sync::Mutex;

    use super::*;

    /// One run of the script: the shell command, the CGI env and stdin.
    fn run(shell: &[&str], script: &Path, env: &[(&str, &str)], stdin: &[u8]) -> Output {
        let mut command = Command::new(shell[0]);
        command.args(&shell[1..]).arg(script).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {shell:?}: {e}"));
        let mut input = child.stdin.take().expect("stdin is piped");
        let body = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            // The script may exit without reading stdin (/env, /log): a
            // broken pipe is expected then.
            let _ = input.write_all(&body);
        });
        let output = child.wait_with_output().expect("the script runs");
        writer.join().expect("the stdin writer does not panic");
        output
    }

    fn check_script(shell: &[&str]) {
        let dir = tempfile::tempdir().unwrap();
        let script = write_shell_script(dir.path()).unwrap();
        let secrets = dir.path().join("secrets");
        std::fs::create_dir(&secrets).unwrap();
        std::fs::write(secrets.join("db.password"), b"s3cret\0\xff\n").unwrap();
        let secrets_dir = secrets.to_str().unwrap();

        let out = run(
            shell,
            &script,
            &[("Http_Method", "POST"), ("Http_Path", "/a/b"), ("Http_Query", "x=1&y=2"), ("Http_X_Conformance", "hi")],
            b"payload\n\0bin",
        );
        assert!(out.status.success(), "{shell:?} echo: {out:?}");
        assert_eq!(out.stdout, b"method=POST\npath=/a/b\nquery=x=1&y=2\nheader=hi\nbody=payload\n\0bin", "{shell:?}");

        let out = run(shell, &script, &[("Http_Method", "GET")], b"");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "method=GET\npath=/\nquery=\nheader=\nbody=", "{shell:?}");

        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let out = run(shell, &script, &[("Http_Method", "PUT"), ("Http_Path", "/cat")], &body);
        assert!(out.status.success(), "{shell:?} cat: {:?}", out.status);
        assert!(out.stdout == body, "{shell:?}: /cat returned {} bytes, not the {} sent", out.stdout.len(), body.len());

        let env = |path: &'static str| run(shell, &script, &[("Http_Path", path), ("GREETING", "hello there")], b"");
        assert_eq!(env("/env/GREETING").stdout, b"hello there", "{shell:?}");
        assert_eq!(env("/env/UNSET_VARIABLE").stdout, b"", "{shell:?}");
        let injected = env("/env/GREETING;echo${IFS}pwned");
        assert!(injected.status.success() && injected.stdout.is_empty(), "{shell:?}: {injected:?}");

        let out = run(shell, &script, &[("Http_Path", "/secret/db.password"), ("SECRETS_DIR", secrets_dir)], b"");
        assert!(out.status.success(), "{shell:?}: {out:?}");
        assert_eq!(out.stdout, b"s3cret\0\xff\n", "{shell:?}");
        let out = run(shell, &script, &[("Http_Path", "/secret/missing"), ("SECRETS_DIR", secrets_dir)], b"");
        assert!(!out.status.success(), "{shell:?}: a missing secret must fail, got {out:?}");
        let out =
            run(shell, &script, &[("Http_Path", "/secret/../secrets/db.password"), ("SECRETS_DIR", secrets_dir)], b"");
        assert!(!out.status.success(), "{shell:?}: a path outside the secrets dir must fail, got {out:?}");

        let out = run(shell, &script, &[("Http_Path", "/log/hello-from-the-script")], b"");
        assert!(out.status.success(), "{shell:?}: {out:?}");
        assert_eq!(out.stdout, b"logged", "{shell:?}");
        assert_eq!(out.stderr, b"hello-from-the-script\n", "{shell:?}");
    }

    #[test]
    fn shell_script_follows_the_protocol_under_sh() {
        check_script(&["sh"]);
    }

    #[test]
    fn shell_script_follows_the_protocol_under_busybox_sh() {
        let available = Command::new("busybox").arg("true").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
        if !available {
            eprintln!("skipped: busybox is not installed, the script was checked under sh only");
            return;
        }
        check_script(&["busybox", "sh"]);
    }

    async fn call(
        method: &str,
        uri: &str,
        header: Option<&str>,
        body: &'static [u8],
    ) -> (StatusCode, Vec<u8>, Vec<String>) {
        let env = BTreeMap::from([("GREETING".to_owned(), "hello".to_owned())]);
        let secrets = BTreeMap::from([("db.password".to_owned(), b"s3\0cret".to_vec())]);
        let lines = Mutex::new(Vec::new());
        let log = |line: &str| lines.lock().unwrap().push(line.to_owned());
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(value) = header {
            request = request.header("X-Conformance", value);
        }
        let response = respond(request.body(Body::from(body)).unwrap(), &env, &secrets, &log).await;
        let status = response.status();
        let bytes = response.into_body().collect_limited(1 << 20).await.unwrap();
        (status, bytes.to_vec(), lines.into_inner().unwrap())
    }

    #[tokio::test]
    async fn respond_follows_the_protocol() {
        let (status, body, _) = call("DELETE", "/x/y?q=1", Some("h"), b"data\0").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, b"method=DELETE\npath=/x/y\nquery=q=1\nheader=h\nbody=data\0");
        assert_eq!(call("GET", "/", None, b"").await.1, b"method=GET\npath=/\nquery=\nheader=\nbody=");
        assert_eq!(call("GET", "/env/GREETING", None, b"").await.1, b"hello");
        assert_eq!(call("GET", "/env/NOPE", None, b"").await.1, b"");
        assert_eq!(call("GET", "/secret/db.password", None, b"").await.1, b"s3\0cret");
        assert_eq!(call("GET", "/secret/other", None, b"").await.0, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(call("POST", "/cat", None, b"\x00\x01raw").await.1, b"\x00\x01raw");
        let (status, body, lines) = call("GET", "/log/some-text", None, b"").await;
        assert_eq!(
            (status, body.as_slice(), lines),
            (StatusCode::OK, b"logged".as_slice(), vec!["some-text".to_owned()])
        );
    }
}
