//! `exit.json`, the durable record of how the init process ended, and liveness checks that
//! do not mistake zombies for live processes.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::ShimError;
use crate::types::ExitInfo;

pub(crate) const EXIT_FILE: &str = "exit.json";

/// Writes `exit.json` durably: temp file, fsync, rename, fsync of the directory.
pub(crate) fn write_exit_file(state_dir: &Path, exit: &ExitInfo) -> Result<(), ShimError> {
    let tmp = state_dir.join(".exit.json.tmp");
    let path = state_dir.join(EXIT_FILE);
    let body = serde_json::to_vec(exit).map_err(|e| ShimError::Json {
        what: "exit record".into(),
        source: e,
    })?;
    let ctx = |what: &str| format!("{what} {}", path.display());
    let mut f = File::create(&tmp).map_err(|e| ShimError::io(ctx("create"), e))?;
    f.write_all(&body)
        .map_err(|e| ShimError::io(ctx("write"), e))?;
    f.sync_all().map_err(|e| ShimError::io(ctx("fsync"), e))?;
    fs::rename(&tmp, &path).map_err(|e| ShimError::io(ctx("rename into"), e))?;
    File::open(state_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ShimError::io(ctx("fsync directory of"), e))?;
    Ok(())
}

/// When the shim is gone (daemon restarted, shim died): the exit it recorded, if any.
pub fn read_exit_file(state_dir: &Path) -> Option<ExitInfo> {
    let body = fs::read(state_dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&body).ok()
}

/// True when pid is alive and not a zombie (reads /proc/PID/stat state).
pub fn process_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The command name is in parentheses and may contain spaces: the state follows the last ')'.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return false;
    };
    !matches!(rest.split_whitespace().next(), Some("Z" | "X" | "x") | None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let exit = ExitInfo {
            code: 3,
            exited_at: chrono::Utc::now(),
            oom_killed: true,
        };
        write_exit_file(dir.path(), &exit).unwrap();
        assert_eq!(read_exit_file(dir.path()), Some(exit));
        let text = fs::read_to_string(dir.path().join(EXIT_FILE)).unwrap();
        assert!(text.contains("\"code\":3"), "{text}");
    }

    #[test]
    fn own_process_is_alive_and_unknown_is_not() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(0));
        assert!(!process_alive(u32::MAX));
    }
}
