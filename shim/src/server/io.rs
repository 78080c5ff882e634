//! A process's output pump and attach socket.
//!
//! One thread per process polls the process's output fds (stdout/stderr pipes, or the pty
//! master), its attach listener, its attach clients and a wake pipe. Output goes to every
//! attach client (see [`super::attach`]: never waited for) and, for the init process, to the
//! log queue.

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
use serde::Deserialize;

use crate::error::ShimError;
use crate::server::attach::{Client, Clients};
use crate::server::logger::{LineSplitter, LogSink, Stream};
use crate::server::reaper::lock;

/// How long a new attach client may take to send its header line.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long slow clients get to take their backlog once the process's output is complete.
const FINAL_FLUSH: Duration = Duration::from_secs(5);

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
        let mut clients = Clients::new(self.terminal);
        let mut buf = vec![0u8; 32 * 1024];
        while !self.closed.load(Ordering::SeqCst) {
            for (fd, stream) in lock(&self.pending).drain(..) {
                outputs.push((File::from(fd), stream, LineSplitter::default()));
            }
            let is_ready = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
            let (wake_ready, listen_ready, ready, writable, hung_up) = {
                let targets = clients.poll_targets();
                let mut fds = vec![
                    PollFd::new(wake.as_fd(), PollFlags::POLLIN),
                    PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                ];
                for (f, _, _) in &outputs {
                    fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                }
                for (fd, backlog) in &targets {
                    let events = if *backlog {
                        PollFlags::POLLOUT
                    } else {
                        PollFlags::empty()
                    };
                    fds.push(PollFd::new(*fd, events));
                }
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(Errno::EINTR) => continue,
                    Err(_) => break,
                }
                let split = 2 + outputs.len();
                let ready: Vec<bool> = fds[2..split].iter().map(is_ready).collect();
                let (writable, hung_up) = client_events(&fds[split..]);
                (
                    is_ready(&fds[0]),
                    is_ready(&fds[1]),
                    ready,
                    writable,
                    hung_up,
                )
            };
            if wake_ready {
                let mut sink = [0u8; 64];
                while matches!(nix::unistd::read(wake.as_raw_fd(), &mut sink), Ok(n) if n > 0) {}
            }
            clients.after_poll(&writable, &hung_up);
            // Accept before reading output: a client that connected before the output was
            // produced must see it.
            if listen_ready {
                while let Ok((stream, _)) = listener.accept() {
                    self.add_client(&mut clients, stream);
                }
            }
            let mut i = 0;
            for ready in ready {
                if !ready {
                    i += 1;
                    continue;
                }
                let (file, stream, splitter) = &mut outputs[i];
                let stream = *stream;
                match file.read(&mut buf) {
                    Ok(n) if n > 0 => {
                        clients.broadcast(stream, &buf[..n]);
                        if let Some(log) = &self.log {
                            let mut lines = Vec::new();
                            splitter.push(&buf[..n], |line| lines.push(line));
                            log.send(stream, lines);
                        }
                        i += 1;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                        ) =>
                    {
                        i += 1
                    }
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
        drop(outputs);
        // Give slow clients their backlog, bounded, then disconnect everyone.
        let deadline = Instant::now() + FINAL_FLUSH;
        while clients.has_backlog() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let (writable, hung_up) = {
                let targets = clients.poll_targets();
                let mut fds: Vec<PollFd> = targets
                    .iter()
                    .map(|(fd, backlog)| {
                        let events = if *backlog {
                            PollFlags::POLLOUT
                        } else {
                            PollFlags::empty()
                        };
                        PollFd::new(*fd, events)
                    })
                    .collect();
                let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
                if matches!(poll(&mut fds, timeout), Err(e) if e != Errno::EINTR) {
                    break;
                }
                client_events(&fds)
            };
            clients.after_poll(&writable, &hung_up);
        }
        clients.close_all();
        let _ = std::fs::remove_file(&self.socket_path);
    }

    /// Reads the client's header line and registers it; a client that wants stdin gets a
    /// thread copying its bytes to the process.
    fn add_client(self: &Arc<Self>, clients: &mut Clients, stream: UnixStream) {
        let Some(header) = read_header(&stream) else {
            return;
        };
        // Registered even without output streams, so that close() disconnects it.
        let Ok(out) = stream.try_clone() else { return };
        clients.add(Client::new(out, header.stdout, header.stderr));
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
}

/// Per client: (writable, hung up) from poll results.
fn client_events(fds: &[PollFd]) -> (Vec<bool>, Vec<bool>) {
    let flags: Vec<PollFlags> = fds
        .iter()
        .map(|p| p.revents().unwrap_or(PollFlags::empty()))
        .collect();
    let writable = flags
        .iter()
        .map(|r| r.contains(PollFlags::POLLOUT))
        .collect();
    let gone = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
    let hung_up = flags.iter().map(|r| r.intersects(gone)).collect();
    (writable, hung_up)
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
