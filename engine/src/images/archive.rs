//! `docker save` / `docker load`. Save writes one tarball that is both a docker archive
//! (`manifest.json`, `repositories`) and an OCI layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`), as dockerd 25+ does; layers are the exact tars rebuilt from the store
//! so their digests are the diff_ids and a load gives back the same image IDs.
//! Load accepts either format. The upload is spooled to the store's tmp/ first because a
//! docker archive names its layers only in `manifest.json`, usually at the very end.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use skiff_api::{ApiError, BodyReader, Progress, ProgressMessage, TarWriter};
use skiff_storage::{Digest, ExtractRequest, NewImage, Store};

use super::errors::{self, blocking};
use super::names::{self, Matched};
use super::ImageService;
use crate::registry::{Platform, Reference};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Largest JSON member (manifest.json, index.json, configs) read from an archive.
const MAX_JSON: u64 = 16 << 20;

// ---------------------------------------------------------------- save

/// One image to write, gathered before the first byte goes out.
struct SaveImage {
    id: Digest,
    config: Vec<u8>,
    /// (chain id, diff id, tar size)
    layers: Vec<(Digest, Digest, u64)>,
    /// Store keys of the tags to record.
    tags: Vec<String>,
}

pub async fn save(svc: &ImageService, names: Vec<String>, out: TarWriter) -> Result<(), ApiError> {
    if names.is_empty() {
        return Err(ApiError::invalid_argument(
            "no image names given; name at least one image to save",
        ));
    }
    let mut wanted: Vec<(Digest, Option<String>)> = Vec::new();
    for name in &names {
        let (id, matched) = svc.lookup(name).await?;
        let tag = match matched {
            Matched::Reference(key) if !key.contains('@') => Some(key),
            _ => None,
        };
        wanted.push((id, tag));
    }
    let store = svc.store.clone();
    let plan = blocking(move || plan_save(&store, wanted)).await?;
    let mut writer = out.into_blocking()?;
    let store = svc.store.clone();
    blocking(move || {
        write_archive(&store, &plan, &mut writer)
            .map_err(|e| ApiError::internal(format!("cannot write the image archive: {e}")))
    })
    .await
}

fn plan_save(
    store: &Store,
    wanted: Vec<(Digest, Option<String>)>,
) -> Result<Vec<SaveImage>, ApiError> {
    let mut by_id: BTreeMap<Digest, SaveImage> = BTreeMap::new();
    let mut order = Vec::new();
    for (id, tag) in wanted {
        if !by_id.contains_key(&id) {
            let rec = store
                .image(&id)
                .map_err(errors::store)?
                .ok_or_else(|| ApiError::not_found(format!("No such image: {id}")))?;
            let config = store.image_config(&id).map_err(errors::store)?;
            let mut layers = Vec::new();
            for l in &rec.layers {
                let info = store
                    .layer(&l.chain_id)
                    .map_err(errors::store)?
                    .ok_or_else(|| {
                        ApiError::internal(format!(
                            "layer {} of image {id} is missing; run `skiff check`",
                            l.chain_id
                        ))
                    })?;
                layers.push((l.chain_id.clone(), l.diff_id.clone(), info.tar_size));
            }
            order.push(id.clone());
            by_id.insert(
                id.clone(),
                SaveImage {
                    id: id.clone(),
                    config,
                    layers,
                    tags: Vec::new(),
                },
            );
        }
        if let (Some(tag), Some(img)) = (tag, by_id.get_mut(&id)) {
            if !img.tags.contains(&tag) {
                img.tags.push(tag);
            }
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .collect())
}

fn tar_header(path: &str, size: u64, dir: bool) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)?;
    h.set_size(size);
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_mtime(0);
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_cksum();
    Ok(h)
}

fn pad(w: &mut dyn Write, size: u64) -> io::Result<()> {
    let rem = (512 - size % 512) % 512;
    w.write_all(&[0u8; 512][..rem as usize])
}

fn put_file(w: &mut dyn Write, path: &str, data: &[u8]) -> io::Result<()> {
    w.write_all(tar_header(path, data.len() as u64, false)?.as_bytes())?;
    w.write_all(data)?;
    pad(w, data.len() as u64)
}

