//! Delta images end to end, with real daemons, the docker CLI, a real registry and
//! librsync's `rdiff`: a publisher daemon makes a delta between two versions of an image
//! (`POST /images/delta`, balenaEngine's API) and pushes it; a device daemon holding the
//! old version pulls the delta and ends with the new version's exact image ID, and its
//! containers (default runtime and runc) see the new version's files. Corrupt,
//! truncated, wrong-base, diff_id-mismatch and missing-base deltas fail with clear errors
//! and leave nothing behind; balenaEngine-format (librsync) delta images apply by pull and
//! by load; SIGKILL during a delta pull leaves the old image intact and the new one whole
//! or absent.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::proxy::SlowProxy;
use common::*;
use serde_json::{json, Value};
use skiff_integration::{process, Daemon, DaemonOptions, Registry};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

/// Deterministic pseudo-random bytes (an "application binary").
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// One entry of a corpus layer tar.
enum Entry {
    Dir(&'static str),
    File(&'static str, Vec<u8>, u32),
    Symlink(&'static str, &'static str),
}

/// A layer tar of `entries` (root, fixed mtime), in the given order.
fn tar_with(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_704_067_200);
        match entry {
            Entry::Dir(path) => {
                h.set_size(0);
                h.set_mode(0o755);
                h.set_entry_type(tar::EntryType::Directory);
                b.append_data(&mut h, path, std::io::empty()).unwrap();
            }
            Entry::File(path, data, mode) => {
                h.set_size(data.len() as u64);
                h.set_mode(*mode);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, path, &data[..]).unwrap();
            }
            Entry::Symlink(path, target) => {
                h.set_size(0);
                h.set_mode(0o777);
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, path, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A layer tar of regular files (mode 0644, root, fixed mtime), in the given order.
fn tar_of(files: &[(&'static str, Vec<u8>)]) -> Vec<u8> {
    let entries: Vec<Entry> = files
        .iter()
        .map(|(path, data)| Entry::File(path, data.clone(), 0o644))
        .collect();
    tar_with(&entries)
}

/// What the corpus's OS layer needs to run commands: Debian busybox-static's `/bin/busybox`
/// (as scripts/build-test-images.sh uses it) and the applets the tests call.
fn busybox_entries() -> Vec<Entry> {
    let path = std::env::var_os("BUSYBOX").unwrap_or_else(|| "/bin/busybox".into());
    let busybox = std::fs::read(&path).unwrap_or_else(|e| {
        panic!("read {path:?}: {e} (apt-get install busybox-static, or set BUSYBOX)")
    });
    let mut entries = vec![
        Entry::Dir("bin"),
        Entry::File("bin/busybox", busybox, 0o755),
    ];
    for link in ["bin/sh", "bin/cat", "bin/sha256sum", "bin/test"] {
        entries.push(Entry::Symlink(link, "busybox"));
    }
    entries
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b).unwrap();
    gz.finish().unwrap()
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// One image: plain layer tars and its config bytes.
#[derive(Clone)]
struct Img {
    layers: Vec<Vec<u8>>,
    config: Vec<u8>,
}

impl Img {
    fn new(layers: Vec<Vec<u8>>, cmd: &str) -> Img {
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
        let config = json!({
            "architecture": "amd64", "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": [cmd], "Env": ["PATH=/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        Img {
            layers,
            config: serde_json::to_vec(&config).unwrap(),
        }
    }

    fn id(&self) -> String {
        sha256(&self.config)
    }

    fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|l| sha256(l)).collect()
    }
}

/// The corpus: a shared OS layer and an application layer that changes between versions
/// (a binary with a few changed bytes, an edited config, a new and a removed file).
fn corpus() -> (Img, Img, Img) {
    // runnable: containers of v1 and v2 (and of the image a delta pull rebuilds) run busybox
    let mut os = busybox_entries();
    os.extend([
        Entry::File(
            "etc/os-release",
            b"ID=skiff-test\nVERSION_ID=1\n".to_vec(),
            0o644,
        ),
        Entry::File("usr/lib/libbig.so", noise(1, 400_000), 0o644),
        Entry::File(
            "usr/share/doc/README",
            b"documentation\n".repeat(200),
            0o644,
        ),
    ]);
    let os = tar_with(&os);
    let bin_v1 = noise(2, 300_000);
    let mut bin_v2 = bin_v1.clone();
    for i in (1000..bin_v2.len()).step_by(50_000) {
        bin_v2[i] ^= 0x5a;
    }
    let app_v1 = tar_of(&[
        ("app/bin/server", bin_v1),
        ("app/etc/server.conf", b"port=8080\nworkers=4\n".to_vec()),
        ("app/share/old.txt", b"going away\n".to_vec()),
    ]);
    let app_v2 = tar_of(&[
        ("app/bin/server", bin_v2),
        ("app/etc/server.conf", b"port=8080\nworkers=8\n".to_vec()),
        ("app/share/new.txt", b"new in v2\n".to_vec()),
    ]);
    let other_os = tar_of(&[
        ("etc/os-release", b"ID=other\n".to_vec()),
        ("usr/lib/libbig.so", noise(3, 400_000)),
    ]);
    let v1 = Img::new(vec![os.clone(), app_v1], "/app/bin/server");
    let v2 = Img::new(vec![os, app_v2], "/app/bin/server");
    // same paths as v1, other contents: what a delta for v1 needs is not there
    let app_other = tar_of(&[
        ("app/bin/server", noise(4, 300_000)),
        ("app/etc/server.conf", b"port=1\n".to_vec()),
    ]);
    let other = Img::new(vec![other_os, app_other], "/app/bin/server");
    (v1, v2, other)
}

/// Writes `bytes` as a blob of the OCI layout `dir`; returns its descriptor.
fn put_blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = sha256(bytes);
    let path = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// An OCI layout holding one image (gzip layers) under `tag`.
fn layout(dir: &Path, tag: &str, config: &[u8], gz_layers: &[Vec<u8>]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let config = put_blob(dir, OCI_CONFIG, config);
    let layers: Vec<Value> = gz_layers
        .iter()
        .map(|l| put_blob(dir, GZIP_LAYER, l))
        .collect();
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": config, "layers": layers});
    let mut desc = put_blob(dir, OCI_MANIFEST, manifest.to_string().as_bytes());
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let index = json!({"schemaVersion": 2, "manifests": [desc]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
}

/// Copies an OCI layout's tag to `reference` with skopeo (plain HTTP).
fn skopeo_copy(dir: &Path, tag: &str, reference: &str) {
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{tag}", dir.display()))
        .arg(format!("docker://{reference}"));
    process::run_ok(cmd, None, Duration::from_secs(120)).unwrap();
}

fn push_img(registry: &Registry, work: &Path, img: &Img, name_tag: &str) -> String {
    let dir = work.join(name_tag.replace([':', '/'], "_"));
    let gz: Vec<Vec<u8>> = img.layers.iter().map(|l| gzip(l)).collect();
    layout(&dir, "t", &img.config, &gz);
    let reference = format!("{}/{name_tag}", registry.host_port());
    skopeo_copy(&dir, "t", &reference);
    reference
}

/// A `docker save`-format archive of one image (layers as given: plain or gzip).
fn docker_archive(tag: Option<&str>, config: &[u8], layers: &[Vec<u8>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    };
    let cfg_name = format!("{}.json", sha256(config).trim_start_matches("sha256:"));
    add(&cfg_name, config);
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let n = format!("layer{i}/layer.tar");
        add(&n, l);
        names.push(n);
    }
    let manifest = json!([{"Config": cfg_name, "RepoTags": tag.map(|t| vec![t]), "Layers": names}]);
    add("manifest.json", manifest.to_string().as_bytes());
    b.into_inner().unwrap()
}

/// Config and layer blobs of `repo:tag` as the registry holds them.
fn fetch(registry: &Registry, repo: &str, tag: &str) -> (Vec<u8>, Vec<Vec<u8>>, Value) {
    let m = registry.manifest(repo, tag).unwrap().json().unwrap();
    let config = registry
        .blob(repo, m["config"]["digest"].as_str().unwrap())
        .unwrap()
        .body;
    let layers = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            registry
                .blob(repo, l["digest"].as_str().unwrap())
                .unwrap()
                .body
        })
        .collect();
    (config, layers, m)
}

/// A single-entry tar `delta` holding `data` (a delta image layer).
fn delta_layer(data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o600);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "delta", data).unwrap();
    b.into_inner().unwrap()
}

/// The `delta` file inside a delta layer blob (gzip or plain), or None for an empty layer.
fn delta_file(blob: &[u8]) -> Option<Vec<u8>> {
    let plain = if blob.starts_with(&[0x1f, 0x8b]) {
        gunzip(blob)
    } else {
        blob.to_vec()
    };
    untar(&plain).remove("delta")
}

fn set_label(config: &[u8], key: &str, value: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(config).unwrap();
    v["config"]["Labels"][key] = json!(value);
    serde_json::to_vec(&v).unwrap()
}

struct World {
    registry: Registry,
    work: tempfile::TempDir,
    v1: Img,
    v2: Img,
    other: Img,
    v1_ref: String,
    v2_ref: String,
    other_ref: String,
    /// The delta v1 -> v2 the publisher pushed.
    delta_ref: String,
}

/// Registry with v1, v2, other; a publisher daemon makes the v1 -> v2 delta and pushes it.
fn world() -> World {
    let (v1, v2, other) = corpus();
    let registry = Registry::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let v1_ref = push_img(&registry, work.path(), &v1, "delta/app:v1");
    let v2_ref = push_img(&registry, work.path(), &v2, "delta/app:v2");
    let other_ref = push_img(&registry, work.path(), &other, "delta/other:v1");
    let publisher = Daemon::start(DaemonOptions::with_registry(&registry)).unwrap();
    publisher.docker_ok(&["pull", &v1_ref]).unwrap();
    publisher.docker_ok(&["pull", &v2_ref]).unwrap();
    let delta_ref = format!("{}/delta/app:v1-v2", registry.host_port());
    let resp = publisher
        .http(
            "POST",
            &format!("/images/delta?src={v1_ref}&dest={v2_ref}&t={delta_ref}"),
            None,
        )
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let lines = resp.json_lines().unwrap();
    let statuses: Vec<&str> = lines.iter().filter_map(|l| l["status"].as_str()).collect();
    assert!(lines.iter().all(|l| l.get("error").is_none()), "{lines:#?}");
    assert!(statuses.contains(&"Skipping common layer"), "{statuses:?}");
    assert!(statuses.contains(&"Delta complete"), "{statuses:?}");
    let summary = statuses
        .iter()
        .find(|s| s.starts_with("Normal size: "))
        .unwrap_or_else(|| panic!("no summary: {statuses:?}"));
    assert!(
        summary.contains("Delta size: ") && summary.ends_with("x improvement"),
        "{summary}"
    );
    let created = statuses
        .iter()
        .find_map(|s| s.strip_prefix("Created delta: "))
        .unwrap_or_else(|| panic!("no Created delta line: {statuses:?}"));
    assert!(
        created.starts_with("sha256:") && created.len() == 71,
        "{created}"
    );
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("Successfully tagged ")),
        "{statuses:?}"
    );

