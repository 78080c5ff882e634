//! Interop with layers written by GNU tar (the system `tar`), in its main formats.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;
use skiff_storage::Error;

fn make_tree(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("usr/bin")).unwrap();
    std::fs::create_dir_all(dir.join(format!("very/{}/deep", "long-directory-name-".repeat(8))))
        .unwrap();
    std::fs::write(dir.join("usr/bin/tool"), vec![0x7fu8; 70_000]).unwrap();
    std::fs::set_permissions(
        dir.join("usr/bin/tool"),
        std::fs::Permissions::from_mode(0o2755),
    )
    .unwrap();
    std::fs::hard_link(dir.join("usr/bin/tool"), dir.join("usr/bin/tool2")).unwrap();
    std::os::unix::fs::symlink("tool", dir.join("usr/bin/alias")).unwrap();
    std::fs::write(
        dir.join(format!("very/{}/deep/f", "long-directory-name-".repeat(8))),
        b"deep",
    )
    .unwrap();
    let fifo = dir.join("fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
}

fn gnu_tar(args: &[&str], src: &std::path::Path) -> Vec<u8> {
    let out = Command::new("tar")
        .args(args)
        .arg("-C")
        .arg(src)
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn gnu_tar_formats_round_trip() {
    let src = tempfile::tempdir().unwrap();
    make_tree(src.path());
    // (ustar cannot hold the long path, so GNU tar would refuse to write it)
    for format in [
        "--format=gnu",
        "--format=pax",
        "--format=posix",
        "--format=oldgnu",
    ] {
        let mut args = vec![format, "--numeric-owner"];
        if format == "--format=pax" {
            args.push("--xattrs");
        }
        let tar = gnu_tar(&args, src.path());
        let env = Env::new();
        let info = env
            .extract(GZIP, &gzip(&tar), None)
            .unwrap_or_else(|e| panic!("{format}: {e}"));
        assert!(layer_tar(&env, &info.chain_id) == tar, "{format}");
        let d = env.store.layer_diff_path(&info.chain_id);
        assert_eq!(std::fs::read(d.join("usr/bin/tool")).unwrap().len(), 70_000);
        let mode = lstat(&d.join("usr/bin/tool")).permissions().mode();
        assert_eq!(mode & 0o7777, 0o2755, "{format}");
        let deep = format!("very/{}/deep/f", "long-directory-name-".repeat(8));
        assert_eq!(std::fs::read(d.join(deep)).unwrap(), b"deep");
        env.assert_clean(1);
    }
}

#[test]
fn gnu_sparse_files_are_refused_clearly() {
    let src = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(src.path().join("sparse")).unwrap();
    f.set_len(8 << 20).unwrap();
    drop(f);
    std::fs::OpenOptions::new()
        .write(true)
        .open(src.path().join("sparse"))
        .and_then(|mut f| {
            use std::io::{Seek, Write};
            f.seek(std::io::SeekFrom::Start(4 << 20))?;
            f.write_all(b"data")
        })
        .unwrap();
    for format in ["--format=gnu", "--format=pax"] {
        let tar = gnu_tar(&[format, "--sparse"], src.path());
        let env = Env::new();
        let err = env.extract(PLAIN, &tar, None).unwrap_err();
        assert!(matches!(err, Error::InvalidLayer(_)), "{format}: {err}");
        assert!(
            err.to_string().contains("sparse") || err.to_string().contains("not supported"),
            "{err}"
        );
        env.assert_clean(0);
    }
}
