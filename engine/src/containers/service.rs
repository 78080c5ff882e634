//! The container service: the index of containers, create/remove/rename, and the state
//! every other part (lifecycle, exec, attach, restore) shares.
//!
//! Locking: the index is a std mutex held only for map operations; each container has a
//! tokio mutex around its record and shim, held across the awaits of one operation so
//! operations on one container never interleave. A per-container watch channel publishes
//! running/exit/removed changes for `wait` without taking that lock.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde_json::{json, Map, Value};
use skiff_api::{ApiError, ErrorKind};
use tokio::sync::{oneshot, watch};

use super::events::{Event, EventBus};
use super::names;
use super::record::{rfc3339, Record, RecordStore, State};
use super::restart::{Backoff, Policy};
use super::spec::{self, ImageRuntimeConfig};
use crate::config::{Config, BUILTIN_RUNTIME};
use crate::images::ImageService;

/// What `wait` watches; updated whenever the container's run state changes.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub running: bool,
    /// Incremented on every recorded exit.
    pub exits: u64,
    pub exit_code: i32,
    pub error: String,
    pub removed: bool,
}

/// An attach made before the container started: the start sends it the attach socket and
/// waits until it is connected, so no output is lost.
pub struct PendingAttach {
    pub ready: oneshot::Sender<(PathBuf, oneshot::Sender<()>)>,
}

/// Mutable state of one container, behind its lock.
pub struct Ctr {
    pub rec: Record,
    pub shim: Option<Arc<skiff_shim::ShimClient>>,
    /// Bumped at every start, so a waiter of an old run never touches a newer one.
    pub run_gen: u64,
    pub pending_attach: Vec<PendingAttach>,
    pub backoff: Backoff,
    pub started: Option<std::time::Instant>,
    /// The restart policy's pending restart, cancelled by stop/remove.
    pub restart_timer: Option<tokio::task::JoinHandle<()>>,
    pub removing: bool,
    /// Exec IDs of this container (inspect's ExecIDs).
    pub exec_ids: Vec<String>,
    /// The shim of the last run, which may still be exiting.
    pub last_shim_pid: Option<u32>,
}

pub struct Container {
    pub id: String,
    /// data-root/containers/<id>: record, upper/work/merged, logs, /etc files.
    pub dir: PathBuf,
    /// exec-root/c/<short id>: the bundle's config.json and the shim's sockets and files.
    pub state_dir: PathBuf,
    pub ctr: tokio::sync::Mutex<Ctr>,
    pub status: watch::Sender<Status>,
}

impl Container {
    pub fn set_status(&self, f: impl FnOnce(&mut Status)) {
        self.status.send_modify(f);
    }
}

#[derive(Default)]
struct Index {
    by_id: HashMap<String, Arc<Container>>,
    /// "/name" -> id
    names: HashMap<String, String>,
}

pub struct Inner {
    pub cfg: Config,
    pub images: Arc<ImageService>,
    pub records: RecordStore,
    pub events: Arc<EventBus>,
    index: Mutex<Index>,
    pub execs: Mutex<HashMap<String, Arc<super::exec::Exec>>>,
    /// The skiff binary, run as `skiff shim`.
    pub skiff_exe: PathBuf,
}

/// The service behind the container, exec and events routes; cheap to clone.
#[derive(Clone)]
pub struct ContainerService {
    pub(crate) inner: Arc<Inner>,
}

pub fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

pub fn shim_err(e: skiff_shim::ShimError) -> ApiError {
    ApiError::internal(e.to_string())
}

pub fn spec_err(e: spec::SpecError) -> ApiError {
    ApiError::new(e.kind(), e.to_string())
}

pub fn no_such_container(name: &str) -> ApiError {
    ApiError::not_found(format!("No such container: {name}"))
}

