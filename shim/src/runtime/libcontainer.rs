//! youki's libcontainer linked into the shim: the default runtime, nothing to install.
//!
//! State lives under `root/<id>/` (libcontainer's state.json, its config and the notify
//! socket). Create and exec run in a forked helper (see `helper`); the other operations
//! only read state, write cgroup files and send signals, so they run in the caller.
//! Cgroups are driven through cgroupfs (never systemd); on a hybrid host libcgroups
//! picks the v1 hierarchies.

mod helper;
mod stdio;

use std::error::Error as StdError;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use libcgroups::common::{
    create_cgroup_manager, AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt,
    FreezerState,
};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};

use super::{CreateOptions, ExecOptions, Runtime, Stdio};
use crate::error::ShimError;

/// The embedded runtime. `root` holds one state directory per container.
#[derive(Debug, Clone)]
pub struct LibcontainerRuntime {
    root: PathBuf,
}

impl LibcontainerRuntime {
    /// `root` should be absolute (e.g. /run/skiff/libcontainer); it is created on first use.
    pub fn new(root: PathBuf) -> Self {
        LibcontainerRuntime { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The container's state directory, refusing ids that would leave the root.
    fn state_dir(&self, id: &str) -> Result<PathBuf, ShimError> {
        let valid = !id.is_empty()
            && id != "."
            && id != ".."
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
        if !valid {
            return Err(ShimError::RuntimeInvalidId { id: id.to_owned() });
        }
        Ok(self.root.join(id))
    }

    fn ensure_root(&self) -> Result<(), ShimError> {
        if !self.root.is_absolute() {
            return Err(ShimError::RuntimeInvalidRoot {
                root: self.root.display().to_string(),
            });
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|source| ShimError::Io {
                context: format!("create runtime state root {}", self.root.display()),
                source,
            })
    }

    fn load(&self, id: &str) -> Result<Container, ShimError> {
        let dir = self.state_dir(id)?;
        if !dir.join("state.json").exists() {
            return Err(self.not_found(id));
        }
        Container::load(dir).map_err(|e| lc_error("load", id, e))
    }

    fn not_found(&self, id: &str) -> ShimError {
        ShimError::RuntimeContainerNotFound {
            id: id.to_owned(),
            root: self.root.display().to_string(),
        }
    }

    /// State left behind by a container whose shim died (its init is gone) would make
    /// libcontainer refuse the id forever; clear it. A live container is a conflict.
    fn clear_stale_state(&self, id: &str) -> Result<(), ShimError> {
        let dir = self.state_dir(id)?;
        if !dir.exists() {
            return Ok(());
        }
        if dir.join("state.json").exists() {
            let container = self.load(id)?;
            if container.status() != ContainerStatus::Stopped {
                return Err(wrong_state("create", id, container.status()));
            }
            tracing::warn!(
                id,
                "removing the runtime state of a stopped container before create"
            );
        }
        self.delete(id, true)
    }

    fn cgroup_manager(&self, container: &Container) -> Result<AnyCgroupManager, ShimError> {
        let id = container.id();
        let config = container
            .spec()
            .map_err(|e| lc_error("load config", id, e))?;
        create_cgroup_manager(CgroupConfig {
            cgroup_path: config.cgroup_path,
            systemd_cgroup: false,
            container_name: id.to_owned(),
        })
        .map_err(|e| cgroup_error("open cgroup", id, &e))
    }
}

impl Runtime for LibcontainerRuntime {
    fn create(&self, opts: CreateOptions<'_>) -> Result<u32, ShimError> {
        let id = opts.id;
        self.clear_stale_state(id)?;
        self.ensure_root()?;
        let bundle = absolute("bundle", opts.bundle)?;
        let pid_file = absolute("pid file", opts.pid_file)?;
        let console_socket = opts
            .console_socket
            .map(|p| absolute("console socket", p))
            .transpose()?;
        let terminal = spec_terminal(&bundle)?;
        let root = self.root.clone();
        let stdio = opts.stdio;
        helper::run_forked("create", id, move || {
            let builder = base_builder(id, &root, &pid_file, terminal, console_socket, stdio)?;
            let container = builder
                .as_init(&bundle)
                .with_systemd(false)
                .with_detach(true)
                .build()
                .map_err(|e| chain(&e))?;
            container
                .pid()
                .map(pid_u32)
                .ok_or_else(|| "libcontainer recorded no init pid".to_owned())
        })
    }

    fn start(&self, id: &str) -> Result<(), ShimError> {
        let mut container = self.load(id)?;
        container.start().map_err(|e| lc_error("start", id, e))
    }

    fn exec(&self, opts: ExecOptions<'_>) -> Result<u32, ShimError> {
        let id = opts.id;
        let dir = self.state_dir(id)?;
        // Checked here as well as in libcontainer so a paused or stopped container is a
        // precondition failure (409 for the API), not an opaque helper error.
        let status = self.load(id)?.status();
        if status != ContainerStatus::Running {
            return Err(wrong_state("exec in", id, status));
        }
        let pid_file = absolute("pid file", opts.pid_file)?;
        let console_socket = opts
            .console_socket
            .map(|p| absolute("console socket", p))
            .transpose()?;
        let terminal = opts.process.terminal().unwrap_or(false);
        // libcontainer's tenant builder reads the process from a file (as `runc exec
        // --process`); it lives in the state dir, so delete removes any leftover.
        let process_file = ProcessFile::write(&dir, opts.process)?;
        let root = self.root.clone();
        let stdio = opts.stdio;
        let path = process_file.path.clone();
        helper::run_forked("exec", id, move || {
            let builder = base_builder(id, &root, &pid_file, terminal, console_socket, stdio)?;
            let pid = builder
                .as_tenant()
                .with_detach(true)
                .with_process(Some(&path))
                .build()
                .map_err(|e| chain(&e))?;
            Ok(pid_u32(pid))
        })
    }

    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), ShimError> {
        let container = self.load(id)?;
        let signal = Signal::try_from(signal).map_err(|_| ShimError::RuntimeInvalidSignal {
            signal,
            id: id.to_owned(),
        })?;
        // libcontainer's own kill marks the container stopped whatever the signal (a
        // SIGHUP would make a paused container look running); this keeps its state.
        let status = container.status();
        if all {
            return self.kill_all(&container, signal);
        }
        if !matches!(
            status,
            ContainerStatus::Created | ContainerStatus::Running | ContainerStatus::Paused
        ) {
            return Err(wrong_state("kill", id, status));
        }
        let pid = container
            .pid()
            .ok_or_else(|| wrong_state("kill", id, ContainerStatus::Stopped))?;
        signal_pid(pid, signal).map_err(|e| errno_error("kill", id, e))?;
        // A frozen v1 cgroup holds even SIGKILL until thawed.
        if status == ContainerStatus::Paused && signal == Signal::SIGKILL {
            self.cgroup_manager(&container)?
                .freeze(FreezerState::Thawed)
                .map_err(|e| cgroup_error("thaw", id, &e))?;
        }
        Ok(())
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), ShimError> {
        let dir = self.state_dir(id)?;
        if !dir.exists() {
            // Already gone: deleting is idempotent, so a shim can always clean up.
            return Ok(());
        }
        if !dir.join("state.json").exists() {
            // A create that died before writing state: nothing runs, drop the leftovers.
            return fs::remove_dir_all(&dir).map_err(|source| ShimError::Io {
                context: format!("remove runtime state {}", dir.display()),
                source,
            });
        }
        let mut container = self.load(id)?;
        container
            .delete(force)
            .map_err(|e| lc_error("delete", id, e))
    }

    fn pause(&self, id: &str) -> Result<(), ShimError> {
        let mut container = self.load(id)?;
        container.pause().map_err(|e| lc_error("pause", id, e))
    }

    fn resume(&self, id: &str) -> Result<(), ShimError> {
        let mut container = self.load(id)?;
        container.resume().map_err(|e| lc_error("resume", id, e))
    }

    fn pids(&self, id: &str) -> Result<Vec<u32>, ShimError> {
        let container = self.load(id)?;
        let mut pids: Vec<u32> = self
            .cgroup_manager(&container)?
            .get_all_pids()
            .map_err(|e| cgroup_error("list processes", id, &e))?
            .into_iter()
            .map(pid_u32)
            .collect();
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn update(&self, id: &str, resources: &LinuxResources) -> Result<(), ShimError> {
        let container = self.load(id)?;
        let disable_oom_killer = resources
            .memory()
            .as_ref()
            .and_then(|m| m.disable_oom_killer())
            .unwrap_or(false);
        self.cgroup_manager(&container)?
            .apply(&ControllerOpt {
                resources,
                disable_oom_killer,
                oom_score_adj: None,
                freezer_state: None,
            })
            .map_err(|e| cgroup_error("update resources", id, &e))
    }
}

impl LibcontainerRuntime {
    /// Signals every process in the container's cgroup, frozen meanwhile so none can
    /// fork away; a paused container stays paused unless the signal is SIGKILL.
    fn kill_all(&self, container: &Container, signal: Signal) -> Result<(), ShimError> {
        let id = container.id();
        let manager = self.cgroup_manager(container)?;
        let was_paused = container.status() == ContainerStatus::Paused;
        if !was_paused {
            // Best effort: without a freezer the signals still go out.
            let _ = manager.freeze(FreezerState::Frozen);
        }
        let result = manager
            .get_all_pids()
            .map_err(|e| cgroup_error("list processes", id, &e))
            .and_then(|pids| {
                pids.into_iter()
                    .try_for_each(|pid| signal_pid(pid, signal))
                    .map_err(|e| errno_error("kill", id, e))
            });
        if !was_paused || signal == Signal::SIGKILL {
            manager
                .freeze(FreezerState::Thawed)
                .map_err(|e| cgroup_error("thaw", id, &e))?;
        }
        result
    }
}

/// The builder settings create and exec share. Runs in the helper.
fn base_builder(
    id: &str,
    root: &Path,
    pid_file: &Path,
    terminal: bool,
    console_socket: Option<PathBuf>,
    stdio: Stdio,
) -> Result<ContainerBuilder, String> {
    let mut builder = ContainerBuilder::new(id.to_owned(), SyscallType::Linux)
        .validate_id()
        .map_err(|e| chain(&e))?
        .with_root_path(root)
        .map_err(|e| chain(&e))?
        .with_pid_file(Some(pid_file))
        .map_err(|e| chain(&e))?;
    if terminal {
        // The pty becomes the process's stdio; libcontainer sends its master here.
        let socket = console_socket.ok_or_else(|| {
            "the process wants a terminal but no console socket was given".to_owned()
        })?;
        builder = builder.with_console_socket(Some(socket));
    } else {
        let stdio = stdio::prepare(stdio)?;
        builder = builder
            .with_stdin(stdio.stdin)
            .with_stdout(stdio.stdout)
            .with_stderr(stdio.stderr);
    }
    Ok(builder)
}

/// process.json for one exec, removed when dropped.
struct ProcessFile {
    path: PathBuf,
}

impl ProcessFile {
    fn write(state_dir: &Path, process: &oci_spec::runtime::Process) -> Result<Self, ShimError> {
        let json = serde_json::to_vec(process).map_err(|e| ShimError::Io {
            context: "serialise the exec process".to_owned(),
            source: std::io::Error::other(e),
        })?;
        // Unique per call: several execs may be created at once.
        let path = state_dir.join(format!(
            "exec-process-{}-{}.json",
            std::process::id(),
            next_sequence()
        ));
        fs::write(&path, json).map_err(|source| ShimError::Io {
            context: format!("write exec process file {}", path.display()),
            source,
        })?;
        Ok(ProcessFile { path })
    }
}

impl Drop for ProcessFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn next_sequence() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    SEQUENCE.fetch_add(1, Ordering::Relaxed)
}

/// Whether the bundle's process asks for a terminal (decides console socket vs pipes).
fn spec_terminal(bundle: &Path) -> Result<bool, ShimError> {
    let path = bundle.join("config.json");
    let spec = Spec::load(&path).map_err(|e| ShimError::RuntimeInvalidBundle {
        path: path.display().to_string(),
        message: chain(&e),
    })?;
    Ok(spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false))
}

