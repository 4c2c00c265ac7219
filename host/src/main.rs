//! The `switchyard` command: `init` and `serve`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchyard::config::Config;

/// jemalloc rather than the system allocator: the host allocates for every request, event
/// and delivery from many threads, and the benchmark measured a quarter less CPU per
/// event with it with one receiver (docs/performance-history.md, Round 7).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "A self-hosted, WebAssembly-extensible event router"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a tenant with a super-admin API account and user in an empty data dir;
    /// prints their credentials as JSON, once.
    Init {
        /// The data directory.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The tenant's name.
        #[arg(long, default_value = switchyard::DEFAULT_TENANT)]
        tenant: String,
        /// The URL clients reach the host at.
        #[arg(long)]
        public_url: Option<String>,
        /// A TOML config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the router. On an empty data dir it runs `init` first and prints its JSON.
    Serve {
        /// A TOML config file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The data directory.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
}

fn load(config: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(Config::load(
        config.map(PathBuf::as_path),
        std::env::vars(),
    )?)
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    switchyard::runtime_builder().build()?.block_on(cli())
}

async fn cli() -> anyhow::Result<()> {
    switchyard::init_logging();

    match Cli::parse().command {
        Command::Init {
            data,
            tenant,
            public_url,
            config,
        } => {
            let mut config = load(config.as_ref())?;
            if let Some(data) = data {
                config.data_dir = data;
            }
            if let Some(url) = public_url {
                config.public_url = url;
            }
            print_json(&switchyard::init(&config, &tenant)?)
        }
        Command::Serve {
            config,
            data,
            listen,
        } => {
            let mut config = load(config.as_ref())?;
            if let Some(data) = data {
                config.data_dir = data;
            }
            if let Some(listen) = listen {
                config.listen = listen;
            }
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            // The port bound, for the URLs handed out (see `Config::public_url`).
            config.listen = listener.local_addr()?;
            if let Some(first) = switchyard::init_if_empty(&config)? {
                eprintln!(
                    "First start: created tenant {:?}. Keep these credentials; they are shown once:",
                    first.tenant
                );
                print_json(&first)?;
            }
            switchyard::run(config, listener, shutdown_signal()).await
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
