//! The shim's one task: the init process and its exec processes, their states and exits.
//!
//! Lock order: the reaper's runtime lock before `state`, never the other way round (the
//! reaper calls [`Shim::on_exit`] holding the runtime lock).

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use nix::fcntl::OFlag;
use oci_spec::runtime::{LinuxResources, Process};

use crate::error::{ShimError, TaskErrorKind};
use crate::exitfile::write_exit_file;
use crate::paths;
use crate::runtime::{CreateOptions, ExecOptions, Runtime, Stdio};
use crate::server::console::{self, ConsoleSocket};
use crate::server::io::ProcIo;
use crate::server::logger::{LogSink, Stream};
use crate::server::oom;
use crate::server::reaper::{lock, Reaper};
use crate::types::{ExitInfo, LaunchOptions, LogConfig, TaskStatus};

/// How long an exited process's output may take to reach EOF before its attach clients are
/// disconnected anyway (a daemonised grandchild can hold the pipes open).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Exits of pids nobody registered (yet) that are remembered.
const UNCLAIMED_EXITS: usize = 256;

pub(crate) struct Proc {
    pub(crate) pid: u32,
    pub(crate) status: TaskStatus,
    pub(crate) exit: Option<ExitInfo>,
    pub(crate) terminal: bool,
    io: Arc<ProcIo>,
    pty: Option<OwnedFd>,
    /// An exec process between Exec and Start.
    pending: Option<PendingExec>,
}

struct PendingExec {
    process: Box<Process>,
    stdio: Stdio,
    stdin: bool,
}

struct State {
    init: Proc,
    execs: HashMap<String, Proc>,
    unclaimed: HashMap<u32, (i32, DateTime<Utc>)>,
    unclaimed_order: VecDeque<u32>,
    deleted: bool,
}

impl State {
    fn proc(&self, exec_id: &str) -> Result<&Proc, ShimError> {
        if exec_id.is_empty() {
            return Ok(&self.init);
        }
        self.execs
            .get(exec_id)
            .ok_or_else(|| exec_not_found(exec_id))
    }

    fn proc_mut(&mut self, exec_id: &str) -> Result<&mut Proc, ShimError> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        self.execs
            .get_mut(exec_id)
            .ok_or_else(|| exec_not_found(exec_id))
    }
}

fn exec_not_found(exec_id: &str) -> ShimError {
    ShimError::task(
        TaskErrorKind::NotFound,
        format!("exec process {exec_id} not found"),
    )
}

pub(crate) struct Shim {
    pub(crate) opts: LaunchOptions,
    runtime: Box<dyn Runtime>,
    pub(crate) reaper: Reaper,
    state: Mutex<State>,
    changed: Condvar,
    log: Option<Arc<LogSink>>,
    oom_files: Vec<PathBuf>,
    oom_baseline: u64,
    exit_tx: Mutex<Sender<()>>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ShimError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ShimError::sys("create a pipe", e))
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, ShimError> {
    fd.try_clone()
        .map_err(|e| ShimError::io("duplicate the pty master", e))
}

/// Pipes for a process without a terminal: the child's ends go to the runtime, ours to `io`.
fn stdio_pipes(io: &ProcIo, with_stdin: bool) -> Result<Stdio, ShimError> {
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let stdin = if with_stdin {
        let (in_r, in_w) = pipe()?;
        io.set_stdin(File::from(in_w));
        Some(in_r)
    } else {
        None
    };
    io.add_output(out_r, Stream::Stdout);
    io.add_output(err_r, Stream::Stderr);
    Ok(Stdio {
        stdin,
        stdout: Some(out_w),
        stderr: Some(err_w),
    })
}

/// Hands a received pty master to the process's I/O: output, stdin and resize.
fn attach_pty(io: &ProcIo, master: &OwnedFd, with_stdin: bool) -> Result<(), ShimError> {
    io.add_output(dup(master)?, Stream::Stdout);
    if with_stdin {
        io.set_stdin(File::from(dup(master)?));
    }
    Ok(())
}

