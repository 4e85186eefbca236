//! `faas-healthcheck`: the health check command of function containers.
//!
//! Asks the container's `fwatchdog` for `GET /_/health` on
//! `127.0.0.1:$port` (`port` is the watchdog's own variable, default 8080)
//! and exits 0 on a 200 answer, 1 otherwise, printing why. Standard
//! library only, so that it links statically into `FROM scratch` images.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let port = std::env::var("port").ok().and_then(|p| p.trim().parse::<u16>().ok()).unwrap_or(8080);
    match check(SocketAddr::from(([127, 0, 0, 1], port))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("faas-healthcheck: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// One health request; `Err` says why the watchdog is not healthy.
fn check(addr: SocketAddr) -> Result<(), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /_/health HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(format!("cannot read the answer: {e}")),
        }
    }
    let status_line = String::from_utf8_lossy(&head[..read]);
    match status_line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        Some(code) => Err(format!("/_/health answered {code}")),
        None => Err(format!("unreadable answer {status_line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 256];
            let n = conn.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"GET /_/health HTTP/1.0\r\n"));
            conn.write_all(answer).unwrap();
        });
        addr
    }

    #[test]
    fn healthy_only_on_200() {
        assert_eq!(check(serve_once(b"HTTP/1.1 200 OK\r\n\r\nok")), Ok(()));
        assert_eq!(
            check(serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")),
            Err("/_/health answered 503".into())
        );
        let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert!(check(closed).unwrap_err().contains("cannot connect"));
    }
}
