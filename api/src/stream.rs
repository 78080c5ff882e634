//! What backends stream through: JSON progress messages, tar bytes out, request bytes in.
//!
//! Cancellation: a backend's future is never spawned. The HTTP response body itself polls it
//! (see `drive`), so when the client goes away hyper drops the body, which drops the future:
//! a pull or save is cancelled at its next `.await`, with no token to check.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use crate::error::ApiError;

/// Messages buffered between a backend and a slow client before the backend waits.
pub const STREAM_BUFFER: usize = 32;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressDetail {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub message: String,
}

/// One line of a JSON-lines stream (moby's `jsonmessage.JSONMessage`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(
        rename = "progressDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub progress_detail: Option<ProgressDetail>,
    /// The rendered bar, e.g. `[==>   ] 1.2MB/3.4MB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(
        rename = "errorDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub error_detail: Option<ErrorDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<Value>,
}

impl ProgressMessage {
    /// `{"status": ..., "id": ...}`, e.g. `("Pull complete", Some(layer))`.
    pub fn status(status: impl Into<String>, id: Option<&str>) -> Self {
        ProgressMessage {
            status: Some(status.into()),
            id: id.map(str::to_string),
            ..Default::default()
        }
    }
    /// A byte-progress line such as `Downloading 1234/5678`.
    pub fn progress(status: impl Into<String>, id: &str, current: i64, total: i64) -> Self {
        ProgressMessage {
            status: Some(status.into()),
            id: Some(id.to_string()),
            progress_detail: Some(ProgressDetail { current, total }),
            ..Default::default()
        }
    }
    /// `{"stream": "Loaded image: x\n"}`.
    pub fn stream(text: impl Into<String>) -> Self {
        ProgressMessage {
            stream: Some(text.into()),
            ..Default::default()
        }
    }
    /// `{"aux": {...}}`, e.g. `{"ID": "sha256:..."}` or `{"Digest": ...}`.
    pub fn aux(value: Value) -> Self {
        ProgressMessage {
            aux: Some(value),
            ..Default::default()
        }
    }
    /// The in-stream error line: `{"errorDetail":{"message":m},"error":m}`.
    pub fn error(message: impl Into<String>) -> Self {
        let message = message.into();
        ProgressMessage {
            error_detail: Some(ErrorDetail {
                message: message.clone(),
            }),
            error: Some(message),
            ..Default::default()
        }
    }
    /// The message as one JSON line (with its trailing newline).
    pub fn to_line(&self) -> Bytes {
        let mut v = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        v.push(b'\n');
        Bytes::from(v)
    }
}

/// Where a backend sends progress. Cloneable; sending waits while the client is slow.
#[derive(Debug, Clone)]
pub struct Progress {
    tx: mpsc::Sender<ProgressMessage>,
}

impl Progress {
    pub fn channel() -> (Progress, mpsc::Receiver<ProgressMessage>) {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        (Progress { tx }, rx)
    }

    /// Sends one message; fails only when the client has gone (the caller is then usually
    /// being dropped anyway).
    pub async fn send(&self, msg: ProgressMessage) -> Result<(), ApiError> {
        self.tx
            .send(msg)
            .await
            .map_err(|_| ApiError::unavailable("the client closed the connection"))
    }

    pub async fn status(
        &self,
        status: impl Into<String>,
        id: Option<&str>,
    ) -> Result<(), ApiError> {
        self.send(ProgressMessage::status(status, id)).await
    }

    /// True once the client has gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// The request body (e.g. the tar of `POST /images/load`) as an `AsyncRead`.
pub struct BodyReader {
    inner: Pin<Box<dyn AsyncRead + Send>>,
}

impl BodyReader {
    pub fn new(reader: impl AsyncRead + Send + 'static) -> Self {
        BodyReader {
            inner: Box::pin(reader),
        }
    }
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyReader")
    }
}

