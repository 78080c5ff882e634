//! The `skiff` binary: the daemon, the store check, and (later) offline delta tools.

mod backends;
mod config;
mod containers;
mod daemon;
mod daemon_files;
mod delta_cli;
mod error;
mod images;
mod registry;
mod system;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "skiff",
    version,
    about = "A lightweight Moby-compatible container engine for IoT devices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the Docker Engine API (defaults need no config file).
    Daemon(DaemonArgs),
    /// Verify the whole store and list every problem; exits 1 when any is found.
    Check(CheckArgs),
    /// Offline delta tools: create, apply and inspect layer deltas.
    Delta(delta_cli::DeltaArgs),
    /// The per-container shim the daemon starts (internal).
    #[command(hide = true)]
    Shim {
        /// The container's shim state directory (holds shim.json).
        #[arg(long = "state-dir", value_name = "DIR")]
        state_dir: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct DaemonArgs {
    /// Root of persistent state (images, layers, containers).
    #[arg(long = "data-root", value_name = "DIR")]
    data_root: Option<PathBuf>,
    /// Root of runtime state (sockets, pid files).
    #[arg(long = "exec-root", value_name = "DIR")]
    exec_root: Option<PathBuf>,
    /// Address to listen on, e.g. unix:///run/skiff/skiff.sock.
    #[arg(short = 'H', long = "host", value_name = "ADDR")]
    hosts: Vec<String>,
    /// Daemon configuration file in daemon.json vocabulary.
    #[arg(long = "config-file", value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// Registry (host:port or CIDR) reached over plain HTTP; repeatable.
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    insecure_registries: Vec<String>,
    /// Mirror for Docker Hub pulls; repeatable.
    #[arg(long = "registry-mirror", value_name = "URL")]
    registry_mirrors: Vec<String>,
    /// Write the daemon's pid here.
    #[arg(long = "pidfile", short = 'p', value_name = "FILE")]
    pidfile: Option<PathBuf>,
    /// debug, info, warn, error or fatal.
    #[arg(long = "log-level", short = 'l', value_name = "LEVEL")]
    log_level: Option<String>,
    /// Layers pulled at once per image.
    #[arg(long = "max-concurrent-downloads", value_name = "N")]
    max_concurrent_downloads: Option<usize>,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Root of persistent state to check.
    #[arg(long = "data-root", value_name = "DIR", default_value = config::DEFAULT_DATA_ROOT)]
    data_root: PathBuf,
    /// Also recompute every layer's diff_id from its files (reads everything).
    #[arg(long)]
    deep: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        // Before any tokio runtime or thread exists: the shim forks to detach.
        Command::Shim { state_dir } => return skiff_shim::run_shim_main(&state_dir),
        Command::Daemon(args) => run_daemon(args),
        Command::Check(args) => daemon::check(&args.data_root, args.deep),
        Command::Delta(args) => delta_cli::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("skiff: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_daemon(args: DaemonArgs) -> anyhow::Result<ExitCode> {
    let config = config::Config::load(config::FlagConfig {
        data_root: args.data_root,
        exec_root: args.exec_root,
        hosts: args.hosts,
        config_file: args.config_file,
        pidfile: args.pidfile,
        log_level: args.log_level,
        insecure_registries: args.insecure_registries,
        registry_mirrors: args.registry_mirrors,
        max_concurrent_downloads: args.max_concurrent_downloads,
    })?;
    daemon::run(config)?;
    Ok(ExitCode::SUCCESS)
}
