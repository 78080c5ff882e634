//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Coarse classes of task errors carried over ttrpc, so the engine can map them
/// (e.g. `NotFound` -> 404, `FailedPrecondition` -> 409).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskErrorKind {
    NotFound,
    InvalidArgument,
    FailedPrecondition,
    AlreadyExists,
    Unimplemented,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },
    #[error("invalid JSON in {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{runtime} {op} failed: {message}")]
    Runtime {
        runtime: String,
        op: &'static str,
        message: String,
    },
    #[error("the embedded libcontainer runtime is not linked into this build yet; use a runc or crun runtime")]
    RuntimeUnavailable,
    #[error("{message}")]
    Task {
        kind: TaskErrorKind,
        message: String,
    },
    #[error("shim {method} call failed: {message}")]
    Rpc {
        method: &'static str,
        kind: TaskErrorKind,
        message: String,
    },
    #[error("cannot reach the shim at {path}: {message}; the shim exited or was never started")]
    Unreachable { path: PathBuf, message: String },
    /// Docker says "failed to create shim task: OCI runtime create failed: ..." here.
    #[error("failed to create shim task: {0}")]
    Launch(String),
    #[error("invalid shim arguments: {0}")]
    Usage(String),
    // --- libcontainer variants (helper B) ---
    /// The state root has no container with this id.
    #[error("container {id} does not exist in the runtime state root {root}; create it first")]
    RuntimeContainerNotFound { id: String, root: String },
    /// The operation does not fit the container's current state (e.g. start twice).
    #[error("cannot {op} container {id}: it is {status}")]
    RuntimeWrongState {
        op: &'static str,
        id: String,
        status: String,
    },
    #[error("invalid container id {id:?}: use letters, digits, '_', '+', '-' and '.'")]
    RuntimeInvalidId { id: String },
    #[error("runtime state root {root:?} must be an absolute path")]
    RuntimeInvalidRoot { root: String },
    #[error("{what} {path:?} must be an absolute path")]
    RuntimeRelativePath { what: &'static str, path: String },
    #[error("invalid bundle config {path}: {message}")]
    RuntimeInvalidBundle { path: String, message: String },
    #[error("cannot send signal {signal} to container {id}: not a valid signal number")]
    RuntimeInvalidSignal { signal: i32, id: String },
    /// libcontainer reported an error.
    #[error("libcontainer {op} of container {id} failed: {message}")]
    Libcontainer {
        op: &'static str,
        id: String,
        message: String,
    },
    /// The forked helper that runs libcontainer's create/exec failed before reporting.
    #[error("runtime helper for {op} of container {id} failed: {message}")]
    RuntimeHelper {
        op: &'static str,
        id: String,
        message: String,
    },
    // --- end of libcontainer variants ---
}

impl ShimError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        ShimError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn sys(context: impl Into<String>, source: nix::Error) -> Self {
        ShimError::Sys {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn task(kind: TaskErrorKind, message: impl Into<String>) -> Self {
        ShimError::Task {
            kind,
            message: message.into(),
        }
    }

    /// The task error class, for errors that came back from (or are sent by) the shim.
    pub fn task_kind(&self) -> TaskErrorKind {
        match self {
            ShimError::Task { kind, .. } | ShimError::Rpc { kind, .. } => *kind,
            ShimError::Json { .. } | ShimError::Usage(_) => TaskErrorKind::InvalidArgument,
            ShimError::RuntimeContainerNotFound { .. } => TaskErrorKind::NotFound,
            ShimError::RuntimeWrongState { .. } => TaskErrorKind::FailedPrecondition,
            ShimError::RuntimeInvalidId { .. }
            | ShimError::RuntimeInvalidRoot { .. }
            | ShimError::RuntimeRelativePath { .. }
            | ShimError::RuntimeInvalidBundle { .. }
            | ShimError::RuntimeInvalidSignal { .. } => TaskErrorKind::InvalidArgument,
            _ => TaskErrorKind::Internal,
        }
    }

    /// True when the shim said the task or exec process does not exist.
    pub fn is_not_found(&self) -> bool {
        self.task_kind() == TaskErrorKind::NotFound
    }
}
