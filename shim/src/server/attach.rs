//! Attach clients of one process, owned by its pump thread.
//!
//! Output is sent with non-blocking `send`. What a client cannot take right away waits in its
//! backlog (bounded) and is flushed when the socket becomes writable; a client whose backlog
//! would pass [`MAX_BACKLOG`] is disconnected. So a slow client never slows the container or
//! the other clients, and a briefly busy one loses nothing.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::sys::socket::{send, MsgFlags};

use crate::server::logger::Stream;

/// Output held for one client that is not reading fast enough.
const MAX_BACKLOG: usize = 1024 * 1024;

pub(crate) struct Client {
    stream: UnixStream,
    stdout: bool,
    stderr: bool,
    backlog: Vec<u8>,
}

impl Client {
    pub(crate) fn new(stream: UnixStream, stdout: bool, stderr: bool) -> Self {
        Client {
            stream,
            stdout,
            stderr,
            backlog: Vec::new(),
        }
    }

    /// Sends as much of the backlog as the socket takes now; false when the client is gone.
    fn flush(&mut self) -> bool {
        while !self.backlog.is_empty() {
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
            match send(self.stream.as_raw_fd(), &self.backlog, flags) {
                Ok(n) => {
                    self.backlog.drain(..n);
                }
                Err(Errno::EAGAIN) => return true,
                Err(Errno::EINTR) => {}
                Err(_) => return false,
            }
        }
        true
    }

    fn push(&mut self, frame: &[u8]) -> bool {
        if self.backlog.len() + frame.len() > MAX_BACKLOG {
            return false;
        }
        self.backlog.extend_from_slice(frame);
        self.flush()
    }
}

pub(crate) struct Clients {
    terminal: bool,
    list: Vec<Client>,
}

impl Clients {
    pub(crate) fn new(terminal: bool) -> Self {
        Clients {
            terminal,
            list: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, client: Client) {
        self.list.push(client);
    }

    /// Sends output to the clients that asked for its stream: raw with a terminal, else in
    /// Docker's multiplexed frames.
    pub(crate) fn broadcast(&mut self, stream: Stream, data: &[u8]) {
        if self.list.is_empty() {
            return;
        }
        let frame = if self.terminal {
            data.to_vec()
        } else {
            let mut f = Vec::with_capacity(8 + data.len());
            f.push(match stream {
                Stream::Stdout => 1,
                Stream::Stderr => 2,
            });
            f.extend_from_slice(&[0, 0, 0]);
            f.extend_from_slice(&(data.len() as u32).to_be_bytes());
            f.extend_from_slice(data);
            f
        };
        let terminal = self.terminal;
        self.list.retain_mut(|c| {
            let wanted = (terminal && (c.stdout || c.stderr))
                || match stream {
                    Stream::Stdout => c.stdout,
                    Stream::Stderr => c.stderr,
                };
            !wanted || c.push(&frame) || disconnect(c)
        });
    }

    /// Fds to poll: POLLOUT for clients with a backlog; hang-ups are reported for all.
    pub(crate) fn poll_targets(&self) -> Vec<(BorrowedFd<'_>, bool)> {
        self.list
            .iter()
            .map(|c| (c.stream.as_fd(), !c.backlog.is_empty()))
            .collect()
    }

    /// Acts on poll results (in `poll_targets` order): flushes writable clients, drops
    /// clients that hung up.
    pub(crate) fn after_poll(&mut self, writable: &[bool], hung_up: &[bool]) {
        let mut i = 0;
        self.list.retain_mut(|c| {
            let (w, h) = (writable[i], hung_up[i]);
            i += 1;
            if h {
                return disconnect(c);
            }
            !w || c.flush() || disconnect(c)
        });
    }

    pub(crate) fn has_backlog(&self) -> bool {
        self.list.iter().any(|c| !c.backlog.is_empty())
    }

    /// Disconnects every client (the process is gone and its output delivered).
    pub(crate) fn close_all(&mut self) {
        for c in self.list.drain(..) {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Shuts the client down; returns false so `retain` drops it.
fn disconnect(c: &Client) -> bool {
    let _ = c.stream.shutdown(std::net::Shutdown::Both);
    false
}
