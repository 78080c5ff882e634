//! Daemon start: loads every container record, reconnects to the shims of running
//! containers (live restore), records exits that happened while the daemon was away, and
//! starts containers whose restart policy says so.
//!
//! Nothing here may block startup on a dead shim: liveness is read from /proc (a zombie
//! is dead) and every connect has a timeout.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::restart::Policy;
use super::rootfs;
use super::service::{Container, ContainerService};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

impl ContainerService {
    /// Loads and restores every container; returns how many were found running.
    pub async fn restore(&self) -> crate::error::Result<usize> {
        let records = self.inner.records.clone();
        let (recs, broken) = tokio::task::spawn_blocking(move || records.load_all())
            .await
            .map_err(|e| crate::error::Error::Config(format!("restore task failed: {e}")))??;
        for dir in broken {
            // a create cut short before its record was durable: never visible, remove it
            tracing::warn!(dir = %dir.display(), "removing a container directory without a valid record");
            let _ = rootfs::unmount_rootfs(&dir);
            let _ = std::fs::remove_dir_all(&dir);
        }
        let mut live = 0;
        let mut to_start = Vec::new();
        for rec in recs {
            let was_running = rec.state.running;
            let was_restarting = rec.state.restarting;
            let c = self.register(rec);
            if was_running {
                if self.reconnect(&c).await {
                    live += 1;
                    continue;
                }
            } else {
                self.cleanup_stopped(&c).await;
            }
            let ctr = c.ctr.lock().await;
            let policy = Policy::from_host_config(&ctr.rec.host_config).unwrap_or(Policy::NO);
            if !ctr.rec.state.running
                // `always` comes back even after a manual stop; `unless-stopped` does not
                && (policy.start_on_boot(ctr.rec.manually_stopped)
                    || (was_restarting && !ctr.rec.manually_stopped))
                && ctr.restart_timer.is_none()
            {
                to_start.push(c.clone());
            }
        }
        self.cleanup_state_dirs();
        for c in to_start {
            let mut ctr = c.ctr.lock().await;
            if ctr.rec.state.running || ctr.removing {
                continue;
            }
            // started by the daemon: the policy applies to its next exit again
            ctr.rec.manually_stopped = false;
            if let Err(e) = self.start_locked(&c, &mut ctr).await {
                tracing::warn!(id = %c.id, "starting by restart policy failed: {}", e.message);
            }
        }
        Ok(live)
    }

    /// A container recorded as running: reattach to its shim, or record the exit it had.
    async fn reconnect(&self, c: &Arc<Container>) -> bool {
        let connected = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            skiff_shim::ShimClient::connect(&c.state_dir),
        )
        .await
        {
            Ok(Ok(shim)) if shim.shim_pid().is_none_or(skiff_shim::process_alive) => Some(shim),
            Ok(Ok(_)) => None,
            Ok(Err(e)) => {
                tracing::info!(id = %c.id, "shim not reachable: {e}");
                None
            }
            Err(_) => {
                tracing::warn!(id = %c.id, "connecting to the shim timed out");
                None
            }
        };
        let mut ctr = c.ctr.lock().await;
        if let Some(shim) = connected {
            let state = tokio::time::timeout(CONNECT_TIMEOUT, shim.state()).await;
            if let Ok(Ok(st)) = state {
                let shim = Arc::new(shim);
                ctr.run_gen += 1;
                ctr.shim = Some(shim.clone());
                ctr.started = Some(std::time::Instant::now());
                if st.pid != 0 {
                    ctr.rec.state.pid = st.pid;
                }
                let gen = ctr.run_gen;
                drop(ctr);
                tracing::info!(id = %c.id, pid = st.pid, "reattached to a running container");
                // the waiter sees an exit that happened while we were away at once
                self.spawn_waiter(c.clone(), shim, gen);
                return true;
            }
        }
        // the shim is gone: take the exit it recorded, else say it died
        drop(ctr);
        let (exit, error) = match skiff_shim::read_exit_file(&c.state_dir) {
            Some(e) => (e, String::new()),
            None => {
                self.reap_orphan(c).await;
                (
                    skiff_shim::ExitInfo {
                        code: 255,
                        exited_at: Utc::now(),
                        oom_killed: false,
                    },
                    "shim died while the daemon was down".to_string(),
                )
            }
        };
        let mut ctr = c.ctr.lock().await;
        ctr.run_gen += 1;
        let gen = ctr.run_gen;
        drop(ctr);
        self.handle_exit(c, gen, exit, &error).await;
        false
    }

    async fn cleanup_stopped(&self, c: &Arc<Container>) {
        let dir = c.dir.clone();
        let state_dir = c.state_dir.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let _ = rootfs::unmount_rootfs(&dir);
            let _ = std::fs::remove_dir_all(&state_dir);
        })
        .await;
        let mut ctr = c.ctr.lock().await;
        if ctr.rec.mounted {
            ctr.rec.mounted = false;
            let _ = self.save(&ctr.rec);
        }
    }

    /// State directories of containers that no longer exist.
    fn cleanup_state_dirs(&self) {
        let root = self.inner.cfg.exec_root.join("c");
        let known: Vec<std::path::PathBuf> =
            self.all().iter().map(|c| c.state_dir.clone()).collect();
        if let Ok(rd) = std::fs::read_dir(&root) {
            for ent in rd.flatten() {
                if !known.contains(&ent.path()) {
                    let _ = std::fs::remove_dir_all(ent.path());
                }
            }
        }
    }
}
