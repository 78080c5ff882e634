//! Container wire types (moby `api/types/container`, swagger v1.47).
//!
//! Serialisation follows Go's `encoding/json` of moby's structs so that what skiff answers
//! looks like what dockerd answers, and a body written by a Go client (the docker CLI) comes
//! back byte-for-byte equal as a JSON value:
//! * every field is an `Option`, so the engine can tell "not given" from "given";
//! * Go slices, maps and pointers WITHOUT `omitempty` serialise `None` as `null` (dockerd
//!   writes `"Cmd": null`), those WITH `omitempty` are left out when `None`;
//! * Go scalars (strings, bools, numbers) are left out when `None`: the engine fills what
//!   dockerd would report (see [`ContainerConfig::fill_zero_values`]);
//! * `Config` and `HostConfig` keep unknown fields in `extra`, so newer clients' fields
//!   survive create -> inspect.
//!
//! `Entrypoint: []` (clear the image's entrypoint) is `Some(vec![])`, distinct from `None`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::filters::Filters;
use crate::stream::Timestamp;

/// Extra (unknown) JSON fields kept verbatim.
pub type Extra = Map<String, Value>;

/// `Config` of create and inspect (moby `container.Config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_stdin: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_stdout: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_stderr: Option<bool>,
    /// `{"80/tcp": {}}`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_stdin: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin_once: Option<bool>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `{"/data": {}}`
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `Some(vec![])` clears the image's entrypoint; `None` keeps it.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// Fields this version does not know, kept verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ContainerConfig {
    /// Sets the scalars dockerd always reports (`""`, `false`) where they are `None`, so an
    /// inspect answer has every field a Go client expects.
    pub fn fill_zero_values(&mut self) {
        for s in [
            &mut self.hostname,
            &mut self.domainname,
            &mut self.user,
            &mut self.image,
            &mut self.working_dir,
        ] {
            s.get_or_insert_with(String::new);
        }
        for b in [
            &mut self.attach_stdin,
            &mut self.attach_stdout,
            &mut self.attach_stderr,
            &mut self.tty,
            &mut self.open_stdin,
            &mut self.stdin_once,
        ] {
            b.get_or_insert(false);
        }
    }
}

/// `Healthcheck` (moby `container.HealthConfig`); durations in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `HostConfig.RestartPolicy`. `Name` is `""`, `no`, `always`, `unless-stopped`, `on-failure`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub maximum_retry_count: i64,
}

/// `HostConfig.LogConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(default, rename = "Type")]
    pub kind: String,
    #[serde(default)]
    pub config: Option<BTreeMap<String, String>>,
}

/// One host binding of a container port (`PortBindings["80/tcp"][i]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    #[serde(rename = "HostIp", default)]
    pub host_ip: String,
    #[serde(rename = "HostPort", default)]
    pub host_port: String,
}

/// `"80/tcp" -> bindings` (a port with `null` bindings is exposed but not published).
pub type PortMap = BTreeMap<String, Option<Vec<PortBinding>>>;

/// `HostConfig.Devices[i]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    #[serde(default)]
    pub path_on_host: String,
    #[serde(default)]
    pub path_in_container: String,
    #[serde(default)]
    pub cgroup_permissions: String,
}

/// `HostConfig.DeviceRequests[i]` (GPUs and the like).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceRequest {
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub count: i64,
    #[serde(default, rename = "DeviceIDs")]
    pub device_ids: Option<Vec<String>>,
    #[serde(default)]
    pub capabilities: Option<Vec<Vec<String>>>,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
}

/// `HostConfig.Ulimits[i]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    #[serde(default)]
    pub soft: i64,
    #[serde(default)]
    pub hard: i64,
}

/// `BlkioWeightDevice[i]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WeightDevice {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub weight: u16,
}

/// `BlkioDeviceReadBps[i]` and friends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ThrottleDevice {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub rate: u64,
}

