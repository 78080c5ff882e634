//! The container's stdio as libcontainer 0.7 needs it. Runs in the helper.
//!
//! `None` means /dev/null (the shim's contract). libcontainer's init replaces any fd 0-2
//! that is the host's /dev/null with the container's /dev/null opened read-only, so a
//! /dev/null stdout or stderr would fail every write with EBADF ("sh: write error").
//! Output meant for /dev/null goes to /dev/zero instead, which discards writes just the
//! same and is left alone.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg};

use crate::runtime::Stdio;

/// stdin, stdout, stderr, ready for the builder.
pub(super) struct Prepared {
    pub(super) stdin: OwnedFd,
    pub(super) stdout: OwnedFd,
    pub(super) stderr: OwnedFd,
}

pub(super) fn prepare(stdio: Stdio) -> Result<Prepared, String> {
    let stdin = match stdio.stdin {
        Some(fd) => fd,
        None => open("/dev/null", false)?,
    };
    Ok(Prepared {
        stdin: above_stdio(stdin)?,
        stdout: above_stdio(output(stdio.stdout)?)?,
        stderr: above_stdio(output(stdio.stderr)?)?,
    })
}

fn output(fd: Option<OwnedFd>) -> Result<OwnedFd, String> {
    match fd {
        Some(fd) if !is_dev_null(&fd)? => Ok(fd),
        _ => open("/dev/zero", true),
    }
}

fn open(path: &str, write: bool) -> Result<OwnedFd, String> {
    OpenOptions::new()
        .read(!write)
        .write(write)
        .open(path)
        .map(File::into)
        .map_err(|e| format!("cannot open {path} for the container's stdio: {e}"))
}

fn is_dev_null(fd: &OwnedFd) -> Result<bool, String> {
    let stat = nix::sys::stat::fstat(fd.as_raw_fd())
        .map_err(|e| format!("cannot inspect a stdio fd: {e}"))?;
    let char_device = stat.st_mode & libc::S_IFMT == libc::S_IFCHR;
    Ok(char_device && stat.st_rdev == libc::makedev(1, 3))
}

/// Moves an fd out of the 0..=2 range, so the container init's dup2 onto stdio cannot
/// clobber another stdio fd the helper holds.
fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, String> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let moved = fcntl(fd.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(3))
        .map_err(|e| format!("cannot move stdio fd {}: {e}", fd.as_raw_fd()))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(moved) })
}
