//! `cargo run --release -p switchyard-bench [-- --quick] [--scenario NAME] [--repeat N]
//! [--out FILE]`

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// The allocator `switchyard serve` ships with: the host under test runs in this
/// executable (`--host-config`), and the baseline gets the same one.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Benchmarks Switchyard against a plain HTTP client on this machine's loopback.
#[derive(Debug, Parser)]
struct Args {
    /// Small sizes: finishes in about ten seconds.
    #[arg(long)]
    quick: bool,
    /// Run only these scenario groups (repeatable): fanout-1, fanout-10, transform, rate,
    /// drain, restart, plugin-calls.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Run the fan-out groups this many times (a full run: 3, `--quick`: 1), each time
    /// between baselines of its own; the table ends with the spread of their ratios.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    repeat: Option<u16>,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/bench/results.json")]
    out: PathBuf,
    /// Run a host with this JSON config instead (how the harness starts its hosts).
    #[arg(long, hide = true, value_name = "FILE")]
    host_config: Option<PathBuf>,
    /// Run the relay with this JSON config instead (the forwarding limit).
    #[arg(long, hide = true, value_name = "FILE")]
    relay_config: Option<PathBuf>,
}

/// The host, and the relay it is compared with, run on the runtime `switchyard serve`
/// runs on; the harness (publishers, receivers, the baseline's client) on tokio's
/// defaults.
fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(config) = &args.host_config {
        let runtime = switchyard::runtime_builder().build()?;
        return runtime.block_on(switchyard_bench::host::serve(config));
    }
    if let Some(config) = &args.relay_config {
        let runtime = switchyard::runtime_builder().build()?;
        return runtime.block_on(switchyard_bench::relay::serve(config));
    }
    tokio::runtime::Runtime::new()?.block_on(harness(args))
}

async fn harness(args: Args) -> anyhow::Result<()> {
    if let Some(unknown) = args
        .scenarios
        .iter()
        .find(|s| !switchyard_bench::SCENARIOS.contains(&s.as_str()))
    {
        anyhow::bail!(
            "unknown scenario `{unknown}`; known: {}",
            switchyard_bench::SCENARIOS.join(", ")
        );
    }
    let mut sizes = if args.quick {
        switchyard_bench::Sizes::quick()
    } else {
        switchyard_bench::Sizes::full()
    };
    if let Some(repeat) = args.repeat {
        sizes.repeats = usize::from(repeat);
    }
    let exe = std::env::current_exe().context("cannot find the bench executable")?;
    let report = switchyard_bench::run(sizes, &args.scenarios, &exe).await?;
    print!("{}", switchyard_bench::table(&report));
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("\nwrote {}", args.out.display());
    Ok(())
}
