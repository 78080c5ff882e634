//! The OCI runtime behind a task: runc/crun by command line, or youki's libcontainer
//! embedded in the shim.

mod cli;
pub mod libcontainer;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ShimError;

pub use cli::CliRuntime;

/// The container's standard streams when it has no terminal; `None` means /dev/null.
#[derive(Debug, Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

#[derive(Debug)]
pub struct CreateOptions<'a> {
    pub id: &'a str,
    /// Absolute; holds config.json and rootfs/.
    pub bundle: &'a Path,
    /// Used when the process has no terminal.
    pub stdio: Stdio,
    /// When process.terminal: the runtime sends the pty master here (SCM_RIGHTS, as runc
    /// --console-socket).
    pub console_socket: Option<&'a Path>,
    pub pid_file: &'a Path,
}

#[derive(Debug)]
pub struct ExecOptions<'a> {
    pub id: &'a str,
    pub process: &'a oci_spec::runtime::Process,
    pub stdio: Stdio,
    pub console_socket: Option<&'a Path>,
    pub pid_file: &'a Path,
}

/// One OCI runtime. The shim reaps children itself (it is a child subreaper): implementations
/// must not waitpid on the container init or exec pids.
pub trait Runtime: Send + Sync {
    /// Creates the container (init waiting for start). Returns the init pid.
    fn create(&self, opts: CreateOptions<'_>) -> Result<u32, ShimError>;
    fn start(&self, id: &str) -> Result<(), ShimError>;
    /// Starts an extra process in the running container (detached); returns its pid.
    fn exec(&self, opts: ExecOptions<'_>) -> Result<u32, ShimError>;
    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), ShimError>;
    fn delete(&self, id: &str, force: bool) -> Result<(), ShimError>;
    fn pause(&self, id: &str) -> Result<(), ShimError>;
    fn resume(&self, id: &str) -> Result<(), ShimError>;
    fn pids(&self, id: &str) -> Result<Vec<u32>, ShimError>;
    fn update(
        &self,
        id: &str,
        resources: &oci_spec::runtime::LinuxResources,
    ) -> Result<(), ShimError>;
}

/// Which runtime a container uses; serialisable (the engine stores it, the shim gets it as JSON).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RuntimeConfig {
    /// State root, e.g. /run/skiff/libcontainer.
    Libcontainer { root: PathBuf },
    /// runc/crun: `path --root root args... <cmd>`.
    Cli {
        path: PathBuf,
        args: Vec<String>,
        root: PathBuf,
    },
}

impl RuntimeConfig {
    pub fn build(&self) -> Result<Box<dyn Runtime>, ShimError> {
        match self {
            RuntimeConfig::Cli { path, args, root } => Ok(Box::new(CliRuntime::new(
                path.clone(),
                args.clone(),
                root.clone(),
            ))),
            RuntimeConfig::Libcontainer { root } => Ok(Box::new(
                libcontainer::LibcontainerRuntime::new(root.clone()),
            )),
        }
    }
}

/// Reads the pid a runtime wrote to its pid file.
pub(crate) fn read_pid_file(path: &Path) -> Result<u32, ShimError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ShimError::io(format!("read pid file {}", path.display()), e))?;
    text.trim().parse::<u32>().map_err(|_| {
        ShimError::io(
            format!(
                "pid file {} holds {:?}, not a pid",
                path.display(),
                text.trim()
            ),
            std::io::Error::from(std::io::ErrorKind::InvalidData),
        )
    })
}
