//! The embedded libcontainer runtime against real busybox containers (needs root).
//!
//! The test process makes itself a child subreaper, as the shim does, so it can reap the
//! container processes the runtime starts. The cases run one after another in one thread
//! (`harness = false`): after each case every child left over (killed containers,
//! libcontainer's helper processes of a failed exec) is reaped, which a parallel harness
//! could not do without stealing another case's exit status. Each case uses its own
//! state root, bundle and cgroup, and kills and deletes what it started even when it fails.

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe, Pid};
use oci_spec::runtime::{LinuxBuilder, Process, Spec};
use skiff_shim::runtime::libcontainer::LibcontainerRuntime;
use skiff_shim::runtime::{CreateOptions, ExecOptions, Runtime, Stdio};
use skiff_shim::TaskErrorKind;

const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &["sh", "echo", "sleep", "cat", "test", "true", "mkdir"];

/// One container's world: temp dir with the bundle and state root, torn down on drop.
struct Fixture {
    dir: tempfile::TempDir,
    runtime: LibcontainerRuntime,
    id: String,
}

impl Fixture {
    /// Returns None (and says why) when not root: namespaces and cgroups need it.
    fn new(name: &str, args: &[&str], terminal: bool) -> Option<Fixture> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: the libcontainer tests need root");
            return None;
        }
        become_subreaper();
        let dir = tempfile::tempdir().expect("temp dir");
        let id = format!("skiff-lc-{name}-{}", std::process::id());
        write_bundle(&dir.path().join("bundle"), &id, args, terminal);
        let runtime = LibcontainerRuntime::new(dir.path().join("state"));
        Some(Fixture { dir, runtime, id })
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn pid_file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state").join(&self.id)
    }

    /// Creates the container with stdout (and stderr) on a pipe; returns (pid, stdout).
    fn create_with_pipe(&self) -> (u32, fs::File) {
        let (stdout_read, stdout_write) = pipe().expect("pipe");
        let stderr = stdout_write.try_clone().expect("dup");
        let pid_file = self.pid_file("init.pid");
        let pid = self
            .runtime
            .create(CreateOptions {
                id: &self.id,
                bundle: &self.bundle(),
                stdio: Stdio {
                    stdin: None,
                    stdout: Some(stdout_write),
                    stderr: Some(stderr),
                },
                console_socket: None,
                pid_file: &pid_file,
            })
            .expect("create");
        (pid, fs::File::from(stdout_read))
    }

    fn freezer_state(&self) -> String {
        let path = format!(
            "/sys/fs/cgroup/freezer/skiff-test/{}/freezer.state",
            self.id
        );
        fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {path}: {e}"))
            .trim()
            .to_owned()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Whatever the test left running dies with its container.
        let _ = self.runtime.kill(&self.id, libc::SIGKILL, true);
        let _ = self.runtime.delete(&self.id, true);
    }
}

fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "PR_SET_CHILD_SUBREAPER");
}

