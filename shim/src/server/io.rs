//! A process's output pump and attach socket.
//!
//! One thread per process polls the process's output fds (stdout/stderr pipes, or the pty
//! master), its attach listener and a wake pipe. Output goes to every attach client with a
//! non-blocking send (a client that cannot keep up is dropped, never waited for) and, for the
//! init process, to the log queue.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{send, MsgFlags};
use serde::Deserialize;

use crate::error::ShimError;
use crate::server::logger::{LineSplitter, LogSink, Stream};
use crate::server::reaper::lock;

/// How long a new attach client may take to send its header line.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
struct AttachHeader {
    #[serde(default)]
    stdin: bool,
    #[serde(default)]
    stdout: bool,
    #[serde(default)]
    stderr: bool,
}

/// The process's stdin as attach clients see it.
enum StdinState {
    /// Will be opened (a pty arrives only when the process starts).
    NotYet,
    Open(Arc<File>),
    Closed,
}

struct Client {
    stream: UnixStream,
    stdout: bool,
    stderr: bool,
}

/// The I/O side of one process (init or exec).
pub(crate) struct ProcIo {
    terminal: bool,
    stdin_once: bool,
    socket_path: PathBuf,
    /// Write end of the process's stdin (pipe, or a dup of the pty master). Shared so a
    /// write blocked on a process that does not read holds no lock; the fd closes when
    /// the last holder lets go.
    stdin: Mutex<StdinState>,
    stdin_ready: Condvar,
    log: Option<Arc<LogSink>>,
    clients: Mutex<Vec<Client>>,
    /// Output fds handed to the pump but not yet picked up.
    pending: Mutex<Vec<(OwnedFd, Stream)>>,
    /// Output fds not yet at EOF (pending ones included).
    open_outputs: Mutex<usize>,
    drained: Condvar,
    closed: AtomicBool,
    wake: OwnedFd,
}

