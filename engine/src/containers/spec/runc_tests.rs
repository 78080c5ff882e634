//! Runs generated specs with the real `runc` on a busybox rootfs: proves the runtime accepts
//! them (default seccomp profile, read-only rootfs, memory limit, a non-root user, init).
//! Needs root, runc and busybox-static (/bin/busybox); skipped with a message otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

struct Bundle {
    dir: tempfile::TempDir,
    id: String,
}

impl Bundle {
    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
    fn state_root(&self) -> PathBuf {
        self.dir.path().join("runc-state")
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // a failed assertion may leave the container behind; ignore "does not exist"
        let _ = Command::new("runc")
            .arg("--root")
            .arg(self.state_root())
            .args(["delete", "--force", &self.id])
            .output();
    }
}

fn runnable() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let runc = Command::new("runc").arg("--version").output().is_ok();
    let busybox = Path::new("/bin/busybox").exists();
    if !(root && runc && busybox) {
        eprintln!(
            "skipping runc test: needs root ({root}), runc ({runc}) and /bin/busybox ({busybox})"
        );
    }
    root && runc && busybox
}

fn bundle(name: &str) -> Bundle {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "echo", "cat", "id", "touch", "grep", "sleep", "true", "tr",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\napp:x:1000:\nextra:x:2000:app\n",
    )
    .unwrap();
    let etc = dir.path().join("etc-files");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("hostname"), "spec-test\n").unwrap();
    std::fs::write(etc.join("hosts"), "127.0.0.1 localhost\n").unwrap();
    std::fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
    let id = format!("skiff-spec-{name}-{}", std::process::id());
    Bundle { dir, id }
}

fn request(b: &Bundle, cmd: &[&str]) -> SpecRequest {
    let etc = b.dir.path().join("etc-files");
    SpecRequest {
        id: b.id.clone(),
        hostname: "spec-test".to_string(),
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        etc_files: EtcFiles {
            hostname: etc.join("hostname"),
            hosts: etc.join("hosts"),
            resolv_conf: etc.join("resolv.conf"),
        },
        ..SpecRequest::default()
    }
}

/// Writes config.json and runs the container to completion: (exit code, stdout, stderr).
fn run(b: &Bundle, req: &SpecRequest) -> (i32, String, String) {
    let spec = build_spec(req, &b.rootfs()).unwrap();
    spec.save(b.dir.path().join("config.json")).unwrap();
    let out = Command::new("runc")
        .arg("--root")
        .arg(b.state_root())
        .arg("run")
        .arg("--bundle")
        .arg(b.dir.path())
        .arg(&b.id)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn runc_runs_echo_with_default_seccomp() {
    if !runnable() {
        return;
    }
    let b = bundle("echo");
    let req = request(
        &b,
        &[
            "sh",
            "-c",
            "echo hello; grep Seccomp: /proc/self/status; cat /etc/hostname; exit 3",
        ],
    );
    let (code, out, err) = run(&b, &req);
    assert_eq!(code, 3, "stdout: {out} stderr: {err}");
    assert!(out.starts_with("hello\n"), "{out}");
    // mode 2 = filter: the default profile is loaded
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("spec-test"), "{out}");
}

#[test]
fn runc_unconfined_has_no_seccomp() {
    if !runnable() {
        return;
    }
    let b = bundle("unconfined");
    let mut req = request(&b, &["grep", "Seccomp:", "/proc/self/status"]);
    req.security_opt = vec!["seccomp=unconfined".to_string()];
    let (code, out, err) = run(&b, &req);
    assert_eq!(code, 0, "stdout: {out} stderr: {err}");
    assert!(out.contains("Seccomp:\t0"), "{out}");
}

#[test]
fn runc_read_only_rootfs_refuses_writes_but_keeps_tmpfs() {
    if !runnable() {
        return;
    }
    let b = bundle("readonly");
    let mut req = request(
        &b,
        &[
            "sh",
            "-c",
            "touch /dev/shm/ok && touch /scratch/ok && touch /x; echo touch=$?",
        ],
    );
    req.readonly_rootfs = true;
    req.tmpfs
        .insert("/scratch".to_string(), "size=1m".to_string());
    let (code, out, err) = run(&b, &req);
    assert_eq!(code, 0, "stdout: {out} stderr: {err}");
    assert!(out.contains("touch=1"), "{out} {err}");
    assert!(!b.rootfs().join("x").exists());
}

#[test]
fn runc_applies_memory_limit() {
    if !runnable() {
        return;
    }
    let b = bundle("memory");
    let v1 = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
    let file = if v1 {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    } else {
        "/sys/fs/cgroup/memory.max"
    };
    let mut req = request(&b, &["cat", file]);
    req.resources.memory = 32 << 20;
    let (code, out, err) = run(&b, &req);
    assert_eq!(code, 0, "stdout: {out} stderr: {err}");
    assert_eq!(out.trim(), (32u64 << 20).to_string());
}

#[test]
fn runc_runs_as_named_user_with_groups() {
    if !runnable() {
        return;
    }
    let b = bundle("user");
    let mut req = request(&b, &["sh", "-c", "id; pwd"]);
    req.user = Some("app".to_string());
    req.working_dir = Some("/home/app/work".to_string());
    // build_spec (inside run) creates the missing working directory, owned by app
    let (code, out, err) = run(&b, &req);
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(b.rootfs().join("home/app/work")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000, 1000));
    assert_eq!(code, 0, "stdout: {out} stderr: {err}");
    assert!(out.contains("uid=1000(app) gid=1000(app)"), "{out}");
    assert!(out.contains("2000(extra)"), "{out}");
    assert!(out.contains("/home/app/work"), "{out}");
}

