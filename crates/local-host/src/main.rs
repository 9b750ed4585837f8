//! `cfe-host up`: run a Spin application locally on wasmtime, with `spin up`'s flags.

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use local_host::server::{App, HostConfig};

#[derive(Parser)]
#[command(
    name = "cfe-host",
    about = "Spin-compatible local host for ClientFlow Edge (dev and test)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the application described by a spin.toml, like `spin up`.
    Up(UpArgs),
}

#[derive(clap::Args)]
struct UpArgs {
    /// The application manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    from: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Where key-value and SQLite files live.
    #[arg(long, default_value = ".spin")]
    state_dir: PathBuf,
    /// Runtime config file: `type = "spin"` stores and databases, `type = "redis"` key-value.
    #[arg(long)]
    runtime_config_file: Option<PathBuf>,
    /// Application variable, `name=value`; may be repeated.
    #[arg(long = "variable", value_parser = parse_variable)]
    variables: Vec<(String, String)>,
    /// Directory for wasmtime's compiled-code cache (default: <state-dir>/wasmtime-cache).
    #[arg(long, env = "CFE_HOST_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

fn parse_variable(s: &str) -> Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("expected name=value, got {s:?}"))?;
    Ok((k.to_string(), v.to_string()))
}

fn main() -> Result<()> {
    // Like Spin, a `.env` file in the working directory feeds SPIN_VARIABLE_* values.
    dotenvy::dotenv().ok();
    let Command::Up(args) = Cli::parse().command;
    local_host::faults::check_env().context("CFE_FAULT_SQLITE / CFE_FAULT_KV")?;
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| args.state_dir.join("wasmtime-cache"));
    // wasmtime's cache wants an absolute directory.
    let cache_dir = std::path::absolute(&cache_dir)
        .with_context(|| format!("resolving cache dir {}", cache_dir.display()))?;
    let config = HostConfig {
        manifest: args.from,
        state_dir: args.state_dir,
        runtime_config: args.runtime_config_file,
        variables: args.variables,
        cache_dir: Some(cache_dir),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = Arc::new(App::load(&config).context("loading the application")?);
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        eprintln!("cfe-host: serving on http://{}", listener.local_addr()?);
        app.serve(listener).await
    })
}
