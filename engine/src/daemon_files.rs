//! Files the daemon owns while it runs: the data-root lock, the pid file and the socket.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use fs2::FileExt;

use crate::error::{Error, Result};

/// An exclusive lock on the data root, held for the daemon's lifetime. The kernel drops
/// it when the process dies, so a crashed daemon never blocks the next one.
#[derive(Debug)]
pub struct DataRootLock {
    _file: File,
}

impl DataRootLock {
    pub fn acquire(data_root: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_root).map_err(|e| {
            Error::io(
                format!("cannot create data root {}", data_root.display()),
                e,
            )
        })?;
        let path = data_root.join("skiff.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot open lock file {}", path.display()), e))?;
        if file.try_lock_exclusive().is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            };
            return Err(Error::AlreadyRunning(format!(
                "data root {} is in use by another skiff process{who}; stop it first or pass a different --data-root",
                data_root.display()
            )));
        }
        // Record our pid for the message above; failures here are cosmetic.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        Ok(DataRootLock { _file: file })
    }
}

/// Writes the pid file and removes it on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    pub fn create(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| Error::io(format!("cannot write pid file {}", path.display()), e))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the API socket: refuses a path another live process serves, replaces a stale
/// socket file left by a crash, and sets mode 0660.
pub fn bind_socket(path: &Path) -> Result<std::os::unix::net::UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(Error::AlreadyRunning(format!(
                "socket {} is served by another process; stop it or pass a different -H unix:///path",
                path.display()
            )));
        }
        std::fs::remove_file(path)
            .map_err(|e| Error::io(format!("cannot remove stale socket {}", path.display()), e))?;
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| Error::io(format!("cannot listen on {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| Error::io(format!("cannot set mode of {}", path.display()), e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("cannot make the socket non-blocking", e))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_same_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataRootLock::acquire(dir.path()).unwrap();
        let err = DataRootLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains("in use by another skiff process"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        DataRootLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn stale_socket_is_replaced_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let live = bind_socket(&path).unwrap();
        let err = bind_socket(&path).unwrap_err().to_string();
        assert!(err.contains("served by another process"), "{err}");
        drop(live); // the file stays behind, like after a crash
        assert!(path.exists());
        let _again = bind_socket(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
    }
}
