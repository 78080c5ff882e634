//! `POST /images/{name}/push`: local image -> registry, with docker's JSON progress lines.
//!
//! The store keeps layers extracted, not their compressed blobs, so each layer is rebuilt
//! (`write_layer_tar`, byte-exact), gzip-compressed (level 6, no timestamp: the same layer
//! always gives the same blob) into a temp file under the store's `tmp/` while being hashed
//! (the digest must be known before the upload ends), then sent in chunks. The temp file
//! costs disk, not memory, and avoids compressing twice. A blob the registry already has
//! (the one a pull saw, or the same recompressed one) is not sent again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use skiff_api::{ApiError, Progress, ProgressMessage};
use skiff_storage::{Digest, LayerInfo, Store};

use super::errors::{self, blocking};
use super::names;
use super::pull::convert_auth;
use super::ImageService;
use super::PROGRESS_EVERY;
use crate::registry::{self, Reference, Uploader, DOCKER_CONFIG, DOCKER_MANIFEST};

const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// One tag to push: its reference and the local image.
struct Target {
    reference: Reference,
    id: Digest,
}

/// A layer as the manifest lists it.
struct Pushed {
    digest: String,
    size: u64,
}

pub async fn push(
    svc: &ImageService,
    name: &str,
    tag: &str,
    auth: Option<skiff_api::AuthConfig>,
    progress: Progress,
) -> Result<(), ApiError> {
    let repo = Reference::parse_normalized_named(name).map_err(errors::registry)?;
    if repo.digest().is_some() {
        return Err(ApiError::invalid_argument(
            "cannot push a digest reference; push a tag",
        ));
    }
    let targets = targets(svc, &repo, tag).await?;
    let auth = auth.map(convert_auth).unwrap_or_default();
    // Same insecure-registries rules as pull.
    let uploader = Uploader::new(svc.registry.config(), &repo, &auth).map_err(errors::registry)?;
    // Reach and authenticate before the first byte: refusals become HTTP statuses.
    uploader.prepare().await.map_err(errors::registry)?;
    progress
        .status(
            format!("The push refers to repository [{}]", repo.name()),
            None,
        )
        .await?;
    for t in targets {
        push_one(svc, &uploader, &t, &progress).await?;
    }
    Ok(())
}

/// The tags to push: `tag`, the tag in `repo`, or every local tag of the repository.
async fn targets(svc: &ImageService, repo: &Reference, tag: &str) -> Result<Vec<Target>, ApiError> {
    let store = svc.store.clone();
    let refs = blocking(move || store.refs().map_err(errors::store)).await?;
    let wanted: Vec<Reference> = match (tag, repo.tag()) {
        ("", Some(_)) => vec![repo.clone()],
        ("", None) => {
            let prefix = format!("{}:", repo.name());
            let mut all: Vec<Reference> = refs
                .tags
                .keys()
                .filter(|k| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
                .filter_map(|k| Reference::parse_normalized_named(k).ok())
                .collect();
            all.sort_by_key(|r| r.tag().map(str::to_string));
            if all.is_empty() {
                return Err(ApiError::not_found(format!(
                    "An image does not exist locally with the tag: {}",
                    repo.familiar_name()
                )));
            }
            all
        }
        (t, _) => vec![repo.with_tag(t).map_err(errors::registry)?],
    };
    wanted
        .into_iter()
        .map(|reference| {
            let id = refs
                .resolve(&names::store_key(&reference))
                .cloned()
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "An image does not exist locally with the tag: {}",
                        reference.familiar_name()
                    ))
                })?;
            Ok(Target { reference, id })
        })
        .collect()
}

async fn push_one(
    svc: &ImageService,
    up: &Uploader,
    t: &Target,
    progress: &Progress,
) -> Result<(), ApiError> {
    let tag = t.reference.tag().unwrap_or("latest").to_string();
    let store = svc.store.clone();
    let id = t.id.clone();
    let (config, layers) = blocking(move || {
        let record = store
            .image(&id)
            .map_err(errors::store)?
            .ok_or_else(|| ApiError::not_found(format!("No such image: {id}")))?;
        let config = store.image_config(&id).map_err(errors::store)?;
        let layers = record
            .layers
            .iter()
            .map(|l| {
                store
                    .layer(&l.chain_id)
                    .map_err(errors::store)?
                    .ok_or_else(|| {
                        ApiError::internal(format!(
                            "layer {} of image {id} is missing from the store; run `skiff check`",
                            l.chain_id
                        ))
                    })
            })
            .collect::<Result<Vec<LayerInfo>, ApiError>>()?;
        Ok((config, layers))
    })
    .await?;

    // dockerd lists layers top first, each by its short diff ID.
    for l in layers.iter().rev() {
        progress
            .status("Preparing", Some(short(&l.diff_id)))
            .await?;
    }
    for l in layers.iter().rev() {
        progress.status("Waiting", Some(short(&l.diff_id))).await?;
    }
    let mut pushed = Vec::with_capacity(layers.len());
    for l in &layers {
        pushed.push(push_layer(svc, up, l, progress).await?);
    }

    let config_digest = registry::Digest::sha256_of(&config);
    if up
        .blob_size(&config_digest)
        .await
        .map_err(errors::registry)?
        .is_none()
    {
        up.upload_bytes(&config_digest, Bytes::from(config.clone()))
            .await
            .map_err(errors::registry)?;
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": DOCKER_CONFIG,
            "size": config.len(),
            "digest": config_digest.as_str(),
        },
        "layers": pushed.iter().map(|p| json!({
            "mediaType": DOCKER_LAYER_GZIP,
            "size": p.size,
            "digest": p.digest,
        })).collect::<Vec<_>>(),
    });
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| ApiError::internal(format!("cannot encode the manifest: {e}")))?;
    let size = bytes.len();
    let digest = up
        .put_manifest(&tag, DOCKER_MANIFEST, Bytes::from(bytes.clone()))
        .await
        .map_err(errors::registry)?;

    // Record what the registry now holds, as dockerd does: a RepoDigest for the image.
    let store = svc.store.clone();
    let key = names::store_key(&t.reference.with_digest(digest.clone()));
    let local = Digest::parse(digest.as_str()).map_err(errors::store)?;
    let id = t.id.clone();
    blocking(move || {
        store.put_blob(&local, &bytes).map_err(errors::store)?;
        store.add_repo_digest(&key, &id).map_err(errors::store)
    })
    .await?;

    progress
        .status(format!("{tag}: digest: {digest} size: {size}"), None)
        .await?;
    progress
        .send(ProgressMessage::aux(
            json!({ "Tag": tag, "Digest": digest.to_string(), "Size": size }),
        ))
        .await
}

