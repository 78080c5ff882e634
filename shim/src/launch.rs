//! Starting a shim from the engine.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::client::ShimClient;
use crate::error::ShimError;
use crate::server::{ERROR_FILE, OPTIONS_FILE};
use crate::types::LaunchOptions;

/// Spawns `<skiff_exe> shim --state-dir <dir>` (options passed as JSON in <dir>/shim.json),
/// which detaches (double fork, setsid, never a child of the daemon), creates the task and
/// serves ttrpc on <dir>/shim.sock. Returns once the task is Created (init pid known).
/// A failed create (e.g. executable not found) is returned as [`ShimError::Launch`] with the
/// runtime's message; the shim has exited by then.
pub async fn launch(skiff_exe: &Path, opts: &LaunchOptions) -> Result<ShimClient, ShimError> {
    let dir = &opts.state_dir;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| ShimError::io(format!("create shim state dir {}", dir.display()), e))?;
    for stale in ["exit.json", ERROR_FILE] {
        let _ = tokio::fs::remove_file(dir.join(stale)).await;
    }
    let body = serde_json::to_vec_pretty(opts).map_err(|e| ShimError::Json {
        what: "shim options".into(),
        source: e,
    })?;
    tokio::fs::write(dir.join(OPTIONS_FILE), body)
        .await
        .map_err(|e| ShimError::io(format!("write {}", dir.join(OPTIONS_FILE).display()), e))?;

    let mut child = tokio::process::Command::new(skiff_exe)
        .arg("shim")
        .arg("--state-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| ShimError::io(format!("run {} shim", skiff_exe.display()), e))?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        // The shim writes one line when the task is created (or failed), then drops stdout.
        let _ = BufReader::new(stdout).read_line(&mut line).await;
    }
    // The first process exits as soon as the shim has its own session.
    let _ = child.wait().await;

    let line = line.trim();
    if line.starts_with("ready") {
        return ShimClient::connect(dir).await;
    }
    if let Some(message) = line.strip_prefix("error ") {
        return Err(ShimError::Launch(message.to_string()));
    }
    let recorded = tokio::fs::read_to_string(dir.join(ERROR_FILE))
        .await
        .unwrap_or_default();
    Err(ShimError::Launch(if recorded.is_empty() {
        "the shim exited without reporting; check that the skiff binary supports `skiff shim`"
            .into()
    } else {
        recorded
    }))
}
