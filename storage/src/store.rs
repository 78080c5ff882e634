//! `Store`: the on-disk layout, the durability order and the public API.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};

use nix::fcntl::{renameat2, RenameFlags};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::durable::{
    create_dir_durable, fsync_dir, random_name, remove_file_durable, syncfs, write_atomic,
};
use crate::error::{Error, Result};
use crate::extract::Extractor;
use crate::input::{Compression, LayerInput, Limits};
use crate::records::{
    BlobRef, DiskUsage, ImageLayer, ImageRecord, LayerInfo, LayerUsage, NewImage, Problem, Refs,
};
use crate::tarsplit::{rebuild, TarSplitWriter};
use crate::tarstream::extract_tar;

/// Limits applied while extracting layers.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Maximum uncompressed (and compressed) size of one layer.
    pub max_layer_size: u64,
    /// Abort when uncompressed bytes exceed this multiple of the compressed bytes read...
    pub max_expansion_ratio: u64,
    /// ...once more than this many uncompressed bytes have been produced.
    pub expansion_floor: u64,
    /// Cap on pax and GNU long-name header data.
    pub max_header_size: u64,
    /// Remove layers no image uses when the store is opened (leftovers of failed pulls).
    pub prune_on_open: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_layer_size: 64 << 30,
            max_expansion_ratio: 100,
            expansion_floor: 256 << 20,
            max_header_size: 1 << 20,
            prune_on_open: true,
        }
    }
}

/// One layer to extract. `progress` receives the compressed bytes consumed so far.
#[derive(Default)]
pub struct ExtractRequest<'a> {
    /// Chain id of the parent layer (None for the base layer); must be in the store.
    pub parent: Option<&'a Digest>,
    /// The descriptor's media type; None detects the compression from the data (docker load).
    pub media_type: Option<&'a str>,
    /// Digest of the compressed blob as the manifest names it.
    pub expected_blob: Option<&'a Digest>,
    /// The diff_id the image config lists for this layer.
    pub expected_diff_id: Option<&'a Digest>,
    pub progress: Option<&'a mut dyn FnMut(u64)>,
    /// Polled as data flows; set it to abort with `Error::Cancelled`.
    pub cancel: Option<&'a AtomicBool>,
}

/// A layer extracted and flushed in tmp/ but not yet visible; see [`Store::stage_layer`].
#[derive(Debug)]
pub struct StagedLayer {
    dir: PathBuf,
    info: Option<LayerInfo>,
    committed: bool,
}

impl StagedLayer {
    /// What the layer will be once committed.
    pub fn info(&self) -> Option<&LayerInfo> {
        self.info.as_ref()
    }
}

impl Drop for StagedLayer {
    fn drop(&mut self) {
        if !self.committed {
            if let Err(e) = remove_any(&self.dir) {
                tracing::warn!(error = %e, "cannot remove staging directory; it goes at next start");
            }
        }
    }
}

/// The on-disk store. Cheap metadata updates are serialized by one lock; layer extraction
/// runs fully in parallel in private staging directories.
pub struct Store {
    root: PathBuf,
    opts: StoreOptions,
    meta: Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Corrupt {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v)
        .map_err(|e| Error::InvalidArgument(format!("cannot encode record: {e}")))
}

