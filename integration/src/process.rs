//! Running commands with a deadline and stopping processes we started, by their PID.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{HarnessError, IoContext, Result};

/// Default deadline for one command; `SKIFF_TEST_TIMEOUT` (seconds) overrides it so a slow
/// machine does not need a code change.
pub fn default_timeout() -> Duration {
    let secs = std::env::var("SKIFF_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// Runs `cmd` to completion with `stdin` fed in and both outputs captured; kills it (by its
/// PID) and fails if it runs longer than `timeout`.
pub fn run(mut cmd: Command, stdin: Option<Vec<u8>>, timeout: Duration) -> Result<Output> {
    let what = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().ctx(|| format!("start {what}"))?;
    // Readers and the writer run on threads so a full pipe never stalls the child.
    let writer = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => Some(thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })),
        _ => None,
    };
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let status = match wait_timeout(&mut child, timeout)? {
        Some(status) => status,
        None => {
            signal(child.id(), Signal::SIGKILL);
            let _ = child.wait();
            return Err(HarnessError::Timeout {
                what,
                secs: timeout.as_secs(),
            });
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Like [`run`] but fails unless the command exits 0; returns its stdout.
pub fn run_ok(cmd: Command, stdin: Option<Vec<u8>>, timeout: Duration) -> Result<Vec<u8>> {
    let what = format!("{cmd:?}");
    let out = run(cmd, stdin, timeout)?;
    if !out.status.success() {
        return Err(HarnessError::Command {
            what,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(out.stdout)
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Waits for `child` up to `timeout`; `None` when it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child
            .try_wait()
            .ctx(|| format!("wait for pid {}", child.id()))?
        {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `sig` to one process we started; a process that is already gone is fine.
pub fn signal(pid: u32, sig: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(raw), sig);
    }
}

/// Stops a child: SIGTERM, then SIGKILL after `grace`; always reaps it.
pub fn terminate(child: &mut Child, grace: Duration) -> Result<ExitStatus> {
    if let Some(status) = child
        .try_wait()
        .ctx(|| format!("wait for pid {}", child.id()))?
    {
        return Ok(status);
    }
    signal(child.id(), Signal::SIGTERM);
    if let Some(status) = wait_timeout(child, grace)? {
        return Ok(status);
    }
    signal(child.id(), Signal::SIGKILL);
    child.wait().ctx(|| format!("wait for pid {}", child.id()))
}

/// True when `pid` exists and is not a zombie (a killed daemon's orphans linger as zombies
/// here, and `kill(pid, 0)` succeeds on those).
pub fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // the state follows the parenthesised command name, which may itself hold ") "
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// PIDs (other than ours) whose command line mentions `needle`: helpers a daemon started
/// under our unique temp root (shims, runtimes), which must not outlive the test.
pub fn pids_mentioning(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    c.split(|&b| b == 0)
                        .any(|arg| String::from_utf8_lossy(arg).contains(needle))
                })
                .unwrap_or(false)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_captures_output_and_feeds_stdin() {
        let out = run(
            Command::new("cat"),
            Some(b"hello".to_vec()),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"hello");
    }

    #[test]
    fn run_kills_commands_past_their_deadline() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let start = Instant::now();
        let err = run(cmd, None, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, HarnessError::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn run_ok_reports_stderr_of_failures() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo broken >&2; exit 3"]);
        let err = run_ok(cmd, None, Duration::from_secs(10)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("broken") && msg.contains('3'), "{msg}");
    }

    #[test]
    fn zombies_do_not_count_as_running() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        // not yet reaped: a zombie once it exits
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_running(pid) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert!(!is_running(pid));
        assert!(
            std::fs::metadata(format!("/proc/{pid}")).is_ok(),
            "should be a zombie"
        );
        child.wait().unwrap();
        assert!(is_running(std::process::id()));
    }
}
