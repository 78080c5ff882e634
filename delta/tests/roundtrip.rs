//! Round trips through create and apply on tars built in-test: the rebuilt tar must be
//! byte-identical to the target, and bad deltas or bases must give errors.

use std::io::Cursor;

use rand::{Rng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use skiff_delta::{
    apply, create, inspect, CreateOptions, DeltaError, DeltaStats, ErrorKind, TarBase,
};

enum E<'a> {
    File(&'a str, Vec<u8>),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::File(p, data) => {
                h.set_mode(0o755);
                h.set_size(data.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, p, data.as_slice()).unwrap();
            }
            E::Dir(p) => {
                h.set_mode(0o755);
                h.set_size(0);
                h.set_entry_type(tar::EntryType::Directory);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::Symlink(p, t) => {
                h.set_mode(0o777);
                h.set_size(0);
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Hardlink(p, t) => {
                h.set_mode(0o644);
                h.set_size(0);
                h.set_entry_type(tar::EntryType::Link);
                b.append_link(&mut h, p, t).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn random(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// A fake "binary": random code-like bytes with repeated structure, so small edits
/// and shifts look like a rebuild.
fn binary(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        let op: u8 = rng.gen_range(0..8);
        v.push(op);
        v.extend_from_slice(&rng.gen::<u32>().to_le_bytes()[..rng.gen_range(1..4)]);
    }
    v.truncate(len);
    v
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn opts(ranges: bool) -> CreateOptions {
    CreateOptions {
        level: 9,
        base_tar_ranges: ranges,
        ..CreateOptions::default()
    }
}

fn make(bases: &[Vec<u8>], target: &[u8]) -> (Vec<u8>, DeltaStats) {
    make_with(bases, target, true)
}

fn make_with(bases: &[Vec<u8>], target: &[u8], ranges: bool) -> (Vec<u8>, DeltaStats) {
    let mut cursors: Vec<Cursor<&[u8]>> = bases.iter().map(|b| Cursor::new(b.as_slice())).collect();
    let mut refs: Vec<&mut dyn skiff_delta::ReadSeek> = cursors
        .iter_mut()
        .map(|c| c as &mut dyn skiff_delta::ReadSeek)
        .collect();
    let mut delta = Vec::new();
    let stats = create(&mut refs, &mut &target[..], &mut delta, &opts(ranges)).unwrap();
    assert_eq!(stats.delta_size, delta.len() as u64);
    (delta, stats)
}

fn rebuild(bases: &[Vec<u8>], delta: &[u8]) -> Result<Vec<u8>, DeltaError> {
    let base = TarBase::new(bases.iter().map(|b| Cursor::new(b.as_slice())).collect()).unwrap();
    let mut out = Vec::new();
    let applied = apply(&base, &mut &delta[..], &mut out)?;
    assert_eq!(applied.size, out.len() as u64);
    assert_eq!(applied.diff_id, sha(&out));
    Ok(out)
}

/// Creates (with and without base tar ranges), applies, checks byte equality and the
/// inspect summary; returns the delta and stats made with ranges.
fn round_trip(bases: &[Vec<u8>], target: &[u8]) -> (Vec<u8>, DeltaStats) {
    let (_, plain) = round_trip_with(bases, target, false);
    assert_eq!(plain.range_bytes, 0);
    let (delta, stats) = round_trip_with(bases, target, true);
    assert_eq!(plain.copied, stats.copied, "ranges must not lose copies");
    (delta, stats)
}

fn round_trip_with(bases: &[Vec<u8>], target: &[u8], ranges: bool) -> (Vec<u8>, DeltaStats) {
    let (delta, stats) = make_with(bases, target, ranges);
    let out = rebuild(bases, &delta).unwrap();
    assert!(out == target, "rebuilt tar differs from the target");
    assert_eq!(stats.target_diff_id, sha(target));
    let info = inspect(&mut &delta[..]).unwrap();
    assert_eq!(info.target_size, target.len() as u64);
    assert_eq!(info.target_diff_id, sha(target));
    assert_eq!(info.range_bytes, stats.range_bytes);
    assert!(info.copies <= stats.copied);
    if !ranges {
        assert_eq!(info.copies, stats.copied);
    }
    assert_eq!(info.bsdiff, stats.bsdiff);
    assert_eq!(info.zref, stats.zref);
    assert_eq!(
        info.base_diff_ids,
        bases.iter().map(|b| sha(b)).collect::<Vec<_>>()
    );
    (delta, stats)
}

#[test]
fn changed_binary_with_edits_and_shifts_is_patched_small() {
    let old = binary(1, 300_000);
    let mut new = old.clone();
    for i in (1000..290_000).step_by(10_007) {
        new[i] ^= 0x5a;
    }
    new.splice(150_000..150_000, random(2, 3000));
    new.drain(50_000..52_000);
    let base = tar_of(&[
        E::Dir("usr/"),
        E::Dir("usr/bin/"),
        E::File("usr/bin/app", old),
    ]);
    let target = tar_of(&[
        E::Dir("usr/"),
        E::Dir("usr/bin/"),
        E::File("usr/bin/app", new.clone()),
    ]);
    let (delta, stats) = round_trip(&[base], &target);
    assert_eq!(stats.bsdiff + stats.zref, 1, "{stats:?}");
    assert_eq!(stats.literal, 0);
    let full = zstd::bulk::compress(&target, 19).unwrap().len();
    assert!(
        delta.len() * 10 < full,
        "delta {} vs zstd of target {}",
        delta.len(),
        full
    );
}

#[test]
fn config_only_change_is_under_1kib() {
    let mut files: Vec<(String, Vec<u8>)> = (0..50)
        .map(|i| (format!("usr/lib/lib{i}.so"), binary(100 + i, 20_000)))
        .collect();
    let conf = b"# app config\nlisten = 0.0.0.0:8080\nlog_level = info\nworkers = 4\n".repeat(20);
    files.push(("etc/app.conf".into(), conf.clone()));
    let entries = |conf: Vec<u8>| -> Vec<u8> {
        let mut es: Vec<E<'_>> = files
            .iter()
            .map(|(p, d)| E::File(p.as_str(), d.clone()))
            .collect();
        es.pop();
        es.push(E::File("etc/app.conf", conf));
        tar_of(&es)
    };
    let base = entries(conf.clone());
    let mut new_conf = conf.clone();
    let at = new_conf.len() - 3;
    new_conf[at] = b'8';
    let target = entries(new_conf);
    let (delta, stats) = round_trip(&[base], &target);
    assert_eq!(stats.copied, 50, "{stats:?}");
    assert!(
        delta.len() <= 1024,
        "config-only delta is {} bytes",
        delta.len()
    );
}

#[test]
fn renamed_file_is_copied_by_content() {
    let data = random(3, 50_000);
    let base = tar_of(&[E::File("opt/old-name.bin", data.clone())]);
    let target = tar_of(&[E::File("opt/new/place.bin", data)]);
    let (_, stats) = round_trip(&[base], &target);
    assert_eq!((stats.copied, stats.literal), (1, 0), "{stats:?}");
}

#[test]
fn renamed_versioned_library_is_patched() {
    let old = binary(4, 120_000);
    let mut new = old.clone();
    new[60_000..60_010].copy_from_slice(b"v1.3 build");
    let base = tar_of(&[
        E::File("usr/lib/libfoo.so.1.2", old),
        E::Symlink("usr/lib/libfoo.so.1", "libfoo.so.1.2"),
    ]);
    let target = tar_of(&[
        E::File("usr/lib/libfoo.so.1.3", new),
        E::Symlink("usr/lib/libfoo.so.1", "libfoo.so.1.3"),
    ]);
    let (delta, stats) = round_trip(&[base], &target);
    assert_eq!(stats.bsdiff + stats.zref, 1, "{stats:?}");
    assert!(delta.len() < 2000, "delta is {} bytes", delta.len());
}

#[test]
fn deleted_file_dir_replaced_by_file_links_and_empty_files() {
    let base = tar_of(&[
        E::Dir("x/"),
        E::File("x/y", random(5, 4000)),
        E::File("gone", random(6, 9000)),
        E::File("keep", random(7, 7000)),
    ]);
    let target = tar_of(&[
        E::File("x", random(8, 100)),
        E::File(".wh.gone", vec![]),
        E::File("keep", random(7, 7000)),
        E::File("empty", vec![]),
        E::Hardlink("keep-link", "keep"),
        E::Symlink("sym", "../keep"),
        E::Dir("newdir/"),
    ]);
    let (_, stats) = round_trip(&[base], &target);
    assert_eq!(stats.copied, 1, "{stats:?}");
}

#[test]
fn pax_headers_with_xattrs_and_long_names() {
    let long = format!(
        "usr/share/{}/file.txt",
        "very-long-directory-name-".repeat(8)
    );
    let pax_file = |data: &[u8]| -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([
            ("path", long.as_bytes()),
            ("SCHILY.xattr.user.comment", &b"hello xattr"[..]),
            (
                "SCHILY.xattr.security.capability",
                &[1u8, 0, 0, 2, 0, 0x20, 0, 0][..],
            ),
        ])
        .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("usr/share/truncated").unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).unwrap();
        b.into_inner().unwrap()
    };
    let old = b"line of text\n".repeat(2000);
    let mut new = old.clone();
    new.extend_from_slice(b"one more line\n");
    let base = pax_file(&old);
    let target = pax_file(&new);
    let (delta, stats) = round_trip(std::slice::from_ref(&base), &target);
    assert_eq!(
        stats.bsdiff + stats.zref,
        1,
        "pax path must be matched: {stats:?}"
    );
    assert!(delta.len() < 600, "delta is {} bytes", delta.len());
    // Same content: copied by its pax path.
    let (_, stats) = round_trip(std::slice::from_ref(&base), &base);
    assert_eq!(stats.copied, 1);
}

#[test]
fn gnu_long_names_are_matched() {
    let long = format!("opt/{}/data.bin", "d".repeat(150));
    let data = random(9, 30_000);
    let base = tar_of(&[E::File(&long, data.clone())]);
    let mut changed = data.clone();
    changed[100] ^= 1;
    let target = tar_of(&[E::File(&long, changed)]);
    assert!(
        target.windows(13).any(|w| w == b"././@LongLink"),
        "test needs a GNU long name entry"
    );
    let (_, stats) = round_trip(&[base], &target);
    assert_eq!(stats.bsdiff + stats.zref, 1, "{stats:?}");
}

#[test]
fn trailing_zero_blocks_and_junk_are_kept() {
    let base = tar_of(&[E::File("a", random(10, 5000))]);
    let mut target = tar_of(&[
        E::File("a", random(10, 5000)),
        E::File("b", random(11, 700)),
    ]);
    target.extend_from_slice(&[0u8; 10 * 512]);
    round_trip(std::slice::from_ref(&base), &target);
    target.extend_from_slice(b"not a tar block");
    round_trip(std::slice::from_ref(&base), &target);
    // Not a tar at all.
    round_trip(&[base], &random(12, 3333));
}

#[test]
fn identical_target_is_all_copies() {
    let files: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| (format!("bin/tool{i}"), binary(200 + i, 30_000)))
        .collect();
    let es: Vec<E<'_>> = files
        .iter()
        .map(|(p, d)| E::File(p.as_str(), d.clone()))
        .collect();
    let tar = tar_of(&es);
    let (delta, stats) = round_trip(std::slice::from_ref(&tar), &tar);
    assert_eq!((stats.copied, stats.literal), (20, 0));
    assert!(delta.len() < 1500, "delta is {} bytes", delta.len());
}

#[test]
fn files_come_from_the_right_base_layer_and_empty_target_works() {
    let lower = tar_of(&[
        E::File("etc/a", random(13, 3000)),
        E::File("etc/b", random(14, 3000)),
    ]);
    let upper = tar_of(&[E::File("etc/a", random(15, 3000))]);
    let target = tar_of(&[
        E::File("etc/a", random(15, 3000)),
        E::File("etc/b", random(14, 3000)),
    ]);
    let (_, stats) = round_trip(&[lower.clone(), upper.clone()], &target);
    assert_eq!(stats.copied, 2);
    round_trip(&[lower, upper], &[]);
    round_trip(&[], &target);
}

#[test]
fn truncated_or_corrupt_delta_is_an_error() {
    let old = binary(16, 40_000);
    let mut new = old.clone();
    new[20_000] ^= 0xff;
    let base = tar_of(&[E::File("a", old), E::File("c", random(17, 9000))]);
    let target = tar_of(&[
        E::File("a", new),
        E::File("b", random(18, 2000)),
        E::File("c", random(17, 9000)),
    ]);
    let (delta, _) = round_trip(std::slice::from_ref(&base), &target);
    for cut in (0..delta.len()).step_by(7) {
        let r = rebuild(std::slice::from_ref(&base), &delta[..cut]);
        assert!(
            r.is_err(),
            "truncated at {cut} of {} must fail",
            delta.len()
        );
        assert!(inspect(&mut &delta[..cut]).is_err(), "inspect of cut {cut}");
    }
    let mut extra = delta.clone();
    extra.push(0);
    assert!(rebuild(std::slice::from_ref(&base), &extra).is_err());
    let mut rng = rand::rngs::StdRng::seed_from_u64(19);
    for _ in 0..300 {
        let mut bad = delta.clone();
        let at = rng.gen_range(0..bad.len());
        bad[at] ^= 1 << rng.gen_range(0..8);
        match rebuild(std::slice::from_ref(&base), &bad) {
            Err(e) => assert_ne!(e.kind(), ErrorKind::Internal, "{e}"),
            Ok(out) => assert!(
                out == target,
                "flip at {at} gave a wrong tar without an error"
            ),
        }
    }
}

#[test]
fn wrong_base_is_an_error() {
    let a = random(20, 10_000);
    let base = tar_of(&[E::File("a", a.clone())]);
    let target = tar_of(&[E::File("a", a.clone()), E::File("z", random(21, 100))]);
    round_trip(std::slice::from_ref(&base), &target);
    let mut modified = a.clone();
    modified[5000] ^= 1;
    let modified = tar_of(&[E::File("a", modified)]);
    let shorter = tar_of(&[E::File("a", a[..9000].to_vec())]);
    let renamed = tar_of(&[E::File("other", a.clone())]);

    // File-level ops: each base file is located and checked.
    let (delta, stats) = make_with(std::slice::from_ref(&base), &target, false);
    assert_eq!(stats.copied, 1);
    let err = rebuild(std::slice::from_ref(&modified), &delta).unwrap_err();
    assert!(matches!(err, DeltaError::BaseMismatch { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let err = rebuild(std::slice::from_ref(&shorter), &delta).unwrap_err();
    assert!(matches!(err, DeltaError::BaseMismatch { .. }), "{err}");
    let err = rebuild(std::slice::from_ref(&renamed), &delta).unwrap_err();
    assert!(matches!(err, DeltaError::BaseMissing { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("'a'"), "{err}");
    let err = rebuild(&[], &delta).unwrap_err();
    assert!(matches!(err, DeltaError::BaseMissing { .. }), "{err}");

    // Base tar ranges: the stream content is checked.
    let (delta, stats) = make_with(std::slice::from_ref(&base), &target, true);
    assert!(stats.range_bytes > 0, "{stats:?}");
    for wrong in [modified, shorter, renamed] {
        let err = rebuild(&[wrong], &delta).unwrap_err();
        assert!(
            matches!(
                err,
                DeltaError::BaseMismatch { .. } | DeltaError::TargetMismatch { .. }
            ),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::Conflict);
    }
    let err = rebuild(&[], &delta).unwrap_err();
    assert!(matches!(err, DeltaError::BaseMissing { .. }), "{err}");
}

/// A base source that has the files but cannot stream layer tars.
struct FilesOnly(TarBase<Cursor<Vec<u8>>>);

impl skiff_delta::BaseSource for FilesOnly {
    fn open(
        &self,
        layer: usize,
        path: &str,
    ) -> std::io::Result<Box<dyn skiff_delta::ReadSeek + '_>> {
        self.0.open(layer, path)
    }
}

#[test]
fn ranges_need_a_tar_stream_and_file_ops_do_not() {
    let files: Vec<(String, Vec<u8>)> = (0..10)
        .map(|i| (format!("lib/l{i}"), random(300 + i, 5000)))
        .collect();
    let es: Vec<E<'_>> = files
        .iter()
        .map(|(p, d)| E::File(p.as_str(), d.clone()))
        .collect();
    let base = tar_of(&es);
    let mut es: Vec<E<'_>> = files
        .iter()
        .map(|(p, d)| E::File(p.as_str(), d.clone()))
        .collect();
    es.push(E::File("etc/new", b"new".to_vec()));
    let target = tar_of(&es);
    let source = FilesOnly(TarBase::new(vec![Cursor::new(base.clone())]).unwrap());

    let (delta, _) = make_with(std::slice::from_ref(&base), &target, false);
    let mut out = Vec::new();
    apply(&source, &mut &delta[..], &mut out).unwrap();
    assert!(out == target);

    let (delta, _) = make_with(std::slice::from_ref(&base), &target, true);
    let err = apply(&source, &mut &delta[..], &mut Vec::new()).unwrap_err();
    assert!(matches!(err, DeltaError::BaseMissing { .. }), "{err}");
    assert!(err.to_string().contains("base_tar_ranges"), "{err}");
}

#[test]
fn patched_file_with_wrong_base_is_an_error() {
    let old = binary(22, 50_000);
    let mut new = old.clone();
    new[10] ^= 1;
    let (delta, stats) = round_trip(
        &[tar_of(&[E::File("a", old.clone())])],
        &tar_of(&[E::File("a", new)]),
    );
    assert_eq!(stats.bsdiff + stats.zref, 1);
    let mut other = old;
    other[30_000] ^= 0x80;
    let err = rebuild(&[tar_of(&[E::File("a", other)])], &delta).unwrap_err();
    assert!(
        matches!(
            err,
            DeltaError::BaseMismatch { .. } | DeltaError::TargetMismatch { .. }
        ),
        "{err}"
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn files() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
        prop::collection::vec(
            (0u8..12, prop::collection::vec(any::<u8>(), 0..3000)),
            0..10,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn random_pairs_round_trip(base in files(), target in files(), edits in prop::collection::vec((any::<u16>(), any::<u8>()), 0..5)) {
            let names: Vec<String> = (0..12).map(|i| format!("d{}/f{i}.so.{}", i % 3, i % 2)).collect();
            let mk = |fs: &[(u8, Vec<u8>)]| {
                let es: Vec<E<'_>> = fs.iter().map(|(n, d)| E::File(names[*n as usize].as_str(), d.clone())).collect();
                tar_of(&es)
            };
            let base_tar = mk(&base);
            // Derive some target files from base files, edited, so patches get exercised.
            let mut derived = target.clone();
            for (i, (n, d)) in base.iter().enumerate().take(3) {
                let mut d = d.clone();
                for (at, v) in &edits {
                    if !d.is_empty() { let l = d.len(); d[*at as usize % l] = *v; }
                }
                derived.push(((*n + i as u8) % 12, d));
            }
            let target_tar = mk(&derived);
            let (delta, _) = make(std::slice::from_ref(&base_tar), &target_tar);
            let out = rebuild(&[base_tar], &delta).unwrap();
            prop_assert!(out == target_tar);
        }
    }
}

mod garbage {
    use super::*;
    use proptest::prelude::*;

    /// Wraps `ops` in a valid header and zstd body, as the fuzz target does.
    fn wrap(ops: &[u8], target_size: u64) -> Vec<u8> {
        let mut v = b"SKFDELTA\x01\x00".to_vec();
        v.extend_from_slice(&target_size.to_le_bytes());
        v.extend_from_slice(&[0u8; 32]);
        v.push(1);
        v.extend_from_slice(&[0u8; 32]);
        v.extend_from_slice(&zstd::bulk::compress(ops, 1).unwrap());
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn arbitrary_op_streams_fail_cleanly(ops in prop::collection::vec(any::<u8>(), 0..200), size in 0u64..5000) {
            let base = tar_of(&[E::File("a", random(40, 3000)), E::File("b", random(41, 100))]);
            let source = TarBase::new(vec![Cursor::new(base)]).unwrap();
            let mut out = Vec::new();
            // The digest in the header is zeros, so no input can succeed.
            let r = apply(&source, &mut wrap(&ops, size).as_slice(), &mut out);
            prop_assert!(r.is_err());
            prop_assert!(out.len() as u64 <= size);
            let _ = inspect(&mut wrap(&ops, size).as_slice());
        }
    }
}

#[test]
fn applies_from_extracted_layer_directories() {
    let old = binary(50, 80_000);
    let mut new = old.clone();
    new[40_000..40_004].copy_from_slice(b"v2.0");
    let lower = tar_of(&[
        E::Dir("usr/"),
        E::Dir("usr/lib/"),
        E::File("usr/lib/libz.so.1.2", old),
        E::File("usr/lib/data", random(51, 20_000)),
    ]);
    let upper = tar_of(&[E::Dir("etc/"), E::File("etc/conf", b"a = 1\n".repeat(50))]);
    let target = tar_of(&[
        E::Dir("usr/"),
        E::Dir("usr/lib/"),
        E::File("usr/lib/libz.so.1.3", new),
        E::File("usr/lib/data", random(51, 20_000)),
        E::Dir("etc/"),
        E::File("etc/conf", b"a = 2\n".repeat(50)),
        E::File("etc/moved", random(51, 20_000)),
    ]);
    let bases = vec![lower, upper];
    let dir = tempfile::tempdir().unwrap();
    let roots: Vec<std::path::PathBuf> = (0..bases.len())
        .map(|i| dir.path().join(format!("{i}/diff")))
        .collect();
    for (tar, root) in bases.iter().zip(&roots) {
        std::fs::create_dir_all(root).unwrap();
        tar::Archive::new(tar.as_slice()).unpack(root).unwrap();
    }
    for ranges in [false, true] {
        let (delta, stats) = make_with(&bases, &target, ranges);
        assert!(
            stats.copied >= 2 && stats.bsdiff + stats.zref >= 1,
            "{stats:?}"
        );
        let tars = bases.clone();
        let source = skiff_delta::DirBase::new(roots.clone()).with_tar_streams(move |l| {
            Ok(Box::new(Cursor::new(tars[l].clone())) as Box<dyn std::io::Read>)
        });
        // As on a device: apply on one thread, the consumer (here: a tar reader that
        // keeps the bytes) on another.
        let (applied, consumed) = skiff_delta::pipe(
            |w| apply(&source, &mut &delta[..], w).map_err(std::io::Error::other),
            |r| {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(r, &mut bytes).map(|_| bytes)
            },
        );
        let out = consumed.unwrap();
        assert!(out == target);
        assert_eq!(applied.unwrap().diff_id, sha(&target));
        let names = tar::Archive::new(out.as_slice()).entries().unwrap().count();
        assert_eq!(names, 7);
    }
}
