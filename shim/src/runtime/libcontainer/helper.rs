//! Runs libcontainer's create and exec in a forked, single-threaded helper process.
//!
//! Why: libcontainer's builders act on the calling process. They clone the container
//! processes from it, change its working directory (console socket setup), mark it
//! non-dumpable and write its oom_score_adj. The shim is multi-threaded, so we
//! fork a helper that does the work and reports the new pid over a pipe. The container
//! processes are the helper's children; when the helper exits they are re-parented to
//! the nearest subreaper (the shim), which reaps them. We only ever wait for the helper.

use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{
    sigaction, sigprocmask, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal,
};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, ForkResult, Pid};
use serde::{Deserialize, Serialize};

use crate::error::ShimError;

/// One JSON line the helper writes before it exits.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Report {
    Ok { pid: u32 },
    Err { message: String },
}

/// How long to wait for the report between checks that the helper is still alive.
const LIVENESS_INTERVAL_MS: i32 = 500;

/// Forks a helper that runs `work` and returns the pid it reports.
///
/// `work` returns the pid of the process it started or an error message. Everything
/// `work` owns (stdio fds) is moved into the helper; the parent's copies are closed
/// before this function returns.
pub(super) fn run_forked<F>(op: &'static str, id: &str, work: F) -> Result<u32, ShimError>
where
    F: FnOnce() -> Result<u32, String>,
{
    let helper_error = |message: String| ShimError::RuntimeHelper {
        op,
        id: id.to_owned(),
        message,
    };
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| helper_error(format!("cannot create the report pipe: {e}")))?;

    // SAFETY: the child is single-threaded and only runs `work`, which does not rely on
    // locks held by other threads of this process: its tracing output is sent to a no-op
    // subscriber, and glibc resets the malloc locks in the child. The child never returns
    // into the caller; it leaves with `_exit`.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(read_end);
            helper_main(write_end, work)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(write_end);
            // The helper owns the stdio fds now; close our copies.
            drop(work);
            let report = read_report(&read_end, child);
            reap_helper(child);
            match report.map_err(helper_error)? {
                Report::Ok { pid } => Ok(pid),
                Report::Err { message } => Err(ShimError::Libcontainer {
                    op,
                    id: id.to_owned(),
                    message,
                }),
            }
        }
        Err(e) => Err(helper_error(format!("cannot fork the runtime helper: {e}"))),
    }
}

/// The helper's whole life: run `work`, report, `_exit`.
fn helper_main<F>(report_fd: OwnedFd, work: F) -> !
where
    F: FnOnce() -> Result<u32, String>,
{
    reset_signals();
    // Other threads of the parent may have held tracing's locks at fork time, and the
    // helper has nobody to show the output to: errors travel back in the report.
    let _silence = tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
    let report = match catch_unwind(AssertUnwindSafe(work)) {
        Ok(Ok(pid)) => Report::Ok { pid },
        Ok(Err(message)) => Report::Err { message },
        Err(_) => Report::Err {
            message: "the runtime helper panicked".to_owned(),
        },
    };
    let mut line = serde_json::to_vec(&report).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    let mut written = 0;
    while written < line.len() {
        match nix::unistd::write(&report_fd, &line[written..]) {
            Ok(n) => written += n,
            Err(Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    // SAFETY: _exit ends the helper without running the parent's atexit handlers or
    // destructors of state the helper merely copied.
    unsafe { libc::_exit(0) }
}

/// Container processes inherit the helper's signal state across exec: undo the shim's
/// (Rust ignores SIGPIPE; the shim's threads may block or handle signals).
fn reset_signals() {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in Signal::iterator() {
        if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing the default disposition cannot break memory safety.
        let _ = unsafe { sigaction(signal, &default) };
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Reads the helper's one-line report. The pipe never reaches EOF while a container
/// process created by the helper still holds its inherited copy (until it execs), so
/// we read up to the newline and check now and then that the helper is still alive.
fn read_report(read_end: &OwnedFd, helper: Pid) -> Result<Report, String> {
    let mut buf = Vec::new();
    loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            return serde_json::from_slice(&buf[..end])
                .map_err(|e| format!("unreadable report from the runtime helper: {e}"));
        }
        match wait_readable(read_end, LIVENESS_INTERVAL_MS) {
            Ok(false) => {
                if !helper_alive(helper) && !wait_readable(read_end, 0).unwrap_or(false) {
                    return Err("the runtime helper died without reporting".to_owned());
                }
            }
            Ok(true) => {
                let mut chunk = [0u8; 4096];
                match nix::unistd::read(read_end.as_raw_fd(), &mut chunk) {
                    Ok(0) => return Err("the runtime helper exited without reporting".to_owned()),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(format!("cannot read the runtime helper's report: {e}")),
                }
            }
            Err(e) => return Err(format!("cannot wait for the runtime helper: {e}")),
        }
    }
}

/// Polls one fd for input (or hang-up); EINTR counts as "not yet".
fn wait_readable(fd: &OwnedFd, timeout_ms: i32) -> Result<bool, Errno> {
    let mut pollfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd on the stack, and the count says one.
    let n = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
    match n {
        n if n > 0 => Ok(true),
        0 => Ok(false),
        _ => match Errno::last() {
            Errno::EINTR => Ok(false),
            e => Err(e),
        },
    }
}

/// True while the helper runs (not a zombie, not gone). Reads /proc because another
/// thread of the shim (its reaper) may reap the helper before we do.
fn helper_alive(pid: Pid) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw())) else {
        return false;
    };
    // The state follows the parenthesised command name, which may contain spaces.
    match stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
    {
        Some(state) => !matches!(state, "Z" | "X" | "x"),
        None => false,
    }
}

/// Waits for our own helper. ECHILD means the shim's reaper got there first: fine.
fn reap_helper(helper: Pid) {
    loop {
        match waitpid(helper, None) {
            Err(Errno::EINTR) => continue,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_pid_the_work_returns() {
        assert_eq!(run_forked("create", "t", || Ok(42)).unwrap(), 42);
    }

    #[test]
    fn reports_the_error_message() {
        let err = run_forked("exec", "t", || Err("no such binary".to_owned())).unwrap_err();
        assert!(
            matches!(err, ShimError::Libcontainer { op: "exec", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("no such binary"), "{err}");
    }

    #[test]
    fn a_panic_in_the_helper_is_an_error() {
        let err = run_forked("create", "t", || panic!("bad state")).unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
    }

    #[test]
    fn a_helper_that_exits_without_reporting_is_an_error() {
        let err = run_forked("create", "t", || {
            // SAFETY: ends the forked helper at once, as a crash would.
            unsafe { libc::_exit(3) }
        })
        .unwrap_err();
        assert!(matches!(err, ShimError::RuntimeHelper { .. }), "{err}");
    }

    #[test]
    fn the_helper_starts_with_default_signal_handling() {
        // Rust ignores SIGPIPE in every binary; containers must not inherit that.
        let ignored_in_parent = disposition(libc::SIGPIPE) == libc::SIG_IGN;
        let default_in_helper = run_forked("create", "t", || {
            Ok(u32::from(disposition(libc::SIGPIPE) == libc::SIG_DFL))
        })
        .unwrap();
        assert!(ignored_in_parent);
        assert_eq!(default_in_helper, 1);
    }

    fn disposition(signal: libc::c_int) -> libc::sighandler_t {
        // SAFETY: a zeroed sigaction is a valid out-parameter; a null new action only queries.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, std::ptr::null(), &mut old);
            old.sa_sigaction
        }
    }
}