    // the delta image: balena's labels, the target config verbatim, one layer per target layer
    let v = inspect(&publisher, &delta_ref).unwrap();
    assert_eq!(v["Id"], created);
    let labels = &v["Config"]["Labels"];
    assert_eq!(labels["io.resin.delta.base"], v1.id().as_str());
    assert_eq!(
        labels["io.resin.delta.config"].as_str().unwrap().as_bytes(),
        &v2.config[..]
    );
    assert_eq!(labels["io.skiff.delta.version"], "1");
    let layers = v["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(
        layers[0],
        sha256(&[0u8; 1024]).as_str(),
        "common layer is empty"
    );

    let out = publisher.docker_ok(&["push", &delta_ref]).unwrap();
    assert!(out.contains("Pushed"), "{out}");
    drop(publisher);
    World {
        registry,
        work,
        v1,
        v2,
        other,
        v1_ref,
        v2_ref,
        other_ref,
        delta_ref,
    }
}

/// A device daemon that already holds `base` (pulled in full).
fn device(w: &World, bases: &[&str]) -> Daemon {
    let d = Daemon::start(DaemonOptions::with_registry(&w.registry)).unwrap();
    for b in bases {
        d.docker_ok(&["pull", b]).unwrap();
    }
    d
}

/// What must not change when a delta fails: layers, images, tmp/.
struct Before {
    layers: std::collections::BTreeSet<String>,
    listed: Vec<String>,
}

