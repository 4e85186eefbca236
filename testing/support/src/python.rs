//! HTTP-mode functions (`mode=http`: the watchdog proxies to a server the
//! function runs on `$PORT`) written as small Python 3 servers, for tests
//! that need an upstream which sleeps, fails or reports who it is.

use std::path::{Path, PathBuf};

/// What every server has: the imports, a `Function` handler class with
/// `reply` and quiet logging, and the methods given.
const PRELUDE: &str = r#"import os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Function(BaseHTTPRequestHandler):
    def reply(self, body, status=200):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

"#;

/// The server on `127.0.0.1:$PORT`.
const SERVE: &str = r#"
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Function).serve_forever()
"#;

/// A Python 3 HTTP server on `127.0.0.1:$PORT` whose handler class has the
/// `methods` given (Python source indented by four spaces: `do_GET`,
/// `do_POST`, ...); a method answers with `self.reply(body_bytes,
/// status=200)`. `os` and `time` are imported.
///
/// ```
/// let source = faas_test_support::python::http_function(
///     "    def do_GET(self):\n        self.reply(b\"pong\")\n",
/// );
/// assert!(source.contains("def do_GET"));
/// ```
pub fn http_function(methods: &str) -> String {
    format!("{PRELUDE}{methods}{SERVE}")
}

/// Writes [`http_function`] of `methods` to `dir/name` and returns its
/// path (deploy it with `envProcess = "python3 <path>"`).
pub fn write_http_function(dir: &Path, name: &str, methods: &str) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, http_function(methods))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn the_server_answers_on_its_port() {
        let python = std::process::Command::new("python3").arg("--version").output();
        if python.is_err() {
            eprintln!("skipping: python3 is not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let methods = "    def do_GET(self):\n        self.reply(b\"pong \" + os.environ[\"PORT\"].encode(), 201)\n";
        let script = write_http_function(dir.path(), "pong.py", methods).unwrap();
        let port = crate::process::free_port().unwrap();
        let mut child = tokio::process::Command::new("python3")
            .arg(&script)
            .env("PORT", port.to_string())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut stream = loop {
            match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                Ok(stream) => break stream,
                Err(e) => assert!(Instant::now() < deadline, "the server never listened: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.0 201"), "{response}");
        assert!(response.ends_with(&format!("pong {port}")), "{response}");
        let _ = child.kill().await;
    }
}
