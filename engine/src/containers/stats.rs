//! `GET /containers/{id}/stats`: samples a container's cgroups (v1, v2 or hybrid) and
//! `/proc`, and renders Docker's stats JSON (the shape `docker stats` and dockerode read).
//!
//! On a hybrid host (v1 controllers plus a cgroup2 mount) a controller mounted as v1 is read
//! there, since that is where the kernel accounts it; the unified hierarchy is the fallback.
//! Everything here is blocking file reads: call it from `spawn_blocking`.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use skiff_api::{ApiError, ErrorKind};
use thiserror::Error;

/// USER_HZ: the unit of /proc/stat and cpuacct.stat, fixed at 100 by the kernel ABI
/// (dockerd hardcodes it the same way).
const CLOCK_TICKS: u64 = 100;
const NANOS_PER_TICK: u64 = 1_000_000_000 / CLOCK_TICKS;

#[derive(Debug, Error)]
pub enum StatsError {
    #[error("process {0} is gone: the container is not running")]
    ProcessGone(u32),
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl StatsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StatsError::ProcessGone(_) => ErrorKind::Conflict,
            StatsError::Read { .. } => ErrorKind::Internal,
        }
    }
}

impl From<StatsError> for ApiError {
    fn from(e: StatsError) -> Self {
        ApiError::new(e.kind(), e.to_string())
    }
}

/// A controller's directory for one process, in the hierarchy that accounts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupDir {
    V1(PathBuf),
    V2(PathBuf),
}

/// Where a process's memory, cpu, cpuacct, pids and blkio/io accounting lives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupPaths {
    pub memory: Option<CgroupDir>,
    pub cpu: Option<CgroupDir>,
    pub cpuacct: Option<CgroupDir>,
    pub pids: Option<CgroupDir>,
    pub blkio: Option<CgroupDir>,
}

impl CgroupPaths {
    /// Reads `/proc/<pid>/cgroup` and this process's mount table.
    pub fn for_pid(pid: u32) -> Result<Self, StatsError> {
        let cgroup = read_proc(pid, &format!("/proc/{pid}/cgroup"))?;
        let mountinfo = read_file(Path::new("/proc/self/mountinfo"))?;
        Ok(Self::from_tables(&cgroup, &mountinfo))
    }

    /// Resolves each controller from a `/proc/<pid>/cgroup` and a `mountinfo` text.
    pub fn from_tables(proc_cgroup: &str, mountinfo: &str) -> Self {
        let mounts = parse_mounts(mountinfo);
        let mut paths = CgroupPaths::default();
        let mut unified: Option<PathBuf> = None;
        for line in proc_cgroup.lines() {
            // "hierarchy-id:controller,list:/path"
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if controllers.is_empty() {
                unified = mounts.iter().find(|m| m.v2).map(|m| m.resolve(path));
                continue;
            }
            for ctrl in controllers.split(',') {
                let Some(m) = mounts
                    .iter()
                    .find(|m| !m.v2 && m.controllers.iter().any(|c| c == ctrl))
                else {
                    continue;
                };
                let dir = Some(CgroupDir::V1(m.resolve(path)));
                match ctrl {
                    "memory" => paths.memory = dir,
                    "cpu" => paths.cpu = dir,
                    "cpuacct" => paths.cpuacct = dir,
                    "pids" => paths.pids = dir,
                    "blkio" => paths.blkio = dir,
                    _ => {}
                }
            }
        }
        if let Some(u) = unified {
            // in v2 the cpu controller also does the accounting
            let v2 = |file: &str| u.join(file).exists().then(|| CgroupDir::V2(u.clone()));
            paths.memory = paths.memory.or_else(|| v2("memory.current"));
            paths.cpu = paths.cpu.or_else(|| v2("cpu.stat"));
            paths.cpuacct = paths.cpuacct.or_else(|| v2("cpu.stat"));
            paths.pids = paths.pids.or_else(|| v2("pids.current"));
            paths.blkio = paths.blkio.or_else(|| v2("io.stat"));
        }
        paths
    }
}

struct CgroupMount {
    root: String,
    mount_point: PathBuf,
    controllers: Vec<String>,
    v2: bool,
}