fn before(d: &Daemon) -> Before {
    Before {
        layers: layer_dirs(d),
        listed: listed(d),
    }
}

fn assert_nothing_left(d: &Daemon, b: &Before, what: &str) {
    assert_eq!(layer_dirs(d), b.layers, "{what}: layers left behind");
    assert_eq!(listed(d), b.listed, "{what}: images changed");
    assert!(
        tmp_entries(d).is_empty(),
        "{what}: tmp/ not empty: {:?}",
        tmp_entries(d)
    );
    d.docker_ok(&["version"]).unwrap();
}

fn assert_is_target(d: &Daemon, reference: &str, target: &Img) {
    let v = inspect(d, reference).unwrap_or_else(|| panic!("{reference} missing"));
    assert_eq!(v["Id"], target.id().as_str(), "{reference}");
    assert_eq!(v["RootFS"]["Layers"], json!(target.diff_ids()));
    for chain in chain_ids(&target.diff_ids()) {
        assert!(layer_dir(d, &chain).join("diff").is_dir());
    }
}

/// Loads `archive`; returns (success, combined output).
fn load(d: &Daemon, archive: Vec<u8>) -> (bool, String) {
    let out = d.docker_with_stdin(&["load"], archive).unwrap();
    (
        out.status.success(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

fn blob_gets(registry: &Registry, digest: &str) -> usize {
    registry
        .log()
        .lines()
        .filter(|l| l.contains("GET") && l.contains(&format!("/blobs/{digest}")))
        .count()
}

/// Removes every container of the daemon when dropped, so a failed assertion in the middle
/// of a `docker run` check leaves no container (and its shim) behind.
struct RemoveContainers<'a>(&'a Daemon);

impl Drop for RemoveContainers<'_> {
    fn drop(&mut self) {
        if let Ok(ids) = self.0.docker_ok(&["ps", "-aq"]) {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.0.docker(&args);
            }
        }
    }
}

