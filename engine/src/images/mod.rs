//! The image service: implements the API's `ImageBackend` on the store and the registry
//! client. Local operations live here; pull, load and save in their own modules.

mod archive;
mod delta;
mod errors;
mod names;
mod pull;
mod push;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use skiff_api::types::image::{
    GraphDriver, HistoryItem, ImageConfig, ImageDeleteItem, ImageInspect, ImageListOptions,
    ImageMetadata, ImageSummary, PruneReport, PullRequest, RootFs,
};
use skiff_api::{ApiError, BodyReader, Filters, ImageBackend, Progress, TarWriter};
use skiff_storage::{Digest, ImageRecord, Refs, Store};

pub use errors::blocking;
use names::Matched;

/// How often a streaming layer's byte count goes out (pull, push, delta).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

use crate::registry::{Reference, RegistryClient};

pub struct ImageService {
    store: Arc<Store>,
    registry: RegistryClient,
    max_concurrent_downloads: usize,
    /// Which images containers use (set by the daemon's wiring): they keep their layers.
    in_use: std::sync::OnceLock<InUse>,
    /// Where image events (pull, tag, untag, delete) go (set by the daemon's wiring).
    events: std::sync::OnceLock<Arc<crate::containers::events::EventBus>>,
}

/// `(image ID, container ID)` for every container, from the container service.
pub type InUse =
    Arc<dyn Fn() -> futures::future::BoxFuture<'static, Vec<(String, String)>> + Send + Sync>;

/// Everything list/inspect need about one image, read in one blocking call.
struct ImageView {
    record: ImageRecord,
    config: Value,
    tags: Vec<String>,
    digests: Vec<String>,
}

impl ImageService {
    pub fn new(
        store: Arc<Store>,
        registry: RegistryClient,
        max_concurrent_downloads: usize,
    ) -> Self {
        ImageService {
            store,
            registry,
            max_concurrent_downloads,
            in_use: std::sync::OnceLock::new(),
            events: std::sync::OnceLock::new(),
        }
    }

    /// `docker login`: checks credentials against the registry in `serveraddress`.
    pub async fn login(&self, auth: skiff_api::AuthConfig) -> Result<(), ApiError> {
        let domain = login_domain(&auth.serveraddress);
        // Any repository of that registry will do: login checks `GET /v2/` only.
        let probe = Reference::parse(&format!("{domain}/skiff/login")).map_err(|e| {
            ApiError::invalid_argument(format!(
                "invalid registry address {:?}: {e}",
                auth.serveraddress
            ))
        })?;
        let repo = self.registry.repository(&probe, &pull::convert_auth(auth));
        repo.check_login().await.map_err(|e| {
            let e = errors::registry(e);
            // Here a refusal is the answer to the client's own credentials: 401, as dockerd.
            if e.kind == skiff_api::ErrorKind::Forbidden {
                ApiError::unauthorized(e.message)
            } else {
                e
            }
        })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Resolves a name to an image ID and how it matched.
    async fn lookup(&self, name: &str) -> Result<(Digest, Matched), ApiError> {
        let store = self.store.clone();
        let name = name.to_string();
        blocking(move || {
            let refs = store.refs().map_err(errors::store)?;
            let ids: Vec<Digest> = store
                .images()
                .map_err(errors::store)?
                .into_iter()
                .map(|r| r.id)
                .collect();
            names::resolve(&name, &refs, &ids)
        })
        .await
    }

    async fn views(&self) -> Result<Vec<ImageView>, ApiError> {
        let store = self.store.clone();
        blocking(move || {
            let refs = store.refs().map_err(errors::store)?;
            store
                .images()
                .map_err(errors::store)?
                .into_iter()
                .map(|record| view(&store, &refs, record))
                .collect()
        })
        .await
    }

    async fn view_of(&self, id: Digest) -> Result<ImageView, ApiError> {
        let store = self.store.clone();
        blocking(move || {
            let refs = store.refs().map_err(errors::store)?;
            let record = store
                .image(&id)
                .map_err(errors::store)?
                .ok_or_else(|| ApiError::not_found(format!("No such image: {id}")))?;
            view(&store, &refs, record)
        })
        .await
    }

    /// Untags every reference in `keys`; deletes the image when `delete` and returns the
    /// docker-style report.
    async fn untag_and_delete(
        &self,
        id: Digest,
        keys: Vec<String>,
        delete: bool,
    ) -> Result<Vec<ImageDeleteItem>, ApiError> {
        let store = self.store.clone();
        blocking(move || {
            let mut out = Vec::new();
            for key in keys {
                if store.remove_ref(&key).map_err(errors::store)? {
                    out.push(ImageDeleteItem::Untagged(names::familiar(&key)));
                }
            }
            if delete {
                let layers = store.delete_image(&id).map_err(errors::store)?;
                out.push(ImageDeleteItem::Deleted(id.to_string()));
                out.extend(
                    layers
                        .into_iter()
                        .map(|l| ImageDeleteItem::Deleted(l.to_string())),
                );
            }
            Ok(out)
        })
        .await
    }
}

fn view(store: &Store, refs: &Refs, record: ImageRecord) -> Result<ImageView, ApiError> {
    let bytes = store.image_config(&record.id).map_err(errors::store)?;
    let config: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::internal(format!(
            "stored config of image {} is not JSON ({e}); run `skiff check`",
            record.id
        ))
    })?;
    let familiar_of = |map: &std::collections::BTreeMap<String, Digest>| {
        let mut v: Vec<String> = map
            .iter()
            .filter(|(_, id)| **id == record.id)
            .map(|(k, _)| names::familiar(k))
            .collect();
        v.sort();
        v
    };
    let tags = familiar_of(&refs.tags);
    let digests = familiar_of(&refs.digests);
    Ok(ImageView {
        record,
        config,
        tags,
        digests,
    })
}

