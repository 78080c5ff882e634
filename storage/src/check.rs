//! `Store::check`: a read-only consistency check of the whole store.

use std::fs;

use crate::digest::Digest;
use crate::error::Result;
use crate::records::{ImageRecord, LayerInfo, Problem};
use crate::store::{read_json, Store};

fn problem(object: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        object: object.into(),
        message: message.into(),
    }
}

pub(crate) fn run(store: &Store, deep: bool) -> Result<Vec<Problem>> {
    let (blobs, layers_dir, images_dir) = store.check_parts();
    let mut out = Vec::new();

    for ent in fs::read_dir(&blobs).map_err(|e| crate::Error::io("list blobs", e))? {
        let ent = ent.map_err(|e| crate::Error::io("list blobs", e))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        let Ok(d) = Digest::from_hex(&name) else {
            out.push(problem(
                format!("blob {name}"),
                "file name is not a sha256 digest",
            ));
            continue;
        };
        match fs::read(ent.path()) {
            Ok(b) if Digest::of(&b) == d => {}
            Ok(b) => out.push(problem(
                format!("blob {d}"),
                format!("content hashes to {}", Digest::of(&b)),
            )),
            Err(e) => out.push(problem(format!("blob {d}"), format!("cannot read: {e}"))),
        }
    }

    for ent in fs::read_dir(&layers_dir).map_err(|e| crate::Error::io("list layers", e))? {
        let ent = ent.map_err(|e| crate::Error::io("list layers", e))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        let Ok(chain) = Digest::from_hex(&name) else {
            out.push(problem(
                format!("layer {name}"),
                "directory name is not a sha256 digest",
            ));
            continue;
        };
        let obj = format!("layer {chain}");
        let info: LayerInfo = match read_json(&ent.path().join("layer.json")) {
            Ok(Some(i)) => i,
            Ok(None) => {
                out.push(problem(&obj, "layer.json is missing"));
                continue;
            }
            Err(e) => {
                out.push(problem(&obj, e.to_string()));
                continue;
            }
        };
        if info.chain_id != chain {
            out.push(problem(
                &obj,
                format!("layer.json names chain id {}", info.chain_id),
            ));
        }
        if Digest::chain(info.parent.as_ref(), &info.diff_id) != chain {
            out.push(problem(&obj, "chain id does not match parent and diff_id"));
        }
        if let Some(p) = &info.parent {
            if !store.layer_path(p).join("layer.json").is_file() {
                out.push(problem(&obj, format!("parent layer {p} is missing")));
            }
        }
        let dir = store.layer_path(&chain);
        if !dir.join("diff").is_dir() {
            out.push(problem(&obj, "diff/ is missing"));
        }
        if !dir.join("tar-split.zst").is_file() {
            out.push(problem(&obj, "tar-split.zst is missing"));
            continue;
        }
        if deep {
            match store.rehash_layer(&chain) {
                Ok((d, n)) if d == info.diff_id && n == info.tar_size => {}
                Ok((d, n)) => out.push(problem(
                    &obj,
                    format!("rebuilt tar ({n} bytes) hashes to {d}, expected {} ({} bytes): layer files were modified", info.diff_id, info.tar_size),
                )),
                Err(e) => out.push(problem(&obj, format!("cannot rebuild the layer tar: {e}"))),
            }
        }
    }

    let mut image_ids = Vec::new();
    for ent in fs::read_dir(&images_dir).map_err(|e| crate::Error::io("list images", e))? {
        let ent = ent.map_err(|e| crate::Error::io("list images", e))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        let Some(id) = name
            .strip_suffix(".json")
            .and_then(|h| Digest::from_hex(h).ok())
        else {
            out.push(problem(
                format!("image file {name}"),
                "file name is not <sha256 hex>.json",
            ));
            continue;
        };
        let obj = format!("image {id}");
        let rec: ImageRecord = match read_json(&ent.path()) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                out.push(problem(&obj, e.to_string()));
                continue;
            }
        };
        image_ids.push(id.clone());
        if rec.id != id {
            out.push(problem(&obj, format!("record names id {}", rec.id)));
        }
        if !store.has_blob(&id) {
            out.push(problem(&obj, "config blob is missing"));
        }
        for m in &rec.manifests {
            if !store.has_blob(m) {
                out.push(problem(&obj, format!("manifest blob {m} is missing")));
            }
        }
        let mut parent = None;
        for l in &rec.layers {
            match store.layer(&l.chain_id) {
                Ok(Some(info)) => {
                    if info.diff_id != l.diff_id || info.parent != parent {
                        out.push(problem(
                            &obj,
                            format!("layer {} does not match the record", l.chain_id),
                        ));
                    }
                }
                _ => out.push(problem(&obj, format!("layer {} is missing", l.chain_id))),
            }
            parent = Some(l.chain_id.clone());
        }
        if let Ok(cfg) = store.get_blob(&id) {
            let want: Option<Vec<String>> = serde_json::from_slice::<serde_json::Value>(&cfg)
                .ok()
                .and_then(|v| v.pointer("/rootfs/diff_ids").cloned())
                .and_then(|v| serde_json::from_value(v).ok());
            let have: Vec<String> = rec.layers.iter().map(|l| l.diff_id.to_string()).collect();
            if want.as_ref() != Some(&have) {
                out.push(problem(
                    &obj,
                    "layers do not match the config's rootfs.diff_ids",
                ));
            }
        }
    }

    let refs = store.refs()?;
    for (r, id) in refs.tags.iter().chain(refs.digests.iter()) {
        if !image_ids.contains(id) {
            out.push(problem(
                format!("reference {r}"),
                format!("points to missing image {id}"),
            ));
        }
    }
    Ok(out)
}
