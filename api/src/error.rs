//! The one error type of the API layer and the ONE place that maps error kinds to HTTP status.

use http::StatusCode;

/// What kind of failure an [`ApiError`] is; decides the HTTP status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotFound,
    InvalidArgument,
    Conflict,
    /// The request changed nothing (e.g. starting a running container): 304, no body.
    NotModified,
    Unauthorized,
    Forbidden,
    Unavailable,
    Internal,
    /// An endpoint or option skiff does not serve (yet): 501.
    NotImplemented,
}

impl ErrorKind {
    /// The single kind -> status mapping used for every error response.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        }
    }
}

/// An error answered to the client as `{"message": "..."}` with the status of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    /// 304: the message is only logged, a 304 carries no body.
    pub fn not_modified() -> Self {
        Self::new(ErrorKind::NotModified, "not modified")
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotImplemented, message)
    }

    /// The JSON error body dockerd writes: `{"message":"..."}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "message": self.message }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_its_documented_status() {
        let cases = [
            (ErrorKind::NotFound, 404),
            (ErrorKind::InvalidArgument, 400),
            (ErrorKind::Conflict, 409),
            (ErrorKind::NotModified, 304),
            (ErrorKind::Unauthorized, 401),
            (ErrorKind::Forbidden, 403),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::Internal, 500),
            (ErrorKind::NotImplemented, 501),
        ];
        for (kind, code) in cases {
            assert_eq!(kind.status().as_u16(), code, "{kind:?}");
            assert_eq!(ApiError::new(kind, "x").status().as_u16(), code);
        }
    }

    #[test]
    fn json_body_escapes_the_message() {
        let e = ApiError::not_found("no such image: \"a\"");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["message"], "no such image: \"a\"");
        assert_eq!(e.to_string(), "no such image: \"a\"");
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