impl CgroupMount {
    /// The directory of cgroup `path` (relative to the cgroup namespace) under this mount.
    fn resolve(&self, path: &str) -> PathBuf {
        let rel = if self.root == "/" {
            path
        } else {
            path.strip_prefix(self.root.as_str()).unwrap_or(path)
        };
        self.mount_point.join(rel.trim_start_matches('/'))
    }
}

fn parse_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        // "id parent maj:min root mount-point opts [optional...] - fstype source super-opts"
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let v2 = match post[0] {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        out.push(CgroupMount {
            root: unescape(pre[3]),
            mount_point: PathBuf::from(unescape(pre[4])),
            controllers: post[2].split(',').map(str::to_string).collect(),
            v2,
        });
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemorySample {
    pub usage: u64,
    /// v1 only.
    pub max_usage: Option<u64>,
    /// v1 only.
    pub failcnt: Option<u64>,
    /// The cgroup limit, capped at the host's memory (unlimited reads as the host total).
    pub limit: u64,
    /// memory.stat as is (v1 `cache`, `rss`, `total_inactive_file`…; v2 `anon`, `file`…).
    pub stats: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuSample {
    /// Nanoseconds of CPU time used by the cgroup.
    pub total: u64,
    /// v1 only (cpuacct.usage_percpu).
    pub percpu: Vec<u64>,
    pub user: u64,
    pub system: u64,
    /// Host CPU time in nanoseconds (/proc/stat), the denominator of `docker stats`' CPU %.
    pub system_cpu_usage: u64,
    pub online_cpus: u32,
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetSample {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// One reading of a container's resource use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub read: DateTime<Utc>,
    pub memory: Option<MemorySample>,
    pub cpu: CpuSample,
    pub pids_current: Option<u64>,
    pub pids_limit: Option<u64>,
    pub io_service_bytes: Vec<BlkioEntry>,
    pub io_serviced: Vec<BlkioEntry>,
    /// Interfaces of the process's network namespace except `lo`. For a container on the
    /// host network dockerd reports none: the caller clears this then.
    pub networks: BTreeMap<String, NetSample>,
}

/// Samples the container whose init has `pid`.
pub fn sample(pid: u32) -> Result<Sample, StatsError> {
    let paths = CgroupPaths::for_pid(pid)?;
    sample_paths(&paths, pid)
}

/// Samples the given cgroups; `pid` is used for the network namespace.
pub fn sample_paths(paths: &CgroupPaths, pid: u32) -> Result<Sample, StatsError> {
    let read = Utc::now();
    let host_memory = host_memory()?;
    let memory = match &paths.memory {
        Some(dir) => Some(memory(dir, host_memory)?),
        None => None,
    };
    let mut cpu = cpu(paths.cpuacct.as_ref(), paths.cpu.as_ref())?;
    let (system, online) = system_cpu()?;
    cpu.system_cpu_usage = system;
    cpu.online_cpus = if online > 0 {
        online
    } else {
        cpu.percpu.len() as u32
    };
    let (pids_current, pids_limit) = match &paths.pids {
        Some(CgroupDir::V1(d)) | Some(CgroupDir::V2(d)) => (
            read_u64_opt(&d.join("pids.current"))?,
            read_u64_opt(&d.join("pids.max"))?.filter(|l| *l > 0),
        ),
        None => (None, None),
    };
    let (io_service_bytes, io_serviced) = match &paths.blkio {
        Some(dir) => blkio(dir)?,
        None => (Vec::new(), Vec::new()),
    };
    let net_dev = read_proc(pid, &format!("/proc/{pid}/net/dev"))?;
    Ok(Sample {
        read,
        memory,
        cpu,
        pids_current,
        pids_limit,
        io_service_bytes,
        io_serviced,
        networks: parse_net_dev(&net_dev),
    })
}

fn memory(dir: &CgroupDir, host_memory: u64) -> Result<MemorySample, StatsError> {
    let cap = |limit: Option<u64>| match limit {
        Some(l) if host_memory == 0 || l < host_memory => l,
        _ => host_memory,
    };
    match dir {
        CgroupDir::V1(d) => Ok(MemorySample {
            usage: read_u64_opt(&d.join("memory.usage_in_bytes"))?.unwrap_or(0),
            max_usage: read_u64_opt(&d.join("memory.max_usage_in_bytes"))?,
            failcnt: read_u64_opt(&d.join("memory.failcnt"))?,
            limit: cap(read_u64_opt(&d.join("memory.limit_in_bytes"))?),
            stats: read_flat_keyed(&d.join("memory.stat"))?,
        }),
        CgroupDir::V2(d) => Ok(MemorySample {
            usage: read_u64_opt(&d.join("memory.current"))?.unwrap_or(0),
            max_usage: None,
            failcnt: None,
            limit: cap(read_u64_opt(&d.join("memory.max"))?),
            stats: read_flat_keyed(&d.join("memory.stat"))?,
        }),
    }
}

fn cpu(cpuacct: Option<&CgroupDir>, cpu: Option<&CgroupDir>) -> Result<CpuSample, StatsError> {
    let mut s = CpuSample::default();
    match cpuacct {
        Some(CgroupDir::V1(d)) => {
            s.total = read_u64_opt(&d.join("cpuacct.usage"))?.unwrap_or(0);
            s.percpu = read_optional(&d.join("cpuacct.usage_percpu"))?
                .unwrap_or_default()
                .split_ascii_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            let stat = read_flat_keyed(&d.join("cpuacct.stat"))?;
            s.user = stat.get("user").copied().unwrap_or(0) * NANOS_PER_TICK;
            s.system = stat.get("system").copied().unwrap_or(0) * NANOS_PER_TICK;
        }
        Some(CgroupDir::V2(d)) => {
            let stat = read_flat_keyed(&d.join("cpu.stat"))?;
            let usec = |k: &str| stat.get(k).copied().unwrap_or(0) * 1000;
            s.total = usec("usage_usec");
            s.user = usec("user_usec");
            s.system = usec("system_usec");
        }
        None => {}
    }
    match cpu {
        Some(CgroupDir::V1(d)) => {
            let stat = read_flat_keyed(&d.join("cpu.stat"))?;
            s.periods = stat.get("nr_periods").copied().unwrap_or(0);
            s.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
            s.throttled_time = stat.get("throttled_time").copied().unwrap_or(0);
        }
        Some(CgroupDir::V2(d)) => {
            let stat = read_flat_keyed(&d.join("cpu.stat"))?;
            s.periods = stat.get("nr_periods").copied().unwrap_or(0);
            s.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
            s.throttled_time = stat.get("throttled_usec").copied().unwrap_or(0) * 1000;
        }
        None => {}
    }
    Ok(s)
}

/// Host CPU time in ns (user..softirq of the `cpu` line, as dockerd sums) and online CPUs.
fn system_cpu() -> Result<(u64, u32), StatsError> {
    let stat = read_file(Path::new("/proc/stat"))?;
    Ok(parse_proc_stat(&stat))
}

fn parse_proc_stat(stat: &str) -> (u64, u32) {
    let mut total = 0;
    let mut online = 0;
    for line in stat.lines() {
        let mut fields = line.split_ascii_whitespace();
        match fields.next() {
            Some("cpu") => {
                let ticks: u64 = fields.take(7).filter_map(|f| f.parse::<u64>().ok()).sum();
                total = ticks * NANOS_PER_TICK;
            }
            Some(name)
                if name.starts_with("cpu") && name[3..].chars().all(|c| c.is_ascii_digit()) =>
            {
                online += 1;
            }
            _ => {}
        }
    }
    (total, online)
}

fn host_memory() -> Result<u64, StatsError> {
    let info = read_file(Path::new("/proc/meminfo"))?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024))
}

fn blkio(dir: &CgroupDir) -> Result<(Vec<BlkioEntry>, Vec<BlkioEntry>), StatsError> {
    match dir {
        CgroupDir::V1(d) => {
            // CFQ files when the IO scheduler provides them, else the throttle layer's
            let pick = |names: &[&str]| -> Result<Vec<BlkioEntry>, StatsError> {
                for name in names {
                    if let Some(text) = read_optional(&d.join(name))? {
                        let entries = parse_blkio_v1(&text);
                        if !entries.is_empty() {
                            return Ok(entries);
                        }
                    }
                }
                Ok(Vec::new())
            };
            Ok((
                pick(&[
                    "blkio.io_service_bytes_recursive",
                    "blkio.throttle.io_service_bytes_recursive",
                    "blkio.throttle.io_service_bytes",
                ])?,
                pick(&[
                    "blkio.io_serviced_recursive",
                    "blkio.throttle.io_serviced_recursive",
                    "blkio.throttle.io_serviced",
                ])?,
            ))
        }
        CgroupDir::V2(d) => {
            let text = read_optional(&d.join("io.stat"))?.unwrap_or_default();
            Ok(parse_io_stat_v2(&text))
        }
    }
}

/// "8:0 Read 4096" lines; the "Total" summary is dropped, as dockerd does.
fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            let [dev, op, value] = f.as_slice() else {
                return None;
            };
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" -> (bytes, ios) as "read"/"write".
fn parse_io_stat_v2(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "read"),
                "wbytes" => (&mut bytes, "write"),
                "rios" => (&mut ios, "read"),
                "wios" => (&mut ios, "write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    (bytes, ios)
}

/// `/proc/<pid>/net/dev`: per-interface counters, `lo` left out.
fn parse_net_dev(text: &str) -> BTreeMap<String, NetSample> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let v: Vec<u64> = rest
            .split_ascii_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 16 {
            continue;
        }
        out.insert(
            name.to_string(),
            NetSample {
                rx_bytes: v[0],
                rx_packets: v[1],
                rx_errors: v[2],
                rx_dropped: v[3],
                tx_bytes: v[8],
                tx_packets: v[9],
                tx_errors: v[10],
                tx_dropped: v[11],
            },
        );
    }
    out
}

