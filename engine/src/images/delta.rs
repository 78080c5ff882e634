//! Delta images, as balenaEngine defines them: `POST /images/delta` makes an ordinary image
//! whose layer `i` is either the empty layer (target layer `i` is the base image's layer
//! `i`) or a single-entry tar holding one file `delta` that rebuilds target layer `i` from
//! the base image. Its config labels name the base image ID (`io.resin.delta.base`) and
//! carry the target's config JSON verbatim (`io.resin.delta.config`); skiff adds
//! `io.skiff.delta.version`. Any registry stores such an image; docker push sends it.
//!
//! A pull or load of a delta image applies it: each `delta` file is a skiff delta
//! (docs/delta-format.md, made by skiff) or a librsync delta (balenaEngine's, against the
//! base image's layer tars laid end to end), recognised by its magic. The rebuilt tar
//! streams straight into the layer extractor, is checked against the target config's
//! diff_id, and the target image is recorded under its own ID only when every layer
//! verified; on any error nothing is left behind.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use skiff_api::{ApiError, ErrorKind, Progress, ProgressMessage};
use skiff_delta::{ConcatBasis, CreateOptions, DeltaError, DirBase};
use skiff_storage::{Digest, ExtractRequest, ImageRecord, NewImage, StagedLayer, Store};
use tokio_util::io::SyncIoBridge;

use super::errors::{self, blocking};
use super::names::{self, Matched};
use super::ImageService;
use super::PROGRESS_EVERY;
use crate::registry::{Reference, Repository, ResolvedImage};

pub const LABEL_BASE: &str = "io.resin.delta.base";
pub const LABEL_CONFIG: &str = "io.resin.delta.config";
pub const LABEL_VERSION: &str = "io.skiff.delta.version";
/// How often a delta layer's byte count goes out while it streams.
/// The one member of a delta layer tar.
const DELTA_ENTRY: &str = "delta";
/// The delta image format version skiff writes (the layout above; the skiff delta inside
/// has its own version in its header).
const IMAGE_FORMAT_VERSION: &str = "1";
/// A tar of nothing: two zero blocks (docker's empty layer; its diff_id is well known).
const EMPTY_LAYER: [u8; 1024] = [0u8; 1024];

/// What a delta image's config says.
#[derive(Debug, Clone)]
pub struct DeltaImage {
    pub base: Digest,
    /// The target image's config, byte for byte: its sha256 is the target image ID.
    pub target_config: Vec<u8>,
}

/// Recognises a delta image by its config labels. `Ok(None)` for an ordinary image.
pub fn detect(config: &[u8]) -> Result<Option<DeltaImage>, ApiError> {
    let v: Value = serde_json::from_slice(config).map_err(|e| {
        ApiError::invalid_argument(format!(
            "invalid image config: {e}; the image is malformed, rebuild or re-push it"
        ))
    })?;
    let label = |k: &str| v.pointer("/config/Labels").and_then(|l| l.get(k));
    let Some(base) = label(LABEL_BASE) else {
        return Ok(None);
    };
    let bad = |m: String| {
        ApiError::invalid_argument(format!(
            "invalid delta image: {m}; recreate the delta or pull the full image"
        ))
    };
    let base = base
        .as_str()
        .ok_or_else(|| bad(format!("label {LABEL_BASE} is not a string")))?;
    let base = Digest::parse(base)
        .map_err(|e| bad(format!("label {LABEL_BASE} is not an image ID ({e})")))?;
    let target_config = label(LABEL_CONFIG)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("label {LABEL_CONFIG} is missing")))?
        .as_bytes()
        .to_vec();
    if let Some(ver) = label(LABEL_VERSION) {
        if ver.as_str() != Some(IMAGE_FORMAT_VERSION) {
            return Err(ApiError::invalid_argument(format!(
                "delta image format version {ver} is not supported (this build reads {IMAGE_FORMAT_VERSION}); upgrade skiff or pull the full image"
            )));
        }
    }
    Ok(Some(DeltaImage {
        base,
        target_config,
    }))
}