fn write_archive(store: &Store, plan: &[SaveImage], w: &mut dyn Write) -> io::Result<()> {
    w.write_all(tar_header("blobs/", 0, true)?.as_bytes())?;
    w.write_all(tar_header("blobs/sha256/", 0, true)?.as_bytes())?;
    let mut written: std::collections::HashSet<Digest> = Default::default();
    let mut docker_manifest = Vec::new();
    let mut index = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for img in plan {
        if written.insert(img.id.clone()) {
            put_file(w, &format!("blobs/sha256/{}", img.id.hex()), &img.config)?;
        }
        for (chain, diff, size) in &img.layers {
            if !written.insert(diff.clone()) {
                continue;
            }
            w.write_all(
                tar_header(&format!("blobs/sha256/{}", diff.hex()), *size, false)?.as_bytes(),
            )?;
            let n = store
                .write_layer_tar(chain, w)
                .map_err(|e| io::Error::other(e.to_string()))?;
            if n != *size {
                return Err(io::Error::other(format!(
                    "layer {chain} rebuilt to {n} bytes but its record says {size}; run `skiff check --deep`"
                )));
            }
            pad(w, n)?;
        }
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": img.id.to_string(), "size": img.config.len()},
            "layers": img.layers.iter().map(|(_, d, s)| json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.to_string(), "size": s
            })).collect::<Vec<_>>(),
        }))?;
        let mdigest = Digest::of(&manifest);
        if written.insert(mdigest.clone()) {
            put_file(w, &format!("blobs/sha256/{}", mdigest.hex()), &manifest)?;
        }
        let familiar: Vec<String> = img.tags.iter().map(|t| names::familiar(t)).collect();
        docker_manifest.push(json!({
            "Config": format!("blobs/sha256/{}", img.id.hex()),
            "RepoTags": familiar,
            "Layers": img.layers.iter().map(|(_, d, _)| format!("blobs/sha256/{}", d.hex())).collect::<Vec<_>>(),
        }));
        let desc = |annotations: Value| {
            json!({
                "mediaType": OCI_MANIFEST, "digest": mdigest.to_string(), "size": manifest.len(), "annotations": annotations,
            })
        };
        if img.tags.is_empty() {
            index.push(desc(json!({})));
        }
        for (key, fam) in img.tags.iter().zip(&familiar) {
            let tag = Reference::parse_normalized_named(key)
                .ok()
                .and_then(|r| r.tag().map(str::to_string))
                .unwrap_or_default();
            index.push(desc(
                json!({"io.containerd.image.name": key, "org.opencontainers.image.ref.name": tag}),
            ));
            let repo = fam
                .rsplit_once(':')
                .map(|(r, _)| r.to_string())
                .unwrap_or_else(|| fam.clone());
            repositories
                .entry(repo)
                .or_default()
                .insert(tag, img.id.hex().to_string());
        }
    }
    put_file(
        w,
        "index.json",
        &serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}),
        )?,
    )?;
    put_file(w, "manifest.json", &serde_json::to_vec(&docker_manifest)?)?;
    put_file(w, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    if !repositories.is_empty() {
        put_file(w, "repositories", &serde_json::to_vec(&repositories)?)?;
    }
    w.write_all(&[0u8; 1024])?;
    w.flush()
}

// ---------------------------------------------------------------- load

/// Removes the spooled upload however the load ends.
struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub async fn load(
    svc: &ImageService,
    mut body: BodyReader,
    quiet: bool,
    progress: Progress,
) -> Result<(), ApiError> {
    let spool = Spool(
        svc.store
            .root()
            .join("tmp")
            .join(format!("load-{:016x}.tar", rand::random::<u64>())),
    );
    let mut file = tokio::fs::File::create(&spool.0).await.map_err(|e| {
        ApiError::internal(format!(
            "cannot stage the upload in {}: {e}",
            spool.0.display()
        ))
    })?;
    tokio::io::copy(&mut body, &mut file).await.map_err(|e| {
        ApiError::invalid_argument(format!("cannot read the uploaded archive: {e}"))
    })?;
    drop(file);
    let store = svc.store.clone();
    let path = spool.0.clone();
    let loaded = blocking(move || load_archive(&store, &path)).await?;
    for line in loaded {
        if !quiet || !line.is_empty() {
            progress
                .send(ProgressMessage::stream(format!("{line}\n")))
                .await?;
        }
    }
    Ok(())
}

/// Where a member's data is in the spooled archive.
#[derive(Debug, Clone)]
struct Member {
    offset: u64,
    size: u64,
}

struct Archive {
    file: File,
    members: HashMap<String, Member>,
}

fn bad(msg: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_argument(format!(
        "invalid image archive: {msg}; give a `docker save` or OCI layout tarball"
    ))
}

fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

