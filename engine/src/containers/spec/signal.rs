//! Signal names as Docker accepts them: "SIGTERM", "TERM", "15", "SIGRTMIN+3".

use super::error::SpecError;
use super::request::SpecRequest;

const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

const NAMES: &[(&str, i32)] = &[
    ("ABRT", libc::SIGABRT),
    ("ALRM", libc::SIGALRM),
    ("BUS", libc::SIGBUS),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("FPE", libc::SIGFPE),
    ("HUP", libc::SIGHUP),
    ("ILL", libc::SIGILL),
    ("INT", libc::SIGINT),
    ("IO", libc::SIGIO),
    ("IOT", libc::SIGIOT),
    ("KILL", libc::SIGKILL),
    ("PIPE", libc::SIGPIPE),
    ("POLL", libc::SIGPOLL),
    ("PROF", libc::SIGPROF),
    ("PWR", libc::SIGPWR),
    ("QUIT", libc::SIGQUIT),
    ("SEGV", libc::SIGSEGV),
    ("STKFLT", libc::SIGSTKFLT),
    ("STOP", libc::SIGSTOP),
    ("SYS", libc::SIGSYS),
    ("TERM", libc::SIGTERM),
    ("TRAP", libc::SIGTRAP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("VTALRM", libc::SIGVTALRM),
    ("WINCH", libc::SIGWINCH),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
];

fn invalid(raw: &str) -> SpecError {
    SpecError::invalid(format!(
        "invalid signal: {raw:?}: use a name like SIGTERM or a number from 1 to 64"
    ))
}

/// Parses a signal given by number, name, or name without the SIG prefix (any case).
pub fn parse_signal(raw: &str) -> Result<i32, SpecError> {
    let trimmed = raw.trim();
    if let Ok(n) = trimmed.parse::<i32>() {
        return if (1..=SIGRTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(invalid(raw))
        };
    }
    let upper = trimmed.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Ok(*n);
    }
    let realtime = |base: i32, rest: &str| -> Option<i32> {
        let n = if rest.is_empty() {
            base
        } else if let Some(off) = rest.strip_prefix('+') {
            base.checked_add(off.parse::<i32>().ok()?)?
        } else if let Some(off) = rest.strip_prefix('-') {
            base.checked_sub(off.parse::<i32>().ok()?)?
        } else {
            return None;
        };
        (SIGRTMIN..=SIGRTMAX).contains(&n).then_some(n)
    };
    let parsed = if let Some(rest) = name.strip_prefix("RTMIN") {
        realtime(SIGRTMIN, rest)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        realtime(SIGRTMAX, rest)
    } else {
        None
    };
    parsed.ok_or_else(|| invalid(raw))
}

/// The signal `docker stop` sends first: the request's, else the image's, else SIGTERM.
pub fn stop_signal(req: &SpecRequest) -> Result<i32, SpecError> {
    let raw = req.stop_signal.as_deref().filter(|s| !s.is_empty()).or(req
        .image
        .stop_signal
        .as_deref()
        .filter(|s| !s.is_empty()));
    match raw {
        Some(raw) => parse_signal(raw),
        None => Ok(libc::SIGTERM),
    }
}
