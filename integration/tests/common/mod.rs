//! Helpers shared by the daemon test files (each `tests/*.rs` is its own crate and pulls
//! this in with `mod common;`). Not every file uses every helper.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::PathBuf;

pub mod bad;
pub mod proxy;

use serde_json::Value;
use sha2::{Digest, Sha256};
use skiff_integration::{test_images, Daemon, DaemonOptions, Registry, TestImages};

pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A registry holding the test images and a daemon allowed to pull from it.
pub struct Env {
    pub daemon: Daemon,
    pub refs: BTreeMap<String, String>,
    // dropped last: the daemon may still talk to it while stopping
    pub registry: Registry,
}

pub fn env() -> Env {
    env_with(|_| {})
}

/// Like [`env`], letting the caller adjust the daemon's options.
pub fn env_with(adjust: impl FnOnce(&mut DaemonOptions)) -> Env {
    let imgs = test_images().unwrap();
    let registry = Registry::start().unwrap();
    let refs = imgs.push(&registry).unwrap();
    let mut opts = DaemonOptions::with_registry(&registry);
    adjust(&mut opts);
    let daemon = Daemon::start(opts).unwrap();
    Env {
        daemon,
        refs,
        registry,
    }
}

/// `HOST:PORT/skiff-test/NAME` (the reference without its tag).
pub fn repo_of(reference: &str) -> String {
    reference.rsplit_once(':').unwrap().0.to_string()
}

/// The manifest of test image `name` for `arch` (resolving the index of `multiarch`).
pub fn manifest_for(imgs: &TestImages, name: &str, arch: &str) -> Value {
    let top = imgs.descriptor(name).unwrap();
    let digest = if top["mediaType"] == INDEX {
        let index = imgs
            .json_blob(name, top["digest"].as_str().unwrap())
            .unwrap();
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["platform"]["architecture"] == arch)
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string()
    } else {
        top["digest"].as_str().unwrap().to_string()
    };
    imgs.json_blob(name, &digest).unwrap()
}

pub fn config_for(imgs: &TestImages, name: &str, arch: &str) -> Value {
    let m = manifest_for(imgs, name, arch);
    imgs.json_blob(name, m["config"]["digest"].as_str().unwrap())
        .unwrap()
}

/// The image ID skiff must report: the config digest.
pub fn image_id(imgs: &TestImages, name: &str, arch: &str) -> String {
    manifest_for(imgs, name, arch)["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn diff_ids(imgs: &TestImages, name: &str, arch: &str) -> Vec<String> {
    config_for(imgs, name, arch)["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

/// OCI chain IDs of a list of diff_ids: the layer store names its directories by these.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{parent} {d}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

/// `<data-root>/layers/sha256/<hex>` of a chain ID.
pub fn layer_dir(d: &Daemon, chain_id: &str) -> PathBuf {
    d.data_root()
        .join("layers/sha256")
        .join(chain_id.strip_prefix("sha256:").unwrap())
}

/// Names of the layer directories in the store.
pub fn layer_dirs(d: &Daemon) -> BTreeSet<String> {
    std::fs::read_dir(d.data_root().join("layers/sha256"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Entries left in `<data-root>/tmp`.
pub fn tmp_entries(d: &Daemon) -> Vec<String> {
    std::fs::read_dir(d.data_root().join("tmp"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `docker image inspect`; `None` when the daemon says there is no such image.
pub fn inspect(d: &Daemon, reference: &str) -> Option<Value> {
    let out = d.docker(&["image", "inspect", reference]).unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("No such image"), "inspect {reference}: {err}");
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(v[0].clone())
}

/// `REPO:TAG ID` of every image `docker images` lists.
pub fn listed(d: &Daemon) -> Vec<String> {
    d.docker_ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ])
    .unwrap()
    .lines()
    .map(str::to_string)
    .collect()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `skiff check` (the daemon must be stopped) and fails with its report unless clean;
/// check must not change the store (outside `tmp/`): a check that repairs hides damage.
pub fn assert_check_clean_stopped(d: &Daemon, what: &str) {
    let before = tree(&d.data_root());
    let out = d.check().unwrap();
    assert!(
        out.status.success(),
        "{what}: skiff check found problems:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let after = tree(&d.data_root());
    let changed: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(
        changed.is_empty(),
        "{what}: skiff check changed the store: {changed:?}"
    );
}

/// path -> (kind, size, mtime) of everything under `root` except `tmp/` and the lock file.
pub fn tree(root: &std::path::Path) -> BTreeMap<String, (u32, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if rel == "tmp" || rel.ends_with(".lock") {
            continue;
        }
        out.insert(
            rel,
            (
                meta.mode() & 0o170000,
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec(),
            ),
        );
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        }
    }
    out
}

/// The commit-order invariant read straight from the store's files, without skiff (whose
/// recovery would hide a violation): every image record's config blob and layers
/// (`layer.json` and `diff/`) exist, and every reference names an image record.
pub fn store_invariants(d: &Daemon) -> Vec<String> {
    let root = d.data_root();
    let mut problems = Vec::new();
    let images = root.join("images/sha256");
    let mut ids = BTreeSet::new();
    for entry in std::fs::read_dir(&images).into_iter().flatten().flatten() {
        let path = entry.path();
        let Some(hex) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        ids.insert(format!("sha256:{hex}"));
        let rec: Value = match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("image record {}: {e}", path.display()));
                continue;
            }
        };
        if !root.join("content/blobs/sha256").join(hex).is_file() {
            problems.push(format!("image sha256:{hex}: config blob missing"));
        }
        let Some(layers) = rec["layers"].as_array() else {
            problems.push(format!(
                "image sha256:{hex}: record has no layers list: {rec}"
            ));
            continue;
        };
        for l in layers {
            let chain = l["chain_id"].as_str().unwrap_or_default();
            let dir = layer_dir(d, chain);
            if !dir.join("layer.json").is_file() || !dir.join("diff").is_dir() {
                problems.push(format!("image sha256:{hex}: layer {chain} missing"));
            }
        }
    }
    if let Ok(bytes) = std::fs::read(root.join("refs.json")) {
        let refs: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        for kind in ["tags", "digests"] {
            for (name, id) in refs[kind].as_object().into_iter().flatten() {
                if !ids.contains(id.as_str().unwrap_or_default()) {
                    problems.push(format!("{kind} {name} -> {id}: no such image record"));
                }
            }
        }
    }
    problems
}

/// Stops the daemon, asserts `skiff check` is clean, starts the daemon again.
pub fn assert_check_clean(d: &mut Daemon) {
    let status = d.stop().unwrap();
    assert!(status.success(), "daemon exited with {status} on SIGTERM");
    assert_check_clean_stopped(d, "after stop");
    d.restart().unwrap();
}

/// path -> bytes of every regular file in a tar archive.
pub fn untar(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut a = tar::Archive::new(bytes);
    let mut out = BTreeMap::new();
    for entry in a.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.insert(path, data);
    }
    out
}