impl Shim {
    /// Creates the init process (status Created) and everything around it: log writer,
    /// attach socket, stdio pipes or pty.
    pub(crate) fn create(
        opts: LaunchOptions,
        runtime: Box<dyn Runtime>,
        exit_tx: Sender<()>,
    ) -> Result<Arc<Shim>, ShimError> {
        let log = match &opts.log {
            LogConfig::JsonFile {
                path,
                max_size,
                max_file,
            } => Some(Arc::new(
                LogSink::start(path.clone(), *max_size, *max_file)
                    .map_err(|e| ShimError::io(format!("open log file {}", path.display()), e))?,
            )),
            LogConfig::None => None,
        };
        let io = ProcIo::start(
            paths::attach_socket(&opts.state_dir, None),
            opts.terminal,
            opts.open_stdin,
            opts.stdin_once,
            log.clone(),
        )?;
        let reaper = Reaper::default();
        let pid_file = opts.state_dir.join("init.pid");
        let (pid, pty) = {
            let _guard = reaper.runtime_lock();
            if opts.terminal {
                let console = ConsoleSocket::bind(paths::console_socket(&opts.state_dir, None))?;
                let pid = runtime.create(CreateOptions {
                    id: &opts.id,
                    bundle: &opts.bundle,
                    stdio: Stdio::default(),
                    console_socket: Some(console.path()),
                    pid_file: &pid_file,
                });
                let pid = pid.inspect_err(|_| io.close())?;
                let master = console.receive_master()?;
                attach_pty(&io, &master, opts.open_stdin)?;
                (pid, Some(master))
            } else {
                let stdio = stdio_pipes(&io, opts.open_stdin)?;
                let created = runtime.create(CreateOptions {
                    id: &opts.id,
                    bundle: &opts.bundle,
                    stdio,
                    console_socket: None,
                    pid_file: &pid_file,
                });
                match created {
                    Ok(pid) => (pid, None),
                    Err(e) => {
                        io.close();
                        return Err(e);
                    }
                }
            }
        };
        let oom_files = oom::counter_files(pid);
        let oom_baseline = oom::oom_kills(&oom_files);
        Ok(Arc::new(Shim {
            runtime,
            reaper,
            state: Mutex::new(State {
                init: Proc {
                    pid,
                    status: TaskStatus::Created,
                    exit: None,
                    terminal: opts.terminal,
                    io,
                    pty,
                    pending: None,
                },
                execs: HashMap::new(),
                unclaimed: HashMap::new(),
                unclaimed_order: VecDeque::new(),
                deleted: false,
            }),
            changed: Condvar::new(),
            log,
            oom_files,
            oom_baseline,
            exit_tx: Mutex::new(exit_tx),
            opts,
        }))
    }

    pub(crate) fn init_pid(&self) -> u32 {
        lock(&self.state).init.pid
    }

    /// Asks the main thread to exit the shim.
    pub(crate) fn request_exit(&self) {
        let _ = lock(&self.exit_tx).send(());
    }

    /// Stops every pump (disconnecting attach clients, removing their sockets).
    pub(crate) fn close_all_io(&self) {
        let state = lock(&self.state);
        state.init.io.close();
        for p in state.execs.values() {
            p.io.close();
        }
    }

    /// Called by the reaper for every reaped child.
    pub(crate) fn on_exit(self: &Arc<Self>, pid: u32, code: i32) {
        let now = Utc::now();
        let mut state = lock(&self.state);
        let key = if state.init.pid == pid && state.init.exit.is_none() {
            Some(String::new())
        } else {
            state
                .execs
                .iter()
                .find(|(_, p)| p.pid == pid && p.exit.is_none())
                .map(|(id, _)| id.clone())
        };
        match key {
            Some(exec_id) => {
                drop(state);
                self.spawn_finalize(exec_id, code, now);
            }
            None => {
                state.unclaimed.insert(pid, (code, now));
                state.unclaimed_order.push_back(pid);
                while state.unclaimed_order.len() > UNCLAIMED_EXITS {
                    if let Some(old) = state.unclaimed_order.pop_front() {
                        state.unclaimed.remove(&old);
                    }
                }
            }
        }
    }

