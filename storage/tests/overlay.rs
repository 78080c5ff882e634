//! Extracted layers work as overlayfs lower directories: whiteouts hide, opaque dirs mask.

mod common;

use std::process::Command;

use common::*;
use tar::Builder;

#[test]
fn whiteouts_and_opaque_dirs_work_in_a_real_overlay_mount() {
    let env = Env::new();
    let mut b = Builder::new(Vec::new());
    file(&mut b, "a", b"a");
    file(&mut b, "b", b"b");
    file(&mut b, "d/x", b"x");
    file(&mut b, "e/keep", b"keep");
    let base = env.extract(GZIP, &gzip(&finish(b)), None).unwrap();
    let mut b = Builder::new(Vec::new());
    file(&mut b, ".wh.a", b"");
    dir(&mut b, "d/");
    file(&mut b, "d/.wh..wh..opq", b"");
    file(&mut b, "d/y", b"y");
    file(&mut b, "e/new", b"new");
    let top = env
        .extract(GZIP, &gzip(&finish(b)), Some(&base.chain_id))
        .unwrap();

    let mnt = env.dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let lower = format!(
        "lowerdir={}:{}",
        env.store.layer_diff_path(&top.chain_id).display(),
        env.store.layer_diff_path(&base.chain_id).display()
    );
    let st = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &lower])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success(), "overlay mount failed");
    let names = |p: &str| {
        let mut v: Vec<String> = std::fs::read_dir(mnt.join(p))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let root = names("");
    let d = names("d");
    let e = names("e");
    let st = Command::new("umount").arg(&mnt).status().unwrap();
    assert!(st.success());
    assert_eq!(root, vec!["b", "d", "e"], "whiteout hides a");
    assert_eq!(d, vec!["y"], "opaque directory masks the lower d/x");
    assert_eq!(e, vec!["keep", "new"], "plain directories merge");
}