/// What applying a delta image needs, checked before any layer byte is fetched.
pub struct Plan {
    base: ImageRecord,
    /// tar sizes of the base layers (the librsync basis is their concatenation).
    base_tar_sizes: Vec<u64>,
    pub target_config: Vec<u8>,
    pub diff_ids: Vec<Digest>,
    pub chain: Vec<Digest>,
    /// Target layers to rebuild (the others are already in the store).
    pub todo: Vec<usize>,
}

/// Checks the base is here and the delta fits the target config; lists the layers to
/// rebuild. Blocking.
pub fn plan(store: &Store, delta: &DeltaImage, delta_layers: usize) -> Result<Plan, ApiError> {
    let base = store
        .image(&delta.base)
        .map_err(errors::store)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "delta base image {} is not present locally; pull the full image instead",
                delta.base
            ))
        })?;
    let mut base_tar_sizes = Vec::with_capacity(base.layers.len());
    for l in &base.layers {
        let info = store.layer(&l.chain_id).map_err(errors::store)?.ok_or_else(|| {
            ApiError::not_found(format!(
                "layer {} of delta base image {} is missing; run `skiff check` or pull the full image",
                l.chain_id, delta.base
            ))
        })?;
        base_tar_sizes.push(info.tar_size);
    }
    for (what, bytes) in [("target config", &delta.target_config)] {
        if let Err(e) = std::str::from_utf8(bytes) {
            return Err(ApiError::invalid_argument(format!(
                "invalid delta image: the {what} is not UTF-8 ({e})"
            )));
        }
    }
    let diff_ids = super::pull::diff_ids(&delta.target_config, delta_layers).map_err(|e| {
        ApiError::invalid_argument(format!(
            "invalid delta image: {}; the delta does not describe its target",
            e.message
        ))
    })?;
    let mut chain = Vec::with_capacity(diff_ids.len());
    let mut parent: Option<Digest> = None;
    for d in &diff_ids {
        let c = Digest::chain(parent.as_ref(), d);
        chain.push(c.clone());
        parent = Some(c);
    }
    let mut todo = Vec::new();
    for (i, c) in chain.iter().enumerate() {
        if store.layer(c).map_err(errors::store)?.is_none() {
            todo.push(i);
        }
    }
    Ok(Plan {
        base,
        base_tar_sizes,
        target_config: delta.target_config.clone(),
        diff_ids,
        chain,
        todo,
    })
}

/// Hashes what is read through it (the compressed blob, to check its digest).
struct HashRead<'a> {
    inner: &'a mut (dyn Read + Send),
    h: Sha256,
    /// Compressed bytes read so far, for progress.
    seen: Option<&'a AtomicU64>,
}