/// `HostConfig.Mounts[i]` (moby `mount.Mount`). The option blocks are kept as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mount {
    /// `bind`, `volume`, `tmpfs`, `npipe`, `cluster`
    #[serde(default, rename = "Type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
    /// `{"Propagation": "rprivate", "NonRecursive": false, "CreateMountpoint": false, ...}`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<Value>,
    /// `{"NoCopy": false, "Labels": {...}, "DriverConfig": {...}, "Subpath": ""}`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<Value>,
    /// `{"SizeBytes": 0, "Mode": 0, "Options": [[...]]}`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The cgroup resources of `HostConfig` (also the body of `POST /containers/{id}/update`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blkio_weight: Option<u16>,
    #[serde(default)]
    pub blkio_weight_device: Option<Vec<WeightDevice>>,
    #[serde(default)]
    pub blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
    #[serde(default)]
    pub blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
    #[serde(default, rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
    #[serde(default, rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_realtime_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_realtime_runtime: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<String>,
    #[serde(default)]
    pub devices: Option<Vec<DeviceMapping>>,
    #[serde(default)]
    pub device_cgroup_rules: Option<Vec<String>>,
    #[serde(default)]
    pub device_requests: Option<Vec<DeviceRequest>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_memory: Option<i64>,
    #[serde(
        default,
        rename = "KernelMemoryTCP",
        skip_serializing_if = "Option::is_none"
    )]
    pub kernel_memory_tcp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    #[serde(default)]
    pub memory_swappiness: Option<i64>,
    #[serde(default)]
    pub oom_kill_disable: Option<bool>,
    /// `0` or `-1`: unlimited; `null`: unchanged (update) / default (create).
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default)]
    pub ulimits: Option<Vec<Ulimit>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<i64>,
    #[serde(
        default,
        rename = "IOMaximumIOps",
        skip_serializing_if = "Option::is_none"
    )]
    pub io_maximum_iops: Option<u64>,
    #[serde(
        default,
        rename = "IOMaximumBandwidth",
        skip_serializing_if = "Option::is_none"
    )]
    pub io_maximum_bandwidth: Option<u64>,
}

/// `HostConfig` of create and inspect (moby `container.HostConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    /// `["/host:/ctr:ro", "vol:/data"]`
    #[serde(default)]
    pub binds: Option<Vec<String>>,
    #[serde(
        default,
        rename = "ContainerIDFile",
        skip_serializing_if = "Option::is_none"
    )]
    pub container_id_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_config: Option<LogConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    #[serde(default)]
    pub port_bindings: Option<PortMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_remove: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_driver: Option<String>,
    #[serde(default)]
    pub volumes_from: Option<Vec<String>>,
    /// `[height, width]`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u32; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub cap_add: Option<Vec<String>>,
    #[serde(default)]
    pub cap_drop: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroupns_mode: Option<String>,
    #[serde(default)]
    pub dns: Option<Vec<String>>,
    #[serde(default)]
    pub dns_options: Option<Vec<String>>,
    #[serde(default)]
    pub dns_search: Option<Vec<String>>,
    /// `["host:ip"]`
    #[serde(default)]
    pub extra_hosts: Option<Vec<String>>,
    #[serde(default)]
    pub group_add: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(default)]
    pub links: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_all_ports: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_rootfs: Option<bool>,
    #[serde(default)]
    pub security_opt: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_opt: Option<BTreeMap<String, String>>,
    /// `{"/run": "rw,size=64m"}`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "UTSMode", skip_serializing_if = "Option::is_none")]
    pub uts_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysctls: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    #[serde(flatten)]
    pub resources: Resources,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    #[serde(default)]
    pub masked_paths: Option<Vec<String>>,
    #[serde(default)]
    pub readonly_paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl HostConfig {
    /// Sets the scalars dockerd always reports (`""`, `false`, `0`, `[0, 0]`, an empty
    /// `LogConfig`/`RestartPolicy`) where they are `None`; daemon defaults such as the log
    /// driver are the engine's to set before this.
    pub fn fill_zero_values(&mut self) {
        for s in [
            &mut self.container_id_file,
            &mut self.network_mode,
            &mut self.volume_driver,
            &mut self.cgroupns_mode,
            &mut self.ipc_mode,
            &mut self.cgroup,
            &mut self.pid_mode,
            &mut self.uts_mode,
            &mut self.userns_mode,
            &mut self.isolation,
            &mut self.resources.cgroup_parent,
            &mut self.resources.cpuset_cpus,
            &mut self.resources.cpuset_mems,
        ] {
            s.get_or_insert_with(String::new);
        }
        for b in [
            &mut self.auto_remove,
            &mut self.privileged,
            &mut self.publish_all_ports,
            &mut self.readonly_rootfs,
        ] {
            b.get_or_insert(false);
        }
        let r = &mut self.resources;
        for n in [
            &mut self.oom_score_adj,
            &mut self.shm_size,
            &mut r.cpu_shares,
            &mut r.memory,
            &mut r.nano_cpus,
            &mut r.cpu_period,
            &mut r.cpu_quota,
            &mut r.cpu_realtime_period,
            &mut r.cpu_realtime_runtime,
            &mut r.memory_reservation,
            &mut r.memory_swap,
            &mut r.cpu_count,
            &mut r.cpu_percent,
        ] {
            n.get_or_insert(0);
        }
        r.blkio_weight.get_or_insert(0);
        r.io_maximum_iops.get_or_insert(0);
        r.io_maximum_bandwidth.get_or_insert(0);
        self.console_size.get_or_insert([0, 0]);
        self.log_config.get_or_insert_with(LogConfig::default);
        self.restart_policy
            .get_or_insert_with(RestartPolicy::default);
    }
}

