//! Attach: joins a client's hijacked connection to the shim's attach socket of a process.
//!
//! The shim speaks the wire format already (multiplexed frames without a tty, raw bytes
//! with one), so the daemon only copies bytes both ways. An attach to a container that is
//! not running waits for its next start: the start hands over the socket and waits until
//! the client is connected before the process runs, so `docker run` loses no output.

use std::path::Path;

use skiff_api::hijack::HijackedStream;
use skiff_api::ApiError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::oneshot;

use super::service::{internal, ContainerService, PendingAttach};

/// Which streams the client wants.
#[derive(Debug, Clone, Copy)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// Connects to an attach socket and sends the stream selection header.
pub async fn connect(socket: &Path, s: Streams) -> Result<UnixStream, ApiError> {
    let mut sock = UnixStream::connect(socket).await.map_err(|e| {
        internal(format!(
            "cannot attach: the shim's socket {} is not reachable ({e})",
            socket.display()
        ))
    })?;
    let header = format!(
        "{{\"stdin\":{},\"stdout\":{},\"stderr\":{}}}\n",
        s.stdin, s.stdout, s.stderr
    );
    sock.write_all(header.as_bytes())
        .await
        .map_err(|e| internal(format!("cannot attach: {e}")))?;
    Ok(sock)
}

/// Copies the process output to the client until the shim closes the socket, and the
/// client's input to the process while it lasts. Once the output ended, `before_close`
/// runs before the client sees EOF (exec: the exit code must be recorded by then, since
/// the CLI asks for it right away).
pub async fn pump(
    conn: HijackedStream,
    sock: UnixStream,
    stdin: bool,
    before_close: impl std::future::Future<Output = ()>,
) {
    let (mut cr, mut cw) = tokio::io::split(conn);
    let (mut sr, mut sw) = sock.into_split();
    let output = async {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        let _ = cw.flush().await;
        before_close.await;
        let _ = cw.shutdown().await;
    };
    let input = async {
        if stdin {
            let _ = tokio::io::copy(&mut cr, &mut sw).await;
            // client EOF: the shim closes the process's stdin (StdinOnce)
            let _ = sw.shutdown().await;
        } else {
            // drain and ignore, so a client that writes anyway never blocks
            let mut buf = [0u8; 4096];
            while matches!(cr.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = output => {}
        _ = input => {}
    }
}

impl ContainerService {
    /// Checks the container can be attached and says whether it has a tty.
    pub async fn attach_info(&self, name: &str) -> Result<bool, ApiError> {
        let c = self.get(name)?;
        let ctr = c.ctr.lock().await;
        if ctr.removing {
            return Err(ApiError::conflict(format!(
                "cannot attach to container {name}: it is being removed"
            )));
        }
        Ok(ctr.rec.tty())
    }

    pub async fn attach(
        &self,
        name: &str,
        streams: Streams,
        mut conn: HijackedStream,
    ) -> Result<(), ApiError> {
        let c = self.get(name)?;
        let waiting = {
            let mut ctr = c.ctr.lock().await;
            self.publish("attach", &ctr.rec, &[]);
            match ctr.shim.clone().filter(|_| ctr.rec.state.running) {
                Some(shim) => Err(shim.attach_socket(None)),
                None => {
                    let (tx, rx) = oneshot::channel();
                    ctr.pending_attach.push(PendingAttach { ready: tx });
                    Ok(rx)
                }
            }
        };
        match waiting {
            Err(socket) => {
                let sock = connect(&socket, streams).await?;
                pump(conn, sock, streams.stdin, async {}).await;
            }
            Ok(rx) => {
                // the client waits for the status line before it starts the container
                let _ = conn.flush().await;
                let Ok((socket, ack)) = rx.await else {
                    // the start failed or the container went away
                    let _ = conn.shutdown().await;
                    return Ok(());
                };
                let sock = connect(&socket, streams).await;
                let _ = ack.send(());
                match sock {
                    Ok(sock) => pump(conn, sock, streams.stdin, async {}).await,
                    Err(e) => {
                        tracing::warn!(id = %c.id, "{}", e.message);
                        let _ = conn.shutdown().await;
                    }
                }
            }
        }
        Ok(())
    }

    /// Resizes the tty of the init process (exec_id None) or of an exec.
    pub async fn resize(&self, name: &str, height: u32, width: u32) -> Result<(), ApiError> {
        let c = self.get(name)?;
        let (shim, rec) = {
            let ctr = c.ctr.lock().await;
            (ctr.shim.clone(), ctr.rec.clone())
        };
        let Some(shim) = shim.filter(|_| rec.state.running) else {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        };
        shim.resize(None, width, height)
            .await
            .map_err(|e| internal(format!("cannot resize the tty: {e}")))?;
        self.publish(
            "resize",
            &rec,
            &[("height", height.to_string()), ("width", width.to_string())],
        );
        Ok(())
    }
}
