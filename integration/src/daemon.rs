//! The real `skiff daemon` on a temp socket, data root and exec root.

use std::fs;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::error::{HarnessError, IoContext, Result};
use crate::http::{self, Response};
use crate::mounts;
use crate::process::{self, default_timeout};
use crate::registry::Registry;

/// Unix socket paths must fit in sun_path (108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// The skiff binary; default: env `SKIFF_BIN`, else `<target>/debug/skiff`.
    pub binary: Option<PathBuf>,
    /// `--insecure-registry` values (`127.0.0.1:PORT`).
    pub insecure_registries: Vec<String>,
    /// Extra daemon arguments, appended last.
    pub args: Vec<String>,
    /// Extra environment for the daemon.
    pub env: Vec<(String, String)>,
    /// How long to wait for `/_ping` (default 30 s).
    pub start_timeout: Option<Duration>,
}

impl DaemonOptions {
    /// Options for a daemon that pulls from `registry` over plain HTTP.
    pub fn with_registry(registry: &Registry) -> DaemonOptions {
        DaemonOptions {
            insecure_registries: vec![registry.host_port().to_string()],
            ..DaemonOptions::default()
        }
    }
}

pub struct Daemon {
    opts: DaemonOptions,
    binary: PathBuf,
    /// Holds data/, exec/, s.sock, daemon.log and docker-config/; short, for the socket.
    root: tempfile::TempDir,
    child: Option<Child>,
    starts: u32,
}

impl Daemon {
    /// Starts a daemon on fresh temp roots and waits until `/_ping` answers.
    pub fn start(opts: DaemonOptions) -> Result<Daemon> {
        let binary = match &opts.binary {
            Some(b) => b.clone(),
            None => crate::skiff_binary(),
        };
        if !binary.is_file() {
            return Err(HarnessError::BinaryMissing(binary));
        }
        // /tmp explicitly: TMPDIR may be long, and the socket lives in here
        let root = tempfile::Builder::new()
            .prefix("skiff-")
            .tempdir_in("/tmp")
            .ctx(|| "create the daemon's temp root".into())?;
        let mut d = Daemon {
            opts,
            binary,
            root,
            child: None,
            starts: 0,
        };
        if d.socket_path().as_os_str().len() > MAX_SOCKET_PATH {
            return Err(HarnessError::Invalid(format!(
                "socket path {} is longer than {MAX_SOCKET_PATH} bytes",
                d.socket_path().display()
            )));
        }
        for dir in [d.data_root(), d.exec_root(), d.docker_config_dir()] {
            fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
        }
        let cfg = d.docker_config_dir().join("config.json");
        fs::write(&cfg, "{}\n").ctx(|| format!("write {}", cfg.display()))?;
        d.spawn()?;
        Ok(d)
    }

    /// Starts the daemon again on the same roots, after [`kill`](Self::kill) or
    /// [`stop`](Self::stop) (crash and restart tests).
    pub fn restart(&mut self) -> Result<()> {
        if self.is_running() {
            return Err(HarnessError::Invalid(
                "the daemon is still running; kill() or stop() it before restart()".into(),
            ));
        }
        self.spawn()
    }

    fn spawn(&mut self) -> Result<()> {
        self.starts += 1;
        let log_path = self.log_path();
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .ctx(|| format!("open {}", log_path.display()))?;
        use std::io::Write as _;
        let _ = writeln!(log, "===== harness: start #{} =====", self.starts);
        let log2 = log.try_clone().ctx(|| "dup the log file".into())?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("daemon")
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("-H")
            .arg(format!("unix://{}", self.socket_path().display()));
        for r in &self.opts.insecure_registries {
            cmd.arg("--insecure-registry").arg(r);
        }
        cmd.arg("--log-level")
            .arg("debug")
            .args(&self.opts.args)
            .envs(self.opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // own process group: a terminal's ^C reaches the test, not the daemon
            .process_group(0);
        let child = cmd
            .spawn()
            .ctx(|| format!("start {}", self.binary.display()))?;
        self.child = Some(child);
        let timeout = self.opts.start_timeout.unwrap_or(Duration::from_secs(30));
        self.wait_ready(timeout)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().ctx(|| "wait for the daemon".into())? {
                    self.child = None;
                    return Err(self.not_ready(format!("it exited with {status}")));
                }
            }
            if let Ok(r) = self.http("GET", "/_ping", None) {
                if r.status == 200 {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(self.not_ready(format!("/_ping did not answer 200 within {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn not_ready(&self, why: String) -> HarnessError {
        HarnessError::NotReady {
            what: format!("skiff daemon ({})", self.binary.display()),
            why,
            log: self.log_path().display().to_string(),
            tail: crate::tail(&self.log(), 40),
        }
    }

    pub fn data_root(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn exec_root(&self) -> PathBuf {
        self.root.path().join("exec")
    }

    pub fn socket_path(&self) -> PathBuf {
        self.root.path().join("s.sock")
    }

    /// `unix:///tmp/skiff-…/s.sock`, for `DOCKER_HOST`.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket_path().display())
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.path().join("daemon.log")
    }

    /// Everything the daemon logged so far, over all its starts.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn docker_config_dir(&self) -> PathBuf {
        self.root.path().join("docker-config")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.pid().is_some_and(process::is_running)
    }

    /// Peak resident memory of the daemon process so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// SIGKILL, as a crash would; reaps the process.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            process::signal(child.id(), Signal::SIGKILL);
            child.wait().ctx(|| "reap the killed daemon".into())?;
        }
        Ok(())
    }

    /// SIGTERM and wait for a clean exit; fails if it takes longer than 30 s (then kills).
    pub fn stop(&mut self) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return Err(HarnessError::Invalid("the daemon is not running".into()));
        };
        process::signal(child.id(), Signal::SIGTERM);
        match process::wait_timeout(&mut child, Duration::from_secs(30))? {
            Some(status) => Ok(status),
            None => {
                process::signal(child.id(), Signal::SIGKILL);
                let _ = child.wait();
                Err(HarnessError::Timeout {
                    what: "skiff daemon shutdown after SIGTERM".into(),
                    secs: 30,
                })
            }
        }
    }

