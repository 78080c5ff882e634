//! Extraction keeps every attribute, and the tar-split record rebuilds the exact stream.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use common::*;
use skiff_storage::Digest;
use tar::{Builder, EntryType};

fn full_featured_tar() -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    dir(&mut b, "./");
    dir(&mut b, "etc/");
    file(&mut b, "etc/hosts", b"127.0.0.1 localhost\n");
    file(&mut b, "etc/old", b"to be whited out below");
    // pax xattrs and a setuid file owned by root
    b.append_pax_extensions([
        ("SCHILY.xattr.user.skiff", &b"yes"[..]),
        ("mtime", &b"1600000000.25"[..]),
    ])
    .unwrap();
    let mut h = header(EntryType::Regular, 0o4755, 5);
    h.set_uid(0);
    h.set_gid(0);
    b.append_data(&mut h, "bin/ping", &b"ELF.."[..]).unwrap();
    // hardlink to it
    let mut h = header(EntryType::Link, 0o4755, 0);
    b.append_link(&mut h, "bin/ping-link", "bin/ping").unwrap();
    // GNU long name (> 100 bytes)
    let long = format!("deep/{}", "x".repeat(150));
    file(&mut b, &long, b"long name content");
    // pax long path
    let pax_long = format!("pax/{}", "y".repeat(200));
    b.append_pax_extensions([("path", pax_long.as_bytes())])
        .unwrap();
    let mut h = header(EntryType::Regular, 0o600, 3);
    h.set_path("pax/short").unwrap();
    h.set_cksum();
    b.append(&h, &b"pax"[..]).unwrap();
    // symlink followed inside the layer
    dir(&mut b, "usr/lib/");
    symlink(&mut b, "lib", "usr/lib");
    file(&mut b, "lib/libc.so", b"libc");
    symlink(&mut b, "abs", "/etc/passwd");
    // long link targets (GNU 'K' entries), and an xattr a symlink cannot carry
    let long_target = "t/".repeat(80);
    symlink(&mut b, "longlink", &long_target);
    let mut h = header(EntryType::Link, 0o644, 0);
    b.append_link(&mut h, "deep/hard", &long).unwrap();
    b.append_pax_extensions([("SCHILY.xattr.user.onlink", &b"no"[..])])
        .unwrap();
    symlink(&mut b, "xattrlink", "etc/hosts");
    // device nodes and a fifo
    let mut h = header(EntryType::Char, 0o666, 0);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    b.append_data(&mut h, "dev/null", &[][..]).unwrap();
    let mut h = header(EntryType::Block, 0o660, 0);
    h.set_device_major(7).unwrap();
    h.set_device_minor(0).unwrap();
    b.append_data(&mut h, "dev/loop0", &[][..]).unwrap();
    let mut h = header(EntryType::Fifo, 0o600, 0);
    b.append_data(&mut h, "run/fifo", &[][..]).unwrap();
    // whiteouts
    file(&mut b, "etc/.wh.old", b"");
    dir(&mut b, "var/");
    file(&mut b, "var/.wh..wh..opq", b"");
    // the same path twice: the second wins on disk, the first must still rebuild
    file(&mut b, "dup", b"first");
    file(&mut b, "dup", b"second version");
    // a directory with content replaced by a file
    dir(&mut b, "d/");
    file(&mut b, "d/inner", b"inner data");
    file(&mut b, "d", b"now a file");
    // an empty file and a file of exactly one block
    file(&mut b, "empty", b"");
    file(&mut b, "block", &[7u8; 512]);
    let mut tar = finish(b);
    // bytes after the end-of-archive marker are part of the diff_id
    tar.extend_from_slice(&[0u8; 1024]);
    tar.extend_from_slice(b"trailing junk");
    tar
}

#[test]
fn roundtrip_is_byte_exact_for_every_compression() {
    let tar = full_featured_tar();
    for media in [GZIP, ZSTD, PLAIN] {
        let env = Env::new();
        let blob = compress(media, &tar);
        let info = env.extract(media, &blob, None).unwrap();
        assert_eq!(info.diff_id, Digest::of(&tar));
        assert_eq!(info.chain_id, info.diff_id);
        assert_eq!(info.tar_size, tar.len() as u64);
        assert_eq!(info.blobs[0].digest, Digest::of(&blob));
        let rebuilt = layer_tar(&env, &info.chain_id);
        assert_eq!(rebuilt.len(), tar.len(), "{media}");
        assert!(rebuilt == tar, "{media}: rebuilt tar differs");
        assert!(env.store.check(true).unwrap().is_empty());
        env.assert_clean(1);
    }
}

