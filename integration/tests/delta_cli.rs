//! `skiff delta create|apply|inspect` through the real binary: layer tars built here
//! (a changed binary-ish file, a renamed file, a deleted file), plain and compressed,
//! round trips byte for byte; corrupt, truncated deltas and wrong bases fail cleanly
//! and leave no output behind; OCI layouts give one delta per changed layer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use skiff_integration::skiff_binary;

fn skiff(args: &[&str]) -> Output {
    Command::new(skiff_binary())
        .args(args)
        .output()
        .expect("run skiff (build it first: cargo build -p skiff)")
}

fn ok(args: &[&str]) -> String {
    let out = skiff(args);
    assert!(
        out.status.success(),
        "skiff {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail; returns its stderr.
fn fails(args: &[&str]) -> String {
    let out = skiff(args);
    assert!(!out.status.success(), "skiff {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A base and a target layer: `bin/app` changed in a few places, `etc/old.conf`
/// renamed to `etc/new.conf`, `var/gone` deleted, `usr/lib/same` unchanged.
fn layers() -> (Vec<u8>, Vec<u8>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let app: Vec<u8> = (0..300_000)
        .map(|i| {
            if i % 7 == 0 {
                rng.gen()
            } else {
                (i % 251) as u8
            }
        })
        .collect();
    let mut app2 = app.clone();
    for i in [1000usize, 50_000, 200_000] {
        app2[i..i + 16].copy_from_slice(b"changed-in-build");
    }
    let conf: Vec<u8> = (0..20_000).map(|i| b"key = value\n"[i % 12]).collect();
    let same: Vec<u8> = (0..100_000).map(|_| rng.gen()).collect();
    let gone = vec![b'x'; 5000];
    let base = tar_of(&[
        ("bin/app", &app),
        ("etc/old.conf", &conf),
        ("usr/lib/same", &same),
        ("var/gone", &gone),
    ]);
    let target = tar_of(&[
        ("bin/app", &app2),
        ("etc/new.conf", &conf),
        ("usr/lib/same", &same),
    ]);
    (base, target)
}

struct Fixture {
    dir: tempfile::TempDir,
    base: Vec<u8>,
    target: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let (base, target) = layers();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.tar"), &base).unwrap();
        std::fs::write(dir.path().join("target.tar"), &target).unwrap();
        Fixture { dir, base, target }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    fn create(&self, base: &str, target: &str, out: &str) -> String {
        ok(&[
            "delta",
            "create",
            "--base",
            &self.path(base),
            "--target",
            &self.path(target),
            "-o",
            &self.path(out),
        ])
    }
}

#[test]
fn create_inspect_apply_round_trips_byte_for_byte() {
    let f = Fixture::new();
    let printed = f.create("base.tar", "target.tar", "d.delta");
    assert!(printed.contains(&sha256(&f.target)), "{printed}");
    let delta = std::fs::read(f.path("d.delta")).unwrap();
    assert!(
        delta.len() < f.target.len() / 10,
        "delta {} bytes",
        delta.len()
    );
    assert!(!Path::new(&tmp(&f.path("d.delta"))).exists());

    let info: Value =
        serde_json::from_str(&ok(&["delta", "inspect", "--json", &f.path("d.delta")])).unwrap();
    assert_eq!(info["FormatVersion"], 1);
    assert_eq!(info["TargetSize"], f.target.len() as u64);
    assert_eq!(info["TargetDiffID"], sha256(&f.target));
    assert_eq!(info["BaseDiffIDs"], json!([sha256(&f.base)]));
    assert_eq!(info["DeltaSize"], delta.len() as u64);
    // bin/app is patched; the renamed conf and the unchanged file come from the base
    assert_eq!(
        info["Ops"]["Bsdiff"].as_u64().unwrap() + info["Ops"]["Zref"].as_u64().unwrap(),
        1
    );
    assert!(
        info["Bytes"]["Copied"].as_u64().unwrap() + info["Bytes"]["Range"].as_u64().unwrap()
            >= 120_000
    );
    let text = ok(&["delta", "inspect", &f.path("d.delta")]);
    assert!(text.contains("format version  1"), "{text}");
    assert!(text.contains(&sha256(&f.base)), "{text}");

    let printed = ok(&[
        "delta",
        "apply",
        "--base",
        &f.path("base.tar"),
        &f.path("d.delta"),
        "-o",
        &f.path("out.tar"),
    ]);
    assert_eq!(printed.trim(), sha256(&f.target));
    assert_eq!(std::fs::read(f.path("out.tar")).unwrap(), f.target);
    assert!(!Path::new(&tmp(&f.path("out.tar"))).exists());
}

#[test]
fn compressed_layer_tars_are_accepted() {
    let f = Fixture::new();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&f.base).unwrap();
    std::fs::write(f.path("base.tar.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(
        f.path("target.tar.zst"),
        zstd::encode_all(&f.target[..], 3).unwrap(),
    )
    .unwrap();

    f.create("base.tar.gz", "target.tar.zst", "d.delta");
    // the delta is against the uncompressed base, so the plain tar applies it too
    for base in ["base.tar.gz", "base.tar"] {
        let printed = ok(&[
            "delta",
            "apply",
            "--base",
            &f.path(base),
            &f.path("d.delta"),
            "-o",
            &f.path("out.tar"),
        ]);
        assert_eq!(printed.trim(), sha256(&f.target));
        assert_eq!(std::fs::read(f.path("out.tar")).unwrap(), f.target);
    }
}

fn tmp(path: &str) -> String {
    format!("{path}.tmp")
}

#[test]
fn corrupt_or_truncated_delta_fails_and_leaves_no_output() {
    let f = Fixture::new();
    f.create("base.tar", "target.tar", "d.delta");
    let delta = std::fs::read(f.path("d.delta")).unwrap();

    let mut flipped = delta.clone();
    let mid = delta.len() / 2 + 40.min(delta.len() / 4);
    flipped[mid] ^= 0xff;
    std::fs::write(f.path("flipped.delta"), &flipped).unwrap();
    std::fs::write(f.path("short.delta"), &delta[..delta.len() - 10]).unwrap();
    std::fs::write(f.path("junk.delta"), b"this is not a delta at all").unwrap();

    for bad in ["flipped.delta", "short.delta", "junk.delta"] {
        let err = fails(&[
            "delta",
            "apply",
            "--base",
            &f.path("base.tar"),
            &f.path(bad),
            "-o",
            &f.path("out.tar"),
        ]);
        assert!(err.contains("delta"), "{bad}: {err}");
        assert!(
            err.contains("corrupt")
                || err.contains("not a skiff delta")
                || err.contains("does not match"),
            "{bad}: {err}"
        );
        assert!(
            !Path::new(&f.path("out.tar")).exists(),
            "{bad} left out.tar"
        );
        assert!(
            !Path::new(&tmp(&f.path("out.tar"))).exists(),
            "{bad} left out.tar.tmp"
        );
        // inspect checks structure only: a flipped content byte shows up at apply
        if bad != "flipped.delta" {
            fails(&["delta", "inspect", &f.path(bad)]);
        }
    }
}

#[test]
fn wrong_base_fails_and_leaves_no_output() {
    let f = Fixture::new();
    f.create("base.tar", "target.tar", "d.delta");
    // the target is not the base; neither is a base missing a layer
    let err = fails(&[
        "delta",
        "apply",
        "--base",
        &f.path("target.tar"),
        &f.path("d.delta"),
        "-o",
        &f.path("out.tar"),
    ]);
    assert!(
        err.contains("diff_id") && err.contains(&sha256(&f.base)),
        "{err}"
    );
    assert!(!Path::new(&f.path("out.tar")).exists());
    let err = fails(&[
        "delta",
        "apply",
        &f.path("d.delta"),
        "-o",
        &f.path("out.tar"),
    ]);
    assert!(err.contains("1 base layers but 0"), "{err}");
    assert!(!Path::new(&f.path("out.tar")).exists());
    assert!(!Path::new(&tmp(&f.path("out.tar"))).exists());
}

#[test]
fn missing_input_is_a_clear_error() {
    let f = Fixture::new();
    let err = fails(&[
        "delta",
        "create",
        "--base",
        &f.path("nope.tar"),
        "--target",
        &f.path("target.tar"),
        "-o",
        &f.path("d.delta"),
    ]);
    assert!(
        err.contains("cannot open layer") && err.contains("nope.tar"),
        "{err}"
    );
    assert!(!PathBuf::from(f.path("d.delta")).exists());
}

/// Writes `bytes` as a blob of the OCI layout at `dir`; returns its descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = sha256(bytes);
    let path = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// Adds an image with these (already compressed or plain) layer blobs to the layout.
fn image(dir: &Path, tag: &str, layers: &[(&str, Vec<u8>)], diff_ids: &[String]) -> Value {
    let config = json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let config = blob(
        dir,
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    );
    let layers: Vec<Value> = layers.iter().map(|(mt, b)| blob(dir, mt, b)).collect();
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": layers});
    let mut desc = blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    );
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    desc
}

#[test]
fn oci_layouts_get_one_delta_per_changed_layer() {
    let f = Fixture::new();
    let layout = f.dir.path().join("layout");
    let shared = tar_of(&[("etc/os-release", b"ID=test\n")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&f.base).unwrap();
    let base_gz = gz.finish().unwrap();
    let target_zst = zstd::encode_all(&f.target[..], 3).unwrap();
    let v1 = image(
        &layout,
        "v1",
        &[
            ("application/vnd.oci.image.layer.v1.tar", shared.clone()),
            (
                "application/vnd.oci.image.layer.v1.tar+gzip",
                base_gz.clone(),
            ),
        ],
        &[sha256(&shared), sha256(&f.base)],
    );
    let v2 = image(
        &layout,
        "v2",
        &[
            ("application/vnd.oci.image.layer.v1.tar", shared.clone()),
            ("application/vnd.oci.image.layer.v1.tar+zstd", target_zst),
        ],
        &[sha256(&shared), sha256(&f.target)],
    );
    let index = json!({"schemaVersion": 2, "manifests": [v1, v2]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();

    let l = layout.to_str().unwrap();
    let out = f.path("deltas");
    // two images and no tag: which one is meant is unclear
    let err = fails(&[
        "delta",
        "create",
        "--base-oci",
        l,
        "--target-oci",
        &format!("{l}:v2"),
        "-o",
        &out,
    ]);
    assert!(err.contains("holds 2 images"), "{err}");
    let err = fails(&[
        "delta",
        "create",
        "--base-oci",
        &format!("{l}:v0"),
        "--target-oci",
        &format!("{l}:v2"),
        "-o",
        &out,
    ]);
    assert!(err.contains("no image tagged 'v0'"), "{err}");

    ok(&[
        "delta",
        "create",
        "--base-oci",
        &format!("{l}:v1"),
        "--target-oci",
        &format!("{l}:v2"),
        "-o",
        &out,
    ]);
    let summary: Value =
        serde_json::from_slice(&std::fs::read(f.dir.path().join("deltas/summary.json")).unwrap())
            .unwrap();
    assert_eq!(
        summary["Base"]["DiffIDs"],
        json!([sha256(&shared), sha256(&f.base)])
    );
    assert_eq!(
        summary["Target"]["DiffIDs"],
        json!([sha256(&shared), sha256(&f.target)])
    );
    let layers = summary["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["InBase"], true);
    assert_eq!(layers[0]["Delta"], Value::Null);
    assert_eq!(layers[1]["InBase"], false);
    let name = layers[1]["Delta"].as_str().unwrap();
    let delta = f.dir.path().join("deltas").join(name);
    assert_eq!(
        layers[1]["DeltaSize"],
        std::fs::metadata(&delta).unwrap().len()
    );

    // the delta is against both base layers, bottom to top; the base blobs apply it as is
    let blob_of = |b: &[u8]| {
        let d = sha256(b);
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let printed = ok(&[
        "delta",
        "apply",
        "--base",
        &blob_of(&shared),
        "--base",
        &blob_of(&base_gz),
        delta.to_str().unwrap(),
        "-o",
        &f.path("out.tar"),
    ]);
    assert_eq!(printed.trim(), sha256(&f.target));
    assert_eq!(std::fs::read(f.path("out.tar")).unwrap(), f.target);
}
