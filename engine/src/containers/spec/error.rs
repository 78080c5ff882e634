//! The spec module's error type and its mapping to API error kinds.

use skiff_api::ErrorKind;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SpecError {
    /// The request cannot be turned into a runnable container (HTTP 400).
    #[error("{0}")]
    InvalidArgument(String),
    /// Reading the container's rootfs or the host failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A bug or an unexpected host state, e.g. the embedded seccomp profile does not parse.
    #[error("{0}")]
    Internal(String),
}

impl SpecError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SpecError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            SpecError::Io { .. } | SpecError::Internal(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        SpecError::InvalidArgument(message.into())
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SpecError::Io {
            context: context.into(),
            source,
        }
    }
}

/// oci-spec builders fail only on missing required fields, i.e. on our bugs.
impl From<oci_spec::OciSpecError> for SpecError {
    fn from(e: oci_spec::OciSpecError) -> Self {
        SpecError::Internal(format!("building the oci spec failed: {e}"))
    }
}
