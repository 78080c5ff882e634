//! Names of the files in a shim's state dir, shared by the shim and its client.
//!
//! Unix socket paths must fit in 107 bytes. Docker's exec ids are 64 hex digits, and the
//! state dir already holds the 64-hex container id, so long exec ids are replaced by a
//! 16-hex hash in socket names: with `/run/skiff/c/<id>` the longest socket path is 106 bytes.

use std::path::{Path, PathBuf};

/// Exec ids up to this length are used as they are in file names.
const SHORT_ID: usize = 16;

/// The file-name key of an exec process.
fn exec_key(exec_id: &str) -> String {
    if exec_id.len() <= SHORT_ID {
        return exec_id.to_string();
    }
    // FNV-1a: stable across builds and versions (the shim and a newer daemon must agree).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in exec_id.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// `attach-init.sock`, or `attach-<exec key>.sock`.
pub(crate) fn attach_socket(state_dir: &Path, exec_id: Option<&str>) -> PathBuf {
    match exec_id {
        None | Some("") => state_dir.join("attach-init.sock"),
        Some(id) => state_dir.join(format!("attach-{}.sock", exec_key(id))),
    }
}

/// Where the runtime sends a process's pty master.
pub(crate) fn console_socket(state_dir: &Path, exec_id: Option<&str>) -> PathBuf {
    match exec_id {
        None | Some("") => state_dir.join("console-init.sock"),
        Some(id) => state_dir.join(format!("console-{}.sock", exec_key(id))),
    }
}

/// The runtime's pid file for an exec process.
pub(crate) fn exec_pid_file(state_dir: &Path, exec_id: &str) -> PathBuf {
    state_dir.join(format!("exec-{}.pid", exec_key(exec_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths_fit_for_docker_ids() {
        let dir = PathBuf::from(format!("/run/skiff/c/{}", "a".repeat(64)));
        let exec = "b".repeat(64);
        for p in [
            attach_socket(&dir, Some(&exec)),
            console_socket(&dir, Some(&exec)),
            attach_socket(&dir, None),
        ] {
            assert!(p.as_os_str().len() <= 107, "{}", p.display());
        }
        assert_eq!(attach_socket(&dir, Some("e1")), dir.join("attach-e1.sock"));
        assert_ne!(
            attach_socket(&dir, Some(&exec)),
            attach_socket(&dir, Some(&"c".repeat(64)))
        );
    }
}
