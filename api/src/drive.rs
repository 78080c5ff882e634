//! Runs a backend future *inside* a response body, so the body's lifetime is the backend's:
//! headers go out as soon as there is something to send, every item is flushed as its own
//! chunk, and a client that disconnects drops the body and with it the backend future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use http::{Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::response::{self, Body, BoxError, APPLICATION_JSON};
use crate::stream::ProgressMessage;

pub(crate) type BackendFuture = Pin<Box<dyn Future<Output = Result<(), ApiError>> + Send>>;

pub(crate) enum Step<T> {
    Item(T),
    Done(Result<(), ApiError>),
}

/// A backend future and the channel it reports through, polled together.
pub(crate) struct Driven<T> {
    fut: Option<BackendFuture>,
    result: Option<Result<(), ApiError>>,
    rx: mpsc::Receiver<T>,
}

impl<T> Driven<T> {
    pub(crate) fn new(fut: BackendFuture, rx: mpsc::Receiver<T>) -> Self {
        Driven {
            fut: Some(fut),
            result: None,
            rx,
        }
    }

    /// Next item (in the order sent), then the backend's result once, then `None`.
    pub(crate) fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Option<Step<T>>> {
        loop {
            if let Poll::Ready(Some(item)) = self.rx.poll_recv(cx) {
                return Poll::Ready(Some(Step::Item(item)));
            }
            let Some(fut) = self.fut.as_mut() else { break };
            match fut.as_mut().poll(cx) {
                Poll::Ready(res) => {
                    self.fut = None;
                    self.result = Some(res);
                    // drain whatever it sent before returning
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        // The backend is done; a clone of its sender may live on elsewhere, so take only
        // what is already queued instead of waiting for the channel to close.
        if let Ok(item) = self.rx.try_recv() {
            return Poll::Ready(Some(Step::Item(item)));
        }
        Poll::Ready(self.result.take().map(Step::Done))
    }

    pub(crate) async fn first(&mut self) -> Option<Step<T>> {
        std::future::poll_fn(|cx| self.poll_step(cx)).await
    }
}

/// JSON-lines encoding of a [`Driven`] progress stream; a late error becomes an error line.
struct JsonLines {
    driven: Driven<ProgressMessage>,
    pending: Option<ProgressMessage>,
}

impl Stream for JsonLines {
    type Item = Result<Frame<Bytes>, BoxError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(msg) = self.pending.take() {
            return Poll::Ready(Some(Ok(Frame::data(msg.to_line()))));
        }
        match self.driven.poll_step(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Step::Item(msg))) => Poll::Ready(Some(Ok(Frame::data(msg.to_line())))),
            Poll::Ready(Some(Step::Done(Err(e)))) => {
                tracing::debug!("stream ended with an error: {}", e.message);
                Poll::Ready(Some(Ok(Frame::data(
                    ProgressMessage::error(e.message).to_line(),
                ))))
            }
            Poll::Ready(Some(Step::Done(Ok(())))) | Poll::Ready(None) => Poll::Ready(None),
        }
    }
}

/// Raw bytes of a [`Driven`] stream; a late error aborts the body (the client sees a
/// truncated chunked response, as with dockerd).
struct RawBytes {
    driven: Driven<Bytes>,
    pending: Option<Bytes>,
}

impl Stream for RawBytes {
    type Item = Result<Frame<Bytes>, BoxError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(chunk) = self.pending.take() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        match self.driven.poll_step(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Step::Item(chunk))) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            Poll::Ready(Some(Step::Done(Err(e)))) => {
                tracing::warn!("aborting a streamed body: {}", e.message);
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(Some(Step::Done(Ok(())))) | Poll::Ready(None) => Poll::Ready(None),
        }
    }
}

/// JSON documents of a [`Driven`] stream, one per line (stats); a late error aborts the body.
struct ValueLines {
    driven: Driven<serde_json::Value>,
    pending: Option<serde_json::Value>,
}

fn value_line(v: &serde_json::Value) -> Bytes {
    let mut out = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    out.push(b'\n');
    Bytes::from(out)
}

impl Stream for ValueLines {
    type Item = Result<Frame<Bytes>, BoxError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(v) = self.pending.take() {
            return Poll::Ready(Some(Ok(Frame::data(value_line(&v)))));
        }
        match self.driven.poll_step(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Step::Item(v))) => Poll::Ready(Some(Ok(Frame::data(value_line(&v))))),
            Poll::Ready(Some(Step::Done(Err(e)))) => {
                tracing::debug!("aborting a JSON stream: {}", e.message);
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(Some(Step::Done(Ok(())))) | Poll::Ready(None) => Poll::Ready(None),
        }
    }
}

/// A stream of JSON documents (stats with `stream=true`): the status goes out with the first
/// document, so an error before it gets its real status.
pub(crate) async fn json_values(
    fut: BackendFuture,
    rx: mpsc::Receiver<serde_json::Value>,
) -> Response<Body> {
    let mut driven = Driven::new(fut, rx);
    let pending = match driven.first().await {
        Some(Step::Item(v)) => Some(v),
        Some(Step::Done(Err(e))) => return response::error(&e),
        Some(Step::Done(Ok(()))) | None => None,
    };
    let body = StreamBody::new(ValueLines { driven, pending });
    response::with_type(StatusCode::OK, APPLICATION_JSON, body.boxed_unsync())
}

