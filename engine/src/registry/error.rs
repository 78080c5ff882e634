//! The registry client's error type. Every message says what went wrong and what to do.

use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What class of failure an [`Error`] is; the API layer maps it to an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Unauthorized,
    InvalidArgument,
    Unavailable,
    Internal,
}

#[derive(Debug, Error)]
pub enum Error {
    /// A reference that distribution/reference would reject; text as docker prints it.
    #[error("{0}")]
    InvalidReference(String),
    /// A bad platform string, an unsupported media type, a bad configuration value.
    #[error("{0}")]
    InvalidArgument(String),
    /// Manifest, blob or repository unknown; no manifest for the platform.
    #[error("{0}")]
    NotFound(String),
    /// The registry (or its token server) refused the credentials or the access.
    #[error("{0}")]
    Unauthorized(String),
    /// Connection refused, TLS failure, timeouts, 5xx after retries, too many requests.
    #[error("{0}")]
    Unavailable(String),
    /// Content that does not match its digest.
    #[error("{what} verification failed: expected digest {expected}, the registry sent content with digest {actual}; the registry or a proxy in between corrupts data, try again or use another registry")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// Anything the registry sent that is not what the protocol says (malformed JSON, bad
    /// headers), and failures inside skiff.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidReference(_) | Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Unauthorized(_) => ErrorKind::Unauthorized,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::DigestMismatch { .. } | Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Worth trying again (or trying the next endpoint): the failure was on the way, not an
    /// answer about the content.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }
}
