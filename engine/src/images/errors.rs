//! Maps the store's and the registry client's error kinds onto the API's, in one place.

use skiff_api::{ApiError, ErrorKind};

pub fn store(e: skiff_storage::Error) -> ApiError {
    use skiff_storage::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => ErrorKind::NotFound,
        K::InvalidArgument => ErrorKind::InvalidArgument,
        K::Conflict => ErrorKind::Conflict,
        K::NotModified => ErrorKind::NotModified,
        K::Unavailable => ErrorKind::Unavailable,
        K::Internal => ErrorKind::Internal,
    };
    ApiError::new(kind, e.to_string())
}

pub fn registry(e: crate::registry::Error) -> ApiError {
    use crate::registry::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => ErrorKind::NotFound,
        // Not 401: the docker CLI answers a 401 from the daemon with an interactive login
        // prompt (it means "the daemon wants credentials"), which hangs scripts and agents.
        K::Unauthorized => ErrorKind::Forbidden,
        K::InvalidArgument => ErrorKind::InvalidArgument,
        K::Unavailable => ErrorKind::Unavailable,
        K::Internal => ErrorKind::Internal,
    };
    ApiError::new(kind, e.to_string())
}

pub fn join(e: tokio::task::JoinError) -> ApiError {
    ApiError::internal(format!("a store task failed: {e}; see the daemon log"))
}

/// Runs a store call on a blocking thread.
pub async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(join)?
}