/// `EndpointSettings.IPAMConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointIpamConfig {
    #[serde(
        rename = "IPv4Address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_address: Option<String>,
    #[serde(
        rename = "IPv6Address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_address: Option<String>,
    #[serde(
        rename = "LinkLocalIPs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub link_local_ips: Option<Vec<String>>,
}

/// One network of a container (moby `network.EndpointSettings`): create's
/// `NetworkingConfig.EndpointsConfig[name]` and inspect's `NetworkSettings.Networks[name]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSettings {
    #[serde(default, rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    #[serde(default)]
    pub links: Option<Vec<String>>,
    #[serde(default)]
    pub aliases: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(default)]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "NetworkID", skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    #[serde(
        default,
        rename = "EndpointID",
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, rename = "IPAddress", skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(
        default,
        rename = "IPPrefixLen",
        skip_serializing_if = "Option::is_none"
    )]
    pub ip_prefix_len: Option<i64>,
    #[serde(
        default,
        rename = "IPv6Gateway",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_gateway: Option<String>,
    #[serde(
        default,
        rename = "GlobalIPv6Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub global_ipv6_address: Option<String>,
    #[serde(
        default,
        rename = "GlobalIPv6PrefixLen",
        skip_serializing_if = "Option::is_none"
    )]
    pub global_ipv6_prefix_len: Option<i64>,
    #[serde(default, rename = "DNSNames")]
    pub dns_names: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `NetworkingConfig` of create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkingConfig {
    #[serde(default)]
    pub endpoints_config: Option<BTreeMap<String, EndpointSettings>>,
}

/// `POST /containers/create` body: the `Config` fields at the top level, plus `HostConfig`
/// and `NetworkingConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerCreateRequest {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(
        rename = "HostConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub host_config: Option<HostConfig>,
    #[serde(
        rename = "NetworkingConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub networking_config: Option<NetworkingConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateResponse {
    pub id: String,
    /// Always a list (`[]` when there is nothing to say).
    pub warnings: Vec<String>,
}

/// One healthcheck run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthcheckResult {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `none`, `starting`, `healthy`, `unhealthy`
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<HealthcheckResult>,
}