impl Read for HashRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.h.update(&buf[..n]);
        if let Some(seen) = self.seen {
            seen.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

fn io_err(e: DeltaError) -> io::Error {
    io::Error::other(e.to_string())
}

fn store_io(e: skiff_storage::Error) -> io::Error {
    io::Error::other(e.to_string())
}

/// Rebuilds target layer `i` from the delta layer blob `blob` (gzip, zstd or plain tar)
/// into a staged layer. Blocking. `expected_blob` is the blob's digest, when known.
pub fn apply_layer(
    store: &Arc<Store>,
    plan: &Plan,
    i: usize,
    blob: &mut (dyn Read + Send),
    expected_blob: Option<&Digest>,
    cancel: &AtomicBool,
    seen: Option<&AtomicU64>,
) -> Result<StagedLayer, ApiError> {
    let base_chain: Vec<Digest> = plan
        .base
        .layers
        .iter()
        .map(|l| l.chain_id.clone())
        .collect();
    let sizes = plan.base_tar_sizes.clone();
    let base_ids: Vec<String> = plan
        .base
        .layers
        .iter()
        .map(|l| l.diff_id.to_string())
        .collect();
    let produce = |w: &mut dyn Write| -> io::Result<()> {
        let mut hashed = HashRead {
            inner: blob,
            h: Sha256::new(),
            seen,
        };
        {
            let mut tar = tar::Archive::new(decompress(&mut hashed)?);
            let mut entries = tar.entries()?;
            let mut entry = entries.next().ok_or_else(|| {
                io::Error::other(format!(
                    "delta layer {i} is empty but target layer {i} is not in the local base image; the base image differs from the one the delta was made for"
                ))
            })??;
            let name = String::from_utf8_lossy(&entry.path_bytes()).to_string();
            if name != DELTA_ENTRY {
                return Err(io::Error::other(format!(
                    "delta layer {i} holds {name:?}, not {DELTA_ENTRY:?}; this is not a delta image layer"
                )));
            }
            apply_entry(store, &base_chain, &base_ids, &sizes, &mut entry, w)?;
            // the tar must end here: one entry only
            io::copy(&mut entry, &mut io::sink())?;
            if entries.next().is_some() {
                return Err(io::Error::other(format!(
                    "delta layer {i} holds more than one entry; this is not a delta image layer"
                )));
            }
        }
        io::copy(&mut hashed, &mut io::sink())?;
        if let Some(want) = expected_blob {
            let got = Digest::from_sha256(&hashed.h.finalize().into());
            if &got != want {
                return Err(io::Error::other(format!(
                    "delta layer {i} has digest {got}, the manifest says {want}; it is corrupt"
                )));
            }
        }
        Ok(())
    };
    let parent = i.checked_sub(1).map(|p| plan.chain[p].clone());
    let diff_id = plan.diff_ids[i].clone();
    let consume = |r: &mut dyn Read| {
        store.stage_layer(
            ExtractRequest {
                parent: parent.as_ref(),
                media_type: None,
                expected_blob: None,
                expected_diff_id: Some(&diff_id),
                progress: None,
                cancel: Some(cancel),
            },
            r,
        )
    };
    let (produced, consumed) = skiff_delta::pipe(produce, consume);
    match (produced, consumed) {
        (Ok(()), Ok(staged)) => Ok(staged),
        // the producer's error names the cause; the extractor only saw a broken stream
        (Err(e), _) => Err(ApiError::new(
            kind_of(&e),
            format!(
                "cannot apply the delta for layer {}: {e}{}",
                plan.diff_ids[i],
                fallback_hint(&e.to_string())
            ),
        )),
        (Ok(()), Err(e)) => {
            let e = errors::store(e);
            Err(ApiError::new(
                e.kind,
                format!(
                    "the delta for layer {} did not rebuild it: {}; pull the full image instead",
                    plan.diff_ids[i], e.message
                ),
            ))
        }
    }
}

/// The advice to fall back, unless the message already gives it.
fn fallback_hint(msg: &str) -> &'static str {
    if msg.contains("full pull") || msg.contains("full image") {
        ""
    } else {
        "; pull the full image instead"
    }
}

fn kind_of(e: &io::Error) -> ErrorKind {
    let s = e.to_string();
    if s.contains("base image differs") || s.contains("does not match") {
        ErrorKind::Conflict
    } else {
        ErrorKind::InvalidArgument
    }
}

/// Gzip or zstd by magic, else plain.
fn decompress<'a>(r: &'a mut dyn Read) -> io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(64 * 1024, r);
    let head = br.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(br))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(br)?)
    } else {
        Box::new(br)
    })
}

/// Streams base layer `chain`'s exact tar (rebuilt from its tar-split record).
fn layer_tar(store: &Arc<Store>, chain: &Digest) -> Box<dyn Read + Send> {
    let store = store.clone();
    let chain = chain.clone();
    Box::new(skiff_delta::reader_from_writer(move |w| {
        store
            .write_layer_tar(&chain, w)
            .map(|_| ())
            .map_err(store_io)
    }))
}

/// Bytes of a `delta` file read ahead to recognise it (a skiff header with 4096 base
/// layers is 131 KiB; longer headers just skip the early base check).
const HEAD_LEN: usize = 64 * 1024;

