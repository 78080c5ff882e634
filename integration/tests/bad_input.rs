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
