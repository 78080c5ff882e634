//! The crate's one error type and its coarse `kind()` for the API layer.

use std::io;

/// Coarse error classes; the engine maps them to HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidArgument,
    Conflict,
    NotModified,
    Unavailable,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex digits>")]
    InvalidDigest(String),
    #[error("{what} digest mismatch: expected {expected}, got {actual}; the data is corrupt or was tampered with, fetch it again")]
    DigestMismatch {
        what: &'static str,
        expected: String,
        actual: String,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("invalid layer tar: {0}")]
    InvalidLayer(String),
    #[error("unsafe layer entry {path:?}: {reason}; the image is malformed or malicious")]
    UnsafePath { path: String, reason: String },
    #[error("unsupported layer media type {0:?}: expected an OCI or Docker layer tar (plain, gzip or zstd)")]
    UnsupportedMediaType(String),
    #[error("layer compression mismatch: media type says {declared}, data is {detected}")]
    CompressionMismatch {
        declared: &'static str,
        detected: &'static str,
    },
    #[error("unsupported layer compression {0}: only gzip, zstd and plain tar are supported")]
    UnsupportedCompression(&'static str),
    #[error("layer too large: {0}; raise the store limits if the image is trusted")]
    TooLarge(String),
    #[error("layer extraction cancelled")]
    Cancelled,
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("corrupt store metadata {path}: {message}; run `skiff check`")]
    Corrupt { path: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::InvalidDigest(_)
            | Error::DigestMismatch { .. }
            | Error::InvalidLayer(_)
            | Error::UnsafePath { .. }
            | Error::UnsupportedMediaType(_)
            | Error::CompressionMismatch { .. }
            | Error::UnsupportedCompression(_)
            | Error::TooLarge(_)
            | Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Cancelled => ErrorKind::Unavailable,
            Error::Corrupt { .. } | Error::Io { .. } => ErrorKind::Internal,
        }
    }

    /// Wrap an io error with what we were doing. If the io error carries one of our own
    /// errors (raised inside a reader chain), that error is returned unchanged.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        match unwrap_inner(source) {
            Ok(e) => e,
            Err(source) => Error::Io {
                context: context.into(),
                source,
            },
        }
    }

    pub(crate) fn nix(context: impl Into<String>, errno: nix::errno::Errno) -> Error {
        Error::Io {
            context: context.into(),
            source: io::Error::from(errno),
        }
    }

    /// Carry this error through an `io::Read` chain (decoders pass inner errors through).
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::other(self)
    }
}

fn unwrap_inner(e: io::Error) -> std::result::Result<Error, io::Error> {
    if e.get_ref().is_some_and(|i| i.is::<Error>()) {
        let kind = e.kind();
        match e.into_inner().map(|b| b.downcast::<Error>()) {
            Some(Ok(inner)) => return Ok(*inner),
            Some(Err(other)) => return Err(io::Error::new(kind, other)),
            None => return Err(io::Error::from(kind)),
        }
    }
    Err(e)
}

pub type Result<T> = std::result::Result<T, Error>;
