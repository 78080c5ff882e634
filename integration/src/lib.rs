//! Shared helpers for skiff's black-box tests: the real `skiff daemon` on a temp socket and
//! data root ([`Daemon`]), a real registry ([`Registry`]), the real docker CLI
//! ([`Daemon::docker`]), raw HTTP ([`Daemon::http`]), test images built by the project's
//! scripts ([`test_images`], [`BadImages`]) and a [`Sentinel`] outside every root.
//!
//! See docs/testing.md for what the images contain and how to run the tests.

mod daemon;
mod error;
pub mod http;
mod images;
pub mod mounts;
pub mod process;
mod registry;
mod sentinel;

use std::path::PathBuf;

pub use daemon::{Daemon, DaemonOptions};
pub use error::{HarnessError, Result};
pub use http::Response;
pub use images::{
    build_into, reference, test_images, BadImages, TestImages, BAD_REPO_PREFIX, IMAGE_NAMES,
    STORAGE_CORRUPTION_CASES, TEST_REPO_PREFIX,
};
pub use registry::{free_port, Registry, MANIFEST_ACCEPT};
pub use sentinel::{Sentinel, SENTINEL_FILE};

/// The workspace root (this crate's parent directory).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Cargo's target directory: `CARGO_TARGET_DIR` if set, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// `<workspace>/scripts`.
pub fn scripts_dir() -> PathBuf {
    workspace_root().join("scripts")
}

/// The skiff binary the tests drive: env `SKIFF_BIN`, else `<target>/debug/skiff`.
pub fn skiff_binary() -> PathBuf {
    std::env::var_os("SKIFF_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug").join("skiff"))
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Bytes of disk allocated to the files under `path` (like `du -s`; hardlinks once).
pub fn disk_usage(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if seen.insert((meta.dev(), meta.ino())) {
            total += meta.blocks() * 512;
        }
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.filter_map(|e| e.ok().map(|e| e.path())));
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_usage_counts_allocated_bytes_and_hardlinks_once() {
        let dir = tempfile::tempdir().unwrap();
        let empty = disk_usage(dir.path());
        std::fs::write(dir.path().join("a"), vec![1u8; 1 << 20]).unwrap();
        std::fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        // a sparse file allocates (almost) nothing
        let f = std::fs::File::create(dir.path().join("sparse")).unwrap();
        f.set_len(1 << 30).unwrap();
        let used = disk_usage(dir.path()) - empty;
        assert!((1 << 20..(1 << 20) + 65536).contains(&used), "{used}");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
