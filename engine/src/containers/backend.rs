//! The API's container, exec and events traits on the container service.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::StreamExt;
use serde_json::Value;
use skiff_api::types::container::{
    AttachInfo, AttachOptions, ContainerCreateRequest, ContainerCreateResponse, ContainerInspect,
    ContainerListOptions, ContainerPruneReport, ContainerSummary, ContainerTopResponse,
    ContainerUpdateRequest, ContainerUpdateResponse, ContainerWaitResponse, LogsOptions,
    WaitCondition, WaitExitError,
};
use skiff_api::types::exec::{
    ExecCreateRequest, ExecCreateResponse, ExecInspect, ExecStartRequest,
};
use skiff_api::{
    ApiError, ApiVersion, ContainerBackend, EventStream, EventsBackend, ExecBackend, Filters,
    HijackedStream, LogFrame, LogStream, StatsSender, StdStream, Timestamp,
};

use super::attach::Streams;
use super::events::{EventBus, EventFilters};
use super::exec::ExecConfig;
use super::lifecycle::WaitOn;
use super::logs::{self, LogQuery, LogStreamKind};
use super::service::{internal, ContainerService};

fn from_value<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| internal(format!("cannot shape {what}: {e}")))
}

/// `Error` is left out, as dockerd does for an ordinary exit: the docker CLI turns any
/// `Error` into "Error waiting for container" and exit code 125, hiding the real cause
/// (a failed start is reported by the start call itself).
fn wait_response((code, _error): (i32, String)) -> ContainerWaitResponse {
    ContainerWaitResponse {
        status_code: code as i64,
        error: None::<WaitExitError>,
    }
}

#[async_trait]
impl ContainerBackend for ContainerService {
    async fn create(
        &self,
        name: Option<String>,
        platform: Option<String>,
        body: ContainerCreateRequest,
    ) -> Result<ContainerCreateResponse, ApiError> {
        if let Some(p) = platform.filter(|p| !p.is_empty()) {
            let os = p.split('/').next().unwrap_or("");
            if os != "linux" {
                return Err(ApiError::invalid_argument(format!(
                    "platform {p:?} is not supported: skiff runs linux containers"
                )));
            }
        }
        let body = serde_json::to_value(&body).map_err(internal)?;
        let (id, warnings) = self.create_value(name, body).await?;
        Ok(ContainerCreateResponse { id, warnings })
    }

    async fn inspect(
        &self,
        id: &str,
        size: bool,
        _version: ApiVersion,
    ) -> Result<ContainerInspect, ApiError> {
        let v = self.inspect_value(id, size).await?;
        from_value(v, "container inspect")
    }

    async fn list(&self, opts: ContainerListOptions) -> Result<Vec<ContainerSummary>, ApiError> {
        let list = self
            .list_values(opts.all, opts.limit, opts.size, &opts.filters)
            .await?;
        list.into_iter()
            .map(|v| from_value(v, "container summary"))
            .collect()
    }

    async fn start(&self, id: &str) -> Result<(), ApiError> {
        ContainerService::start(self, id).await
    }

    async fn stop(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), ApiError> {
        ContainerService::stop(self, id, signal, timeout).await
    }

    async fn restart(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), ApiError> {
        ContainerService::restart(self, id, signal, timeout).await
    }

    async fn kill(&self, id: &str, signal: Option<String>) -> Result<(), ApiError> {
        ContainerService::kill(self, id, signal).await
    }

    async fn wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<ContainerWaitResponse, ApiError> {
        Ok(self.wait_start(id, condition).await?.await)
    }

    async fn wait_start(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<BoxFuture<'static, ContainerWaitResponse>, ApiError> {
        let cond = match condition {
            WaitCondition::NotRunning => WaitOn::NotRunning,
            WaitCondition::NextExit => WaitOn::NextExit,
            WaitCondition::Removed => WaitOn::Removed,
        };
        let fut = self.wait_future(id, cond)?;
        Ok(Box::pin(async move { wait_response(fut.await) }))
    }

    async fn remove(
        &self,
        id: &str,
        force: bool,
        _volumes: bool,
        link: bool,
    ) -> Result<(), ApiError> {
        if link {
            return Err(ApiError::invalid_argument(
                "links are not supported: skiff has no legacy container links",
            ));
        }
        ContainerService::remove(self, id, force).await
    }

    async fn rename(&self, id: &str, new_name: &str) -> Result<(), ApiError> {
        ContainerService::rename(self, id, new_name).await
    }

