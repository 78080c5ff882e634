//! Sysctls: only the namespaced ones a container may set, and only when it has the
//! namespace (net.* needs its own network namespace, IPC ones their own IPC namespace).

use std::collections::BTreeMap;

use super::error::SpecError;

const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

pub fn validate(
    sysctls: &BTreeMap<String, String>,
    own_netns: bool,
    own_ipcns: bool,
) -> Result<(), SpecError> {
    for key in sysctls.keys() {
        if IPC_KEYS.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            if !own_ipcns {
                return Err(SpecError::invalid(format!(
                    "sysctl {key:?} is not allowed when sharing the host's IPC namespace (--ipc host)"
                )));
            }
        } else if key.starts_with("net.") {
            if !own_netns {
                return Err(SpecError::invalid(format!(
                    "sysctl {key:?} is not allowed in host network mode"
                )));
            }
        } else {
            return Err(SpecError::invalid(format!(
                "sysctl {key:?} is not namespaced: only net.*, kernel.msg*, kernel.sem, kernel.shm* and fs.mqueue.* can be set in a container"
            )));
        }
    }
    Ok(())
}