/// Docker's stats JSON for one sample and the previous one (`precpu_stats`, `preread`).
pub fn stats_json(id: &str, name: &str, cur: &Sample, pre: Option<&Sample>) -> Value {
    let name = if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/{name}")
    };
    let mut pids = Map::new();
    if let Some(c) = cur.pids_current {
        pids.insert("current".into(), json!(c));
    }
    if let Some(l) = cur.pids_limit {
        pids.insert("limit".into(), json!(l));
    }
    let mut v = json!({
        "read": go_time(cur.read),
        "preread": pre.map_or_else(|| "0001-01-01T00:00:00Z".to_string(), |p| go_time(p.read)),
        "pids_stats": pids,
        "blkio_stats": {
            "io_service_bytes_recursive": blkio_json(&cur.io_service_bytes),
            "io_serviced_recursive": blkio_json(&cur.io_serviced),
            "io_queue_recursive": null,
            "io_service_time_recursive": null,
            "io_wait_time_recursive": null,
            "io_merged_recursive": null,
            "io_time_recursive": null,
            "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(Some(&cur.cpu)),
        "precpu_stats": cpu_json(pre.map(|p| &p.cpu)),
        "memory_stats": memory_json(cur.memory.as_ref()),
        "name": name,
        "id": id,
    });
    if !cur.networks.is_empty() {
        let nets: Map<String, Value> = cur
            .networks
            .iter()
            .map(|(k, n)| {
                let n = json!({
                    "rx_bytes": n.rx_bytes, "rx_packets": n.rx_packets,
                    "rx_errors": n.rx_errors, "rx_dropped": n.rx_dropped,
                    "tx_bytes": n.tx_bytes, "tx_packets": n.tx_packets,
                    "tx_errors": n.tx_errors, "tx_dropped": n.tx_dropped,
                });
                (k.clone(), n)
            })
            .collect();
        v["networks"] = Value::Object(nets);
    }
    v
}

