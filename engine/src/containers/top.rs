//! `GET /containers/{id}/top`: runs the host's `ps` and keeps the container's processes,
//! as dockerd does (so `ps_args` behave exactly like `docker top c -o ...`).
//!
//! Blocking (it runs a child process): call it from `tokio::task::spawn_blocking`.

use std::process::Command;

use skiff_api::{ApiError, ErrorKind};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TopError {
    /// ps refused the arguments (its first stderr line).
    #[error("ps: {0}")]
    Ps(String),
    #[error("could not run ps: {0}; install procps on the host")]
    Spawn(#[source] std::io::Error),
    #[error("couldn't find PID field in ps output: include pid in the ps -o columns")]
    NoPidColumn,
    #[error("unexpected pid '{0}' in ps output")]
    BadPid(String),
    /// dockerd forbids renaming the PID column (`-o pid=PID`), which would hide it.
    #[error("specifying \"{0}={1}\" is not allowed")]
    RenamedPid(String, String),
}

impl TopError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            TopError::Ps(_) | TopError::NoPidColumn | TopError::RenamedPid(..) => {
                ErrorKind::InvalidArgument
            }
            TopError::Spawn(_) | TopError::BadPid(_) => ErrorKind::Internal,
        }
    }
}

impl From<TopError> for ApiError {
    fn from(e: TopError) -> Self {
        ApiError::new(e.kind(), e.to_string())
    }
}

pub const DEFAULT_PS_ARGS: &str = "-ef";

/// `(Titles, Processes)`: ps's header and the rows whose PID is in `pids`, each row split into
/// exactly `Titles.len()` columns (the last column keeps its spaces, e.g. the command line).
pub fn top(
    pids: &[u32],
    ps_args: Option<&str>,
) -> Result<(Vec<String>, Vec<Vec<String>>), TopError> {
    let ps_args = ps_args
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or(DEFAULT_PS_ARGS);
    check_ps_args(ps_args)?;
    let args: Vec<&str> = ps_args.split_ascii_whitespace().collect();
    let output = run_ps(&args, pids)?;
    parse_ps_output(&output, pids)
}

/// Rejects `<key>=PID...` renames other than of the pid column itself.
fn check_ps_args(ps_args: &str) -> Result<(), TopError> {
    for word in ps_args.split_ascii_whitespace().flat_map(|w| w.split(',')) {
        if let Some((k, v)) = word.split_once('=') {
            if v.starts_with("PID") && k != "pid" {
                return Err(TopError::RenamedPid(k.to_string(), v.to_string()));
            }
        }
    }
    Ok(())
}

fn run_ps(args: &[&str], pids: &[u32]) -> Result<String, TopError> {
    // Ask ps for just our pids first (cheap on busy hosts); some options (like f) do not mix
    // with -q, so retry without it as dockerd does.
    if !pids.is_empty() {
        let list = pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let out = Command::new("ps")
            .args(args)
            .arg("-q")
            .arg(list)
            .output()
            .map_err(TopError::Spawn)?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
    }
    let out = Command::new("ps")
        .args(args)
        .output()
        .map_err(TopError::Spawn)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let why = if first.is_empty() {
            format!("exited with {}", out.status)
        } else {
            first.trim().to_string()
        };
        return Err(TopError::Ps(why));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn parse_ps_output(
    output: &str,
    pids: &[u32],
) -> Result<(Vec<String>, Vec<Vec<String>>), TopError> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    let pid_index = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or(TopError::NoPidColumn)?;
    let mut rows = Vec::new();
    // thread lines (ps -L / m) show "-" as PID: keep them when their process was kept
    let mut keep_threads = false;
    for line in lines {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(pid) = fields.get(pid_index) else {
            continue;
        };
        if *pid == "-" {
            if keep_threads {
                rows.push(to_columns(&fields, titles.len()));
            }
            continue;
        }
        let pid: u32 = pid.parse().map_err(|_| TopError::BadPid(pid.to_string()))?;
        keep_threads = pids.contains(&pid);
        if keep_threads {
            rows.push(to_columns(&fields, titles.len()));
        }
    }
    Ok((titles, rows))
}

/// Exactly `n` columns: the overhanging fields are joined into the last one.
fn to_columns(fields: &[&str], n: usize) -> Vec<String> {
    let split = n.saturating_sub(1).min(fields.len());
    let mut row: Vec<String> = fields[..split].iter().map(|f| f.to_string()).collect();
    row.push(fields[split..].join(" "));
    row.resize(n.max(1), String::new());
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Stdio};

    struct Sleeper(Child);
    impl Sleeper {
        fn spawn(arg: &str) -> Self {
            let child = Command::new("sleep")
                .arg(arg)
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            Sleeper(child)
        }
        fn pid(&self) -> u32 {
            self.0.id()
        }
    }
    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn default_args_list_only_the_given_pids() {
        let a = Sleeper::spawn("1001");
        let b = Sleeper::spawn("1002");
        let _other = Sleeper::spawn("1003");
        let (titles, rows) = top(&[a.pid(), b.pid()], None).unwrap();
        assert_eq!(
            titles,
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        assert_eq!(rows.len(), 2, "{rows:?}");
        let cmds: Vec<&str> = rows.iter().map(|r| r[7].as_str()).collect();
        assert!(
            cmds.contains(&"sleep 1001") && cmds.contains(&"sleep 1002"),
            "{cmds:?}"
        );
        assert!(rows.iter().all(|r| r.len() == titles.len()));
        assert!(rows.iter().any(|r| r[1] == a.pid().to_string()));
    }

    #[test]
    fn custom_columns_keep_spaces_in_the_last_one() {
        let a = Sleeper::spawn("1004");
        let (titles, rows) = top(&[a.pid()], Some("-o pid,args")).unwrap();
        assert_eq!(titles, ["PID", "COMMAND"]);
        assert_eq!(
            rows,
            vec![vec![a.pid().to_string(), "sleep 1004".to_string()]]
        );
        // aux has PID in the second column; options mixing badly with -q still work
        let (titles, rows) = top(&[a.pid()], Some("aux")).unwrap();
        assert_eq!(titles[1], "PID");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].len(), titles.len());
    }

    #[test]
    fn errors_are_clear() {
        let a = Sleeper::spawn("1005");
        let e = top(&[a.pid()], Some("--no-such-option")).unwrap_err();
        assert!(e.to_string().starts_with("ps: "), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let e = top(&[a.pid()], Some("-o comm")).unwrap_err();
        assert!(matches!(e, TopError::NoPidColumn), "{e}");
        let e = top(&[a.pid()], Some("-o pid,ppid=PID")).unwrap_err();
        assert_eq!(e.to_string(), "specifying \"ppid=PID\" is not allowed");
        assert!(top(&[a.pid()], Some("-o pid=PID,args")).is_ok());
    }

    #[test]
    fn parser_handles_threads_and_short_rows() {
        let out = "  PID  LWP CMD\n 10    - a b\n   -   11 t\n 12    - c\n   -   13 u\n\n";
        let (titles, rows) = parse_ps_output(out, &[10]).unwrap();
        assert_eq!(titles, ["PID", "LWP", "CMD"]);
        assert_eq!(rows, vec![vec!["10", "-", "a b"], vec!["-", "11", "t"]]);
        assert_eq!(to_columns(&["1"], 3), ["1", "", ""]);
        assert!(matches!(
            parse_ps_output("", &[1]),
            Err(TopError::NoPidColumn)
        ));
        assert!(matches!(
            parse_ps_output("PID\nx\n", &[1]),
            Err(TopError::BadPid(_))
        ));
    }
}
