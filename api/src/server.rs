//! The HTTP/1.1 server: hyper on a unix (or TCP) listener, keep-alive, upgrades, graceful
//! shutdown. One task per connection; requests on it are handled in order (HTTP/1.1).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::backend::Backends;
use crate::router;

/// How long in-flight requests may run on after shutdown is asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Something that accepts connections: a unix socket (the default) or TCP.
pub trait Listener: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Send + Unpin + 'static;
    fn accept_conn(&mut self) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

impl Listener for UnixListener {
    type Io = UnixStream;
    async fn accept_conn(&mut self) -> io::Result<UnixStream> {
        self.accept().await.map(|(s, _)| s)
    }
}

impl Listener for TcpListener {
    type Io = TcpStream;
    async fn accept_conn(&mut self) -> io::Result<TcpStream> {
        let (s, _) = self.accept().await?;
        // progress lines are small and must not wait for Nagle
        s.set_nodelay(true)?;
        Ok(s)
    }
}

/// Serves the API until `shutdown` completes, then stops accepting, lets in-flight requests
/// finish for up to [`SHUTDOWN_GRACE`], and drops what is left (streams such as a pull are
/// then cancelled like a client disconnect).
pub async fn serve<L: Listener>(
    mut listener: L,
    backends: Backends,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept_conn() => match accepted {
                Ok(io) => {
                    conns.spawn(serve_connection(io, backends.clone(), stop_rx.clone()));
                }
                Err(e) => {
                    // e.g. EMFILE: back off instead of spinning
                    tracing::warn!("accepting an API connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::info!(
            "{} API connections still busy after the grace period: closing them",
            conns.len()
        );
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

async fn serve_connection<I>(io: I, backends: Backends, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let service = service_fn(move |req| {
        let backends = backends.clone();
        async move { Ok::<_, Infallible>(router::handle(req, backends).await) }
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
        // attach and exec start hijack the connection (101 UPGRADED)
        .with_upgrades();
    tokio::pin!(conn);
    let stopping = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    tokio::select! {
        res = conn.as_mut() => log_conn_end(res),
        _ = stopping => {
            // finish the request in flight, then close; idle keep-alive connections close now
            conn.as_mut().graceful_shutdown();
            log_conn_end(conn.await);
        }
    }
}

fn log_conn_end(res: Result<(), hyper::Error>) {
    if let Err(e) = res {
        // clients hanging up mid-stream are routine (Ctrl-C on docker pull)
        tracing::debug!("API connection ended: {e}");
    }
}