/// `docker run --rm [--runtime rt] image cmd...`: (exit code, stdout, stderr).
fn run_in(d: &Daemon, runtime: Option<&str>, image: &str, cmd: &[&str]) -> (i32, String, String) {
    let mut args = vec!["run", "--rm"];
    if let Some(rt) = runtime {
        args.extend(["--runtime", rt]);
    }
    args.push(image);
    args.extend(cmd);
    let out = d.docker(&args).unwrap();
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

/// Output of `run_in`; fails with stderr unless it exits 0.
fn run_ok_in(d: &Daemon, runtime: Option<&str>, image: &str, cmd: &[&str]) -> String {
    let (code, out, err) = run_in(d, runtime, image, cmd);
    assert_eq!(code, 0, "{runtime:?} {image} {cmd:?}: {err}");
    out
}

/// A container of `image` sees `v2`'s files and none that v2 deleted, and one of `v1_ref`
/// still sees v1's (so the checks can tell the versions apart), with the default runtime
/// and with runc. Every container is removed afterwards.
fn assert_containers_see(d: &Daemon, image: &str, v1_ref: &str, v1: &Img, v2: &Img) {
    let _cleanup = RemoveContainers(d);
    let v1_app = untar(&v1.layers[1]);
    let v2_app = untar(&v2.layers[1]);
    let text = |files: &std::collections::BTreeMap<String, Vec<u8>>, path: &str| {
        String::from_utf8(files[path].clone()).unwrap()
    };
    let digest = |files: &std::collections::BTreeMap<String, Vec<u8>>| {
        sha256(&files["app/bin/server"])
            .trim_start_matches("sha256:")
            .to_string()
    };
    assert_ne!(digest(&v1_app), digest(&v2_app), "the binary must change");
    for rt in [None, Some("runc")] {
        let conf = run_ok_in(d, rt, image, &["cat", "/app/etc/server.conf"]);
        assert_eq!(conf, text(&v2_app, "app/etc/server.conf"), "{rt:?}");
        let new = run_ok_in(d, rt, image, &["cat", "/app/share/new.txt"]);
        assert_eq!(new, text(&v2_app, "app/share/new.txt"), "{rt:?}");
        run_ok_in(d, rt, image, &["test", "!", "-e", "/app/share/old.txt"]);
        let sum = run_ok_in(d, rt, image, &["sha256sum", "/app/bin/server"]);
        assert_eq!(
            sum,
            format!("{}  /app/bin/server\n", digest(&v2_app)),
            "{rt:?}"
        );

        // the base, for contrast: v1's content, the file v2 deleted is there
        let conf = run_ok_in(d, rt, v1_ref, &["cat", "/app/etc/server.conf"]);
        assert_eq!(conf, text(&v1_app, "app/etc/server.conf"), "{rt:?}");
        let (code, _, err) = run_in(d, rt, v1_ref, &["test", "!", "-e", "/app/share/old.txt"]);
        assert_eq!(code, 1, "{rt:?}: old.txt missing in v1: {err}");
        let sum = run_ok_in(d, rt, v1_ref, &["sha256sum", "/app/bin/server"]);
        assert!(sum.starts_with(&digest(&v1_app)), "{rt:?}: {sum}");
    }
    let left = d.docker_ok(&["ps", "-aq"]).unwrap();
    assert!(left.trim().is_empty(), "containers left: {left}");
}

#[test]
fn device_pulls_a_published_delta_and_gets_the_exact_target() {
    let w = world();
    let mut d = device(&w, &[&w.v1_ref]);
    let (_, blobs, m) = fetch(&w.registry, "delta/app", "v1-v2");
    // what travels: the common layer is the empty tar, the other a small delta
    assert!(delta_file(&blobs[0]).is_none());
    let delta = delta_file(&blobs[1]).unwrap();
    assert!(delta.starts_with(b"SKFDELTA"));
    let full = gzip(&w.v2.layers[1]).len() as u64;
    let sent: u64 = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    assert!(sent * 20 < full, "delta {sent} B vs full layer {full} B");

    let out = d.docker_ok(&["pull", &w.delta_ref]).unwrap();
    assert!(out.contains("Downloaded newer image"), "{out}");
    // the same image as a full pull of v2, tagged with the pulled reference
    assert_is_target(&d, &w.delta_ref, &w.v2);
    let full_pull = device(&w, &[&w.v2_ref]);
    assert_eq!(
        inspect(&full_pull, &w.v2_ref).unwrap()["Id"],
        inspect(&d, &w.delta_ref).unwrap()["Id"]
    );
    // pulling again changes nothing
    let again = d.docker_ok(&["pull", &w.delta_ref]).unwrap();
    assert!(again.contains("Image is up to date"), "{again}");
    assert_is_target(&d, &w.delta_ref, &w.v2);
    // the base is intact, the delta image itself is not kept
    assert_is_target(&d, &w.v1_ref, &w.v1);
    assert!(tmp_entries(&d).is_empty());
    // a saved copy of the rebuilt image has v2's exact layers
    let saved = d
        .http("GET", &format!("/images/{}/get", w.delta_ref), None)
        .unwrap();
    assert_eq!(saved.status, 200);
    let files = untar(&saved.body);
    for l in &w.v2.layers {
        assert!(
            files
                .values()
                .any(|f| f == l || (f.starts_with(&[0x1f, 0x8b]) && gunzip(f) == *l)),
            "a v2 layer is not byte-identical in the saved image"
        );
    }
    // containers of the rebuilt image run v2's files
    assert_containers_see(&d, &w.delta_ref, &w.v1_ref, &w.v1, &w.v2);
    assert!(tmp_entries(&d).is_empty());
    assert_check_clean(&mut d);
}

#[test]
fn missing_base_fails_before_fetching_any_layer() {
    let w = world();
    let d = device(&w, &[]);
    let b = before(&d);
    let (_, _, m) = fetch(&w.registry, "delta/app", "v1-v2");
    let digest = m["layers"][1]["digest"].as_str().unwrap().to_string();
    let gets = blob_gets(&w.registry, &digest);
    let out = d.docker(&["pull", &w.delta_ref]).unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("delta base image")
            && err.contains("not present locally")
            && err.contains("full image"),
        "{err}"
    );
    assert_eq!(
        blob_gets(&w.registry, &digest),
        gets,
        "a delta layer was fetched"
    );
    assert_nothing_left(&d, &b, "missing base");
    // the caller falls back to a full pull
    d.docker_ok(&["pull", &w.v2_ref]).unwrap();
    assert_is_target(&d, &w.v2_ref, &w.v2);
}

