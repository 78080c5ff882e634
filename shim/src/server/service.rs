//! The containerd Task service (ttrpc) over [`Shim`].

use std::sync::Arc;

use containerd_shim_protos::api;
use containerd_shim_protos::shim::shim_ttrpc::Task;
use protobuf::well_known_types::empty::Empty;
use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::MessageField;
use ttrpc::{Code, TtrpcContext};

use crate::error::{ShimError, TaskErrorKind};
use crate::server::task::Shim;
use crate::types::{ExitInfo, TaskStatus};

pub(crate) struct TaskService {
    pub(crate) shim: Arc<Shim>,
}

fn rpc_error(err: ShimError) -> ttrpc::Error {
    let code = match err.task_kind() {
        TaskErrorKind::NotFound => Code::NOT_FOUND,
        TaskErrorKind::InvalidArgument => Code::INVALID_ARGUMENT,
        TaskErrorKind::FailedPrecondition => Code::FAILED_PRECONDITION,
        TaskErrorKind::AlreadyExists => Code::ALREADY_EXISTS,
        TaskErrorKind::Unimplemented => Code::UNIMPLEMENTED,
        TaskErrorKind::Internal => Code::INTERNAL,
    };
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, err.to_string()))
}

fn timestamp(exit: &Option<ExitInfo>) -> MessageField<Timestamp> {
    match exit {
        Some(e) => MessageField::some(Timestamp {
            seconds: e.exited_at.timestamp(),
            nanos: e.exited_at.timestamp_subsec_nanos() as i32,
            ..Default::default()
        }),
        None => MessageField::none(),
    }
}

fn exit_status(exit: &Option<ExitInfo>) -> u32 {
    exit.as_ref().map_or(0, |e| e.code as u32)
}

fn check_id(shim: &Shim, id: &str) -> ttrpc::Result<()> {
    if id.is_empty() || id == shim.opts.id {
        Ok(())
    } else {
        Err(rpc_error(ShimError::task(
            TaskErrorKind::NotFound,
            format!("task {id} not found: this shim serves {}", shim.opts.id),
        )))
    }
}

fn json_any<T: serde::de::DeserializeOwned>(
    any: &MessageField<protobuf::well_known_types::any::Any>,
    what: &str,
) -> ttrpc::Result<T> {
    let value = any.as_ref().map(|a| a.value.as_slice()).unwrap_or(b"null");
    serde_json::from_slice(value).map_err(|e| {
        rpc_error(ShimError::Json {
            what: what.to_string(),
            source: e,
        })
    })
}

impl Task for TaskService {
    fn state(&self, _: &TtrpcContext, req: api::StateRequest) -> ttrpc::Result<api::StateResponse> {
        check_id(&self.shim, &req.id)?;
        let (pid, status, exit, terminal) = self.shim.snapshot(&req.exec_id).map_err(rpc_error)?;
        Ok(api::StateResponse {
            id: self.shim.opts.id.clone(),
            bundle: self.shim.opts.bundle.display().to_string(),
            pid,
            status: match status {
                TaskStatus::Created => api::Status::CREATED,
                TaskStatus::Running => api::Status::RUNNING,
                TaskStatus::Paused => api::Status::PAUSED,
                TaskStatus::Stopped => api::Status::STOPPED,
            }
            .into(),
            terminal,
            exit_status: exit_status(&exit),
            exited_at: timestamp(&exit),
            exec_id: req.exec_id,
            ..Default::default()
        })
    }

