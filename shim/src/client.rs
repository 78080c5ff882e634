//! The engine's async handle on one shim (containerd Task API over ttrpc).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use containerd_shim_protos::api;
use containerd_shim_protos::shim_async::{Client, TaskClient};
use oci_spec::runtime::{LinuxResources, Process};
use protobuf::well_known_types::any::Any;
use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::MessageField;

use crate::error::{ShimError, TaskErrorKind};
use crate::exitfile::read_exit_file;
use crate::server::{OPTIONS_FILE, PID_FILE, SOCKET_FILE};
use crate::types::{ExitInfo, LaunchOptions, TaskState, TaskStatus};

const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
const RESOURCES_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

pub struct ShimClient {
    state_dir: PathBuf,
    id: String,
    shim_pid: Option<u32>,
    task: TaskClient,
}

impl std::fmt::Debug for ShimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShimClient")
            .field("state_dir", &self.state_dir)
            .field("id", &self.id)
            .field("shim_pid", &self.shim_pid)
            .finish()
    }
}

fn ctx() -> ttrpc::context::Context {
    // No deadline: Wait blocks until the process exits.
    ttrpc::context::with_timeout(0)
}

fn to_time(ts: &MessageField<Timestamp>) -> DateTime<Utc> {
    ts.as_ref()
        .and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .unwrap_or_else(Utc::now)
}

fn json_any<T: serde::Serialize>(type_url: &str, value: &T) -> Result<Any, ShimError> {
    Ok(Any {
        type_url: type_url.to_string(),
        value: serde_json::to_vec(value).map_err(|e| ShimError::Json {
            what: type_url.to_string(),
            source: e,
        })?,
        ..Default::default()
    })
}

impl ShimClient {
    /// Connects to a running shim (also after a daemon restart).
    pub async fn connect(state_dir: &Path) -> Result<ShimClient, ShimError> {
        let options = state_dir.join(OPTIONS_FILE);
        let body = tokio::fs::read(&options)
            .await
            .map_err(|e| ShimError::io(format!("read {}", options.display()), e))?;
        let opts: LaunchOptions = serde_json::from_slice(&body).map_err(|e| ShimError::Json {
            what: options.display().to_string(),
            source: e,
        })?;
        let shim_pid = tokio::fs::read_to_string(state_dir.join(PID_FILE))
            .await
            .ok()
            .and_then(|t| t.trim().parse().ok());
        let socket = state_dir.join(SOCKET_FILE);
        let client = Client::connect(&format!("unix://{}", socket.display()))
            .await
            .map_err(|e| ShimError::Unreachable {
                path: socket.clone(),
                message: e.to_string(),
            })?;
        Ok(ShimClient {
            state_dir: state_dir.to_path_buf(),
            id: opts.id,
            shim_pid,
            task: TaskClient::new(client),
        })
    }

    pub fn shim_pid(&self) -> Option<u32> {
        self.shim_pid
    }

    /// `<state_dir>/attach-init.sock` or `attach-<exec_id>.sock` (exec ids longer than 16
    /// characters are replaced by a 16-hex hash so the path fits a unix socket address).
    pub fn attach_socket(&self, exec_id: Option<&str>) -> PathBuf {
        crate::paths::attach_socket(&self.state_dir, exec_id)
    }

    fn error(&self, method: &'static str, err: ttrpc::Error) -> ShimError {
        match err {
            ttrpc::Error::RpcStatus(status) => {
                let kind = match status.code() {
                    ttrpc::Code::NOT_FOUND => TaskErrorKind::NotFound,
                    ttrpc::Code::INVALID_ARGUMENT => TaskErrorKind::InvalidArgument,
                    ttrpc::Code::FAILED_PRECONDITION => TaskErrorKind::FailedPrecondition,
                    ttrpc::Code::ALREADY_EXISTS => TaskErrorKind::AlreadyExists,
                    ttrpc::Code::UNIMPLEMENTED => TaskErrorKind::Unimplemented,
                    _ => TaskErrorKind::Internal,
                };
                ShimError::Rpc {
                    method,
                    kind,
                    message: status.message().to_string(),
                }
            }
            other => ShimError::Unreachable {
                path: self.state_dir.join(SOCKET_FILE),
                message: other.to_string(),
            },
        }
    }

    /// The exit as recorded in exit.json (it has the OOM flag), else from the reply.
    fn exit_info(&self, code: u32, at: &MessageField<Timestamp>) -> ExitInfo {
        read_exit_file(&self.state_dir).unwrap_or_else(|| ExitInfo {
            code: code as i32,
            exited_at: to_time(at),
            oom_killed: false,
        })
    }

    /// Starts the init process; returns its pid.
    pub async fn start(&self) -> Result<u32, ShimError> {
        self.start_process("").await
    }