fn blkio_json(entries: &[BlkioEntry]) -> Value {
    json!(entries
        .iter()
        .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
        .collect::<Vec<_>>())
}

/// Go's omitempty: zero counters are left out, except the ones dockerd always writes.
fn cpu_json(cpu: Option<&CpuSample>) -> Value {
    let zero = CpuSample::default();
    let c = cpu.unwrap_or(&zero);
    let mut usage = json!({
        "total_usage": c.total,
        "usage_in_kernelmode": c.system,
        "usage_in_usermode": c.user,
    });
    if !c.percpu.is_empty() {
        usage["percpu_usage"] = json!(c.percpu);
    }
    let mut v = json!({
        "cpu_usage": usage,
        "throttling_data": {
            "periods": c.periods,
            "throttled_periods": c.throttled_periods,
            "throttled_time": c.throttled_time,
        },
    });
    if c.system_cpu_usage > 0 {
        v["system_cpu_usage"] = json!(c.system_cpu_usage);
    }
    if c.online_cpus > 0 {
        v["online_cpus"] = json!(c.online_cpus);
    }
    v
}

fn memory_json(m: Option<&MemorySample>) -> Value {
    let Some(m) = m else {
        return json!({});
    };
    let mut v = json!({ "usage": m.usage, "stats": m.stats, "limit": m.limit });
    if let Some(max) = m.max_usage {
        v["max_usage"] = json!(max);
    }
    if let Some(f) = m.failcnt {
        v["failcnt"] = json!(f);
    }
    v
}

