//! Durable file operations: write to a temp file, fsync, rename, fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rand::Rng;

use crate::error::{Error, Result};

pub(crate) fn random_name(prefix: &str) -> String {
    let n: u64 = rand::thread_rng().gen();
    format!("{prefix}{n:016x}")
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| Error::io(format!("open {}", dir.display()), e))?;
    f.sync_all()
        .map_err(|e| Error::io(format!("fsync {}", dir.display()), e))
}

/// Create `dir` (and missing parents) and fsync each created directory's parent so the new
/// entries survive a power cut.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(Error::io(format!("create {}", dir.display()), e)),
    }
    if let Some(parent) = dir.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

/// Atomically replace `dest` with `bytes`: temp file in `tmp_dir` (same filesystem), fsync,
/// rename, fsync the destination directory.
pub(crate) fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_dir.join(random_name("w-"));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io(format!("create {}", tmp.display()), e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
        f.sync_all()
            .map_err(|e| Error::io(format!("fsync {}", tmp.display()), e))?;
        fs::rename(&tmp, dest)
            .map_err(|e| Error::io(format!("rename {} to {}", tmp.display(), dest.display()), e))?;
        if let Some(parent) = dest.parent() {
            fsync_dir(parent)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Remove a file and fsync its directory; a missing file is not an error.
pub(crate) fn remove_file_durable(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(format!("remove {}", path.display()), e)),
    }
    if let Some(parent) = path.parent() {
        fsync_dir(parent)?;
    }
    Ok(true)
}

/// Flush the whole filesystem holding `path`: one call instead of an fsync per file.
pub(crate) fn syncfs(path: &Path) -> Result<()> {
    let f = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    nix::unistd::syncfs(f.as_raw_fd())
        .map_err(|e| Error::nix(format!("syncfs {}", path.display()), e))
}
