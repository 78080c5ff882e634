//! `/version`, `/info`, `/system/df`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use skiff_api::types::system::{
    AuthResponse, DiskUsage, IndexInfo, RuntimeInfo, SystemInfo, SystemVersion,
};
use skiff_api::{ApiError, ApiVersion, ContainerBackend, SystemBackend};

use crate::config::Config;
use crate::containers::service::ContainerService;
use crate::images::ImageService;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub struct SystemService {
    config: Config,
    images: Arc<ImageService>,
    containers: ContainerService,
    id: String,
}

impl SystemService {
    pub fn new(config: Config, images: Arc<ImageService>, containers: ContainerService) -> Self {
        let id = daemon_id(&config.data_root);
        SystemService {
            config,
            images,
            containers,
            id,
        }
    }
}

/// A stable daemon ID kept in the data root (dockerd shows one in `info`).
fn daemon_id(root: &std::path::Path) -> String {
    let path = root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&path) {
        if !s.trim().is_empty() {
            return s.trim().to_string();
        }
    }
    let id = format!("{:032x}", rand::random::<u128>());
    let _ = std::fs::write(&path, &id);
    id
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn os_release() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

#[async_trait]
impl SystemBackend for SystemService {
    async fn version(&self) -> Result<SystemVersion, ApiError> {
        Ok(SystemVersion::skiff(
            VERSION,
            option_env!("SKIFF_GIT_COMMIT").unwrap_or("unknown"),
            &kernel_version(),
            "",
        ))
    }

    async fn info(&self) -> Result<SystemInfo, ApiError> {
        let store = self.images.store().clone();
        let images = crate::images::blocking(move || {
            store
                .images()
                .map(|i| i.len())
                .map_err(|e| ApiError::internal(e.to_string()))
        })
        .await? as i64;
        let mut index_configs = BTreeMap::new();
        index_configs.insert(
            "docker.io".to_string(),
            IndexInfo {
                name: "docker.io".into(),
                mirrors: self.config.registry_mirrors.clone(),
                secure: true,
                official: true,
            },
        );
        for r in &self.config.insecure_registries {
            if !r.contains('/') {
                index_configs.insert(
                    r.clone(),
                    IndexInfo {
                        name: r.clone(),
                        mirrors: vec![],
                        secure: false,
                        official: false,
                    },
                );
            }
        }
        let (running, paused, stopped) = self.containers.counts().await;
        let mut info = SystemInfo {
            id: self.id.clone(),
            images,
            containers: running + paused + stopped,
            containers_running: running,
            containers_paused: paused,
            containers_stopped: stopped,
            driver: "overlay2".into(),
            driver_status: vec![["Backing Filesystem".into(), "extfs".into()]],
            docker_root_dir: self.config.data_root.display().to_string(),
            logging_driver: self.config.log_driver.clone(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: cgroup_version().into(),
            kernel_version: kernel_version(),
            operating_system: os_release(),
            os_type: "linux".into(),
            architecture: std::env::consts::ARCH.into(),
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get() as i64)
                .unwrap_or(1),
            mem_total: mem_total(),
            name: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
            server_version: VERSION.into(),
            default_runtime: self.config.default_runtime.clone(),
            runtimes: self
                .config
                .runtimes
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        RuntimeInfo {
                            path: v.path.clone(),
                            runtime_args: v.runtime_args.clone(),
                            status: None,
                        },
                    )
                })
                .chain(std::iter::once((
                    crate::config::BUILTIN_RUNTIME.to_string(),
                    RuntimeInfo {
                        // linked into the skiff binary: there is no separate executable
                        path: crate::config::BUILTIN_RUNTIME.to_string(),
                        runtime_args: Vec::new(),
                        status: None,
                    },
                )))
                .collect(),
            live_restore_enabled: self.config.live_restore,
            debug: self.config.log_level == "debug",
            ..SystemInfo::default()
        };
        info.registry_config.insecure_registry_cidrs = vec!["127.0.0.0/8".into(), "::1/128".into()];
        info.registry_config.index_configs = index_configs;
        info.registry_config.mirrors = self.config.registry_mirrors.clone();
        Ok(info)
    }

    async fn auth(&self, auth: skiff_api::AuthConfig) -> Result<AuthResponse, ApiError> {
        self.images.login(auth).await?;
        Ok(AuthResponse {
            status: "Login Succeeded".into(),
            identity_token: String::new(),
        })
    }

    async fn disk_usage(&self, _version: ApiVersion) -> Result<DiskUsage, ApiError> {
        let (mut images, layers_size) = self.images.disk_usage().await?;
        let containers = ContainerBackend::disk_usage(&self.containers).await?;
        for image in &mut images {
            image.containers = containers.iter().filter(|c| c.image_id == image.id).count() as i64;
        }
        Ok(DiskUsage {
            layers_size,
            images: Some(images),
            containers: Some(containers),
            volumes: Some(Vec::new()),
            build_cache: Some(Vec::new()),
        })
    }
}
