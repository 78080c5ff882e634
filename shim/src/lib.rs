//! skiff's per-container shim (containerd shim v2 over ttrpc): stdio, logs, exit status;
//! drives the OCI runtime.
//!
//! Stand-in on the `libcontainer` branch: helper A's lib.rs replaces this file at merge.

pub mod error;
pub mod runtime;

pub use error::{ShimError, TaskErrorKind};
