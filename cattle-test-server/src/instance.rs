//! An instance's runtime: the function's watchdog (the faas-watchdog
//! library, in this process) behind its own listener on 127.0.0.1, standing
//! in for a container running `fwatchdog`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use faas_core::Body;
use faas_watchdog::{Config, Options, Watchdog};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The variables taken from the server's own environment, as a container
/// image would bring its own `PATH` and `HOME`.
const INHERITED: [&str; 4] = ["PATH", "HOME", "LANG", "TMPDIR"];

/// A running instance.
pub(crate) struct Runtime {
    pub(crate) port: u16,
    watchdog: Watchdog,
    stop: watch::Sender<bool>,
    server: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("port", &self.port).finish_non_exhaustive()
    }
}

impl Runtime {
    /// Starts the watchdog configured by `environment` (the container's
    /// environment: `fprocess`, `mode`, ...), with `secrets` as files in a
    /// directory named by `SECRETS_DIR` (standing in for `/run/secrets`),
    /// listening on `port` at 127.0.0.1 (0: any free port).
    pub(crate) async fn start(
        name: &str,
        environment: &BTreeMap<String, String>,
        secrets: &[(String, Vec<u8>)],
        port: u16,
    ) -> Result<Runtime, String> {
        let dir = tempfile::Builder::new()
            .prefix("cattle-instance-")
            .tempdir()
            .map_err(|e| format!("cannot create the instance directory: {e}"))?;
        let secrets_dir: PathBuf = dir.path().join("secrets");
        std::fs::create_dir(&secrets_dir).map_err(|e| format!("cannot create the secrets directory: {e}"))?;
        for (file, bytes) in secrets {
            if file.is_empty() || file.contains('/') || file.starts_with('.') {
                return Err(format!("secret file name {file:?} is not a plain file name"));
            }
            std::fs::write(secrets_dir.join(file), bytes).map_err(|e| format!("cannot write secret {file}: {e}"))?;
        }
        let config = Config::from_vars(environment.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| format!("the watchdog refuses the environment: {e}"))?;
        let mut env: BTreeMap<String, String> =
            INHERITED.iter().filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v))).collect();
        env.extend(environment.iter().map(|(k, v)| (k.clone(), v.clone())));
        env.insert("SECRETS_DIR".into(), secrets_dir.to_string_lossy().into_owned());
        let options = Options {
            instances: 1,
            env,
            working_dir: Some(dir.path().to_owned()),
            log_sink: None,
            name: name.to_owned(),
        };
        let watchdog =
            Watchdog::start(config, options).await.map_err(|e| format!("the watchdog did not start: {e}"))?;
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
        let port = listener.local_addr().map_err(|e| format!("no local address: {e}"))?.port();
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve(listener, watchdog.clone(), stopped));
        Ok(Runtime { port, watchdog, stop, server: tokio::sync::Mutex::new(Some(server)), _dir: dir })
    }

    /// Stops taking connections, lets the open ones finish (at most
    /// `grace`), then stops the watchdog and its processes.
    pub(crate) async fn stop(&self, grace: Duration) {
        let _ = self.stop.send(true);
        if let Some(server) = self.server.lock().await.take() {
            let _ = tokio::time::timeout(grace + Duration::from_secs(1), server).await;
        }
        self.watchdog.shutdown(grace).await;
    }
}

/// Serves the watchdog until `stopped` turns true, then drains.
async fn serve(listener: TcpListener, watchdog: Watchdog, mut stopped: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let watchdog = watchdog.clone();
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let watchdog = watchdog.clone();
                    async move { Ok::<_, std::convert::Infallible>(watchdog.handle(request.map(Body::new)).await) }
                });
                let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                let watched = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = watched.await;
                });
            }
            _ = stopped.changed() => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
}

/// Rancher's HTTP health check: sends `request_line` to `port` and passes
/// on a 2xx or 3xx status line within `limit`.
pub(crate) async fn probe(port: u16, request_line: &str, limit: Duration) -> bool {
    let check = async {
        let mut stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).await.ok()?;
        let request = format!("{}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", request_line.trim_end());
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 16];
        let mut read = 0;
        while read < 12 {
            let n = stream.read(&mut head[read..]).await.ok()?;
            if n == 0 {
                break;
            }
            read += n;
        }
        let text = std::str::from_utf8(&head[..read]).ok()?;
        let status = text.split_whitespace().nth(1)?;
        Some(status.starts_with('2') || status.starts_with('3'))
    };
    matches!(tokio::time::timeout(limit, check).await, Ok(Some(true)))
}
