//! The traits the engine implements, one per API area. Adding an area (containers, exec,
//! networks, volumes, events, deltas) means: a trait here, a field in [`Backends`], a module
//! in `routes/`.

use std::sync::Arc;

use async_trait::async_trait;

use crate::auth::AuthConfig;
use crate::error::ApiError;
use crate::filters::Filters;
use crate::stream::{BodyReader, Progress, TarWriter};
use crate::types::image::{
    HistoryItem, ImageDeleteItem, ImageInspect, ImageListOptions, ImageSummary, PruneReport,
    PullRequest,
};
use crate::types::system::{AuthResponse, DiskUsage, SystemInfo, SystemVersion};
use crate::version::ApiVersion;

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

/// Everything the server calls into.
#[derive(Clone)]
pub struct Backends {
    pub system: Arc<dyn SystemBackend>,
    pub images: Arc<dyn ImageBackend>,
}
