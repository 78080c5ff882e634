//! Malformed or malicious layers are refused with a clear error, leave nothing in the store
//! and never touch anything outside the layer directory.

mod common;

use common::*;
use skiff_storage::{Digest, Error, ErrorKind, ExtractRequest, StoreOptions};
use tar::{Builder, EntryType};

fn refused(env: &Env, media: &str, tar: &[u8]) -> Error {
    let blob = compress(media, tar);
    let err = env
        .extract_unchecked(Some(media), &blob)
        .expect_err("layer must be refused");
    assert!(!err.to_string().is_empty());
    env.assert_clean(0);
    err
}

fn unsafe_path(err: &Error) {
    assert!(
        matches!(err, Error::UnsafePath { .. }),
        "expected an unsafe path error, got: {err}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn dotdot_and_absolute_paths() {
    let env = Env::new();
    for name in [&b"../outside/evil"[..], b"a/../../evil", b"/etc/evil", b"/"] {
        let mut b = Builder::new(Vec::new());
        raw(&mut b, EntryType::Regular, name, b"", b"pwned");
        unsafe_path(&refused(&env, PLAIN, &finish(b)));
    }
}

#[test]
fn symlink_parent_escapes() {
    let env = Env::new();
    let outside = env.outside();
    for target in [
        outside.to_str().unwrap().as_bytes(),
        b"../../..",
        b"../../../outside",
        b"/",
    ] {
        let mut b = Builder::new(Vec::new());
        raw(&mut b, EntryType::Symlink, b"evil", target, b"");
        raw(&mut b, EntryType::Regular, b"evil/sentinel", b"", b"pwned");
        unsafe_path(&refused(&env, GZIP, &finish(b)));
    }
    // a chain of symlinks that only escapes at the end
    let mut b = Builder::new(Vec::new());
    raw(&mut b, EntryType::Symlink, b"a", b"b", b"");
    raw(&mut b, EntryType::Symlink, b"b", b"c/../..", b"");
    raw(&mut b, EntryType::Directory, b"c/", b"", b"");
    raw(&mut b, EntryType::Regular, b"a/x", b"", b"pwned");
    unsafe_path(&refused(&env, GZIP, &finish(b)));
}

#[test]
fn hardlink_escapes_and_missing_targets() {
    let env = Env::new();
    let mut b = Builder::new(Vec::new());
    raw(&mut b, EntryType::Link, b"l", b"../outside/sentinel", b"");
    unsafe_path(&refused(&env, PLAIN, &finish(b)));

    let abs = env.outside().join("sentinel");
    let mut b = Builder::new(Vec::new());
    raw(
        &mut b,
        EntryType::Link,
        b"l",
        abs.to_str().unwrap().as_bytes(),
        b"",
    );
    unsafe_path(&refused(&env, PLAIN, &finish(b)));

    // through a symlink that points outside
    let mut b = Builder::new(Vec::new());
    raw(
        &mut b,
        EntryType::Symlink,
        b"out",
        env.outside().to_str().unwrap().as_bytes(),
        b"",
    );
    raw(&mut b, EntryType::Link, b"l", b"out/sentinel", b"");
    unsafe_path(&refused(&env, PLAIN, &finish(b)));

    let mut b = Builder::new(Vec::new());
    raw(&mut b, EntryType::Link, b"l", b"missing", b"");
    let err = refused(&env, PLAIN, &finish(b));
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn replaced_symlinks_are_not_written_through() {
    // symlink, then a directory and a file at the same names: the symlinks are replaced
    let env = Env::new();
    let out = env.outside();
    let mut b = Builder::new(Vec::new());
    raw(
        &mut b,
        EntryType::Symlink,
        b"d",
        out.to_str().unwrap().as_bytes(),
        b"",
    );
    raw(&mut b, EntryType::Directory, b"d/", b"", b"");
    raw(&mut b, EntryType::Regular, b"d/sentinel", b"", b"inside");
    raw(
        &mut b,
        EntryType::Symlink,
        b"f",
        out.join("sentinel").to_str().unwrap().as_bytes(),
        b"",
    );
    raw(&mut b, EntryType::Regular, b"f", b"", b"inside too");
    let tar = finish(b);
    let info = env.extract(PLAIN, &tar, None).unwrap();
    env.assert_clean(1);
    let d = env.store.layer_diff_path(&info.chain_id);
    assert!(lstat(&d.join("d")).is_dir());
    assert_eq!(std::fs::read(d.join("d/sentinel")).unwrap(), b"inside");
    assert!(lstat(&d.join("f")).is_file());
    assert_eq!(layer_tar(&env, &info.chain_id), tar);
}

fn small_tar() -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    dir(&mut b, "etc/");
    file(&mut b, "etc/hosts", b"127.0.0.1 localhost\n");
    finish(b)
}

#[test]
fn digest_mismatches() {
    let env = Env::new();
    let tar = small_tar();
    let blob = gzip(&tar);
    let wrong = Digest::of(b"something else");
    let diff = Digest::of(&tar);
    let err = env
        .store
        .extract_layer(
            ExtractRequest {
                media_type: Some(GZIP),
                expected_blob: Some(&wrong),
                expected_diff_id: Some(&diff),
                ..Default::default()
            },
            &mut &blob[..],
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DigestMismatch {
                what: "layer blob",
                ..
            }
        ),
        "{err}"
    );
    env.assert_clean(0);
    let bd = Digest::of(&blob);
    let err = env
        .store
        .extract_layer(
            ExtractRequest {
                media_type: Some(GZIP),
                expected_blob: Some(&bd),
                expected_diff_id: Some(&wrong),
                ..Default::default()
            },
            &mut &blob[..],
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DigestMismatch {
                what: "layer diff_id",
                ..
            }
        ),
        "{err}"
    );
    env.assert_clean(0);
}

