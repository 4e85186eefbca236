//! Part of scenario 11: a 10 GiB upload to a function against the
//! gateway's `--max-body` (its default, 64 MiB), once with the length
//! declared and once chunked (the length unknown until the end): the
//! gateway must answer 413 at the limit without holding the body. The
//! function, `wc -c` in fork mode, reads the whole body before it answers,
//! so nothing but the limit can end the upload.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{fmt, Ctx};
use crate::api::{deployment, Api};
use crate::procs::{footprint, which, Gateway, RssSampler};
use crate::report::{table, Target};
use crate::Res;

/// The upload's size.
const TOTAL: u64 = 10 << 30;
/// The gateway's default `--max-body`.
const LIMIT: u64 = 64 << 20;
/// Bytes per write.
const CHUNK: usize = 64 * 1024;
/// The longest an upload may take to be answered.
const ANSWER_WITHIN: Duration = Duration::from_secs(120);

/// What one upload came to.
struct Upload {
    status: String,
    /// Body bytes written before the answer arrived.
    sent: u64,
    took: Duration,
}

/// POSTs [`TOTAL`] bytes to `path`, declared or chunked, writing until
/// the gateway answers; the status line and what was sent by then.
async fn upload(addr: SocketAddr, path: &str, declared: bool) -> Res<Upload> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut read, mut write) = stream.into_split();
    let framing = if declared { format!("Content-Length: {TOTAL}") } else { "Transfer-Encoding: chunked".to_owned() };
    let head =
        format!("POST {path} HTTP/1.1\r\nHost: upload\r\nContent-Type: application/octet-stream\r\n{framing}\r\n\r\n");
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        let data = Bytes::from(vec![b'x'; CHUNK]);
        let chunk_head = format!("{CHUNK:x}\r\n");
        let mut left = TOTAL;
        while left > 0 {
            if !declared {
                write.write_all(chunk_head.as_bytes()).await?;
            }
            write.write_all(&data).await?;
            if !declared {
                write.write_all(b"\r\n").await?;
            }
            left -= CHUNK as u64;
            counter.fetch_add(CHUNK as u64, Ordering::Relaxed);
        }
        if !declared {
            write.write_all(b"0\r\n\r\n").await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let status = tokio::time::timeout(ANSWER_WITHIN, async {
        loop {
            let n = read.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            answer.extend_from_slice(&buf[..n]);
            if let Some(end) = answer.windows(2).position(|w| w == b"\r\n") {
                return Ok(Some(String::from_utf8_lossy(&answer[..end]).into_owned()));
            }
        }
    })
    .await;
    let took = started.elapsed();
    let sent = sent.load(Ordering::Relaxed);
    writer.abort();
    let status = match status {
        Ok(Ok(Some(line))) => line,
        Ok(Ok(None)) => "connection closed without an answer".to_owned(),
        Ok(Err(e)) => format!("read failed: {e}"),
        Err(_) => format!("no answer within {ANSWER_WITHIN:?}"),
    };
    Ok(Upload { status, sent, took })
}

/// Runs both uploads; the report's Markdown and targets.
pub async fn run(ctx: &Ctx) -> Res<(String, Vec<Target>)> {
    let gateway = Gateway::start(&ctx.bins, &ctx.work, "gateway-upload")?;
    let api = Api::new(gateway.addr);
    let wc = which("wc").ok_or("`wc` is not on PATH")?.display().to_string();
    api.deploy(&deployment("upload-count", &format!("{wc} -c"), "streaming", Some(1))).await?;
    api.first_answer("upload-count", &Bytes::from_static(b"ready?"), b"6\n", Duration::from_secs(20)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rest = footprint(gateway.pid())?;

    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for (what, declared) in [("Content-Length: 10 GiB", true), ("chunked, 10 GiB", false)] {
        eprintln!("upload: {what}");
        let sampler = RssSampler::start(gateway.pid());
        let done = upload(gateway.addr, "/function/upload-count", declared).await?;
        let peak_kb = sampler.finish();
        let growth_mb = peak_kb.saturating_sub(rest.rss_kb) as f64 / 1024.0;
        let refused = done.status.starts_with("HTTP/1.1 413");
        rows.push(vec![
            what.to_owned(),
            format!("`{}`", done.status),
            fmt(done.sent as f64 / 1024.0 / 1024.0, 1),
            fmt(done.took.as_secs_f64(), 2),
            format!("{:.1} (+{growth_mb:.1})", peak_kb as f64 / 1024.0),
        ]);
        targets.push(Target {
            what: format!("10 GiB upload ({what}) refused with 413"),
            goal: "413".into(),
            measured: done.status.clone(),
            met: refused,
        });
        targets.push(Target::at_most(&format!("gateway RSS growth, 10 GiB upload ({what})"), 16.0, growth_mb, " MB"));
        targets.push(Target::at_most(
            &format!("time to the 413, 10 GiB upload ({what})"),
            30.0,
            done.took.as_secs_f64(),
            " s",
        ));
    }
    let mut body = format!(
        "\n**10 GiB upload.** A gateway with the default `--max-body` ({} MiB) and a function that reads its \
         whole body before it answers (`wc -c`, fork mode), so only the limit can stop the upload; the harness writes 10 GiB over a raw connection until the gateway answers, once declaring \
         the length and once chunked (the gateway counts the body as it arrives). \"Sent\" is what the harness \
         had written when the answer came (socket buffers included). The gateway's RSS was {:.1} MiB at rest, \
         sampled every 5 ms during each upload.\n\n",
        LIMIT >> 20,
        rest.rss_kb as f64 / 1024.0
    );
    body.push_str(&table(&["upload", "answer", "MiB sent by then", "seconds", "gateway RSS peak MiB"], &rows));
    Ok((body, targets))
}
