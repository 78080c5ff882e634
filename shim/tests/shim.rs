//! The shim against real runc with a busybox bundle (needs root, runc and busybox-static).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitBuilder, PosixRlimitType, Process, Spec};
use skiff_shim::{
    launch, process_alive, read_exit_file, LaunchOptions, LogConfig, RuntimeConfig, ShimClient,
    ShimError, TaskStatus,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const SHIM: &str = env!("CARGO_BIN_EXE_skiff-shim");
const APPLETS: &[&str] = &["sh", "echo", "cat", "sleep", "stty", "seq", "true", "head"];

/// runc, or the embedded libcontainer with `SKIFF_SHIM_TEST_RUNTIME=libcontainer` (once
/// helper B's runtime is merged the whole suite runs against both).
fn test_runtime(root: PathBuf) -> RuntimeConfig {
    if std::env::var("SKIFF_SHIM_TEST_RUNTIME").as_deref() == Ok("libcontainer") {
        RuntimeConfig::Libcontainer { root }
    } else {
        RuntimeConfig::Cli {
            path: "runc".into(),
            args: vec![],
            root,
        }
    }
}

/// One container: bundle, runc root and shim state in a temp dir; cleaned up on drop.
struct Fixture {
    dir: tempfile::TempDir,
    id: String,
}

impl Fixture {
    fn new(name: &str, args: &[&str], terminal: bool, pid_ns: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("bundle/rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        for d in ["proc", "dev", "sys", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        let mut spec = Spec::default();
        let mut process = Process::default();
        process.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        process.set_terminal(Some(terminal));
        process.set_env(Some(vec!["PATH=/bin".into(), "TERM=xterm".into()]));
        let nofile = PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(1024u64)
            .soft(1024u64)
            .build()
            .unwrap();
        process.set_rlimits(Some(vec![nofile]));
        spec.set_process(Some(process));
        if !pid_ns {
            let linux = spec.linux_mut().as_mut().unwrap();
            let namespaces: Vec<_> = linux
                .namespaces()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|n| n.typ() != LinuxNamespaceType::Pid)
                .collect();
            linux.set_namespaces(Some(namespaces));
        }
        spec.save(dir.path().join("bundle/config.json")).unwrap();
        Fixture {
            dir,
            id: format!("skiff-shim-test-{name}-{}", std::process::id()),
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("logs/container.log")
    }

    fn options(&self, terminal: bool, open_stdin: bool, log: Option<(u64, u32)>) -> LaunchOptions {
        LaunchOptions {
            id: self.id.clone(),
            bundle: self.dir.path().join("bundle"),
            state_dir: self.state_dir(),
            runtime: test_runtime(self.dir.path().join("runc-root")),
            terminal,
            open_stdin,
            stdin_once: open_stdin,
            log: LogConfig::JsonFile {
                path: self.log_path(),
                max_size: log.map(|l| l.0),
                max_file: log.map_or(1, |l| l.1),
            },
        }
    }

    fn log_entries(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let root = self.dir.path().join("runc-root");
        let _ = std::process::Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["delete", "--force", &self.id])
            .output();
        if let Ok(pid) = std::fs::read_to_string(self.state_dir().join("shim.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                // SAFETY: plain kill(2) of the shim this fixture started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// Polls (bounded) until the process is gone; the result is asserted by the caller.
async fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

async fn attach(client: &ShimClient, exec_id: Option<&str>, stdin: bool) -> UnixStream {
    let mut s = UnixStream::connect(client.attach_socket(exec_id))
        .await
        .unwrap();
    let header = format!("{{\"stdin\":{stdin},\"stdout\":true,\"stderr\":true}}\n");
    s.write_all(header.as_bytes()).await.unwrap();
    s
}

/// Reads Docker multiplexed frames until EOF: (stream, bytes) with adjacent frames of a stream
/// joined.
async fn read_frames(s: &mut UnixStream) -> (Vec<u8>, Vec<u8>) {
    let mut all = Vec::new();
    s.read_to_end(&mut all).await.unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut rest = &all[..];
    while rest.len() >= 8 {
        let len = u32::from_be_bytes(rest[4..8].try_into().unwrap()) as usize;
        let body = &rest[8..8 + len];
        match rest[0] {
            1 => out.extend_from_slice(body),
            2 => err.extend_from_slice(body),
            other => panic!("bad stream byte {other}"),
        }
        rest = &rest[8 + len..];
    }
    assert!(rest.is_empty(), "trailing partial frame");
    (out, err)
}

fn shim_pid(state_dir: &Path) -> u32 {
    std::fs::read_to_string(state_dir.join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn output_reaches_log_and_attach_and_exit_code_is_recorded() {
    let fx = Fixture::new(
        "echo",
        &["sh", "-c", "echo hi; echo oops >&2; exit 3"],
        false,
        true,
    );
    let client = launch(Path::new(SHIM), &fx.options(false, false, None))
        .await
        .unwrap();
    let state = client.state().await.unwrap();
    assert_eq!(state.status, TaskStatus::Created);
    assert!(state.pid > 0);
    let mut conn = attach(&client, None, false).await;
    let pid = client.start().await.unwrap();
    assert_eq!(pid, state.pid);
    let (out, err) = read_frames(&mut conn).await;
    assert_eq!(out, b"hi\n");
    assert_eq!(err, b"oops\n");

    let exit = client.wait().await.unwrap();
    assert_eq!(exit.code, 3);
    assert_eq!(read_exit_file(&fx.state_dir()).unwrap().code, 3);
    let state = client.state().await.unwrap();
    assert_eq!(state.status, TaskStatus::Stopped);
    assert_eq!(state.exit.unwrap().code, 3);

    let entries = fx.log_entries();
    assert_eq!(entries.len(), 2, "{entries:?}");
    let stdout = entries.iter().find(|e| e["stream"] == "stdout").unwrap();
    assert_eq!(stdout["log"], "hi\n");
    let stderr = entries.iter().find(|e| e["stream"] == "stderr").unwrap();
    assert_eq!(stderr["log"], "oops\n");
    let time = stdout["time"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");

    let shim = client.shim_pid().unwrap();
    let deleted = client.delete().await.unwrap();
    assert_eq!(deleted.code, 3);
    assert!(gone(shim).await, "the shim must exit after delete");
}

#[tokio::test]
async fn sigterm_is_reported_as_143() {
    // Without a pid namespace sleep is not an init, so SIGTERM's default action applies.
    let fx = Fixture::new("term", &["sleep", "100"], false, false);
    let client = launch(Path::new(SHIM), &fx.options(false, false, None))
        .await
        .unwrap();
    client.start().await.unwrap();
    assert_eq!(client.state().await.unwrap().status, TaskStatus::Running);
    assert!(!client.pids().await.unwrap().is_empty());
    client.kill(15, false).await.unwrap();
    let exit = client.wait().await.unwrap();
    assert_eq!(exit.code, 143);
    assert!(!exit.oom_killed);
    let err = client.kill(15, false).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    client.delete().await.unwrap();
}

#[tokio::test]
async fn exec_runs_with_its_own_output_and_exit_code() {
    let fx = Fixture::new("exec", &["sleep", "100"], false, true);
    let client = launch(Path::new(SHIM), &fx.options(false, false, None))
        .await
        .unwrap();
    client.start().await.unwrap();

    let mut process = Process::default();
    process.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "echo from-exec; exit 7".into(),
    ]));
    process.set_env(Some(vec!["PATH=/bin".into()]));
    process.set_rlimits(None);
    client.exec("e1", &process, false).await.unwrap();
    let mut conn = attach(&client, Some("e1"), false).await;
    let pid = client.start_exec("e1").await.unwrap();
    assert!(pid > 0);
    let (out, _) = read_frames(&mut conn).await;
    assert_eq!(out, b"from-exec\n");
    assert_eq!(client.wait_exec("e1").await.unwrap().code, 7);
    // Exec output is not logged, and the init keeps running.
    assert!(fx.log_entries().is_empty());
    assert_eq!(client.state().await.unwrap().status, TaskStatus::Running);

    client.kill(9, false).await.unwrap();
    assert_eq!(client.wait().await.unwrap().code, 137);
    client.delete().await.unwrap();
}

#[tokio::test]
async fn tty_output_is_raw_and_resize_reaches_the_terminal() {
    let fx = Fixture::new("tty", &["sh", "-c", "read line; stty size"], true, true);
    let client = launch(Path::new(SHIM), &fx.options(true, true, None))
        .await
        .unwrap();
    let mut conn = attach(&client, None, true).await;
    client.start().await.unwrap();
    client.resize(None, 100, 40).await.unwrap();
    conn.write_all(b"go\n").await.unwrap();
    let mut out = Vec::new();
    conn.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("40 100"), "{text:?}");
    assert_eq!(client.wait().await.unwrap().code, 0);
    let logged: String = fx
        .log_entries()
        .iter()
        .map(|e| e["log"].as_str().unwrap().to_string())
        .collect();
    assert!(logged.contains("40 100"), "{logged:?}");
    client.delete().await.unwrap();
}

#[tokio::test]
async fn stdin_from_attach_reaches_the_process_and_eof_closes_it() {
    let fx = Fixture::new("stdin", &["cat"], false, true);
    let client = launch(Path::new(SHIM), &fx.options(false, true, None))
        .await
        .unwrap();
    let mut conn = attach(&client, None, true).await;
    client.start().await.unwrap();
    conn.write_all(b"hello through stdin\n").await.unwrap();
    // stdin_once: the client's EOF closes cat's stdin and cat exits.
    conn.shutdown().await.unwrap();
    let (out, _) = read_frames(&mut conn).await;
    assert_eq!(out, b"hello through stdin\n");
    assert_eq!(client.wait().await.unwrap().code, 0);
    client.delete().await.unwrap();
}

#[tokio::test]
async fn shim_is_detached_and_a_new_client_can_reconnect() {
    let fx = Fixture::new("detach", &["sleep", "100"], false, true);
    let client = launch(Path::new(SHIM), &fx.options(false, false, None))
        .await
        .unwrap();
    client.start().await.unwrap();
    let shim = client.shim_pid().unwrap();
    assert_eq!(shim, shim_pid(&fx.state_dir()));
    let stat = std::fs::read_to_string(format!("/proc/{shim}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let (ppid, sid): (u32, u32) = (fields[1].parse().unwrap(), fields[3].parse().unwrap());
    assert_ne!(
        ppid,
        std::process::id(),
        "the launcher must not be the shim's parent"
    );
    assert_eq!(sid, shim, "the shim leads its own session");
    drop(client);

    let again = ShimClient::connect(&fx.state_dir()).await.unwrap();
    let state = again.state().await.unwrap();
    assert_eq!(state.status, TaskStatus::Running);
    assert!(process_alive(state.pid));
    again.kill(9, false).await.unwrap();
    assert_eq!(again.wait().await.unwrap().code, 137);
    again.delete().await.unwrap();
    assert!(gone(shim).await);
}

#[tokio::test]
async fn json_file_log_rotates() {
    let fx = Fixture::new(
        "rotate",
        &["sh", "-c", "for i in $(seq 1 200); do echo line-$i; done"],
        false,
        true,
    );
    let client = launch(Path::new(SHIM), &fx.options(false, false, Some((2000, 3))))
        .await
        .unwrap();
    client.start().await.unwrap();
    assert_eq!(client.wait().await.unwrap().code, 0);
    let log = fx.log_path();
    let rotated = |n: u32| PathBuf::from(format!("{}.{n}", log.display()));
    assert!(rotated(1).exists() && rotated(2).exists());
    assert!(!rotated(3).exists());
    for path in [log.clone(), rotated(1), rotated(2)] {
        assert!(std::fs::metadata(&path).unwrap().len() <= 2000);
    }
    let last = fx.log_entries().pop().unwrap();
    assert_eq!(last["log"], "line-200\n");
    client.delete().await.unwrap();
}

#[tokio::test]
async fn missing_executable_fails_clearly_and_leaves_no_shim() {
    let fx = Fixture::new("missing", &["/bin/no-such-program"], false, true);
    let err = launch(Path::new(SHIM), &fx.options(false, false, None))
        .await
        .unwrap_err();
    assert!(matches!(err, ShimError::Launch(_)), "{err:?}");
    eprintln!("create failure: {err}");
    assert!(err.to_string().contains("no-such-program"), "{err}");
    // No process may still refer to this container's state dir.
    let needle = fx.state_dir().display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            assert!(gone(pid).await, "shim {pid} still running: {cmdline}");
        }
    }
}

#[tokio::test]
async fn exec_with_a_terminal_gets_raw_output() {
    let fx = Fixture::new("exectty", &["sleep", "100"], false, true);
    let client = launch(Path::new(SHIM), &fx.options(false, false, None))
        .await
        .unwrap();
    client.start().await.unwrap();
    // Docker-style 64-hex exec id: its socket name must still fit a unix socket address.
    let exec_id = "f".repeat(64);
    let mut process = Process::default();
    process.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "read x; echo got-$x; stty size".into(),
    ]));
    process.set_env(Some(vec!["PATH=/bin".into(), "TERM=xterm".into()]));
    process.set_rlimits(None);
    process.set_terminal(Some(true));
    client.exec(&exec_id, &process, true).await.unwrap();
    let mut conn = attach(&client, Some(&exec_id), true).await;
    client.start_exec(&exec_id).await.unwrap();
    client.resize(Some(&exec_id), 77, 22).await.unwrap();
    conn.write_all(b"abc\n").await.unwrap();
    let mut out = Vec::new();
    conn.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    // Raw terminal output (no frame headers), with the terminal's CRLF line ends.
    assert!(text.contains("got-abc\r\n"), "{text:?}");
    assert!(text.contains("22 77"), "{text:?}");
    assert_eq!(client.wait_exec(&exec_id).await.unwrap().code, 0);
    client.kill(9, false).await.unwrap();
    client.wait().await.unwrap();
    client.delete().await.unwrap();
}

#[tokio::test]
async fn pause_resume_update_and_refused_delete_of_a_running_task() {
    let fx = Fixture::new("pause", &["sleep", "100"], false, true);
    let client = launch(Path::new(SHIM), &fx.options(false, false, None))
        .await
        .unwrap();
    client.start().await.unwrap();
    client.pause().await.unwrap();
    assert_eq!(client.state().await.unwrap().status, TaskStatus::Paused);
    client.resume().await.unwrap();
    assert_eq!(client.state().await.unwrap().status, TaskStatus::Running);
    let mut resources = oci_spec::runtime::LinuxResources::default();
    let mut pids = oci_spec::runtime::LinuxPids::default();
    pids.set_limit(64);
    resources.set_pids(Some(pids));
    client.update(&resources).await.unwrap();

    let err = client.delete().await.unwrap_err();
    assert_eq!(
        err.task_kind(),
        skiff_shim::TaskErrorKind::FailedPrecondition,
        "{err}"
    );
    client.kill(9, true).await.unwrap();
    assert_eq!(client.wait().await.unwrap().code, 137);
    client.delete().await.unwrap();
}

#[tokio::test]
async fn a_created_task_can_be_deleted_without_starting() {
    let fx = Fixture::new("created", &["sleep", "100"], false, true);
    let client = launch(Path::new(SHIM), &fx.options(false, false, None))
        .await
        .unwrap();
    let state = client.state().await.unwrap();
    assert_eq!(state.status, TaskStatus::Created);
    let shim = client.shim_pid().unwrap();
    client.delete().await.unwrap();
    assert!(gone(shim).await, "the shim must exit after delete");
    assert!(gone(state.pid).await, "the created init must be gone");
}

#[tokio::test]
async fn oom_kill_is_reported() {
    let fx = Fixture::new(
        "oom",
        &[
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/urandom); echo survived",
        ],
        false,
        true,
    );
    let config = fx.dir.path().join("bundle/config.json");
    let mut spec = Spec::load(&config).unwrap();
    let mut memory = oci_spec::runtime::LinuxMemory::default();
    memory.set_limit(Some(32 * 1024 * 1024));
    memory.set_swap(Some(32 * 1024 * 1024));
    let mut resources = oci_spec::runtime::LinuxResources::default();
    resources.set_memory(Some(memory));
    spec.linux_mut()
        .as_mut()
        .unwrap()
        .set_resources(Some(resources));
    spec.save(&config).unwrap();

    let client = launch(Path::new(SHIM), &fx.options(false, false, None))
        .await
        .unwrap();
    client.start().await.unwrap();
    let exit = client.wait().await.unwrap();
    assert_eq!(exit.code, 137, "{exit:?}");
    assert!(exit.oom_killed, "{exit:?}");
    assert!(read_exit_file(&fx.state_dir()).unwrap().oom_killed);
    client.delete().await.unwrap();
}