/// A busybox rootfs and a config from oci-spec's default spec, as the shim would get.
fn write_bundle(bundle: &Path, id: &str, args: &[&str], terminal: bool) {
    let bin = bundle.join("rootfs/bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy(BUSYBOX, bin.join("busybox")).expect("copy busybox (install busybox-static)");
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let mut spec = Spec::default();
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
    process.set_terminal(Some(terminal));
    process.set_rlimits(Some(cap_rlimits(
        process.rlimits().clone().unwrap_or_default(),
    )));
    spec.set_process(Some(process));
    let mut linux = spec
        .linux()
        .clone()
        .unwrap_or_else(|| LinuxBuilder::default().build().unwrap());
    linux.set_cgroups_path(Some(PathBuf::from(format!("/skiff-test/{id}"))));
    spec.set_linux(Some(linux));
    spec.save(bundle.join("config.json")).unwrap();
}

/// Rlimits above the host's hard limits make the kernel refuse them.
fn cap_rlimits(
    mut rlimits: Vec<oci_spec::runtime::PosixRlimit>,
) -> Vec<oci_spec::runtime::PosixRlimit> {
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    for limit in &mut rlimits {
        if limit.typ() == oci_spec::runtime::PosixRlimitType::RlimitNofile {
            *limit = oci_spec::runtime::PosixRlimitBuilder::default()
                .typ(limit.typ())
                .hard(limit.hard().min(hard))
                .soft(limit.soft().min(hard))
                .build()
                .unwrap();
        }
    }
    rlimits
}

fn wait_exit(pid: u32) -> WaitStatus {
    loop {
        match waitpid(Pid::from_raw(pid as i32), None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other.expect("waitpid"),
        }
    }
}

fn exec_process(args: &[&str]) -> Process {
    let mut process = Spec::default().process().clone().unwrap();
    process.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
    process.set_terminal(Some(false));
    process.set_rlimits(None);
    process
}

fn runs_init_and_reports_exit_code() {
    let Some(fx) = Fixture::new("run", &["sh", "-c", "echo hello; exit 3"], false) else {
        return;
    };
    let (pid, mut stdout) = fx.create_with_pipe();
    assert!(pid > 1);
    let recorded = fs::read_to_string(fx.pid_file("init.pid")).unwrap();
    assert_eq!(recorded.trim(), pid.to_string());
    assert!(fx.state_dir().join("state.json").exists());

    fx.runtime.start(&fx.id).expect("start");
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    assert_eq!(out, "hello\n");
    assert_eq!(
        wait_exit(pid),
        WaitStatus::Exited(Pid::from_raw(pid as i32), 3)
    );

    fx.runtime.delete(&fx.id, false).expect("delete");
    assert!(!fx.state_dir().exists(), "delete leaves no state dir");
    assert!(!Path::new(&format!("/sys/fs/cgroup/freezer/skiff-test/{}", fx.id)).exists());
    // Deleting again is a no-op, not an error.
    fx.runtime.delete(&fx.id, false).expect("second delete");
}

fn kill_stops_a_sleeping_container() {
    let Some(fx) = Fixture::new("kill", &["sleep", "1000"], false) else {
        return;
    };
    let (pid, _stdout) = fx.create_with_pipe();
    fx.runtime.start(&fx.id).expect("start");
    assert!(fx.runtime.pids(&fx.id).unwrap().contains(&pid));

    fx.runtime.kill(&fx.id, libc::SIGKILL, false).expect("kill");
    assert_eq!(
        wait_exit(pid),
        WaitStatus::Signaled(Pid::from_raw(pid as i32), Signal::SIGKILL, false)
    );
    // Stopped now: a non-forced delete is allowed, a second kill of the init is not.
    let err = fx.runtime.kill(&fx.id, libc::SIGTERM, false).unwrap_err();
    assert_eq!(err.task_kind(), TaskErrorKind::FailedPrecondition, "{err}");
    fx.runtime.delete(&fx.id, false).expect("delete");
    assert!(!fx.state_dir().exists());
}

fn exec_runs_in_the_running_container() {
    let Some(fx) = Fixture::new("exec", &["sleep", "1000"], false) else {
        return;
    };
    let (pid, _stdout) = fx.create_with_pipe();
    fx.runtime.start(&fx.id).expect("start");

    // echo's output arrives on the exec's own pipe, and its exit code on its own pid.
    let (read, write) = pipe().unwrap();
    let process = exec_process(&["sh", "-c", "echo hi from exec; exit 7"]);
    let exec_pid = fx
        .runtime
        .exec(ExecOptions {
            id: &fx.id,
            process: &process,
            stdio: Stdio {
                stdin: None,
                stdout: Some(write),
                stderr: None,
            },
            console_socket: None,
            pid_file: &fx.pid_file("exec.pid"),
        })
        .expect("exec");
    assert_ne!(exec_pid, pid);
    let mut out = String::new();
    fs::File::from(read).read_to_string(&mut out).unwrap();
    assert_eq!(out, "hi from exec\n");
    assert_eq!(
        wait_exit(exec_pid),
        WaitStatus::Exited(Pid::from_raw(exec_pid as i32), 7)
    );
    // The process file the exec needed is gone again.
    let leftovers: Vec<_> = fs::read_dir(fx.state_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("exec-process-"))
        .collect();
    assert!(leftovers.is_empty());

    // A command that does not exist fails the exec instead of returning a pid.
    let missing = exec_process(&["/bin/nope"]);
    let err = fx
        .runtime
        .exec(ExecOptions {
            id: &fx.id,
            process: &missing,
            stdio: Stdio::default(),
            console_socket: None,
            pid_file: &fx.pid_file("missing.pid"),
        })
        .unwrap_err();
    assert!(err.to_string().contains("exec"), "{err}");
}

fn pids_pause_resume_and_kill_all() {
    let Some(fx) = Fixture::new("pause", &["sleep", "1000"], false) else {
        return;
    };
    let (pid, _stdout) = fx.create_with_pipe();
    fx.runtime.start(&fx.id).expect("start");
    let process = exec_process(&["sleep", "1000"]);
    let exec_pid = fx
        .runtime
        .exec(ExecOptions {
            id: &fx.id,
            process: &process,
            stdio: Stdio::default(),
            console_socket: None,
            pid_file: &fx.pid_file("exec.pid"),
        })
        .expect("exec");
    let mut expected = vec![pid, exec_pid];
    expected.sort_unstable();
    assert_eq!(fx.runtime.pids(&fx.id).unwrap(), expected);

    fx.runtime.pause(&fx.id).expect("pause");
    assert_eq!(fx.freezer_state(), "FROZEN");
    let err = fx.runtime.pause(&fx.id).unwrap_err();
    assert_eq!(err.task_kind(), TaskErrorKind::FailedPrecondition, "{err}");
    let err = fx
        .runtime
        .exec(ExecOptions {
            id: &fx.id,
            process: &exec_process(&["true"]),
            stdio: Stdio::default(),
            console_socket: None,
            pid_file: &fx.pid_file("paused-exec.pid"),
        })
        .unwrap_err();
    assert_eq!(err.task_kind(), TaskErrorKind::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("paused"), "{err}");
    // A non-fatal signal leaves a paused container paused.
    fx.runtime
        .kill(&fx.id, libc::SIGCONT, true)
        .expect("signal all");
    assert_eq!(fx.freezer_state(), "FROZEN");
    fx.runtime.resume(&fx.id).expect("resume");
    assert_eq!(fx.freezer_state(), "THAWED");

    fx.runtime
        .kill(&fx.id, libc::SIGKILL, true)
        .expect("kill all");
    // The exec first: a pid namespace's init does not finish exiting before every other
    // process of the namespace has been reaped.
    for p in [exec_pid, pid] {
        assert!(matches!(
            wait_exit(p),
            WaitStatus::Signaled(_, Signal::SIGKILL, _)
        ));
    }
    assert!(fx.runtime.pids(&fx.id).unwrap().is_empty());
    fx.runtime.delete(&fx.id, false).expect("delete");
    assert!(!fx.state_dir().exists());
}

fn update_writes_cgroup_limits() {
    let Some(fx) = Fixture::new("update", &["sleep", "1000"], false) else {
        return;
    };
    let (pid, _stdout) = fx.create_with_pipe();
    fx.runtime.start(&fx.id).expect("start");
    let resources = oci_spec::runtime::LinuxResourcesBuilder::default()
        .pids(
            oci_spec::runtime::LinuxPidsBuilder::default()
                .limit(42)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    fx.runtime.update(&fx.id, &resources).expect("update");
    let max =
        fs::read_to_string(format!("/sys/fs/cgroup/pids/skiff-test/{}/pids.max", fx.id)).unwrap();
    assert_eq!(max.trim(), "42");
    fx.runtime.kill(&fx.id, libc::SIGKILL, false).unwrap();
    wait_exit(pid);
}

fn delete_of_a_created_container_kills_its_init() {
    let Some(fx) = Fixture::new("created", &["sleep", "1000"], false) else {
        return;
    };
    let (pid, _stdout) = fx.create_with_pipe();
    let err = fx.runtime.delete(&fx.id, false);
    assert!(err.is_ok(), "{err:?}");
    assert!(matches!(
        wait_exit(pid),
        WaitStatus::Signaled(_, Signal::SIGKILL, _)
    ));
    assert!(!fx.state_dir().exists());
}

fn errors_say_what_is_wrong() {
    let Some(fx) = Fixture::new("errors", &["sleep", "1000"], false) else {
        return;
    };
    let err = fx.runtime.start(&fx.id).unwrap_err();
    assert_eq!(err.task_kind(), TaskErrorKind::NotFound, "{err}");
    let err = fx.runtime.kill("../escape", 9, false).unwrap_err();
    assert_eq!(err.task_kind(), TaskErrorKind::InvalidArgument, "{err}");

    let (pid, _stdout) = fx.create_with_pipe();
    fx.runtime.start(&fx.id).expect("start");
    let err = fx.runtime.start(&fx.id).unwrap_err();
    assert_eq!(err.task_kind(), TaskErrorKind::FailedPrecondition, "{err}");
    let err = fx.runtime.delete(&fx.id, false).unwrap_err();
    assert_eq!(err.task_kind(), TaskErrorKind::FailedPrecondition, "{err}");

    // A second create with the same id is refused and leaves the first one alone.
    let (read, write) = pipe().unwrap();
    drop(read);
    let err = fx
        .runtime
        .create(CreateOptions {
            id: &fx.id,
            bundle: &fx.bundle(),
            stdio: Stdio {
                stdin: None,
                stdout: Some(write),
                stderr: None,
            },
            console_socket: None,
            pid_file: &fx.pid_file("again.pid"),
        })
        .unwrap_err();
    assert_eq!(err.task_kind(), TaskErrorKind::FailedPrecondition, "{err}");
    assert!(fx.runtime.pids(&fx.id).unwrap().contains(&pid));

    fx.runtime.delete(&fx.id, true).expect("forced delete");
    assert!(matches!(
        wait_exit(pid),
        WaitStatus::Signaled(_, Signal::SIGKILL, _)
    ));
    assert!(!fx.state_dir().exists());
}

fn terminal_sends_the_pty_master_to_the_console_socket() {
    let Some(fx) = Fixture::new("tty", &["sh", "-c", "echo hello from tty"], true) else {
        return;
    };
    let socket_path = fx.dir.path().join("console.sock");
    let listener = UnixListener::bind(&socket_path).unwrap();
    let pid = fx
        .runtime
        .create(CreateOptions {
            id: &fx.id,
            bundle: &fx.bundle(),
            stdio: Stdio::default(),
            console_socket: Some(&socket_path),
            pid_file: &fx.pid_file("init.pid"),
        })
        .expect("create");
    let (conn, _) = listener.accept().unwrap();
    let master = receive_fd(&conn);
    fx.runtime.start(&fx.id).expect("start");
    // The pty translates "\n" to "\r\n"; EIO marks the end once the slave side is gone.
    let mut out = Vec::new();
    let mut master = fs::File::from(master);
    let mut chunk = [0u8; 256];
    loop {
        match master.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    assert_eq!(
        wait_exit(pid),
        WaitStatus::Exited(Pid::from_raw(pid as i32), 0)
    );
    assert_eq!(String::from_utf8_lossy(&out), "hello from tty\r\n");
}

fn create_replaces_the_state_of_a_dead_container() {
    let Some(fx) = Fixture::new("stale", &["true"], false) else {
        return;
    };
    // As if the shim died: the container ran and exited, nobody deleted it.
    let (pid, _stdout) = fx.create_with_pipe();
    fx.runtime.start(&fx.id).expect("start");
    wait_exit(pid);
    let (pid, _stdout) = fx.create_with_pipe();
    fx.runtime.start(&fx.id).expect("start again");
    assert_eq!(
        wait_exit(pid),
        WaitStatus::Exited(Pid::from_raw(pid as i32), 0)
    );
    fx.runtime.delete(&fx.id, false).expect("delete");
    assert!(!fx.state_dir().exists());
}

fn null_stdio_discards_output() {
    let Some(fx) = Fixture::new("null", &["sh", "-c", "echo out && echo err >&2"], false) else {
        return;
    };
    // No stdio at all (the contract's /dev/null), then an explicit /dev/null: in both
    // cases the writes succeed (echo fails the chain otherwise) and go nowhere.
    let null = || -> OwnedFd {
        fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap()
            .into()
    };
    for stdio in [
        Stdio::default(),
        Stdio {
            stdin: None,
            stdout: Some(null()),
            stderr: Some(null()),
        },
    ] {
        let pid = fx
            .runtime
            .create(CreateOptions {
                id: &fx.id,
                bundle: &fx.bundle(),
                stdio,
                console_socket: None,
                pid_file: &fx.pid_file("init.pid"),
            })
            .expect("create");
        fx.runtime.start(&fx.id).expect("start");
        assert_eq!(
            wait_exit(pid),
            WaitStatus::Exited(Pid::from_raw(pid as i32), 0)
        );
        fx.runtime.delete(&fx.id, false).expect("delete");
    }
}

fn seccomp_profile_is_enforced() {
    // /dev/shm is a writable tmpfs: without the filter this mkdir succeeds.
    let Some(fx) = Fixture::new("seccomp", &["mkdir", "/dev/shm/x"], false) else {
        return;
    };
    // Everything allowed but mkdir/mkdirat, which fail with EPERM.
    let config = fx.bundle().join("config.json");
    let mut spec = Spec::load(&config).unwrap();
    let deny_mkdir = oci_spec::runtime::LinuxSyscallBuilder::default()
        .names(vec!["mkdir".to_string(), "mkdirat".to_string()])
        .action(oci_spec::runtime::LinuxSeccompAction::ScmpActErrno)
        .errno_ret(libc::EPERM as u32)
        .build()
        .unwrap();
    let seccomp = oci_spec::runtime::LinuxSeccompBuilder::default()
        .default_action(oci_spec::runtime::LinuxSeccompAction::ScmpActAllow)
        .syscalls(vec![deny_mkdir])
        .build()
        .unwrap();
    let mut linux = spec.linux().clone().unwrap();
    linux.set_seccomp(Some(seccomp));
    spec.set_linux(Some(linux));
    spec.save(&config).unwrap();

    let (pid, mut output) = fx.create_with_pipe();
    fx.runtime.start(&fx.id).expect("start");
    let mut out = String::new();
    output.read_to_string(&mut out).unwrap();
    assert!(out.contains("Operation not permitted"), "{out}");
    assert_eq!(
        wait_exit(pid),
        WaitStatus::Exited(Pid::from_raw(pid as i32), 1)
    );
}

fn stdin_reaches_the_init_process() {
    let Some(fx) = Fixture::new("stdin", &["cat"], false) else {
        return;
    };
    let (stdin_read, stdin_write) = pipe().unwrap();
    let (stdout_read, stdout_write) = pipe().unwrap();
    let pid = fx
        .runtime
        .create(CreateOptions {
            id: &fx.id,
            bundle: &fx.bundle(),
            stdio: Stdio {
                stdin: Some(stdin_read),
                stdout: Some(stdout_write),
                stderr: None,
            },
            console_socket: None,
            pid_file: &fx.pid_file("init.pid"),
        })
        .expect("create");
    fx.runtime.start(&fx.id).expect("start");
    let mut stdin = fs::File::from(stdin_write);
    std::io::Write::write_all(&mut stdin, b"ping\n").unwrap();
    // Closing our end is cat's EOF: it exits 0 after echoing what it read.
    drop(stdin);
    let mut out = String::new();
    fs::File::from(stdout_read)
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "ping\n");
    assert_eq!(
        wait_exit(pid),
        WaitStatus::Exited(Pid::from_raw(pid as i32), 0)
    );
}

fn exec_with_a_terminal_uses_the_console_socket() {
    let Some(fx) = Fixture::new("exectty", &["sleep", "1000"], false) else {
        return;
    };
    let (_pid, _stdout) = fx.create_with_pipe();
    fx.runtime.start(&fx.id).expect("start");
    let socket_path = fx.dir.path().join("exec-console.sock");
    let listener = UnixListener::bind(&socket_path).unwrap();
    let mut process = exec_process(&["sh", "-c", "test -t 1 && echo on a tty"]);
    process.set_terminal(Some(true));
    let exec_pid = fx
        .runtime
        .exec(ExecOptions {
            id: &fx.id,
            process: &process,
            stdio: Stdio::default(),
            console_socket: Some(&socket_path),
            pid_file: &fx.pid_file("exec.pid"),
        })
        .expect("exec");
    let (conn, _) = listener.accept().unwrap();
    let mut master = fs::File::from(receive_fd(&conn));
    let mut out = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        match master.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    assert_eq!(String::from_utf8_lossy(&out), "on a tty\r\n");
    assert_eq!(
        wait_exit(exec_pid),
        WaitStatus::Exited(Pid::from_raw(exec_pid as i32), 0)
    );
}

/// One fd received with SCM_RIGHTS, as runc's --console-socket protocol sends it.
fn receive_fd(conn: &std::os::unix::net::UnixStream) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .expect("recvmsg");
    for cmsg in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: SCM_RIGHTS installed this fd in our table; nothing else owns it.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received on the console socket");
}

type Case = (&'static str, fn());

/// The cases, by function name (the name is what filters match).
macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        &[$((stringify!($case), $case as fn())),*]
    };
}

