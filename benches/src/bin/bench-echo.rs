//! `bench-echo`: the native function of the benchmarks, a minimal HTTP/1
//! server on `127.0.0.1:$PORT` answering every request with 200 and the
//! request's own body streamed back (as small as a hyper server gets, so
//! the platform's overhead is what the harness measures).

use std::convert::Infallible;
use std::process::ExitCode;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

async fn echo(request: Request<Incoming>) -> Result<Response<Incoming>, Infallible> {
    Ok(Response::new(request.into_body()))
}

async fn serve(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(echo)).await;
        });
    }
}

fn main() -> ExitCode {
    let Some(port) = std::env::var("PORT").ok().and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("bench-echo: set PORT to the port to listen on");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench-echo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(port)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-echo: {e}");
            ExitCode::FAILURE
        }
    }
}
