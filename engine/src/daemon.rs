//! `skiff daemon`: owns the data root, opens the store, serves the API until a signal.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};

use crate::config::Config;
use crate::daemon_files::{bind_socket, DataRootLock, PidFile};

pub fn run(config: Config) -> anyhow::Result<()> {
    init_logging(&config.log_level);
    // Two workers are plenty for a device and keep idle memory low.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .thread_name("skiff")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let _lock = DataRootLock::acquire(&config.data_root)?;
    std::fs::create_dir_all(&config.exec_root)
        .with_context(|| format!("cannot create exec root {}", config.exec_root.display()))?;
    let _pidfile = config.pidfile.as_deref().map(PidFile::create).transpose()?;
    let store = open_store(&config)?;
    let listener = bind_socket(&config.socket)?;
    let listener = tokio::net::UnixListener::from_std(listener)
        .context("cannot register the socket with the runtime")?;
    let built = crate::backends::build(&config, store)?;
    // live restore: reattach to the shims of running containers before serving, so the
    // first request already sees them; a dead shim never blocks this (timeouts inside)
    let live = built
        .containers
        .restore()
        .await
        .context("cannot load the containers")?;
    let backends = built.backends;
    tracing::info!(
        socket = %config.socket.display(),
        data_root = %config.data_root.display(),
        startup_ms = started.elapsed().as_millis() as u64,
        running_containers = live,
        "skiff daemon listening"
    );
    skiff_api::serve(listener, backends, shutdown_signal()).await;
    // containers keep running: their shims outlive the daemon (live restore picks them up)
    let _ = std::fs::remove_file(&config.socket);
    tracing::info!("skiff daemon stopped");
    Ok(())
}

fn open_store(config: &Config) -> anyhow::Result<Arc<skiff_storage::Store>> {
    let store =
        skiff_storage::Store::open(&config.data_root, skiff_storage::StoreOptions::default())
            .with_context(|| format!("cannot open the store at {}", config.data_root.display()))?;
    Ok(Arc::new(store))
}

async fn shutdown_signal() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the daemon with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
}

fn init_logging(level: &str) {
    let level = if level == "fatal" { "error" } else { level };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},hyper=warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// `skiff check`: takes the data-root lock (so it never races a running daemon), opens the
/// store read-only (no recovery: it reports damage instead of repairing it) and lists every
/// problem. Staging leftovers in tmp/ are not problems: they were never visible.
pub fn check(data_root: &std::path::Path, deep: bool) -> anyhow::Result<ExitCode> {
    let _lock = DataRootLock::acquire(data_root)?;
    let store =
        skiff_storage::Store::open_readonly(data_root, skiff_storage::StoreOptions::default())
            .with_context(|| format!("cannot open the store at {}", data_root.display()))?;
    let problems = store.check(deep).context("cannot check the store")?;
    if problems.is_empty() {
        println!("store at {} is consistent", data_root.display());
        return Ok(ExitCode::SUCCESS);
    }
    for p in &problems {
        println!("{p}");
    }
    eprintln!("{} problem(s) found", problems.len());
    Ok(ExitCode::FAILURE)
}
