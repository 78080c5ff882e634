//! The OCI runtime behind the shim. Stand-in on the `libcontainer` branch with exactly the
//! shared contract; helper A's mod.rs replaces this file at merge.

pub mod libcontainer;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ShimError;

/// The container process's stdio when it has no terminal.
#[derive(Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

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

pub struct ExecOptions<'a> {
    pub id: &'a str,
    pub process: &'a oci_spec::runtime::Process,
    pub stdio: Stdio,
    pub console_socket: Option<&'a Path>,
    pub pid_file: &'a Path,
}

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
            RuntimeConfig::Libcontainer { root } => Ok(Box::new(
                libcontainer::LibcontainerRuntime::new(root.clone()),
            )),
            RuntimeConfig::Cli { path, .. } => Err(ShimError::Io {
                context: format!("runtime {}", path.display()),
                source: std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "the cli runtime lives on the shim branch",
                ),
            }),
        }
    }
}
