//! What the host offers, read once per spec: CPUs, capabilities, rlimits and cgroup features.
//! Specs are clamped or validated against it the way Docker's sysinfo checks do.

use std::path::Path;

/// Host facts that change what spec is valid or runnable.
#[derive(Debug, Clone, PartialEq)]
pub struct HostInfo {
    /// Number of online CPUs.
    pub ncpu: u32,
    /// Online CPU ids (for cpuset checks).
    pub online_cpus: Vec<u32>,
    /// Online memory nodes (for cpuset.mems checks).
    pub online_mems: Vec<u32>,
    /// Capabilities of the daemon (Docker's "all capabilities": what the host really grants).
    pub capabilities: Vec<String>,
    /// Hard limit of RLIMIT_NOFILE etc., per rlimit name (e.g. "nofile"), for clamping.
    pub hard_limits: Vec<(String, u64)>,
    /// The memory cgroup can limit swap (memory.memsw.* on v1, memory.swap.max on v2).
    pub swap_limit: bool,
    /// The blkio cgroup has a weight file.
    pub blkio_weight: bool,
    /// Docker's default sysctls this kernel has (runtimes fail on missing ones).
    pub sysctls: Vec<String>,
}

impl HostInfo {
    pub fn probe() -> HostInfo {
        let online_cpus = read_list("/sys/devices/system/cpu/online");
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(online_cpus.len().max(1) as u32);
        let mut online_mems = read_list("/sys/devices/system/node/online");
        if online_mems.is_empty() {
            online_mems.push(0);
        }
        HostInfo {
            ncpu,
            online_cpus,
            online_mems,
            capabilities: current_capabilities(),
            hard_limits: super::rlimits::host_hard_limits(),
            swap_limit: Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
                || cgroup2_has("memory.swap.max"),
            blkio_weight: Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
                || Path::new("/sys/fs/cgroup/blkio/blkio.bfq.weight").exists()
                || cgroup2_has("io.weight")
                || cgroup2_has("io.bfq.weight"),
            sysctls: [
                "net.ipv4.ping_group_range",
                "net.ipv4.ip_unprivileged_port_start",
            ]
            .iter()
            .filter(|k| Path::new("/proc/sys").join(k.replace('.', "/")).exists())
            .map(|k| k.to_string())
            .collect(),
        }
    }
}

/// A cgroup v2 interface file exists in a child of the unified root (the root cgroup itself
/// has no controller files). Checks the pure v2 mount and the hybrid one.
fn cgroup2_has(file: &str) -> bool {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .filter(|root| Path::new(root).join("cgroup.controllers").exists())
        .any(|root| {
            let controllers =
                std::fs::read_to_string(Path::new(root).join("cgroup.subtree_control"))
                    .unwrap_or_default();
            let controller = file.split('.').next().unwrap_or("");
            controllers.split_whitespace().any(|c| c == controller)
        })
}

/// Parses a kernel list like "0-3,5".
pub fn parse_list(text: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if a > b || b - a > 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    Some(out)
}

fn read_list(path: &str) -> Vec<u32> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| parse_list(&t))
        .unwrap_or_default()
}

/// The daemon's effective capabilities by name, from /proc/self/status.
fn current_capabilities() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    match mask {
        Some(mask) => super::caps::ALL
            .iter()
            .enumerate()
            .filter(|(bit, _)| mask & (1u64 << bit) != 0)
            .map(|(_, name)| name.to_string())
            .collect(),
        None => super::caps::ALL.iter().map(|s| s.to_string()).collect(),
    }
}