impl Archive {
    fn index(path: &Path) -> Result<Archive, ApiError> {
        let file = File::open(path)
            .map_err(|e| ApiError::internal(format!("cannot open the staged archive: {e}")))?;
        let mut members = HashMap::new();
        let mut links: Vec<(String, String)> = Vec::new();
        let mut ar = tar::Archive::new(&file);
        for entry in ar.entries().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let name = clean(&String::from_utf8_lossy(&entry.path_bytes()));
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    members.insert(
                        name,
                        Member {
                            offset: entry.raw_file_position(),
                            size: entry.size(),
                        },
                    );
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    if let Some(target) = entry.link_name_bytes() {
                        let target = String::from_utf8_lossy(&target).to_string();
                        let resolved = if entry.header().entry_type() == tar::EntryType::Link
                            || target.starts_with('/')
                        {
                            clean(&target)
                        } else {
                            let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                            clean(&format!("{dir}/{target}"))
                        };
                        links.push((name, resolved));
                    }
                }
                _ => {}
            }
        }
        // Older docker archives link duplicate layers to one copy.
        for (name, target) in links {
            if let Some(m) = members.get(&target).cloned() {
                members.insert(name, m);
            }
        }
        Ok(Archive { file, members })
    }

    fn member(&self, name: &str) -> Result<(&Member, String), ApiError> {
        let name = clean(name);
        self.members
            .get(&name)
            .map(|m| (m, name.clone()))
            .ok_or_else(|| bad(format!("member {name:?} is missing")))
    }

    fn reader(&self, name: &str) -> Result<impl Read + '_, ApiError> {
        let (m, _) = self.member(name)?;
        let mut f = &self.file;
        f.seek(SeekFrom::Start(m.offset))
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(f.take(m.size))
    }

    fn bytes(&self, name: &str) -> Result<Vec<u8>, ApiError> {
        let (m, name) = self.member(name)?;
        if m.size > MAX_JSON {
            return Err(bad(format!("{name} is larger than {MAX_JSON} bytes")));
        }
        let mut v = Vec::with_capacity(m.size as usize);
        self.reader(&name)?.read_to_end(&mut v).map_err(bad)?;
        Ok(v)
    }

    fn json<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<T, ApiError> {
        serde_json::from_slice(&self.bytes(name)?).map_err(|e| bad(format!("{name}: {e}")))
    }
}

#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct OciIndex {
    manifests: Vec<OciDescriptor>,
}

#[derive(Deserialize)]
struct OciManifest {
    config: OciDescriptor,
    layers: Vec<OciDescriptor>,
}

/// One image found in an archive: config member, layer members (with media type and blob
/// digest when the format gives them), tags as store keys.
struct LoadImage {
    config: String,
    layers: Vec<(String, Option<String>, Option<Digest>)>,
    tags: Vec<String>,
    manifest: Option<(Digest, Vec<u8>)>,
}

fn blob_path(digest: &str) -> Result<String, ApiError> {
    let d = Digest::parse(digest).map_err(|e| bad(e.to_string()))?;
    Ok(format!("blobs/sha256/{}", d.hex()))
}

fn tag_key(name: &str) -> Result<String, ApiError> {
    let r = Reference::parse(name).map_err(|e| bad(format!("tag {name:?}: {e}")))?;
    Ok(names::store_key(&r))
}

fn find_images(ar: &Archive) -> Result<Vec<LoadImage>, ApiError> {
    if ar.members.contains_key("manifest.json") {
        let entries: Vec<DockerEntry> = ar.json("manifest.json")?;
        return entries
            .into_iter()
            .map(|e| {
                Ok(LoadImage {
                    config: e.config,
                    layers: e.layers.into_iter().map(|l| (l, None, None)).collect(),
                    tags: e
                        .repo_tags
                        .unwrap_or_default()
                        .iter()
                        .map(|t| tag_key(t))
                        .collect::<Result<_, _>>()?,
                    manifest: None,
                })
            })
            .collect();
    }
    if !ar.members.contains_key("index.json") {
        return Err(bad("it has neither manifest.json nor index.json"));
    }
    let index: OciIndex = ar.json("index.json")?;
    let host = Platform::host();
    let mut out = Vec::new();
    for desc in index.manifests {
        let mut desc = desc;
        let mut tags: Vec<String> = Vec::new();
        if let Some(name) = desc.annotations.get("io.containerd.image.name") {
            tags.push(tag_key(name)?);
        }
        // A nested index (multi-platform): take this host's manifest.
        if desc.media_type == OCI_INDEX || desc.media_type == DOCKER_LIST {
            let nested: OciIndex = ar.json(&blob_path(&desc.digest)?)?;
            let best = nested
                .manifests
                .into_iter()
                .filter_map(|m| {
                    let rank = m.platform.as_ref().and_then(|p| host.match_rank(p))?;
                    Some((rank, m))
                })
                .min_by_key(|(r, _)| *r)
                .ok_or_else(|| bad(format!("no manifest for {host:?} in the archive's index")))?;
            desc = best.1;
        }
        let mpath = blob_path(&desc.digest)?;
        let mbytes = ar.bytes(&mpath)?;
        let mdigest = Digest::parse(&desc.digest).map_err(|e| bad(e.to_string()))?;
        if Digest::of(&mbytes) != mdigest {
            return Err(bad(format!(
                "manifest {} does not match its digest",
                desc.digest
            )));
        }
        let m: OciManifest = serde_json::from_slice(&mbytes)
            .map_err(|e| bad(format!("manifest {}: {e}", desc.digest)))?;
        let layers = m
            .layers
            .iter()
            .map(|l| {
                let d = Digest::parse(&l.digest).map_err(|e| bad(e.to_string()))?;
                Ok((blob_path(&l.digest)?, Some(l.media_type.clone()), Some(d)))
            })
            .collect::<Result<_, ApiError>>()?;
        out.push(LoadImage {
            config: blob_path(&m.config.digest)?,
            layers,
            tags,
            manifest: Some((mdigest, mbytes)),
        });
    }
    Ok(out)
}