    fn spawn_finalize(self: &Arc<Self>, exec_id: String, code: i32, at: DateTime<Utc>) {
        let shim = self.clone();
        let spawned = std::thread::Builder::new()
            .name("exit".into())
            .spawn(move || shim.finalize(&exec_id, code, at));
        if spawned.is_err() {
            // Out of threads: record the exit without draining rather than lose it.
            self.record_exit("", code, at, false);
        }
    }

    /// After a process exited: drain its output, record the exit durably (init), wake waiters.
    fn finalize(&self, exec_id: &str, code: i32, at: DateTime<Utc>) {
        let io = match lock(&self.state).proc(exec_id) {
            Ok(p) => p.io.clone(),
            Err(_) => return,
        };
        io.wait_drained(DRAIN_TIMEOUT);
        io.close();
        let mut oom_killed = false;
        if exec_id.is_empty() {
            if let Some(log) = &self.log {
                log.flush(DRAIN_TIMEOUT);
            }
            oom_killed = oom::oom_kills(&self.oom_files) > self.oom_baseline;
        }
        self.record_exit(exec_id, code, at, oom_killed);
    }

    fn record_exit(&self, exec_id: &str, code: i32, at: DateTime<Utc>, oom_killed: bool) {
        let exit = ExitInfo {
            code,
            exited_at: at,
            oom_killed,
        };
        if exec_id.is_empty() {
            // The durable record comes first: a waiter woken below may read it right away.
            let _ = write_exit_file(&self.opts.state_dir, &exit);
        }
        let mut state = lock(&self.state);
        if let Ok(p) = state.proc_mut(exec_id) {
            p.exit = Some(exit);
            p.status = TaskStatus::Stopped;
        }
        self.changed.notify_all();
    }

    /// Registers a new pid; if the reaper already saw it exit, finalizes it now.
    fn claim(self: &Arc<Self>, state: &mut State, exec_id: &str, pid: u32) {
        if let Some((code, at)) = state.unclaimed.remove(&pid) {
            state.unclaimed_order.retain(|p| *p != pid);
            self.spawn_finalize(exec_id.to_string(), code, at);
        }
    }

    pub(crate) fn snapshot(
        &self,
        exec_id: &str,
    ) -> Result<(u32, TaskStatus, Option<ExitInfo>, bool), ShimError> {
        let state = lock(&self.state);
        let p = state.proc(exec_id)?;
        Ok((p.pid, p.status, p.exit.clone(), p.terminal))
    }

    pub(crate) fn start(self: &Arc<Self>, exec_id: &str) -> Result<u32, ShimError> {
        if !exec_id.is_empty() {
            return self.start_exec(exec_id);
        }
        {
            let state = lock(&self.state);
            if state.init.status != TaskStatus::Created {
                return Err(ShimError::task(
                    TaskErrorKind::FailedPrecondition,
                    format!(
                        "the task is {:?}, not created; it can be started only once",
                        state.init.status
                    )
                    .to_lowercase(),
                ));
            }
        }
        let _guard = self.reaper.runtime_lock();
        self.runtime.start(&self.opts.id)?;
        let mut state = lock(&self.state);
        if state.init.status == TaskStatus::Created {
            state.init.status = TaskStatus::Running;
        }
        Ok(state.init.pid)
    }

    pub(crate) fn exec(
        &self,
        exec_id: &str,
        process: Process,
        terminal: bool,
        stdin: bool,
    ) -> Result<(), ShimError> {
        if exec_id.is_empty() || exec_id.contains('/') || exec_id.len() > 64 {
            return Err(ShimError::task(
                TaskErrorKind::InvalidArgument,
                format!("invalid exec id {exec_id:?}: use up to 64 characters without '/'"),
            ));
        }
        let mut state = lock(&self.state);
        if state.execs.contains_key(exec_id) {
            return Err(ShimError::task(
                TaskErrorKind::AlreadyExists,
                format!("exec process {exec_id} already exists"),
            ));
        }
        if state.init.status != TaskStatus::Running {
            return Err(ShimError::task(
                TaskErrorKind::FailedPrecondition,
                format!(
                    "cannot exec in a {:?} container, it must be running",
                    state.init.status
                )
                .to_lowercase(),
            ));
        }
        let io = ProcIo::start(
            paths::attach_socket(&self.opts.state_dir, Some(exec_id)),
            terminal,
            stdin,
            true,
            None,
        )?;
        let stdio = if terminal {
            Stdio::default()
        } else {
            match stdio_pipes(&io, stdin) {
                Ok(s) => s,
                Err(e) => {
                    io.close();
                    return Err(e);
                }
            }
        };
        let mut process = process;
        process.set_terminal(Some(terminal));
        state.execs.insert(
            exec_id.to_string(),
            Proc {
                pid: 0,
                status: TaskStatus::Created,
                exit: None,
                terminal,
                io,
                pty: None,
                pending: Some(PendingExec {
                    process: Box::new(process),
                    stdio,
                    stdin,
                }),
            },
        );
        Ok(())
    }