#[test]
fn extraction_keeps_attributes() {
    let env = Env::new();
    let tar = full_featured_tar();
    let info = env.extract(PLAIN, &tar, None).unwrap();
    let d = env.store.layer_diff_path(&info.chain_id);

    let hosts = lstat(&d.join("etc/hosts"));
    assert_eq!((hosts.uid(), hosts.gid()), (1000, 1001));
    assert_eq!(hosts.permissions().mode() & 0o7777, 0o644);
    assert_eq!(hosts.mtime(), 1_600_000_000);
    assert_eq!(
        std::fs::read(d.join("etc/hosts")).unwrap(),
        b"127.0.0.1 localhost\n"
    );

    let ping = lstat(&d.join("bin/ping"));
    assert_eq!(ping.permissions().mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!((ping.uid(), ping.gid()), (0, 0));
    assert_eq!(
        (ping.mtime(), ping.mtime_nsec()),
        (1_600_000_000, 250_000_000)
    );
    assert_eq!(
        xattr(&d.join("bin/ping"), "user.skiff").as_deref(),
        Some(&b"yes"[..])
    );
    assert_eq!(
        lstat(&d.join("bin/ping-link")).ino(),
        ping.ino(),
        "hardlink"
    );

    let long = d.join(format!("deep/{}", "x".repeat(150)));
    assert_eq!(std::fs::read(long).unwrap(), b"long name content");
    assert_eq!(
        std::fs::read(d.join(format!("pax/{}", "y".repeat(200)))).unwrap(),
        b"pax"
    );

    assert_eq!(
        std::fs::read_link(d.join("lib")).unwrap().to_str(),
        Some("usr/lib")
    );
    assert_eq!(std::fs::read(d.join("usr/lib/libc.so")).unwrap(), b"libc");
    assert_eq!(
        std::fs::read_link(d.join("abs")).unwrap().to_str(),
        Some("/etc/passwd")
    );

    assert_eq!(
        std::fs::read_link(d.join("longlink"))
            .unwrap()
            .to_str()
            .unwrap(),
        "t/".repeat(80)
    );
    let long_ino = lstat(&d.join(format!("deep/{}", "x".repeat(150)))).ino();
    assert_eq!(lstat(&d.join("deep/hard")).ino(), long_ino);
    assert!(lstat(&d.join("xattrlink")).file_type().is_symlink());

    let null = lstat(&d.join("dev/null"));
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    assert_eq!(null.permissions().mode() & 0o7777, 0o666);
    let loop0 = lstat(&d.join("dev/loop0"));
    assert!(loop0.file_type().is_block_device());
    assert_eq!(loop0.rdev(), libc::makedev(7, 0));
    assert!(lstat(&d.join("run/fifo")).file_type().is_fifo());

    let wh = lstat(&d.join("etc/old"));
    assert!(wh.file_type().is_char_device(), "whiteout is a char device");
    assert_eq!(wh.rdev(), 0);
    assert!(!d.join("etc/.wh.old").exists());
    assert_eq!(
        xattr(&d.join("var"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!d.join("var/.wh..wh..opq").exists());

    assert_eq!(std::fs::read(d.join("dup")).unwrap(), b"second version");
    assert_eq!(std::fs::read(d.join("d")).unwrap(), b"now a file");
    let etc = lstat(&d.join("etc"));
    assert_eq!(
        etc.mtime(),
        1_600_000_000,
        "directory times set after children"
    );
    assert_eq!(lstat(&d).uid(), 1000, "root entry applies to diff/");
}

#[test]
fn layers_chain_on_their_parent() {
    let env = Env::new();
    let mut b = Builder::new(Vec::new());
    file(&mut b, "a", b"base");
    let base = finish(b);
    let mut b = Builder::new(Vec::new());
    file(&mut b, ".wh.a", b"");
    file(&mut b, "b", b"top");
    let top = finish(b);
    let l0 = env.extract(GZIP, &gzip(&base), None).unwrap();
    let l1 = env.extract(GZIP, &gzip(&top), Some(&l0.chain_id)).unwrap();
    assert_eq!(l1.parent.as_ref(), Some(&l0.chain_id));
    assert_eq!(
        l1.chain_id,
        Digest::chain(Some(&l0.chain_id), &Digest::of(&top))
    );
    assert_eq!(
        env.store.layers_by_diff_id(&Digest::of(&top)).unwrap(),
        vec![l1.clone()]
    );
    // a missing parent is refused
    let bogus = Digest::of(b"nope");
    let err = env.extract(GZIP, &gzip(&top), Some(&bogus)).unwrap_err();
    assert_eq!(err.kind(), skiff_storage::ErrorKind::NotFound);
    assert_eq!(layer_tar(&env, &l1.chain_id), top);
}

#[test]
fn progress_reports_compressed_bytes_and_cancel_aborts() {
    let env = Env::new();
    let mut b = Builder::new(Vec::new());
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    file(&mut b, "big", &data);
    let blob = gzip(&finish(b));
    let mut last = 0;
    let mut calls = 0;
    let mut progress = |n: u64| {
        assert!(n >= last);
        last = n;
        calls += 1;
    };
    let info = env
        .store
        .extract_layer(
            skiff_storage::ExtractRequest {
                media_type: Some(GZIP),
                progress: Some(&mut progress),
                ..Default::default()
            },
            &mut &blob[..],
        )
        .unwrap();
    assert!(calls > 1);
    assert_eq!(last, blob.len() as u64);
    assert_eq!(info.blobs[0].size, blob.len() as u64);

    let env = Env::new();
    let cancel = std::sync::atomic::AtomicBool::new(true);
    let err = env
        .store
        .extract_layer(
            skiff_storage::ExtractRequest {
                media_type: Some(GZIP),
                cancel: Some(&cancel),
                ..Default::default()
            },
            &mut &blob[..],
        )
        .unwrap_err();
    assert!(matches!(err, skiff_storage::Error::Cancelled), "{err}");
    env.assert_clean(0);
}

#[test]
fn content_reached_through_replaced_symlinks_still_rebuilds() {
    let env = Env::new();
    let mut b = Builder::new(Vec::new());
    dir(&mut b, "usr/lib/");
    symlink(&mut b, "lib", "usr/lib");
    file(&mut b, "lib/x", b"X through the symlink");
    dir(&mut b, "lib/"); // the symlink becomes a real directory
    file(&mut b, "lib/y", b"Y");
    dir(&mut b, "real/");
    dir(&mut b, "q/");
    symlink(&mut b, "q/s", "../real");
    file(&mut b, "q/s/f", b"F in real");
    file(&mut b, "q", b"q is a file now"); // removes q/ and q/s, not real/f
    let tar = finish(b);
    let info = env.extract(PLAIN, &tar, None).unwrap();
    let d = env.store.layer_diff_path(&info.chain_id);
    assert_eq!(
        std::fs::read(d.join("usr/lib/x")).unwrap(),
        b"X through the symlink"
    );
    assert!(lstat(&d.join("lib")).is_dir());
    assert_eq!(std::fs::read(d.join("real/f")).unwrap(), b"F in real");
    assert_eq!(std::fs::read(d.join("q")).unwrap(), b"q is a file now");
    assert!(layer_tar(&env, &info.chain_id) == tar);
    env.assert_clean(1);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    const NAMES: &[&[u8]] = &[b"a", b"b", b"a/x", b"b/y", b"a/x/z", b"c"];

    #[derive(Debug, Clone)]
    enum Op {
        File(usize, Vec<u8>),
        Dir(usize),
        Symlink(usize, usize),
        Hardlink(usize, usize),
        Whiteout(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let n = 0..NAMES.len();
        prop_oneof![
            (n.clone(), proptest::collection::vec(any::<u8>(), 0..1500))
                .prop_map(|(i, d)| Op::File(i, d)),
            n.clone().prop_map(Op::Dir),
            (n.clone(), n.clone()).prop_map(|(i, t)| Op::Symlink(i, t)),
            (n.clone(), n.clone()).prop_map(|(i, t)| Op::Hardlink(i, t)),
            n.prop_map(Op::Whiteout),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Any sequence of entries over a few colliding names either extracts and rebuilds
        /// byte-exactly, or fails cleanly; nothing ever escapes.
        #[test]
        fn arbitrary_entry_sequences(ops in proptest::collection::vec(op(), 1..14)) {
            let mut b = Builder::new(Vec::new());
            for o in &ops {
                match o {
                    Op::File(i, d) => raw(&mut b, EntryType::Regular, NAMES[*i], b"", d),
                    Op::Dir(i) => raw(&mut b, EntryType::Directory, NAMES[*i], b"", b""),
                    Op::Symlink(i, t) => raw(&mut b, EntryType::Symlink, NAMES[*i], NAMES[*t], b""),
                    Op::Hardlink(i, t) => raw(&mut b, EntryType::Link, NAMES[*i], NAMES[*t], b""),
                    Op::Whiteout(i) => {
                        let (p, n) = match NAMES[*i].iter().rposition(|c| *c == b'/') {
                            Some(k) => (&NAMES[*i][..=k], &NAMES[*i][k + 1..]),
                            None => (&b""[..], NAMES[*i]),
                        };
                        let name = [p, b".wh.", n].concat();
                        raw(&mut b, EntryType::Regular, &name, b"", b"");
                    }
                }
            }
            let tar = finish(b);
            let env = Env::new();
            match env.extract(PLAIN, &tar, None) {
                Ok(info) => {
                    prop_assert!(layer_tar(&env, &info.chain_id) == tar);
                    env.assert_clean(1);
                }
                Err(e) => {
                    prop_assert!(e.kind() == skiff_storage::ErrorKind::InvalidArgument, "{}", e);
                    env.assert_clean(0);
                }
            }
        }
    }
}
