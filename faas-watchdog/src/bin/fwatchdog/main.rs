//! `fwatchdog`: a function's HTTP server. Reads its configuration from the
//! environment (see the `faas_watchdog` crate docs for the variables),
//! runs the function with the watchdog and serves it on `$listen_address:$port`
//! (default `0.0.0.0:8080`).
//!
//! The function's processes get this process's environment. Their log
//! lines go to stderr, prefixed with a timestamp and the stream when
//! `prefix_logs` is true; the watchdog's own messages go through `tracing`
//! (filter with `RUST_LOG`). SIGTERM or SIGINT: stop accepting, let calls
//! in flight finish (up to `write_timeout`), kill the processes, exit 0.

mod read_timeout;
mod sandbox;
mod server;
mod stderr_sink;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use faas_upstream::Shards;
use faas_watchdog::{resolve_program, Config, Mode, Options, Watchdog};
use tracing_subscriber::EnvFilter;

/// mimalloc rather than glibc malloc (`faas_upstream::allocator`).
#[global_allocator]
static ALLOCATOR: faas_upstream::allocator::Allocator = faas_upstream::allocator::Allocator;

fn main() -> ExitCode {
    faas_upstream::allocator::purge_promptly();
    let threads = match Config::from_env() {
        Ok(config) => config.serve_threads,
        Err(e) => {
            eprintln!("fwatchdog: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    // With serving threads the main runtime only accepts connections and
    // supervises the processes.
    let runtime = match Shards::main_runtime(threads) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("fwatchdog: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shards = match threads {
        0 => None,
        n => match Shards::start(n, "fwatchdog-serve") {
            Ok(shards) => Some(shards),
            Err(e) => {
                eprintln!("fwatchdog: cannot start the serving threads: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    runtime.block_on(run(shards.as_ref()))
}

async fn run(shards: Option<&Shards>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();

    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("fwatchdog: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let env: BTreeMap<String, String> =
        std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
    if matches!(config.mode, Mode::Serializing | Mode::Streaming | Mode::Http) {
        let path = env.get("PATH").map(String::as_str).unwrap_or("/usr/local/bin:/usr/bin:/bin");
        if let Err(e) = resolve_program(&config.fprocess, path) {
            eprintln!("fwatchdog: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    }
    if config.mode == Mode::Static && !config.static_path.is_dir() {
        eprintln!("fwatchdog: invalid configuration: static_path: {:?} is not a directory", config.static_path);
        return ExitCode::from(2);
    }

    // Fork modes run a process per call, as many at once as max_inflight
    // allows; HTTP and static modes run one instance.
    let instances = match config.mode {
        Mode::Serializing | Mode::Streaming if config.max_inflight > 0 => config.max_inflight,
        Mode::Serializing | Mode::Streaming => usize::MAX,
        Mode::Http | Mode::Static => 1,
    };
    let (sandbox, isolation) = match sandbox::from_env() {
        Ok(found) => found,
        Err(e) => {
            eprintln!("fwatchdog: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let options = Options {
        instances,
        env,
        working_dir: None,
        log_sink: Some(Arc::new(stderr_sink::StderrSink::new(config.prefix_logs))),
        name: "fwatchdog".into(),
        sandbox: sandbox.clone(),
        isolation,
    };
    let watchdog = match Watchdog::start(config.clone(), options).await {
        Ok(watchdog) => watchdog,
        Err(e) => {
            eprintln!("fwatchdog: {e}");
            return ExitCode::from(2);
        }
    };
    let served = server::serve(watchdog, &config, shards).await;
    if let Some(sandbox) = sandbox {
        sandbox.close();
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fwatchdog: {e}");
            ExitCode::FAILURE
        }
    }
}
