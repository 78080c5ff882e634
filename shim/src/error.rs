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
            _ => TaskErrorKind::Internal,
        }
    }

    /// True when the shim said the task or exec process does not exist.
    pub fn is_not_found(&self) -> bool {
        self.task_kind() == TaskErrorKind::NotFound
    }
}
