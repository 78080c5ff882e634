//! The raw duplex connection of attach and exec start, after `101 UPGRADED` (or, without an
//! upgrade request, the request body in and a streamed 200 body out).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Anything duplex.
pub trait Duplex: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> Duplex for T {}

/// The client's connection, handed to the backend to pump: read = the client's stdin bytes
/// (EOF when it half-closes), write = output exactly as it goes on the wire (multiplexed
/// frames when the process has no tty, raw bytes with one). Bytes hyper had already buffered
/// are included. Shut it down (or drop it) to end the exchange.
pub struct HijackedStream {
    inner: Pin<Box<dyn Duplex>>,
}

impl HijackedStream {
    pub fn new(io: impl Duplex + 'static) -> Self {
        HijackedStream {
            inner: Box::pin(io),
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
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.inner.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for HijackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.as_mut().poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.as_mut().poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.as_mut().poll_shutdown(cx)
    }
}