#[test]
fn truncated_streams() {
    let env = Env::new();
    let mut b = Builder::new(Vec::new());
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    file(&mut b, "big", &data);
    let tar = finish(b);
    for media in [GZIP, ZSTD] {
        let blob = compress(media, &tar);
        let cut = &blob[..blob.len() / 2];
        let err = env.extract_unchecked(Some(media), cut).unwrap_err();
        env.assert_clean(0);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{media}: {err}");
    }
    // flipped bytes inside the compressed data
    for media in [GZIP, ZSTD] {
        let mut blob = compress(media, &tar);
        let mid = blob.len() / 2;
        for b in &mut blob[mid..mid + 64] {
            *b ^= 0x5a;
        }
        // zstd frames carry no checksum by default: the diff_id check catches what decoding
        // does not
        let diff = Digest::of(&tar);
        let req = ExtractRequest {
            media_type: Some(media),
            expected_diff_id: Some(&diff),
            ..Default::default()
        };
        let err = env.store.extract_layer(req, &mut &blob[..]).unwrap_err();
        env.assert_clean(0);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{media}: {err}");
    }
    // plain: cut inside the data, and cut exactly before the end-of-archive marker
    for cut in [tar.len() / 2, 512 + data.len().div_ceil(512) * 512] {
        let err = env.extract_unchecked(Some(PLAIN), &tar[..cut]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        env.assert_clean(0);
    }
}

#[test]
fn decompression_bombs() {
    let opts = StoreOptions {
        expansion_floor: 1 << 20,
        max_expansion_ratio: 10,
        ..Default::default()
    };
    let env = Env::with(opts);
    let mut b = Builder::new(Vec::new());
    file(&mut b, "zeros", &vec![0u8; 8 << 20]);
    let err = refused(&env, GZIP, &finish(b));
    assert!(matches!(err, Error::TooLarge(_)), "{err}");
    assert!(err.to_string().contains("expands"), "{err}");

    let opts = StoreOptions {
        max_layer_size: 1 << 20,
        ..Default::default()
    };
    let env = Env::with(opts);
    let mut b = Builder::new(Vec::new());
    file(&mut b, "big", &vec![1u8; 2 << 20]);
    let err = refused(&env, ZSTD, &finish(b));
    assert!(matches!(err, Error::TooLarge(_)), "{err}");
}

#[test]
fn unknown_compression_and_media_types() {
    let env = Env::new();
    let mut xz = vec![0xfd, b'7', b'z', b'X', b'Z', 0];
    xz.extend_from_slice(&[0u8; 600]);
    let err = env.extract_unchecked(None, &xz).unwrap_err();
    assert!(matches!(err, Error::UnsupportedCompression("xz")), "{err}");
    env.assert_clean(0);

    let garbage: Vec<u8> = (0..2048u32).map(|i| (i * 31 % 256) as u8).collect();
    let err = env.extract_unchecked(None, &garbage).unwrap_err();
    assert!(err.to_string().contains("not a tar"), "{err}");
    env.assert_clean(0);

    let err = env
        .extract_unchecked(Some("application/x-rar"), &gzip(&small_tar()))
        .unwrap_err();
    assert!(matches!(err, Error::UnsupportedMediaType(_)), "{err}");
    let err = env
        .extract_unchecked(Some(ZSTD), &gzip(&small_tar()))
        .unwrap_err();
    assert!(matches!(err, Error::CompressionMismatch { .. }), "{err}");
    env.assert_clean(0);
}

#[test]
fn huge_headers_and_unsupported_entries() {
    let env = Env::new();
    let mut b = Builder::new(Vec::new());
    let huge = "z".repeat(2 << 20);
    b.append_pax_extensions([("comment", huge.as_bytes())])
        .unwrap();
    file(&mut b, "f", b"x");
    let err = refused(&env, GZIP, &finish(b));
    assert!(err.to_string().contains("limit"), "{err}");

    let mut b = Builder::new(Vec::new());
    let long = "n".repeat(2 << 20);
    file(&mut b, &long, b"x"); // GNU long name entry of 2 MiB
    let err = refused(&env, GZIP, &finish(b));
    assert!(err.to_string().contains("limit"), "{err}");

    for t in [b'V', b'S', b'M', b'Z'] {
        let mut b = Builder::new(Vec::new());
        raw(&mut b, EntryType::new(t), b"odd", b"", b"");
        let err = refused(&env, PLAIN, &finish(b));
        assert!(
            err.to_string().contains("not supported") || err.to_string().contains("unsupported"),
            "{err}"
        );
    }
}

#[test]
fn concurrent_extraction_of_the_same_layer() {
    let env = Env::new();
    let mut b = Builder::new(Vec::new());
    for i in 0..200 {
        file(
            &mut b,
            &format!("dir{}/file{i}", i % 10),
            format!("content {i}").as_bytes(),
        );
    }
    let tar = finish(b);
    let blob = gzip(&tar);
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| env.extract(GZIP, &blob, None)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let first = results[0].as_ref().unwrap().chain_id.clone();
    for r in &results {
        assert_eq!(r.as_ref().unwrap().chain_id, first);
    }
    env.assert_clean(1);
    assert_eq!(layer_tar(&env, &first), tar);
    assert!(env.store.check(true).unwrap().is_empty());
}