async fn push_layer(
    svc: &ImageService,
    up: &Uploader,
    layer: &LayerInfo,
    progress: &Progress,
) -> Result<Pushed, ApiError> {
    let id = short(&layer.diff_id).to_string();
    // The blobs a pull saw: free when the registry has them (docker or OCI gzip only, so
    // the schema2 manifest stays valid).
    for b in &layer.blobs {
        let gzip = matches!(
            b.media_type.as_deref(),
            Some(DOCKER_LAYER_GZIP) | Some(OCI_LAYER_GZIP)
        );
        let Ok(d) = registry::Digest::parse(b.digest.as_str()) else {
            continue;
        };
        if gzip && up.blob_size(&d).await.map_err(errors::registry)?.is_some() {
            progress.status("Layer already exists", Some(&id)).await?;
            return Ok(Pushed {
                digest: b.digest.to_string(),
                size: b.size,
            });
        }
    }

    let store = svc.store.clone();
    let chain = layer.chain_id.clone();
    let tmp_dir = store.root().join("tmp");
    let blob = blocking(move || compress(&store, &chain, &tmp_dir)).await?;
    let digest = registry::Digest::parse(&blob.digest).map_err(ApiError::internal)?;
    if up
        .blob_size(&digest)
        .await
        .map_err(errors::registry)?
        .is_some()
    {
        progress.status("Layer already exists", Some(&id)).await?;
        return Ok(Pushed {
            digest: blob.digest.clone(),
            size: blob.size,
        });
    }

    let total = blob.size as i64;
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let mut on_progress = move |n: u64| counter.store(n, Ordering::Relaxed);
    let upload = up.upload_file(&digest, &blob.path, &mut on_progress);
    tokio::pin!(upload);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    let mut last = u64::MAX;
    loop {
        tokio::select! {
            r = &mut upload => {
                r.map_err(errors::registry)?;
                break;
            }
            _ = tick.tick() => {
                let n = sent.load(Ordering::Relaxed);
                if n != last {
                    last = n;
                    progress.send(ProgressMessage::progress("Pushing", &id, n as i64, total)).await?;
                }
            }
        }
    }
    progress
        .send(ProgressMessage::progress("Pushing", &id, total, total))
        .await?;
    progress.status("Pushed", Some(&id)).await?;
    Ok(Pushed {
        digest: blob.digest.clone(),
        size: blob.size,
    })
}

/// A compressed layer in the store's tmp dir, deleted when dropped (also when the push is
/// cancelled while compressing: the blocking task's result is dropped).
struct TempBlob {
    path: PathBuf,
    digest: String,
    size: u64,
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Hashes and counts what passes through to the file.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn compress(store: &Store, chain: &Digest, tmp_dir: &Path) -> Result<TempBlob, ApiError> {
    let io_err = |what: &str, e: std::io::Error| {
        ApiError::internal(format!(
            "cannot {what} in {}: {e}; check free space and permissions of the data root",
            tmp_dir.display()
        ))
    };
    std::fs::create_dir_all(tmp_dir).map_err(|e| io_err("create the temp dir", e))?;
    let path = tmp_dir.join(format!("push-{:016x}.tar.gz", rand::random::<u64>()));
    let file = std::fs::File::create(&path).map_err(|e| io_err("create a temp file", e))?;
    // From here on the guard removes the file whatever happens.
    let mut blob = TempBlob {
        path,
        digest: String::new(),
        size: 0,
    };
    let hashing = Hashing {
        inner: std::io::BufWriter::new(file),
        hash: Sha256::new(),
        size: 0,
    };
    let mut gz = GzEncoder::new(hashing, Compression::new(6));
    store
        .write_layer_tar(chain, &mut gz)
        .map_err(errors::store)?;
    let mut hashing = gz.finish().map_err(|e| io_err("compress a layer", e))?;
    hashing
        .flush()
        .map_err(|e| io_err("write a compressed layer", e))?;
    blob.digest = format!("sha256:{}", hex::encode(hashing.hash.finalize()));
    blob.size = hashing.size;
    Ok(blob)
}

/// The 12-hex short form docker shows for a layer.
fn short(d: &Digest) -> &str {
    &d.hex()[..12]
}
