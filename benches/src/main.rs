//! `faas-benches`: the load harness. Runs end-to-end scenarios against the
//! real release binaries (`faas-gateway`, `fwatchdog`, `bench-echo`), each
//! measured against its baseline in the same run, and prints (or writes)
//! the results as Markdown.
//!
//! ```text
//! cargo run -p faas-benches --release -- all --write BENCHMARKS.md
//! cargo run -p faas-benches --release -- invoke
//! ```

mod api;
mod load;
mod measure;
mod procs;
mod report;
mod scenarios;
mod stats;

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};

use procs::Binaries;
use report::{Environment, Section};
use scenarios::Ctx;

/// The harness's error type: any error, described.
type Res<T> = Result<T, BoxError>;
/// Any error, boxed.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// 1. Warm invoke in http mode: direct vs fwatchdog vs gateway.
    Invoke,
    /// 2. Fork mode: cat per request vs the harness's own spawn loop.
    Fork,
    /// 3. Cold start: deploy and scale from zero to the first 200.
    Cold,
    /// 4. Scale: 10,000 functions on one gateway.
    Scale,
    /// 5. Streaming 1 GiB through the gateway vs a loopback socket.
    Stream,
    /// 6. Idle footprint.
    Idle,
    /// 8. Forwarding to an instance: connection per call vs faas-upstream.
    Upstream,
    /// 7. The local provider's sandbox on and off.
    Sandbox,
    /// 9. Memory of the portal's history for 10,000 functions.
    History,
    /// 10. Soak: 30 min of mixed load (`--soak-duration`, `--quick`); not in `all`.
    Soak,
    /// 11. Faults and floods: idle, slow-loris, surplus connections; a 10 GiB upload.
    Faults,
    /// Every scenario, in order.
    All,
}

/// Measures the invoke path against baselines in the same run.
#[derive(Debug, Parser)]
#[command(name = "faas-benches")]
struct Args {
    /// Which scenario to run.
    #[arg(value_enum)]
    scenario: Scenario,
    /// Also write the report to this file (e.g. BENCHMARKS.md).
    #[arg(long)]
    write: Option<std::path::PathBuf>,
    /// Do not build the release binaries first (they must exist next to
    /// this executable).
    #[arg(long)]
    no_build: bool,
    /// Rounds of alternation per measurement.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measured seconds per load run.
    #[arg(long, default_value_t = 1.0)]
    secs: f64,
    /// Functions deployed by the scale scenario.
    #[arg(long, default_value_t = 10_000)]
    functions: usize,
    /// MiB streamed by the streaming scenario.
    #[arg(long, default_value_t = 1024)]
    stream_mib: u64,
    /// Samples of each cold start.
    #[arg(long, default_value_t = 20)]
    cold_samples: usize,
    /// How long the soak runs (`30m`, `2h`, `90s`).
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    soak_duration: std::time::Duration,
    /// The soak's quick mode: 3 minutes, written to `benches/soak-quick.*`.
    #[arg(long)]
    quick: bool,
    /// An of-watchdog binary (OpenFaaS's Go watchdog, built by hand): the
    /// fork scenario then also measures it, streaming `cat`, in the same
    /// alternation. It listens on every interface and serves metrics on
    /// port 8081, which must be free. Absent: that row is left out.
    #[arg(long, value_name = "PATH")]
    of_watchdog: Option<std::path::PathBuf>,
}

/// A duration as users write them, with faas-core's parser.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    faas_core::duration::parse(text).map_err(|e| e.to_string())
}

