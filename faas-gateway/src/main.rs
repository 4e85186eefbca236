//! `faas-gateway`: serves the OpenFaaS-compatible API over the provider
//! compiled in. See `faas-gateway --help`.

use std::process::ExitCode;

use clap::Parser;
use faas_gateway::cli::Args;

/// mimalloc rather than glibc malloc (`faas_upstream::allocator`).
#[global_allocator]
static ALLOCATOR: faas_upstream::allocator::Allocator = faas_upstream::allocator::Allocator;

fn main() -> ExitCode {
    faas_upstream::allocator::purge_promptly();
    let args = Args::parse();
    if let Err(err) = faas_gateway::logging::init(args.log_format) {
        eprintln!("faas-gateway: {err}");
        return ExitCode::FAILURE;
    }
    let runtime = match faas_upstream::Shards::main_runtime(args.serving_threads()) {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("faas-gateway: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(faas_gateway::server::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("faas-gateway: error: {}", err.report());
            ExitCode::FAILURE
        }
    }
}
