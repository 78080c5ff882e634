//! Out-of-memory detection from the container's memory cgroup: the kernel's `oom_kill`
//! counter (cgroup v1 `memory.oom_control`, v2 `memory.events`).

use std::path::PathBuf;

/// The counter files of the memory cgroup a process is in, found from /proc/PID/cgroup.
/// Read right after create: once the process is gone its cgroup can no longer be looked up.
pub(crate) fn counter_files(pid: u32) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            files.push(
                PathBuf::from("/sys/fs/cgroup/memory")
                    .join(rel)
                    .join("memory.oom_control"),
            );
        } else if controllers.is_empty() {
            // cgroup v2: the unified hierarchy is /sys/fs/cgroup or, in hybrid mode,
            // /sys/fs/cgroup/unified.
            files.push(
                PathBuf::from("/sys/fs/cgroup")
                    .join(rel)
                    .join("memory.events"),
            );
            files.push(
                PathBuf::from("/sys/fs/cgroup/unified")
                    .join(rel)
                    .join("memory.events"),
            );
        }
    }
    files
}

/// Sum of the `oom_kill` counters in these files.
pub(crate) fn oom_kills(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.strip_prefix("oom_kill "))
                .filter_map(|n| n.trim().parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kill_counters_are_summed() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = dir.path().join("memory.oom_control");
        std::fs::write(&v1, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").unwrap();
        let v2 = dir.path().join("memory.events");
        std::fs::write(&v2, "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n").unwrap();
        let missing = dir.path().join("gone");
        assert_eq!(oom_kills(&[v1, v2, missing]), 3);
    }

    #[test]
    fn own_memory_cgroup_is_found() {
        // Every process is in some cgroup; on this host the memory controller or v2 applies.
        let files = counter_files(std::process::id());
        assert!(!files.is_empty());
        assert!(files.iter().all(|f| f.starts_with("/sys/fs/cgroup")));
    }
}