#[tokio::test]
async fn several_attach_clients_get_the_streams_they_asked_for() {
    let fx = Fixture::new(
        "multi",
        &["sh", "-c", "echo out; echo err >&2"],
        false,
        true,
    );
    let client = launch(Path::new(SHIM), &fx.options(false, false, None))
        .await
        .unwrap();
    let mut both = attach(&client, None, false).await;
    let mut only_err = UnixStream::connect(client.attach_socket(None))
        .await
        .unwrap();
    only_err
        .write_all(b"{\"stdin\":false,\"stdout\":false,\"stderr\":true}\n")
        .await
        .unwrap();
    client.start().await.unwrap();
    let (out, err) = read_frames(&mut both).await;
    assert_eq!(
        (out.as_slice(), err.as_slice()),
        (&b"out\n"[..], &b"err\n"[..])
    );
    let (out, err) = read_frames(&mut only_err).await;
    assert_eq!((out.as_slice(), err.as_slice()), (&b""[..], &b"err\n"[..]));
    assert_eq!(client.wait().await.unwrap().code, 0);

    // A client connecting after the exit still reads the recorded state.
    let again = ShimClient::connect(&fx.state_dir()).await.unwrap();
    let state = again.state().await.unwrap();
    assert_eq!(state.status, TaskStatus::Stopped);
    assert_eq!(state.exit.unwrap().code, 0);
    again.delete().await.unwrap();
}

