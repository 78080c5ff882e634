//! Daemon life cycle: one daemon per data root, stale sockets, SIGTERM, pid file and the
//! daemon.json config file.

mod common;

use std::os::unix::net::UnixListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use skiff_integration::{
    process, skiff_binary, test_images, Daemon, DaemonOptions, HarnessError, Registry,
};

#[test]
fn a_second_daemon_on_the_same_data_root_fails_fast() {
    let registry = Registry::start().unwrap();
    let first = Daemon::start(DaemonOptions::with_registry(&registry)).unwrap();
    let other = tempfile::Builder::new()
        .prefix("skiff-2nd-")
        .tempdir_in("/tmp")
        .unwrap();
    let socket = other.path().join("s.sock");
    let mut cmd = Command::new(skiff_binary());
    cmd.arg("daemon")
        .arg("--data-root")
        .arg(first.data_root())
        .arg("--exec-root")
        .arg(other.path().join("exec"))
        .arg("-H")
        .arg(format!("unix://{}", socket.display()));
    let started = Instant::now();
    let out = process::run(cmd, None, Duration::from_secs(30)).unwrap();
    assert!(!out.status.success(), "the second daemon started");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?} to give up",
        started.elapsed()
    );
    let err = format!("{}{}", stderr(&out), stdout(&out));
    let root = first.data_root().display().to_string();
    assert!(
        err.contains(&root),
        "message does not name the data root: {err}"
    );
    assert!(
        err.contains("another") || err.contains("in use") || err.contains("lock"),
        "unclear message: {err}"
    );
    assert!(!socket.exists(), "the loser left a socket behind");
    // the first one is undisturbed
    assert!(first.is_running());
    assert_eq!(first.http("GET", "/_ping", None).unwrap().status, 200);
    assert!(first.socket_path().exists());
}

#[test]
fn sigterm_stops_cleanly_and_a_stale_socket_is_replaced() {
    let registry = Registry::start().unwrap();
    let pid_dir = tempfile::tempdir().unwrap();
    let pidfile = pid_dir.path().join("skiff.pid");
    let mut opts = DaemonOptions::with_registry(&registry);
    opts.args = vec!["--pidfile".into(), pidfile.display().to_string()];
    let mut d = Daemon::start(opts).unwrap();
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(pid.trim(), d.pid().unwrap().to_string());

    let status = d.stop().unwrap();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(!d.socket_path().exists(), "socket left after SIGTERM");
    assert!(!pidfile.exists(), "pid file left after SIGTERM");

    // a socket file nobody listens on (as after a crash) is replaced
    drop(UnixListener::bind(d.socket_path()).unwrap());
    assert!(d.socket_path().exists());
    d.restart().unwrap();
    assert_eq!(d.http("GET", "/_ping", None).unwrap().status, 200);

    // after SIGKILL too
    d.kill().unwrap();
    assert!(d.socket_path().exists());
    d.restart().unwrap();
    assert_eq!(d.http("GET", "/_ping", None).unwrap().status, 200);
    let status = d.stop().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_check_clean_stopped(&d, "after restarts");
}

