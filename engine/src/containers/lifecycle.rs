//! start / stop / kill / restart / pause / update / wait, the exit waiter and the restart
//! policy's timer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;
use skiff_api::ApiError;
use tokio::sync::oneshot;

use super::record::Record;
use super::restart::Policy;
use super::service::{internal, shim_err, spec_err, Container, ContainerService, Ctr, Status};
use super::spec::{self, EtcFiles, ImageRuntimeConfig};
use super::{etcfiles, rootfs, specreq};

/// How long a start waits for attach clients that were waiting for it to connect.
const ATTACH_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// After SIGKILL, how long to wait for the exit before giving up.
const KILL_WAIT: Duration = Duration::from_secs(30);

/// When to answer a `wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOn {
    NotRunning,
    NextExit,
    Removed,
}

/// Exit code for a failed start, as the docker CLI maps them: 127 not found, 126 not
/// executable, else 128.
fn start_failure_code(message: &str) -> i32 {
    let m = message.to_ascii_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied") {
        126
    } else {
        128
    }
}

/// Waits (bounded) until a shim process has exited; a zombie counts as gone.
async fn wait_gone(pid: Option<u32>) {
    let Some(pid) = pid else { return };
    for _ in 0..300 {
        if !skiff_shim::process_alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::warn!(
        pid,
        "the shim is still alive 3 s after its task was deleted"
    );
}

/// libcontainer says `executable 'x' not found in $PATH`; the docker CLI maps runc's words
/// (`exec: "x": executable file not found in $PATH`) to exit code 127, so say both.
fn docker_words(message: &str) -> String {
    if message.contains("executable file not found") {
        return message.to_string();
    }
    if let Some(rest) = message.split("executable '").nth(1) {
        if let Some((name, tail)) = rest.split_once('\'') {
            if tail.contains("not found") {
                return format!("{message}: exec: \"{name}\": executable file not found in $PATH");
            }
        }
    }
    message.to_string()
}

fn parse_signal(raw: &str) -> Result<i32, ApiError> {
    spec::parse_signal(raw).map_err(spec_err)
}

impl ContainerService {
    pub async fn start(&self, name: &str) -> Result<(), ApiError> {
        let c = self.get(name)?;
        let mut ctr = c.ctr.lock().await;
        if ctr.removing {
            return Err(ApiError::conflict(format!(
                "container {name} is marked for removal and cannot be started"
            )));
        }
        if ctr.rec.state.running {
            return Err(ApiError::not_modified());
        }
        if let Some(t) = ctr.restart_timer.take() {
            t.abort();
        }
        ctr.rec.manually_stopped = false;
        ctr.backoff = Default::default();
        self.start_locked(&c, &mut ctr).await
    }

    /// Starts the container; on failure records the exit (127/126/128 and `State.Error`),
    /// leaves nothing mounted or running, and honours AutoRemove.
    pub(crate) async fn start_locked(
        &self,
        c: &Arc<Container>,
        ctr: &mut Ctr,
    ) -> Result<(), ApiError> {
        match self.launch(c, ctr).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let code = start_failure_code(&e.message);
                ctr.rec
                    .state
                    .set_exited(code, Utc::now(), false, &e.message);
                ctr.rec.mounted = false;
                let _ = self.save(&ctr.rec);
                c.set_status(|s| {
                    s.running = false;
                    s.exits += 1;
                    s.exit_code = code;
                    s.error = e.message.clone();
                });
                self.publish("die", &ctr.rec, &[("exitCode", code.to_string())]);
                // pending attaches see the socket never come: they end
                ctr.pending_attach.clear();
                if ctr.rec.auto_remove() && !ctr.removing {
                    let svc = self.clone();
                    let c = c.clone();
                    tokio::spawn(async move {
                        if let Err(e) = svc.finish_remove(&c).await {
                            tracing::warn!(id = %c.id, "auto-remove after a failed start: {e}");
                        }
                    });
                }
                Err(e)
            }
        }
    }

    async fn launch(&self, c: &Arc<Container>, ctr: &mut Ctr) -> Result<(), ApiError> {
        // the previous run's shim unlinks its socket path as it exits: let it go first
        wait_gone(ctr.last_shim_pid.take()).await;
        let image = self.inner.images.resolve_image(&ctr.rec.image).await?;
        let image_rc = ImageRuntimeConfig::from_image_config(&image.config).map_err(spec_err)?;
        let runtime = self.runtime_config(&ctr.rec.runtime)?;
        let log = self.log_config(&ctr.rec)?;
        let init_path = if ctr.rec.host_config.get("Init").and_then(Value::as_bool) == Some(true) {
            Some(self.init_binary_path()?)
        } else {
            None
        };
        let rec = ctr.rec.clone();
        let dir = c.dir.clone();
        let state_dir = c.state_dir.clone();
        let lowers = image.lowers.clone();
        let volumes = self.inner.cfg.data_root.join("volumes");
        let prepared = crate::images::blocking(move || {
            prepare_bundle(
                &rec, &dir, &state_dir, &lowers, image_rc, init_path, &volumes,
            )
        })
        .await;
        let cleanup = |dir: PathBuf, state_dir: PathBuf| async move {
            let _ = tokio::task::spawn_blocking(move || {
                let _ = rootfs::unmount_rootfs(&dir);
                let _ = std::fs::remove_dir_all(&state_dir);
            })
            .await;
        };
        if let Err(e) = prepared {
            cleanup(c.dir.clone(), c.state_dir.clone()).await;
            return Err(e);
        }
        ctr.rec.mounted = true;
        let opts = skiff_shim::LaunchOptions {
            id: c.id.clone(),
            bundle: c.state_dir.clone(),
            state_dir: c.state_dir.clone(),
            runtime,
            terminal: ctr.rec.tty(),
            open_stdin: ctr.rec.config.get("OpenStdin").and_then(Value::as_bool) == Some(true),
            stdin_once: ctr.rec.config.get("StdinOnce").and_then(Value::as_bool) == Some(true),
            log,
        };
        let shim = match skiff_shim::launch(&self.inner.skiff_exe, &opts).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                // a shim that created the task but cannot be reached must not leave the
                // created container behind (runc's `init` would wait forever)
                let runtime = opts.runtime.clone();
                let id = c.id.clone();
                let shim_pid_file = c.state_dir.join("shim.pid");
                let _ = tokio::task::spawn_blocking(move || {
                    if let Ok(rt) = runtime.build() {
                        let _ = rt.delete(&id, true);
                    }
                    let pid = std::fs::read_to_string(&shim_pid_file)
                        .ok()
                        .and_then(|p| p.trim().parse::<i32>().ok());
                    if let Some(pid) = pid.filter(|p| skiff_shim::process_alive(*p as u32)) {
                        // SAFETY: kill(2) of the shim we launched for this container.
                        unsafe {
                            libc::kill(pid, libc::SIGKILL);
                        }
                    }
                })
                .await;
                cleanup(c.dir.clone(), c.state_dir.clone()).await;
                return Err(ApiError::invalid_argument(docker_words(&format!(
                    "failed to create task for container: {e}"
                ))));
            }
        };
        // attach clients that came before the start connect now, before any output exists
        let socket = shim.attach_socket(None);
        let mut acks = Vec::new();
        for p in ctr.pending_attach.drain(..) {
            let (tx, rx) = oneshot::channel();
            if p.ready.send((socket.clone(), tx)).is_ok() {
                acks.push(rx);
            }
        }
        for rx in acks {
            let _ = tokio::time::timeout(ATTACH_CONNECT_TIMEOUT, rx).await;
        }
        let pid = match shim.start().await {
            Ok(pid) => pid,
            Err(e) => {
                let _ = shim.kill(libc::SIGKILL as u32, true).await;
                let _ = tokio::time::timeout(Duration::from_secs(10), shim.delete()).await;
                ctr.last_shim_pid = shim.shim_pid();
                cleanup(c.dir.clone(), c.state_dir.clone()).await;
                return Err(ApiError::invalid_argument(format!(
                    "failed to start container: {e}"
                )));
            }
        };
        ctr.run_gen += 1;
        ctr.shim = Some(shim.clone());
        ctr.started = Some(Instant::now());
        ctr.rec.state.set_running(pid, Utc::now());
        self.save(&ctr.rec)?;
        c.set_status(|s| {
            s.running = true;
            s.error.clear();
        });
        self.publish("start", &ctr.rec, &[]);
        self.spawn_waiter(c.clone(), shim, ctr.run_gen);
        Ok(())
    }

    /// Where the built-in init (`--init`) is written for containers to bind-mount.
    fn init_binary_path(&self) -> Result<PathBuf, ApiError> {
        let path = self.inner.cfg.exec_root.join("skiff-init");
        if !path.exists() {
            use std::os::unix::fs::PermissionsExt;
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, spec::init_binary())
                .and_then(|_| {
                    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
                })
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| {
                    internal(format!(
                        "cannot write the init binary {}: {e}",
                        path.display()
                    ))
                })?;
        }
        Ok(path)
    }

    /// Waits for the init process to exit (also across a lost shim connection) and records it.
    pub(crate) fn spawn_waiter(
        &self,
        c: Arc<Container>,
        shim: Arc<skiff_shim::ShimClient>,
        gen: u64,
    ) {
        let svc = self.clone();
        tokio::spawn(async move {
            let mut failures = 0u32;
            let (exit, error) = loop {
                match shim.wait().await {
                    Ok(e) => break (e, String::new()),
                    Err(e) => {
                        if let Some(exit) = skiff_shim::read_exit_file(&c.state_dir) {
                            break (exit, String::new());
                        }
                        let alive = shim.shim_pid().is_some_and(skiff_shim::process_alive);
                        failures += 1;
                        if !alive || failures > 30 {
                            tracing::warn!(id = %c.id, "lost the shim: {e}");
                            svc.reap_orphan(&c).await;
                            break (
                                skiff_shim::ExitInfo {
                                    code: 255,
                                    exited_at: Utc::now(),
                                    oom_killed: false,
                                },
                                "shim died".to_string(),
                            );
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            };
            svc.handle_exit(&c, gen, exit, &error).await;
        });
    }

    /// The shim died without recording an exit: the container's processes may still run
    /// (they are not the shim's children in any way that makes them die with it). Kill them
    /// and drop the runtime's state, so nothing is left behind.
    pub(crate) async fn reap_orphan(&self, c: &Arc<Container>) {
        let (pid, runtime) = {
            let ctr = c.ctr.lock().await;
            (ctr.rec.state.pid, self.runtime_config(&ctr.rec.runtime))
        };
        let id = c.id.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if pid != 0 && skiff_shim::process_alive(pid) {
                // SAFETY: kill(2) with a pid we recorded for this container; no memory involved.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
            if let Ok(rt) = runtime.and_then(|r| r.build().map_err(shim_err)) {
                if let Err(e) = rt.delete(&id, true) {
                    tracing::warn!(id = %id, "cleaning the runtime state of a lost container: {e}");
                }
            }
        })
        .await;
    }

    /// Records an exit of run `gen`, cleans up, and applies the restart policy / AutoRemove.
    pub(crate) async fn handle_exit(
        &self,
        c: &Arc<Container>,
        gen: u64,
        exit: skiff_shim::ExitInfo,
        error: &str,
    ) {
        let mut ctr = c.ctr.lock().await;
        if ctr.run_gen != gen {
            return;
        }
        let shim = ctr.shim.take();
        ctr.rec
            .state
            .set_exited(exit.code, exit.exited_at, exit.oom_killed, error);
        if let Some(shim) = shim {
            if let Err(e) = tokio::time::timeout(Duration::from_secs(10), shim.delete()).await {
                tracing::warn!(id = %c.id, "deleting the task timed out: {e}");
            }
            // the shim removes its socket as it exits: the next start in the same state
            // directory waits for it to be gone (see launch)
            ctr.last_shim_pid = shim.shim_pid();
        }
        let dir = c.dir.clone();
        let state_dir = c.state_dir.clone();
        let unmounted = tokio::task::spawn_blocking(move || {
            let r = rootfs::unmount_rootfs(&dir);
            let _ = std::fs::remove_dir_all(&state_dir);
            r
        })
        .await;
        match unmounted {
            Ok(Ok(())) => ctr.rec.mounted = false,
            Ok(Err(e)) => tracing::warn!(id = %c.id, "{e}"),
            Err(e) => tracing::warn!(id = %c.id, "{e}"),
        }
        if let Err(e) = self.save(&ctr.rec) {
            tracing::error!(id = %c.id, "cannot record the exit: {e}");
        }
        // execs die with their container; forget them so the table stays small
        ctr.exec_ids.clear();
        self.inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, e| e.container_id != c.id);
        if exit.oom_killed {
            self.publish("oom", &ctr.rec, &[]);
        }
        self.publish("die", &ctr.rec, &[("exitCode", exit.code.to_string())]);
        c.set_status(|s| {
            s.running = false;
            s.exits += 1;
            s.exit_code = exit.code;
            s.error = error.to_string();
        });
        let policy = Policy::from_host_config(&ctr.rec.host_config).unwrap_or(Policy::NO);
        let ran = ctr.started.map(|s| s.elapsed()).unwrap_or_default();
        if !ctr.removing
            && policy.should_restart(exit.code, ctr.rec.restart_count, ctr.rec.manually_stopped)
        {
            let delay = ctr.backoff.delay(ran);
            ctr.rec.state.set_restarting();
            let _ = self.save(&ctr.rec);
            let svc = self.clone();
            let c2 = c.clone();
            ctr.restart_timer = Some(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut ctr = c2.ctr.lock().await;
                if ctr.removing || ctr.rec.manually_stopped || !ctr.rec.state.restarting {
                    return;
                }
                ctr.restart_timer = None;
                ctr.rec.restart_count += 1;
                if let Err(e) = svc.start_locked(&c2, &mut ctr).await {
                    tracing::warn!(id = %c2.id, "restart by policy failed: {}", e.message);
                }
            }));
        } else if ctr.rec.auto_remove() && !ctr.removing {
            drop(ctr);
            if let Err(e) = self.finish_remove(c).await {
                tracing::warn!(id = %c.id, "auto-remove: {e}");
            }
        }
    }

    /// Waits until the container recorded an exit after `before` exits (or was removed).
    async fn wait_exit(c: &Container, before: u64, limit: Option<Duration>) -> bool {
        let mut rx = c.status.subscribe();
        let fut = rx.wait_for(|s| s.exits > before || s.removed);
        match limit {
            Some(d) => matches!(tokio::time::timeout(d, fut).await, Ok(Ok(_))),
            None => fut.await.is_ok(),
        }
    }

    /// SIGKILL to every process of the container, then wait for the exit to be recorded.
    pub(crate) async fn kill_and_wait(&self, c: &Arc<Container>, sig: i32) -> Result<(), ApiError> {
        let before = c.status.borrow().exits;
        let shim = c.ctr.lock().await.shim.clone();
        let Some(shim) = shim else {
            return Ok(());
        };
        let _ = shim.kill(sig as u32, true).await;
        let _ = shim.resume().await;
        if !Self::wait_exit(c, before, Some(KILL_WAIT)).await {
            return Err(internal(format!(
                "container {} did not exit within {}s of SIGKILL; see the daemon log",
                c.id,
                KILL_WAIT.as_secs()
            )));
        }
        Ok(())
    }

    pub async fn stop(
        &self,
        name: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), ApiError> {
        let c = self.get(name)?;
        let (shim, sig, t, before, rec) = {
            let mut ctr = c.ctr.lock().await;
            if !ctr.rec.state.running {
                if ctr.rec.state.restarting {
                    // a pending restart is cancelled: the container stays exited
                    if let Some(t) = ctr.restart_timer.take() {
                        t.abort();
                    }
                    ctr.rec.manually_stopped = true;
                    ctr.rec.state.restarting = false;
                    ctr.rec.state.status = "exited".into();
                    self.save(&ctr.rec)?;
                    self.publish("stop", &ctr.rec, &[]);
                    return Ok(());
                }
                return Err(ApiError::not_modified());
            }
            ctr.rec.manually_stopped = true;
            self.save(&ctr.rec)?;
            let sig = match signal.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => parse_signal(s)?,
                None => ctr.rec.stop_signal,
            };
            let t = timeout.unwrap_or(ctr.rec.stop_timeout);
            (
                ctr.shim.clone(),
                sig,
                t,
                c.status.borrow().exits,
                ctr.rec.clone(),
            )
        };
        let Some(shim) = shim else {
            return Err(ApiError::not_modified());
        };
        self.publish("kill", &rec, &[("signal", sig.to_string())]);
        let _ = shim.kill(sig as u32, false).await;
        if rec.state.paused {
            let _ = shim.resume().await;
        }
        let limit = (t >= 0).then(|| Duration::from_secs(t as u64));
        if !Self::wait_exit(&c, before, limit).await {
            self.publish("kill", &rec, &[("signal", libc::SIGKILL.to_string())]);
            let _ = shim.kill(libc::SIGKILL as u32, true).await;
            if !Self::wait_exit(&c, before, Some(KILL_WAIT)).await {
                return Err(internal(format!(
                    "container {} did not exit after SIGKILL; see the daemon log",
                    c.id
                )));
            }
        }
        self.publish("stop", &rec, &[]);
        Ok(())
    }

    pub async fn kill(&self, name: &str, signal: Option<String>) -> Result<(), ApiError> {
        let c = self.get(name)?;
        let (shim, sig, before, rec) = {
            let mut ctr = c.ctr.lock().await;
            let Some(shim) = ctr.shim.clone().filter(|_| ctr.rec.state.running) else {
                return Err(ApiError::conflict(format!(
                    "Cannot kill container: {name}: Container {} is not running",
                    c.id
                )));
            };
            let sig = match signal.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => parse_signal(s)?,
                None => libc::SIGKILL,
            };
            ctr.rec.manually_stopped = true;
            self.save(&ctr.rec)?;
            (shim, sig, c.status.borrow().exits, ctr.rec.clone())
        };
        shim.kill(sig as u32, false).await.map_err(shim_err)?;
        self.publish("kill", &rec, &[("signal", sig.to_string())]);
        if sig == libc::SIGKILL {
            Self::wait_exit(&c, before, Some(KILL_WAIT)).await;
        }
        Ok(())
    }

    pub async fn restart(
        &self,
        name: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), ApiError> {
        match self.stop(name, signal, timeout).await {
            Ok(()) => {}
            Err(e) if e.kind == skiff_api::ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        match self.start(name).await {
            Ok(()) => {}
            Err(e) if e.kind == skiff_api::ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        let c = self.get(name)?;
        let rec = c.ctr.lock().await.rec.clone();
        self.publish("restart", &rec, &[]);
        Ok(())
    }

    pub async fn pause(&self, name: &str, pause: bool) -> Result<(), ApiError> {
        let c = self.get(name)?;
        let mut ctr = c.ctr.lock().await;
        let Some(shim) = ctr.shim.clone().filter(|_| ctr.rec.state.running) else {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        };
        if pause && ctr.rec.state.paused {
            return Err(ApiError::conflict(format!(
                "Container {} is already paused",
                c.id
            )));
        }
        if !pause && !ctr.rec.state.paused {
            return Err(ApiError::conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        if pause {
            shim.pause().await.map_err(shim_err)?;
        } else {
            shim.resume().await.map_err(shim_err)?;
        }
        ctr.rec.state.set_paused(pause);
        self.save(&ctr.rec)?;
        self.publish(if pause { "pause" } else { "unpause" }, &ctr.rec, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/update`: resources (applied live when running) and the
    /// restart policy; the record's HostConfig shows the new values.
    pub async fn update(&self, name: &str, body: &Value) -> Result<Vec<String>, ApiError> {
        let c = self.get(name)?;
        let mut ctr = c.ctr.lock().await;
        let Some(body) = body.as_object() else {
            return Err(ApiError::invalid_argument(
                "the update body must be a JSON object",
            ));
        };
        let mut host = match ctr.rec.host_config.clone() {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        for (k, v) in body {
            if k == "RestartPolicy" {
                if v.is_null()
                    || v.get("Name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .is_empty()
                {
                    continue;
                }
                let p = Policy::from_value(v)?;
                if !p.is_no() && ctr.rec.auto_remove() {
                    return Err(ApiError::invalid_argument(
                        "Restart policy cannot be updated because AutoRemove is enabled for the container",
                    ));
                }
            } else if v.is_null() || is_zero(v) {
                // the CLI sends every field; zero means "unchanged"
                continue;
            }
            host.insert(k.clone(), v.clone());
        }
        let host = Value::Object(host);
        let memory = host.get("Memory").and_then(Value::as_i64).unwrap_or(0);
        if memory != 0 && memory < 6 * 1024 * 1024 {
            return Err(ApiError::invalid_argument(
                "Minimum memory limit allowed is 6MB",
            ));
        }
        let swap = host.get("MemorySwap").and_then(Value::as_i64).unwrap_or(0);
        if memory > 0 && swap > 0 && swap < memory {
            return Err(ApiError::invalid_argument(
                "Minimum memoryswap limit should be larger than memory limit, see usage",
            ));
        }
        if let Some(shim) = ctr.shim.clone().filter(|_| ctr.rec.state.running) {
            let resources = update_resources(body, &host)?;
            shim.update(&resources).await.map_err(|e| {
                ApiError::invalid_argument(format!("cannot update container {}: {e}", c.id))
            })?;
        }
        ctr.rec.host_config = host;
        self.save(&ctr.rec)?;
        self.publish("update", &ctr.rec, &[]);
        Ok(Vec::new())
    }

    /// Resolves the container now (404 at once) and returns a future for the condition:
    /// (exit code, error message).
    pub fn wait_future(
        &self,
        name: &str,
        cond: WaitOn,
    ) -> Result<impl std::future::Future<Output = (i32, String)> + Send + 'static, ApiError> {
        let c = self.get(name)?;
        let mut rx = c.status.subscribe();
        let cur: Status = rx.borrow().clone();
        drop(c);
        Ok(async move {
            let done = |s: &Status| match cond {
                WaitOn::NotRunning => !s.running || s.removed,
                WaitOn::NextExit => s.exits > cur.exits || s.removed,
                WaitOn::Removed => s.removed,
            };
            let waited = rx.wait_for(done).await.map(|s| s.clone()).ok();
            // Err: the container is gone and its sender with it
            let last = waited.unwrap_or_else(|| rx.borrow().clone());
            (last.exit_code, last.error)
        })
    }
}

fn is_zero(v: &Value) -> bool {
    v.as_i64() == Some(0) || v.as_str() == Some("") || v.as_array().is_some_and(|a| a.is_empty())
}

/// The OCI resources for a live update, from the merged HostConfig.
fn update_resources(
    body: &serde_json::Map<String, Value>,
    host: &Value,
) -> Result<oci_spec::runtime::LinuxResources, ApiError> {
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    };
    let get = |k: &str| host.get(k).and_then(Value::as_i64).unwrap_or(0);
    let given = |k: &str| body.get(k).is_some_and(|v| !v.is_null() && !is_zero(v));
    let mut b = LinuxResourcesBuilder::default();
    let bad = |e: oci_spec::OciSpecError| internal(format!("cannot build resources: {e}"));
    if given("Memory") || given("MemorySwap") || given("MemoryReservation") {
        let mut m = LinuxMemoryBuilder::default();
        if get("Memory") != 0 {
            m = m.limit(get("Memory"));
        }
        match get("MemorySwap") {
            0 if get("Memory") > 0 => m = m.swap(-1),
            0 => {}
            s => m = m.swap(s),
        }
        if get("MemoryReservation") != 0 {
            m = m.reservation(get("MemoryReservation"));
        }
        b = b.memory(m.build().map_err(bad)?);
    }
    if given("CpuShares")
        || given("CpuQuota")
        || given("CpuPeriod")
        || given("NanoCpus")
        || given("CpusetCpus")
        || given("CpusetMems")
    {
        let mut cpu = LinuxCpuBuilder::default();
        if get("CpuShares") > 0 {
            cpu = cpu.shares(get("CpuShares") as u64);
        }
        if get("NanoCpus") > 0 {
            cpu = cpu
                .period(100_000u64)
                .quota(get("NanoCpus") * 100_000 / 1_000_000_000);
        } else {
            if get("CpuPeriod") > 0 {
                cpu = cpu.period(get("CpuPeriod") as u64);
            }
            if get("CpuQuota") != 0 {
                cpu = cpu.quota(get("CpuQuota"));
            }
        }
        if let Some(s) = host
            .get("CpusetCpus")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            cpu = cpu.cpus(s.to_string());
        }
        if let Some(s) = host
            .get("CpusetMems")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            cpu = cpu.mems(s.to_string());
        }
        b = b.cpu(cpu.build().map_err(bad)?);
    }
    if given("PidsLimit") {
        let l = get("PidsLimit");
        b = b.pids(
            LinuxPidsBuilder::default()
                .limit(if l <= 0 { -1 } else { l })
                .build()
                .map_err(bad)?,
        );
    }
    b.build().map_err(bad)
}

/// Mounts the rootfs, writes the /etc files and the bundle's config.json (blocking).
fn prepare_bundle(
    rec: &Record,
    dir: &std::path::Path,
    state_dir: &std::path::Path,
    lowers: &[PathBuf],
    image: ImageRuntimeConfig,
    init_path: Option<PathBuf>,
    volumes_root: &std::path::Path,
) -> Result<(), ApiError> {
    let merged = rootfs::mount_rootfs(dir, lowers).map_err(internal)?;
    let result = (|| {
        let host = &rec.host_config;
        let strs = |k: &str| -> Vec<String> {
            host.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let extra_hosts = strs("ExtraHosts");
        let dns = strs("Dns");
        let dns_search = strs("DnsSearch");
        let dns_options = strs("DnsOptions");
        let domainname = rec
            .config
            .get("Domainname")
            .and_then(Value::as_str)
            .unwrap_or("");
        let etc = etcfiles::write(
            dir,
            &etcfiles::EtcRequest {
                hostname: &rec.hostname,
                domainname,
                host_network: rec.host_str("NetworkMode") == Some("host"),
                extra_hosts: &extra_hosts,
                dns: &dns,
                dns_search: &dns_search,
                dns_options: &dns_options,
            },
        )
        .map_err(internal)?;
        let req = specreq::build(
            &rec.id,
            &rec.hostname,
            &rec.config,
            host,
            image,
            EtcFiles {
                hostname: etc.hostname,
                hosts: etc.hosts,
                resolv_conf: etc.resolv_conf,
            },
            init_path,
        );
        let mut req = req;
        req.volume_paths = named_volumes(&req, volumes_root)?;
        let spec = spec::build_spec(&req, &merged).map_err(spec_err)?;
        std::fs::create_dir_all(state_dir)
            .map_err(|e| internal(format!("cannot create {}: {e}", state_dir.display())))?;
        let bytes = serde_json::to_vec(&spec).map_err(internal)?;
        std::fs::write(state_dir.join("config.json"), bytes)
            .map_err(|e| internal(format!("cannot write the bundle's config.json: {e}")))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = rootfs::unmount_rootfs(dir);
        let _ = std::fs::remove_dir_all(state_dir);
    }
    result
}

/// Named volumes (`-v name:/path`, `Mounts` of type volume) as plain local directories
/// `data-root/volumes/<name>/_data`, created on first use as `docker run` does.
fn named_volumes(
    req: &spec::SpecRequest,
    root: &std::path::Path,
) -> Result<std::collections::BTreeMap<String, PathBuf>, ApiError> {
    let mut names: Vec<String> = req
        .mounts
        .iter()
        .filter(|m| m.kind == spec::MountKind::Volume)
        .map(|m| m.source.clone())
        .collect();
    for b in &req.binds {
        if let Ok(m) = spec::parse_bind(b) {
            if m.kind == spec::MountKind::Volume {
                names.push(m.source);
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    for name in names {
        let valid = name.len() >= 2
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(ApiError::invalid_argument(format!(
                "invalid volume name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let data = root.join(&name).join("_data");
        std::fs::create_dir_all(&data)
            .map_err(|e| internal(format!("cannot create volume {name}: {e}")))?;
        out.insert(name, data);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_start_codes_match_the_cli() {
        assert_eq!(
            start_failure_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(
            start_failure_code("exec /etc/passwd: permission denied"),
            126
        );
        assert_eq!(start_failure_code("something else"), 128);
        let m = docker_words("create failed: executable 'nosuch' not found in $PATH");
        assert!(
            m.ends_with("exec: \"nosuch\": executable file not found in $PATH"),
            "{m}"
        );
        assert_eq!(start_failure_code(&m), 127);
    }

    #[test]
    fn update_maps_memory_and_cpus() {
        let body = serde_json::json!({"Memory": 20971520, "NanoCpus": 500000000, "CpuShares": 0});
        let host = body.clone();
        let r = update_resources(body.as_object().unwrap(), &host).unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(20971520));
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50000));
        assert!(r.pids().is_none());
    }
}