/// Exactly one JSON document from the backend (stats with `stream=false`).
pub(crate) async fn json_value(
    fut: BackendFuture,
    rx: mpsc::Receiver<serde_json::Value>,
) -> Response<Body> {
    let mut driven = Driven::new(fut, rx);
    match driven.first().await {
        Some(Step::Item(v)) => response::json(StatusCode::OK, &v),
        Some(Step::Done(Err(e))) => response::error(&e),
        Some(Step::Done(Ok(()))) | None => response::error(&ApiError::internal(
            "the backend ended without producing a result",
        )),
    }
}

/// A streamed body from chunks; an `Err` chunk aborts it (the client sees a broken
/// transfer). Headers go out as soon as the response is returned.
pub(crate) fn chunks<S>(stream: S) -> Body
where
    S: Stream<Item = Result<Bytes, ApiError>> + Send + 'static,
{
    use futures::StreamExt;
    StreamBody::new(stream.map(|r| match r {
        Ok(b) => Ok(Frame::data(b)),
        Err(e) => {
            tracing::debug!("aborting a streamed body: {}", e.message);
            Err(Box::new(e) as BoxError)
        }
    }))
    .boxed_unsync()
}

/// When the status line of a JSON-lines stream is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // `Immediate` is unused: events, logs and wait stream through `chunks`
pub(crate) enum Start {
    /// Right away, before any message: for streams that may stay quiet (events).
    Immediate,
    /// With the first message, so an error before it still gets a real status (pull, load:
    /// `docker pull nosuch` must say `Error response from daemon: ...`).
    FirstMessage,
}

pub(crate) async fn json_lines(
    fut: BackendFuture,
    rx: mpsc::Receiver<ProgressMessage>,
    start: Start,
) -> Response<Body> {
    let mut driven = Driven::new(fut, rx);
    let pending = match start {
        Start::Immediate => None,
        Start::FirstMessage => match driven.first().await {
            Some(Step::Item(msg)) => Some(msg),
            Some(Step::Done(Err(e))) => return response::error(&e),
            Some(Step::Done(Ok(()))) | None => None,
        },
    };
    let body = StreamBody::new(JsonLines { driven, pending });
    response::with_type(StatusCode::OK, APPLICATION_JSON, body.boxed_unsync())
}

/// A binary body (e.g. `application/x-tar`); headers wait for the first chunk so an early
/// failure is answered with its status.
pub(crate) async fn raw(
    fut: BackendFuture,
    rx: mpsc::Receiver<Bytes>,
    content_type: &'static str,
) -> Response<Body> {
    let mut driven = Driven::new(fut, rx);
    let pending = match driven.first().await {
        Some(Step::Item(chunk)) => Some(chunk),
        Some(Step::Done(Err(e))) => return response::error(&e),
        Some(Step::Done(Ok(()))) | None => None,
    };
    let body = StreamBody::new(RawBytes { driven, pending });
    response::with_type(StatusCode::OK, content_type, body.boxed_unsync())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn lines(b: &Bytes) -> Vec<serde_json::Value> {
        b.split(|c| *c == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn keeps_order_and_drains_messages_sent_just_before_the_end() {
        let (progress, rx) = crate::stream::Progress::channel();
        let keep_alive = progress.clone(); // a sender outliving the backend must not hang the body
        let fut: BackendFuture = Box::pin(async move {
            for i in 0..5 {
                progress.status(format!("m{i}"), None).await?;
            }
            Err(ApiError::internal("boom"))
        });
        let resp = json_lines(fut, rx, Start::FirstMessage).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let l = lines(&body);
        let statuses: Vec<_> = l[..5]
            .iter()
            .map(|m| m["status"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(statuses, ["m0", "m1", "m2", "m3", "m4"]);
        assert_eq!(
            l[5],
            serde_json::json!({"errorDetail": {"message": "boom"}, "error": "boom"})
        );
        assert_eq!(l.len(), 6);
        drop(keep_alive);
    }

    #[tokio::test]
    async fn immediate_start_answers_before_any_message_and_first_message_waits() {
        let (_progress, rx) = crate::stream::Progress::channel();
        let fut: BackendFuture = Box::pin(std::future::pending());
        let resp = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            json_lines(fut, rx, Start::Immediate),
        )
        .await
        .expect("headers must not wait for a message");
        assert_eq!(resp.status(), StatusCode::OK);

        let (_progress, rx) = crate::stream::Progress::channel();
        let fut: BackendFuture = Box::pin(std::future::pending());
        let waited = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            json_lines(fut, rx, Start::FirstMessage),
        )
        .await;
        assert!(
            waited.is_err(),
            "FirstMessage must hold the status until there is something to say"
        );

        let (_progress, rx) = crate::stream::Progress::channel();
        let fut: BackendFuture = Box::pin(async { Err(ApiError::not_found("no such image: x")) });
        let resp = json_lines(fut, rx, Start::FirstMessage).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn raw_body_ends_cleanly_or_fails_on_a_late_error() {
        for (fail, want_ok) in [(false, true), (true, false)] {
            let (mut out, rx) = crate::stream::TarWriter::channel();
            let fut: BackendFuture = Box::pin(async move {
                out.send(Bytes::from_static(b"abc")).await?;
                if fail {
                    return Err(ApiError::internal("read error"));
                }
                Ok(())
            });
            let resp = raw(fut, rx, "application/x-tar").await;
            assert_eq!(resp.status(), StatusCode::OK);
            let body = resp.into_body().collect().await;
            assert_eq!(body.is_ok(), want_ok);
            if let Ok(b) = body {
                assert_eq!(b.to_bytes(), "abc");
            }
        }
    }
}
