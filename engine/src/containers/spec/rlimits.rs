//! Ulimits -> process.rlimits. Limits never exceed the host's hard limit: without
//! CAP_SYS_RESOURCE (missing in some sandboxes) the runtime's setrlimit would fail and the
//! container would not start, so we clamp instead of failing.

use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};

use super::error::SpecError;
use super::request::Ulimit;

/// Docker's default for open files (dockerd runs with LimitNOFILE=infinity = 1048576 and
/// containers inherit it).
pub const DEFAULT_NOFILE: u64 = 1_048_576;

const TYPES: &[(&str, PosixRlimitType, libc::__rlimit_resource_t)] = &[
    ("as", PosixRlimitType::RlimitAs, libc::RLIMIT_AS),
    ("core", PosixRlimitType::RlimitCore, libc::RLIMIT_CORE),
    ("cpu", PosixRlimitType::RlimitCpu, libc::RLIMIT_CPU),
    ("data", PosixRlimitType::RlimitData, libc::RLIMIT_DATA),
    ("fsize", PosixRlimitType::RlimitFsize, libc::RLIMIT_FSIZE),
    ("locks", PosixRlimitType::RlimitLocks, libc::RLIMIT_LOCKS),
    (
        "memlock",
        PosixRlimitType::RlimitMemlock,
        libc::RLIMIT_MEMLOCK,
    ),
    (
        "msgqueue",
        PosixRlimitType::RlimitMsgqueue,
        libc::RLIMIT_MSGQUEUE,
    ),
    ("nice", PosixRlimitType::RlimitNice, libc::RLIMIT_NICE),
    ("nofile", PosixRlimitType::RlimitNofile, libc::RLIMIT_NOFILE),
    ("nproc", PosixRlimitType::RlimitNproc, libc::RLIMIT_NPROC),
    ("rss", PosixRlimitType::RlimitRss, libc::RLIMIT_RSS),
    ("rtprio", PosixRlimitType::RlimitRtprio, libc::RLIMIT_RTPRIO),
    ("rttime", PosixRlimitType::RlimitRttime, libc::RLIMIT_RTTIME),
    (
        "sigpending",
        PosixRlimitType::RlimitSigpending,
        libc::RLIMIT_SIGPENDING,
    ),
    ("stack", PosixRlimitType::RlimitStack, libc::RLIMIT_STACK),
];

/// The daemon's hard limits per rlimit name (children inherit them; nobody here can raise them).
pub fn host_hard_limits() -> Vec<(String, u64)> {
    TYPES
        .iter()
        .filter_map(|(name, _, resource)| {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit only writes the struct we pass, which lives on our stack.
            let rc = unsafe { libc::getrlimit(*resource, &mut lim) };
            (rc == 0).then(|| (name.to_string(), lim.rlim_max))
        })
        .collect()
}

/// Checks names and soft <= hard, as Docker's ulimit parser does.
pub fn validate(ulimits: &[Ulimit]) -> Result<(), SpecError> {
    for u in ulimits {
        if !TYPES.iter().any(|(n, _, _)| *n == u.name) {
            return Err(SpecError::invalid(format!(
                "invalid ulimit type: {:?}: use one of {}",
                u.name,
                TYPES.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
            )));
        }
        if u.soft > u.hard && u.hard >= 0 {
            return Err(SpecError::invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            )));
        }
    }
    Ok(())
}

/// -1 (and anything negative) means unlimited.
fn value(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// The spec's rlimits: the requested ones plus Docker's nofile default, clamped to the host.
pub fn rlimits(ulimits: &[Ulimit], host_hard: &[(String, u64)]) -> Vec<PosixRlimit> {
    let mut wanted: Vec<(String, u64, u64)> = ulimits
        .iter()
        .map(|u| (u.name.clone(), value(u.soft), value(u.hard)))
        .collect();
    if !wanted.iter().any(|(n, _, _)| n == "nofile") {
        wanted.push(("nofile".to_string(), DEFAULT_NOFILE, DEFAULT_NOFILE));
    }
    wanted
        .into_iter()
        .filter_map(|(name, soft, hard)| {
            let (_, typ, _) = TYPES.iter().find(|(n, _, _)| *n == name)?;
            let limit = host_hard
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, h)| *h)
                .unwrap_or(u64::MAX);
            let hard = hard.min(limit);
            let soft = soft.min(hard);
            PosixRlimitBuilder::default()
                .typ(*typ)
                .soft(soft)
                .hard(hard)
                .build()
                .ok()
        })
        .collect()
}
