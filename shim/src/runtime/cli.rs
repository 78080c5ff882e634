//! runc/crun driven by their command line, as containerd's go-runc does.
//!
//! create and exec hand the container's stdio to the runtime as its own 0/1/2 (the runtime
//! passes them through), so their errors are read from a JSON log file (`--log`) instead of
//! stderr; every other command's stderr is captured.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio as ProcStdio};

use crate::error::ShimError;
use crate::runtime::{read_pid_file, CreateOptions, ExecOptions, Runtime, Stdio};

#[derive(Debug)]
pub struct CliRuntime {
    path: PathBuf,
    args: Vec<String>,
    root: PathBuf,
}

impl CliRuntime {
    pub fn new(path: PathBuf, args: Vec<String>, root: PathBuf) -> Self {
        CliRuntime { path, args, root }
    }

    fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    /// `path --root root args... [--log L --log-format json]`, ready for the subcommand.
    fn command(&self, log: Option<&Path>) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.arg("--root").arg(&self.root).args(&self.args);
        if let Some(log) = log {
            cmd.arg("--log").arg(log).arg("--log-format").arg("json");
        }
        cmd
    }

    fn failed(&self, op: &'static str, message: String) -> ShimError {
        let runtime = self.name();
        // runc already says "runc create failed: ..."; do not say it twice.
        let prefix = format!("{runtime} {op} failed: ");
        let message = message
            .strip_prefix(&prefix)
            .map(str::to_string)
            .unwrap_or(message);
        ShimError::Runtime {
            runtime,
            op,
            message,
        }
    }

    /// Runs a command whose stdout/stderr we own; returns stdout, or an error with stderr.
    fn run(
        &self,
        op: &'static str,
        args: &[OsString],
        input: Option<&[u8]>,
    ) -> Result<Vec<u8>, ShimError> {
        let mut cmd = self.command(None);
        cmd.args(args)
            .stdin(if input.is_some() {
                ProcStdio::piped()
            } else {
                ProcStdio::null()
            })
            .stdout(ProcStdio::piped())
            .stderr(ProcStdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| self.failed(op, format!("cannot run {}: {e}", self.path.display())))?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            // A runtime that exits early closes the pipe; its stderr then says why.
            let _ = stdin.write_all(input);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| self.failed(op, format!("waiting for the runtime: {e}")))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
            Err(self.failed(op, clean_message(&text, out.status)))
        }
    }

    /// Runs create/exec: stdio passed through, errors read from the JSON log.
    fn run_passthrough(
        &self,
        op: &'static str,
        log: &Path,
        args: &[OsString],
        stdio: Stdio,
    ) -> Result<(), ShimError> {
        let _ = std::fs::remove_file(log);
        let mut cmd = self.command(Some(log));
        cmd.args(args)
            .stdin(stdio.stdin.map_or_else(ProcStdio::null, ProcStdio::from))
            .stdout(stdio.stdout.map_or_else(ProcStdio::null, ProcStdio::from))
            .stderr(stdio.stderr.map_or_else(ProcStdio::null, ProcStdio::from));
        let status = cmd
            .status()
            .map_err(|e| self.failed(op, format!("cannot run {}: {e}", self.path.display())))?;
        // Drop the command so our copies of the container's stdio are closed now.
        drop(cmd);
        let result = if status.success() {
            Ok(())
        } else {
            Err(self.failed(op, clean_message(&read_log_errors(log), status)))
        };
        let _ = std::fs::remove_file(log);
        result
    }
}

/// The error lines of a runtime's JSON log (`{"level":"error","msg":...}`).
fn read_log_errors(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(log) {
        let _ = f.read_to_string(&mut text);
    }
    let mut errors = Vec::new();
    for line in text.lines() {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(line) {
            let level = value.get("level").and_then(|l| l.as_str()).unwrap_or("");
            if level == "error" || level == "fatal" {
                if let Some(msg) = value.get("msg").and_then(|m| m.as_str()) {
                    errors.push(msg.to_string());
                }
            }
        }
    }
    errors.join("; ")
}

fn clean_message(text: &str, status: std::process::ExitStatus) -> String {
    if text.is_empty() {
        format!("exited with {status} and no message")
    } else {
        text.to_string()
    }
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

impl Runtime for CliRuntime {
    fn create(&self, opts: CreateOptions<'_>) -> Result<u32, ShimError> {
        let mut args: Vec<OsString> = vec!["create".into(), "--bundle".into()];
        args.push(opts.bundle.into());
        args.push("--pid-file".into());
        args.push(opts.pid_file.into());
        if let Some(socket) = opts.console_socket {
            args.push("--console-socket".into());
            args.push(socket.into());
        }
        args.push(opts.id.into());
        let log = opts.pid_file.with_extension("runtime-log.json");
        self.run_passthrough("create", &log, &args, opts.stdio)?;
        read_pid_file(opts.pid_file)
    }

    fn start(&self, id: &str) -> Result<(), ShimError> {
        self.run("start", &os(&["start", id]), None).map(drop)
    }

    fn exec(&self, opts: ExecOptions<'_>) -> Result<u32, ShimError> {
        let process_json = opts.pid_file.with_extension("process.json");
        let body = serde_json::to_vec(opts.process).map_err(|e| ShimError::Json {
            what: "exec process".into(),
            source: e,
        })?;
        std::fs::write(&process_json, body)
            .map_err(|e| ShimError::io(format!("write {}", process_json.display()), e))?;
        let mut args: Vec<OsString> = os(&["exec", "--detach", "--process"]);
        args.push(process_json.clone().into());
        args.push("--pid-file".into());
        args.push(opts.pid_file.into());
        if let Some(socket) = opts.console_socket {
            args.push("--console-socket".into());
            args.push(socket.into());
        }
        args.push(opts.id.into());
        let log = opts.pid_file.with_extension("runtime-log.json");
        let result = self.run_passthrough("exec", &log, &args, opts.stdio);
        let _ = std::fs::remove_file(&process_json);
        result?;
        read_pid_file(opts.pid_file)
    }

    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), ShimError> {
        let sig = signal.to_string();
        let args = if all {
            os(&["kill", "--all", id, &sig])
        } else {
            os(&["kill", id, &sig])
        };
        self.run("kill", &args, None).map(drop)
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), ShimError> {
        let args = if force {
            os(&["delete", "--force", id])
        } else {
            os(&["delete", id])
        };
        self.run("delete", &args, None).map(drop)
    }

    fn pause(&self, id: &str) -> Result<(), ShimError> {
        self.run("pause", &os(&["pause", id]), None).map(drop)
    }

    fn resume(&self, id: &str) -> Result<(), ShimError> {
        self.run("resume", &os(&["resume", id]), None).map(drop)
    }

    fn pids(&self, id: &str) -> Result<Vec<u32>, ShimError> {
        let out = self.run("ps", &os(&["ps", "--format", "json", id]), None)?;
        // runc prints `null` when there are no processes.
        let pids: Option<Vec<u32>> = serde_json::from_slice(&out).map_err(|e| ShimError::Json {
            what: format!("{} ps output", self.name()),
            source: e,
        })?;
        Ok(pids.unwrap_or_default())
    }

    fn update(
        &self,
        id: &str,
        resources: &oci_spec::runtime::LinuxResources,
    ) -> Result<(), ShimError> {
        let body = serde_json::to_vec(resources).map_err(|e| ShimError::Json {
            what: "resources".into(),
            source: e,
        })?;
        self.run(
            "update",
            &os(&["update", "--resources", "-", id]),
            Some(&body),
        )
        .map(drop)
    }
}
