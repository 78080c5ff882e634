//! Answering attach and exec start: 101 UPGRADED on a hijack request, else a streamed 200,
//! sent once the backend's pump first touches the connection (see `crate::hijack`).

use std::io;

use futures::future::BoxFuture;
use futures::TryStreamExt;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyStream;
use hyper::body::Incoming;
use tokio::sync::oneshot;
use tokio_util::io::StreamReader;

use crate::drive;
use crate::error::ApiError;
use crate::hijack::{
    stream_content_type, wants_upgrade, HijackedStream, PendingUpgrade, RAW_STREAM,
};
use crate::response::{self, Body};
use crate::stream::{BodyReader, TarWriter};
use crate::version::ApiVersion;

/// Spawns `pump(conn)` and answers when it touches `conn` (or ends). The pump runs on its
/// own task because the 101 must be sent before the upgraded connection exists; it ends
/// when the client or the process goes.
///
/// `input` is the request body to read stdin from when the client does not hijack
/// (`None` when it was already consumed).
pub(crate) async fn serve<F>(
    parts: http::request::Parts,
    input: Option<Incoming>,
    tty: bool,
    version: ApiVersion,
    pump: F,
) -> Response<Body>
where
    F: FnOnce(HijackedStream) -> BoxFuture<'static, Result<(), ApiError>>,
{
    let (touch_tx, touch_rx) = oneshot::channel();
    let upgrade = wants_upgrade(&parts.headers);
    let mut req = Request::from_parts(parts, ());
    let (conn, body) = if upgrade {
        let on_upgrade = hyper::upgrade::on(&mut req);
        let conn = HijackedStream::touching(PendingUpgrade::Waiting(on_upgrade), touch_tx);
        (conn, response::empty())
    } else {
        // no hijack asked for: stdin from the request body, output as a streamed body
        let input = match input {
            Some(body) => BodyReader::new(StreamReader::new(
                BodyStream::new(body)
                    .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
                    .map_err(io::Error::other),
            )),
            None => BodyReader::new(tokio::io::empty()),
        };
        // the same bounded byte channel `save` streams through
        let (output, rx) = TarWriter::channel();
        let conn = HijackedStream::touching(tokio::io::join(input, output), touch_tx);
        let chunks = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, ApiError>(b), rx))
        });
        (conn, drive::chunks(chunks))
    };
    let mut task = tokio::spawn(pump(conn));
    let touched = tokio::select! {
        biased;
        t = touch_rx => t.is_ok(),
        res = &mut task => return finished_early(res, upgrade, tty, version, body),
    };
    if !touched {
        // the pump dropped the connection without using it: its result decides
        return finished_early(task.await, upgrade, tty, version, body);
    }
    tokio::spawn(async move {
        match task.await {
            Ok(Err(e)) => tracing::debug!("hijacked stream ended: {}", e.message),
            Err(e) => tracing::warn!("hijacked stream task failed: {e}"),
            Ok(Ok(())) => {}
        }
    });
    head(upgrade, tty, version, body)
}

fn finished_early(
    res: Result<Result<(), ApiError>, tokio::task::JoinError>,
    upgrade: bool,
    tty: bool,
    version: ApiVersion,
    body: Body,
) -> Response<Body> {
    match res {
        Ok(Ok(())) => head(upgrade, tty, version, body),
        Ok(Err(e)) => response::error(&e),
        Err(e) => response::error(&ApiError::internal(format!(
            "the stream handler failed: {e}"
        ))),
    }
}

/// dockerd's status lines: `101 UPGRADED` with the stream's content type, or `200` with
/// `application/vnd.docker.raw-stream`.
fn head(upgrade: bool, tty: bool, version: ApiVersion, body: Body) -> Response<Body> {
    if !upgrade {
        return response::with_type(StatusCode::OK, RAW_STREAM, body);
    }
    let mut resp = response::with_type(
        StatusCode::SWITCHING_PROTOCOLS,
        stream_content_type(tty, version),
        body,
    );
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    resp
}