impl ProcIo {
    /// Binds the attach socket and starts the pump thread.
    pub(crate) fn start(
        socket_path: PathBuf,
        terminal: bool,
        with_stdin: bool,
        stdin_once: bool,
        log: Option<Arc<LogSink>>,
    ) -> Result<Arc<ProcIo>, ShimError> {
        let _ = std::fs::remove_file(&socket_path);
        let listener = UnixListener::bind(&socket_path).map_err(|e| {
            ShimError::io(format!("bind attach socket {}", socket_path.display()), e)
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ShimError::io("set attach socket non-blocking", e))?;
        let (wake_r, wake_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(|e| ShimError::sys("create wake pipe", e))?;
        let io = Arc::new(ProcIo {
            terminal,
            stdin_once,
            socket_path,
            stdin: Mutex::new(if with_stdin {
                StdinState::NotYet
            } else {
                StdinState::Closed
            }),
            stdin_ready: Condvar::new(),
            log,
            clients: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
            open_outputs: Mutex::new(0),
            drained: Condvar::new(),
            closed: AtomicBool::new(false),
            wake: wake_w,
        });
        let pump = io.clone();
        std::thread::Builder::new()
            .name("io-pump".into())
            .spawn(move || pump.run(listener, wake_r))
            .map_err(|e| ShimError::io("start output pump thread", e))?;
        Ok(io)
    }

    pub(crate) fn set_stdin(&self, stdin: File) {
        let mut state = lock(&self.stdin);
        if matches!(*state, StdinState::NotYet) {
            *state = StdinState::Open(Arc::new(stdin));
        }
        self.stdin_ready.notify_all();
    }

    /// Closes the process's stdin (CloseIO, or the last attach client with stdin_once).
    pub(crate) fn close_stdin(&self) {
        *lock(&self.stdin) = StdinState::Closed;
        self.stdin_ready.notify_all();
    }

    /// Hands an output fd (stdout/stderr pipe read end, or the pty master) to the pump.
    pub(crate) fn add_output(&self, fd: OwnedFd, stream: Stream) {
        *lock(&self.open_outputs) += 1;
        lock(&self.pending).push((fd, stream));
        self.poke();
    }

    /// Waits until every output reached EOF, at most `timeout` (a daemonised grandchild may
    /// hold the pipe open forever).
    pub(crate) fn wait_drained(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut open = lock(&self.open_outputs);
        while *open > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            open = self
                .drained
                .wait_timeout(open, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Ends the pump: attach clients are disconnected and the socket removed.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.close_stdin();
        self.poke();
    }

    fn poke(&self) {
        let _ = nix::unistd::write(&self.wake, &[1]);
    }

    fn run(self: Arc<Self>, listener: UnixListener, wake: OwnedFd) {
        let mut outputs: Vec<(File, Stream, LineSplitter)> = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        while !self.closed.load(Ordering::SeqCst) {
            for (fd, stream) in lock(&self.pending).drain(..) {
                outputs.push((File::from(fd), stream, LineSplitter::default()));
            }
            let (wake_ready, listen_ready, ready) = {
                let mut fds = vec![
                    PollFd::new(wake.as_fd(), PollFlags::POLLIN),
                    PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                ];
                for (f, _, _) in &outputs {
                    fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(Errno::EINTR) => continue,
                    Err(_) => break,
                }
                let is_ready = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
                let ready: Vec<bool> = fds[2..].iter().map(is_ready).collect();
                (is_ready(&fds[0]), is_ready(&fds[1]), ready)
            };
            if wake_ready {
                let mut sink = [0u8; 64];
                while matches!(nix::unistd::read(wake.as_raw_fd(), &mut sink), Ok(n) if n > 0) {}
            }
            // Accept before reading output: a client that connected before the output was
            // produced must see it.
            if listen_ready {
                while let Ok((stream, _)) = listener.accept() {
                    self.add_client(stream);
                }
            }
            let mut i = 0;
            let mut index = 0;
            while i < outputs.len() {
                if !ready[index] {
                    i += 1;
                    index += 1;
                    continue;
                }
                index += 1;
                let (file, stream, splitter) = &mut outputs[i];
                let stream = *stream;
                match file.read(&mut buf) {
                    Ok(n) if n > 0 => {
                        self.broadcast(stream, &buf[..n]);
                        if let Some(log) = &self.log {
                            let mut lines = Vec::new();
                            splitter.push(&buf[..n], |line| lines.push(line));
                            log.send(stream, lines);
                        }
                        i += 1;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => i += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => i += 1,
                    // EOF; a pty master reports EIO once the last slave fd is closed.
                    _ => {
                        if let Some(log) = &self.log {
                            splitter.finish(|line| log.send(stream, vec![line]));
                        }
                        outputs.remove(i);
                        let mut open = lock(&self.open_outputs);
                        *open = open.saturating_sub(1);
                        self.drained.notify_all();
                    }
                }
            }
        }
        for (_, stream, splitter) in &mut outputs {
            if let Some(log) = &self.log {
                splitter.finish(|line| log.send(*stream, vec![line]));
            }
        }
        for client in lock(&self.clients).drain(..) {
            let _ = client.stream.shutdown(std::net::Shutdown::Both);
        }
        let _ = std::fs::remove_file(&self.socket_path);
    }

    /// Reads the client's header line and registers it; a client that wants stdin gets a
    /// thread copying its bytes to the process.
    fn add_client(self: &Arc<Self>, stream: UnixStream) {
        let Some(header) = read_header(&stream) else {
            return;
        };
        // Registered even without output streams, so that close() disconnects it.
        let Ok(out) = stream.try_clone() else { return };
        lock(&self.clients).push(Client {
            stream: out,
            stdout: header.stdout,
            stderr: header.stderr,
        });
        if header.stdin && !matches!(*lock(&self.stdin), StdinState::Closed) {
            let io = self.clone();
            let _ = std::thread::Builder::new()
                .name("attach-stdin".into())
                .spawn(move || io.copy_stdin(stream));
        }
    }

    fn copy_stdin(&self, mut client: UnixStream) {
        let mut buf = [0u8; 8192];
        loop {
            match client.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let Some(stdin) = self.stdin_writer() else {
                        return;
                    };
                    if (&*stdin).write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
        if self.stdin_once && !self.closed.load(Ordering::SeqCst) {
            self.close_stdin();
        }
    }

    /// The stdin writer, waiting for it while the process is not started yet.
    fn stdin_writer(&self) -> Option<Arc<File>> {
        let mut state = lock(&self.stdin);
        loop {
            match &*state {
                StdinState::Open(f) => return Some(f.clone()),
                StdinState::Closed => return None,
                StdinState::NotYet => {
                    state = self
                        .stdin_ready
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
            }
        }
    }

    fn broadcast(&self, stream: Stream, data: &[u8]) {
        let mut clients = lock(&self.clients);
        if clients.is_empty() {
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
        clients.retain(|c| {
            let wanted = (self.terminal && (c.stdout || c.stderr))
                || match stream {
                    Stream::Stdout => c.stdout,
                    Stream::Stderr => c.stderr,
                };
            if !wanted {
                return true;
            }
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
            match send(c.stream.as_raw_fd(), &frame, flags) {
                Ok(n) if n == frame.len() => true,
                // A partial frame cannot be completed without blocking: drop the client.
                _ => {
                    let _ = c.stream.shutdown(std::net::Shutdown::Both);
                    false
                }
            }
        });
    }
}

fn read_header(stream: &UnixStream) -> Option<AttachHeader> {
    stream.set_read_timeout(Some(HEADER_TIMEOUT)).ok()?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    let mut reader = stream;
    // Byte by byte: anything after the newline is stdin for the process.
    while line.len() < 4096 {
        match reader.read(&mut byte) {
            Ok(1) if byte[0] == b'\n' => break,
            Ok(1) => line.push(byte[0]),
            _ => return None,
        }
    }
    stream.set_read_timeout(None).ok()?;
    serde_json::from_slice(&line).ok()
}
