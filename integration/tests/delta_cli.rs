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
