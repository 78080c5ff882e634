//! A test double of the container, exec and events backends: the API layer is the unit under
//! test, so the backend answers from a few fixed containers and records what it was handed.
//!
//! Containers: `web` (running, no tty), `tty` (running, tty), `stopped` (exited with 3),
//! `fail-attach` (running; attach fails before touching the connection). Anything else is
//! 404 `No such container: <id>`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use serde_json::json;
use skiff_api::mux::frame;
use skiff_api::types::container::*;
use skiff_api::types::event::EventMessage;
use skiff_api::types::exec::*;
use skiff_api::{
    ApiError, ApiVersion, ContainerBackend, EventStream, EventsBackend, ExecBackend, Filters,
    HijackedStream, LogFrame, LogStream, StatsSender, StdStream, Timestamp,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

/// `(name, platform, body)` of a create call.
pub type Created = (Option<String>, Option<String>, ContainerCreateRequest);

#[derive(Default)]
pub struct Fake {
    /// Last create body, returned by inspect of `c1`.
    pub created: Mutex<Option<Created>>,
    /// Every call as `"<method> <args>"`, for assertions on what the route passed.
    pub calls: Mutex<Vec<String>>,
    /// `wait` of `web` completes when notified.
    pub exit: Arc<Notify>,
    /// Live events come from here (taken by the first subscriber).
    pub events_rx: Mutex<Option<mpsc::Receiver<EventMessage>>>,
    /// Fired when a live event stream is dropped (the client went away).
    pub events_dropped: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

/// Sends on drop.
struct DropSignal(Option<tokio::sync::oneshot::Sender<()>>);
impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

impl Fake {
    pub fn new() -> (Fake, mpsc::Sender<EventMessage>) {
        let (tx, rx) = mpsc::channel(8);
        let fake = Fake {
            events_rx: Mutex::new(Some(rx)),
            ..Default::default()
        };
        (fake, tx)
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

/// `(running, tty)` of a known container.
fn lookup(id: &str) -> Result<(bool, bool), ApiError> {
    match id {
        "web" | "fail-attach" | "c1" => Ok((true, false)),
        "tty" | "ttyrun" => Ok((true, true)),
        "stopped" => Ok((false, false)),
        _ => Err(ApiError::not_found(format!("No such container: {id}"))),
    }
}

#[async_trait]
impl ContainerBackend for Fake {
    async fn create(
        &self,
        name: Option<String>,
        platform: Option<String>,
        body: ContainerCreateRequest,
    ) -> Result<ContainerCreateResponse, ApiError> {
        if body.config.image.as_deref().unwrap_or("").is_empty() {
            return Err(ApiError::invalid_argument(
                "no image given: set Image in the request body",
            ));
        }
        if body.config.image.as_deref() == Some("missing") {
            return Err(ApiError::not_found("No such image: missing:latest"));
        }
        // `ttyrun` keeps its name as ID so its tty is known to `lookup`
        let id = match name.as_deref() {
            Some("ttyrun") => "ttyrun",
            _ => "c1",
        };
        *self.created.lock().unwrap() = Some((name, platform, body));
        Ok(ContainerCreateResponse {
            id: id.into(),
            warnings: vec![],
        })
    }
    async fn inspect(
        &self,
        id: &str,
        size: bool,
        version: ApiVersion,
    ) -> Result<ContainerInspect, ApiError> {
        let (running, tty) = lookup(id)?;
        self.record(format!("inspect {id} size={size} version={version}"));
        let created = self.created.lock().unwrap().clone();
        let (config, host_config, name) = match (id, created) {
            ("c1", Some((name, _, body))) => (
                body.config,
                body.host_config.unwrap_or_default(),
                name.unwrap_or_default(),
            ),
            _ => Default::default(),
        };
        let mut config = config;
        if tty {
            config.tty = Some(true);
        }
        Ok(ContainerInspect {
            id: id.into(),
            name: format!("/{name}"),
            state: ContainerState {
                status: if running { "running" } else { "exited" }.into(),
                running,
                ..Default::default()
            },
            config,
            host_config,
            size_rw: size.then_some(12),
            ..Default::default()
        })
    }
    async fn list(&self, opts: ContainerListOptions) -> Result<Vec<ContainerSummary>, ApiError> {
        self.record(format!(
            "list all={} limit={:?} size={} filters={}",
            opts.all,
            opts.limit,
            opts.size,
            opts.filters.to_json()
        ));
        Ok(vec![ContainerSummary {
            id: "web".into(),
            names: vec!["/web".into()],
            state: "running".into(),
            ..Default::default()
        }])
    }
    async fn start(&self, id: &str) -> Result<(), ApiError> {
        let state = lookup(id)?;
        self.record(format!("start {id}"));
        match state {
            (true, _) => Err(ApiError::not_modified()),
            _ => Ok(()),
        }
    }
    async fn stop(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), ApiError> {
        let (running, _) = lookup(id)?;
        self.record(format!("stop {id} {signal:?} {timeout:?}"));
        if running {
            Ok(())
        } else {
            Err(ApiError::not_modified())
        }
    }
    async fn restart(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), ApiError> {
        lookup(id)?;
        self.record(format!("restart {id} {signal:?} {timeout:?}"));
        Ok(())
    }
    async fn kill(&self, id: &str, signal: Option<String>) -> Result<(), ApiError> {
        let (running, _) = lookup(id)?;
        self.record(format!("kill {id} {signal:?}"));
        if running {
            Ok(())
        } else {
            Err(ApiError::conflict(format!(
                "cannot kill container: {id}: container {id} is not running"
            )))
        }
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
        let (running, _) = lookup(id)?;
        self.record(format!("wait {id} {condition:?}"));
        if !running && condition == WaitCondition::NotRunning {
            return Ok(Box::pin(async {
                ContainerWaitResponse {
                    status_code: 3,
                    error: None,
                }
            }));
        }
        let exit = self.exit.clone();
        Ok(Box::pin(async move {
            exit.notified().await;
            ContainerWaitResponse {
                status_code: 7,
                error: None,
            }
        }))
    }
    async fn remove(
        &self,
        id: &str,
        force: bool,
        volumes: bool,
        link: bool,
    ) -> Result<(), ApiError> {
        let (running, _) = lookup(id)?;
        self.record(format!("remove {id} force={force} v={volumes} link={link}"));
        if running && !force {
            return Err(ApiError::conflict(format!(
                "cannot remove container \"/{id}\": container is running: stop the container before removing or force remove"
            )));
        }
        Ok(())
    }
    async fn rename(&self, id: &str, new_name: &str) -> Result<(), ApiError> {
        lookup(id)?;
        self.record(format!("rename {id} {new_name}"));
        Ok(())
    }
    async fn update(
        &self,
        id: &str,
        req: ContainerUpdateRequest,
    ) -> Result<ContainerUpdateResponse, ApiError> {
        lookup(id)?;
        self.record(format!(
            "update {id} memory={:?} restart={:?}",
            req.resources.memory,
            req.restart_policy.map(|p| p.name)
        ));
        Ok(ContainerUpdateResponse { warnings: vec![] })
    }
    async fn pause(&self, id: &str) -> Result<(), ApiError> {
        match lookup(id)? {
            (true, _) => Ok(()),
            _ => Err(ApiError::conflict(format!("container {id} is not running"))),
        }
    }
    async fn unpause(&self, id: &str) -> Result<(), ApiError> {
        lookup(id)?;
        Ok(())
    }
    async fn top(
        &self,
        id: &str,
        ps_args: Option<String>,
    ) -> Result<ContainerTopResponse, ApiError> {
        lookup(id)?;
        Ok(ContainerTopResponse {
            titles: vec!["PID".into(), "CMD".into()],
            processes: vec![vec!["1".into(), ps_args.unwrap_or_else(|| "-ef".into())]],
        })
    }
    async fn stats(
        &self,
        id: &str,
        stream: bool,
        one_shot: bool,
        out: StatsSender,
    ) -> Result<(), ApiError> {
        lookup(id)?;
        let n = if stream { 3 } else { 1 };
        for i in 0..n {
            out.send(json!({"id": id, "n": i, "one_shot": one_shot}))
                .await?;
        }
        Ok(())
    }
    async fn logs(&self, id: &str, opts: LogsOptions) -> Result<LogStream, ApiError> {
        let (_, tty) = lookup(id)?;
        self.record(format!(
            "logs {id} follow={} tail={:?} since={:?} ts={}",
            opts.follow,
            opts.tail,
            opts.since.map(|t| t.timestamp()),
            opts.timestamps
        ));
        let mut frames = vec![];
        if opts.stdout {
            frames.push(Ok(LogFrame {
                stream: StdStream::Stdout,
                data: Bytes::from("out\n"),
            }));
        }
        if opts.stderr {
            frames.push(Ok(LogFrame {
                stream: StdStream::Stderr,
                data: Bytes::from("err\n"),
            }));
        }
        Ok(LogStream {
            tty,
            frames: futures::stream::iter(frames).boxed(),
        })
    }
    async fn attach_prepare(&self, id: &str, opts: &AttachOptions) -> Result<AttachInfo, ApiError> {
        let (running, tty) = lookup(id)?;
        if !running && !opts.logs {
            return Err(ApiError::conflict(
                "You cannot attach to a stopped container, start it first",
            ));
        }
        Ok(AttachInfo { tty })
    }
    async fn attach(
        &self,
        id: &str,
        opts: AttachOptions,
        conn: HijackedStream,
    ) -> Result<(), ApiError> {
        let (_, tty) = lookup(id)?;
        if id == "fail-attach" {
            return Err(ApiError::conflict("container fail-attach is restarting"));
        }
        self.record(format!(
            "attach {id} stdin={} stream={}",
            opts.stdin, opts.stream
        ));
        echo(conn, tty, "attached\n").await
    }
    async fn resize(&self, id: &str, height: u32, width: u32) -> Result<(), ApiError> {
        lookup(id)?;
        self.record(format!("resize {id} {height}x{width}"));
        Ok(())
    }
    async fn prune(&self, filters: Filters) -> Result<ContainerPruneReport, ApiError> {
        self.record(format!("prune {}", filters.to_json()));
        Ok(ContainerPruneReport {
            containers_deleted: Some(vec!["old".into()]),
            space_reclaimed: 5,
        })
    }
    async fn images_in_use(&self) -> Result<Vec<String>, ApiError> {
        Ok(vec![])
    }
    async fn disk_usage(&self) -> Result<Vec<ContainerSummary>, ApiError> {
        Ok(vec![])
    }
}

/// Greets, then echoes every stdin chunk back (as a stdout frame without tty) until EOF
/// (or, with a tty, a Ctrl-D byte), then says bye and closes: what an interactive `cat` would
/// do.
async fn echo(mut conn: HijackedStream, tty: bool, greeting: &str) -> Result<(), ApiError> {
    let io = |e: std::io::Error| ApiError::internal(format!("stream: {e}"));
    let out = |data: &[u8]| {
        if tty {
            Bytes::copy_from_slice(data)
        } else {
            frame(1, data)
        }
    };
    conn.write_all(&out(greeting.as_bytes()))
        .await
        .map_err(io)?;
    conn.flush().await.map_err(io)?;
    let mut buf = [0u8; 1024];
    loop {
        let n = conn.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        let eof = tty
            .then(|| buf[..n].iter().position(|b| *b == 0x04))
            .flatten();
        conn.write_all(&out(&buf[..eof.unwrap_or(n)]))
            .await
            .map_err(io)?;
        conn.flush().await.map_err(io)?;
        if eof.is_some() {
            break;
        }
    }
    if !tty {
        conn.write_all(&frame(2, b"bye\n")).await.map_err(io)?;
    }
    conn.shutdown().await.map_err(io)?;
    Ok(())
}

#[async_trait]
impl ExecBackend for Fake {
    async fn create(
        &self,
        container: &str,
        req: ExecCreateRequest,
    ) -> Result<ExecCreateResponse, ApiError> {
        let (running, _) = lookup(container)?;
        if !running {
            return Err(ApiError::conflict(format!(
                "container {container} is not running"
            )));
        }
        self.record(format!(
            "exec-create {container} {:?} tty={}",
            req.cmd, req.tty
        ));
        Ok(ExecCreateResponse {
            id: if req.tty { "e-tty" } else { "e1" }.into(),
        })
    }
    async fn start_prepare(
        &self,
        id: &str,
        _req: &ExecStartRequest,
    ) -> Result<AttachInfo, ApiError> {
        match id {
            "e1" => Ok(AttachInfo { tty: false }),
            "e-tty" => Ok(AttachInfo { tty: true }),
            "done" => Err(ApiError::conflict("exec done has already been started")),
            _ => Err(ApiError::not_found(format!("No such exec instance: {id}"))),
        }
    }
    async fn start(
        &self,
        id: &str,
        req: ExecStartRequest,
        conn: Option<HijackedStream>,
    ) -> Result<(), ApiError> {
        self.record(format!("exec-start {id} detach={}", req.detach));
        match conn {
            None => Ok(()),
            Some(conn) => echo(conn, id == "e-tty", "exec\n").await,
        }
    }
    async fn inspect(&self, id: &str) -> Result<ExecInspect, ApiError> {
        if id != "e1" {
            return Err(ApiError::not_found(format!("No such exec instance: {id}")));
        }
        Ok(ExecInspect {
            id: id.into(),
            exit_code: Some(0),
            container_id: "web".into(),
            ..Default::default()
        })
    }
    async fn resize(&self, id: &str, height: u32, width: u32) -> Result<(), ApiError> {
        self.record(format!("exec-resize {id} {height}x{width}"));
        Ok(())
    }
}

#[async_trait]
impl EventsBackend for Fake {
    async fn subscribe(
        &self,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        filters: Filters,
    ) -> Result<EventStream, ApiError> {
        self.record(format!(
            "events since={:?} until={:?} filters={}",
            since.map(|t| t.timestamp_nanos_opt()),
            until.map(|t| t.timestamp()),
            filters.to_json()
        ));
        let past = EventMessage::new(
            "container",
            "create",
            "web",
            BTreeMap::from([("image".into(), "busybox".into())]),
            1,
        );
        if until.is_some() {
            // a bounded request: the past only, then the end
            return Ok(futures::stream::iter(vec![past]).boxed());
        }
        let rx = self.events_rx.lock().unwrap().take();
        let signal = DropSignal(self.events_dropped.lock().unwrap().take());
        let live = futures::stream::unfold((rx, signal), |(rx, signal)| async move {
            let mut rx = rx?;
            let e = rx.recv().await?;
            Some((e, (Some(rx), signal)))
        });
        Ok(live.boxed())
    }
}
