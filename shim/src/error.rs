//! The crate's one error type. Stand-in on the `libcontainer` branch: helper A's error.rs
//! wins at merge; the variants between the marker comments move into it.

/// Coarse classes of task errors (same names as helper A's error.rs, so the arms below
/// move over unchanged): the engine maps them, e.g. NotFound -> 404,
/// FailedPrecondition -> 409.
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
        source: std::io::Error,
    },

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
    pub fn task_kind(&self) -> TaskErrorKind {
        match self {
            ShimError::Io { .. } => TaskErrorKind::Internal,
            // --- libcontainer variants (helper B) ---
            ShimError::RuntimeContainerNotFound { .. } => TaskErrorKind::NotFound,
            ShimError::RuntimeWrongState { .. } => TaskErrorKind::FailedPrecondition,
            ShimError::RuntimeInvalidId { .. }
            | ShimError::RuntimeInvalidRoot { .. }
            | ShimError::RuntimeRelativePath { .. }
            | ShimError::RuntimeInvalidBundle { .. }
            | ShimError::RuntimeInvalidSignal { .. } => TaskErrorKind::InvalidArgument,
            ShimError::Libcontainer { .. } | ShimError::RuntimeHelper { .. } => {
                TaskErrorKind::Internal
            }
        }
    }
}
