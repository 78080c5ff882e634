//! Streaming a layer blob: bytes are handed out as they arrive; a dropped connection or a
//! short body resumes with `Range: bytes=N-` (bounded retries, exponential backoff).

use std::io;
use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;
use http::StatusCode;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::io::AsyncRead;
use tokio_util::io::StreamReader;

use super::client::{backoff, describe, Repository};
use super::error::{Error, Result};
use super::manifest::Descriptor;
use super::transport::BODY_IDLE_TIMEOUT;

/// Consecutive failures (without a byte of progress in between) before a blob pull gives up.
pub const MAX_RESUME_ATTEMPTS: u32 = 5;

/// A blob body as `AsyncRead`. Never yields more than the descriptor's size; the digest is
/// the reader's to verify. Errors arrive as `io::Error` wrapping a registry [`Error`]
/// (get it back with [`blob_error`]).
pub type BlobReader = StreamReader<Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>, Bytes>;

/// The registry [`Error`] inside an `io::Error` from a [`BlobReader`], if any.
pub fn blob_error(e: &io::Error) -> Option<&Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<Error>())
}

impl Repository {
    /// Streams the blob `desc` names. The request is made on the first read.
    pub fn blob_stream(&self, desc: &Descriptor) -> BlobReader {
        let state = BlobState {
            repo: self.clone(),
            desc: desc.clone(),
            what: format!("blob {} of {}", desc.digest, self.reference().name()),
            offset: 0,
            body: None,
            failures: 0,
        };
        let stream = futures::stream::unfold(Some(state), |st| async move {
            let mut st = st?;
            match st.next_chunk().await {
                Ok(Some(b)) => Some((Ok(b), Some(st))),
                Ok(None) => None,
                Err(e) => Some((Err(io::Error::other(e)), None)),
            }
        });
        let boxed: Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>> = Box::pin(stream);
        StreamReader::new(boxed)
    }
}

// Assert the reader can cross tasks (the store extracts on another task).
const _: fn() = || {
    fn is_send_read<T: AsyncRead + Send + Unpin>() {}
    is_send_read::<BlobReader>();
};

struct BlobState {
    repo: Repository,
    desc: Descriptor,
    what: String,
    /// Bytes handed out so far.
    offset: u64,
    body: Option<Incoming>,
    /// Consecutive failures since the last byte of progress.
    failures: u32,
}

enum OpenError {
    /// Worth another try after a pause.
    Retry(Error),
    /// Trying again cannot help.
    Fatal(Error),
}

impl BlobState {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            if self.offset == self.desc.size {
                self.body = None;
                return Ok(None);
            }
            let Some(body) = self.body.as_mut() else {
                match self.open().await {
                    Ok(b) => self.body = Some(b),
                    Err(OpenError::Fatal(e)) => return Err(e),
                    Err(OpenError::Retry(e)) => self.failed(e).await?,
                }
                continue;
            };
            let why = match tokio::time::timeout(BODY_IDLE_TIMEOUT, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    let remaining = self.desc.size - self.offset;
                    if data.len() as u64 > remaining {
                        self.body = None;
                        return Err(Error::Unavailable(format!(
                            "{}: the registry sent more than the {} bytes the manifest says; the registry is broken or the manifest is wrong",
                            self.what, self.desc.size
                        )));
                    }
                    self.offset += data.len() as u64;
                    self.failures = 0;
                    return Ok(Some(data));
                }
                Ok(Some(Err(e))) => format!("connection lost: {}", describe(&e)),
                Ok(None) => format!(
                    "the body ended after {} of {} bytes",
                    self.offset, self.desc.size
                ),
                Err(_) => format!("no data for {}s", BODY_IDLE_TIMEOUT.as_secs()),
            };
            self.body = None;
            tracing::debug!(blob = %self.desc.digest, offset = self.offset, %why, "blob transfer interrupted, resuming");
            self.failed(Error::Unavailable(format!("{}: {why}", self.what)))
                .await?;
        }
    }

    /// Counts a failure: waits before the next try, or gives up after too many.
    async fn failed(&mut self, e: Error) -> Result<()> {
        self.failures += 1;
        if self.failures > MAX_RESUME_ATTEMPTS {
            return Err(Error::Unavailable(format!(
                "{e}; gave up after {MAX_RESUME_ATTEMPTS} attempts to resume at byte {}; check the network and pull again",
                self.offset
            )));
        }
        tokio::time::sleep(backoff(self.failures)).await;
        Ok(())
    }

    /// Requests the rest of the blob from `self.offset` on.
    async fn open(&mut self) -> std::result::Result<Incoming, OpenError> {
        let offset = (self.offset > 0).then_some(self.offset);
        let resp = match self
            .repo
            .get_blob(&self.desc.digest, offset, &self.what)
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_transient() => return Err(OpenError::Retry(e)),
            Err(e) => return Err(OpenError::Fatal(e)),
        };
        match (offset, resp.status()) {
            (None, StatusCode::OK) => Ok(resp.into_body()),
            (Some(o), StatusCode::PARTIAL_CONTENT) => {
                let start = resp
                    .headers()
                    .get(http::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(content_range_start);
                if start == Some(o) {
                    Ok(resp.into_body())
                } else {
                    Err(OpenError::Fatal(Error::Unavailable(format!(
                        "{}: asked to resume at byte {o}, the registry answered with Content-Range {:?}; pull again",
                        self.what,
                        resp.headers().get(http::header::CONTENT_RANGE)
                    ))))
                }
            }
            (Some(o), StatusCode::OK) => Err(OpenError::Fatal(Error::Unavailable(format!(
                "{}: the connection dropped at byte {o} and the registry ignores Range requests, so the transfer cannot resume; pull again",
                self.what
            )))),
            (_, status) => Err(OpenError::Fatal(Error::Internal(format!(
                "{}: unexpected status {status} from the registry",
                self.what
            )))),
        }
    }
}

/// The first byte position of `Content-Range: bytes START-END/TOTAL`.
fn content_range_start(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    rest.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_range() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes 0-0/1"), Some(0));
        assert_eq!(content_range_start("bytes */200"), None);
        assert_eq!(content_range_start("items 1-2/3"), None);
    }
}
