//! File access inside the container's rootfs that cannot escape it: paths are resolved with
//! `openat2(RESOLVE_IN_ROOT)`, so absolute symlinks and `..` stay inside the rootfs.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::readlinkat;
use nix::fcntl::{openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, mkdirat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};

use super::error::SpecError;

fn own(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open syscall and has no other owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn open_root(rootfs: &Path) -> Result<OwnedFd, SpecError> {
    nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(own)
    .map_err(|e| SpecError::io(format!("open rootfs {}", rootfs.display()), e.into()))
}

/// Opens `path` (absolute or relative, inside the container) beneath `root`.
fn open_in_root(root: &OwnedFd, path: &str, flags: OFlag) -> Result<OwnedFd, Errno> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    loop {
        match openat2(root.as_raw_fd(), rel, how) {
            Ok(fd) => return Ok(own(fd)),
            // a concurrent rename made the kernel ask for a retry
            Err(Errno::EAGAIN) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads a (small) file of the container, e.g. /etc/passwd. `Ok(None)` when it does not
/// exist; a file larger than `limit` bytes is an error (an image cannot make us read 1 GB).
pub fn read_file(rootfs: &Path, path: &str, limit: u64) -> Result<Option<String>, SpecError> {
    let root = open_root(rootfs)?;
    // O_NONBLOCK: a FIFO planted in the image must not hang the daemon
    let fd = match open_in_root(&root, path, OFlag::O_RDONLY | OFlag::O_NONBLOCK) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => return Ok(None),
        Err(e) => {
            return Err(SpecError::io(
                format!("open {path} in the rootfs"),
                e.into(),
            ))
        }
    };
    let st = fstat(fd.as_raw_fd())
        .map_err(|e| SpecError::io(format!("stat {path} in the rootfs"), e.into()))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Ok(None);
    }
    let mut text = String::new();
    File::from(fd)
        .take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|e| SpecError::io(format!("read {path} in the rootfs"), e))?;
    if text.len() as u64 > limit {
        return Err(SpecError::invalid(format!(
            "{path} in the image is larger than {limit} bytes"
        )));
    }
    Ok(Some(text))
}

/// Creates the working directory `workdir` inside `rootfs` if it is missing, owned by
/// uid:gid (only the directories created here are chowned, as Docker does). Every step is
/// resolved inside the rootfs, so a symlink in the image cannot make us create directories
/// on the host: a dangling symlink is followed (inside the rootfs) and its target created.
pub fn ensure_workdir(rootfs: &Path, workdir: &str, uid: u32, gid: u32) -> Result<(), SpecError> {
    super::process_args::check_container_path("working directory", workdir)?;
    let root = open_root(rootfs)?;
    let mut pending: Vec<String> = components(workdir);
    pending.reverse();
    let mut current = String::new();
    let mut symlinks_followed = 0;
    while let Some(component) = pending.pop() {
        if component == ".." {
            // from a symlink target: step up, never above the root
            if let Some(i) = current.rfind('/') {
                current.truncate(i);
            }
            continue;
        }
        let parent = open_in_root(&root, &current, OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(|e| workdir_error(workdir, &current, e))?;
        let next = format!("{current}/{component}");
        match open_in_root(&root, &next, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(_) => {
                current = next;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(workdir_error(workdir, &next, e)),
        }
        match mkdirat(
            Some(parent.as_raw_fd()),
            component.as_str(),
            Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) => {
                fchownat(
                    Some(parent.as_raw_fd()),
                    component.as_str(),
                    Some(Uid::from_raw(uid)),
                    Some(Gid::from_raw(gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| workdir_error(workdir, &next, e))?;
                current = next;
            }
            // a dangling symlink: continue with its target, resolved inside the rootfs
            Err(Errno::EEXIST) => {
                symlinks_followed += 1;
                if symlinks_followed > 40 {
                    return Err(workdir_error(workdir, &next, Errno::ELOOP));
                }
                let target = readlinkat(Some(parent.as_raw_fd()), component.as_str())
                    .map_err(|e| workdir_error(workdir, &next, e))?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    current.clear();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            Err(e) => return Err(workdir_error(workdir, &next, e)),
        }
    }
    Ok(())
}

fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(String::from)
        .collect()
}

fn workdir_error(workdir: &str, at: &str, e: Errno) -> SpecError {
    match e {
        Errno::ENOTDIR | Errno::EEXIST => SpecError::invalid(format!(
            "cannot create working directory {workdir}: {at} exists and is not a directory"
        )),
        _ => SpecError::io(
            format!("create working directory {workdir} at {at}"),
            e.into(),
        ),
    }
}