impl AsyncRead for BodyReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.inner.as_mut().poll_read(cx, buf)
    }
}

/// Where `save` writes its tar stream. Each write becomes one HTTP chunk, so wrap it in a
/// buffer (`tokio::io::BufWriter`, flushed before returning; or `std::io::BufWriter` around
/// [`TarWriter::into_blocking`]) when writing small pieces.
#[derive(Debug)]
pub struct TarWriter {
    tx: PollSender<Bytes>,
}

impl TarWriter {
    pub fn channel() -> (TarWriter, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        (
            TarWriter {
                tx: PollSender::new(tx),
            },
            rx,
        )
    }

    /// Sends one chunk as is (no copy).
    pub async fn send(&mut self, chunk: Bytes) -> Result<(), ApiError> {
        let tx = self
            .tx
            .get_ref()
            .ok_or_else(|| ApiError::unavailable("the tar stream is already closed"))?
            .clone();
        tx.send(chunk)
            .await
            .map_err(|_| ApiError::unavailable("the client closed the connection"))
    }

    /// A `std::io::Write` for producers running in `tokio::task::spawn_blocking` (e.g. the
    /// `tar` crate). Must not be used on an async worker thread.
    pub fn into_blocking(self) -> Result<BlockingTarWriter, ApiError> {
        let tx = self
            .tx
            .get_ref()
            .ok_or_else(|| ApiError::unavailable("the tar stream is already closed"))?
            .clone();
        Ok(BlockingTarWriter { tx })
    }
}

fn client_gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the client closed the connection",
    )
}

impl AsyncWrite for TarWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match self.tx.poll_reserve(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(Err(client_gone())),
            Poll::Ready(Ok(())) => {}
        }
        self.tx
            .send_item(Bytes::copy_from_slice(buf))
            .map_err(|_| client_gone())?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // nothing is held here: every write is already in the channel
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx.close();
        Poll::Ready(Ok(()))
    }
}

/// Blocking half of [`TarWriter`].
#[derive(Debug)]
pub struct BlockingTarWriter {
    tx: mpsc::Sender<Bytes>,
}

impl io::Write for BlockingTarWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.tx
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| client_gone())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An instant on the API (`since`/`until` of logs and events), UTC with nanoseconds.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Which standard stream a chunk of output came from (the multiplexed frame's first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StdStream {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
}

/// One chunk of container output for `logs`: the route frames it (no tty) or writes
/// `data` as is (tty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFrame {
    pub stream: StdStream,
    /// With `timestamps`, already prefixed by the backend (`2026-...Z ` per line).
    pub data: Bytes,
}

/// What `logs` returns: the container's tty setting and its output. The stream ends when the
/// logs are drained (no follow) or the container stopped (follow); an `Err` item aborts the
/// body. Dropping it (client gone) must stop any follow.
pub struct LogStream {
    pub tty: bool,
    pub frames: futures::stream::BoxStream<'static, Result<LogFrame, ApiError>>,
}

impl std::fmt::Debug for LogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStream").field("tty", &self.tty).finish()
    }
}

/// Events for `GET /events`, already filtered; the response ends when the stream does.
pub type EventStream = futures::stream::BoxStream<'static, crate::types::event::EventMessage>;

/// Where `stats` sends its JSON documents (the shape of dockerd's `StatsResponse`, built by
/// the engine). Sending waits while the client is slow and fails once it has gone.
#[derive(Debug, Clone)]
pub struct StatsSender {
    tx: mpsc::Sender<Value>,
}

impl StatsSender {
    pub fn channel() -> (StatsSender, mpsc::Receiver<Value>) {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        (StatsSender { tx }, rx)
    }

    pub async fn send(&self, stats: Value) -> Result<(), ApiError> {
        self.tx
            .send(stats)
            .await
            .map_err(|_| ApiError::unavailable("the client closed the connection"))
    }

    /// True once the client has gone (stop sampling).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}