/// Go's `time.Time` JSON: RFC 3339 with the fraction's trailing zeros removed.
fn go_time(t: DateTime<Utc>) -> String {
    let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    match s.split_once('.') {
        Some((secs, frac)) => {
            let digits = frac.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{secs}Z")
            } else {
                format!("{secs}.{digits}Z")
            }
        }
        None => s,
    }
}

fn read_file(path: &Path) -> Result<String, StatsError> {
    std::fs::read_to_string(path).map_err(|source| StatsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A /proc file of `pid`: a missing one means the process is gone.
fn read_proc(pid: u32, path: &str) -> Result<String, StatsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e)
            if matches!(e.kind(), io::ErrorKind::NotFound)
                || e.raw_os_error() == Some(libc::ESRCH) =>
        {
            Err(StatsError::ProcessGone(pid))
        }
        Err(source) => Err(StatsError::Read {
            path: path.into(),
            source,
        }),
    }
}

/// A cgroup file that may be absent (controller feature not built into the kernel).
fn read_optional(path: &Path) -> Result<Option<String>, StatsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StatsError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A single number; "max" (v2 / pids unlimited) reads as None.
fn read_u64_opt(path: &Path) -> Result<Option<u64>, StatsError> {
    Ok(read_optional(path)?.and_then(|s| s.trim().parse().ok()))
}