const CASES: &[Case] = cases![
    runs_init_and_reports_exit_code,
    kill_stops_a_sleeping_container,
    exec_runs_in_the_running_container,
    pids_pause_resume_and_kill_all,
    update_writes_cgroup_limits,
    delete_of_a_created_container_kills_its_init,
    errors_say_what_is_wrong,
    create_replaces_the_state_of_a_dead_container,
    null_stdio_discards_output,
    seccomp_profile_is_enforced,
    stdin_reaches_the_init_process,
    exec_with_a_terminal_uses_the_console_socket,
    terminal_sends_the_pty_master_to_the_console_socket,
];

fn main() -> std::process::ExitCode {
    // `cargo test -p skiff-shim --test libcontainer -- NAME` runs the cases containing NAME.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, case) in CASES {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let outcome = std::panic::catch_unwind(case);
        reap_leftovers();
        match outcome {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    remove_parent_cgroups();
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// Reaps every child still around once a case is over. The fixture has SIGKILLed its
/// container by then; anything else still running (a case that failed half way) is our
/// own child too and is killed by pid, so this cannot hang.
fn reap_leftovers() {
    loop {
        match waitpid(None::<Pid>, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                for child in own_children() {
                    let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                }
                // Blocks only until the next of them has died.
                let _ = waitpid(None::<Pid>, None);
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Our live children, from /proc (field 4 of /proc/PID/stat is the parent pid).
fn own_children() -> Vec<Pid> {
    let me = std::process::id().to_string();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
            let after_name = &stat[stat.rfind(')')? + 1..];
            let ppid = after_name.split_whitespace().nth(1)?;
            (ppid == me).then(|| Pid::from_raw(pid))
        })
        .collect()
}

/// libcontainer removes each container's cgroup on delete but not the shared parent.
fn remove_parent_cgroups() {
    let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for hierarchy in hierarchies.flatten() {
        let _ = fs::remove_dir(hierarchy.path().join("skiff-test"));
    }
}