/// Applies one `delta` file: a skiff delta or a librsync delta, by magic.
fn apply_entry(
    store: &Arc<Store>,
    base_chain: &[Digest],
    base_diff_ids: &[String],
    base_sizes: &[u64],
    entry: &mut dyn Read,
    out: &mut dyn Write,
) -> io::Result<()> {
    // the first bytes decide the format (and hold a skiff delta's header); reads may be
    // short, so fill the head fully before looking, then replay it
    let mut head = Vec::with_capacity(HEAD_LEN);
    entry.take(HEAD_LEN as u64).read_to_end(&mut head)?;
    let mut br = io::Cursor::new(head.clone()).chain(entry);
    if skiff_delta::is_rsync_delta(&head) {
        let mut basis = ConcatBasis::new(base_sizes, |l| {
            let chain = base_chain
                .get(l)
                .ok_or_else(|| io::Error::other("no such base layer"))?;
            Ok(layer_tar(store, chain) as Box<dyn Read>)
        });
        // a target rarely repeats more than its basis: refuse copy bombs early
        let limit = basis.len().saturating_mul(2).saturating_add(64 << 20);
        skiff_delta::rsync_patch_limited(&mut basis, &mut br, out, limit).map_err(io_err)?;
        return Ok(());
    }
    if !head.starts_with(b"SKFDELTA") {
        return Err(io::Error::other(
            "the delta layer's file is neither a skiff delta nor a librsync delta; recreate the delta or pull the full image instead",
        ));
    }
    // a skiff delta names the base layers it was made against: refuse another base early
    if let Some(want) = skiff_delta::header_base_diff_ids(&head).map_err(io_err)? {
        if want != base_diff_ids {
            return Err(io::Error::other(format!(
                "the delta was made against base layers [{}] but the local base image has [{}]; the base image differs from the one the delta was made for, pull the full image instead",
                want.join(", "),
                base_diff_ids.join(", ")
            )));
        }
    }
    let roots = base_chain
        .iter()
        .map(|c| store.layer_diff_path(c))
        .collect();
    let base = DirBase::new(roots).with_tar_streams(|l| {
        let chain = base_chain
            .get(l)
            .ok_or_else(|| io::Error::other("no such base layer"))?;
        Ok(layer_tar(store, chain) as Box<dyn Read>)
    });
    skiff_delta::apply(&base, &mut br, out).map_err(io_err)?;
    Ok(())
}

/// Makes the staged layers visible base first, records the target image and tags it.
/// Blocking. Returns the target image ID.
pub fn commit(
    store: &Store,
    plan: &Plan,
    staged: Vec<StagedLayer>,
    tags: &[String],
) -> Result<Digest, ApiError> {
    for layer in staged {
        store.commit_layer(layer).map_err(errors::store)?;
    }
    let rec = store
        .put_image(NewImage {
            config: plan.target_config.clone(),
            layers: plan.chain.clone(),
            manifests: Vec::new(),
        })
        .map_err(errors::store)?;
    for key in tags {
        store.set_tag(key, &rec.id).map_err(errors::store)?;
    }
    Ok(rec.id)
}

/// `docker pull` of a delta image: everything after resolving the manifest and reading
/// its config. Missing base and malformed delta images fail before any layer is fetched.
pub async fn pull(
    svc: &ImageService,
    repo: &Repository,
    reference: &Reference,
    image: &ResolvedImage,
    delta: DeltaImage,
    progress: &Progress,
) -> Result<(), ApiError> {
    let store = svc.store.clone();
    let n = image.layers.len();
    let (plan, had_target) = blocking(move || {
        let had = store
            .image(&Digest::of(&delta.target_config))
            .map_err(errors::store)?
            .is_some();
        Ok((plan(&store, &delta, n)?, had))
    })
    .await?;
    let plan = Arc::new(plan);
    progress
        .status(
            format!("Pulling delta from {}", reference.path()),
            reference.tag(),
        )
        .await?;
    let short = |i: usize| names::short_id(&plan.diff_ids[i]).to_string();
    for i in 0..n {
        if !plan.todo.contains(&i) {
            progress.status("Already exists", Some(&short(i))).await?;
        }
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = super::pull::CancelOnDrop(cancel.clone());
    let mut staged = Vec::new();
    for &i in &plan.todo {
        let desc = &image.layers[i];
        progress.status("Applying delta", Some(&short(i))).await?;
        let blob = Digest::parse(desc.digest.as_str()).map_err(errors::store)?;
        let reader = SyncIoBridge::new(repo.blob_stream(desc));
        let (store, plan2, cancel2) = (svc.store.clone(), plan.clone(), cancel.clone());
        let seen = Arc::new(AtomicU64::new(0));
        let seen2 = seen.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            apply_layer(
                &store,
                &plan2,
                i,
                &mut reader,
                Some(&blob),
                &cancel2,
                Some(&seen2),
            )
        });
        tokio::pin!(task);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        let mut last = u64::MAX;
        let total = desc.size as i64;
        let layer = loop {
            tokio::select! {
                r = &mut task => break r.map_err(errors::join)??,
                _ = tick.tick() => {
                    let n = seen.load(Ordering::Relaxed);
                    if n != last {
                        last = n;
                        progress
                            .send(ProgressMessage::progress("Downloading delta", &short(i), n as i64, total))
                            .await?;
                    }
                }
            }
        };
        progress.status("Delta applied", Some(&short(i))).await?;
        staged.push(layer);
    }
    let tags: Vec<String> = reference
        .tag()
        .map(|_| names::store_key(reference))
        .into_iter()
        .collect();
    let store = svc.store.clone();
    let plan2 = plan.clone();
    let id = blocking(move || commit(&store, &plan2, staged, &tags)).await?;
    progress
        .status(format!("Delta applied: {id}"), None)
        .await?;
    let verdict = if had_target {
        "Image is up to date for"
    } else {
        "Downloaded newer image for"
    };
    progress
        .status(
            format!("Status: {verdict} {}", reference.familiar_string()),
            None,
        )
        .await?;
    Ok(())
}

