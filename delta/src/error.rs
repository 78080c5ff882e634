//! The crate's one error type.

use std::io;

/// Broad class of an error, so callers (the API layer) can map it to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidArgument,
    Conflict,
    Unavailable,
    Internal,
}

/// Everything that can go wrong while creating, applying or inspecting a delta.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error("i/o error while {context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("not a skiff delta (bad magic); check that the file is a delta made by `skiff delta create`")]
    BadMagic,
    #[error("delta format version {0} is not supported (this build reads version {1}); upgrade skiff or recreate the delta")]
    UnsupportedVersion(u8, u8),
    #[error("delta is corrupt: {0}; recreate it or fall back to a full pull")]
    Corrupt(String),
    #[error("delta needs base layer {layer} file '{path}' which is missing: {source}; the local base image differs from the one the delta was made for, pull the full image instead")]
    BaseMissing {
        layer: usize,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("base layer {layer} file '{path}' does not match the delta ({detail}); the local base image differs from the one the delta was made for, pull the full image instead")]
    BaseMismatch {
        layer: usize,
        path: String,
        detail: String,
    },
    #[error("delta references base layer {layer} but only {count} base layers were given; pass every layer of the base image, bottom to top")]
    BaseLayerOutOfRange { layer: usize, count: usize },
    #[error("rebuilt layer does not match the delta's target ({detail}); the base image differs from the one the delta was made for, pull the full image instead")]
    TargetMismatch { detail: String },
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl DeltaError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DeltaError::Io { .. } => ErrorKind::Internal,
            DeltaError::BadMagic
            | DeltaError::UnsupportedVersion(..)
            | DeltaError::Corrupt(_)
            | DeltaError::InvalidInput(_) => ErrorKind::InvalidArgument,
            DeltaError::BaseMissing { .. } | DeltaError::BaseLayerOutOfRange { .. } => {
                ErrorKind::NotFound
            }
            DeltaError::BaseMismatch { .. } | DeltaError::TargetMismatch { .. } => {
                ErrorKind::Conflict
            }
        }
    }

    pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> DeltaError {
        move |source| DeltaError::Io { context, source }
    }

    pub(crate) fn corrupt(msg: impl Into<String>) -> DeltaError {
        DeltaError::Corrupt(msg.into())
    }
}

/// Result alias for this crate.
pub type Result<T, E = DeltaError> = std::result::Result<T, E>;
