//! Response bodies and the builders every handler uses.

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use serde::Serialize;

use crate::error::{ApiError, ErrorKind};
use crate::version::MAX_API_VERSION;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response. Unsync because streaming bodies own a backend future.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub const APPLICATION_JSON: &str = "application/json";

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|e: Infallible| match e {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|e: Infallible| match e {})
        .boxed_unsync()
}

/// `status` with a JSON body.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => with_type(status, APPLICATION_JSON, full(body)),
        Err(e) => error(&ApiError::internal(format!(
            "cannot encode the response: {e}"
        ))),
    }
}

pub fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A status with no body (e.g. 201 after tag, 204).
pub fn no_content(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(empty());
    *resp.status_mut() = status;
    resp
}

/// The one place an [`ApiError`] becomes a response: its kind's status and
/// `{"message": ...}`, except 304 which must not carry a body.
pub fn error(err: &ApiError) -> Response<Body> {
    if err.kind() == ErrorKind::NotModified {
        return no_content(StatusCode::NOT_MODIFIED);
    }
    if err.status().is_server_error() {
        tracing::warn!(status = %err.status(), "{}", err.message);
    } else {
        tracing::debug!(status = %err.status(), "{}", err.message);
    }
    with_type(err.status(), APPLICATION_JSON, full(err.to_json()))
}

/// dockerd's answer to an unknown path.
pub fn page_not_found() -> Response<Body> {
    error(&ApiError::not_found("page not found"))
}

/// A known path with a method it does not serve.
pub fn method_not_allowed() -> Response<Body> {
    let body = serde_json::json!({ "message": "method not allowed" }).to_string();
    with_type(StatusCode::METHOD_NOT_ALLOWED, APPLICATION_JSON, full(body))
}

/// `Server: skiff/<version> (linux)`.
pub fn server_header() -> String {
    format!("skiff/{} (linux)", env!("CARGO_PKG_VERSION"))
}

/// Headers dockerd puts on every response.
pub fn add_common_headers(resp: &mut Response<Body>) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&MAX_API_VERSION.to_string()) {
        h.insert("api-version", v);
    }
    h.insert("ostype", HeaderValue::from_static("linux"));
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    if let Ok(v) = HeaderValue::from_str(&server_header()) {
        h.insert(header::SERVER, v);
    }
}