#[test]
fn runc_runs_the_embedded_init_as_pid_1() {
    if !runnable() {
        return;
    }
    let init = init_binary();
    assert!(!init.is_empty(), "the static init was not built");
    let b = bundle("init");
    let init_path = b.dir.path().join("docker-init");
    std::fs::write(&init_path, init).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&init_path, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut req = request(
        &b,
        &["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; exit 7"],
    );
    req.init = true;
    req.init_path = Some(init_path.clone());
    let (code, out, err) = run(&b, &req);
    assert_eq!(code, 7, "stdout: {out} stderr: {err}");
    assert!(out.starts_with("/sbin/docker-init -- sh -c"), "{out}");

    // a command killed by a signal: 128 + signal, like tini
    let b2 = bundle("init-signal");
    let mut req = request(&b2, &["sh", "-c", "kill -KILL $$"]);
    req.init = true;
    req.init_path = Some(init_path);
    let (code, out, err) = run(&b2, &req);
    assert_eq!(code, 137, "stdout: {out} stderr: {err}");
}

/// Env var naming the bundle the libcontainer child test runs (set by the parent test).
const LC_BUNDLE_ENV: &str = "SKIFF_SPEC_LIBCONTAINER_BUNDLE";

/// Runs `req` with the embedded runtime (youki's libcontainer). libcontainer acts on the
/// calling process (clones from it, changes its cwd), so the work happens in a fresh
/// process: this test binary re-run with only `libcontainer_child`. Returns its stdout
/// (the container's output and "container exit=N").
fn run_libcontainer(b: &Bundle, req: &SpecRequest) -> String {
    let spec = build_spec(req, &b.rootfs()).unwrap();
    spec.save(b.dir.path().join("config.json")).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "containers::spec::runc_tests::libcontainer_child",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(LC_BUNDLE_ENV, b.dir.path())
        .env("SKIFF_SPEC_LIBCONTAINER_ID", &b.id)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout} stderr: {stderr}");
    stdout
}

#[test]
fn libcontainer_runs_generated_spec() {
    if !runnable() {
        return;
    }
    let b = bundle("lc");
    let mut req = request(
        &b,
        &[
            "sh",
            "-c",
            "echo from-libcontainer; grep Seccomp: /proc/self/status; exit 4",
        ],
    );
    req.resources.memory = 64 << 20;
    req.tmpfs
        .insert("/scratch".to_string(), "size=1m".to_string());
    let stdout = run_libcontainer(&b, &req);
    assert!(stdout.contains("from-libcontainer"), "{stdout}");
    assert!(stdout.contains("Seccomp:\t2"), "{stdout}");
    assert!(stdout.contains("container exit=4"), "{stdout}");
}

#[test]
fn libcontainer_runs_non_root_read_only_with_init() {
    if !runnable() {
        return;
    }
    let b = bundle("lc-user");
    let init_path = b.dir.path().join("docker-init");
    std::fs::write(&init_path, init_binary()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&init_path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut req = request(&b, &["sh", "-c", "id; touch /x; echo touch=$?; exit 2"]);
    req.user = Some("app".to_string());
    req.readonly_rootfs = true;
    req.init = true;
    req.init_path = Some(init_path);
    let stdout = run_libcontainer(&b, &req);
    assert!(stdout.contains("uid=1000(app) gid=1000(app)"), "{stdout}");
    assert!(stdout.contains("touch=1"), "{stdout}");
    assert!(stdout.contains("container exit=2"), "{stdout}");
}

#[test]
#[ignore = "run by libcontainer_runs_generated_spec in its own process"]
fn libcontainer_child() {
    use libcontainer::container::builder::ContainerBuilder;
    use libcontainer::syscall::syscall::SyscallType;
    use nix::sys::wait::{waitpid, WaitStatus};

    let Some(dir) = std::env::var_os(LC_BUNDLE_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let id = std::env::var("SKIFF_SPEC_LIBCONTAINER_ID").unwrap();
    // the container init is re-parented to us when libcontainer's intermediate exits
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes one integer argument.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0);
    let mut container = ContainerBuilder::new(id, SyscallType::Linux)
        .with_root_path(dir.join("lc-state"))
        .unwrap()
        .as_init(&dir)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .unwrap();
    let pid = container.pid().unwrap();
    container.start().unwrap();
    let code = loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => panic!("waitpid: {e}"),
        }
    };
    container.delete(true).unwrap();
    println!("container exit={code}");
}

#[test]
fn runc_runs_privileged() {
    if !runnable() {
        return;
    }
    let b = bundle("privileged");
    let mut req = request(
        &b,
        &[
            "sh",
            "-c",
            "grep -E 'Seccomp:|CapEff:' /proc/self/status; test -c /dev/null && echo devnull",
        ],
    );
    req.privileged = true;
    let (code, out, err) = run(&b, &req);
    assert_eq!(code, 0, "stdout: {out} stderr: {err}");
    assert!(out.contains("Seccomp:\t0"), "{out}");
    assert!(out.contains("devnull"), "{out}");
    assert!(!out.contains("CapEff:\t00000000a80425fb"), "{out}");
}

#[test]
fn libcontainer_runs_privileged() {
    if !runnable() {
        return;
    }
    let b = bundle("lc-privileged");
    let mut req = request(
        &b,
        &[
            "sh",
            "-c",
            "grep Seccomp: /proc/self/status; test -c /dev/null && echo devnull",
        ],
    );
    req.privileged = true;
    let stdout = run_libcontainer(&b, &req);
    assert!(stdout.contains("Seccomp:\t0"), "{stdout}");
    assert!(stdout.contains("devnull"), "{stdout}");
    assert!(stdout.contains("container exit=0"), "{stdout}");
}
