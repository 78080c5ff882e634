//! HostConfig resources -> linux.resources, with Docker's validation messages and defaults
//! (swap = 2 x memory when only memory is set; NanoCpus -> CFS quota over a 100 ms period).

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder,
};

use super::error::SpecError;
use super::host::{parse_list, HostInfo};
use super::request::Resources;

/// Docker's smallest memory limit: 6 MiB.
pub const MIN_MEMORY: i64 = 6 << 20;
/// The CFS period NanoCpus is expressed over.
pub const NANO_CPU_PERIOD: i64 = 100_000;

fn cpu_list(host: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < host.len() {
        let start = host[i];
        let mut end = start;
        while i + 1 < host.len() && host[i + 1] == end + 1 {
            i += 1;
            end = host[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

fn check_cpuset(what: &str, value: &str, available: &[u32]) -> Result<(), SpecError> {
    if value.is_empty() {
        return Ok(());
    }
    let requested = parse_list(value).ok_or_else(|| {
        SpecError::invalid(format!(
            "invalid value {value} for {what}: use a list like 0-2,4"
        ))
    })?;
    if !available.is_empty() && requested.iter().any(|c| !available.contains(c)) {
        let noun = if what == "cpuset.cpus" {
            "CPUs"
        } else {
            "memory nodes"
        };
        return Err(SpecError::invalid(format!(
            "Requested {noun} are not available - requested {value}, available: {}",
            cpu_list(available)
        )));
    }
    Ok(())
}

/// Everything Docker's verifyPlatformContainerResources rejects.
pub fn validate(r: &Resources, host: &HostInfo) -> Result<(), SpecError> {
    let invalid = |m: String| Err(SpecError::invalid(m));
    if r.memory < 0 && r.memory != -1 {
        return invalid(format!(
            "invalid memory limit {}: must not be negative",
            r.memory
        ));
    }
    if r.memory > 0 && r.memory < MIN_MEMORY {
        return invalid("Minimum memory limit allowed is 6MB".to_string());
    }
    if r.memory_swap < -1 {
        return invalid(format!(
            "invalid memory swap limit {}: use -1 for unlimited swap",
            r.memory_swap
        ));
    }
    if r.memory_swap > 0 && r.memory <= 0 {
        return invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
                .to_string(),
        );
    }
    if r.memory > 0 && r.memory_swap > 0 && r.memory_swap < r.memory {
        return invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage".to_string(),
        );
    }
    if r.memory_reservation < 0 {
        return invalid(format!(
            "invalid memory reservation {}: must not be negative",
            r.memory_reservation
        ));
    }
    if r.memory_reservation > 0 && r.memory_reservation < MIN_MEMORY {
        return invalid("Minimum memory reservation allowed is 6MB".to_string());
    }
    if r.memory > 0 && r.memory_reservation > 0 && r.memory < r.memory_reservation {
        return invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage"
                .to_string(),
        );
    }
    if r.nano_cpus != 0 && r.cpu_period != 0 {
        return invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set".to_string(),
        );
    }
    if r.nano_cpus != 0 && r.cpu_quota != 0 {
        return invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set".to_string(),
        );
    }
    let max_nano = i64::from(host.ncpu) * 1_000_000_000;
    if r.nano_cpus < 0 || r.nano_cpus > max_nano || (r.nano_cpus > 0 && r.nano_cpus < 10_000_000) {
        return invalid(format!(
            "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available",
            n = host.ncpu
        ));
    }
    if r.cpu_shares < 0 {
        return invalid(format!(
            "invalid CPU shares {}: must not be negative",
            r.cpu_shares
        ));
    }
    if r.cpu_period != 0 && !(1000..=1_000_000).contains(&r.cpu_period) {
        return invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                .to_string(),
        );
    }
    if r.cpu_quota > 0 && r.cpu_quota < 1000 {
        return invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)".to_string());
    }
    if r.cpu_quota < -1 {
        return invalid(format!(
            "invalid CPU quota {}: use -1 for no limit",
            r.cpu_quota
        ));
    }
    if r.blkio_weight > 0 && !(10..=1000).contains(&r.blkio_weight) {
        return invalid("Range of blkio weight is from 10 to 1000".to_string());
    }
    check_cpuset("cpuset.cpus", &r.cpuset_cpus, &host.online_cpus)?;
    check_cpuset("cpuset.mems", &r.cpuset_mems, &host.online_mems)?;
    Ok(())
}

/// linux.resources without the device rules (the caller adds those).
pub fn resources(r: &Resources, host: &HostInfo) -> Result<LinuxResources, SpecError> {
    let mut out = LinuxResourcesBuilder::default().build()?;

    let mut memory = LinuxMemoryBuilder::default();
    let mut memory_set = false;
    if r.memory > 0 {
        memory = memory.limit(r.memory);
        memory_set = true;
        if host.swap_limit {
            // Docker: unset swap means as much swap as memory (total = 2 x memory)
            let swap = match r.memory_swap {
                0 => r.memory.saturating_mul(2),
                s => s,
            };
            memory = memory.swap(swap);
        }
    }
    if r.memory_reservation > 0 {
        memory = memory.reservation(r.memory_reservation);
        memory_set = true;
    }
    if r.oom_kill_disable {
        memory = memory.disable_oom_killer(true);
        memory_set = true;
    }
    if memory_set {
        out.set_memory(Some(memory.build()?));
    }

    let mut cpu = LinuxCpuBuilder::default();
    let mut cpu_set = false;
    if r.cpu_shares > 0 {
        cpu = cpu.shares(r.cpu_shares as u64);
        cpu_set = true;
    }
    if r.nano_cpus > 0 {
        cpu = cpu
            .period(NANO_CPU_PERIOD as u64)
            .quota(r.nano_cpus.saturating_mul(NANO_CPU_PERIOD) / 1_000_000_000);
        cpu_set = true;
    }
    if r.cpu_period > 0 {
        cpu = cpu.period(r.cpu_period as u64);
        cpu_set = true;
    }
    if r.cpu_quota != 0 {
        cpu = cpu.quota(r.cpu_quota);
        cpu_set = true;
    }
    if !r.cpuset_cpus.is_empty() {
        cpu = cpu.cpus(r.cpuset_cpus.clone());
        cpu_set = true;
    }
    if !r.cpuset_mems.is_empty() {
        cpu = cpu.mems(r.cpuset_mems.clone());
        cpu_set = true;
    }
    if cpu_set {
        out.set_cpu(Some(cpu.build()?));
    }

    // 0 and -1 both mean unlimited in Docker's API
    if let Some(limit) = r.pids_limit.filter(|l| *l > 0) {
        out.set_pids(Some(LinuxPidsBuilder::default().limit(limit).build()?));
    }
    if r.blkio_weight > 0 && host.blkio_weight {
        out.set_block_io(Some(
            LinuxBlockIoBuilder::default()
                .weight(r.blkio_weight)
                .build()?,
        ));
    }
    Ok(out)
}