    fn start_exec(self: &Arc<Self>, exec_id: &str) -> Result<u32, ShimError> {
        let (pending, io, terminal) = {
            let mut state = lock(&self.state);
            let p = state.proc_mut(exec_id)?;
            let pending = p.pending.take().ok_or_else(|| {
                ShimError::task(
                    TaskErrorKind::FailedPrecondition,
                    format!("exec process {exec_id} was already started"),
                )
            })?;
            (pending, p.io.clone(), p.terminal)
        };
        let pid_file = paths::exec_pid_file(&self.opts.state_dir, exec_id);
        let guard = self.reaper.runtime_lock();
        let result = if terminal {
            ConsoleSocket::bind(paths::console_socket(&self.opts.state_dir, Some(exec_id)))
                .and_then(|console| {
                    let pid = self.runtime.exec(ExecOptions {
                        id: &self.opts.id,
                        process: &pending.process,
                        stdio: Stdio::default(),
                        console_socket: Some(console.path()),
                        pid_file: &pid_file,
                    })?;
                    let master = console.receive_master()?;
                    attach_pty(&io, &master, pending.stdin)?;
                    Ok((pid, Some(master)))
                })
        } else {
            self.runtime
                .exec(ExecOptions {
                    id: &self.opts.id,
                    process: &pending.process,
                    stdio: pending.stdio,
                    console_socket: None,
                    pid_file: &pid_file,
                })
                .map(|pid| (pid, None))
        };
        let _ = std::fs::remove_file(&pid_file);
        let mut state = lock(&self.state);
        let (pid, pty) = match result {
            Ok(ok) => ok,
            Err(e) => {
                io.close();
                state.execs.remove(exec_id);
                return Err(e);
            }
        };
        if let Ok(p) = state.proc_mut(exec_id) {
            p.pid = pid;
            p.status = TaskStatus::Running;
            p.pty = pty;
        }
        self.claim(&mut state, exec_id, pid);
        drop(state);
        drop(guard);
        Ok(pid)
    }

    pub(crate) fn kill(&self, exec_id: &str, signal: u32, all: bool) -> Result<(), ShimError> {
        let (pid, status, _, _) = self.snapshot(exec_id)?;
        if status == TaskStatus::Stopped {
            return Err(ShimError::task(
                TaskErrorKind::NotFound,
                "process already finished",
            ));
        }
        if exec_id.is_empty() {
            let _guard = self.reaper.runtime_lock();
            return self.runtime.kill(&self.opts.id, signal as i32, all);
        }
        if status == TaskStatus::Created {
            return Err(ShimError::task(
                TaskErrorKind::FailedPrecondition,
                format!("exec process {exec_id} is not started"),
            ));
        }
        let sig = nix::sys::signal::Signal::try_from(signal as i32).map_err(|_| {
            ShimError::task(
                TaskErrorKind::InvalidArgument,
                format!("invalid signal {signal}"),
            )
        })?;
        // The runtime lock keeps the reaper from reaping (and the pid being reused) meanwhile.
        let _guard = self.reaper.runtime_lock();
        if self.snapshot(exec_id)?.1 == TaskStatus::Stopped {
            return Ok(());
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig)
            .map_err(|e| ShimError::sys(format!("signal exec process {exec_id}"), e))
    }