impl ContainerService {
    pub fn new(
        cfg: Config,
        images: Arc<ImageService>,
        events: Arc<EventBus>,
    ) -> crate::error::Result<Self> {
        let records = RecordStore::new(cfg.data_root.join("containers"))?;
        let skiff_exe = std::env::current_exe().map_err(|e| {
            crate::error::Error::io("cannot find the skiff executable for the shims", e)
        })?;
        let states = cfg.exec_root.join("c");
        std::fs::create_dir_all(&states).map_err(|e| {
            crate::error::Error::io(format!("cannot create {}", states.display()), e)
        })?;
        Ok(ContainerService {
            inner: Arc::new(Inner {
                cfg,
                images,
                records,
                events,
                index: Mutex::new(Index::default()),
                execs: Mutex::new(HashMap::new()),
                skiff_exe,
            }),
        })
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.inner.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn all(&self) -> Vec<Arc<Container>> {
        self.index().by_id.values().cloned().collect()
    }

    /// Docker's lookup order: full ID, name, unique ID prefix.
    pub fn get(&self, name: &str) -> Result<Arc<Container>, ApiError> {
        let idx = self.index();
        if let Some(c) = idx.by_id.get(name) {
            return Ok(c.clone());
        }
        let with_slash = if name.starts_with('/') {
            name.to_string()
        } else {
            format!("/{name}")
        };
        if let Some(id) = idx.names.get(&with_slash) {
            if let Some(c) = idx.by_id.get(id) {
                return Ok(c.clone());
            }
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(no_such_container(name));
        }
        let mut found = idx.by_id.iter().filter(|(id, _)| id.starts_with(name));
        match (found.next(), found.next()) {
            (Some((_, c)), None) => Ok(c.clone()),
            (Some(_), Some(_)) => Err(ApiError::invalid_argument(format!(
                "multiple IDs found with provided prefix: {name}"
            ))),
            _ => Err(no_such_container(name)),
        }
    }

    pub fn name_taken(&self, name: &str) -> bool {
        self.index().names.contains_key(name)
    }

    /// Registers a container loaded or created; the name must be free.
    pub(crate) fn register(&self, rec: Record) -> Arc<Container> {
        let status = Status {
            running: rec.state.running,
            exits: 0,
            exit_code: rec.state.exit_code,
            error: rec.state.error.clone(),
            removed: false,
        };
        let c = Arc::new(Container {
            id: rec.id.clone(),
            dir: self.inner.records.dir(&rec.id),
            state_dir: self.state_dir(&rec.id),
            status: watch::channel(status).0,
            ctr: tokio::sync::Mutex::new(Ctr {
                rec: rec.clone(),
                shim: None,
                run_gen: 0,
                pending_attach: Vec::new(),
                backoff: Backoff::default(),
                started: None,
                restart_timer: None,
                removing: false,
                exec_ids: Vec::new(),
                last_shim_pid: None,
            }),
        });
        let mut idx = self.index();
        idx.names.insert(rec.name.clone(), rec.id.clone());
        idx.by_id.insert(rec.id.clone(), c.clone());
        c
    }

    pub(crate) fn unregister(&self, id: &str) {
        let mut idx = self.index();
        if idx.by_id.remove(id).is_some() {
            idx.names.retain(|_, v| v != id);
        }
    }

    /// Short, so the shim's unix sockets fit in sun_path (108 bytes).
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.inner
            .cfg
            .exec_root
            .join("c")
            .join(&id[..id.len().min(12)])
    }

    pub fn publish(&self, action: &str, rec: &Record, extra: &[(&str, String)]) {
        let mut attrs: BTreeMap<String, String> = rec.labels().into_iter().collect();
        attrs.insert("image".into(), rec.image_ref.clone());
        attrs.insert("name".into(), rec.name.trim_start_matches('/').to_string());
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        self.inner
            .events
            .publish(Event::new("container", action, rec.id.clone(), attrs));
    }

    pub(crate) fn save(&self, rec: &Record) -> Result<(), ApiError> {
        self.inner.records.save(rec).map_err(internal)
    }