/// `State` of inspect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    /// RFC 3339 with nanoseconds; `0001-01-01T00:00:00Z` when never started.
    pub started_at: String,
    pub finished_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// Go's zero time as dockerd prints it.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl ContainerState {
    /// The human `Status` of `docker ps` (`Up 3 minutes (healthy)`, `Exited (0) 2 hours ago`,
    /// `Created`, ...), worded as dockerd's `State.String()`.
    pub fn status_text(&self, now: Timestamp) -> String {
        let parse = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc))
                .filter(|t| t.timestamp() > 0)
        };
        let ago = |t: Option<Timestamp>| human_duration(t.map(|t| now - t).unwrap_or_default());
        if self.running {
            if self.paused {
                return format!("Up {} (Paused)", ago(parse(&self.started_at)));
            }
            if self.restarting {
                return format!(
                    "Restarting ({}) {} ago",
                    self.exit_code,
                    ago(parse(&self.finished_at))
                );
            }
            let health = match self.health.as_ref().map(|h| h.status.as_str()) {
                Some("starting") => " (health: starting)",
                Some("healthy") => " (healthy)",
                Some("unhealthy") => " (unhealthy)",
                _ => "",
            };
            return format!("Up {}{health}", ago(parse(&self.started_at)));
        }
        if self.status == "removing" {
            return "Removal In Progress".to_string();
        }
        if self.dead {
            return "Dead".to_string();
        }
        if parse(&self.started_at).is_none() {
            return "Created".to_string();
        }
        match parse(&self.finished_at) {
            None => String::new(),
            Some(t) => format!("Exited ({}) {} ago", self.exit_code, ago(Some(t))),
        }
    }
}

/// Go's `units.HumanDuration`: `Less than a second`, `5 seconds`, `About a minute`,
/// `3 hours`, `2 weeks`, ...
pub fn human_duration(d: chrono::TimeDelta) -> String {
    let secs = d.num_seconds();
    if secs < 1 {
        return "Less than a second".to_string();
    }
    if secs == 1 {
        return "1 second".to_string();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = secs / 60;
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs as f64 / 3600.0).round() as i64;
    match hours {
        1 => "About an hour".to_string(),
        h if h < 48 => format!("{h} hours"),
        h if h < 24 * 7 * 2 => format!("{} days", h / 24),
        h if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        h if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", secs / 3600 / 24 / 365),
    }
}

/// `Mounts[i]` of inspect and list (moby `container.MountPoint`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    #[serde(default, rename = "Type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

/// `GraphDriver` of inspect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriverData {
    pub name: String,
    pub data: Option<BTreeMap<String, String>>,
}

/// `NetworkSettings` of inspect. `Networks` is `{}`, never `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    pub bridge: String,
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    pub sandbox_key: String,
    /// `{}` when nothing is published (dockerd: `{}` for a running container).
    pub ports: PortMap,
    pub networks: BTreeMap<String, EndpointSettings>,
    /// Deprecated top-level copies of the default network's endpoint (still sent by dockerd
    /// 1.47: `EndpointID`, `Gateway`, `IPAddress`, `MacAddress`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    /// `sha256:<hex>`
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    /// `/name`
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    /// `null` when there are none, as dockerd.
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: HostConfig,
    pub graph_driver: GraphDriverData,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub mounts: Vec<MountPoint>,
    pub config: ContainerConfig,
    pub network_settings: NetworkSettings,
}

/// `Ports[i]` of the container list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Port {
    #[serde(default, rename = "IP", skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    pub private_port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_port: Option<u16>,
    /// `tcp`, `udp`, `sctp`
    #[serde(rename = "Type")]
    pub kind: String,
}