// ------------------------------------------------------------------------------ create

/// `POST /images/delta?src=&dest=&t=`: balenaEngine's progress lines, then
/// `Normal size: …, Delta size: …, N.NNx improvement`, `Created delta: sha256:…` and, when
/// tagged, `Successfully tagged …`. Without `t` the delta is tagged
/// `<dest repo>:delta-<short src id>` when `dest` names a repository.
pub async fn create(
    svc: &ImageService,
    src: &str,
    dest: &str,
    tag: Option<&str>,
    progress: Progress,
) -> Result<(), ApiError> {
    let (src_id, _) = svc
        .lookup(src)
        .await
        .map_err(|e| ApiError::new(e.kind, format!("no such image: {src}: {}", e.message)))?;
    let (dest_id, matched) = svc
        .lookup(dest)
        .await
        .map_err(|e| ApiError::new(e.kind, format!("no such image: {dest}: {}", e.message)))?;
    let tag_key = match tag.filter(|t| !t.is_empty()) {
        Some(t) => {
            let r = Reference::parse_normalized_named(t).map_err(errors::registry)?;
            if r.digest().is_some() {
                return Err(ApiError::invalid_argument(
                    "a delta tag cannot contain a digest; give repo[:tag]",
                ));
            }
            let r = if r.tag().is_none() {
                r.with_tag("latest").map_err(errors::registry)?
            } else {
                r
            };
            Some(names::store_key(&r))
        }
        None => match &matched {
            Matched::Reference(key) => {
                let repo = names::repository(key);
                Some(format!("{repo}:delta-{}", names::short_id(&src_id)))
            }
            Matched::Id => None,
        },
    };
    let store = svc.store.clone();
    let (s, d) = (src_id.clone(), dest_id.clone());
    let (src_rec, dest_rec, dest_config) = blocking(move || {
        let get = |id: &Digest| {
            store
                .image(id)
                .map_err(errors::store)?
                .ok_or_else(|| ApiError::not_found(format!("No such image: {id}")))
        };
        Ok((
            get(&s)?,
            get(&d)?,
            store.image_config(&d).map_err(errors::store)?,
        ))
    })
    .await?;
    for l in &dest_rec.layers {
        progress
            .status("Waiting", Some(names::short_id(&l.diff_id)))
            .await?;
    }

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let store = svc.store.clone();
    let task = tokio::task::spawn_blocking(move || {
        build_delta_image(&store, &src_rec, &dest_rec, dest_config, tag_key, &tx)
    });
    // progress lines as the blocking work reports them
    while let Some((id, status)) = rx.recv().await {
        progress
            .status(
                status,
                Some(&id).filter(|i| !i.is_empty()).map(|s| s.as_str()),
            )
            .await?;
    }
    let made = task.await.map_err(errors::join)??;
    let ratio = if made.delta_size == 0 {
        1.0
    } else {
        made.total_size as f64 / made.delta_size as f64
    };
    progress
        .status(
            format!(
                "Normal size: {}, Delta size: {}, {ratio:.2}x improvement",
                human_size(made.total_size),
                human_size(made.delta_size)
            ),
            None,
        )
        .await?;
    progress
        .status(format!("Created delta: {}", made.id), None)
        .await?;
    if let Some(key) = made.tag {
        progress
            .status(
                format!("Successfully tagged {}", names::familiar(&key)),
                None,
            )
            .await?;
    }
    Ok(())
}