#[test]
fn bad_deltas_fail_clearly_and_leave_nothing_behind() {
    let w = world();
    let mut d = device(&w, &[&w.v1_ref, &w.other_ref]);
    let (config, blobs, _) = fetch(&w.registry, "delta/app", "v1-v2");
    let delta = delta_file(&blobs[1]).unwrap();
    let archive = |config: &[u8], layer1: Vec<u8>| {
        docker_archive(Some("device/app:v2"), config, &[blobs[0].clone(), layer1])
    };

    // the untouched archive loads (load applies deltas too)... on a scratch daemon
    let scratch = device(&w, &[&w.v1_ref]);
    let (ok, out) = load(&scratch, archive(&config, delta_layer(&delta)));
    assert!(ok, "{out}");
    assert_is_target(&scratch, "device/app:v2", &w.v2);
    drop(scratch);

    let b = before(&d);
    let mut corrupt = delta.clone();
    let mid = corrupt.len() / 2;
    for x in &mut corrupt[mid..mid + 16] {
        *x ^= 0xff;
    }
    let truncated = delta[..delta.len() * 2 / 3].to_vec();
    let wrong_base = set_label(&config, "io.resin.delta.base", &w.other.id());
    let mut target: Value = serde_json::from_slice(&w.v2.config).unwrap();
    target["rootfs"]["diff_ids"][1] = json!(sha256(b"something else"));
    let mismatch = set_label(
        &config,
        "io.resin.delta.config",
        &serde_json::to_string(&target).unwrap(),
    );
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "corrupt",
            archive(&config, delta_layer(&corrupt)),
            &["delta", "full"],
        ),
        (
            "truncated",
            archive(&config, delta_layer(&truncated)),
            &["delta", "full"],
        ),
        (
            "wrong base",
            archive(&wrong_base, delta_layer(&delta)),
            &["base", "full"],
        ),
        (
            "diff_id mismatch",
            archive(&mismatch, delta_layer(&delta)),
            &["diff_id", "full"],
        ),
        (
            "not a delta",
            archive(&config, delta_layer(b"hello")),
            &["delta", "full"],
        ),
    ];
    for (what, ar, words) in cases {
        let (ok, out) = load(&d, ar);
        assert!(!ok, "{what}: loaded: {out}");
        eprintln!("{what}: {}", out.trim());
        for word in words {
            assert!(out.contains(word), "{what}: {word:?} not in {out}");
        }
        assert_nothing_left(&d, &b, what);
    }

    // a delta blob corrupted in the registry: the pull fails, nothing is kept
    let (_, _, m) = fetch(&w.registry, "delta/app", "v1-v2");
    let digest = m["layers"][1]["digest"].as_str().unwrap();
    let path = w.registry.blob_data_path(digest);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let out = d.docker(&["pull", &w.delta_ref]).unwrap();
    assert!(!out.status.success(), "{}", stdout(&out));
    assert_nothing_left(&d, &b, "corrupt blob in the registry");
    assert_check_clean(&mut d);
}