/// Entries of a directory named by a digest hex (optionally with a suffix); others skipped.
fn digest_entries(dir: &Path, suffix: &str) -> Result<Vec<(Digest, PathBuf)>> {
    let mut out = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
    for ent in rd {
        let ent = ent.map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str().and_then(|n| n.strip_suffix(suffix)) else {
            continue;
        };
        if let Ok(d) = Digest::from_hex(name) {
            out.push((d, ent.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    // the guarded data is `()`: a panic elsewhere cannot leave it inconsistent
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct HashWriter {
    h: Sha256,
    n: u64,
}

impl Write for HashWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.h.update(b);
        self.n += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Store {
    /// Open (creating if needed) the store at `root` and run recovery.
    pub fn open(root: &Path, opts: StoreOptions) -> Result<Store> {
        let root = std::path::absolute(root)
            .map_err(|e| Error::io(format!("resolve data root {}", root.display()), e))?;
        let s = Store {
            root,
            opts,
            meta: Mutex::new(()),
        };
        for d in [s.blobs_dir(), s.layers_dir(), s.images_dir(), s.tmp_dir()] {
            create_dir_durable(&d)?;
        }
        s.recover()?;
        Ok(s)
    }

    /// Opens an existing store without changing anything (no recovery): what `skiff check`
    /// uses, so it reports damage instead of repairing it.
    pub fn open_readonly(root: &Path, opts: StoreOptions) -> Result<Store> {
        let root = std::path::absolute(root)
            .map_err(|e| Error::io(format!("resolve data root {}", root.display()), e))?;
        let s = Store {
            root,
            opts,
            meta: Mutex::new(()),
        };
        for d in [s.blobs_dir(), s.layers_dir(), s.images_dir()] {
            if !d.is_dir() {
                return Err(Error::NotFound(format!(
                    "store directory {}; is this a skiff data root?",
                    d.display()
                )));
            }
        }
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("content/blobs/sha256")
    }
    fn layers_dir(&self) -> PathBuf {
        self.root.join("layers/sha256")
    }
    fn images_dir(&self) -> PathBuf {
        self.root.join("images/sha256")
    }
    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
    fn refs_path(&self) -> PathBuf {
        self.root.join("refs.json")
    }
    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }
    fn layer_dir(&self, chain: &Digest) -> PathBuf {
        self.layers_dir().join(chain.hex())
    }
    fn image_path(&self, id: &Digest) -> PathBuf {
        self.images_dir().join(format!("{}.json", id.hex()))
    }

    /// Recovery: empty tmp/, drop layers without layer.json, image records whose config or
    /// layers are missing, and refs to missing images.
    fn recover(&self) -> Result<()> {
        let _g = lock(&self.meta);
        let tmp = self.tmp_dir();
        for ent in fs::read_dir(&tmp).map_err(|e| Error::io("list tmp", e))? {
            let p = ent.map_err(|e| Error::io("list tmp", e))?.path();
            remove_any(&p)?;
        }
        let mut removed = false;
        let rd = fs::read_dir(self.layers_dir()).map_err(|e| Error::io("list layers", e))?;
        for ent in rd {
            let p = ent.map_err(|e| Error::io("list layers", e))?.path();
            let valid = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| Digest::from_hex(n).is_ok());
            if !valid || !p.join("layer.json").is_file() {
                tracing::warn!(path = %p.display(), "recovery: removing incomplete layer");
                self.discard_dir(&p)?;
                removed = true;
            }
        }
        if removed {
            fsync_dir(&self.layers_dir())?;
        }
        for (id, path) in digest_entries(&self.images_dir(), ".json")? {
            let keep = match read_json::<ImageRecord>(&path) {
                Ok(Some(rec)) => {
                    self.has_blob(&id)
                        && rec
                            .layers
                            .iter()
                            .all(|l| self.layer_dir(&l.chain_id).join("layer.json").is_file())
                }
                _ => false,
            };
            if !keep {
                tracing::warn!(image = %id, "recovery: dropping image record with missing parts");
                remove_file_durable(&path)?;
            }
        }
        if self.opts.prune_on_open {
            // nothing is in flight during open: a layer no image uses is a leftover of a
            // failed pull and would otherwise leak disk forever
            self.prune_layers_locked()?;
        }
        let mut refs = self.refs()?;
        if refs.retain_images(|id| self.image_path(id).is_file()) {
            tracing::warn!("recovery: dropping references to missing images");
            self.write_refs(&refs)?;
        }
        Ok(())
    }

    /// Make a directory disappear atomically (rename into tmp/), then delete it.
    fn discard_dir(&self, p: &Path) -> Result<()> {
        let dest = self.tmp_dir().join(random_name("gc-"));
        fs::rename(p, &dest).map_err(|e| Error::io(format!("move {} aside", p.display()), e))?;
        remove_any(&dest)
    }

    // ---- content store ----

    /// Store a small blob (manifest, index, config) after verifying its digest.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let actual = Digest::of(bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what: "blob",
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        if self.has_blob(digest) {
            return Ok(());
        }
        write_atomic(&self.tmp_dir(), &self.blob_path(digest), bytes)
    }

    pub fn get_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        match fs::read(self.blob_path(digest)) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::NotFound(format!("blob {digest}")))
            }
            Err(e) => Err(Error::io(format!("read blob {digest}"), e)),
        }
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    // ---- layers ----

    /// A layer that is fully present, by chain id.
    pub fn layer(&self, chain_id: &Digest) -> Result<Option<LayerInfo>> {
        read_json(&self.layer_dir(chain_id).join("layer.json"))
    }

    pub fn layers(&self) -> Result<Vec<LayerInfo>> {
        let mut out = Vec::new();
        for (chain, _) in digest_entries(&self.layers_dir(), "")? {
            if let Some(l) = self.layer(&chain)? {
                out.push(l);
            }
        }
        Ok(out)
    }

    /// Layers whose uncompressed tar has this diff_id (several chains can share one).
    pub fn layers_by_diff_id(&self, diff_id: &Digest) -> Result<Vec<LayerInfo>> {
        Ok(self
            .layers()?
            .into_iter()
            .filter(|l| &l.diff_id == diff_id)
            .collect())
    }

    /// The extracted files, for an overlay lowerdir.
    pub fn layer_diff_path(&self, chain_id: &Digest) -> PathBuf {
        self.layer_dir(chain_id).join("diff")
    }

    /// Stream-extract one layer blob into the store. On any error nothing remains.
    /// The parent must already be in the store; to extract several layers of one image at
    /// once, use [`Store::stage_layer`] for each and commit them base first.
    pub fn extract_layer(
        &self,
        req: ExtractRequest<'_>,
        input: &mut dyn Read,
    ) -> Result<LayerInfo> {
        if let Some(p) = req.parent {
            if self.layer(p)?.is_none() {
                return Err(Error::NotFound(format!(
                    "parent layer {p}; extract layers base first"
                )));
            }
        }
        let staged = self.stage_layer(req, input)?;
        self.commit_layer(staged)
    }

    /// Extracts one layer into a private staging directory and flushes it to disk, without
    /// making it visible. The parent need not be present yet: layers of one image can stream
    /// at once. Dropping the result without [`Store::commit_layer`] removes it.
    pub fn stage_layer(
        &self,
        req: ExtractRequest<'_>,
        input: &mut dyn Read,
    ) -> Result<StagedLayer> {
        let declared = req
            .media_type
            .map(Compression::from_media_type)
            .transpose()?;
        let staging = self.tmp_dir().join(random_name("layer-"));
        fs::create_dir(&staging)
            .map_err(|e| Error::io(format!("create {}", staging.display()), e))?;
        let mut staged = StagedLayer {
            dir: staging,
            info: None,
            committed: false,
        };
        let info = self.extract_into(&staged.dir, req, declared, input)?;
        staged.info = Some(info);
        Ok(staged)
    }

    fn extract_into(
        &self,
        staging: &Path,
        req: ExtractRequest<'_>,
        declared: Option<Compression>,
        input: &mut dyn Read,
    ) -> Result<LayerInfo> {
        let limits = Limits {
            max_size: self.opts.max_layer_size,
            ratio: self.opts.max_expansion_ratio,
            floor: self.opts.expansion_floor,
        };
        let split = TarSplitWriter::create(&staging.join("tar-split.zst"))?;
        let mut x = Extractor::new(staging, split)?;
        // shorten the callback's trait-object lifetime to this call (it is invariant behind &mut)
        let progress = req.progress.map(|p| p as &mut dyn FnMut(u64));
        let mut li = LayerInput::new(input, declared, limits, progress, req.cancel)?;
        extract_tar(&mut li, &mut x, self.opts.max_header_size)?;
        let size = x.finish()?;
        let tar_size = li.uncompressed;
        let (blob, diff_id, compressed) = li.finish()?;
        if let Some(want) = req.expected_blob {
            if want != &blob {
                return Err(Error::DigestMismatch {
                    what: "layer blob",
                    expected: want.to_string(),
                    actual: blob.to_string(),
                });
            }
        }
        if let Some(want) = req.expected_diff_id {
            if want != &diff_id {
                return Err(Error::DigestMismatch {
                    what: "layer diff_id",
                    expected: want.to_string(),
                    actual: diff_id.to_string(),
                });
            }
        }
        let chain_id = Digest::chain(req.parent, &diff_id);
        let blob_ref = BlobRef {
            digest: blob,
            media_type: req.media_type.map(str::to_string),
            size: compressed,
        };
        let info = LayerInfo {
            chain_id: chain_id.clone(),
            diff_id,
            parent: req.parent.cloned(),
            tar_size,
            size,
            blobs: vec![blob_ref.clone()],
        };
        // layer.json last: a layer directory without it is incomplete by definition
        fs::write(staging.join("layer.json"), to_json(&info)?)
            .map_err(|e| Error::io("write layer.json", e))?;
        // one flush of the whole filesystem instead of an fsync per extracted file
        syncfs(staging)?;

        Ok(info)
    }

    /// Makes a staged layer visible (rename into layers/, fsync the directory). Its parent
    /// must be committed first. A layer some other pull committed meanwhile is kept and the
    /// staged copy dropped.
    pub fn commit_layer(&self, mut staged: StagedLayer) -> Result<LayerInfo> {
        let info = staged
            .info
            .take()
            .ok_or_else(|| Error::InvalidArgument("layer was not staged".into()))?;
        let blob_ref = info.blobs[0].clone();
        let chain_id = info.chain_id.clone();
        let staging = staged.dir.clone();
        let _g = lock(&self.meta);
        if let Some(p) = &info.parent {
            if self.layer(p)?.is_none() {
                return Err(Error::NotFound(format!(
                    "parent layer {p} of {chain_id} is not in the store; commit layers base first, or pull again"
                )));
            }
        }
        let dest = self.layer_dir(&chain_id);
        match renameat2(None, &staging, None, &dest, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => {
                staged.committed = true;
                fsync_dir(&self.layers_dir())?;
                Ok(info)
            }
            Err(nix::errno::Errno::EEXIST) | Err(nix::errno::Errno::ENOTEMPTY) => {
                // another pull got there first: keep theirs, remember our blob digest
                let mut existing = self
                    .layer(&chain_id)?
                    .ok_or_else(|| Error::NotFound(format!("layer {chain_id} vanished")))?;
                if !existing.blobs.iter().any(|b| b.digest == blob_ref.digest) {
                    existing.blobs.push(blob_ref);
                    write_atomic(
                        &self.tmp_dir(),
                        &dest.join("layer.json"),
                        &to_json(&existing)?,
                    )?;
                }
                Ok(existing)
            }
            Err(e) => Err(Error::nix(format!("move layer into {}", dest.display()), e)),
        }
    }

    /// Write the exact original uncompressed tar of a layer; returns its size.
    pub fn write_layer_tar(&self, chain_id: &Digest, out: &mut dyn Write) -> Result<u64> {
        if self.layer(chain_id)?.is_none() {
            return Err(Error::NotFound(format!("layer {chain_id}")));
        }
        rebuild(&self.layer_dir(chain_id), out)
    }

    // ---- images ----

    /// Record an image whose layers are all present. Stores the config blob first.
    pub fn put_image(&self, new: NewImage) -> Result<ImageRecord> {
        let id = Digest::of(&new.config);
        let config: serde_json::Value = serde_json::from_slice(&new.config)
            .map_err(|e| Error::InvalidArgument(format!("image config is not JSON: {e}")))?;
        let diff_ids: Vec<Digest> = config
            .pointer("/rootfs/diff_ids")
            .and_then(|v| v.as_array())
            .ok_or_else(|| Error::InvalidArgument("image config has no rootfs.diff_ids".into()))?
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| Error::InvalidArgument("diff_id is not a string".into()))
                    .and_then(Digest::parse)
            })
            .collect::<Result<_>>()?;
        let created = config
            .get("created")
            .and_then(|v| v.as_str())
            .map(str::to_string);

        let _g = lock(&self.meta);
        let mut layers = Vec::new();
        let mut size = 0;
        let mut parent: Option<Digest> = None;
        for chain in &new.layers {
            let info = self
                .layer(chain)?
                .ok_or_else(|| Error::NotFound(format!("layer {chain}")))?;
            if info.parent != parent {
                return Err(Error::InvalidArgument(format!(
                    "layer {chain} does not sit on the layer before it"
                )));
            }
            size += info.size;
            layers.push(ImageLayer {
                chain_id: chain.clone(),
                diff_id: info.diff_id,
            });
            parent = Some(chain.clone());
        }
        let have: Vec<&Digest> = layers.iter().map(|l| &l.diff_id).collect();
        if have != diff_ids.iter().collect::<Vec<_>>() {
            return Err(Error::InvalidArgument(
                "the layers do not match the config's rootfs.diff_ids".into(),
            ));
        }
        for m in &new.manifests {
            if !self.has_blob(m) {
                return Err(Error::NotFound(format!(
                    "manifest blob {m}; store it with put_blob first"
                )));
            }
        }
        self.put_blob(&id, &new.config)?;
        let previous: Option<ImageRecord> = read_json(&self.image_path(&id))?;
        let mut manifests = previous
            .as_ref()
            .map(|p| p.manifests.clone())
            .unwrap_or_default();
        for m in new.manifests {
            if !manifests.contains(&m) {
                manifests.push(m);
            }
        }
        let rec = ImageRecord {
            id: id.clone(),
            manifests,
            layers,
            created,
            added: previous
                .map(|p| p.added)
                .unwrap_or_else(|| chrono::Utc::now().to_rfc3339()),
            size,
        };
        write_atomic(&self.tmp_dir(), &self.image_path(&id), &to_json(&rec)?)?;
        Ok(rec)
    }

    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        read_json(&self.image_path(id))
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let mut out = Vec::new();
        for (_, path) in digest_entries(&self.images_dir(), ".json")? {
            if let Some(r) = read_json(&path)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The image's config bytes (its id is their digest).
    pub fn image_config(&self, id: &Digest) -> Result<Vec<u8>> {
        self.get_blob(id)
    }

    /// Remove an image record, every reference to it, and the layers no other image uses.
    /// Returns the chain ids of the deleted layers.
    pub fn delete_image(&self, id: &Digest) -> Result<Vec<Digest>> {
        let _g = lock(&self.meta);
        let rec: ImageRecord = read_json(&self.image_path(id))?
            .ok_or_else(|| Error::NotFound(format!("image {id}")))?;
        // reverse of creation order: refs, then the record, then layers
        let mut refs = self.refs()?;
        if refs.retain_images(|v| v != id) {
            self.write_refs(&refs)?;
        }
        remove_file_durable(&self.image_path(id))?;
        let mut used = HashSet::new();
        for (_, path) in digest_entries(&self.images_dir(), ".json")? {
            if let Some(other) = read_json::<ImageRecord>(&path)? {
                used.extend(other.layers.into_iter().map(|l| l.chain_id));
            }
        }
        let mut deleted = Vec::new();
        for l in rec.layers.iter().rev() {
            if used.contains(&l.chain_id) || !self.layer_dir(&l.chain_id).exists() {
                continue;
            }
            self.discard_dir(&self.layer_dir(&l.chain_id))?;
            deleted.push(l.chain_id.clone());
        }
        if !deleted.is_empty() {
            fsync_dir(&self.layers_dir())?;
        }
        Ok(deleted)
    }

    /// Remove every layer no image record uses; returns their chain ids. Layers extracted
    /// for a pull or load whose image is not recorded yet count as unused: call this only
    /// when no pull, load or delta is in flight.
    pub fn prune_layers(&self) -> Result<Vec<Digest>> {
        let _g = lock(&self.meta);
        self.prune_layers_locked()
    }

    fn prune_layers_locked(&self) -> Result<Vec<Digest>> {
        let mut used = HashSet::new();
        for (_, path) in digest_entries(&self.images_dir(), ".json")? {
            if let Some(rec) = read_json::<ImageRecord>(&path)? {
                used.extend(rec.layers.into_iter().map(|l| l.chain_id));
            }
        }
        let mut deleted = Vec::new();
        for (chain, path) in digest_entries(&self.layers_dir(), "")? {
            if !used.contains(&chain) {
                self.discard_dir(&path)?;
                deleted.push(chain);
            }
        }
        if !deleted.is_empty() {
            fsync_dir(&self.layers_dir())?;
        }
        Ok(deleted)
    }

    // ---- references ----

    pub fn refs(&self) -> Result<Refs> {
        Ok(read_json(&self.refs_path())?.unwrap_or_default())
    }

    fn write_refs(&self, refs: &Refs) -> Result<()> {
        write_atomic(&self.tmp_dir(), &self.refs_path(), &to_json(refs)?)
    }

    fn update_refs(&self, reference: &str, id: &Digest, digest: bool) -> Result<()> {
        if reference.is_empty() || reference.chars().any(char::is_control) {
            return Err(Error::InvalidArgument(format!(
                "invalid reference {reference:?}"
            )));
        }
        let _g = lock(&self.meta);
        if !self.image_path(id).is_file() {
            return Err(Error::NotFound(format!("image {id}")));
        }
        let mut refs = self.refs()?;
        let map = if digest {
            &mut refs.digests
        } else {
            &mut refs.tags
        };
        if map.get(reference) == Some(id) {
            return Ok(());
        }
        map.insert(reference.to_string(), id.clone());
        self.write_refs(&refs)
    }

    /// Point a tag (already normalized by the caller) at an image.
    pub fn set_tag(&self, reference: &str, id: &Digest) -> Result<()> {
        self.update_refs(reference, id, false)
    }

    /// Remember `repo@sha256:...` for an image.
    pub fn add_repo_digest(&self, reference: &str, id: &Digest) -> Result<()> {
        self.update_refs(reference, id, true)
    }

    /// Remove a tag or digest reference; false if it did not exist.
    pub fn remove_ref(&self, reference: &str) -> Result<bool> {
        let _g = lock(&self.meta);
        let mut refs = self.refs()?;
        let had = refs.tags.remove(reference).is_some() | refs.digests.remove(reference).is_some();
        if had {
            self.write_refs(&refs)?;
        }
        Ok(had)
    }

    // ---- usage and check ----

    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let images = self.images()?;
        let mut layers = Vec::new();
        for l in self.layers()? {
            let n = images
                .iter()
                .filter(|i| i.layers.iter().any(|x| x.chain_id == l.chain_id))
                .count();
            layers.push(LayerUsage {
                chain_id: l.chain_id,
                diff_id: l.diff_id,
                size: l.size,
                images: n,
            });
        }
        let mut blobs_bytes = 0;
        for (_, p) in digest_entries(&self.blobs_dir(), "")? {
            blobs_bytes += fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        }
        Ok(DiskUsage {
            layers,
            blobs_bytes,
        })
    }

    /// Verify the whole store. `deep` also rebuilds every layer tar and checks its diff_id.
    pub fn check(&self, deep: bool) -> Result<Vec<Problem>> {
        crate::check::run(self, deep)
    }

    pub(crate) fn check_parts(&self) -> (PathBuf, PathBuf, PathBuf) {
        (self.blobs_dir(), self.layers_dir(), self.images_dir())
    }

    pub(crate) fn layer_path(&self, chain: &Digest) -> PathBuf {
        self.layer_dir(chain)
    }

    /// Rebuild a layer tar and return (diff_id, size) without writing it anywhere.
    pub(crate) fn rehash_layer(&self, chain: &Digest) -> Result<(Digest, u64)> {
        let mut w = HashWriter {
            h: Sha256::new(),
            n: 0,
        };
        rebuild(&self.layer_dir(chain), &mut w)?;
        Ok((Digest::hasher_result(w.h), w.n))
    }
}

fn remove_any(p: &Path) -> Result<()> {
    let r = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    r.map_err(|e| Error::io(format!("remove {}", p.display()), e))
}
