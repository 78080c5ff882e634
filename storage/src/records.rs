//! The small JSON records the store keeps: layer.json, image records, refs.json.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// Contents of `layers/sha256/<chain>/layer.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Size of the uncompressed layer tar (what `write_layer_tar` produces).
    pub tar_size: u64,
    /// Sum of the regular files' sizes (the layer's content size, as `docker images` shows).
    pub size: u64,
    /// Compressed blobs this layer was extracted from (digest and media type).
    #[serde(default)]
    pub blobs: Vec<BlobRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub digest: Digest,
    pub media_type: Option<String>,
    pub size: u64,
}

/// One layer of an image, from base to top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLayer {
    pub chain_id: Digest,
    pub diff_id: Digest,
}

/// Contents of `images/sha256/<id>.json`. The image id is the digest of the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    /// Manifests this image was pulled or pushed as (their blobs are in the content store).
    #[serde(default)]
    pub manifests: Vec<Digest>,
    pub layers: Vec<ImageLayer>,
    /// `created` from the image config, as given (RFC 3339), if any.
    pub created: Option<String>,
    /// When this store first recorded the image (RFC 3339).
    pub added: String,
    /// Sum of the layers' content sizes.
    pub size: u64,
}

/// What the engine hands to `Store::put_image`.
#[derive(Debug, Clone)]
pub struct NewImage {
    /// The raw config JSON; the image id is its sha256.
    pub config: Vec<u8>,
    /// Chain ids of the image's layers, base first (all must already be in the store).
    pub layers: Vec<Digest>,
    /// Manifest digests to remember (blobs must already be stored with `put_blob`).
    pub manifests: Vec<Digest>,
}

/// Contents of `refs.json`: references exactly as the engine normalized them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refs {
    /// `repo:tag` -> image id
    #[serde(default)]
    pub tags: BTreeMap<String, Digest>,
    /// `repo@sha256:...` -> image id
    #[serde(default)]
    pub digests: BTreeMap<String, Digest>,
}

impl Refs {
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.digests.is_empty()
    }

    /// Every reference (tag or digest) pointing at `id`.
    pub fn for_image(&self, id: &Digest) -> Vec<String> {
        self.tags
            .iter()
            .chain(self.digests.iter())
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn resolve(&self, reference: &str) -> Option<&Digest> {
        self.tags
            .get(reference)
            .or_else(|| self.digests.get(reference))
    }

    pub(crate) fn retain_images(&mut self, keep: impl Fn(&Digest) -> bool) -> bool {
        let before = self.tags.len() + self.digests.len();
        self.tags.retain(|_, v| keep(v));
        self.digests.retain(|_, v| keep(v));
        before != self.tags.len() + self.digests.len()
    }
}

/// A problem `Store::check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is affected, e.g. `layer sha256:...`, `image sha256:...`, `blob sha256:...`.
    pub object: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object, self.message)
    }
}

/// Disk usage for `/system/df`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub layers: Vec<LayerUsage>,
    /// Total bytes of manifests, indexes and configs.
    pub blobs_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerUsage {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub size: u64,
    /// Number of images using this layer.
    pub images: usize,
}
