//! Scenario 5: a large body streamed through the gateway to a `cat`
//! function and back, against the same bytes echoed over a direct
//! loopback connection.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST};
use http::Request;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::{fmt, Ctx};
use crate::api::{deployment, Api};
use crate::procs::{footprint, Gateway, RssSampler};
use crate::report::{table, Section, Target};
use crate::stats::{median, spread_pct};
use crate::Res;

const BLOCK: usize = 64 * 1024;

/// A pseudo-random block; the stream is this block repeated.
fn block() -> Bytes {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..BLOCK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Checks that received bytes continue the repeated block.
struct Checker {
    block: Bytes,
    offset: u64,
}

impl Checker {
    fn check(&mut self, mut data: &[u8]) -> Result<(), String> {
        while !data.is_empty() {
            let at = (self.offset % BLOCK as u64) as usize;
            let n = data.len().min(BLOCK - at);
            if data[..n] != self.block[at..at + n] {
                return Err(format!("wrong bytes at offset {}", self.offset));
            }
            self.offset += n as u64;
            data = &data[n..];
        }
        Ok(())
    }
}

/// The request body: `total` bytes of the repeated block.
struct Pattern {
    block: Bytes,
    remaining: u64,
}

impl http_body::Body for Pattern {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(BLOCK as u64) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(self.block.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Through the gateway: POST, read the answer while sending, check it.
async fn through_gateway(gateway: std::net::SocketAddr, total: u64, block: &Bytes) -> Res<Duration> {
    let started = Instant::now();
    let stream = TcpStream::connect(gateway).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::post("/function/stream-cat")
        .header(HOST, "127.0.0.1")
        .header(CONTENT_LENGTH, total)
        .body(Pattern { block: block.clone(), remaining: total })?;
    let response = sender.send_request(request).await?;
    if response.status() != 200 {
        return Err(format!("status {}", response.status()).into());
    }
    let mut body = response.into_body();
    let mut checker = Checker { block: block.clone(), offset: 0 };
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            checker.check(&data)?;
        }
    }
    if checker.offset != total {
        return Err(format!("got {} bytes back, not {total}", checker.offset).into());
    }
    Ok(started.elapsed())
}

/// The baseline: the same bytes echoed by a plain loopback server.
async fn direct(total: u64, block: &Bytes) -> Res<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let echo = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::with_capacity(BLOCK, read);
        tokio::io::copy_buf(&mut read, &mut write).await?;
        write.shutdown().await
    });
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut read, mut write) = stream.into_split();
    let data = block.clone();
    let sender = tokio::spawn(async move {
        let mut left = total;
        while left > 0 {
            let n = left.min(BLOCK as u64) as usize;
            write.write_all(&data[..n]).await?;
            left -= n as u64;
        }
        write.shutdown().await
    });
    let mut checker = Checker { block: block.clone(), offset: 0 };
    let mut buf = vec![0u8; BLOCK];
    loop {
        let n = read.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        checker.check(&buf[..n])?;
    }
    sender.await??;
    echo.await??;
    if checker.offset != total {
        return Err(format!("got {} bytes back, not {total}", checker.offset).into());
    }
    Ok(started.elapsed())
}

pub async fn run(ctx: &Ctx) -> Res<Section> {
    let total = ctx.stream_mib * 1024 * 1024;
    let block = block();
    // The sync-call body limit (`--max-body`, 64 MiB by default) raised to
    // the streamed size.
    let max_body = format!("{total}");
    let gateway = Gateway::start_with(&ctx.bins, &ctx.work, "gateway-stream", &["--max-body", &max_body])?;
    let api = Api::new(gateway.addr);
    api.deploy(&deployment("stream-cat", &ctx.bins.cat.display().to_string(), "streaming", None)).await?;
    api.first_ok("stream-cat", &Bytes::from_static(b"ready?"), Duration::from_secs(20)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rest = footprint(gateway.pid())?;

    let mib = |d: Duration| total as f64 / 1024.0 / 1024.0 / d.as_secs_f64();
    let (mut via_gateway, mut via_socket, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ctx.rounds {
        eprintln!("streaming {} MiB, round {}", ctx.stream_mib, round + 1);
        let d = direct(total, &block).await?;
        via_socket.push(mib(d));
        let sampler = RssSampler::start(gateway.pid());
        let g = through_gateway(gateway.addr, total, &block).await;
        peaks.push(sampler.finish());
        via_gateway.push(mib(g?));
        eprintln!("  direct {:.0} MiB/s, gateway {:.0} MiB/s", mib(d), via_gateway[round]);
    }
    let peak_kb = peaks.iter().copied().max().unwrap_or(0);
    let growth_mb = peak_kb.saturating_sub(rest.rss_kb) as f64 / 1024.0;
    let ratio = median(&via_gateway) / median(&via_socket);
    let rows = vec![
        vec![
            "direct loopback echo".into(),
            format!("{} ±{:.0}%", fmt(median(&via_socket), 0), spread_pct(&via_socket)),
            "-".into(),
        ],
        vec![
            "gateway → `cat` (streaming mode) → back".into(),
            format!("{} ±{:.0}%", fmt(median(&via_gateway), 0), spread_pct(&via_gateway)),
            format!(
                "{:.1} at rest, {:.1} peak (+{growth_mb:.1})",
                rest.rss_kb as f64 / 1024.0,
                peak_kb as f64 / 1024.0
            ),
        ],
    ];
    let mut body = format!(
        "{} MiB POSTed with a Content-Length on one connection and read back while it is sent, every byte \
         checked; the baseline sends the same bytes through a plain loopback TCP echo (64 KiB buffers) in \
         the harness. The gateway's RSS is sampled every 5 ms during its transfers. Ratio gateway ÷ \
         direct: **{}**.\n\n",
        ctx.stream_mib,
        fmt(ratio, 2)
    );
    body.push_str(&table(&["path", "MiB/s (round trip)", "gateway RSS MiB"], &rows));
    let targets = vec![
        Target::at_least(&format!("{} MiB stream: gateway ÷ direct socket", ctx.stream_mib), 0.5, ratio, "×"),
        Target::at_most("gateway RSS growth while streaming", 32.0, growth_mb, " MB"),
    ];
    Ok(Section { title: "5. Streaming".into(), body, targets })
}
