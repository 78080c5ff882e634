//! Receiving the pty master from the runtime over a console socket (runc --console-socket).

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libc::winsize as Winsize;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use crate::error::ShimError;

/// How long to wait for the runtime to send the pty master after it reported success.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub(crate) fn bind(path: PathBuf) -> Result<Self, ShimError> {
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(|e| ShimError::io(format!("bind console socket {}", path.display()), e))?;
        Ok(ConsoleSocket { path, listener })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the runtime's connection and takes the pty master it sends (SCM_RIGHTS).
    pub(crate) fn receive_master(&self) -> Result<OwnedFd, ShimError> {
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(&self.listener),
            PollFlags::POLLIN,
        )];
        let timeout = PollTimeout::try_from(RECEIVE_TIMEOUT).unwrap_or(PollTimeout::MAX);
        let ready =
            poll(&mut fds, timeout).map_err(|e| ShimError::sys("wait for the pty master", e))?;
        if ready == 0 {
            return Err(ShimError::Launch(
                "the runtime did not send the terminal's pty master".into(),
            ));
        }
        let (conn, _) = self
            .listener
            .accept()
            .map_err(|e| ShimError::io("accept on the console socket", e))?;
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| ShimError::sys("receive the pty master", e))?;
        let cmsgs = msg
            .cmsgs()
            .map_err(|e| ShimError::sys("read the console socket message", e))?;
        for cmsg in cmsgs {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                if let Some(&fd) = fds.first() {
                    for &extra in &fds[1..] {
                        // SAFETY: the kernel just gave us these descriptors; we own them.
                        drop(unsafe { OwnedFd::from_raw_fd(extra) });
                    }
                    // SAFETY: the kernel just installed this descriptor for us; nothing else
                    // owns it.
                    return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        Err(ShimError::Launch(
            "the runtime connected to the console socket but sent no pty master".into(),
        ))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sets the terminal size (TIOCSWINSZ on the pty master).
pub(crate) fn resize(master: &OwnedFd, width: u32, height: u32) -> Result<(), ShimError> {
    let size = Winsize {
        ws_row: height.min(u16::MAX as u32) as u16,
        ws_col: width.min(u16::MAX as u32) as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one Winsize from the pointer, which is valid for the call.
    let rc = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCSWINSZ,
            &size as *const Winsize,
        )
    };
    if rc < 0 {
        return Err(ShimError::io(
            "resize the terminal",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