/// `HostConfig` of the container list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryHostConfig {
    pub network_mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// `NetworkSettings` of the container list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryNetworkSettings {
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// One entry of `GET /containers/json` (and of `/system/df`'s `Containers`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    /// `["/name"]`
    pub names: Vec<String>,
    /// What the user asked for (`busybox`), or the image ID when that name is gone.
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    /// Unix seconds.
    pub created: i64,
    pub ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub labels: BTreeMap<String, String>,
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`
    pub state: String,
    /// Human text: `Up 3 minutes`, `Exited (0) 2 seconds ago`, `Created`.
    pub status: String,
    pub host_config: SummaryHostConfig,
    pub network_settings: SummaryNetworkSettings,
    pub mounts: Vec<MountPoint>,
}

/// Query of `GET /containers/json`; filters are validated by the route
/// ([`CONTAINER_LIST_FILTERS`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerListOptions {
    pub all: bool,
    /// `None` or a value <= 0: no limit (dockerd treats `-1` as unlimited).
    pub limit: Option<i64>,
    pub size: bool,
    pub filters: Filters,
}

/// dockerd's container name rule `/?[a-zA-Z0-9][a-zA-Z0-9_.-]+` (create and rename).
pub fn is_valid_container_name(name: &str) -> bool {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut chars = bare.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest = chars.as_str();
    first_ok
        && !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Filter keys `GET /containers/json` accepts.
pub const CONTAINER_LIST_FILTERS: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

/// Filter keys `POST /containers/prune` accepts.
pub const CONTAINER_PRUNE_FILTERS: &[&str] = &["label", "label!", "until"];

/// `?condition=` of `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum WaitCondition {
    #[default]
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    /// `""` and `not-running` -> NotRunning; anything unknown is 400, as dockerd.
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s.unwrap_or("") {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(ApiError::invalid_argument(format!(
                "invalid condition: \"{other}\": use not-running, next-exit or removed"
            ))),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitExitError {
    pub message: String,
}

/// Answer of `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerWaitResponse {
    pub status_code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WaitExitError>,
}

/// Answer of `GET /containers/{id}/top`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerTopResponse {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// Body of `POST /containers/{id}/update`: resources plus the restart policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerUpdateRequest {
    #[serde(flatten)]
    pub resources: Resources,
    #[serde(
        rename = "RestartPolicy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub restart_policy: Option<RestartPolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerUpdateResponse {
    pub warnings: Vec<String>,
}

/// Answer of `POST /containers/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerPruneReport {
    /// `null` when nothing was deleted, as dockerd.
    pub containers_deleted: Option<Vec<String>>,
    pub space_reclaimed: u64,
}

/// `GET /containers/{id}/logs` query. The route rejects a request with neither stdout nor
/// stderr (400, as dockerd).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Only entries at or after this instant (`since=0` is `None`).
    pub since: Option<Timestamp>,
    /// Only entries before this instant (`until=0` is `None`).
    pub until: Option<Timestamp>,
    /// Prefix every line with its RFC 3339 nano timestamp and a space (the backend does it).
    pub timestamps: bool,
    /// Last N lines; `None` = all (`tail=all` or absent).
    pub tail: Option<usize>,
}

/// `POST /containers/{id}/attach` query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachOptions {
    /// Stream output produced from now on.
    pub stream: bool,
    /// Replay the logs first.
    pub logs: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// e.g. `ctrl-p,ctrl-q`; `None` = the default.
    pub detach_keys: Option<String>,
}

