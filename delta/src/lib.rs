//! Tar-aware binary deltas between container image layers.
//!
//! [`create`] turns a set of base layer tars plus a target layer tar into a delta;
//! [`apply`] rebuilds the target tar byte for byte (same sha256 = same diff_id) from
//! the delta and the base files, streaming, in constant memory. The format is
//! described in `docs/delta-format.md`.
//!
//! Pure: `Read`/`Write`/`Seek` in, bytes out; no async, no filesystem layout.

mod apply;
mod base;
mod bspatch;
mod create;
mod dirbase;
mod error;
mod fastdiff;
mod format;
mod inspect;
mod matching;
mod rsync_patch;
mod tarscan;

pub use apply::{apply, Applied};
pub use base::{pipe, reader_from_writer, BaseSource, ReadSeek, TarBase};
pub use create::{create, CreateOptions, DeltaStats};
pub use dirbase::DirBase;
pub use error::{DeltaError, ErrorKind, Result};
pub use format::VERSION as FORMAT_VERSION;
pub use inspect::{header_base_diff_ids, inspect, DeltaInfo};
pub use rsync_patch::{
    is_rsync_delta, rsync_patch, rsync_patch_limited, ConcatBasis, Patched, RSYNC_DELTA_MAGIC,
};