    async fn update(
        &self,
        id: &str,
        req: ContainerUpdateRequest,
    ) -> Result<ContainerUpdateResponse, ApiError> {
        let body = serde_json::to_value(&req).map_err(internal)?;
        let warnings = ContainerService::update(self, id, &body).await?;
        Ok(ContainerUpdateResponse { warnings })
    }

    async fn pause(&self, id: &str) -> Result<(), ApiError> {
        ContainerService::pause(self, id, true).await
    }

    async fn unpause(&self, id: &str) -> Result<(), ApiError> {
        ContainerService::pause(self, id, false).await
    }

    async fn top(
        &self,
        id: &str,
        ps_args: Option<String>,
    ) -> Result<ContainerTopResponse, ApiError> {
        let c = self.get(id)?;
        let shim = {
            let ctr = c.ctr.lock().await;
            ctr.shim.clone().filter(|_| ctr.rec.state.running)
        };
        let Some(shim) = shim else {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        };
        let pids = shim
            .pids()
            .await
            .map_err(|e| internal(format!("cannot list the container's processes: {e}")))?;
        let (titles, processes) =
            tokio::task::spawn_blocking(move || super::top::top(&pids, ps_args.as_deref()))
                .await
                .map_err(internal)?
                .map_err(ApiError::from)?;
        Ok(ContainerTopResponse { titles, processes })
    }

