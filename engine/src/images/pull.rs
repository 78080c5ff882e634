//! `POST /images/create`: registry -> digest check -> decompress -> extract, per layer and
//! concurrently, with docker's JSON progress lines. Nothing is recorded until every layer is
//! in the store; the tag is written last.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use skiff_api::types::image::PullRequest;
use skiff_api::{ApiError, Progress, ProgressMessage};
use skiff_storage::{Digest, ExtractRequest, NewImage, StagedLayer};
use tokio_util::io::SyncIoBridge;

use super::errors::{self, blocking};
use super::names;
use super::ImageService;
use super::PROGRESS_EVERY;
use crate::registry::{AuthConfig, Descriptor, Platform, Reference, Repository, ResolvedImage};

/// Sets the flag when dropped: a pull whose future is dropped (client gone) stops the
/// blocking extraction threads it started.
pub(super) struct CancelOnDrop(pub(super) Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

pub async fn pull(
    svc: &ImageService,
    req: PullRequest,
    progress: Progress,
) -> Result<(), ApiError> {
    let reference =
        Reference::from_image_and_tag(&req.from_image, &req.tag).map_err(errors::registry)?;
    let platform = match req.platform.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(Platform::parse(p).map_err(errors::registry)?),
        None => None,
    };
    let auth = req.auth.map(convert_auth).unwrap_or_default();
    let repo = svc.registry.repository(&reference, &auth);
    // Resolve before the first byte so "not found" and "unauthorized" become HTTP statuses
    // (the CLI's `run` pulls on 404 and must see real errors).
    let image = repo
        .resolve(platform.as_ref())
        .await
        .map_err(errors::registry)?;
    let config = repo
        .fetch_blob_bytes(&image.config)
        .await
        .map_err(errors::registry)?;
    // JSON is UTF-8 (RFC 8259); serde skips bad bytes in fields it ignores, and a store
    // that keeps such documents cannot hand them on faithfully.
    for (what, bytes) in [
        ("manifest", &image.manifest_bytes),
        ("image config", &config),
    ] {
        if let Err(e) = std::str::from_utf8(bytes) {
            return Err(ApiError::invalid_argument(format!(
                "invalid {what} for {}: not valid UTF-8 ({e}); the image is malformed, rebuild or re-push it",
                reference.familiar_string()
            )));
        }
    }
    // A delta image (balenaEngine's labels) rebuilds its target from a local base.
    if let Some(d) = super::delta::detect(&config)? {
        return super::delta::pull(svc, &repo, &reference, &image, d, &progress).await;
    }
    let diff_ids = diff_ids(&config, image.layers.len())?;
    let image_id = Digest::of(&config);

    let shown = reference
        .tag()
        .map(str::to_string)
        .or_else(|| reference.digest().map(|d| d.to_string()))
        .unwrap_or_default();
    progress
        .status(
            format!("Pulling from {}", path_of(&reference)),
            Some(&shown),
        )
        .await?;

    let mut chain = Vec::with_capacity(diff_ids.len());
    let mut parent: Option<Digest> = None;
    for d in &diff_ids {
        let c = Digest::chain(parent.as_ref(), d);
        chain.push(c.clone());
        parent = Some(c);
    }
    let store = svc.store.clone();
    let chain_probe = chain.clone();
    let present: Vec<bool> = blocking(move || {
        chain_probe
            .iter()
            .map(|c| Ok(store.layer(c).map_err(errors::store)?.is_some()))
            .collect()
    })
    .await?;
    let had_image = {
        let store = svc.store.clone();
        let id = image_id.clone();
        blocking(move || Ok(store.image(&id).map_err(errors::store)?.is_some())).await?
    };

    let mut todo = Vec::new();
    for (i, desc) in image.layers.iter().enumerate() {
        let id = layer_id(desc);
        if present[i] {
            progress.status("Already exists", Some(&id)).await?;
        } else {
            progress.status("Pulling fs layer", Some(&id)).await?;
            todo.push(i);
        }
    }

    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    // Layers stream and extract at once into staging; they become visible only when all of
    // them arrived intact, so a failed or cancelled pull leaves nothing behind.
    let staged: Vec<StagedLayer> = futures::stream::iter(todo.into_iter().map(|i| {
        let parent = i.checked_sub(1).map(|p| chain[p].clone());
        pull_layer(
            svc,
            &repo,
            &image.layers[i],
            parent,
            diff_ids[i].clone(),
            &progress,
            cancel.clone(),
        )
    }))
    .buffered(svc.max_concurrent_downloads)
    .try_collect()
    .await?;
    let store = svc.store.clone();
    blocking(move || {
        for layer in staged {
            store.commit_layer(layer).map_err(errors::store)?;
        }
        Ok(())
    })
    .await?;

    let recorded_digest = record(svc, &reference, &image, config, chain).await?;
    progress
        .status(format!("Digest: {recorded_digest}"), None)
        .await?;
    progress
        .send(ProgressMessage::aux(
            serde_json::json!({ "Digest": recorded_digest.to_string() }),
        ))
        .await?;
    let verdict = if had_image {
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

/// Stores config and manifests, then the image record, then the references: each step
/// only after what it points to is durable (the store fsyncs inside each call).
async fn record(
    svc: &ImageService,
    reference: &Reference,
    image: &ResolvedImage,
    config: Vec<u8>,
    chain: Vec<Digest>,
) -> Result<Digest, ApiError> {
    let store = svc.store.clone();
    let mut blobs: Vec<(Digest, Vec<u8>)> = vec![(
        parse_digest(image.manifest_digest.as_str())?,
        image.manifest_bytes.clone(),
    )];
    if let (Some(d), Some(b)) = (&image.index_digest, &image.index_bytes) {
        blobs.push((parse_digest(d.as_str())?, b.clone()));
    }
    // RepoDigests name what the reference pointed at: the list when there was one.
    let repo_digest = blobs
        .last()
        .map(|(d, _)| d.clone())
        .unwrap_or_else(|| blobs[0].0.clone());
    let tag_key = reference.tag().map(|_| names::store_key(reference));
    let digest_key = names::store_key(&reference.with_digest(
        crate::registry::Digest::parse(repo_digest.as_str()).map_err(ApiError::internal)?,
    ));
    blocking(move || {
        for (d, b) in &blobs {
            store.put_blob(d, b).map_err(errors::store)?;
        }
        let rec = store
            .put_image(NewImage {
                config,
                layers: chain,
                manifests: blobs.iter().map(|(d, _)| d.clone()).collect(),
            })
            .map_err(errors::store)?;
        store
            .add_repo_digest(&digest_key, &rec.id)
            .map_err(errors::store)?;
        if let Some(key) = tag_key {
            store.set_tag(&key, &rec.id).map_err(errors::store)?;
        }
        Ok(())
    })
    .await?;
    Ok(repo_digest)
}

#[allow(clippy::too_many_arguments)]
async fn pull_layer(
    svc: &ImageService,
    repo: &Repository,
    desc: &Descriptor,
    parent: Option<Digest>,
    diff_id: Digest,
    progress: &Progress,
    cancel: Arc<AtomicBool>,
) -> Result<StagedLayer, ApiError> {
    let id = layer_id(desc);
    let total = desc.size as i64;
    let seen = Arc::new(AtomicU64::new(0));
    let reader = SyncIoBridge::new(repo.blob_stream(desc));
    let store = svc.store.clone();
    let media_type = desc.media_type.clone();
    let blob = parse_digest(desc.digest.as_str())?;
    let counter = seen.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let mut on_progress = |n: u64| counter.store(n, Ordering::Relaxed);
        store
            .stage_layer(
                ExtractRequest {
                    parent: parent.as_ref(),
                    media_type: Some(&media_type),
                    expected_blob: Some(&blob),
                    expected_diff_id: Some(&diff_id),
                    progress: Some(&mut on_progress),
                    cancel: Some(&cancel),
                },
                &mut reader,
            )
            .map_err(errors::store)
    });
    tokio::pin!(task);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    let mut last = u64::MAX;
    let result = loop {
        tokio::select! {
            r = &mut task => break r.map_err(errors::join)?,
            _ = tick.tick() => {
                let n = seen.load(Ordering::Relaxed);
                if n != last {
                    last = n;
                    progress.send(ProgressMessage::progress("Downloading", &id, n as i64, total)).await?;
                }
            }
        }
    };
    let staged = result
        .map_err(|e| ApiError::new(e.kind(), format!("layer {}: {}", desc.digest, e.message)))?;
    progress.status("Verifying Checksum", Some(&id)).await?;
    progress.status("Download complete", Some(&id)).await?;
    progress
        .send(ProgressMessage::progress("Extracting", &id, total, total))
        .await?;
    progress.status("Pull complete", Some(&id)).await?;
    Ok(staged)
}