/// Loads every image of the archive; returns the `Loaded image…` lines.
fn load_archive(store: &Arc<Store>, path: &Path) -> Result<Vec<String>, ApiError> {
    let ar = Archive::index(path)?;
    let images = find_images(&ar)?;
    let mut lines = Vec::new();
    for img in images {
        let config = ar.bytes(&img.config)?;
        if let Some(d) = super::delta::detect(&config)? {
            lines.extend(load_delta(store, &ar, &img, d)?);
            continue;
        }
        let diff_ids = super::pull::diff_ids(&config, img.layers.len())?;
        let mut parent: Option<Digest> = None;
        let mut chain = Vec::new();
        for ((member, media_type, blob), diff_id) in img.layers.iter().zip(&diff_ids) {
            let c = Digest::chain(parent.as_ref(), diff_id);
            if store.layer(&c).map_err(errors::store)?.is_none() {
                let mut reader = ar.reader(member)?;
                store
                    .extract_layer(
                        ExtractRequest {
                            parent: parent.as_ref(),
                            media_type: media_type.as_deref(),
                            expected_blob: blob.as_ref(),
                            expected_diff_id: Some(diff_id),
                            ..Default::default()
                        },
                        &mut reader,
                    )
                    .map_err(|e| {
                        let e = errors::store(e);
                        ApiError::new(e.kind, format!("layer {member}: {}", e.message))
                    })?;
            }
            chain.push(c.clone());
            parent = Some(c);
        }
        let mut manifests = Vec::new();
        if let Some((d, bytes)) = &img.manifest {
            store.put_blob(d, bytes).map_err(errors::store)?;
            manifests.push(d.clone());
        }
        let rec = store
            .put_image(NewImage {
                config,
                layers: chain,
                manifests,
            })
            .map_err(errors::store)?;
        if img.tags.is_empty() {
            lines.push(format!("Loaded image ID: {}", rec.id));
        }
        for key in &img.tags {
            store.set_tag(key, &rec.id).map_err(errors::store)?;
            lines.push(format!("Loaded image: {}", names::familiar(key)));
        }
    }
    Ok(lines)
}

/// A delta image in the archive: rebuilds and records its target (tagged with the
/// archive's tags for the delta image); nothing is kept when any layer fails.
fn load_delta(
    store: &Arc<Store>,
    ar: &Archive,
    img: &LoadImage,
    d: super::delta::DeltaImage,
) -> Result<Vec<String>, ApiError> {
    let plan = super::delta::plan(store, &d, img.layers.len())?;
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let mut staged = Vec::new();
    for &i in &plan.todo {
        let (member, _, blob) = &img.layers[i];
        let mut reader = ar.reader(member)?;
        staged.push(super::delta::apply_layer(
            store,
            &plan,
            i,
            &mut reader,
            blob.as_ref(),
            &cancel,
            None,
        )?);
    }
    let id = super::delta::commit(store, &plan, staged, &img.tags)?;
    let mut lines: Vec<String> = img
        .tags
        .iter()
        .map(|k| format!("Loaded image: {}", names::familiar(k)))
        .collect();
    if lines.is_empty() {
        lines.push(format!("Loaded image ID: {id}"));
    }
    Ok(lines)
}
