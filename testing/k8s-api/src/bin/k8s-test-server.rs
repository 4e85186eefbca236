//! `k8s-test-server`: serves the test Kubernetes API until Ctrl-C or
//! SIGTERM, then kills every pod process.
//!
//! ```text
//! k8s-test-server [--listen 127.0.0.1:6443] [--kubeconfig PATH] [--namespace NAME]... [--no-controller]
//! ```
//!
//! With `--kubeconfig`, writes a kubeconfig pointing at the server (plain
//! HTTP, no credentials), so that kubectl or a gateway can use it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use k8s_test_server::{Options, TestServer};

fn usage() -> ExitCode {
    eprintln!("usage: k8s-test-server [--listen ADDR] [--kubeconfig PATH] [--namespace NAME]... [--no-controller]");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 6443));
    let mut kubeconfig: Option<PathBuf> = None;
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => match args.next().and_then(|a| a.parse().ok()) {
                Some(addr) => listen = addr,
                None => return usage(),
            },
            "--kubeconfig" => match args.next() {
                Some(path) => kubeconfig = Some(PathBuf::from(path)),
                None => return usage(),
            },
            "--namespace" => match args.next() {
                Some(ns) => options.namespaces.push(ns),
                None => return usage(),
            },
            "--no-controller" => options.controller = false,
            "-h" | "--help" => {
                usage();
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }
    let server = match TestServer::start_on(listen, options).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("k8s-test-server: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &kubeconfig {
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k8s-test-server\n  cluster:\n    server: {url}\n\
             contexts:\n- name: k8s-test-server\n  context:\n    cluster: k8s-test-server\n    user: k8s-test-server\n    namespace: default\n\
             current-context: k8s-test-server\nusers:\n- name: k8s-test-server\n  user: {{}}\n",
            url = server.url()
        );
        if let Err(e) = std::fs::write(path, config) {
            eprintln!("k8s-test-server: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("k8s-test-server: kubeconfig written to {}", path.display());
    }
    eprintln!("k8s-test-server: serving the Kubernetes API at {} (Ctrl-C to stop)", server.url());
    // Ctrl-C or SIGTERM: stop every pod process before exiting.
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(e) => {
            eprintln!("k8s-test-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    server.shutdown().await;
    ExitCode::SUCCESS
}
