//! skiff's Docker Engine API layer: wire types, routing, version negotiation, streaming
//! encodings and the one error -> status mapping. It knows nothing about disks, runtimes or
//! registries: the engine plugs in through the traits in [`backend`] and calls [`serve`].

pub mod auth;
pub mod backend;
mod drive;
pub mod error;
pub mod filters;
pub mod hijack;
pub mod mux;
pub mod query;
pub mod request;
pub mod response;
mod router;
mod routes;
pub mod server;
pub mod stream;
pub mod timestamp;
pub mod types;
pub mod version;

pub use auth::{decode_registry_auth, AuthConfig};
pub use backend::{
    Backends, ContainerBackend, EventsBackend, ExecBackend, ImageBackend, SystemBackend,
};
pub use error::{ApiError, ErrorKind};
pub use filters::Filters;
pub use hijack::HijackedStream;
pub use server::{serve, Listener};
pub use stream::{
    BodyReader, EventStream, LogFrame, LogStream, Progress, ProgressMessage, StatsSender,
    StdStream, TarWriter, Timestamp,
};
pub use version::{ApiVersion, DEFAULT_API_VERSION, MAX_API_VERSION, MIN_API_VERSION};