    /// The runtime a container uses: the built-in one or a declared CLI runtime.
    pub fn runtime_config(&self, name: &str) -> Result<skiff_shim::RuntimeConfig, ApiError> {
        let exec_root = &self.inner.cfg.exec_root;
        if name == BUILTIN_RUNTIME {
            return Ok(skiff_shim::RuntimeConfig::Libcontainer {
                root: exec_root.join("lc"),
            });
        }
        let rt = self.inner.cfg.runtimes.get(name).ok_or_else(|| {
            ApiError::invalid_argument(format!("unknown or invalid runtime name: {name}"))
        })?;
        let root_name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Ok(skiff_shim::RuntimeConfig::Cli {
            path: PathBuf::from(&rt.path),
            args: rt.runtime_args.clone(),
            root: exec_root.join(format!("rt-{root_name}")),
        })
    }

    // ---------------------------------------------------------------- create

    /// `POST /containers/create`: validates everything before anything is written; on any
    /// error nothing is left behind.
    pub async fn create_value(
        &self,
        name: Option<String>,
        body: Value,
    ) -> Result<(String, Vec<String>), ApiError> {
        let Value::Object(mut body) = body else {
            return Err(ApiError::invalid_argument(
                "the create body must be a JSON object with Config fields, HostConfig and NetworkingConfig",
            ));
        };
        let host_config = body.remove("HostConfig").unwrap_or(Value::Null);
        let networking_config = body.remove("NetworkingConfig").unwrap_or(Value::Null);
        let config = Value::Object(body);
        let host = if host_config.is_null() {
            Value::Object(Map::new())
        } else {
            host_config.clone()
        };
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                Some(names::validate_name(&n).map_err(|e| ApiError::new(e.kind(), e.to_string()))?)
            }
            None => None,
        };
        let image_ref = config
            .get("Image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if image_ref.is_empty() {
            return Err(ApiError::invalid_argument(
                "no image given: set Config.Image to an image name or ID",
            ));
        }
        let runtime = host
            .get("Runtime")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
            .unwrap_or(&self.inner.cfg.default_runtime)
            .to_string();
        self.runtime_config(&runtime)?;
        let policy = Policy::from_host_config(&host)?;
        if !policy.is_no() && host.get("AutoRemove").and_then(Value::as_bool) == Some(true) {
            return Err(ApiError::invalid_argument(
                "can't create 'AutoRemove' container with restart policy",
            ));
        }
        check_log_config(&host)?;
        let image = self.inner.images.resolve_image(&image_ref).await?;
        let image_rc = ImageRuntimeConfig::from_image_config(&image.config).map_err(spec_err)?;
        let id = self.new_id();
        let hostname = config
            .get("Hostname")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(String::from)
            .unwrap_or_else(|| {
                // host networking shows the host's name, as dockerd does
                let host_name = (host.get("NetworkMode").and_then(Value::as_str) == Some("host"))
                    .then(|| nix::unistd::gethostname().ok())
                    .flatten()
                    .and_then(|h| h.into_string().ok());
                host_name.unwrap_or_else(|| id[..12].to_string())
            });
        let req = super::specreq::build(
            &id,
            &hostname,
            &config,
            &host,
            image_rc.clone(),
            Default::default(),
            None,
        );
        spec::validate(&req).map_err(spec_err)?;
        let args = spec::command(&req).map_err(spec_err)?;
        let stop_signal = spec::stop_signal(&req).map_err(spec_err)?;
        let stop_timeout = config
            .get("StopTimeout")
            .and_then(Value::as_i64)
            .unwrap_or(10);
        let dir = self.inner.records.dir(&id);
        let log_path = match self.log_driver(&host) {
            "none" => String::new(),
            _ => dir.join(format!("{id}-json.log")).display().to_string(),
        };
        let mut rec = Record {
            id: id.clone(),
            name: String::new(),
            created: rfc3339(Utc::now()),
            image: image.record.id.to_string(),
            image_ref,
            config,
            host_config,
            networking_config,
            path: args[0].clone(),
            args: args[1..].to_vec(),
            state: State::default(),
            restart_count: 0,
            manually_stopped: false,
            runtime,
            log_path,
            hostname,
            stop_signal,
            stop_timeout,
            mounted: false,
        };
        // name reservation and registration under one index lock: no two creates get a name
        let c = {
            let mut idx = self.index();
            let name = match name {
                Some(n) => {
                    if let Some(other) = idx.names.get(&n) {
                        return Err(ApiError::conflict(format!(
                            "Conflict. The container name \"{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                        )));
                    }
                    n
                }
                None => format!(
                    "/{}",
                    names::generate_name(|n| idx.names.contains_key(&format!("/{n}")))
                ),
            };
            rec.name = name;
            // placeholder so a concurrent create sees the name taken
            idx.names.insert(rec.name.clone(), id.clone());
            drop(idx);
            if let Err(e) = self.inner.records.create(&rec) {
                self.index().names.remove(&rec.name);
                let _ = self.inner.records.remove(&id);
                return Err(internal(e));
            }
            self.register(rec.clone())
        };
        let _ = c;
        self.publish("create", &rec, &[]);
        Ok((id, Vec::new()))
    }

    fn new_id(&self) -> String {
        loop {
            let id = format!(
                "{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            );
            let idx = self.index();
            // the short state dir must be unique too
            if !idx.by_id.keys().any(|k| k[..12] == id[..12]) {
                return id;
            }
        }
    }

    pub fn log_driver<'a>(&'a self, host: &'a Value) -> &'a str {
        host.pointer("/LogConfig/Type")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .unwrap_or(&self.inner.cfg.log_driver)
    }

    /// The shim's log settings for a container.
    pub fn log_config(&self, rec: &Record) -> Result<skiff_shim::LogConfig, ApiError> {
        if rec.log_path.is_empty() {
            return Ok(skiff_shim::LogConfig::None);
        }
        let mut rotation = self.inner.cfg.log_rotation;
        if let Some(opts) = rec
            .host_config
            .pointer("/LogConfig/Config")
            .and_then(Value::as_object)
            .filter(|o| !o.is_empty())
        {
            let opts: BTreeMap<String, String> = opts
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            rotation = crate::config::LogRotation::from_opts(&opts)
                .map_err(|e| ApiError::invalid_argument(e.to_string()))?;
        }
        Ok(skiff_shim::LogConfig::JsonFile {
            path: PathBuf::from(&rec.log_path),
            max_size: rotation.max_size,
            max_file: rotation.max_file,
        })
    }

    // ---------------------------------------------------------------- remove / rename

    pub async fn remove(&self, name: &str, force: bool) -> Result<(), ApiError> {
        let c = self.get(name)?;
        {
            let mut ctr = c.ctr.lock().await;
            if ctr.removing {
                return Err(ApiError::conflict(format!(
                    "removal of container {name} is already in progress"
                )));
            }
            if ctr.rec.state.running && !force {
                let what = if ctr.rec.state.paused {
                    "container is paused and must be unpaused first"
                } else {
                    "container is running: stop the container before removing or force remove"
                };
                return Err(ApiError::conflict(format!(
                    "cannot remove container \"{}\": {what}",
                    ctr.rec.name
                )));
            }
            ctr.removing = true;
            ctr.rec.manually_stopped = true;
            if let Some(t) = ctr.restart_timer.take() {
                t.abort();
            }
        }
        if c.status.borrow().running {
            if let Err(e) = self.kill_and_wait(&c, libc::SIGKILL).await {
                c.ctr.lock().await.removing = false;
                return Err(e);
            }
        }
        self.finish_remove(&c).await
    }

    /// Removes a stopped container's files, index entry and record; publishes `destroy`.
    pub(crate) async fn finish_remove(&self, c: &Arc<Container>) -> Result<(), ApiError> {
        let mut ctr = c.ctr.lock().await;
        ctr.removing = true;
        if let Some(t) = ctr.restart_timer.take() {
            t.abort();
        }
        let dir = c.dir.clone();
        let state_dir = c.state_dir.clone();
        let records = self.inner.records.clone();
        let id = c.id.clone();
        crate::images::blocking(move || {
            super::rootfs::unmount_rootfs(&dir).map_err(internal)?;
            let _ = std::fs::remove_dir_all(&state_dir);
            records.remove(&id).map_err(internal)
        })
        .await?;
        {
            let mut execs = self.inner.execs.lock().unwrap_or_else(|p| p.into_inner());
            execs.retain(|_, e| e.container_id != c.id);
        }
        self.unregister(&c.id);
        self.publish("destroy", &ctr.rec, &[]);
        c.set_status(|s| {
            s.removed = true;
            s.running = false;
        });
        Ok(())
    }

    pub async fn rename(&self, name: &str, new_name: &str) -> Result<(), ApiError> {
        let new_name =
            names::validate_name(new_name).map_err(|e| ApiError::new(e.kind(), e.to_string()))?;
        let c = self.get(name)?;
        let mut ctr = c.ctr.lock().await;
        let old = ctr.rec.name.clone();
        if old == new_name {
            return Err(ApiError::invalid_argument(
                "Renaming a container with the same name as its current name",
            ));
        }
        {
            let mut idx = self.index();
            if let Some(other) = idx.names.get(&new_name) {
                return Err(ApiError::conflict(format!(
                    "Conflict. The container name \"{new_name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            idx.names.remove(&old);
            idx.names.insert(new_name.clone(), c.id.clone());
        }
        ctr.rec.name = new_name.clone();
        if let Err(e) = self.save(&ctr.rec) {
            let mut idx = self.index();
            idx.names.remove(&new_name);
            idx.names.insert(old.clone(), c.id.clone());
            ctr.rec.name = old;
            return Err(e);
        }
        self.publish("rename", &ctr.rec, &[("oldName", old)]);
        Ok(())
    }

    /// (running, paused, stopped) for `docker info`.
    pub async fn counts(&self) -> (i64, i64, i64) {
        let (mut r, mut p, mut s) = (0, 0, 0);
        for c in self.all() {
            let g = c.ctr.lock().await;
            match (g.rec.state.running, g.rec.state.paused) {
                (true, true) => p += 1,
                (true, false) => r += 1,
                _ => s += 1,
            }
        }
        (r, p, s)
    }

    /// `(image ID, container ID)` of every container.
    pub async fn image_users(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for c in self.all() {
            out.push((c.ctr.lock().await.rec.image.clone(), c.id.clone()));
        }
        out
    }

    /// Image IDs referenced by any container.
    pub async fn images_in_use(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in self.all() {
            out.push(c.ctr.lock().await.rec.image.clone());
        }
        out.sort();
        out.dedup();
        out
    }

    // ---------------------------------------------------------------- inspect / list

    /// Docker's inspect JSON. Config/HostConfig/NetworkingConfig come back as created.
    pub async fn inspect_value(&self, name: &str, size: bool) -> Result<Value, ApiError> {
        let c = self.get(name)?;
        let ctr = c.ctr.lock().await;
        let rec = &ctr.rec;
        let upper = super::rootfs::upper_dir(&c.dir);
        let merged = super::rootfs::merged_dir(&c.dir);
        let lowers = self
            .inner
            .images
            .resolve_image(&rec.image)
            .await
            .map(|i| {
                i.lowers
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .unwrap_or_default();
        let host_config = if rec.host_config.is_null() {
            json!({})
        } else {
            rec.host_config.clone()
        };
        let networks = rec
            .networking_config
            .get("EndpointsConfig")
            .cloned()
            .filter(|v| v.is_object())
            .unwrap_or_else(|| json!({}));
        let mut v = json!({
            "Id": rec.id,
            "Created": rec.created,
            "Path": rec.path,
            "Args": rec.args,
            "State": state_json(&rec.state),
            "Image": rec.image,
            "ResolvConfPath": c.dir.join("resolv.conf"),
            "HostnamePath": c.dir.join("hostname"),
            "HostsPath": c.dir.join("hosts"),
            "LogPath": rec.log_path,
            "Name": rec.name,
            "RestartCount": rec.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": if ctr.exec_ids.is_empty() { Value::Null } else { json!(ctr.exec_ids) },
            "HostConfig": host_config,
            "GraphDriver": {
                "Name": "overlay2",
                "Data": {
                    "LowerDir": lowers,
                    "UpperDir": upper,
                    "WorkDir": c.dir.join("work"),
                    "MergedDir": merged,
                }
            },
            "Mounts": mounts_json(&rec.host_config),
            "Config": rec.config,
            "NetworkSettings": {
                "Bridge": "",
                "SandboxID": "",
                "SandboxKey": "",
                "HairpinMode": false,
                "LinkLocalIPv6Address": "",
                "LinkLocalIPv6PrefixLen": 0,
                "Ports": {},
                "SecondaryIPAddresses": null,
                "SecondaryIPv6Addresses": null,
                "EndpointID": "",
                "Gateway": "",
                "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
                "IPAddress": "",
                "IPPrefixLen": 0,
                "IPv6Gateway": "",
                "MacAddress": "",
                "Networks": networks,
            },
        });
        if size {
            let dir = c.dir.clone();
            let rw = tokio::task::spawn_blocking(move || super::rootfs::upper_size(&dir))
                .await
                .unwrap_or(0);
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rw + self.image_size(&rec.image).await);
        }
        Ok(v)
    }

    async fn image_size(&self, image: &str) -> u64 {
        self.inner
            .images
            .resolve_image(image)
            .await
            .map(|i| i.record.size)
            .unwrap_or(0)
    }

    /// `GET /containers/json` as JSON summaries.
    pub async fn list_values(
        &self,
        all: bool,
        limit: Option<i64>,
        size: bool,
        filters: &skiff_api::Filters,
    ) -> Result<Vec<Value>, ApiError> {
        // Keys and the values of `status`, `health` and `exited` were checked by the route
        // (skiff_api's container list route), with dockerd's messages.
        let exited: Vec<i32> = filters
            .get("exited")
            .iter()
            .map(|e| {
                e.parse::<i32>()
                    .map_err(|_| ApiError::invalid_argument(format!("invalid filter 'exited={e}'")))
            })
            .collect::<Result<_, _>>()?;
        // a snapshot of every record, newest first
        let mut recs = Vec::new();
        for c in self.all() {
            let g = c.ctr.lock().await;
            recs.push((c.clone(), g.rec.clone()));
        }
        recs.sort_by(|a, b| b.1.created.cmp(&a.1.created));
        let created_of = |name: &str| -> Result<String, ApiError> {
            let c = self.get(name)?;
            recs.iter()
                .find(|(x, _)| x.id == c.id)
                .map(|(_, r)| r.created.clone())
                .ok_or_else(|| no_such_container(name))
        };
        let before = filters
            .get("before")
            .first()
            .map(|n| created_of(n))
            .transpose()?;
        let since = filters
            .get("since")
            .first()
            .map(|n| created_of(n))
            .transpose()?;
        let image_ids: Vec<String> = {
            let mut v = Vec::new();
            for a in filters.get("ancestor") {
                if let Ok(i) = self.inner.images.resolve_image(a).await {
                    v.push(i.record.id.to_string());
                }
            }
            v
        };
        let all = all
            || !filters.is_empty() && (filters.contains("status") || filters.contains("exited"));
        let mut out = Vec::new();
        for (c, rec) in recs {
            let status = rec.state.status.as_str();
            if !all && !rec.state.running && before.is_none() && since.is_none() {
                continue;
            }
            if !filters.get("status").is_empty()
                && !filters.get("status").iter().any(|s| s == status)
            {
                continue;
            }
            if !exited.is_empty() && (status != "exited" || !exited.contains(&rec.state.exit_code))
            {
                continue;
            }
            if !filters.get("id").is_empty()
                && !filters
                    .get("id")
                    .iter()
                    .any(|p| rec.id.starts_with(p.as_str()))
            {
                continue;
            }
            if !filters.get("name").is_empty()
                && !filters.get("name").iter().any(|n| {
                    rec.name
                        .trim_start_matches('/')
                        .contains(n.trim_start_matches('/'))
                })
            {
                continue;
            }
            if !filters.match_labels("label", &rec.labels()) {
                continue;
            }
            if filters.contains("ancestor")
                && !image_ids.contains(&rec.image)
                && !filters.get("ancestor").contains(&rec.image_ref)
            {
                continue;
            }
            if before.as_ref().is_some_and(|b| rec.created >= *b) {
                continue;
            }
            if since.as_ref().is_some_and(|s| rec.created <= *s) {
                continue;
            }
            let mut v = summary_json(&rec);
            if size {
                let dir = c.dir.clone();
                let rw = tokio::task::spawn_blocking(move || super::rootfs::upper_size(&dir))
                    .await
                    .unwrap_or(0);
                v["SizeRw"] = json!(rw);
                v["SizeRootFs"] = json!(rw + self.image_size(&rec.image).await);
            }
            out.push(v);
            if let Some(l) = limit.filter(|l| *l > 0) {
                if out.len() as i64 >= l {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Removes every stopped container (`filters`: `label`, `until`).
    pub async fn prune(
        &self,
        filters: &skiff_api::Filters,
    ) -> Result<(Vec<String>, u64), ApiError> {
        filters.validate(&["label", "label!", "until"])?;
        let until = filters
            .get("until")
            .first()
            .map(|u| super::events::parse_api_time(u))
            .transpose()?
            .flatten();
        let mut deleted = Vec::new();
        let mut reclaimed = 0;
        for c in self.all() {
            let rec = c.ctr.lock().await.rec.clone();
            if rec.state.running || rec.state.restarting {
                continue;
            }
            if !filters.match_labels("label", &rec.labels()) {
                continue;
            }
            let neg = filters.get("label!");
            if !neg.is_empty() {
                let labels = rec.labels();
                let hit = neg.iter().any(|l| match l.split_once('=') {
                    Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                    None => labels.contains_key(l.as_str()),
                });
                if hit {
                    continue;
                }
            }
            if until.is_some_and(|u| rec.created_at() > u) {
                continue;
            }
            let dir = c.dir.clone();
            let size = tokio::task::spawn_blocking(move || super::rootfs::upper_size(&dir))
                .await
                .unwrap_or(0);
            if self.remove(&rec.id, false).await.is_ok() {
                deleted.push(rec.id);
                reclaimed += size;
            }
        }
        Ok((deleted, reclaimed))
    }
}

fn check_log_config(host: &Value) -> Result<(), ApiError> {
    match host.pointer("/LogConfig/Type").and_then(Value::as_str) {
        None | Some("") | Some("json-file") | Some("none") => Ok(()),
        Some(other) => Err(ApiError::invalid_argument(format!(
            "logging driver {other:?} is not supported: use \"json-file\" or \"none\""
        ))),
    }
}

pub fn state_json(s: &State) -> Value {
    json!({
        "Status": s.status,
        "Running": s.running,
        "Paused": s.paused,
        "Restarting": s.restarting,
        "OOMKilled": s.oom_killed,
        "Dead": s.dead,
        "Pid": s.pid,
        "ExitCode": s.exit_code,
        "Error": s.error,
        "StartedAt": s.started_at,
        "FinishedAt": s.finished_at,
    })
}

/// Binds, Mounts and Tmpfs as inspect's `Mounts`.
fn mounts_json(host: &Value) -> Value {
    let mut out = Vec::new();
    if let Some(binds) = host.get("Binds").and_then(Value::as_array) {
        for b in binds.iter().filter_map(Value::as_str) {
            let parts: Vec<&str> = b.split(':').collect();
            if parts.len() >= 2 {
                let mode = parts.get(2).copied().unwrap_or("");
                out.push(json!({
                    "Type": "bind",
                    "Source": parts[0],
                    "Destination": parts[1],
                    "Mode": mode,
                    "RW": !mode.split(',').any(|m| m == "ro"),
                    "Propagation": "rprivate",
                }));
            }
        }
    }
    if let Some(mounts) = host.get("Mounts").and_then(Value::as_array) {
        for m in mounts {
            let ro = m.get("ReadOnly").and_then(Value::as_bool).unwrap_or(false);
            out.push(json!({
                "Type": m.get("Type").cloned().unwrap_or(json!("bind")),
                "Source": m.get("Source").cloned().unwrap_or(json!("")),
                "Destination": m.get("Target").cloned().unwrap_or(json!("")),
                "Mode": "",
                "RW": !ro,
                "Propagation": "rprivate",
            }));
        }
    }
    if let Some(t) = host.get("Tmpfs").and_then(Value::as_object) {
        for (dst, _) in t {
            out.push(json!({"Type":"tmpfs","Source":"","Destination":dst,"Mode":"","RW":true,"Propagation":""}));
        }
    }
    Value::Array(out)
}

fn summary_json(rec: &Record) -> Value {
    let command = std::iter::once(rec.path.as_str())
        .chain(rec.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let network_mode = rec
        .host_str("NetworkMode")
        .filter(|m| !m.is_empty())
        .unwrap_or("default")
        .to_string();
    let networks = rec
        .networking_config
        .get("EndpointsConfig")
        .cloned()
        .filter(|v| v.is_object())
        .unwrap_or_else(|| json!({}));
    json!({
        "Id": rec.id,
        "Names": [rec.name],
        "Image": rec.image_ref,
        "ImageID": rec.image,
        "Command": command,
        "Created": rec.created_at().timestamp(),
        "Ports": [],
        "Labels": rec.labels(),
        "State": rec.state.status,
        "Status": status_text(&rec.state, Utc::now()),
        "HostConfig": { "NetworkMode": network_mode },
        "NetworkSettings": { "Networks": networks },
        "Mounts": mounts_json(&rec.host_config),
    })
}

/// `docker ps`'s STATUS column.
pub fn status_text(s: &State, now: chrono::DateTime<Utc>) -> String {
    let since = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| (now - t.with_timezone(&Utc)).to_std().unwrap_or_default())
            .unwrap_or_default()
    };
    match s.status.as_str() {
        "running" => format!("Up {}", human_duration(since(&s.started_at))),
        "paused" => format!("Up {} (Paused)", human_duration(since(&s.started_at))),
        "restarting" => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            human_duration(since(&s.finished_at))
        ),
        "exited" if s.finished_at != super::record::ZERO_TIME => format!(
            "Exited ({}) {} ago",
            s.exit_code,
            human_duration(since(&s.finished_at))
        ),
        "exited" => format!("Exited ({})", s.exit_code),
        "dead" => "Dead".into(),
        "removing" => "Removal In Progress".into(),
        _ => "Created".into(),
    }
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let mins = secs / 60;
    let hours = mins / 60;
    match () {
        _ if secs < 1 => "Less than a second".into(),
        _ if secs == 1 => "1 second".into(),
        _ if secs < 60 => format!("{secs} seconds"),
        _ if mins == 1 => "About a minute".into(),
        _ if mins < 60 => format!("{mins} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

#[allow(unused)]
fn _kinds(_: ErrorKind) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn human_durations_match_docker() {
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(Duration::from_secs(1)), "1 second");
        assert_eq!(human_duration(Duration::from_secs(42)), "42 seconds");
        assert_eq!(human_duration(Duration::from_secs(61)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(Duration::from_secs(3700)), "About an hour");
        assert_eq!(human_duration(Duration::from_secs(3 * 86400)), "3 days");
    }

    #[test]
    fn status_texts() {
        let now = Utc::now();
        let mut s = State::default();
        assert_eq!(status_text(&s, now), "Created");
        s.set_running(1, now - chrono::Duration::seconds(5));
        assert_eq!(status_text(&s, now), "Up 5 seconds");
        s.set_exited(3, now - chrono::Duration::seconds(2), false, "");
        assert_eq!(status_text(&s, now), "Exited (3) 2 seconds ago");
    }
}