    /// The task is created when the shim starts; Create only reports it.
    fn create(
        &self,
        _: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> ttrpc::Result<api::CreateTaskResponse> {
        check_id(&self.shim, &req.id)?;
        Ok(api::CreateTaskResponse {
            pid: self.shim.init_pid(),
            ..Default::default()
        })
    }

    fn start(&self, _: &TtrpcContext, req: api::StartRequest) -> ttrpc::Result<api::StartResponse> {
        check_id(&self.shim, &req.id)?;
        let pid = self.shim.start(&req.exec_id).map_err(rpc_error)?;
        // The process runs; what started it will not run again soon.
        super::trim::drop_clean_file_pages();
        Ok(api::StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn delete(
        &self,
        _: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> ttrpc::Result<api::DeleteResponse> {
        check_id(&self.shim, &req.id)?;
        let (pid, exit) = self.shim.delete(&req.exec_id).map_err(rpc_error)?;
        Ok(api::DeleteResponse {
            pid,
            exit_status: exit_status(&exit),
            exited_at: timestamp(&exit),
            ..Default::default()
        })
    }

    fn pids(&self, _: &TtrpcContext, req: api::PidsRequest) -> ttrpc::Result<api::PidsResponse> {
        check_id(&self.shim, &req.id)?;
        let pids = self.shim.pids().map_err(rpc_error)?;
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| api::ProcessInfo {
                    pid,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    fn pause(&self, _: &TtrpcContext, req: api::PauseRequest) -> ttrpc::Result<Empty> {
        check_id(&self.shim, &req.id)?;
        self.shim.pause().map_err(rpc_error)?;
        Ok(Empty::new())
    }

    fn resume(&self, _: &TtrpcContext, req: api::ResumeRequest) -> ttrpc::Result<Empty> {
        check_id(&self.shim, &req.id)?;
        self.shim.resume().map_err(rpc_error)?;
        Ok(Empty::new())
    }

    fn kill(&self, _: &TtrpcContext, req: api::KillRequest) -> ttrpc::Result<Empty> {
        check_id(&self.shim, &req.id)?;
        self.shim
            .kill(&req.exec_id, req.signal, req.all)
            .map_err(rpc_error)?;
        Ok(Empty::new())
    }

    fn exec(&self, _: &TtrpcContext, req: api::ExecProcessRequest) -> ttrpc::Result<Empty> {
        check_id(&self.shim, &req.id)?;
        let process: oci_spec::runtime::Process = json_any(&req.spec, "exec process spec")?;
        self.shim
            .exec(&req.exec_id, process, req.terminal, !req.stdin.is_empty())
            .map_err(rpc_error)?;
        Ok(Empty::new())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: api::ResizePtyRequest) -> ttrpc::Result<Empty> {
        check_id(&self.shim, &req.id)?;
        self.shim
            .resize(&req.exec_id, req.width, req.height)
            .map_err(rpc_error)?;
        Ok(Empty::new())
    }

    fn close_io(&self, _: &TtrpcContext, req: api::CloseIORequest) -> ttrpc::Result<Empty> {
        check_id(&self.shim, &req.id)?;
        if req.stdin {
            self.shim.close_stdin(&req.exec_id).map_err(rpc_error)?;
        }
        Ok(Empty::new())
    }

    fn update(&self, _: &TtrpcContext, req: api::UpdateTaskRequest) -> ttrpc::Result<Empty> {
        check_id(&self.shim, &req.id)?;
        let resources: oci_spec::runtime::LinuxResources = json_any(&req.resources, "resources")?;
        self.shim.update(&resources).map_err(rpc_error)?;
        Ok(Empty::new())
    }

    fn wait(&self, _: &TtrpcContext, req: api::WaitRequest) -> ttrpc::Result<api::WaitResponse> {
        check_id(&self.shim, &req.id)?;
        let exit = Some(self.shim.wait(&req.exec_id).map_err(rpc_error)?);
        Ok(api::WaitResponse {
            exit_status: exit_status(&exit),
            exited_at: timestamp(&exit),
            ..Default::default()
        })
    }

    fn stats(&self, _: &TtrpcContext, _: api::StatsRequest) -> ttrpc::Result<api::StatsResponse> {
        Err(rpc_error(ShimError::task(
            TaskErrorKind::Unimplemented,
            "the shim does not report stats; read the container's cgroup instead",
        )))
    }

    fn connect(
        &self,
        _: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> ttrpc::Result<api::ConnectResponse> {
        check_id(&self.shim, &req.id)?;
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: self.shim.init_pid(),
            version: format!(
                "skiff-shim {}; {} log lines dropped",
                env!("CARGO_PKG_VERSION"),
                self.shim.dropped_log_lines()
            ),
            ..Default::default()
        })
    }

    fn shutdown(&self, _: &TtrpcContext, req: api::ShutdownRequest) -> ttrpc::Result<Empty> {
        check_id(&self.shim, &req.id)?;
        self.shim.shutdown(req.now).map_err(rpc_error)?;
        Ok(Empty::new())
    }
}
