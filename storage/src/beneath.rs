//! Path resolution confined to a directory (the layer root) with `openat2`, plus small fd
//! helpers around nix's raw-fd API.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

pub(crate) fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open syscall and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn resolve_flags() -> ResolveFlag {
    ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

/// Open `rel` (a normalized relative path, may be empty for the root itself) beneath `root`.
/// Symlinks are followed only while they stay beneath `root`; escapes fail with EXDEV.
pub(crate) fn open_beneath(root: &OwnedFd, rel: &[u8], flags: OFlag) -> Result<OwnedFd, Errno> {
    let path: &OsStr = if rel.is_empty() {
        OsStr::new(".")
    } else {
        OsStr::from_bytes(rel)
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(resolve_flags());
    loop {
        match openat2(root.as_raw_fd(), path, how) {
            Ok(fd) => return Ok(own(fd)),
            // openat2 asks for a retry when a rename raced with the lookup.
            Err(Errno::EAGAIN) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Open the directory `rel` beneath `root` as an O_PATH handle usable as a dirfd.
pub(crate) fn open_dir_beneath(root: &OwnedFd, rel: &[u8]) -> Result<OwnedFd, Errno> {
    open_beneath(root, rel, OFlag::O_PATH | OFlag::O_DIRECTORY)
}

/// Open a plain path (not confined), e.g. the layer directory itself.
pub(crate) fn open_dir(path: &std::path::Path) -> Result<OwnedFd, Errno> {
    openat(
        None,
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(own)
}

/// `lsetxattr` on `name` inside the directory `dir` without following a final symlink. The
/// directory is reached through its /proc fd link, which works for every file type (device
/// nodes must not be opened, symlinks cannot carry an fd for fsetxattr).
pub(crate) fn set_xattr(dir: &OwnedFd, name: &[u8], key: &[u8], value: &[u8]) -> Result<(), Errno> {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    let path = CString::new(p).map_err(|_| Errno::EINVAL)?;
    let key = CString::new(key).map_err(|_| Errno::EINVAL)?;
    // SAFETY: both strings are valid NUL-terminated C strings and `value` is a live slice
    // whose pointer/length pair is passed unchanged.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(rc).map(drop)
}
