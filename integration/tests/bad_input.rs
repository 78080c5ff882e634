//! Every bad image `scripts/make-bad-images.py` makes, pulled through the real docker CLI:
//! a clear error naming the cause, nothing listed, no layer kept, `tmp/` empty, the
//! sentinel untouched, the daemon still serving, and `skiff check` clean afterwards.
//!
//! Each test uploads the whole set to its own registry (a few seconds) and pulls one
//! theme of cases, so a failure in one theme does not hide the others; within a test all
//! cases run and the failures are reported together.

mod common;

use common::bad::*;

#[test]
fn escape_attempts_are_refused() {
    run(ESCAPES, false);
}

#[test]
fn symlinks_replaced_later_in_a_layer_never_write_through() {
    run(REPLACE_SYMLINK, true);
}

#[test]
fn broken_streams_are_refused() {
    run(STREAMS, false);
}

#[test]
fn bad_metadata_is_refused() {
    run(METADATA, false);
}

#[test]
fn decompression_bomb_fails_with_bounded_disk_and_memory() {
    let size: u64 = std::env::var("SKIFF_BOMB_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2 << 30);
    let b = bench(size);
    let (problems, peak) = peak_disk_during(&b.daemon.data_root(), || {
        pull_bad(&b, BOMB[0].0, BOMB[0].1, false)
    });
    eprintln!("bomb of {size} bytes: peak data root {peak} bytes");
    // the store aborts beyond max(256 MiB, 100x compressed); allow metadata and slack
    let limit = (256 << 20) + (32 << 20);
    assert!(peak < limit, "data root peaked at {peak} bytes");
    let rss = b.daemon.peak_rss().unwrap();
    eprintln!("bomb: daemon peak RSS {rss} bytes");
    assert!(rss < 128 << 20, "daemon peak RSS {rss} bytes");
    finish(b, problems);
}

/// One raw layer tar entry: (name, kind, data).
type Entry<'a> = (&'a str, u8, &'a [u8]);

/// A `docker save` archive (optionally with a config whose diff_id is wrong) holding one
/// layer tar with `entries`: (name, kind, data)
/// where kind is b'0' (file), b'2' (symlink, data = target) or b'5' (directory).
/// Names are written raw into the header (at most 100 bytes), `..` and absolute paths
/// included; 16 `../` climb out of any data root the harness makes.
fn load_archive(tag: &str, entries: &[Entry], wrong_diff_id: bool) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut layer = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_old();
        let raw = h.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        if *kind == b'2' {
            raw.linkname[..data.len()].copy_from_slice(data);
        }
        h.set_entry_type(tar::EntryType::new(*kind));
        h.set_mode(if *kind == b'5' { 0o755 } else { 0o644 });
        h.set_mtime(1_704_067_200);
        h.set_uid(0);
        h.set_gid(0);
        let body: &[u8] = if *kind == b'0' { data } else { &[] };
        h.set_size(body.len() as u64);
        h.set_cksum();
        layer.append(&h, body).unwrap();
    }
    let layer = layer.into_inner().unwrap();
    let hashed: &[u8] = if wrong_diff_id {
        b"not the layer"
    } else {
        &layer
    };
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(hashed)));
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "bad_input.rs"}],
    })
    .to_string();
    let config_name = format!("{}.json", hex::encode(Sha256::digest(config.as_bytes())));
    let manifest = serde_json::json!([{
        "Config": config_name, "RepoTags": [tag], "Layers": ["l/layer.tar"],
    }])
    .to_string();
    let mut out = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("manifest.json", manifest.as_bytes()),
        (config_name.as_str(), config.as_bytes()),
        ("l/layer.tar", &layer[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        out.append_data(&mut h, name, data).unwrap();
    }
    out.into_inner().unwrap()
}

#[test]
fn docker_load_of_escaping_or_mismatched_layers_is_refused() {
    let registry = skiff_integration::Registry::start().unwrap();
    let sentinel = skiff_integration::Sentinel::new().unwrap();
    let mut d = skiff_integration::Daemon::start(skiff_integration::DaemonOptions::with_registry(
        &registry,
    ))
    .unwrap();
    let target = sentinel.dir().display().to_string();
    let dotdot = format!(
        "{}{}/escaped-dd",
        "../".repeat(16),
        target.trim_start_matches('/')
    );
    let absolute = format!("{target}/escaped-abs");
    let cases: Vec<(&str, Vec<Entry>, &[&str])> = vec![
        (
            "dotdot",
            vec![(&dotdot, b'0', b"x\n")],
            &["'..'", "outside"],
        ),
        ("absolute", vec![(&absolute, b'0', b"x\n")], &["absolute"]),
        (
            "symlink-parent",
            vec![
                ("evil", b'2', target.as_bytes()),
                ("evil/escaped-load-symlink", b'0', b"x\n"),
            ],
            &["symlink", "outside"],
        ),
        (
            "diff-id-mismatch",
            vec![("ok.txt", b'0', b"fine\n")],
            &["diff_id"],
        ),
    ];
    let mut problems = Vec::new();
    for (case, entries, words) in cases {
        let archive = load_archive(
            &format!("evil/load:{case}"),
            &entries,
            case == "diff-id-mismatch",
        );
        let out = d.docker_with_stdin(&["load"], archive).unwrap();
        let err = common::stderr(&out).to_lowercase();
        eprintln!("load {case}: {}", err.trim());
        if out.status.success() {
            problems.push(format!("{case}: load succeeded"));
        } else if !words.iter().any(|w| err.contains(w)) {
            problems.push(format!(
                "{case}: unclear error (wanted one of {words:?}): {err}"
            ));
        }
        if let Err(e) = sentinel.check() {
            problems.push(format!("{case}: {e}"));
        }
        if !common::listed(&d).is_empty() {
            problems.push(format!("{case}: listed {:?}", common::listed(&d)));
        }
        if !common::layer_dirs(&d).is_empty() {
            problems.push(format!("{case}: layers kept {:?}", common::layer_dirs(&d)));
        }
        if !common::tmp_entries(&d).is_empty() {
            problems.push(format!("{case}: tmp/ holds {:?}", common::tmp_entries(&d)));
        }
    }
    // the same builder with harmless entries loads: the refusals above are about the entries
    let good = load_archive("fine/load:1", &[("ok.txt", b'0', b"fine\n")], false);
    let out = d.docker_with_stdin(&["load"], good).unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(common::inspect(&d, "fine/load:1").is_some());
    d.stop().unwrap();
    common::assert_check_clean_stopped(&d, "after bad loads");
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}
