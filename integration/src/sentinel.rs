//! A directory outside every data root that bad images aim at: if anything in it changes,
//! a layer escaped its root.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::error::{HarnessError, IoContext, Result};

/// Name of the file inside the sentinel directory that hardlink and symlink escapes target.
pub const SENTINEL_FILE: &str = "sentinel";

pub struct Sentinel {
    dir: tempfile::TempDir,
    snapshot: Snapshot,
}

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    entries: Vec<String>,
    content: Vec<u8>,
    ino: u64,
    nlink: u64,
    mode: u32,
    uid: u32,
    mtime: (i64, i64),
}

impl Sentinel {
    /// A fresh directory in the system temp dir holding one file of random bytes.
    pub fn new() -> Result<Sentinel> {
        let dir = tempfile::Builder::new()
            .prefix("skiff-sentinel-")
            .tempdir()
            .ctx(|| "create the sentinel dir".into())?;
        let mut content = vec![0u8; 64];
        rand::thread_rng().fill_bytes(&mut content);
        let file = dir.path().join(SENTINEL_FILE);
        fs::write(&file, &content).ctx(|| format!("write {}", file.display()))?;
        let snapshot = snapshot(dir.path())?;
        Ok(Sentinel { dir, snapshot })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join(SENTINEL_FILE)
    }

    /// Fails, naming what differs, unless the directory and file are exactly as created
    /// (same entries, bytes, inode, link count, mode, owner and mtime).
    pub fn check(&self) -> Result<()> {
        let now = snapshot(self.dir.path())?;
        if now == self.snapshot {
            return Ok(());
        }
        let before = &self.snapshot;
        let what = if now.entries != before.entries {
            format!("entries were {:?}, now {:?}", before.entries, now.entries)
        } else if now.content != before.content {
            "the sentinel file's bytes changed".to_string()
        } else if now.nlink != before.nlink {
            format!(
                "the sentinel file now has {} links (was {})",
                now.nlink, before.nlink
            )
        } else {
            format!("metadata changed: {before:?} -> {now:?}")
        };
        Err(HarnessError::SentinelTouched {
            dir: self.dir.path().to_path_buf(),
            what,
        })
    }
}

fn snapshot(dir: &Path) -> Result<Snapshot> {
    let mut entries = Vec::new();
    for e in fs::read_dir(dir).ctx(|| format!("list {}", dir.display()))? {
        let e = e.ctx(|| format!("list {}", dir.display()))?;
        entries.push(e.file_name().to_string_lossy().into_owned());
    }
    entries.sort();
    let file = dir.join(SENTINEL_FILE);
    // symlink_metadata: a sentinel replaced by a symlink must count as touched
    let (content, meta) = match fs::symlink_metadata(&file) {
        Ok(m) if m.is_file() => (
            fs::read(&file).ctx(|| format!("read {}", file.display()))?,
            Some(m),
        ),
        Ok(m) => (Vec::new(), Some(m)),
        Err(_) => (Vec::new(), None),
    };
    Ok(Snapshot {
        entries,
        content,
        ino: meta.as_ref().map_or(0, |m| m.ino()),
        nlink: meta.as_ref().map_or(0, |m| m.nlink()),
        mode: meta.as_ref().map_or(0, |m| m.mode()),
        uid: meta.as_ref().map_or(0, |m| m.uid()),
        mtime: meta
            .as_ref()
            .map_or((0, 0), |m| (m.mtime(), m.mtime_nsec())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_sentinel_passes() {
        let s = Sentinel::new().unwrap();
        s.check().unwrap();
        s.check().unwrap();
    }

    #[test]
    fn detects_new_files_writes_and_links() {
        let s = Sentinel::new().unwrap();
        fs::write(s.dir().join("escaped"), b"x").unwrap();
        assert!(s.check().unwrap_err().to_string().contains("escaped"));

        let s = Sentinel::new().unwrap();
        let mut bytes = fs::read(s.file()).unwrap();
        bytes[0] ^= 1;
        fs::write(s.file(), bytes).unwrap();
        assert!(s.check().is_err());

        let s = Sentinel::new().unwrap();
        let other = tempfile::tempdir().unwrap();
        fs::hard_link(s.file(), other.path().join("link")).unwrap();
        assert!(s.check().unwrap_err().to_string().contains("links"));
    }
}