#[test]
fn config_file_keys_apply_and_unknown_keys_are_refused() {
    let imgs = test_images().unwrap();
    let registry = Registry::start().unwrap();
    imgs.push(&registry).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("from-config.pid");
    let good = dir.path().join("daemon.json");
    std::fs::write(
        &good,
        serde_json::json!({
            "insecure-registries": [registry.host_port()],
            "max-concurrent-downloads": 2,
            "pidfile": pidfile,
            "log-level": "debug",
            "live-restore": true,
        })
        .to_string(),
    )
    .unwrap();
    // no --insecure-registry flag: only the file allows plain HTTP to the registry
    let d = Daemon::start(DaemonOptions {
        args: vec!["--config-file".into(), good.display().to_string()],
        ..DaemonOptions::default()
    })
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        d.pid().unwrap().to_string()
    );
    let r = format!("{}/skiff-test/single:latest", registry.host_port());
    d.docker_ok(&["pull", &r]).unwrap();
    assert!(inspect(&d, &r).is_some());
    drop(d);

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"data-root": "/tmp/x", "no-such-key": true}"#).unwrap();
    let err = Daemon::start(DaemonOptions {
        args: vec!["--config-file".into(), bad.display().to_string()],
        start_timeout: Some(Duration::from_secs(15)),
        ..DaemonOptions::default()
    })
    .err()
    .expect("a config file with an unknown key was accepted");
    assert!(matches!(err, HarnessError::NotReady { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("exited"), "{msg}");
    assert!(
        msg.contains("no-such-key"),
        "message does not name the key: {msg}"
    );

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{ not json").unwrap();
    let err = Daemon::start(DaemonOptions {
        args: vec!["--config-file".into(), broken.display().to_string()],
        start_timeout: Some(Duration::from_secs(15)),
        ..DaemonOptions::default()
    })
    .err()
    .expect("a broken config file was accepted");
    assert!(err.to_string().contains("broken.json"), "{err}");
}

/// The crash test reads the store's own files to see a bad commit order before recovery
/// hides it: make sure that reading finds real damage.
#[test]
fn store_invariants_see_a_missing_layer() {
    let mut e = env();
    let imgs = test_images().unwrap();
    e.daemon.docker_ok(&["pull", &e.refs["multi"]]).unwrap();
    e.daemon.stop().unwrap();
    assert_eq!(store_invariants(&e.daemon), Vec::<String>::new());
    let chain = chain_ids(&diff_ids(imgs, "multi", "amd64"));
    let top = layer_dir(&e.daemon, &chain[3]);
    let moved = e.daemon.data_root().join("moved-away");
    std::fs::rename(&top, &moved).unwrap();
    let problems = store_invariants(&e.daemon);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains(&chain[3]), "{problems:?}");
    std::fs::rename(&moved, &top).unwrap();
    e.daemon.restart().unwrap();
    assert!(inspect(&e.daemon, &e.refs["multi"]).is_some());
}

/// SIGTERM while a pull is streaming: a clean exit within seconds, the client told the
/// truth (success means the image is stored), and the store is consistent after.
#[test]
fn sigterm_during_a_pull_exits_cleanly() {
    let imgs = test_images().unwrap();
    let registry = Registry::start().unwrap();
    imgs.push(&registry).unwrap();
    // about 400 KB/s: the 3 MB image is still streaming when SIGTERM lands
    let proxy =
        common::proxy::SlowProxy::start(registry.host_port(), 4 << 10, Duration::from_millis(10));
    let mut d = Daemon::start(DaemonOptions {
        insecure_registries: vec![proxy.addr().to_string(), registry.host_port().to_string()],
        ..DaemonOptions::default()
    })
    .unwrap();
    let image = format!("{}/skiff-test/multi:latest", proxy.addr());
    let client = d
        .docker_command(&["pull", &image])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.sent() < 256 << 10 {
        assert!(Instant::now() < deadline, "the pull never got going");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let status = d.stop().unwrap();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(!d.socket_path().exists());
    // finishing the pull before exiting and refusing it are both fine; a success must
    // mean the image is there after the restart
    let out = client.wait_with_output().unwrap();
    eprintln!(
        "pull during SIGTERM: {}\n{}{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(store_invariants(&d), Vec::<String>::new());
    d.restart().unwrap();
    assert_eq!(
        inspect(&d, &image).is_some(),
        out.status.success(),
        "the pull's exit status and the store disagree"
    );
    assert!(tmp_entries(&d).is_empty());
    // straight from the registry this time: the slow proxy would take seconds
    let direct = format!("{}/skiff-test/multi:latest", registry.host_port());
    d.docker_ok(&["pull", &direct]).unwrap();
    assert!(inspect(&d, &direct).is_some());
    d.stop().unwrap();
    assert_check_clean_stopped(&d, "after SIGTERM during a pull");
}

/// A live socket is never taken over, even by a daemon with its own data root.
#[test]
fn a_daemon_on_a_live_socket_fails_and_leaves_it_alone() {
    let registry = Registry::start().unwrap();
    let first = Daemon::start(DaemonOptions::with_registry(&registry)).unwrap();
    let other = tempfile::Builder::new()
        .prefix("skiff-3rd-")
        .tempdir_in("/tmp")
        .unwrap();
    let mut cmd = Command::new(skiff_binary());
    cmd.arg("daemon")
        .arg("--data-root")
        .arg(other.path().join("data"))
        .arg("--exec-root")
        .arg(other.path().join("exec"))
        .arg("-H")
        .arg(first.docker_host());
    let out = process::run(cmd, None, Duration::from_secs(30)).unwrap();
    assert!(!out.status.success(), "a second daemon took a live socket");
    let err = format!("{}{}", stderr(&out), stdout(&out));
    assert!(
        err.contains(&first.socket_path().display().to_string()),
        "message does not name the socket: {err}"
    );
    let info = first.http("GET", "/info", None).unwrap().json().unwrap();
    assert_eq!(
        info["DockerRootDir"],
        first.data_root().display().to_string(),
        "the socket now leads to another daemon"
    );
}

/// The crash and bad-input tests lean on `skiff check`: it must notice real damage.
#[test]
fn skiff_check_reports_a_damaged_store() {
    let mut e = env();
    let imgs = test_images().unwrap();
    e.daemon.docker_ok(&["pull", &e.refs["multi"]]).unwrap();
    e.daemon.stop().unwrap();
    assert_check_clean_stopped(&e.daemon, "fresh pull");
    let out = e.daemon.check_with(&["--deep"]).unwrap();
    assert!(
        out.status.success(),
        "--deep: {}{}",
        stdout(&out),
        stderr(&out)
    );

    let chain = chain_ids(&diff_ids(imgs, "multi", "amd64"));
    // a changed file: only --deep recomputes diff_ids
    let keep = layer_dir(&e.daemon, &chain[0]).join("diff/data/keep.txt");
    let mut bytes = std::fs::read(&keep).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&keep, &bytes).unwrap();
    let out = e.daemon.check_with(&["--deep"]).unwrap();
    assert!(!out.status.success(), "--deep missed a changed file");
    let report = format!("{}{}", stdout(&out), stderr(&out));
    let hex0 = chain[0].trim_start_matches("sha256:");
    assert!(
        report.contains(hex0)
            || report.contains(diff_ids(imgs, "multi", "amd64")[0].trim_start_matches("sha256:")),
        "report does not name the layer: {report}"
    );
    bytes[0] ^= 0x20;
    std::fs::write(&keep, &bytes).unwrap();

    // a layer an image needs is gone
    let top = layer_dir(&e.daemon, &chain[3]);
    let moved = e.daemon.data_root().join("moved-away");
    std::fs::rename(&top, &moved).unwrap();
    let out = e.daemon.check().unwrap();
    assert!(!out.status.success(), "check missed a missing layer");
    let report = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        report.contains(chain[3].trim_start_matches("sha256:")),
        "report does not name the missing layer: {report}"
    );
    std::fs::rename(&moved, &top).unwrap();
    assert_check_clean_stopped(&e.daemon, "after repair");
    e.daemon.restart().unwrap();
}