    /// One raw HTTP/1.1 request on the daemon's socket.
    pub fn http(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Response> {
        self.http_with_headers(method, path, &[], body)
    }

    pub fn http_with_headers(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response> {
        let stream = UnixStream::connect(self.socket_path())
            .ctx(|| format!("connect to {}", self.socket_path().display()))?;
        stream
            .set_read_timeout(Some(default_timeout()))
            .ctx(|| "set a read timeout".into())?;
        http::request(stream, method, "localhost", path, headers, body)
    }

    /// A `docker` CLI command aimed at this daemon, with an empty private config.
    pub fn docker_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.args(args)
            .env("DOCKER_HOST", self.docker_host())
            .env("DOCKER_CONFIG", self.docker_config_dir())
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("DOCKER_API_VERSION");
        cmd
    }

    /// Runs the real docker CLI against this daemon; any exit status is returned.
    pub fn docker(&self, args: &[&str]) -> Result<Output> {
        process::run(self.docker_command(args), None, default_timeout())
    }

    /// Like [`docker`](Self::docker) with bytes on stdin (`docker load`).
    pub fn docker_with_stdin(&self, args: &[&str], stdin: Vec<u8>) -> Result<Output> {
        process::run(self.docker_command(args), Some(stdin), default_timeout())
    }

    /// Runs docker and fails (with its stderr) unless it exits 0; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> Result<String> {
        let out = process::run_ok(self.docker_command(args), None, default_timeout())?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// `skiff check --data-root D` (plus `extra` args). It takes the data-root lock, so
    /// stop or kill the daemon first.
    pub fn check(&self) -> Result<Output> {
        self.check_with(&[])
    }

    pub fn check_with(&self, extra: &[&str]) -> Result<Output> {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("check")
            .arg("--data-root")
            .arg(self.data_root())
            .args(extra);
        process::run(cmd, None, default_timeout())
    }

    /// Keeps the log where it survives the temp root and prints its tail: called on drop
    /// while a test is failing.
    fn report_failure(&self) {
        let logs = crate::target_dir().join("skiff-test-logs");
        let kept = logs.join(format!(
            "daemon-{}-{}.log",
            std::process::id(),
            self.root
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let saved = fs::create_dir_all(&logs).and_then(|_| fs::copy(self.log_path(), &kept));
        let where_ = match saved {
            Ok(_) => kept.display().to_string(),
            Err(e) => format!("(not kept: {e})"),
        };
        eprintln!(
            "--- skiff daemon log {where_}, last lines ---\n{}",
            crate::tail(&self.log(), 60)
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.report_failure();
        }
        if let Some(mut child) = self.child.take() {
            let _ = process::terminate(&mut child, Duration::from_secs(10));
        }
        // helpers started under our unique root (shims, runtimes) go too, by PID
        // (with the trailing "/", so /tmp/skiff-ab never matches /tmp/skiff-abc)
        let root = format!("{}/", self.root.path().display());
        for pid in process::pids_mentioning(&root) {
            process::signal(pid, Signal::SIGKILL);
        }
        for (m, e) in mounts::unmount_under(self.root.path()) {
            eprintln!("harness: cannot unmount {}: {e}", m.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_says_how_to_get_one() {
        let err = Daemon::start(DaemonOptions {
            binary: Some("/nonexistent/skiff".into()),
            ..DaemonOptions::default()
        })
        .err()
        .unwrap();
        assert!(matches!(err, HarnessError::BinaryMissing(_)), "{err}");
        assert!(err.to_string().contains("SKIFF_BIN"), "{err}");
    }

    #[test]
    fn a_daemon_that_exits_at_once_is_reported_with_its_log() {
        // `false` ignores its arguments and exits 1: the harness must notice, not hang
        let err = Daemon::start(DaemonOptions {
            binary: Some("/bin/false".into()),
            start_timeout: Some(Duration::from_secs(20)),
            ..DaemonOptions::default()
        })
        .err()
        .unwrap();
        let msg = err.to_string();
        assert!(msg.contains("exited") && msg.contains("start #1"), "{msg}");
    }
}