/// What the route must know before answering a hijack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachInfo {
    /// True: raw bytes (`application/vnd.docker.raw-stream`); false: multiplexed frames.
    pub tty: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What docker CLI 28 sends for
    /// `docker create --name web -it -e A=1 -p 8080:80 -v /srv:/srv:ro --restart on-failure:3
    ///  --memory 64m --pids-limit 100 --ulimit nofile=1024:2048 --device /dev/null:/dev/xnull
    ///  --label tier=web --entrypoint "" --health-cmd "true" --network net1 --network-alias web
    ///  busybox sh`, written out from moby's Go structs.
    fn cli_create_body() -> Value {
        let mut body = json!({
            "Hostname": "", "Domainname": "", "User": "",
            "AttachStdin": true, "AttachStdout": true, "AttachStderr": true,
            "ExposedPorts": {"80/tcp": {}},
            "Tty": true, "OpenStdin": true, "StdinOnce": true,
            "Env": ["A=1"],
            "Cmd": ["sh"],
            "Healthcheck": {"Test": ["CMD-SHELL", "true"]},
            "Image": "busybox",
            "Volumes": {},
            "WorkingDir": "",
            "Entrypoint": [],
            "OnBuild": null,
            "Labels": {"tier": "web"},
            "SomeFutureField": {"x": [1, 2]},
            "NetworkingConfig": {
                "EndpointsConfig": {
                    "net1": {
                        "IPAMConfig": null, "Links": null, "Aliases": ["web"],
                        "DriverOpts": null, "NetworkID": "", "EndpointID": "",
                        "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                        "DNSNames": null
                    }
                }
            }
        });
        body["HostConfig"] = cli_host_config();
        body
    }

    fn cli_host_config() -> Value {
        serde_json::from_str(
            r#"{
                "Binds": ["/srv:/srv:ro"],
                "ContainerIDFile": "",
                "LogConfig": {"Type": "", "Config": {}},
                "NetworkMode": "net1",
                "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                "AutoRemove": false,
                "VolumeDriver": "",
                "VolumesFrom": null,
                "ConsoleSize": [50, 120],
                "CapAdd": null, "CapDrop": null,
                "CgroupnsMode": "",
                "Dns": [], "DnsOptions": [], "DnsSearch": [],
                "ExtraHosts": null, "GroupAdd": null,
                "IpcMode": "", "Cgroup": "", "Links": null,
                "OomScoreAdj": 0, "PidMode": "",
                "Privileged": false, "PublishAllPorts": false, "ReadonlyRootfs": false,
                "SecurityOpt": null,
                "Tmpfs": {"/run": "rw,size=64m"},
                "UTSMode": "", "UsernsMode": "", "ShmSize": 0,
                "Isolation": "",
                "CpuShares": 0, "Memory": 67108864, "NanoCpus": 0,
                "CgroupParent": "", "BlkioWeight": 0,
                "BlkioWeightDevice": [],
                "BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1048576}],
                "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [],
                "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
                "CpusetCpus": "", "CpusetMems": "",
                "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "rwm"}],
                "DeviceCgroupRules": null,
                "DeviceRequests": null,
                "MemoryReservation": 0, "MemorySwap": 0,
                "MemorySwappiness": null, "OomKillDisable": null,
                "PidsLimit": 100,
                "Ulimits": [{"Name": "nofile", "Hard": 2048, "Soft": 1024}],
                "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
                "Mounts": [{"Type": "volume", "Source": "data", "Target": "/data",
                            "VolumeOptions": {"NoCopy": true}}],
                "MaskedPaths": null, "ReadonlyPaths": null,
                "Init": true
            }"#,
        )
        .unwrap()
    }

    #[test]
    fn a_docker_cli_create_body_round_trips_exactly() {
        let body = cli_create_body();
        let req: ContainerCreateRequest = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(req.config.image.as_deref(), Some("busybox"));
        assert_eq!(req.config.entrypoint, Some(vec![]));
        assert_eq!(req.config.on_build, None);
        assert_eq!(req.config.extra["SomeFutureField"], json!({"x": [1, 2]}));
        let hc = req.host_config.as_ref().unwrap();
        assert_eq!(hc.resources.memory, Some(64 << 20));
        assert_eq!(hc.resources.pids_limit, Some(100));
        assert_eq!(hc.resources.memory_swappiness, None);
        assert_eq!(hc.restart_policy.as_ref().unwrap().maximum_retry_count, 3);
        assert!(hc.extra.is_empty(), "{:?}", hc.extra);
        assert_eq!(serde_json::to_value(&req).unwrap(), body);
    }

    #[test]
    fn entrypoint_absent_null_and_empty_stay_distinct_where_docker_distinguishes() {
        let r: ContainerCreateRequest = serde_json::from_str(r#"{"Image":"x"}"#).unwrap();
        assert_eq!(r.config.entrypoint, None);
        let r: ContainerCreateRequest =
            serde_json::from_str(r#"{"Image":"x","Entrypoint":null}"#).unwrap();
        assert_eq!(r.config.entrypoint, None);
        let r: ContainerCreateRequest =
            serde_json::from_str(r#"{"Image":"x","Entrypoint":[]}"#).unwrap();
        assert_eq!(r.config.entrypoint, Some(vec![]));
        // a minimal (dockerode) body: Go's nil slices/maps come back as null, scalars absent
        let r: ContainerCreateRequest = serde_json::from_str(r#"{"Image":"x"}"#).unwrap();
        let v = serde_json::to_value(&r.config).unwrap();
        assert_eq!(v["Cmd"], Value::Null);
        assert!(v.get("Cmd").is_some());
        assert!(v.get("Hostname").is_none());
        assert!(v.get("Healthcheck").is_none());
    }

    #[test]
    fn zero_values_fill_only_missing_scalars() {
        let mut c = ContainerConfig {
            hostname: Some("h".into()),
            ..Default::default()
        };
        c.fill_zero_values();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["Hostname"], "h");
        assert_eq!(v["User"], "");
        assert_eq!(v["Tty"], false);

        // a filled HostConfig has every key a Go client's body would have
        let mut h = HostConfig::default();
        h.resources.memory = Some(5);
        h.fill_zero_values();
        let filled = serde_json::to_value(&h).unwrap();
        assert_eq!(filled["Memory"], 5);
        assert_eq!(filled["CpuShares"], 0);
        let cli: Value = cli_host_config();
        let missing: Vec<_> = cli
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| filled.get(k.as_str()).is_none())
            .collect();
        // the omitempty ones only appear when set
        assert_eq!(missing, ["Init", "Mounts", "Tmpfs"]);
    }

    #[test]
    fn status_text_reads_like_docker_ps() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-06T03:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let st = |f: &dyn Fn(&mut ContainerState)| {
            let mut s = ContainerState {
                started_at: ZERO_TIME.into(),
                finished_at: ZERO_TIME.into(),
                ..Default::default()
            };
            f(&mut s);
            s.status_text(now)
        };
        assert_eq!(st(&|_| {}), "Created");
        assert_eq!(
            st(&|s| {
                s.running = true;
                s.started_at = "2026-12-06T02:57:00.5Z".into();
            }),
            "Up 2 minutes"
        );
        assert_eq!(
            st(&|s| {
                s.running = true;
                s.started_at = "2026-12-06T02:59:59Z".into();
                s.health = Some(Health {
                    status: "healthy".into(),
                    ..Default::default()
                });
            }),
            "Up 1 second (healthy)"
        );
        assert_eq!(
            st(&|s| {
                s.running = true;
                s.paused = true;
                s.started_at = "2026-12-05T01:00:00Z".into();
            }),
            "Up 26 hours (Paused)"
        );
        assert_eq!(
            st(&|s| {
                s.exit_code = 137;
                s.started_at = "2026-12-01T00:00:00Z".into();
                s.finished_at = "2026-12-06T02:00:00Z".into();
            }),
            "Exited (137) About an hour ago"
        );
        assert_eq!(st(&|s| s.dead = true), "Dead");
        assert_eq!(human_duration(chrono::TimeDelta::seconds(59)), "59 seconds");
        assert_eq!(human_duration(chrono::TimeDelta::days(20)), "2 weeks");
        assert_eq!(human_duration(chrono::TimeDelta::days(800)), "2 years");
    }

    #[test]
    fn update_body_takes_resources_and_restart_policy() {
        let r: ContainerUpdateRequest = serde_json::from_str(
            r#"{"Memory":1048576,"PidsLimit":null,"RestartPolicy":{"Name":"always"}}"#,
        )
        .unwrap();
        assert_eq!(r.resources.memory, Some(1 << 20));
        assert_eq!(r.resources.pids_limit, None);
        assert_eq!(r.restart_policy.unwrap().name, "always");
    }

    #[test]
    fn wait_conditions_parse_like_dockerd() {
        assert_eq!(
            WaitCondition::parse(None).unwrap(),
            WaitCondition::NotRunning
        );
        assert_eq!(
            WaitCondition::parse(Some("next-exit")).unwrap(),
            WaitCondition::NextExit
        );
        assert_eq!(
            WaitCondition::parse(Some("removed")).unwrap(),
            WaitCondition::Removed
        );
        assert_eq!(
            WaitCondition::parse(Some("bogus"))
                .unwrap_err()
                .status()
                .as_u16(),
            400
        );
    }
}
