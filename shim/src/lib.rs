//! skiff's per-container shim: a small process per container that creates the task with an
//! OCI runtime, owns its stdio (attach sockets, json-file logs), reaps it and records its
//! exit, and serves the containerd Task API over ttrpc. The engine talks to it through
//! [`ShimClient`]; see docs/shim.md.

mod client;
mod error;
mod exitfile;
mod launch;
mod paths;
pub mod runtime;
mod server;
mod types;

pub use client::ShimClient;
pub use error::{ShimError, TaskErrorKind};
pub use exitfile::{process_alive, read_exit_file};
pub use launch::launch;
pub use runtime::RuntimeConfig;
pub use server::run_shim_main;
pub use types::{ExitInfo, LaunchOptions, LogConfig, TaskState, TaskStatus};