/// The 12-hex short form docker shows for a layer.
fn layer_id(desc: &Descriptor) -> String {
    desc.digest.hex().chars().take(12).collect()
}

/// `library/busybox` for Docker Hub, `skiff-test/single` elsewhere: what docker prints.
fn path_of(r: &Reference) -> String {
    r.path().to_string()
}

fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    Digest::parse(s).map_err(|e| {
        ApiError::invalid_argument(format!(
            "unsupported digest {s}: {e}; skiff stores sha256 content only"
        ))
    })
}

/// The config's `rootfs.diff_ids`, checked against the manifest's layer count.
pub(super) fn diff_ids(config: &[u8], layers: usize) -> Result<Vec<Digest>, ApiError> {
    let v: Value = serde_json::from_slice(config).map_err(|e| {
        ApiError::invalid_argument(format!(
            "invalid image config: {e}; the image is malformed, rebuild or re-push it"
        ))
    })?;
    let ids = v
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ApiError::invalid_argument(
                "invalid image config: rootfs.diff_ids is missing; the image is malformed",
            )
        })?;
    if ids.len() != layers {
        return Err(ApiError::invalid_argument(format!(
            "invalid image: the config lists {} diff_ids but the manifest has {layers} layers",
            ids.len()
        )));
    }
    ids.iter()
        .map(|d| {
            d.as_str()
                .ok_or_else(|| {
                    ApiError::invalid_argument("invalid image config: a diff_id is not a string")
                })
                .and_then(parse_digest)
        })
        .collect()
}

pub(super) fn convert_auth(a: skiff_api::AuthConfig) -> AuthConfig {
    AuthConfig {
        username: a.username,
        password: a.password,
        auth: a.auth,
        email: String::new(),
        serveraddress: a.serveraddress,
        identitytoken: a.identitytoken,
        registrytoken: a.registrytoken,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_diff_ids_are_validated() {
        let d = format!("sha256:{}", "a".repeat(64));
        let cfg = format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["{d}"]}}}}"#);
        assert_eq!(diff_ids(cfg.as_bytes(), 1).unwrap().len(), 1);
        assert!(diff_ids(cfg.as_bytes(), 2)
            .unwrap_err()
            .message
            .contains("2 layers"));
        assert!(diff_ids(b"{not json", 1).is_err());
        assert!(diff_ids(br#"{"rootfs":{"diff_ids":[1]}}"#, 1).is_err());
        assert!(diff_ids(br#"{"rootfs":{"diff_ids":["md5:x"]}}"#, 1).is_err());
    }
}