    async fn start_process(&self, exec_id: &str) -> Result<u32, ShimError> {
        let req = api::StartRequest {
            id: self.id.clone(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        };
        let resp = self
            .task
            .start(ctx(), &req)
            .await
            .map_err(|e| self.error("start", e))?;
        Ok(resp.pid)
    }

    pub async fn state(&self) -> Result<TaskState, ShimError> {
        let req = api::StateRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        let resp = self
            .task
            .state(ctx(), &req)
            .await
            .map_err(|e| self.error("state", e))?;
        let status = match resp.status.enum_value_or_default() {
            api::Status::CREATED => TaskStatus::Created,
            api::Status::RUNNING => TaskStatus::Running,
            api::Status::PAUSED | api::Status::PAUSING => TaskStatus::Paused,
            _ => TaskStatus::Stopped,
        };
        let exit = (status == TaskStatus::Stopped)
            .then(|| self.exit_info(resp.exit_status, &resp.exited_at));
        Ok(TaskState {
            pid: resp.pid,
            status,
            exit,
        })
    }

    /// Blocks until the init process exits.
    pub async fn wait(&self) -> Result<ExitInfo, ShimError> {
        let req = api::WaitRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        let resp = self
            .task
            .wait(ctx(), &req)
            .await
            .map_err(|e| self.error("wait", e))?;
        Ok(self.exit_info(resp.exit_status, &resp.exited_at))
    }

    pub async fn kill(&self, signal: u32, all: bool) -> Result<(), ShimError> {
        let req = api::KillRequest {
            id: self.id.clone(),
            signal,
            all,
            ..Default::default()
        };
        self.task
            .kill(ctx(), &req)
            .await
            .map_err(|e| self.error("kill", e))?;
        Ok(())
    }

    /// Deletes the task (it must not be running); the shim exits afterwards.
    pub async fn delete(&self) -> Result<ExitInfo, ShimError> {
        let req = api::DeleteRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        let resp = self
            .task
            .delete(ctx(), &req)
            .await
            .map_err(|e| self.error("delete", e))?;
        Ok(self.exit_info(resp.exit_status, &resp.exited_at))
    }

    pub async fn pause(&self) -> Result<(), ShimError> {
        let req = api::PauseRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        self.task
            .pause(ctx(), &req)
            .await
            .map_err(|e| self.error("pause", e))?;
        Ok(())
    }

    pub async fn resume(&self) -> Result<(), ShimError> {
        let req = api::ResumeRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        self.task
            .resume(ctx(), &req)
            .await
            .map_err(|e| self.error("resume", e))?;
        Ok(())
    }

    pub async fn pids(&self) -> Result<Vec<u32>, ShimError> {
        let req = api::PidsRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        let resp = self
            .task
            .pids(ctx(), &req)
            .await
            .map_err(|e| self.error("pids", e))?;
        Ok(resp.processes.iter().map(|p| p.pid).collect())
    }

    pub async fn update(&self, resources: &LinuxResources) -> Result<(), ShimError> {
        let req = api::UpdateTaskRequest {
            id: self.id.clone(),
            resources: MessageField::some(json_any(RESOURCES_TYPE_URL, resources)?),
            ..Default::default()
        };
        self.task
            .update(ctx(), &req)
            .await
            .map_err(|e| self.error("update", e))?;
        Ok(())
    }

    /// Registers an exec process (terminal = process.terminal); its attach socket exists once
    /// this returns, so clients can attach before [`ShimClient::start_exec`].
    pub async fn exec(
        &self,
        exec_id: &str,
        process: &Process,
        stdin: bool,
    ) -> Result<(), ShimError> {
        let req = api::ExecProcessRequest {
            id: self.id.clone(),
            exec_id: exec_id.to_string(),
            terminal: process.terminal().unwrap_or(false),
            stdin: if stdin { "pipe".into() } else { String::new() },
            spec: MessageField::some(json_any(PROCESS_TYPE_URL, process)?),
            ..Default::default()
        };
        self.task
            .exec(ctx(), &req)
            .await
            .map_err(|e| self.error("exec", e))?;
        Ok(())
    }

    pub async fn start_exec(&self, exec_id: &str) -> Result<u32, ShimError> {
        self.start_process(exec_id).await
    }

    pub async fn wait_exec(&self, exec_id: &str) -> Result<ExitInfo, ShimError> {
        let req = api::WaitRequest {
            id: self.id.clone(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        };
        let resp = self
            .task
            .wait(ctx(), &req)
            .await
            .map_err(|e| self.error("wait", e))?;
        Ok(ExitInfo {
            code: resp.exit_status as i32,
            exited_at: to_time(&resp.exited_at),
            oom_killed: false,
        })
    }

    pub async fn kill_exec(&self, exec_id: &str, signal: u32) -> Result<(), ShimError> {
        let req = api::KillRequest {
            id: self.id.clone(),
            exec_id: exec_id.to_string(),
            signal,
            ..Default::default()
        };
        self.task
            .kill(ctx(), &req)
            .await
            .map_err(|e| self.error("kill", e))?;
        Ok(())
    }

    pub async fn resize(
        &self,
        exec_id: Option<&str>,
        width: u32,
        height: u32,
    ) -> Result<(), ShimError> {
        let req = api::ResizePtyRequest {
            id: self.id.clone(),
            exec_id: exec_id.unwrap_or_default().to_string(),
            width,
            height,
            ..Default::default()
        };
        self.task
            .resize_pty(ctx(), &req)
            .await
            .map_err(|e| self.error("resize", e))?;
        Ok(())
    }

    pub async fn close_stdin(&self, exec_id: Option<&str>) -> Result<(), ShimError> {
        let req = api::CloseIORequest {
            id: self.id.clone(),
            exec_id: exec_id.unwrap_or_default().to_string(),
            stdin: true,
            ..Default::default()
        };
        self.task
            .close_io(ctx(), &req)
            .await
            .map_err(|e| self.error("close stdin", e))?;
        Ok(())
    }

    /// Makes the shim exit now, whatever the task's state (a running container is left
    /// running without a shim).
    pub async fn shutdown(&self) -> Result<(), ShimError> {
        let req = api::ShutdownRequest {
            id: self.id.clone(),
            now: true,
            ..Default::default()
        };
        self.task
            .shutdown(ctx(), &req)
            .await
            .map_err(|e| self.error("shutdown", e))?;
        Ok(())
    }
}