fn absolute(what: &'static str, path: &Path) -> Result<PathBuf, ShimError> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Err(ShimError::RuntimeRelativePath {
            what,
            path: path.display().to_string(),
        })
    }
}

/// Sends a signal; a process that is already gone is what the caller wanted.
fn signal_pid(pid: Pid, signal: Signal) -> Result<(), Errno> {
    match nix::sys::signal::kill(pid, signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

fn pid_u32(pid: Pid) -> u32 {
    u32::try_from(pid.as_raw()).unwrap_or(0)
}

fn wrong_state(op: &'static str, id: &str, status: ContainerStatus) -> ShimError {
    ShimError::RuntimeWrongState {
        op,
        id: id.to_owned(),
        status: status.to_string().to_lowercase(),
    }
}

fn lc_error(op: &'static str, id: &str, err: LibcontainerError) -> ShimError {
    match err {
        LibcontainerError::IncorrectStatus(status) => wrong_state(op, id, status),
        err => ShimError::Libcontainer {
            op,
            id: id.to_owned(),
            message: chain(&err),
        },
    }
}

fn cgroup_error(op: &'static str, id: &str, err: &dyn StdError) -> ShimError {
    ShimError::Libcontainer {
        op,
        id: id.to_owned(),
        message: chain(err),
    }
}

fn errno_error(op: &'static str, id: &str, err: Errno) -> ShimError {
    ShimError::Libcontainer {
        op,
        id: id.to_owned(),
        message: err.desc().to_lowercase(),
    }
}

/// An error and its sources in one line: libcontainer's top-level messages alone are
/// vague ("failed to create container").
fn chain(err: &dyn StdError) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_leave_the_state_root() {
        let runtime = LibcontainerRuntime::new(PathBuf::from("/run/skiff/libcontainer"));
        for bad in ["", ".", "..", "../x", "a/b", "a b", "x\0"] {
            let err = runtime.state_dir(bad).unwrap_err();
            assert!(matches!(err, ShimError::RuntimeInvalidId { .. }), "{bad:?}");
        }
        assert_eq!(
            runtime.state_dir("0a1b-c_d+e.f").unwrap(),
            Path::new("/run/skiff/libcontainer/0a1b-c_d+e.f")
        );
    }

    #[test]
    fn relative_paths_are_refused() {
        let runtime = LibcontainerRuntime::new(PathBuf::from("relative/root"));
        let err = runtime.ensure_root().unwrap_err();
        assert!(matches!(err, ShimError::RuntimeInvalidRoot { .. }), "{err}");
        let err = absolute("bundle", Path::new("bundle")).unwrap_err();
        assert!(err.to_string().contains("absolute"), "{err}");
    }

    #[test]
    fn operations_on_an_unknown_container_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = LibcontainerRuntime::new(dir.path().to_path_buf());
        for err in [
            runtime.start("nope").unwrap_err(),
            runtime.kill("nope", libc::SIGTERM, false).unwrap_err(),
            runtime.pause("nope").unwrap_err(),
            runtime.pids("nope").unwrap_err(),
        ] {
            assert!(
                matches!(err, ShimError::RuntimeContainerNotFound { .. }),
                "{err}"
            );
        }
        // Deleting what is not there is fine: cleanup must always be possible.
        runtime.delete("nope", false).unwrap();
    }

    #[test]
    fn error_chains_keep_every_cause_once() {
        let inner = std::io::Error::other("permission denied");
        let outer = LibcontainerError::OtherIO(inner);
        let text = chain(&outer);
        assert!(text.contains("permission denied"), "{text}");
        assert_eq!(text.matches("permission denied").count(), 1, "{text}");
    }
}
