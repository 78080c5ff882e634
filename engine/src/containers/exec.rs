//! `docker exec`: extra processes in a running container, run by its shim.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use skiff_api::hijack::HijackedStream;
use skiff_api::ApiError;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::attach::{self, Streams};
use super::service::{internal, shim_err, short, spec_err, ContainerService};
use super::spec;

/// What `POST /containers/{id}/exec` asked for.
#[derive(Debug, Clone, Default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
    pub tty: bool,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub privileged: bool,
    pub user: String,
    pub working_dir: String,
    pub console_size: Option<[u32; 2]>,
}

#[derive(Debug, Clone, Default)]
pub struct ExecState {
    pub started: bool,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: u32,
}

pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub state: Mutex<ExecState>,
    /// Set to true once the exit is recorded.
    pub done: watch::Sender<bool>,
}

impl Exec {
    fn state(&self) -> std::sync::MutexGuard<'_, ExecState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The ID the shim knows it by: short, so its attach socket path stays short.
    fn shim_id(&self) -> &str {
        short(&self.id)
    }
}

impl ContainerService {
    fn exec(&self, id: &str) -> Result<Arc<Exec>, ApiError> {
        self.inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
    }

    pub async fn exec_create(&self, container: &str, cfg: ExecConfig) -> Result<String, ApiError> {
        let c = self.get(container)?;
        let mut ctr = c.ctr.lock().await;
        if !ctr.rec.state.running || ctr.shim.is_none() {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if ctr.rec.state.paused {
            return Err(ApiError::conflict(format!(
                "Container {} is paused, unpause the container before exec",
                c.id
            )));
        }
        spec::validate_exec(&spec::ExecRequest {
            cmd: cfg.cmd.clone(),
            working_dir: Some(cfg.working_dir.clone()).filter(|w| !w.is_empty()),
            ..Default::default()
        })
        .map_err(spec_err)?;
        let id = loop {
            let id = format!(
                "{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            );
            let execs = self.inner.execs.lock().unwrap_or_else(|p| p.into_inner());
            if !execs.keys().any(|k| k[..12] == id[..12]) {
                break id;
            }
        };
        let cmd = cfg.cmd.join(" ");
        let exec = Arc::new(Exec {
            id: id.clone(),
            container_id: c.id.clone(),
            config: cfg,
            state: Mutex::new(ExecState::default()),
            done: watch::channel(false).0,
        });
        self.inner
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), exec);
        ctr.exec_ids.push(id.clone());
        self.publish(
            &format!("exec_create: {cmd}"),
            &ctr.rec,
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    /// Checks the exec can start; returns whether it has a tty.
    pub fn exec_prepare(&self, id: &str) -> Result<bool, ApiError> {
        let e = self.exec(id)?;
        let st = e.state();
        if st.running {
            return Err(ApiError::conflict(format!(
                "Error: Exec command {id} is already running"
            )));
        }
        if st.started {
            return Err(ApiError::conflict(format!(
                "Error: Exec command {id} has already run"
            )));
        }
        Ok(e.config.tty)
    }

    pub async fn exec_start(
        &self,
        id: &str,
        detach: bool,
        tty: Option<bool>,
        conn: Option<HijackedStream>,
    ) -> Result<(), ApiError> {
        let e = self.exec(id)?;
        {
            let mut st = e.state();
            if st.started {
                return Err(ApiError::conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            st.started = true;
        }
        let c = self.get(&e.container_id)?;
        let (shim, rec, merged) = {
            let ctr = c.ctr.lock().await;
            (
                ctr.shim.clone().filter(|_| ctr.rec.state.running),
                ctr.rec.clone(),
                super::rootfs::merged_dir(&c.dir),
            )
        };
        let Some(shim) = shim else {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        };
        let tty = tty.unwrap_or(false) || e.config.tty;
        let bundle = c.state_dir.join("config.json");
        let cfg = e.config.clone();
        let process =
            crate::images::blocking(move || build_process(&bundle, &merged, &cfg, tty)).await?;
        let stdin = e.config.attach_stdin && conn.is_some() && !detach;
        shim.exec(e.shim_id(), &process, stdin)
            .await
            .map_err(|err| ApiError::invalid_argument(format!("cannot create exec: {err}")))?;
        let streams = Streams {
            stdin,
            stdout: e.config.attach_stdout,
            stderr: e.config.attach_stderr,
        };
        let sock = match (&conn, detach) {
            (Some(_), false) => {
                Some(attach::connect(&shim.attach_socket(Some(e.shim_id())), streams).await?)
            }
            _ => None,
        };
        let pid = match shim.start_exec(e.shim_id()).await {
            Ok(pid) => pid,
            Err(err) => {
                let msg = err.to_string();
                let code = if msg.contains("not found") || msg.contains("no such file") {
                    127
                } else if msg.contains("permission denied") {
                    126
                } else {
                    128
                };
                {
                    let mut st = e.state();
                    st.exit_code = Some(code);
                }
                e.done.send_replace(true);
                if let Some(mut conn) = conn {
                    let _ = conn.shutdown().await;
                }
                return Err(ApiError::invalid_argument(format!(
                    "failed to start exec: {msg}"
                )));
            }
        };
        {
            let mut st = e.state();
            st.running = true;
            st.pid = pid;
        }
        self.publish(
            &format!("exec_start: {}", e.config.cmd.join(" ")),
            &rec,
            &[("execID", e.id.clone())],
        );
        // the waiter records the exit whether or not anyone is attached
        let svc = self.clone();
        let e2 = e.clone();
        let shim2 = shim.clone();
        tokio::spawn(async move {
            let code = match shim2.wait_exec(e2.shim_id()).await {
                Ok(x) => x.code,
                Err(err) => {
                    tracing::warn!(exec = %e2.id, "waiting for the exec failed: {err}");
                    255
                }
            };
            {
                let mut st = e2.state();
                st.running = false;
                st.exit_code = Some(code);
            }
            e2.done.send_replace(true);
            svc.publish(
                "exec_die",
                &rec,
                &[("execID", e2.id.clone()), ("exitCode", code.to_string())],
            );
        });
        if let (Some(conn), Some(sock)) = (conn, sock) {
            // the client reads ExitCode right after the stream ends
            let mut rx = e.done.subscribe();
            let recorded = async move {
                let wait = rx.wait_for(|d| *d);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), wait).await;
            };
            attach::pump(conn, sock, stdin, recorded).await;
        }
        Ok(())
    }

    pub fn exec_inspect(&self, id: &str) -> Result<Value, ApiError> {
        let e = self.exec(id)?;
        let st = e.state().clone();
        Ok(json!({
            "ID": e.id,
            "Running": st.running,
            "ExitCode": st.exit_code,
            "ProcessConfig": {
                "privileged": e.config.privileged,
                "user": e.config.user,
                "tty": e.config.tty,
                "entrypoint": e.config.cmd.first().cloned().unwrap_or_default(),
                "arguments": e.config.cmd.iter().skip(1).cloned().collect::<Vec<_>>(),
            },
            "OpenStdin": e.config.attach_stdin,
            "OpenStderr": e.config.attach_stderr,
            "OpenStdout": e.config.attach_stdout,
            "CanRemove": false,
            "ContainerID": e.container_id,
            "DetachKeys": e.config.detach_keys,
            "Pid": st.pid,
        }))
    }

    pub async fn exec_resize(&self, id: &str, height: u32, width: u32) -> Result<(), ApiError> {
        let e = self.exec(id)?;
        let c = self.get(&e.container_id)?;
        let shim = c.ctr.lock().await.shim.clone();
        let Some(shim) = shim else {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        };
        shim.resize(Some(e.shim_id()), width, height)
            .await
            .map_err(shim_err)
    }
}

/// The exec's OCI process: the container's process with the exec's command, env, user,
/// working directory and tty (the spec module derives it as Docker does).
fn build_process(
    bundle: &std::path::Path,
    rootfs: &std::path::Path,
    cfg: &ExecConfig,
    tty: bool,
) -> Result<oci_spec::runtime::Process, ApiError> {
    let container_spec = oci_spec::runtime::Spec::load(bundle)
        .map_err(|e| internal(format!("cannot read the container's spec: {e}")))?;
    let req = spec::ExecRequest {
        cmd: cfg.cmd.clone(),
        env: cfg.env.clone(),
        user: Some(cfg.user.clone()).filter(|u| !u.is_empty()),
        working_dir: Some(cfg.working_dir.clone()).filter(|w| !w.is_empty()),
        tty,
        privileged: cfg.privileged,
    };
    spec::exec_process(&container_spec, rootfs, &req).map_err(spec_err)
}