#[tokio::test]
async fn an_attach_client_that_does_not_read_never_blocks_the_container() {
    // About 2 MB of output, far more than a unix socket buffers for a client that never reads.
    let fx = Fixture::new("slow", &["seq", "1", "300000"], false, true);
    let client = launch(Path::new(SHIM), &fx.options(false, false, None))
        .await
        .unwrap();
    let mut lazy = attach(&client, None, false).await;
    client.start().await.unwrap();
    // A hang guard, not a timing assertion: a blocked shim would never let seq finish.
    let exit = tokio::time::timeout(Duration::from_secs(300), client.wait())
        .await
        .expect("the container was blocked by an attach client that does not read")
        .unwrap();
    assert_eq!(exit.code, 0);
    // The shim dropped the client: it got a part of the output, then EOF.
    let mut got = Vec::new();
    lazy.read_to_end(&mut got).await.unwrap();
    assert!(got.len() < 2_000_000, "{} bytes", got.len());
    // The log queue drops rather than blocks; whatever was written is in order.
    let logged = fx.log_entries();
    eprintln!("{} of 300000 lines logged", logged.len());
    assert!(!logged.is_empty());
    client.delete().await.unwrap();
}

#[tokio::test]
async fn an_attach_client_that_reads_late_still_gets_all_the_output() {
    // About 590 kB: more than the socket buffers, less than the shim keeps per client.
    let fx = Fixture::new("late", &["seq", "1", "100000"], false, true);
    let client = launch(Path::new(SHIM), &fx.options(false, false, None))
        .await
        .unwrap();
    let mut late = attach(&client, None, false).await;
    client.start().await.unwrap();
    assert_eq!(client.wait().await.unwrap().code, 0);
    let (out, _) = read_frames(&mut late).await;
    let expected: String = (1..=100000).map(|i| format!("{i}\n")).collect();
    assert_eq!(out.len(), expected.len());
    assert!(out == expected.as_bytes());
    client.delete().await.unwrap();
}
