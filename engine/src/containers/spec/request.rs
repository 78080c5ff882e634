//! The input of spec generation: a plain description of one container, mapped by the
//! container service from the API's Config/HostConfig and the image config.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::error::SpecError;

/// The runtime part of an image config (the `config` object of the image config JSON).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageRuntimeConfig {
    pub user: Option<String>,
    pub env: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub stop_signal: Option<String>,
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub labels: Option<BTreeMap<String, String>>,
}

impl ImageRuntimeConfig {
    /// Parses the `config` object out of a whole image config JSON document.
    pub fn from_image_config(image_config: &[u8]) -> Result<Self, SpecError> {
        #[derive(Deserialize)]
        struct Outer {
            #[serde(default)]
            config: Option<ImageRuntimeConfig>,
        }
        let outer: Outer = serde_json::from_slice(image_config)
            .map_err(|e| SpecError::invalid(format!("image config is not valid json: {e}")))?;
        Ok(outer.config.unwrap_or_default())
    }

    /// The image's VOLUME targets, sorted.
    pub fn volume_targets(&self) -> Vec<String> {
        self.volumes
            .as_ref()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// What a `Mounts` entry mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MountKind {
    #[default]
    Bind,
    Tmpfs,
    /// A named volume; the service puts its host directory in `SpecRequest::volume_paths`.
    Volume,
}

/// One `HostConfig.Mounts` entry (binds from `HostConfig.Binds` are parsed into these too).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MountRequest {
    pub kind: MountKind,
    /// Host path for binds, volume name for volumes, ignored for tmpfs.
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// Bind propagation: private, rprivate, shared, rshared, slave, rslave.
    pub propagation: Option<String>,
    /// tmpfs size in bytes (0 or None: the kernel default).
    pub tmpfs_size: Option<i64>,
    /// tmpfs mode bits, e.g. 0o1777.
    pub tmpfs_mode: Option<u32>,
}

/// One `HostConfig.Devices` entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceRequest {
    pub path_on_host: String,
    /// Empty means the same path as on the host.
    pub path_in_container: String,
    /// Empty means "rwm".
    pub cgroup_permissions: String,
}

/// One `HostConfig.Ulimits` entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// The resource fields of HostConfig, with Docker's meaning of 0 (unset) and -1 (unlimited).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub memory: i64,
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub pids_limit: Option<i64>,
    pub oom_kill_disable: bool,
    pub blkio_weight: u16,
}

/// Files the service prepared on the host, bind-mounted into the container. An empty path
/// means "do not mount".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EtcFiles {
    pub hostname: PathBuf,
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
}

/// Namespace files to join when a mode is `container:<name>` (the service resolves the other
/// container to its init pid: `/proc/<pid>/ns/<kind>`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespacePaths {
    pub network: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub pid: Option<PathBuf>,
}

/// Everything needed to build one container's OCI runtime spec.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpecRequest {
    pub id: String,
    pub hostname: String,
    pub domainname: Option<String>,
    pub image: ImageRuntimeConfig,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stop_signal: Option<String>,
    /// `HostConfig.ConsoleSize`: [height, width].
    pub console_size: Option<[u32; 2]>,
    pub binds: Vec<String>,
    pub mounts: Vec<MountRequest>,
    pub tmpfs: BTreeMap<String, String>,
    /// Named volume -> its host directory, for every volume named in binds and mounts.
    pub volume_paths: BTreeMap<String, PathBuf>,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub devices: Vec<DeviceRequest>,
    pub security_opt: Vec<String>,
    pub shm_size: Option<i64>,
    pub ulimits: Vec<Ulimit>,
    pub sysctls: BTreeMap<String, String>,
    pub resources: Resources,
    pub oom_score_adj: Option<i64>,
    pub init: bool,
    pub network_mode: String,
    pub ipc_mode: String,
    pub pid_mode: String,
    pub uts_mode: String,
    pub namespace_paths: NamespacePaths,
    pub group_add: Vec<String>,
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    pub cgroup_parent: Option<String>,
    pub etc_files: EtcFiles,
    pub init_path: Option<PathBuf>,
}
