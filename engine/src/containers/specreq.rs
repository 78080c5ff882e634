//! Maps a container's create body (kept as JSON values in its record) and its image config
//! onto the spec module's plain [`SpecRequest`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::spec::{
    DeviceRequest, EtcFiles, ImageRuntimeConfig, MountKind, MountRequest, Resources, SpecRequest,
    Ulimit,
};

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(String::from)
}

fn b(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn i(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn strings(v: &Value, key: &str) -> Option<Vec<String>> {
    v.get(key).and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect()
    })
}

fn map(v: &Value, key: &str) -> BTreeMap<String, String> {
    v.get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// `Config` + `HostConfig` values and the image's runtime config → a spec request.
pub fn build(
    id: &str,
    hostname: &str,
    config: &Value,
    host: &Value,
    image: ImageRuntimeConfig,
    etc_files: EtcFiles,
    init_path: Option<PathBuf>,
) -> SpecRequest {
    let mounts = host
        .get("Mounts")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(mount_request).collect())
        .unwrap_or_default();
    let devices = host
        .get("Devices")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|d| DeviceRequest {
                    path_on_host: s(d, "PathOnHost").unwrap_or_default(),
                    path_in_container: s(d, "PathInContainer").unwrap_or_default(),
                    cgroup_permissions: s(d, "CgroupPermissions").unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let ulimits = host
        .get("Ulimits")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|u| Ulimit {
                    name: s(u, "Name").unwrap_or_default(),
                    soft: i(u, "Soft").unwrap_or(0),
                    hard: i(u, "Hard").unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    let resources = Resources {
        memory: i(host, "Memory").unwrap_or(0),
        memory_swap: i(host, "MemorySwap").unwrap_or(0),
        memory_reservation: i(host, "MemoryReservation").unwrap_or(0),
        nano_cpus: i(host, "NanoCpus").unwrap_or(0),
        cpu_shares: i(host, "CpuShares").unwrap_or(0),
        cpu_quota: i(host, "CpuQuota").unwrap_or(0),
        cpu_period: i(host, "CpuPeriod").unwrap_or(0),
        cpuset_cpus: s(host, "CpusetCpus").unwrap_or_default(),
        cpuset_mems: s(host, "CpusetMems").unwrap_or_default(),
        pids_limit: i(host, "PidsLimit"),
        oom_kill_disable: b(host, "OomKillDisable"),
        blkio_weight: i(host, "BlkioWeight")
            .unwrap_or(0)
            .clamp(0, u16::MAX as i64) as u16,
    };
    let init = host.get("Init").and_then(Value::as_bool).unwrap_or(false);
    SpecRequest {
        id: id.to_string(),
        hostname: hostname.to_string(),
        domainname: s(config, "Domainname").filter(|d| !d.is_empty()),
        image,
        entrypoint: strings(config, "Entrypoint"),
        cmd: strings(config, "Cmd"),
        env: strings(config, "Env").unwrap_or_default(),
        user: s(config, "User").filter(|u| !u.is_empty()),
        working_dir: s(config, "WorkingDir").filter(|w| !w.is_empty()),
        tty: b(config, "Tty"),
        open_stdin: b(config, "OpenStdin"),
        stop_signal: s(config, "StopSignal"),
        console_size: host.get("ConsoleSize").and_then(|c| {
            let a = c.as_array()?;
            Some([a.first()?.as_u64()? as u32, a.get(1)?.as_u64()? as u32])
        }),
        binds: strings(host, "Binds").unwrap_or_default(),
        mounts,
        tmpfs: map(host, "Tmpfs"),
        volume_paths: BTreeMap::new(),
        readonly_rootfs: b(host, "ReadonlyRootfs"),
        privileged: b(host, "Privileged"),
        cap_add: strings(host, "CapAdd").unwrap_or_default(),
        cap_drop: strings(host, "CapDrop").unwrap_or_default(),
        devices,
        security_opt: strings(host, "SecurityOpt").unwrap_or_default(),
        shm_size: i(host, "ShmSize").filter(|n| *n > 0),
        ulimits,
        sysctls: map(host, "Sysctls"),
        resources,
        oom_score_adj: i(host, "OomScoreAdj").filter(|n| *n != 0),
        init: init && init_path.is_some(),
        network_mode: s(host, "NetworkMode").unwrap_or_default(),
        ipc_mode: s(host, "IpcMode").unwrap_or_default(),
        pid_mode: s(host, "PidMode").unwrap_or_default(),
        uts_mode: s(host, "UTSMode").unwrap_or_default(),
        namespace_paths: Default::default(),
        group_add: strings(host, "GroupAdd").unwrap_or_default(),
        masked_paths: strings(host, "MaskedPaths"),
        readonly_paths: strings(host, "ReadonlyPaths"),
        cgroup_parent: s(host, "CgroupParent").filter(|c| !c.is_empty()),
        etc_files,
        init_path: if init { init_path } else { None },
    }
}

fn mount_request(m: &Value) -> MountRequest {
    let kind = match s(m, "Type").as_deref() {
        Some("tmpfs") => MountKind::Tmpfs,
        Some("volume") => MountKind::Volume,
        _ => MountKind::Bind,
    };
    MountRequest {
        kind,
        source: s(m, "Source").unwrap_or_default(),
        target: s(m, "Target").unwrap_or_default(),
        read_only: b(m, "ReadOnly"),
        propagation: m
            .get("BindOptions")
            .and_then(|o| s(o, "Propagation"))
            .filter(|p| !p.is_empty()),
        tmpfs_size: m.get("TmpfsOptions").and_then(|o| i(o, "SizeBytes")),
        tmpfs_mode: m
            .get("TmpfsOptions")
            .and_then(|o| i(o, "Mode"))
            .map(|n| n as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn create_fields_reach_the_spec_request() {
        let config = json!({
            "Entrypoint": [], "Cmd": ["echo", "hi"], "Env": ["A=1"], "User": "1000:1000",
            "WorkingDir": "/w", "Tty": true, "OpenStdin": true, "StopSignal": "SIGINT",
            "Domainname": ""
        });
        let host = json!({
            "Memory": 10485760, "NanoCpus": 500000000, "PidsLimit": 50,
            "Binds": ["/a:/b:ro"], "Tmpfs": {"/run": "size=1m"},
            "Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 4096, "Mode": 448}},
                       {"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": true}],
            "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}],
            "CapAdd": ["NET_ADMIN"], "ReadonlyRootfs": true, "Init": true,
            "NetworkMode": "none", "ConsoleSize": [24, 80]
        });
        let r = build(
            "id",
            "host",
            &config,
            &host,
            ImageRuntimeConfig::default(),
            EtcFiles::default(),
            Some(PathBuf::from("/init")),
        );
        assert_eq!(r.entrypoint, Some(vec![]));
        assert_eq!(r.cmd, Some(vec!["echo".to_string(), "hi".to_string()]));
        assert_eq!(r.user.as_deref(), Some("1000:1000"));
        assert_eq!(r.domainname, None);
        assert!(r.tty && r.open_stdin && r.readonly_rootfs && r.init);
        assert_eq!(r.resources.memory, 10 << 20);
        assert_eq!(r.resources.nano_cpus, 500_000_000);
        assert_eq!(r.resources.pids_limit, Some(50));
        assert_eq!(r.binds, vec!["/a:/b:ro".to_string()]);
        assert_eq!(r.tmpfs["/run"], "size=1m");
        assert_eq!(r.mounts[0].kind, MountKind::Tmpfs);
        assert_eq!(r.mounts[0].tmpfs_size, Some(4096));
        assert_eq!(r.mounts[0].tmpfs_mode, Some(0o700));
        assert_eq!(r.mounts[1].kind, MountKind::Volume);
        assert!(r.mounts[1].read_only);
        assert_eq!(r.ulimits[0].hard, 200);
        assert_eq!(r.network_mode, "none");
        assert_eq!(r.console_size, Some([24, 80]));
        assert_eq!(r.init_path, Some(PathBuf::from("/init")));
        // absent fields stay absent
        let r = build(
            "id",
            "h",
            &json!({"Image": "x"}),
            &json!({}),
            ImageRuntimeConfig::default(),
            EtcFiles::default(),
            None,
        );
        assert_eq!(r.entrypoint, None);
        assert_eq!(r.cmd, None);
        assert!(!r.init && r.resources.pids_limit.is_none());
    }
}
