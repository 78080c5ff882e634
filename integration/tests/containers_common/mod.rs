//! Shared by the containers tests: a daemon with the busybox test images loaded (no
//! registry needed) and tagged `single` and `multi`, which removes every container it ran
//! when dropped (killing a shim would not stop its container).

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use skiff_integration::process::{default_timeout, run};
use skiff_integration::{test_images, Daemon, DaemonOptions};

pub struct Ctx {
    pub daemon: Daemon,
    /// Holds the daemon.json of `SKIFF_TEST_RUNTIME` (read again at restarts).
    _config: tempfile::TempDir,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if !self.daemon.is_running() {
            let _ = self.daemon.restart();
        }
        if let Ok(ids) = self.daemon.docker_ok(&["ps", "-aq"]) {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.daemon.docker(&args);
            }
        }
    }
}

/// A fresh daemon (extra `args`) with `single` and `multi` loaded. With
/// `SKIFF_TEST_RUNTIME=runc` (or any runtime name) the daemon's default runtime is that one,
/// so the whole suite runs on it.
pub fn ctx_with(args: &[&str]) -> Ctx {
    let imgs = test_images().unwrap();
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let config_dir = tempfile::tempdir().unwrap();
    if let Ok(rt) = std::env::var("SKIFF_TEST_RUNTIME") {
        let cfg = config_dir.path().join("daemon.json");
        std::fs::write(
            &cfg,
            serde_json::json!({ "default-runtime": rt }).to_string(),
        )
        .unwrap();
        args.push("--config-file".into());
        args.push(cfg.display().to_string());
    }
    let daemon = Daemon::start(DaemonOptions {
        args,
        ..DaemonOptions::default()
    })
    .unwrap();

    for name in ["single", "multi"] {
        load(&daemon, &imgs.layout(name), name);
    }
    Ctx {
        daemon,
        _config: config_dir,
    }
}

pub fn ctx() -> Ctx {
    ctx_with(&[])
}

/// `docker load` of an OCI layout directory, tagged `tag`.
pub fn load(daemon: &Daemon, layout: &Path, tag: &str) {
    let mut tar = Command::new("tar");
    tar.arg("-C").arg(layout).args(["-cf", "-", "."]);
    let archive = run(tar, None, default_timeout()).unwrap();
    assert!(archive.status.success(), "tar of {}", layout.display());
    let out = daemon.docker_with_stdin(&["load"], archive.stdout).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "docker load: {}", stderr(&out));
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("Loaded image ID: "))
        .unwrap_or_else(|| panic!("no image ID in {text:?}"))
        .trim()
        .to_string();
    daemon.docker_ok(&["tag", &id, tag]).unwrap();
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `docker` and its output; panics with stderr unless it exits 0.
pub fn ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.docker(args).unwrap();
    assert!(
        out.status.success(),
        "docker {args:?} failed ({}): {}",
        out.status,
        stderr(&out)
    );
    stdout(&out)
}

/// Exit code of `docker args`.
pub fn code(d: &Daemon, args: &[&str]) -> i32 {
    d.docker(args).unwrap().status.code().unwrap_or(-1)
}

/// A command run under `script` (a pseudo terminal) against the daemon.
pub fn under_script(d: &Daemon, command: &str) -> Output {
    let mut cmd = Command::new("script");
    cmd.args(["-qec", command, "/dev/null"])
        .env("DOCKER_HOST", d.docker_host())
        .env("DOCKER_CLI_HINTS", "false");
    run(cmd, None, default_timeout()).unwrap()
}

/// Runs `command` under `script` (so the docker CLI has a terminal) and types `input` into
/// that terminal once the command had time to attach; keystrokes typed earlier would only
/// wait in the terminal's buffer, so the pause bounds nothing.
pub fn under_script_typing(d: &Daemon, command: &str, input: &str) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"(sleep 2; printf '%s' "$INPUT") | script -qec "$COMMAND" /dev/null"#)
        .env("INPUT", input)
        .env("COMMAND", command)
        .env("DOCKER_HOST", d.docker_host())
        .env("DOCKER_CLI_HINTS", "false");
    run(cmd, None, default_timeout()).unwrap()
}

pub fn inspect(d: &Daemon, name: &str) -> Value {
    let text = ok(d, &["inspect", name]);
    let v: Value = serde_json::from_str(&text).unwrap();
    v[0].clone()
}

/// Polls `f` until it is true or `secs` pass (no timing assertion: just a bound).
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// Nothing of any container left: no record directories, no mounts, no shim state.
pub fn assert_no_container_state(d: &Daemon) {
    let records = d.data_root().join("containers");
    let left: Vec<_> = std::fs::read_dir(&records)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "container directories left: {left:?}");
    let mounts = skiff_integration::mounts::mounts_under(&d.data_root());
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    let states: Vec<_> = std::fs::read_dir(d.exec_root().join("c"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(states.is_empty(), "shim state left: {states:?}");
}