/// The registry host of a `serveraddress` as the CLI sends it: `127.0.0.1:5000`,
/// `https://host/`, or Docker Hub's `https://index.docker.io/v1/`.
fn login_domain(server: &str) -> String {
    let s = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or_default();
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

fn created_unix(config: &Value) -> i64 {
    config
        .get("created")
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

fn labels(config: &Value) -> HashMap<String, String> {
    config
        .pointer("/config/Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn str_field(config: &Value, key: &str) -> String {
    config
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn summary(v: &ImageView) -> ImageSummary {
    let size = v.record.size as i64;
    ImageSummary {
        id: v.record.id.to_string(),
        parent_id: String::new(),
        repo_tags: v.tags.clone(),
        repo_digests: v.digests.clone(),
        created: created_unix(&v.config),
        size,
        shared_size: -1,
        virtual_size: Some(size),
        labels: labels(&v.config),
        containers: -1,
    }
}

/// `reference` filter: docker matches a glob against the familiar name and name:tag.
fn matches_reference(patterns: &[String], tags: &[String], digests: &[String]) -> bool {
    patterns.iter().any(|p| {
        tags.iter().chain(digests).any(|t| {
            let name = t.split('@').next().unwrap_or(t);
            let repo = match name.rfind(':') {
                Some(i) if !name[i..].contains('/') => &name[..i],
                _ => name,
            };
            glob_match(p, t) || glob_match(p, name) || glob_match(p, repo)
        })
    })
}

/// `path.Match`-style glob: `*` and `?` never cross `/`.
fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && t[0] != b'/' && go(p, &t[1..])),
            (Some(b'?'), Some(c)) if *c != b'/' => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// Applies `before`, `since`, `dangling`, `label`, `reference`, `until` filters.
fn filter_views(views: Vec<ImageView>, filters: &Filters) -> Result<Vec<ImageView>, ApiError> {
    let created_of = |name: &str| -> Result<i64, ApiError> {
        views
            .iter()
            .find(|v| {
                v.record.id.as_str() == name
                    || v.record
                        .id
                        .hex()
                        .starts_with(name.trim_start_matches("sha256:"))
                    || v.tags
                        .iter()
                        .any(|t| t == name || *t == format!("{name}:latest"))
            })
            .map(|v| created_unix(&v.config))
            .ok_or_else(|| ApiError::not_found(format!("No such image: {name}")))
    };
    let before: Option<i64> = filters
        .get("before")
        .first()
        .map(|n| created_of(n))
        .transpose()?;
    let since: Option<i64> = filters
        .get("since")
        .first()
        .map(|n| created_of(n))
        .transpose()?;
    let until: Option<i64> = filters
        .get("until")
        .first()
        .map(|u| parse_timestamp(u))
        .transpose()?;
    let dangling = filters.bool("dangling")?;
    let refs = filters.get("reference").to_vec();
    Ok(views
        .into_iter()
        .filter(|v| {
            let created = created_unix(&v.config);
            before.is_none_or(|b| created < b)
                && since.is_none_or(|s| created > s)
                && until.is_none_or(|u| created <= u)
                && dangling.is_none_or(|d| d == v.tags.is_empty())
                && (refs.is_empty() || matches_reference(&refs, &v.tags, &v.digests))
                && filters.match_labels("label", &labels(&v.config))
        })
        .collect())
}

/// `until` values: unix seconds (optionally fractional) or RFC 3339.
fn parse_timestamp(s: &str) -> Result<i64, ApiError> {
    if let Ok(secs) = s.split('.').next().unwrap_or(s).parse::<i64>() {
        return Ok(secs);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .map_err(|_| {
            ApiError::invalid_argument(format!(
                "invalid timestamp {s:?}: use unix seconds or RFC 3339"
            ))
        })
}

#[async_trait]
impl ImageBackend for ImageService {
    async fn pull(&self, req: PullRequest, progress: Progress) -> Result<(), ApiError> {
        let reference = req.reference();
        pull::pull(self, req, progress).await?;
        let name = names::familiar(&reference);
        self.event("pull", &name, &name);
        Ok(())
    }

    async fn push(
        &self,
        name: &str,
        tag: &str,
        auth: Option<skiff_api::AuthConfig>,
        progress: Progress,
    ) -> Result<(), ApiError> {
        push::push(self, name, tag, auth, progress).await
    }

    async fn delta(
        &self,
        src: &str,
        dest: &str,
        tag: Option<&str>,
        progress: Progress,
    ) -> Result<(), ApiError> {
        delta::create(self, src, dest, tag, progress).await
    }

    async fn list(&self, opts: ImageListOptions) -> Result<Vec<ImageSummary>, ApiError> {
        let views = filter_views(self.views().await?, &opts.filters)?;
        let mut out: Vec<ImageSummary> = views.iter().map(summary).collect();
        if opts.shared_size {
            let mut users: HashMap<&Digest, usize> = HashMap::new();
            for v in &views {
                for l in &v.record.layers {
                    *users.entry(&l.chain_id).or_default() += 1;
                }
            }
            let store = self.store.clone();
            let sizes: HashMap<Digest, u64> = blocking(move || {
                Ok(store
                    .layers()
                    .map_err(errors::store)?
                    .into_iter()
                    .map(|l| (l.chain_id, l.size))
                    .collect())
            })
            .await?;
            for (s, v) in out.iter_mut().zip(&views) {
                s.shared_size = v
                    .record
                    .layers
                    .iter()
                    .filter(|l| users.get(&l.chain_id).copied().unwrap_or(0) > 1)
                    .map(|l| sizes.get(&l.chain_id).copied().unwrap_or(0) as i64)
                    .sum();
            }
        }
        if !opts.digests {
            // docker still returns RepoDigests; the flag only matters to old clients.
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn inspect(&self, name: &str) -> Result<ImageInspect, ApiError> {
        let (id, _) = self.lookup(name).await?;
        let v = self.view_of(id).await?;
        let c = &v.config;
        let image_config = |key: &str| -> Result<Option<ImageConfig>, ApiError> {
            match c.get(key) {
                Some(value) if !value.is_null() => {
                    ImageConfig::from_json(value).map(Some).map_err(|e| {
                        ApiError::internal(format!(
                            "image {} has a malformed {key}: {e}",
                            v.record.id
                        ))
                    })
                }
                _ => Ok(None),
            }
        };
        let lower: Vec<String> = v
            .record
            .layers
            .iter()
            .rev()
            .map(|l| {
                self.store
                    .layer_diff_path(&l.chain_id)
                    .display()
                    .to_string()
            })
            .collect();
        let size = v.record.size as i64;
        Ok(ImageInspect {
            id: v.record.id.to_string(),
            repo_tags: v.tags.clone(),
            repo_digests: v.digests.clone(),
            parent: String::new(),
            comment: str_field(c, "comment"),
            created: c.get("created").and_then(Value::as_str).map(str::to_string),
            container: c
                .get("container")
                .and_then(Value::as_str)
                .map(str::to_string),
            container_config: image_config("container_config")?,
            docker_version: str_field(c, "docker_version"),
            author: str_field(c, "author"),
            config: image_config("config")?,
            architecture: str_field(c, "architecture"),
            variant: c.get("variant").and_then(Value::as_str).map(str::to_string),
            os: str_field(c, "os"),
            os_version: c
                .get("os.version")
                .and_then(Value::as_str)
                .map(str::to_string),
            size,
            virtual_size: Some(size),
            graph_driver: GraphDriver {
                name: "overlay2".into(),
                data: HashMap::from([("LowerDir".to_string(), lower.join(":"))]),
            },
            root_fs: RootFs {
                kind: "layers".into(),
                layers: v
                    .record
                    .layers
                    .iter()
                    .map(|l| l.diff_id.to_string())
                    .collect(),
            },
            metadata: ImageMetadata {
                last_tag_time: v.record.added.clone(),
            },
        })
    }

    async fn history(&self, name: &str) -> Result<Vec<HistoryItem>, ApiError> {
        let (id, _) = self.lookup(name).await?;
        let v = self.view_of(id).await?;
        let store = self.store.clone();
        let chain: Vec<Digest> = v.record.layers.iter().map(|l| l.chain_id.clone()).collect();
        let sizes: Vec<u64> = blocking(move || {
            chain
                .iter()
                .map(|c| {
                    Ok(store
                        .layer(c)
                        .map_err(errors::store)?
                        .map(|l| l.size)
                        .unwrap_or(0))
                })
                .collect()
        })
        .await?;
        let entries = v
            .config
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut items = Vec::new();
        let mut layer = 0usize;
        if entries.is_empty() {
            for s in &sizes {
                items.push(HistoryItem {
                    id: "<missing>".into(),
                    created: created_unix(&v.config),
                    size: *s as i64,
                    ..Default::default()
                });
            }
        }
        for h in &entries {
            let empty = h
                .get("empty_layer")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let size = if empty {
                0
            } else {
                let s = sizes.get(layer).copied().unwrap_or(0);
                layer += 1;
                s
            };
            items.push(HistoryItem {
                id: "<missing>".into(),
                created: created_unix(h),
                created_by: str_field(h, "created_by"),
                tags: None,
                size: size as i64,
                comment: str_field(h, "comment"),
            });
        }
        items.reverse();
        if let Some(top) = items.first_mut() {
            top.id = v.record.id.to_string();
            top.tags = Some(v.tags.clone());
        }
        Ok(items)
    }

    async fn tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<(), ApiError> {
        let (id, _) = self.lookup(name).await?;
        let target = Reference::parse_normalized_named(repo).map_err(errors::registry)?;
        if target.digest().is_some() {
            return Err(ApiError::invalid_argument(
                "refusing to create a tag with a digest reference; give repo and tag only",
            ));
        }
        let target = match (tag.filter(|t| !t.is_empty()), target.tag()) {
            (Some(t), _) => target.with_tag(t).map_err(errors::registry)?,
            (None, Some(_)) => target,
            (None, None) => target.with_tag("latest").map_err(errors::registry)?,
        };
        let key = names::store_key(&target);
        let store = self.store.clone();
        let (key2, id2) = (key.clone(), id.clone());
        blocking(move || store.set_tag(&key2, &id2).map_err(errors::store)).await?;
        self.event("tag", id.as_str(), &names::familiar(&key));
        Ok(())
    }

    async fn remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<ImageDeleteItem>, ApiError> {
        let (id, _) = self.lookup(name).await?;
        let items = self.remove_image(name, force, noprune).await?;
        for i in &items {
            match i {
                ImageDeleteItem::Untagged(t) => self.event("untag", id.as_str(), t),
                ImageDeleteItem::Deleted(d) if d == id.as_str() => self.event("delete", d, d),
                ImageDeleteItem::Deleted(_) => {}
            }
        }
        Ok(items)
    }

    async fn load(
        &self,
        body: BodyReader,
        quiet: bool,
        progress: Progress,
    ) -> Result<(), ApiError> {
        archive::load(self, body, quiet, progress).await
    }

    async fn save(&self, names: Vec<String>, out: TarWriter) -> Result<(), ApiError> {
        archive::save(self, names, out).await
    }

    async fn prune(&self, filters: Filters) -> Result<PruneReport, ApiError> {
        let dangling_only = filters.bool("dangling")?.unwrap_or(true);
        let until: Option<i64> = filters
            .get("until")
            .first()
            .map(|u| parse_timestamp(u))
            .transpose()?;
        let views = self.views().await?;
        let mut report = PruneReport::default();
        let before = self.layer_bytes().await?;
        for v in views {
            if dangling_only && !v.tags.is_empty() {
                continue;
            }
            if self.container_using(&v.record.id).await.is_some() {
                continue;
            }
            if until.is_some_and(|u| created_unix(&v.config) > u)
                || !filters.match_labels("label", &labels(&v.config))
            {
                continue;
            }
            let keys: Vec<String> = v
                .tags
                .iter()
                .chain(&v.digests)
                .map(|f| {
                    Reference::parse_normalized_named(f)
                        .map(|r| names::store_key(&r))
                        .unwrap_or_else(|_| f.clone())
                })
                .collect();
            let items = self
                .untag_and_delete(v.record.id.clone(), keys, true)
                .await?;
            report.images_deleted.extend(items);
        }
        report.space_reclaimed = before.saturating_sub(self.layer_bytes().await?);
        Ok(report)
    }
}

impl ImageService {
    async fn layer_bytes(&self) -> Result<u64, ApiError> {
        let store = self.store.clone();
        blocking(move || {
            Ok(store
                .layers()
                .map_err(errors::store)?
                .iter()
                .map(|l| l.size)
                .sum())
        })
        .await
    }

    /// Image summaries for `/system/df`, with shared sizes and container counts.
    pub async fn disk_usage(&self) -> Result<(Vec<ImageSummary>, i64), ApiError> {
        let list = self
            .list(ImageListOptions {
                all: true,
                digests: true,
                shared_size: true,
                filters: Filters::default(),
                version: skiff_api::DEFAULT_API_VERSION,
            })
            .await?;
        let total = self.layer_bytes().await? as i64;
        let list = list
            .into_iter()
            .map(|mut s| {
                s.containers = 0;
                s
            })
            .collect();
        Ok((list, total))
    }
}

impl ImageService {
    /// Lets `rmi` and prune keep the images containers use.
    pub fn set_in_use(&self, f: InUse) {
        let _ = self.in_use.set(f);
    }

    /// A container using image `id`, if any.
    async fn container_using(&self, id: &Digest) -> Option<String> {
        let f = self.in_use.get()?.clone();
        f().await
            .into_iter()
            .find(|(image, _)| image == id.as_str())
            .map(|(_, c)| c)
    }
}

impl ImageService {
    fn event(&self, action: &str, id: &str, name: &str) {
        if let Some(bus) = self.events.get() {
            let attrs = std::collections::BTreeMap::from([("name".to_string(), name.to_string())]);
            bus.publish(crate::containers::events::Event::new(
                "image", action, id, attrs,
            ));
        }
    }

    /// Sends image events to the daemon's event bus.
    pub fn set_events(&self, bus: Arc<crate::containers::events::EventBus>) {
        let _ = self.events.set(bus);
    }

    async fn remove_image(
        &self,
        name: &str,
        force: bool,
        _noprune: bool,
    ) -> Result<Vec<ImageDeleteItem>, ApiError> {
        let (id, matched) = self.lookup(name).await?;
        let user = self.container_using(&id).await;
        let store = self.store.clone();
        let refs = blocking(move || store.refs().map_err(errors::store)).await?;
        let all: Vec<String> = refs.for_image(&id);
        let tags: Vec<&String> = refs
            .tags
            .iter()
            .filter(|(_, v)| **v == id)
            .map(|(k, _)| k)
            .collect();
        match matched {
            Matched::Reference(key) => {
                // Untag only, unless this was the last tag: then the digests go and the
                // image with them, as dockerd does.
                let last_tag = tags.iter().all(|t| **t == key);
                if let (true, Some(c)) = (last_tag, &user) {
                    if !force {
                        return Err(ApiError::conflict(format!(
                            "conflict: unable to remove repository reference {name:?} (must force) - container {} is using its referenced image {}",
                            &c[..c.len().min(12)],
                            names::short_id(&id)
                        )));
                    }
                    // forced: the tag goes, the image stays for its container
                    return self.untag_and_delete(id, vec![key], false).await;
                }
                if last_tag {
                    self.untag_and_delete(id, all, true).await
                } else {
                    self.untag_and_delete(id, vec![key], false).await
                }
            }
            Matched::Id => {
                let repos: BTreeSet<String> = tags.iter().map(|t| names::repository(t)).collect();
                if repos.len() > 1 && !force {
                    return Err(ApiError::conflict(format!(
                        "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        names::short_id(&id)
                    )));
                }
                if let Some(c) = &user {
                    return Err(ApiError::conflict(format!(
                        "conflict: unable to delete {} (cannot be forced) - image is being used by container {}",
                        names::short_id(&id),
                        &c[..c.len().min(12)]
                    )));
                }
                self.untag_and_delete(id, all, true).await
            }
        }
    }
}

/// What the container service needs of an image: its record (layers) and config bytes.
pub struct ResolvedImage {
    pub record: ImageRecord,
    pub config: Vec<u8>,
    /// Layer diff directories, top layer first (overlay lowerdir order).
    pub lowers: Vec<std::path::PathBuf>,
}

impl ImageService {
    /// Resolves a name, short or full ID to an image: 404 `No such image: x` (the docker CLI
    /// pulls on that message).
    pub async fn resolve_image(&self, name: &str) -> Result<ResolvedImage, ApiError> {
        let (id, _) = self.lookup(name).await?;
        let store = self.store.clone();
        let name = name.to_string();
        blocking(move || {
            let record = store
                .image(&id)
                .map_err(errors::store)?
                .ok_or_else(|| ApiError::not_found(format!("No such image: {name}")))?;
            let config = store.image_config(&id).map_err(errors::store)?;
            let lowers = record
                .layers
                .iter()
                .rev()
                .map(|l| store.layer_diff_path(&l.chain_id))
                .collect();
            Ok(ResolvedImage {
                record,
                config,
                lowers,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_addresses_name_the_registry() {
        assert_eq!(login_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_domain("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(login_domain("http://reg.local:80/v2/"), "reg.local:80");
        assert_eq!(login_domain(""), "docker.io");
    }

    #[test]
    fn globs_do_not_cross_slashes() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("*/single", "skiff-test/single"));
        assert!(!glob_match("*", "a/b"));
        assert!(glob_match("b?sybox:*", "busybox:latest"));
    }

    #[test]
    fn reference_filter_matches_name_and_tag() {
        let tags = vec!["127.0.0.1:5000/skiff-test/single:v1".to_string()];
        assert!(matches_reference(
            &["127.0.0.1:5000/skiff-test/single".into()],
            &tags,
            &[]
        ));
        assert!(matches_reference(
            &["127.0.0.1:5000/skiff-test/*:v1".into()],
            &tags,
            &[]
        ));
        assert!(!matches_reference(&["busybox".into()], &tags, &[]));
    }
}
