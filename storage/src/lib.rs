//! skiff's on-disk store: content blobs (manifests, configs), layers extracted on receive
//! with a tar-split record for byte-exact tar rebuilds, image records, references, recovery
//! and `check`. Synchronous; call it from blocking threads. See docs/storage.md.

mod beneath;
mod check;
mod digest;
mod durable;
mod error;
mod extract;
mod input;
mod records;
mod store;
mod tarsplit;
mod tarstream;

pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
pub use input::Compression;
pub use records::{
    BlobRef, DiskUsage, ImageLayer, ImageRecord, LayerInfo, LayerUsage, NewImage, Problem, Refs,
};
pub use store::{ExtractRequest, StagedLayer, Store, StoreOptions};

#[cfg(test)]
mod assert_send_sync {
    fn is_send_sync<T: Send + Sync>() {}
    #[test]
    fn store_is_send_sync() {
        is_send_sync::<super::Store>();
    }
}
