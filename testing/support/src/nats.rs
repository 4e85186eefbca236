//! A real `nats-server` for tests: started with JetStream on a free
//! loopback port and its own store directory, killed when dropped. A test
//! can stop it and start it again on the same port and store
//! ([`NatsServer::stop`], [`NatsServer::restart`]) to see what an outage
//! does.
//!
//! Shared by every crate whose tests talk to NATS (faas-async's queue,
//! faas-triggers' subjects, the gateway). Without the binary a test is
//! skipped with a message, except on CI (`CI=true`), where it fails.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to listen.
const START_WAIT: Duration = Duration::from_secs(30);

/// A running `nats-server`, killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    /// The running server; `None` while stopped.
    child: Option<Child>,
    /// Where to connect, `nats://127.0.0.1:<port>`.
    pub url: String,
    binary: &'static str,
    port: u16,
    store: tempfile::TempDir,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl NatsServer {
    /// Kills the server (SIGKILL, as a crash or a lost machine would) and
    /// waits for it to exit; its store stays. Nothing if already stopped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store (what
    /// JetStream had stored is back), and waits until it listens.
    pub async fn restart(&mut self) {
        self.stop();
        self.child = Some(spawn(self.binary, self.port, self.store.path()));
        wait_listening(self.port).await;
    }
}

fn spawn(binary: &str, port: u16, store: &std::path::Path) -> Child {
    Command::new(binary)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server starts")
}

async fn wait_listening(port: u16) {
    let deadline = Instant::now() + START_WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `nats-server` with JetStream, or `None` (skip the test) when it
/// is not installed and this is not CI.
pub async fn nats_server() -> Option<NatsServer> {
    // Debian installs it in /usr/sbin, which is not on every PATH.
    let binary = ["nats-server", "/usr/sbin/nats-server"].into_iter().find(|binary| {
        Command::new(binary).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
    });
    let Some(binary) = binary else {
        let on_ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!on_ci, "CI=true but nats-server is not installed (.ci/run installs Debian's nats-server)");
        eprintln!("skipping: nats-server is not installed");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port();
    let store = tempfile::tempdir().expect("a store directory");
    let child = spawn(binary, port, store.path());
    let server = NatsServer { child: Some(child), url: format!("nats://127.0.0.1:{port}"), binary, port, store };
    wait_listening(port).await;
    Some(server)
}
