//! Capabilities: Docker's default set, CapAdd/CapDrop (with "ALL" and names with or without
//! the CAP_ prefix), and privileged containers.

use super::error::SpecError;

/// Every capability the kernel defines, indexed by its number.
pub const ALL: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capabilities for unprivileged containers.
pub const DEFAULT: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Upper-cases, adds the CAP_ prefix, keeps "ALL"; unknown names are a 400, and so are
/// names the host does not grant the daemon (the runtime could not give them).
pub fn normalize(names: &[String], available: &[String]) -> Result<Vec<String>, SpecError> {
    let mut out = Vec::new();
    for raw in names {
        let upper = raw.trim().to_ascii_uppercase();
        if upper == "ALL" {
            out.push(upper);
            continue;
        }
        let name = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        if !ALL.contains(&name.as_str()) {
            return Err(SpecError::invalid(format!("unknown capability: {name:?}")));
        }
        if !available.contains(&name) {
            return Err(SpecError::invalid(format!(
                "capability not supported by your kernel or not available in the current environment: {name:?}"
            )));
        }
        out.push(name);
    }
    Ok(out)
}

/// The container's capability set, as Docker computes it.
pub fn capabilities(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
    available: &[String],
) -> Result<Vec<String>, SpecError> {
    if privileged {
        return Ok(available.to_vec());
    }
    let drop = normalize(cap_drop, available)?;
    let add = normalize(cap_add, available)?;
    let mut caps: Vec<String> = if add.iter().any(|c| c == "ALL") {
        available
            .iter()
            .filter(|c| !drop.contains(c))
            .cloned()
            .collect()
    } else if drop.iter().any(|c| c == "ALL") {
        add.clone()
    } else {
        let mut caps: Vec<String> = DEFAULT
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c) && available.contains(c))
            .collect();
        caps.extend(add.iter().cloned());
        caps
    };
    caps.retain(|c| c != "ALL");
    let mut seen = Vec::new();
    caps.retain(|c| {
        let fresh = !seen.contains(c);
        seen.push(c.clone());
        fresh
    });
    Ok(caps)
}
