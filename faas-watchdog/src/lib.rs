//! # faas-watchdog
//!
//! Turns any program into an HTTP function, the way OpenFaaS's watchdogs
//! do. The library ([`Watchdog`]) is used by `provider-local` to run
//! functions as processes on this machine; the binary `fwatchdog` is the
//! same thing as a standalone server, the entrypoint of a function's
//! container image.
//!
//! ## Modes
//!
//! - **`streaming`** (default): a process per call. The request body is
//!   written to the process's stdin while its stdout streams back as the
//!   response body, neither buffered (a 1 GiB body passes in flat memory).
//!   The response starts at the first stdout chunk; a process that exits
//!   non-zero before writing anything gets a 500 whose body is the tail of
//!   its stderr.
//! - **`serializing`**: a process per call; the whole stdout is read and the
//!   process waited for, then the response is sent: 200 with stdout, or 500
//!   with the tail of stderr if the exit status is not zero.
//! - **`http`**: a pool of long-running processes, each an HTTP server the
//!   watchdog proxies to (keep-alive connections, hop-by-hop headers
//!   dropped). Each process gets a free loopback port in env `PORT` unless
//!   `upstream_url` names a fixed upstream. An instance is ready when its
//!   process is alive and accepts TCP connections; calls go to the ready
//!   instance with the fewest calls in flight, and wait up to
//!   `ready_timeout` when none is ready. Dead processes are restarted with
//!   backoff (100 ms doubling to 5 s, reset after 10 s of running).
//! - **`static`**: files served from `static_path` (GET and HEAD,
//!   `index.html` for directories, Content-Type from the extension, no
//!   escaping the directory).
//!
//! In the fork modes the request is exposed to the process CGI-style, on
//! top of the configured environment: `Http_Method`, `Http_Path`,
//! `Http_Query`, `Http_Content_Type`, `Http_ContentLength`, `Http_Host` and
//! `Http_<Header>` for every header (name canonicalised as Go does, `-`
//! replaced by `_`: `x-conformance` becomes `Http_X_Conformance`). The
//! response's Content-Type is `content_type` if set, else the request's,
//! else `text/plain`. Every process runs in its own process group; the
//! group is killed on `exec_timeout`, when the client goes away before the
//! process finished, and on shutdown.
//!
//! ## Environment variables
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `fprocess` | the command line, split on whitespace (no quoting) | required except in static mode |
//! | `mode` | `streaming`, `serializing`, `http` or `static` | `streaming` |
//! | `upstream_url` | http mode: a fixed upstream (one instance only) | a port per process |
//! | `port` | the binary's listen port | `8080` |
//! | `listen_address` | the binary's listen address (IPv4 or IPv6) | `0.0.0.0` |
//! | `read_timeout` | the binary's header and body read timeout | `10s` |
//! | `write_timeout` | the binary's drain grace on SIGTERM | `10s` |
//! | `exec_timeout` | bounds a whole call (504, process killed); `0` = none | none |
//! | `max_inflight` | calls in flight at most, beyond it 429; `0` = unlimited | `0` |
//! | `content_type` | fork modes: the response Content-Type | the request's |
//! | `prefix_logs` | the binary: prefix function log lines with time and stream | `true` |
//! | `log_calls` | a line per call in OpenFaaS's wording (below) | `true` |
//! | `static_path` | static mode: the directory served | `/home/app/public` |
//! | `ready_timeout` | how long a call waits for a ready instance (then 503) | `10s` |
//! | `sandbox` | the binary: `off`, `auto` or `required` ([`sandbox`]; `required` exits naming a missing feature) | `off` |
//! | `memory_limit` | with the sandbox: each process's memory limit (`20Mi`, at least `4Mi`) | none |
//! | `cpu_limit` | with the sandbox: each process's CPU quota in cores (`0.5`, `500m`) | none |
//! | `read_only_root` | with the sandbox: `/` read-only, a private writable `/tmp` | `false` |
//! | `secrets_path` | with the sandbox: a directory bound read-only at `/var/openfaas/secrets` | none |
//! | `serve_threads` | the binary's serving threads, a connection staying on one; `0` = one shared runtime | `0` |
//!
//! Durations are read by [`faas_core::duration`]: plain seconds (`10`,
//! `2.5`) or Go's syntax (`500ms`, `1m30s`, `2h45m`). Booleans are
//! `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
//!
//! ## Call log lines
//!
//! With `log_calls` (the default) the watchdog writes one line when a
//! fork-mode process starts, `Forking fprocess.`, and one when a call's
//! response ends: fork modes `Wrote <N> Bytes - Duration: <s.ssssss>s`,
//! http mode `<METHOD> <path?query> - <code> <reason> - ContentLength:
//! <N>B (<s.ssss>s)`, as OpenFaaS's watchdogs word them. They go through
//! [`LogSink::watchdog_line`]: the binary's stderr, provider-local's
//! function log.
//!
//! ## Routes
//!
//! [`Watchdog::handle`] answers `/_/health` (200 once the process or pool
//! is ready, else 503) and `/_/ready` (the same, plus 429 at
//! `max_inflight`), and forwards every other path to the function.
//! Responses the platform produced rather than the function carry the
//! header `X-Faas-Error: platform`.
//!
//! ## The `fwatchdog` binary in a `FROM scratch` image
//!
//! A plain `cargo build` links `fwatchdog` against the system's glibc. For
//! an image with nothing else in it, link it statically on the gnu target
//! (this toolchain has no musl target):
//!
//! ```text
//! RUSTFLAGS='-C target-feature=+crt-static' \
//!   cargo build --release --target x86_64-unknown-linux-gnu -p faas-watchdog --bin fwatchdog
//! ```
//!
//! `provider-swarm/scripts/build-images.sh` does this for the function
//! images (and for the gateway's, as `deploy/k8s/build-image.sh` does); CI
//! builds them and runs them on the Docker engine.
//!
//! ## Example
//!
//! ```no_run
//! use faas_watchdog::{Config, Options, Watchdog};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_vars([("fprocess", "cat"), ("mode", "streaming")])?;
//! let options = Options {
//!     instances: 4,
//!     env: [("PATH".to_string(), "/usr/bin:/bin".to_string())].into(),
//!     name: "echo".into(),
//!     ..Options::default()
//! };
//! let watchdog = Watchdog::start(config, options).await?;
//! let request = http::Request::post("/").body(faas_core::Body::from("hello"))?;
//! let response = watchdog.invoke(request).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```

mod bodies;
mod call_log;
pub mod config;
mod error;
mod fork;
mod gate;
mod http_pool;
pub mod logs;
mod process;
pub mod sandbox;
mod spawned;
mod static_files;
pub mod watchdog;

pub use config::{resolve_program, Config, ConfigError, Mode};
pub use error::WatchdogError;
pub use logs::{LogSink, Stream};
pub use sandbox::{Isolation, Sandbox, SandboxMode, SandboxSettings};
pub use watchdog::{Options, Watchdog, PLATFORM_ERROR_HEADER};