async fn run(args: &Args, ctx: &Ctx) -> Res<Vec<Section>> {
    let chosen = |s: Scenario| args.scenario == Scenario::All || args.scenario == s;
    let mut sections = Vec::new();
    if chosen(Scenario::Invoke) {
        let started = Instant::now();
        sections.push(scenarios::invoke::run(ctx).await?);
        eprintln!("invoke: done in {:.0} s", started.elapsed().as_secs_f64());
    }
    if chosen(Scenario::Fork) {
        let started = Instant::now();
        sections.push(scenarios::fork::run(ctx).await?);
        eprintln!("fork: done in {:.0} s", started.elapsed().as_secs_f64());
    }
    if chosen(Scenario::Cold) {
        let started = Instant::now();
        sections.push(scenarios::cold::run(ctx).await?);
        eprintln!("cold: done in {:.0} s", started.elapsed().as_secs_f64());
    }
    if chosen(Scenario::Scale) {
        let started = Instant::now();
        sections.push(scenarios::scale::run(ctx).await?);
        eprintln!("scale: done in {:.0} s", started.elapsed().as_secs_f64());
    }
    if chosen(Scenario::Stream) {
        let started = Instant::now();
        sections.push(scenarios::stream::run(ctx).await?);
        eprintln!("stream: done in {:.0} s", started.elapsed().as_secs_f64());
    }
    if chosen(Scenario::Idle) {
        let started = Instant::now();
        sections.push(scenarios::idle::run(ctx).await?);
        eprintln!("idle: done in {:.0} s", started.elapsed().as_secs_f64());
    }
    if chosen(Scenario::Upstream) {
        let started = Instant::now();
        sections.push(scenarios::upstream::run(ctx).await?);
        eprintln!("upstream: done in {:.0} s", started.elapsed().as_secs_f64());
    }
    if chosen(Scenario::Sandbox) {
        let started = Instant::now();
        sections.push(scenarios::sandbox::run(ctx).await?);
        eprintln!("sandbox: done in {:.0} s", started.elapsed().as_secs_f64());
    }
    if chosen(Scenario::History) {
        let started = Instant::now();
        sections.push(scenarios::history::run(ctx).await?);
        eprintln!("history: done in {:.0} s", started.elapsed().as_secs_f64());
    }
    if chosen(Scenario::Faults) {
        let started = Instant::now();
        sections.push(scenarios::flood::run(ctx).await?);
        eprintln!("faults: done in {:.0} s", started.elapsed().as_secs_f64());
    }
    // The soak runs for half an hour: only when asked for by name.
    if args.scenario == Scenario::Soak {
        let started = Instant::now();
        let plan = if args.quick {
            scenarios::soak::SoakPlan { duration: scenarios::soak::QUICK_DURATION, label: "soak-quick" }
        } else {
            scenarios::soak::SoakPlan { duration: args.soak_duration, label: "soak" }
        };
        sections.push(scenarios::soak::run(ctx, &plan).await?);
        eprintln!("soak: done in {:.0} s", started.elapsed().as_secs_f64());
    }
    Ok(sections)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let env = Environment::capture();
    let started = Instant::now();
    let result = (|| -> Res<(String, bool)> {
        let bins = Binaries::prepare(!args.no_build)?;
        let work = tempfile::Builder::new().prefix("faas-bench-").tempdir()?;
        let ctx = Ctx {
            bins,
            work: work.path().to_path_buf(),
            rounds: args.rounds.max(1),
            secs: args.secs.max(0.1),
            functions: args.functions.max(1),
            stream_mib: args.stream_mib.max(1),
            cold_samples: args.cold_samples.max(1),
            of_watchdog: args.of_watchdog.clone(),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let sections = runtime.block_on(run(&args, &ctx));
        // Stop every process the scenarios left before the runtime goes.
        drop(runtime);
        let sections = match sections {
            Ok(sections) => sections,
            Err(e) => {
                let _ = work.keep();
                return Err(e);
            }
        };
        let mut command =
            format!("cargo run -p faas-benches --release -- {}", format!("{:?}", args.scenario).to_lowercase());
        if args.scenario == Scenario::Soak {
            if args.quick {
                command.push_str(" --quick");
            } else {
                command.push_str(&format!(" --soak-duration {}s", args.soak_duration.as_secs()));
            }
        }
        if let Some(path) = &args.of_watchdog {
            command.push_str(&format!(" --of-watchdog {}", path.display()));
        }
        if let Some(path) = &args.write {
            command.push_str(&format!(" --write {}", path.display()));
        }
        // The soak asserts its pass criteria: a missed one fails the run.
        let soak_failed = args.scenario == Scenario::Soak && sections.iter().any(|s| s.targets.iter().any(|t| !t.met));
        Ok((report::render(&env, &command, &sections, started.elapsed()), soak_failed))
    })();
    match result {
        Ok((markdown, soak_failed)) => {
            println!("{markdown}");
            if let Some(path) = &args.write {
                if let Err(e) = std::fs::write(path, &markdown) {
                    eprintln!("faas-benches: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                eprintln!("wrote {}", path.display());
            }
            if soak_failed {
                eprintln!("faas-benches: the soak missed a pass criterion (see its targets)");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("faas-benches: {e}");
            ExitCode::FAILURE
        }
    }
}
