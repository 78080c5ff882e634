//! The harness's one error type: every failure says what broke and where to look.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed ({status}); stderr:\n{stderr}")]
    Command {
        what: String,
        status: String,
        stderr: String,
    },
    #[error(
        "{what} did not finish within {secs} s; raise SKIFF_TEST_TIMEOUT if the machine is slow"
    )]
    Timeout { what: String, secs: u64 },
    #[error(
        "skiff binary not found at {0}; build it with `cargo build -p skiff` or set SKIFF_BIN"
    )]
    BinaryMissing(PathBuf),
    #[error("{what} did not come up: {why}\n--- last log lines ({log}) ---\n{tail}")]
    NotReady {
        what: String,
        why: String,
        log: String,
        tail: String,
    },
    #[error("bad HTTP response: {0}")]
    Http(String),
    #[error("invalid JSON from {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("sentinel {dir} was touched: {what}; something escaped its root")]
    SentinelTouched { dir: PathBuf, what: String },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, HarnessError>;

/// Shorthand for wrapping io errors with what was being done.
pub(crate) trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| HarnessError::Io {
            what: what(),
            source,
        })
    }
}