/// balenaEngine's format: each changed layer is an rdiff (`-b 512`) delta of the target
/// layer tar against the base image's layer tars concatenated.
fn balena_delta(work: &Path, base: &Img, target: &Img) -> (Vec<u8>, Vec<Vec<u8>>) {
    let dir = work.join("rdiff");
    std::fs::create_dir_all(&dir).unwrap();
    let basis = dir.join("basis");
    std::fs::write(&basis, base.layers.concat()).unwrap();
    let sig = dir.join("sig");
    let rdiff = |args: &[&Path]| {
        let mut cmd = Command::new("rdiff");
        cmd.args(["-b", "512"]).args(args);
        process::run_ok(cmd, None, Duration::from_secs(60)).unwrap();
    };
    rdiff(&[Path::new("signature"), &basis, &sig]);
    let base_chain = chain_ids(&base.diff_ids());
    let target_chain = chain_ids(&target.diff_ids());
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, l) in target.layers.iter().enumerate() {
        let plain = if base_chain.get(i) == Some(&target_chain[i]) {
            vec![0u8; 1024]
        } else {
            let t = dir.join(format!("target{i}"));
            let d = dir.join(format!("delta{i}"));
            std::fs::write(&t, l).unwrap();
            rdiff(&[Path::new("delta"), &sig, &t, &d]);
            let bytes = std::fs::read(&d).unwrap();
            assert!(bytes.starts_with(b"rs\x026"));
            delta_layer(&bytes)
        };
        diff_ids.push(sha256(&plain));
        layers.push(plain);
    }
    let config = json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T00:00:00Z",
        "config": {"Labels": {
            "io.resin.delta.base": base.id(),
            "io.resin.delta.config": String::from_utf8(target.config.clone()).unwrap(),
        }},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    (serde_json::to_vec(&config).unwrap(), layers)
}

