//! The bad-image bench: a registry holding every case of `scripts/make-bad-images.py`, a
//! daemon, and the checks each bad pull must pass.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_integration::{disk_usage, BadImages, Daemon, DaemonOptions, Registry, Sentinel};

use super::*;

/// case -> words one of which the error must contain (lower case), so it names the cause.
pub const ESCAPES: &[(&str, &[&str])] = &[
    ("dotdot", &["'..'", "outside"]),
    ("absolute", &["absolute"]),
    ("symlink-parent-abs", &["symlink", "outside"]),
    ("symlink-parent-rel", &["symlink", "outside"]),
    ("hardlink-outside", &["'..'", "outside"]),
    ("hardlink-missing", &["hardlink", "missing"]),
];

/// A later entry replacing an earlier symlink in the same layer is valid tar (dockerd
/// replaces too): refusing is fine, and so is success when the entry replaced the link
/// inside the layer instead of writing through it.
pub const REPLACE_SYMLINK: &[(&str, &[&str])] = &[
    ("symlink-then-dir", &["symlink", "outside"]),
    ("symlink-then-file", &["symlink", "outside"]),
];

pub const STREAMS: &[(&str, &[&str])] = &[
    ("truncated-gzip", &["truncated", "unexpected end", "eof"]),
    ("layer-digest-mismatch", &["digest"]),
];

pub const METADATA: &[(&str, &[&str])] = &[
    ("manifest-wrong-case-keys", &["schemaversion", "malformed"]),
    ("manifest-config-size-wrong", &["size", "bytes"]),
    ("manifest-digest-mismatch", &["digest"]),
    ("unknown-layer-mediatype", &["media type"]),
    ("unknown-config-mediatype", &["media type"]),
    ("config-malformed", &["config"]),
    ("config-diffid-mismatch", &["diff_id"]),
    ("config-too-few-diffids", &["diff_id"]),
    ("manifest-invalid-utf8", &["utf-8"]),
];

pub const BOMB: &[(&str, &[&str])] = &[("bomb", &["bomb", "too large"])];

/// Cases that fail because of open engine bugs (listed in docs/testing.md); their test
/// lives in `pending.rs.draft` until the engine is fixed, then the case moves to its theme.
pub const PENDING: &[(&str, &[&str])] = &[];

pub struct Bench {
    pub daemon: Daemon,
    pub bad: BadImages,
    pub sentinel: Sentinel,
    // dropped last
    _registry: Registry,
}

pub fn bench(bomb_size: u64) -> Bench {
    let registry = Registry::start().unwrap();
    let sentinel = Sentinel::new().unwrap();
    let bad = BadImages::upload(&registry, &sentinel, bomb_size).unwrap();
    let daemon = Daemon::start(DaemonOptions::with_registry(&registry)).unwrap();
    Bench {
        daemon,
        bad,
        sentinel,
        _registry: registry,
    }
}

/// Pulls one bad case and returns what is wrong with how the daemon handled it.
pub fn pull_bad(b: &Bench, case: &str, words: &[&str], may_replace: bool) -> Vec<String> {
    let d = &b.daemon;
    let mut problems = Vec::new();
    let images_before = listed(d);
    let layers_before = layer_dirs(d);
    let started = Instant::now();
    let out = d.docker(&["pull", b.bad.reference(case).unwrap()]).unwrap();
    let err = stderr(&out);
    eprintln!("{case}: {:?}: {}", started.elapsed(), err.trim());
    if out.status.success() {
        if may_replace {
            problems.extend(replaced_inside(d, case));
            // leave the store as it was for the next case
            d.docker_ok(&["rmi", b.bad.reference(case).unwrap()])
                .unwrap();
        } else {
            problems.push("the pull succeeded".into());
        }
    } else {
        let lower = err.to_lowercase();
        if err.trim().len() < 20 || !words.iter().any(|w| lower.contains(w)) {
            problems.push(format!("unclear error (wanted one of {words:?}): {err:?}"));
        }
        if lower.contains("panicked") {
            problems.push(format!("a panic: {err}"));
        }
    }
    if let Err(e) = b.sentinel.check() {
        problems.push(e.to_string());
    }
    let images_after = listed(d);
    if images_after != images_before {
        problems.push(format!("docker images now lists {images_after:?}"));
    }
    let new_layers: BTreeSet<_> = layer_dirs(d).difference(&layers_before).cloned().collect();
    if !new_layers.is_empty() {
        problems.push(format!("layer dirs kept: {new_layers:?}"));
    }
    let tmp = tmp_entries(d);
    if !tmp.is_empty() {
        problems.push(format!("left in tmp/: {tmp:?}"));
    }
    match d.http("GET", "/_ping", None) {
        Ok(r) if r.status == 200 => {}
        other => problems.push(format!("the daemon stopped answering /_ping: {other:?}")),
    }
    problems
        .into_iter()
        .map(|p| format!("{case}: {p}"))
        .collect()
}

/// After an accepted symlink-then-X pull: `evil` in the layer is a real directory or file.
pub fn replaced_inside(d: &Daemon, case: &str) -> Vec<String> {
    let mut found = Vec::new();
    for dir in layer_dirs(d) {
        let evil = d
            .data_root()
            .join("layers/sha256")
            .join(dir)
            .join("diff/evil");
        if let Ok(meta) = std::fs::symlink_metadata(&evil) {
            found.push(meta.file_type());
        }
    }
    match (case, found.as_slice()) {
        ("symlink-then-dir", [t]) if t.is_dir() => Vec::new(),
        ("symlink-then-file", [t]) if t.is_file() => Vec::new(),
        _ => vec![format!(
            "accepted, but the layer's `evil` is {found:?}, not a plain {}",
            case.trim_start_matches("symlink-then-")
        )],
    }
}

/// Stops the daemon; the store must check clean and hold no layers at all.
pub fn finish(mut b: Bench, mut problems: Vec<String>) {
    let status = b.daemon.stop().unwrap();
    if !status.success() {
        problems.push(format!("daemon exited with {status} on SIGTERM"));
    }
    let out = b.daemon.check().unwrap();
    if !out.status.success() {
        problems.push(format!("skiff check: {}{}", stdout(&out), stderr(&out)));
    }
    let layers = layer_dirs(&b.daemon);
    if !layers.is_empty() {
        problems.push(format!("layers left in the store: {layers:?}"));
    }
    if let Err(e) = b.sentinel.check() {
        problems.push(e.to_string());
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

pub fn run(cases: &[(&str, &[&str])], may_replace: bool) {
    let b = bench(1 << 20);
    let mut problems = Vec::new();
    // nothing the script makes goes untested
    let made: BTreeSet<&str> = b.bad.refs.keys().map(String::as_str).collect();
    let covered: BTreeSet<&str> = [ESCAPES, REPLACE_SYMLINK, STREAMS, METADATA, BOMB]
        .iter()
        .flat_map(|list| list.iter().map(|(c, _)| *c))
        .chain(PENDING.iter().map(|(c, _)| *c))
        .collect();
    assert_eq!(made, covered, "bad-image cases and the tests' lists differ");
    for (case, words) in cases {
        problems.extend(pull_bad(&b, case, words, may_replace));
    }
    finish(b, problems);
}

/// Peak bytes under `dir` while `f` runs, sampled every few milliseconds.
pub fn peak_disk_during<T>(dir: &Path, f: impl FnOnce() -> T) -> (T, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(disk_usage(&dir));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak.max(disk_usage(&dir))
        })
    };
    let out = f();
    stop.store(true, Ordering::Relaxed);
    (out, sampler.join().unwrap())
}
