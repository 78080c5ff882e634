//! The traits the engine implements, one per API area. Adding an area (containers, exec,
//! networks, volumes, events, deltas) means: a trait here, a field in [`Backends`], a module
//! in `routes/`.

use std::sync::Arc;

use async_trait::async_trait;

use crate::auth::AuthConfig;
use crate::error::ApiError;
use crate::filters::Filters;
use crate::stream::{BodyReader, Progress, TarWriter};
use crate::types::container::{
    AttachInfo, AttachOptions, ContainerCreateRequest, ContainerCreateResponse, ContainerInspect,
    ContainerListOptions, ContainerPruneReport, ContainerSummary, ContainerTopResponse,
    ContainerUpdateRequest, ContainerUpdateResponse, ContainerWaitResponse, LogsOptions,
    WaitCondition,
};
use crate::types::exec::{ExecCreateRequest, ExecCreateResponse, ExecInspect, ExecStartRequest};
use crate::types::image::{
    HistoryItem, ImageDeleteItem, ImageInspect, ImageListOptions, ImageSummary, PruneReport,
    PullRequest,
};
use crate::types::system::{AuthResponse, DiskUsage, SystemInfo, SystemVersion};
use crate::version::ApiVersion;
use crate::{
    hijack::HijackedStream,
    stream::{EventStream, LogStream, StatsSender, Timestamp},
};
use futures::future::BoxFuture;

/// `/version`, `/info`, `/system/df`.
#[async_trait]
pub trait SystemBackend: Send + Sync {
    async fn version(&self) -> Result<SystemVersion, ApiError>;
    async fn info(&self) -> Result<SystemInfo, ApiError>;
    async fn disk_usage(&self, version: ApiVersion) -> Result<DiskUsage, ApiError>;
    /// `POST /auth` (`docker login`): checks the credentials against the registry.
    async fn auth(&self, auth: AuthConfig) -> Result<AuthResponse, ApiError>;
}

/// `/images/...`. Streaming calls (`pull`, `load`, `save`) are cancelled by being dropped
/// when the client disconnects: keep state consistent at every `.await`.
#[async_trait]
pub trait ImageBackend: Send + Sync {
    /// Pulls `req.reference()`, reporting through `progress`. An error returned before the
    /// first message becomes an HTTP status; after it, an in-stream error line.
    async fn pull(&self, req: PullRequest, progress: Progress) -> Result<(), ApiError>;
    /// Pushes the local image `name:tag` (every tag of `name` when `tag` is empty) to its
    /// registry. Like `pull`: an error before the first message becomes an HTTP status.
    async fn push(
        &self,
        name: &str,
        tag: &str,
        auth: Option<AuthConfig>,
        progress: Progress,
    ) -> Result<(), ApiError>;
    async fn list(&self, opts: ImageListOptions) -> Result<Vec<ImageSummary>, ApiError>;
    /// `name` is a reference, a full or short ID, or `sha256:<id>`.
    async fn inspect(&self, name: &str) -> Result<ImageInspect, ApiError>;
    async fn history(&self, name: &str) -> Result<Vec<HistoryItem>, ApiError>;
    /// Adds `repo[:tag]` (tag `None` means `latest`) to the image `name`.
    async fn tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<(), ApiError>;
    async fn remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<ImageDeleteItem>, ApiError>;
    /// Loads a `docker save` / OCI layout tar; reports `ProgressMessage::stream("Loaded image: x\n")`.
    async fn load(&self, body: BodyReader, quiet: bool, progress: Progress)
        -> Result<(), ApiError>;
    /// Writes one tar holding `names`. Fail before writing anything to get a proper status.
    async fn save(&self, names: Vec<String>, out: TarWriter) -> Result<(), ApiError>;
    /// `filters` keys are validated: `dangling`, `label`, `label!`, `until`.
    async fn prune(&self, filters: Filters) -> Result<PruneReport, ApiError>;
    /// `POST /images/delta` (balenaEngine): makes a delta image that rebuilds `dest` from
    /// `src`, tagged `tag` when given. Progress as `{"status":…}` lines ending with
    /// `Created delta: sha256:…`. An error before the first message becomes an HTTP status.
    async fn delta(
        &self,
        src: &str,
        dest: &str,
        tag: Option<&str>,
        progress: Progress,
    ) -> Result<(), ApiError> {
        let _ = (src, dest, tag, progress);
        Err(ApiError::not_found(
            "image deltas are not supported by this daemon",
        ))
    }
}

