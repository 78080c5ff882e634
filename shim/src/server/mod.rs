//! The shim process: `skiff shim --state-dir DIR`.
//!
//! Process model: the engine spawns `skiff shim`, which forks; the child calls setsid and the
//! parent exits, so the shim is never the daemon's child and survives the daemon. The shim
//! reports readiness (`ready <pid>` or `error <message>`) on the stdout it inherited, then
//! points stdout at /dev/null. It creates the task, serves the containerd Task ttrpc API on
//! DIR/shim.sock and exits after the task is deleted (or on Shutdown).

mod attach;
mod console;
mod io;
mod logger;
mod oom;
mod reaper;
mod service;
mod task;
mod trim;

use std::fs::OpenOptions;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use nix::unistd::ForkResult;

use crate::error::ShimError;
use crate::types::LaunchOptions;
use task::Shim;

pub(crate) const OPTIONS_FILE: &str = "shim.json";
pub(crate) const SOCKET_FILE: &str = "shim.sock";
pub(crate) const PID_FILE: &str = "shim.pid";
pub(crate) const ERROR_FILE: &str = "error.txt";
/// Time for the last reply (Delete, Shutdown) to reach the client before the shim exits.
const EXIT_GRACE: Duration = Duration::from_millis(100);

/// Entry point of `skiff shim --state-dir DIR`. Must run before any other thread exists
/// (it forks).
pub fn run_shim_main(state_dir: &Path) -> ExitCode {
    let opts = match read_options(state_dir) {
        Ok(o) => o,
        Err(e) => {
            report(&format!("error {e}"));
            return ExitCode::FAILURE;
        }
    };
    match detach() {
        Ok(true) => {}
        Ok(false) => return ExitCode::SUCCESS,
        Err(e) => {
            report(&format!("error {e}"));
            return ExitCode::FAILURE;
        }
    }
    match serve(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The launcher wraps the message in ShimError::Launch again.
            let message = match e {
                ShimError::Launch(m) => m,
                other => other.to_string(),
            };
            let _ = std::fs::write(state_dir.join(ERROR_FILE), &message);
            report(&format!("error {message}"));
            ExitCode::FAILURE
        }
    }
}

fn read_options(state_dir: &Path) -> Result<LaunchOptions, ShimError> {
    let path = state_dir.join(OPTIONS_FILE);
    let body =
        std::fs::read(&path).map_err(|e| ShimError::io(format!("read {}", path.display()), e))?;
    serde_json::from_slice(&body).map_err(|e| ShimError::Json {
        what: path.display().to_string(),
        source: e,
    })
}

/// One line to the launcher on the inherited stdout.
fn report(line: &str) {
    let mut text = line.replace('\n', " ");
    text.push('\n');
    let _ = nix::unistd::write(std::io::stdout().as_fd(), text.as_bytes());
}

/// Forks; the parent returns Ok(false) once the child has its own session.
fn detach() -> Result<bool, ShimError> {
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(|e| ShimError::sys("create a pipe", e))?;
    // SAFETY: run_shim_main is called before any thread is started, so the child is a
    // complete copy of a single-threaded process.
    match unsafe { nix::unistd::fork() }.map_err(|e| ShimError::sys("fork the shim", e))? {
        ForkResult::Parent { .. } => {
            drop(ready_w);
            let mut byte = [0u8; 1];
            // Returns when the child wrote (setsid done) or died (pipe closed).
            let _ = nix::unistd::read(ready_r.as_raw_fd(), &mut byte);
            Ok(false)
        }
        ForkResult::Child => {
            drop(ready_r);
            nix::unistd::setsid().map_err(|e| ShimError::sys("start a new session", e))?;
            let _ = nix::unistd::write(&ready_w, &[1]);
            Ok(true)
        }
    }
}

fn redirect_to_null(fd: i32) -> Result<(), ShimError> {
    let null: OwnedFd = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| ShimError::io("open /dev/null", e))?
        .into();
    nix::unistd::dup2(null.as_raw_fd(), fd).map_err(|e| ShimError::sys("redirect stdio", e))?;
    Ok(())
}

fn serve(opts: LaunchOptions) -> Result<(), ShimError> {
    trim::one_malloc_arena();
    redirect_to_null(0)?;
    redirect_to_null(2)?;
    let _ = std::env::set_current_dir("/");
    let state_dir = opts.state_dir.clone();
    std::fs::write(state_dir.join(PID_FILE), std::process::id().to_string())
        .map_err(|e| ShimError::io("write shim.pid", e))?;
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| ShimError::sys("become a child subreaper", e))?;
    let runtime = opts.runtime.build()?;
    let (exit_tx, exit_rx) = std::sync::mpsc::channel();
    let id = opts.id.clone();
    let shim = match Shim::create(opts, runtime, exit_tx) {
        Ok(s) => s,
        Err(e) => {
            // The runtime may have left a half-created container behind.
            if let Ok(rt) = read_options(&state_dir).and_then(|o| o.runtime.build()) {
                let _ = rt.delete(&id, true);
            }
            let _ = std::fs::remove_file(state_dir.join(PID_FILE));
            return Err(e);
        }
    };

    let reaping = shim.clone();
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(move || reaping.reaper.run(|pid, code| reaping.on_exit(pid, code)))
        .map_err(|e| ShimError::io("start the reaper thread", e))?;

    let socket = state_dir.join(SOCKET_FILE);
    let _ = std::fs::remove_file(&socket);
    let service =
        containerd_shim_protos::create_task(Arc::new(service::TaskService { shim: shim.clone() }));
    let mut server = ttrpc::Server::new()
        .bind(&format!("unix://{}", socket.display()))
        .map_err(|e| ShimError::Launch(format!("serve {}: {e}", socket.display())))?
        .register_service(service)
        .set_thread_count_min(1)
        .set_thread_count_default(2)
        .set_thread_count_max(8);
    server
        .start()
        .map_err(|e| ShimError::Launch(format!("serve {}: {e}", socket.display())))?;

    report(&format!("ready {}", shim.init_pid()));
    redirect_to_null(1)?;

    let _ = exit_rx.recv();
    std::thread::sleep(EXIT_GRACE);
    shim.close_all_io();
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(state_dir.join(PID_FILE));
    // Exit without joining the server's threads: a Wait call may block one forever.
    std::process::exit(0);
}
