//! The raw duplex connection of attach and exec start, after `101 UPGRADED` (or, without an
//! upgrade request, the request body in and a streamed 200 body out).
//!
//! The route spawns the backend's pump with a [`HijackedStream`] whose upgrade has not
//! happened yet, and answers only once the pump first touches the stream (or returns). So a
//! backend connects to the container's output first, and an error before that still gets a
//! real status code.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::header::{CONNECTION, UPGRADE};
use http::HeaderMap;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use crate::version::ApiVersion;

/// Anything duplex.
pub trait Duplex: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> Duplex for T {}

/// The client's connection, handed to the backend to pump: read = the client's stdin bytes
/// (EOF when it half-closes), write = output exactly as it goes on the wire (multiplexed
/// frames when the process has no tty, raw bytes with one). Bytes hyper had already buffered
/// are included. Shut it down (or drop it) to end the exchange.
///
/// The route sends its 101/200 status line when the backend first reads, writes or flushes
/// this stream: `conn.flush().await` releases it without sending a byte (e.g. before
/// waiting for a container's start, which the client only asks for after the status line).
pub struct HijackedStream {
    inner: Pin<Box<dyn Duplex>>,
    /// Fired on the first read/write: the route may now send the status line.
    touched: Option<oneshot::Sender<()>>,
}

impl HijackedStream {
    pub fn new(io: impl Duplex + 'static) -> Self {
        HijackedStream {
            inner: Box::pin(io),
            touched: None,
        }
    }

    pub(crate) fn touching(io: impl Duplex + 'static, touched: oneshot::Sender<()>) -> Self {
        HijackedStream {
            inner: Box::pin(io),
            touched: Some(touched),
        }
    }

    fn touch(&mut self) {
        if let Some(tx) = self.touched.take() {
            let _ = tx.send(());
        }
    }
}

impl std::fmt::Debug for HijackedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HijackedStream")
    }
}

impl AsyncRead for HijackedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.touch();
        this.inner.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for HijackedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.touch();
        this.inner.as_mut().poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.touch();
        this.inner.as_mut().poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.touch();
        this.inner.as_mut().poll_shutdown(cx)
    }
}

/// A hyper upgrade that completes after the 101 goes out; IO waits for it.
pub(crate) enum PendingUpgrade {
    Waiting(OnUpgrade),
    Ready(TokioIo<Upgraded>),
    Failed,
}

impl PendingUpgrade {
    fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Pin<&mut TokioIo<Upgraded>>>> {
        if let PendingUpgrade::Waiting(on) = self {
            match ready!(Pin::new(on).poll(cx)) {
                Ok(up) => *self = PendingUpgrade::Ready(TokioIo::new(up)),
                Err(e) => {
                    *self = PendingUpgrade::Failed;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        format!("the connection upgrade failed: {e}"),
                    )));
                }
            }
        }
        match self {
            PendingUpgrade::Ready(io) => Poll::Ready(Ok(Pin::new(io))),
            _ => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the connection upgrade failed",
            ))),
        }
    }
}

impl AsyncRead for PendingUpgrade {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.get_mut().poll_ready(cx))?.poll_read(cx, buf)
    }
}

impl AsyncWrite for PendingUpgrade {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.get_mut().poll_ready(cx))?.poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.get_mut().poll_ready(cx))?.poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.get_mut().poll_ready(cx))?.poll_shutdown(cx)
    }
}

/// True when the client asked to hijack: `Connection: Upgrade` and `Upgrade: tcp`.
pub(crate) fn wants_upgrade(headers: &HeaderMap) -> bool {
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    has_token(CONNECTION, "upgrade") && has_token(UPGRADE, "tcp")
}

pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// Content type of attach, exec start and logs: multiplexed frames are labelled as such
/// from API 1.42 on.
pub(crate) fn stream_content_type(tty: bool, version: ApiVersion) -> &'static str {
    if !tty && version >= ApiVersion::V1_42 {
        MULTIPLEXED_STREAM
    } else {
        RAW_STREAM
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_needs_both_headers_case_insensitively() {
        let mut h = HeaderMap::new();
        assert!(!wants_upgrade(&h));
        h.insert(CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        assert!(!wants_upgrade(&h));
        h.insert(UPGRADE, "TCP".parse().unwrap());
        assert!(wants_upgrade(&h));
        h.insert(UPGRADE, "websocket".parse().unwrap());
        assert!(!wants_upgrade(&h));
    }

    #[test]
    fn content_type_depends_on_tty_and_version() {
        assert_eq!(stream_content_type(true, ApiVersion::V1_47), RAW_STREAM);
        assert_eq!(
            stream_content_type(false, ApiVersion::V1_47),
            MULTIPLEXED_STREAM
        );
        assert_eq!(stream_content_type(false, ApiVersion::V1_41), RAW_STREAM);
    }

    #[tokio::test]
    async fn the_first_read_or_write_fires_the_touch_signal() {
        use tokio::io::AsyncWriteExt;
        let (a, _b) = tokio::io::duplex(64);
        let (tx, mut rx) = oneshot::channel();
        let mut s = HijackedStream::touching(a, tx);
        assert!(rx.try_recv().is_err());
        s.write_all(b"x").await.unwrap();
        assert!(rx.try_recv().is_ok());

        let (a, _b) = tokio::io::duplex(64);
        let (tx, mut rx) = oneshot::channel();
        let mut s = HijackedStream::touching(a, tx);
        s.flush().await.unwrap();
        assert!(
            rx.try_recv().is_ok(),
            "a flush alone releases the status line"
        );
    }
}