/// `/containers/...`. `id` is a full or unique-prefix ID or a name (with or without `/`);
/// unknown -> `NotFound` with dockerd's words `No such container: <id>`.
#[async_trait]
pub trait ContainerBackend: Send + Sync {
    /// `name` is `None` or a valid name (`/?[a-zA-Z0-9][a-zA-Z0-9_.-]+`, checked by the route;
    /// uniqueness is the backend's: 409 `Conflict. The container name "/x" is already in use`).
    async fn create(
        &self,
        name: Option<String>,
        platform: Option<String>,
        body: ContainerCreateRequest,
    ) -> Result<ContainerCreateResponse, ApiError>;
    /// The newest shape; the route shapes by `version` too, but the backend may need it.
    async fn inspect(
        &self,
        id: &str,
        size: bool,
        version: ApiVersion,
    ) -> Result<ContainerInspect, ApiError>;
    async fn list(&self, opts: ContainerListOptions) -> Result<Vec<ContainerSummary>, ApiError>;
    /// `ErrorKind::NotModified` when already running (-> 304).
    async fn start(&self, id: &str) -> Result<(), ApiError>;
    /// `ErrorKind::NotModified` when not running (-> 304). `timeout` in seconds, `-1` = wait
    /// forever, `None` = the container's `StopTimeout` or 10.
    async fn stop(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), ApiError>;
    async fn restart(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), ApiError>;
    /// `Conflict` when not running (-> 409). `signal` `None` = SIGKILL; names (`SIGHUP`,
    /// `HUP`) and numbers are both accepted.
    async fn kill(&self, id: &str, signal: Option<String>) -> Result<(), ApiError>;
    /// One-call wait for callers inside the engine; the route uses [`Self::wait_start`].
    async fn wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<ContainerWaitResponse, ApiError>;
    /// Two-phase wait so the route can send headers before blocking: resolves the container
    /// now (404 now) and returns a future that completes at the condition. The future is
    /// dropped if the client goes away.
    async fn wait_start(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<BoxFuture<'static, ContainerWaitResponse>, ApiError>;
    /// `Conflict` when running and not `force`.
    async fn remove(
        &self,
        id: &str,
        force: bool,
        volumes: bool,
        link: bool,
    ) -> Result<(), ApiError>;
    /// `new_name` is valid (checked by the route), with or without the leading `/`.
    async fn rename(&self, id: &str, new_name: &str) -> Result<(), ApiError>;
    async fn update(
        &self,
        id: &str,
        req: ContainerUpdateRequest,
    ) -> Result<ContainerUpdateResponse, ApiError>;
    async fn pause(&self, id: &str) -> Result<(), ApiError>;
    async fn unpause(&self, id: &str) -> Result<(), ApiError>;
    /// `ps_args` `None` = `-ef`.
    async fn top(
        &self,
        id: &str,
        ps_args: Option<String>,
    ) -> Result<ContainerTopResponse, ApiError>;
    /// `stream=true`: one JSON document per ~1 s on `out` until the client goes away
    /// (`out.send` fails) or the container stops; `stream=false`: exactly one document
    /// (`one_shot` skips the 1 s `precpu_stats` sample). Fail before sending to get a status.
    async fn stats(
        &self,
        id: &str,
        stream: bool,
        one_shot: bool,
        out: StatsSender,
    ) -> Result<(), ApiError>;
    /// Log frames; the route multiplexes them (no tty) or writes them raw (tty).
    async fn logs(&self, id: &str, opts: LogsOptions) -> Result<LogStream, ApiError>;
    /// Checks the container can be attached (404, 409 for a stopped container without
    /// `logs`) and says whether it has a tty, before the route answers 101/200.
    async fn attach_prepare(&self, id: &str, opts: &AttachOptions) -> Result<AttachInfo, ApiError>;
    /// Pumps the hijacked connection until the process ends or the client goes. The route
    /// sends the 101/200 status line only once this future first reads or writes `conn`
    /// (or has returned): connect to the container's output BEFORE touching `conn`, so
    /// `docker run` (attach, then start) loses nothing, and return an error before
    /// touching it to get a real status.
    async fn attach(
        &self,
        id: &str,
        opts: AttachOptions,
        conn: HijackedStream,
    ) -> Result<(), ApiError>;
    /// The tty size of the container's init process.
    async fn resize(&self, id: &str, height: u32, width: u32) -> Result<(), ApiError>;
    /// Filters validated by the route: `label`, `label!`, `until`.
    async fn prune(&self, filters: Filters) -> Result<ContainerPruneReport, ApiError>;
    /// Image IDs (`sha256:...`) referenced by any container (for `docker rmi` 409 and
    /// `/system/df`); cheap.
    async fn images_in_use(&self) -> Result<Vec<String>, ApiError>;
    /// Every container with `SizeRw`/`SizeRootFs` (for `/system/df`).
    async fn disk_usage(&self) -> Result<Vec<ContainerSummary>, ApiError>;
}

/// `/containers/{id}/exec` and `/exec/...`.
#[async_trait]
pub trait ExecBackend: Send + Sync {
    /// `container` as in [`ContainerBackend`]; 409 when it is not running.
    async fn create(
        &self,
        container: &str,
        req: ExecCreateRequest,
    ) -> Result<ExecCreateResponse, ApiError>;
    /// Checks the exec exists and was not started (404 / 409) and says whether it has a tty.
    async fn start_prepare(&self, id: &str, req: &ExecStartRequest)
        -> Result<AttachInfo, ApiError>;
    /// `req.detach` (then `conn` is `None`): starts and returns. Otherwise pumps `conn` until
    /// the process exits and its output is drained; the status line goes out when this first
    /// touches `conn`, as for [`ContainerBackend::attach`].
    async fn start(
        &self,
        id: &str,
        req: ExecStartRequest,
        conn: Option<HijackedStream>,
    ) -> Result<(), ApiError>;
    async fn inspect(&self, id: &str) -> Result<ExecInspect, ApiError>;
    async fn resize(&self, id: &str, height: u32, width: u32) -> Result<(), ApiError>;
}

/// `GET /events`.
#[async_trait]
pub trait EventsBackend: Send + Sync {
    /// Past events in `[since, until]`, then live ones (if `until` is `None` or in the
    /// future) that pass `filters` (keys validated by the route). The stream ends at `until`.
    async fn subscribe(
        &self,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        filters: Filters,
    ) -> Result<EventStream, ApiError>;
}

/// Everything the server calls into.
#[derive(Clone)]
pub struct Backends {
    pub system: Arc<dyn SystemBackend>,
    pub images: Arc<dyn ImageBackend>,
    pub containers: Arc<dyn ContainerBackend>,
    pub execs: Arc<dyn ExecBackend>,
    pub events: Arc<dyn EventsBackend>,
}