#[test]
fn balena_rdiff_deltas_apply_by_pull_and_by_load() {
    let w = world();
    let (config, layers) = balena_delta(w.work.path(), &w.v1, &w.v2);

    // by load
    let mut d = device(&w, &[&w.v1_ref]);
    let (ok, out) = load(&d, docker_archive(Some("balena/app:v2"), &config, &layers));
    assert!(ok, "{out}");
    assert!(out.contains("Loaded image: balena/app:v2"), "{out}");
    assert_is_target(&d, "balena/app:v2", &w.v2);

    // by pull, from a registry
    let dir = w.work.path().join("balena-layout");
    let gz: Vec<Vec<u8>> = layers.iter().map(|l| gzip(l)).collect();
    layout(&dir, "t", &config, &gz);
    let reference = format!("{}/balena/app:delta", w.registry.host_port());
    skopeo_copy(&dir, "t", &reference);
    let d2 = device(&w, &[&w.v1_ref]);
    d2.docker_ok(&["pull", &reference]).unwrap();
    assert_is_target(&d2, &reference, &w.v2);

    // against the wrong base it fails and leaves nothing
    let (config_other, layers_other) = balena_delta(&w.work.path().join("o"), &w.other, &w.v2);
    let wrong = set_label(&config_other, "io.resin.delta.base", &w.v1.id());
    let d3 = device(&w, &[&w.v1_ref]);
    let b = before(&d3);
    let (ok, out) = load(
        &d3,
        docker_archive(Some("balena/app:bad"), &wrong, &layers_other),
    );
    assert!(!ok, "{out}");
    assert!(out.contains("full image"), "{out}");
    assert_nothing_left(&d3, &b, "balena delta on the wrong base");
    assert_check_clean(&mut d);
}

#[test]
fn sigkill_during_a_delta_pull_leaves_old_state_or_new() {
    let w = world();
    let proxy = SlowProxy::start(w.registry.host_port(), 64, Duration::from_millis(5));
    let mut d = Daemon::start(DaemonOptions {
        insecure_registries: vec![w.registry.host_port().to_string(), proxy.addr().to_string()],
        ..DaemonOptions::default()
    })
    .unwrap();
    d.docker_ok(&["pull", &w.v1_ref]).unwrap();
    let via_proxy = w
        .delta_ref
        .replacen(w.registry.host_port(), proxy.addr(), 1);
    let mut whole = 0;
    for delay_ms in [20u64, 60, 120, 250, 500, 1000] {
        let mut child = d
            .docker_command(&["pull", &via_proxy])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(delay_ms) {
            std::thread::sleep(Duration::from_millis(10));
        }
        d.kill().unwrap();
        let _ = process::wait_timeout(&mut child, Duration::from_secs(30));
        let problems = store_invariants(&d);
        assert!(
            problems.is_empty(),
            "after kill at {delay_ms} ms: {problems:#?}"
        );
        d.restart().unwrap();
        assert!(tmp_entries(&d).is_empty(), "tmp/ not emptied on start");
        assert_is_target(&d, &w.v1_ref, &w.v1);
        if inspect(&d, &via_proxy).is_some() {
            assert_is_target(&d, &via_proxy, &w.v2);
            whole += 1;
            d.docker_ok(&["rmi", &via_proxy]).unwrap();
        }
        let status = d.stop().unwrap();
        assert!(status.success());
        assert_check_clean_stopped(&d, &format!("kill at {delay_ms} ms"));
        d.restart().unwrap();
    }
    // and finally it completes
    d.docker_ok(&["pull", &via_proxy]).unwrap();
    assert_is_target(&d, &via_proxy, &w.v2);
    eprintln!("delta pull was whole after {whole} of 6 kills");
}