    /// Deletes an exec process record, or the task itself (the shim exits afterwards).
    pub(crate) fn delete(&self, exec_id: &str) -> Result<(u32, Option<ExitInfo>), ShimError> {
        let (pid, status, exit, _) = self.snapshot(exec_id)?;
        if matches!(status, TaskStatus::Running | TaskStatus::Paused) {
            return Err(ShimError::task(
                TaskErrorKind::FailedPrecondition,
                "the process is still running; kill it before deleting",
            ));
        }
        if !exec_id.is_empty() {
            let mut state = lock(&self.state);
            if let Some(p) = state.execs.remove(exec_id) {
                p.io.close();
            }
            return Ok((pid, exit));
        }
        {
            let _guard = self.reaper.runtime_lock();
            self.runtime
                .delete(&self.opts.id, status == TaskStatus::Created)?;
        }
        lock(&self.state).deleted = true;
        self.request_exit();
        Ok((pid, exit))
    }

    pub(crate) fn pause(&self) -> Result<(), ShimError> {
        self.require(TaskStatus::Running, "paused")?;
        let _guard = self.reaper.runtime_lock();
        self.runtime.pause(&self.opts.id)?;
        self.set_status(TaskStatus::Running, TaskStatus::Paused);
        Ok(())
    }

    pub(crate) fn resume(&self) -> Result<(), ShimError> {
        self.require(TaskStatus::Paused, "resumed")?;
        let _guard = self.reaper.runtime_lock();
        self.runtime.resume(&self.opts.id)?;
        self.set_status(TaskStatus::Paused, TaskStatus::Running);
        Ok(())
    }

    fn require(&self, status: TaskStatus, verb: &str) -> Result<(), ShimError> {
        let current = lock(&self.state).init.status;
        if current != status {
            return Err(ShimError::task(
                TaskErrorKind::FailedPrecondition,
                format!("the task is {current:?}, it cannot be {verb}").to_lowercase(),
            ));
        }
        Ok(())
    }

    fn set_status(&self, from: TaskStatus, to: TaskStatus) {
        let mut state = lock(&self.state);
        if state.init.status == from {
            state.init.status = to;
        }
    }

    pub(crate) fn pids(&self) -> Result<Vec<u32>, ShimError> {
        let _guard = self.reaper.runtime_lock();
        self.runtime.pids(&self.opts.id)
    }

    pub(crate) fn update(&self, resources: &LinuxResources) -> Result<(), ShimError> {
        let _guard = self.reaper.runtime_lock();
        self.runtime.update(&self.opts.id, resources)
    }

    pub(crate) fn resize(&self, exec_id: &str, width: u32, height: u32) -> Result<(), ShimError> {
        let state = lock(&self.state);
        let p = state.proc(exec_id)?;
        match &p.pty {
            Some(master) => console::resize(master, width, height),
            None => Err(ShimError::task(
                TaskErrorKind::FailedPrecondition,
                "the process has no terminal to resize",
            )),
        }
    }

    pub(crate) fn close_stdin(&self, exec_id: &str) -> Result<(), ShimError> {
        let state = lock(&self.state);
        state.proc(exec_id)?.io.close_stdin();
        Ok(())
    }

    /// Blocks until the process exited.
    pub(crate) fn wait(&self, exec_id: &str) -> Result<ExitInfo, ShimError> {
        let mut state = lock(&self.state);
        loop {
            if let Some(exit) = &state.proc(exec_id)?.exit {
                return Ok(exit.clone());
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Shutdown is refused while the task runs, unless `now`.
    pub(crate) fn shutdown(&self, now: bool) -> Result<(), ShimError> {
        let state = lock(&self.state);
        let idle = state.deleted || state.init.status == TaskStatus::Stopped;
        drop(state);
        if !(idle || now) {
            return Err(ShimError::task(
                TaskErrorKind::FailedPrecondition,
                "the task is still running; kill and delete it first, or shut down with now",
            ));
        }
        self.request_exit();
        Ok(())
    }

    /// Log lines dropped because the disk could not keep up.
    pub(crate) fn dropped_log_lines(&self) -> u64 {
        self.log.as_ref().map_or(0, |l| l.dropped())
    }
}