    async fn stats(
        &self,
        id: &str,
        stream: bool,
        one_shot: bool,
        out: StatsSender,
    ) -> Result<(), ApiError> {
        let c = self.get(id)?;
        let read = |c: &Arc<super::service::Container>| {
            let c = c.clone();
            async move {
                let ctr = c.ctr.lock().await;
                (
                    ctr.rec.state.running.then_some(ctr.rec.state.pid),
                    ctr.rec.name.clone(),
                )
            }
        };
        let (pid, name) = read(&c).await;
        let Some(pid) = pid.filter(|p| *p != 0) else {
            // dockerd answers a stopped container with zeroed stats
            let zero = serde_json::json!({
                "read": super::record::ZERO_TIME, "preread": super::record::ZERO_TIME,
                "name": name, "id": c.id,
                "pids_stats": {}, "blkio_stats": {}, "num_procs": 0, "storage_stats": {},
                "cpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {}},
                "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {}},
                "memory_stats": {},
            });
            return out.send(zero).await;
        };
        let sample = move || tokio::task::spawn_blocking(move || super::stats::sample(pid));
        let mut prev = None;
        if !one_shot || stream {
            prev = sample().await.map_err(internal)?.ok();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        loop {
            let cur = match sample().await.map_err(internal)? {
                Ok(s) => s,
                Err(e) if prev.is_none() => return Err(e.into()),
                Err(_) => return Ok(()),
            };
            let doc = super::stats::stats_json(&c.id, &name, &cur, prev.as_ref());
            if out.send(doc).await.is_err() || !stream {
                return Ok(());
            }
            prev = Some(cur);
            tokio::time::sleep(Duration::from_secs(1)).await;
            if out.is_closed() {
                return Ok(());
            }
        }
    }

    async fn logs(&self, id: &str, opts: LogsOptions) -> Result<LogStream, ApiError> {
        let c = self.get(id)?;
        let (rec, running) = {
            let ctr = c.ctr.lock().await;
            (
                ctr.rec.clone(),
                ctr.rec.state.running || ctr.rec.state.restarting,
            )
        };
        if rec.log_path.is_empty() {
            return Err(ApiError::invalid_argument(
                "configured logging driver does not support reading",
            ));
        }
        let max_file = match self.log_config(&rec)? {
            skiff_shim::LogConfig::JsonFile { max_file, .. } => max_file,
            skiff_shim::LogConfig::None => 1,
        };
        // follow ends when the container stops (after draining what was written)
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(!running || !opts.follow);
        if opts.follow && running {
            let mut status = c.status.subscribe();
            let before = status.borrow().exits;
            tokio::spawn(async move {
                let _ = status
                    .wait_for(|s| s.exits > before || s.removed || !s.running)
                    .await;
                let _ = stop_tx.send(true);
            });
        }
        let query = LogQuery {
            stdout: opts.stdout,
            stderr: opts.stderr,
            since: opts.since,
            until: opts.until,
            tail: opts.tail,
            follow: opts.follow && running,
            timestamps: opts.timestamps,
        };
        let timestamps = opts.timestamps;
        let frames =
            logs::read_logs(rec.log_path.clone().into(), max_file, query, stop_rx).map(move |r| {
                r.map(|e| LogFrame {
                    stream: match e.stream {
                        LogStreamKind::Stdout => StdStream::Stdout,
                        LogStreamKind::Stderr => StdStream::Stderr,
                    },
                    data: e.render(timestamps),
                })
                .map_err(|e| internal(format!("cannot read the log: {e}")))
            });
        Ok(LogStream {
            tty: rec.tty(),
            frames: frames.boxed(),
        })
    }

    async fn attach_prepare(
        &self,
        id: &str,
        _opts: &AttachOptions,
    ) -> Result<AttachInfo, ApiError> {
        Ok(AttachInfo {
            tty: self.attach_info(id).await?,
        })
    }

    async fn attach(
        &self,
        id: &str,
        opts: AttachOptions,
        mut conn: HijackedStream,
    ) -> Result<(), ApiError> {
        use tokio::io::AsyncWriteExt;
        if opts.logs {
            // the past output first, in the stream's own format (frames unless tty)
            let mut logs = ContainerBackend::logs(
                self,
                id,
                LogsOptions {
                    follow: false,
                    stdout: opts.stdout,
                    stderr: opts.stderr,
                    since: None,
                    until: None,
                    timestamps: false,
                    tail: None,
                },
            )
            .await?;
            while let Some(frame) = logs.frames.next().await {
                let frame = frame?;
                let bytes = if logs.tty {
                    frame.data
                } else {
                    skiff_api::mux::frame(frame.stream as u8, &frame.data)
                };
                if conn.write_all(&bytes).await.is_err() {
                    return Ok(());
                }
            }
        }
        if !opts.stream {
            let _ = conn.shutdown().await;
            return Ok(());
        }
        ContainerService::attach(
            self,
            id,
            Streams {
                stdin: opts.stdin,
                stdout: opts.stdout,
                stderr: opts.stderr,
            },
            conn,
        )
        .await
    }

    async fn resize(&self, id: &str, height: u32, width: u32) -> Result<(), ApiError> {
        ContainerService::resize(self, id, height, width).await
    }

    async fn prune(&self, filters: Filters) -> Result<ContainerPruneReport, ApiError> {
        let (deleted, space) = ContainerService::prune(self, &filters).await?;
        Ok(ContainerPruneReport {
            containers_deleted: (!deleted.is_empty()).then_some(deleted),
            space_reclaimed: space,
        })
    }

    async fn images_in_use(&self) -> Result<Vec<String>, ApiError> {
        Ok(ContainerService::images_in_use(self).await)
    }

    async fn disk_usage(&self) -> Result<Vec<ContainerSummary>, ApiError> {
        self.list(ContainerListOptions {
            all: true,
            limit: None,
            size: true,
            filters: Filters::default(),
        })
        .await
    }
}

#[async_trait]
impl ExecBackend for ContainerService {
    async fn create(
        &self,
        container: &str,
        req: ExecCreateRequest,
    ) -> Result<ExecCreateResponse, ApiError> {
        let cfg = ExecConfig {
            attach_stdin: req.attach_stdin,
            attach_stdout: req.attach_stdout,
            attach_stderr: req.attach_stderr,
            detach_keys: req.detach_keys.unwrap_or_default(),
            tty: req.tty,
            env: req.env.unwrap_or_default(),
            cmd: req.cmd.unwrap_or_default(),
            privileged: req.privileged,
            user: req.user.unwrap_or_default(),
            working_dir: req.working_dir.unwrap_or_default(),
            console_size: req.console_size,
        };
        let id = self.exec_create(container, cfg).await?;
        Ok(ExecCreateResponse { id })
    }

    async fn start_prepare(
        &self,
        id: &str,
        _req: &ExecStartRequest,
    ) -> Result<AttachInfo, ApiError> {
        Ok(AttachInfo {
            tty: self.exec_prepare(id)?,
        })
    }

    async fn start(
        &self,
        id: &str,
        req: ExecStartRequest,
        conn: Option<HijackedStream>,
    ) -> Result<(), ApiError> {
        self.exec_start(id, req.detach, Some(req.tty), conn).await
    }

    async fn inspect(&self, id: &str) -> Result<ExecInspect, ApiError> {
        from_value(self.exec_inspect(id)?, "exec inspect")
    }

    async fn resize(&self, id: &str, height: u32, width: u32) -> Result<(), ApiError> {
        self.exec_resize(id, height, width).await
    }
}

/// `GET /events` on the event bus.
pub struct EventsService {
    pub bus: Arc<EventBus>,
}

#[async_trait]
impl EventsBackend for EventsService {
    async fn subscribe(
        &self,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        filters: Filters,
    ) -> Result<EventStream, ApiError> {
        let filters = EventFilters::new(filters)?;
        let stream = self
            .bus
            .subscribe(since, until, &filters)
            .map(|e| e.to_message());
        Ok(stream.boxed())
    }
}
