//! Time to run a busybox container to completion: the embedded libcontainer runtime
//! (create + start + wait + delete, in this process, as the shim does) against
//! `runc run` of the same bundle. Runs alternate (A B A B ...) because the machine is
//! shared and noisy; the medians and their ratio are what to compare.
//!
//! Needs root, busybox-static and runc:
//! `cargo run -p skiff-shim --example libcontainer_vs_runc -- [RUNS]` (default 10).

use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio as ProcessStdio};
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxBuilder, PosixRlimitBuilder, PosixRlimitType, Spec};
use skiff_shim::runtime::libcontainer::LibcontainerRuntime;
use skiff_shim::runtime::{CreateOptions, Runtime, Stdio};

const BUSYBOX: &str = "/bin/busybox";
const RUNC: &str = "runc";

fn main() -> ExitCode {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    match run(runs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(runs: usize) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("run as root: containers need namespaces and cgroups".into());
    }
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err("cannot become a child subreaper".into());
    }
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let bundle = dir.path().join("bundle");
    write_bundle(&bundle)?;
    let runtime = LibcontainerRuntime::new(dir.path().join("libcontainer"));
    let runc_root = dir.path().join("runc");

    let (mut embedded, mut runc) = (Vec::new(), Vec::new());
    for i in 0..runs {
        embedded.push(run_embedded(&runtime, &bundle, dir.path(), i)?);
        runc.push(run_runc(&runc_root, &bundle, i)?);
    }
    // Each run removed its own cgroup; the shared parent is ours to remove.
    if let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") {
        for hierarchy in hierarchies.flatten() {
            let _ = fs::remove_dir(hierarchy.path().join("skiff-bench/run"));
            let _ = fs::remove_dir(hierarchy.path().join("skiff-bench"));
        }
    }
    let (embedded, runc) = (median(&mut embedded), median(&mut runc));
    println!("runs: {runs} each, alternating");
    println!("libcontainer (embedded) median: {:.1} ms", ms(embedded));
    println!("runc run median:                {:.1} ms", ms(runc));
    println!(
        "ratio libcontainer / runc:      {:.2}",
        ms(embedded) / ms(runc)
    );
    Ok(())
}

fn run_embedded(
    runtime: &LibcontainerRuntime,
    bundle: &Path,
    scratch: &Path,
    i: usize,
) -> Result<Duration, String> {
    let id = format!("bench-lc-{i}");
    // A pipe, not /dev/null: libcontainer 0.7 reopens a /dev/null stdout read-only.
    // "hello\n" fits the pipe buffer; the read end is dropped after the run.
    let (_stdout_read, stdout_write) = nix::unistd::pipe().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let pid = runtime
        .create(CreateOptions {
            id: &id,
            bundle,
            stdio: Stdio {
                stdin: None,
                stdout: Some(stdout_write),
                stderr: None,
            },
            console_socket: None,
            pid_file: &scratch.join(format!("{id}.pid")),
        })
        .map_err(|e| e.to_string())?;
    runtime.start(&id).map_err(|e| e.to_string())?;
    let status = loop {
        match waitpid(Pid::from_raw(pid as i32), None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other.map_err(|e| format!("wait for {pid}: {e}"))?,
        }
    };
    runtime.delete(&id, false).map_err(|e| e.to_string())?;
    let took = started.elapsed();
    if !matches!(status, WaitStatus::Exited(_, 0)) {
        return Err(format!("libcontainer run {i} ended with {status:?}"));
    }
    Ok(took)
}

fn run_runc(root: &Path, bundle: &Path, i: usize) -> Result<Duration, String> {
    let started = Instant::now();
    let status = Command::new(RUNC)
        .arg("--root")
        .arg(root)
        .arg("run")
        .arg("--bundle")
        .arg(bundle)
        .arg(format!("bench-runc-{i}"))
        .stdin(ProcessStdio::null())
        .stdout(ProcessStdio::null())
        .status()
        .map_err(|e| format!("cannot run {RUNC} (install runc): {e}"))?;
    let took = started.elapsed();
    if !status.success() {
        return Err(format!("runc run {i} ended with {status}"));
    }
    Ok(took)
}

/// busybox rootfs and oci-spec's default config running `sh -c 'echo hello'`.
fn write_bundle(bundle: &Path) -> Result<(), String> {
    let bin = bundle.join("rootfs/bin");
    fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    fs::copy(BUSYBOX, bin.join("busybox"))
        .map_err(|e| format!("copy {BUSYBOX} (install busybox-static): {e}"))?;
    for applet in ["sh", "echo"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).map_err(|e| e.to_string())?;
    }
    let mut spec = Spec::default();
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(vec!["sh".into(), "-c".into(), "echo hello".into()]));
    process.set_terminal(Some(false));
    // The host's hard open-files limit is the ceiling.
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_err(|e| e.to_string())?;
    let nofile = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(hard.min(1024))
        .soft(hard.min(1024))
        .build()
        .map_err(|e| e.to_string())?;
    process.set_rlimits(Some(vec![nofile]));
    spec.set_process(Some(process));
    let mut linux = spec
        .linux()
        .clone()
        .unwrap_or_else(|| LinuxBuilder::default().build().unwrap_or_default());
    linux.set_cgroups_path(Some("/skiff-bench/run".into()));
    spec.set_linux(Some(linux));
    spec.save(bundle.join("config.json"))
        .map_err(|e| e.to_string())
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