struct Made {
    id: Digest,
    total_size: u64,
    delta_size: u64,
    tag: Option<String>,
}

type Report = tokio::sync::mpsc::UnboundedSender<(String, String)>;

fn build_delta_image(
    store: &Arc<Store>,
    src: &ImageRecord,
    dest: &ImageRecord,
    dest_config: Vec<u8>,
    tag_key: Option<String>,
    report: &Report,
) -> Result<Made, ApiError> {
    let say = |id: &Digest, s: &str| {
        let _ = report.send((names::short_id(id).to_string(), s.to_string()));
    };
    let target: Value = serde_json::from_slice(&dest_config).map_err(|e| {
        ApiError::internal(format!("stored config of {} is not JSON: {e}", dest.id))
    })?;
    let tmp = store.root().join("tmp");
    // base layer tars, rebuilt once into anonymous files (create reads them whole)
    let mut base_files: Option<Vec<std::fs::File>> = None;
    let mut staged = Vec::new();
    let mut diff_ids = Vec::new();
    let mut parent: Option<Digest> = None;
    let (mut total_size, mut delta_size) = (0u64, 0u64);
    for (i, layer) in dest.layers.iter().enumerate() {
        let common = src.layers.get(i).map(|l| &l.chain_id) == Some(&layer.chain_id);
        let staged_layer = if common {
            say(&layer.diff_id, "Skipping common layer");
            store
                .stage_layer(
                    ExtractRequest {
                        parent: parent.as_ref(),
                        ..Default::default()
                    },
                    &mut &EMPTY_LAYER[..],
                )
                .map_err(errors::store)?
        } else {
            say(&layer.diff_id, "Computing delta");
            if base_files.is_none() {
                say(&src.id, "Fingerprinting");
                let mut files = Vec::new();
                for l in &src.layers {
                    let mut f = tempfile::tempfile_in(&tmp).map_err(|e| {
                        ApiError::internal(format!(
                            "cannot create a temp file in {}: {e}",
                            tmp.display()
                        ))
                    })?;
                    store
                        .write_layer_tar(&l.chain_id, &mut f)
                        .map_err(errors::store)?;
                    files.push(f);
                }
                base_files = Some(files);
            }
            let files = base_files
                .as_mut()
                .ok_or_else(|| ApiError::internal("no base files"))?;
            let mut delta = tempfile::tempfile_in(&tmp).map_err(|e| {
                ApiError::internal(format!(
                    "cannot create a temp file in {}: {e}",
                    tmp.display()
                ))
            })?;
            let stats = {
                let mut refs: Vec<&mut dyn skiff_delta::ReadSeek> = files
                    .iter_mut()
                    .map(|f| f as &mut dyn skiff_delta::ReadSeek)
                    .collect();
                let mut target_tar = layer_tar(store, &layer.chain_id);
                let mut out = io::BufWriter::new(&mut delta);
                let stats = skiff_delta::create(
                    &mut refs,
                    &mut target_tar,
                    &mut out,
                    &CreateOptions::default(),
                )
                .map_err(|e| {
                    ApiError::internal(format!(
                        "cannot create the delta for layer {}: {e}",
                        layer.diff_id
                    ))
                })?;
                out.flush()
                    .map_err(|e| ApiError::internal(format!("cannot write the delta: {e}")))?;
                stats
            };
            total_size += stats.target_size;
            delta_size += stats.delta_size;
            let staged = stage_delta_tar(store, parent.as_ref(), &mut delta, stats.delta_size)?;
            say(&layer.diff_id, "Delta complete");
            staged
        };
        let info = staged_layer
            .info()
            .ok_or_else(|| ApiError::internal("staged layer has no info"))?;
        diff_ids.push(info.diff_id.to_string());
        parent = Some(info.chain_id.clone());
        staged.push(staged_layer);
    }
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let target_text = String::from_utf8(dest_config).map_err(|e| {
        ApiError::internal(format!("stored config of {} is not UTF-8: {e}", dest.id))
    })?;
    let config = json!({
        "architecture": target.get("architecture").cloned().unwrap_or(json!("amd64")),
        "os": target.get("os").cloned().unwrap_or(json!("linux")),
        "created": created,
        "config": {
            "Labels": {
                LABEL_BASE: src.id.to_string(),
                LABEL_CONFIG: target_text,
                LABEL_VERSION: IMAGE_FORMAT_VERSION,
            }
        },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config = serde_json::to_vec(&config)
        .map_err(|e| ApiError::internal(format!("cannot encode the delta config: {e}")))?;
    let mut chain = Vec::new();
    for layer in staged {
        chain.push(store.commit_layer(layer).map_err(errors::store)?.chain_id);
    }
    let rec = store
        .put_image(NewImage {
            config,
            layers: chain,
            manifests: Vec::new(),
        })
        .map_err(errors::store)?;
    if let Some(key) = &tag_key {
        store.set_tag(key, &rec.id).map_err(errors::store)?;
    }
    Ok(Made {
        id: rec.id,
        total_size,
        delta_size,
        tag: tag_key,
    })
}

/// Stages the single-entry tar `delta` (mode 0600, owner 0, mtime 0) holding `file`.
fn stage_delta_tar(
    store: &Store,
    parent: Option<&Digest>,
    file: &mut std::fs::File,
    size: u64,
) -> Result<StagedLayer, ApiError> {
    use std::io::Seek;
    file.seek(io::SeekFrom::Start(0))
        .map_err(|e| ApiError::internal(format!("cannot rewind the delta: {e}")))?;
    let produce = |w: &mut dyn Write| -> io::Result<()> {
        let mut b = tar::Builder::new(w);
        let mut h = tar::Header::new_ustar();
        h.set_path(DELTA_ENTRY)?;
        h.set_size(size);
        h.set_mode(0o600);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, &mut *file)?;
        b.finish()
    };
    let consume = |r: &mut dyn Read| {
        store.stage_layer(
            ExtractRequest {
                parent,
                ..Default::default()
            },
            r,
        )
    };
    match skiff_delta::pipe(produce, consume) {
        (Ok(()), Ok(s)) => Ok(s),
        (Err(e), _) => Err(ApiError::internal(format!(
            "cannot write the delta layer: {e}"
        ))),
        (_, Err(e)) => Err(errors::store(e)),
    }
}

/// go-units' HumanSize: decimal units, four significant digits.
fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    let digits: String = if v >= 100.0 {
        format!("{v:.1}")
    } else if v >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    let digits = if digits.contains('.') {
        digits
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        digits
    };
    format!("{digits}{}", units[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_delta_images_by_labels() {
        assert!(detect(br#"{"config":{"Labels":{"a":"b"}}}"#)
            .unwrap()
            .is_none());
        let id = format!("sha256:{}", "a".repeat(64));
        let cfg = json!({"config":{"Labels":{LABEL_BASE: id, LABEL_CONFIG: "{\"x\":1}"}}});
        let d = detect(&serde_json::to_vec(&cfg).unwrap()).unwrap().unwrap();
        assert_eq!(d.base.as_str(), id);
        assert_eq!(d.target_config, b"{\"x\":1}");
        let cfg = json!({"config":{"Labels":{LABEL_BASE: id}}});
        assert!(detect(&serde_json::to_vec(&cfg).unwrap()).is_err());
        let cfg = json!({"config":{"Labels":{LABEL_BASE: "nope", LABEL_CONFIG: "{}"}}});
        assert!(detect(&serde_json::to_vec(&cfg).unwrap()).is_err());
        let cfg =
            json!({"config":{"Labels":{LABEL_BASE: id, LABEL_CONFIG: "{}", LABEL_VERSION: "9"}}});
        assert!(detect(&serde_json::to_vec(&cfg).unwrap()).is_err());
    }

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1500), "1.5kB");
        assert_eq!(human_size(123_456_789), "123.5MB");
    }
}