/// "key value" per line (memory.stat, cpu.stat, cpuacct.stat).
fn read_flat_keyed(path: &Path) -> Result<BTreeMap<String, u64>, StatsError> {
    Ok(read_optional(path)?
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Child, Command, Stdio};

    const MOUNTINFO_HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn resolves_v1_controllers_before_the_unified_mount() {
        let cg = "8:pids:/c1\n7:blkio:/c1\n4:memory:/c1\n2:cpuacct:/c1\n1:cpu:/c1\n0::/c1\n";
        let p = CgroupPaths::from_tables(cg, MOUNTINFO_HYBRID);
        assert_eq!(
            p.memory,
            Some(CgroupDir::V1("/sys/fs/cgroup/memory/c1".into()))
        );
        assert_eq!(
            p.cpuacct,
            Some(CgroupDir::V1("/sys/fs/cgroup/cpuacct/c1".into()))
        );
        assert_eq!(p.cpu, Some(CgroupDir::V1("/sys/fs/cgroup/cpu/c1".into())));
        assert_eq!(p.pids, Some(CgroupDir::V1("/sys/fs/cgroup/pids/c1".into())));
        assert_eq!(
            p.blkio,
            Some(CgroupDir::V1("/sys/fs/cgroup/blkio/c1".into()))
        );
        // co-mounted cpu,cpuacct and a mount whose root is not / (nested cgroup namespace)
        let mi = "50 1 0:40 /outer /cg/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let p = CgroupPaths::from_tables("3:cpu,cpuacct:/outer/inner\n", mi);
        assert_eq!(p.cpu, Some(CgroupDir::V1("/cg/cpu,cpuacct/inner".into())));
        assert_eq!(p.cpuacct, p.cpu);
        assert_eq!(p.memory, None);
    }

    #[test]
    fn pure_v2_reads_the_unified_files() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("c1");
        std::fs::create_dir(&c).unwrap();
        let files = [
            ("memory.current", "1000\n"),
            ("memory.max", "max\n"),
            ("memory.stat", "anon 10\nfile 20\ninactive_file 5\n"),
            ("cpu.stat", "usage_usec 7\nuser_usec 4\nsystem_usec 3\nnr_periods 2\nnr_throttled 1\nthrottled_usec 9\n"),
            ("pids.current", "3\n"),
            ("pids.max", "max\n"),
            ("io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n"),
        ];
        for (name, text) in files {
            std::fs::write(c.join(name), text).unwrap();
        }
        let mi = format!(
            "41 31 0:38 / {} rw - cgroup2 cgroup2 rw\n",
            dir.path().display()
        );
        let p = CgroupPaths::from_tables("0::/c1\n", &mi);
        assert_eq!(p.memory, Some(CgroupDir::V2(c.clone())));
        let s = sample_paths(&p, std::process::id()).unwrap();
        let m = s.memory.clone().unwrap();
        assert_eq!(m.usage, 1000);
        assert_eq!(
            m.limit,
            host_memory().unwrap(),
            "max means the host's memory"
        );
        assert_eq!(m.stats["inactive_file"], 5);
        assert_eq!((s.cpu.total, s.cpu.user, s.cpu.system), (7000, 4000, 3000));
        assert_eq!(
            (s.cpu.periods, s.cpu.throttled_periods, s.cpu.throttled_time),
            (2, 1, 9000)
        );
        assert_eq!((s.pids_current, s.pids_limit), (Some(3), None));
        assert_eq!(
            s.io_service_bytes[1],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "write".into(),
                value: 200
            }
        );
        assert_eq!(s.io_serviced.len(), 2);
    }

    #[test]
    fn parsers_handle_real_formats() {
        let (total, online) = parse_proc_stat("cpu  10 1 5 100 2 0 1 7 0 0\ncpu0 5 0 2 50 1 0 0 3 0 0\ncpu1 5 1 3 50 1 0 1 4 0 0\nintr 1\n");
        assert_eq!(total, 119 * NANOS_PER_TICK);
        assert_eq!(online, 2);
        let net = parse_net_dev(
            "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  eth0: 100 2 0 1 0 0 0 0 200 3 0 4 0 0 0 0\n",
        );
        assert_eq!(net.len(), 1);
        let e = &net["eth0"];
        assert_eq!(
            (
                e.rx_bytes,
                e.rx_dropped,
                e.tx_bytes,
                e.tx_packets,
                e.tx_dropped
            ),
            (100, 1, 200, 3, 4)
        );
        let b = parse_blkio_v1("8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n");
        assert_eq!(b.len(), 3);
        assert_eq!(
            b[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(
            go_time("2026-12-06T03:00:00.120Z".parse().unwrap()),
            "2026-12-06T03:00:00.12Z"
        );
        assert_eq!(
            go_time("2026-12-06T03:00:00Z".parse().unwrap()),
            "2026-12-06T03:00:00Z"
        );
    }

    /// A v1 memory + cpuacct + pids cgroup made for one test and removed afterwards.
    struct TestCgroup {
        dirs: Vec<PathBuf>,
        child: Option<Child>,
    }

    impl TestCgroup {
        fn create(name: &str) -> Option<Self> {
            let mut dirs = Vec::new();
            for ctrl in ["memory", "cpuacct", "pids"] {
                let root = Path::new("/sys/fs/cgroup").join(ctrl);
                if !root.join("cgroup.procs").exists() {
                    return None; // no v1 hierarchy here: nothing to test against
                }
                let d = root.join(name);
                std::fs::create_dir(&d).unwrap();
                dirs.push(d);
            }
            Some(TestCgroup { dirs, child: None })
        }
    }

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            for d in &self.dirs {
                let _ = std::fs::remove_dir(d);
            }
        }
    }

    #[test]
    fn samples_a_real_v1_cgroup() {
        let name = format!("skiff-stats-test-{}", std::process::id());
        let Some(mut cg) = TestCgroup::create(&name) else {
            eprintln!("skipping: no cgroup v1 memory/cpuacct/pids hierarchies");
            return;
        };
        std::fs::write(cg.dirs[0].join("memory.limit_in_bytes"), "67108864").unwrap();
        std::fs::write(cg.dirs[2].join("pids.max"), "50").unwrap();
        // the child waits on stdin until it is inside the cgroup, then burns some CPU
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("read go; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 1000")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut stdin = child.stdin.take().unwrap();
        cg.child = Some(child);
        for d in &cg.dirs {
            std::fs::write(d.join("cgroup.procs"), pid.to_string()).unwrap();
        }
        stdin.write_all(b"go\n").unwrap();

        let paths = CgroupPaths::for_pid(pid).unwrap();
        assert_eq!(paths.memory, Some(CgroupDir::V1(cg.dirs[0].clone())));
        assert_eq!(paths.cpuacct, Some(CgroupDir::V1(cg.dirs[1].clone())));
        assert_eq!(paths.pids, Some(CgroupDir::V1(cg.dirs[2].clone())));

        // wait for the busy loop to show up in cpuacct (no time bound beyond the harness's)
        let first = loop {
            let s = sample(pid).unwrap();
            if s.cpu.total > 0 && s.cpu.user + s.cpu.system > 0 {
                break s;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let m = first.memory.as_ref().unwrap();
        assert_eq!(m.limit, 64 << 20);
        assert!(m.usage <= m.limit);
        assert!(
            m.stats.contains_key("total_inactive_file"),
            "{:?}",
            m.stats.keys()
        );
        assert_eq!(first.pids_current, Some(1));
        assert_eq!(first.pids_limit, Some(50));
        assert!(first.cpu.system_cpu_usage > 0);
        let cpus = std::fs::read_to_string("/proc/stat")
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
            .count();
        assert_eq!(first.cpu.online_cpus as usize, cpus);
        assert!(!first.cpu.percpu.is_empty());

        let second = sample(pid).unwrap();
        assert!(second.cpu.total >= first.cpu.total);
        assert!(second.cpu.system_cpu_usage >= first.cpu.system_cpu_usage);
        let v = stats_json("abc", "web", &second, Some(&first));
        assert_eq!(v["name"], "/web");
        assert_eq!(v["id"], "abc");
        assert_eq!(v["memory_stats"]["limit"], 64u64 << 20);
        assert_eq!(v["pids_stats"], json!({"current": 1, "limit": 50}));
        assert_eq!(
            v["precpu_stats"]["cpu_usage"]["total_usage"],
            first.cpu.total
        );
        assert_eq!(v["cpu_stats"]["online_cpus"], cpus);
        assert!(v["blkio_stats"]["io_service_bytes_recursive"].is_array());
        assert_ne!(v["preread"], "0001-01-01T00:00:00Z");

        drop(cg);
        assert!(matches!(sample(pid), Err(StatsError::ProcessGone(p)) if p == pid));
    }

    #[test]
    fn json_without_a_previous_sample_has_dockers_zero_precpu() {
        let s = Sample {
            read: "2026-12-06T03:00:00.5Z".parse().unwrap(),
            memory: None,
            cpu: CpuSample {
                total: 5,
                online_cpus: 2,
                system_cpu_usage: 9,
                ..Default::default()
            },
            pids_current: Some(1),
            pids_limit: None,
            io_service_bytes: vec![],
            io_serviced: vec![],
            networks: BTreeMap::from([(
                "eth0".to_string(),
                NetSample {
                    rx_bytes: 1,
                    ..Default::default()
                },
            )]),
        };
        let v = stats_json("id1", "/n", &s, None);
        assert_eq!(v["read"], "2026-12-06T03:00:00.5Z");
        assert_eq!(v["preread"], "0001-01-01T00:00:00Z");
        assert_eq!(
            v["precpu_stats"],
            json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                   "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}})
        );
        assert_eq!(v["cpu_stats"]["system_cpu_usage"], 9);
        assert_eq!(v["pids_stats"], json!({"current": 1}));
        assert_eq!(v["networks"]["eth0"]["rx_bytes"], 1);
        assert_eq!(v["name"], "/n");
        assert_eq!(v["num_procs"], 0);
        assert_eq!(v["storage_stats"], json!({}));
        assert_eq!(v["memory_stats"], json!({}));
    }
}
