//! `/version`, `/info` and `/system/df`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::image::ImageSummary;
use crate::version::{MAX_API_VERSION, MIN_API_VERSION};

/// Go's name for this machine's architecture (`amd64`, `arm64`, ...), as the API reports it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(rename = "Name")]
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentVersion {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "Details", default, skip_serializing_if = "Option::is_none")]
    pub details: Option<BTreeMap<String, String>>,
}

/// `GET /version`. `ApiVersion`/`MinAPIVersion` are overwritten by the server with what it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SystemVersion {
    pub platform: Platform,
    pub components: Vec<ComponentVersion>,
    /// Engine flavour; balena's supervisor expects aggregated pull progress only when this
    /// says `balena-engine`, so skiff says `skiff`.
    pub engine: String,
    pub version: String,
    pub api_version: String,
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    pub git_commit: String,
    pub go_version: String,
    pub os: String,
    pub arch: String,
    pub kernel_version: String,
    pub experimental: bool,
    pub build_time: String,
}

impl SystemVersion {
    /// A complete answer for skiff `version`; `kernel_version` comes from uname.
    pub fn skiff(version: &str, git_commit: &str, kernel_version: &str, build_time: &str) -> Self {
        let details = BTreeMap::from([
            ("ApiVersion".to_string(), MAX_API_VERSION.to_string()),
            ("MinAPIVersion".to_string(), MIN_API_VERSION.to_string()),
            ("GitCommit".to_string(), git_commit.to_string()),
            ("GoVersion".to_string(), "n/a".to_string()),
            ("Os".to_string(), "linux".to_string()),
            ("Arch".to_string(), go_arch().to_string()),
            ("KernelVersion".to_string(), kernel_version.to_string()),
            ("Experimental".to_string(), "false".to_string()),
            ("BuildTime".to_string(), build_time.to_string()),
        ]);
        SystemVersion {
            platform: Platform {
                name: format!("skiff {version}"),
            },
            components: vec![ComponentVersion {
                name: "Engine".to_string(),
                version: version.to_string(),
                details: Some(details),
            }],
            engine: "skiff".to_string(),
            version: version.to_string(),
            api_version: MAX_API_VERSION.to_string(),
            min_api_version: MIN_API_VERSION.to_string(),
            git_commit: git_commit.to_string(),
            go_version: "n/a".to_string(),
            os: "linux".to_string(),
            arch: go_arch().to_string(),
            kernel_version: kernel_version.to_string(),
            experimental: false,
            build_time: build_time.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PluginsInfo {
    pub volume: Vec<String>,
    pub network: Vec<String>,
    pub authorization: Option<Vec<String>>,
    pub log: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexInfo {
    pub name: String,
    pub mirrors: Vec<String>,
    pub secure: bool,
    pub official: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegistryConfig {
    #[serde(rename = "AllowNondistributableArtifactsCIDRs")]
    pub allow_nondistributable_artifacts_cidrs: Option<Vec<String>>,
    pub allow_nondistributable_artifacts_hostnames: Option<Vec<String>>,
    #[serde(rename = "InsecureRegistryCIDRs")]
    pub insecure_registry_cidrs: Vec<String>,
    pub index_configs: BTreeMap<String, IndexInfo>,
    pub mirrors: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    pub path: String,
    #[serde(rename = "runtimeArgs", default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Expected")]
    pub expected: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmInfo {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_addr: String,
    pub local_node_state: String,
    pub control_available: bool,
    pub error: String,
    pub remote_managers: Option<Vec<serde_json::Value>>,
}

impl Default for SwarmInfo {
    fn default() -> Self {
        SwarmInfo {
            node_id: String::new(),
            node_addr: String::new(),
            local_node_state: "inactive".to_string(),
            control_available: false,
            error: String::new(),
            remote_managers: None,
        }
    }
}

/// `GET /info`. `Default` fills the constants of a skiff daemon; the engine sets the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SystemInfo {
    #[serde(rename = "ID")]
    pub id: String,
    pub containers: i64,
    pub containers_running: i64,
    pub containers_paused: i64,
    pub containers_stopped: i64,
    pub images: i64,
    pub driver: String,
    /// `[["Backing Filesystem","extfs"], ...]`
    pub driver_status: Vec<[String; 2]>,
    pub docker_root_dir: String,
    pub plugins: PluginsInfo,
    pub memory_limit: bool,
    pub swap_limit: bool,
    pub cpu_cfs_period: bool,
    pub cpu_cfs_quota: bool,
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    #[serde(rename = "CPUSet")]
    pub cpu_set: bool,
    pub pids_limit: bool,
    pub oom_kill_disable: bool,
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    pub bridge_nf_iptables: bool,
    pub bridge_nf_ip6tables: bool,
    pub debug: bool,
    #[serde(rename = "NFd")]
    pub nfd: i64,
    #[serde(rename = "NGoroutines")]
    pub ngoroutines: i64,
    /// RFC 3339 with nanoseconds; the server fills it when left empty.
    pub system_time: String,
    pub logging_driver: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    #[serde(rename = "NEventsListener")]
    pub nevents_listener: i64,
    pub kernel_version: String,
    pub operating_system: String,
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub architecture: String,
    #[serde(rename = "NCPU")]
    pub ncpu: i64,
    pub mem_total: i64,
    pub index_server_address: String,
    pub registry_config: RegistryConfig,
    pub generic_resources: Option<Vec<serde_json::Value>>,
    pub http_proxy: String,
    pub https_proxy: String,
    pub no_proxy: String,
    pub name: String,
    pub labels: Vec<String>,
    pub experimental_build: bool,
    pub server_version: String,
    pub runtimes: BTreeMap<String, RuntimeInfo>,
    pub default_runtime: String,
    pub swarm: SwarmInfo,
    pub live_restore_enabled: bool,
    pub isolation: String,
    pub init_binary: String,
    pub containerd_commit: Commit,
    pub runc_commit: Commit,
    pub init_commit: Commit,
    pub security_options: Vec<String>,
    #[serde(rename = "CDISpecDirs")]
    pub cdi_spec_dirs: Vec<String>,
    pub warnings: Option<Vec<String>>,
}

impl Default for SystemInfo {
    fn default() -> Self {
        SystemInfo {
            id: String::new(),
            containers: 0,
            containers_running: 0,
            containers_paused: 0,
            containers_stopped: 0,
            images: 0,
            driver: "overlay2".to_string(),
            driver_status: Vec::new(),
            docker_root_dir: "/var/lib/skiff".to_string(),
            plugins: PluginsInfo {
                volume: vec!["local".to_string()],
                network: vec!["bridge".to_string(), "host".to_string(), "null".to_string()],
                authorization: None,
                log: vec![
                    "json-file".to_string(),
                    "journald".to_string(),
                    "local".to_string(),
                ],
            },
            memory_limit: true,
            swap_limit: true,
            cpu_cfs_period: true,
            cpu_cfs_quota: true,
            cpu_shares: true,
            cpu_set: true,
            pids_limit: true,
            oom_kill_disable: false,
            ipv4_forwarding: true,
            bridge_nf_iptables: false,
            bridge_nf_ip6tables: false,
            debug: false,
            nfd: 0,
            ngoroutines: 0,
            system_time: String::new(),
            logging_driver: "json-file".to_string(),
            cgroup_driver: "cgroupfs".to_string(),
            cgroup_version: "1".to_string(),
            nevents_listener: 0,
            kernel_version: String::new(),
            operating_system: String::new(),
            os_version: String::new(),
            os_type: "linux".to_string(),
            architecture: std::env::consts::ARCH.to_string(),
            ncpu: 0,
            mem_total: 0,
            index_server_address: "https://index.docker.io/v1/".to_string(),
            registry_config: RegistryConfig {
                insecure_registry_cidrs: vec!["127.0.0.0/8".to_string()],
                index_configs: BTreeMap::from([(
                    "docker.io".to_string(),
                    IndexInfo {
                        name: "docker.io".to_string(),
                        mirrors: Vec::new(),
                        secure: true,
                        official: true,
                    },
                )]),
                ..Default::default()
            },
            generic_resources: None,
            http_proxy: String::new(),
            https_proxy: String::new(),
            no_proxy: String::new(),
            name: String::new(),
            labels: Vec::new(),
            experimental_build: false,
            server_version: String::new(),
            runtimes: BTreeMap::new(),
            default_runtime: "libcontainer".to_string(),
            swarm: SwarmInfo::default(),
            live_restore_enabled: true,
            isolation: String::new(),
            init_binary: String::new(),
            containerd_commit: Commit::default(),
            runc_commit: Commit::default(),
            init_commit: Commit::default(),
            security_options: Vec::new(),
            cdi_spec_dirs: Vec::new(),
            warnings: None,
        }
    }
}

/// `POST /auth` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthResponse {
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity_token: String,
}

/// `GET /system/df`. A `None` part is one the client did not ask for (`?type=`): `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUsage {
    pub layers_size: i64,
    pub images: Option<Vec<ImageSummary>>,
    /// Container summaries with `SizeRw`/`SizeRootFs` (`ContainerBackend::disk_usage`).
    pub containers: Option<Vec<crate::types::container::ContainerSummary>>,
    pub volumes: Option<Vec<serde_json::Value>>,
    pub build_cache: Option<Vec<serde_json::Value>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_has_the_fields_clients_read() {
        let v = serde_json::to_value(SystemVersion::skiff("0.1.0", "abc", "6.1", "2026-01-01"))
            .unwrap();
        for k in [
            "Platform",
            "Components",
            "Engine",
            "Version",
            "ApiVersion",
            "MinAPIVersion",
            "GitCommit",
            "GoVersion",
            "Os",
            "Arch",
            "KernelVersion",
            "BuildTime",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["ApiVersion"], "1.47");
        assert_eq!(v["MinAPIVersion"], "1.24");
        assert_eq!(v["Components"][0]["Name"], "Engine");
        assert_eq!(v["Os"], "linux");
    }

    #[test]
    fn info_uses_dockers_field_spellings() {
        let v = serde_json::to_value(SystemInfo::default()).unwrap();
        for k in [
            "ID",
            "NCPU",
            "NFd",
            "OSType",
            "OSVersion",
            "CPUSet",
            "CPUShares",
            "IPv4Forwarding",
            "CDISpecDirs",
            "NEventsListener",
            "CpuCfsPeriod",
            "DockerRootDir",
            "MemTotal",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["Swarm"]["LocalNodeState"], "inactive");
        assert_eq!(
            v["RegistryConfig"]["IndexConfigs"]["docker.io"]["Official"],
            true
        );
        assert_eq!(v["Driver"], "overlay2");
    }
}
