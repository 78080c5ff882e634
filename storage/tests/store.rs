//! Blobs, image records, references, garbage collection, recovery and check.

mod common;

use common::*;
use skiff_storage::{Digest, Error, ErrorKind, NewImage};
use tar::Builder;

fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for (p, d) in files {
        file(&mut b, p, d);
    }
    finish(b)
}

fn config(diff_ids: &[&Digest]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    }))
    .unwrap()
}

/// base layer shared by two images; image B has one more layer.
fn two_images(env: &Env) -> (Digest, Digest, Digest, Digest) {
    let base = layer(&[("bin/sh", b"shell")]);
    let top = layer(&[("app", b"application")]);
    let l0 = env.extract(GZIP, &gzip(&base), None).unwrap();
    let l1 = env.extract(GZIP, &gzip(&top), Some(&l0.chain_id)).unwrap();
    let a = env
        .store
        .put_image(NewImage {
            config: config(&[&l0.diff_id]),
            layers: vec![l0.chain_id.clone()],
            manifests: vec![],
        })
        .unwrap();
    let manifest = br#"{"schemaVersion":2}"#;
    let md = Digest::of(manifest);
    env.store.put_blob(&md, manifest).unwrap();
    let b = env
        .store
        .put_image(NewImage {
            config: config(&[&l0.diff_id, &l1.diff_id]),
            layers: vec![l0.chain_id.clone(), l1.chain_id.clone()],
            manifests: vec![md],
        })
        .unwrap();
    (a.id, b.id, l0.chain_id, l1.chain_id)
}

#[test]
fn blobs_are_verified() {
    let env = Env::new();
    let d = Digest::of(b"config");
    assert!(!env.store.has_blob(&d));
    let err = env.store.put_blob(&d, b"tampered").unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }));
    assert!(!env.store.has_blob(&d));
    env.store.put_blob(&d, b"config").unwrap();
    assert_eq!(env.store.get_blob(&d).unwrap(), b"config");
    assert_eq!(
        env.store.get_blob(&Digest::of(b"x")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn images_and_references() {
    let env = Env::new();
    let (a, b, l0, l1) = two_images(&env);
    let rec = env.store.image(&b).unwrap().unwrap();
    assert_eq!(
        rec.layers.iter().map(|l| &l.chain_id).collect::<Vec<_>>(),
        vec![&l0, &l1]
    );
    assert_eq!(rec.created.as_deref(), Some("2024-01-02T03:04:05Z"));
    assert_eq!(rec.size, 5 + 11);
    assert_eq!(rec.id, Digest::of(&env.store.image_config(&b).unwrap()));
    assert_eq!(env.store.images().unwrap().len(), 2);

    // layers must match the config
    let err = env
        .store
        .put_image(NewImage {
            config: config(&[&Digest::of(b"x")]),
            layers: vec![l0.clone()],
            manifests: vec![],
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    // and exist
    let err = env
        .store
        .put_image(NewImage {
            config: config(&[&Digest::of(b"x")]),
            layers: vec![Digest::of(b"x")],
            manifests: vec![],
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    env.store
        .set_tag("docker.io/library/busybox:latest", &a)
        .unwrap();
    env.store.set_tag("docker.io/library/app:1", &b).unwrap();
    env.store
        .add_repo_digest("docker.io/library/app@sha256:abc", &b)
        .unwrap();
    env.store
        .set_tag("docker.io/library/busybox:latest", &b)
        .unwrap(); // moves the tag
    let refs = env.store.refs().unwrap();
    assert_eq!(refs.resolve("docker.io/library/busybox:latest"), Some(&b));
    assert_eq!(refs.for_image(&b).len(), 3);
    assert_eq!(
        env.store
            .set_tag("x:y", &Digest::of(b"none"))
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert!(env.store.remove_ref("docker.io/library/app:1").unwrap());
    assert!(!env.store.remove_ref("docker.io/library/app:1").unwrap());
    let reopened = env.reopen();
    assert_eq!(
        reopened
            .store
            .refs()
            .unwrap()
            .resolve("docker.io/library/busybox:latest"),
        Some(&b)
    );
    assert!(reopened.store.check(true).unwrap().is_empty());
}

#[test]
fn gc_keeps_shared_layers() {
    let env = Env::new();
    let (a, b, l0, l1) = two_images(&env);
    env.store.set_tag("app:1", &b).unwrap();
    let deleted = env.store.delete_image(&b).unwrap();
    assert_eq!(deleted, vec![l1.clone()]);
    assert!(
        env.store.layer(&l0).unwrap().is_some(),
        "shared base layer kept"
    );
    assert!(env.store.layer(&l1).unwrap().is_none());
    assert!(
        env.store.refs().unwrap().is_empty(),
        "references to a deleted image go too"
    );
    assert_eq!(
        env.store.delete_image(&b).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(env.store.delete_image(&a).unwrap(), vec![l0]);
    assert_eq!(count(&env.root().join("layers/sha256")), 0);
    assert_eq!(count(&env.root().join("tmp")), 0);
    let du = env.store.disk_usage().unwrap();
    assert!(du.layers.is_empty());
}

#[test]
fn disk_usage_counts_images_per_layer() {
    let env = Env::new();
    let (_, _, l0, l1) = two_images(&env);
    let du = env.store.disk_usage().unwrap();
    let by = |c: &Digest| du.layers.iter().find(|l| &l.chain_id == c).unwrap().clone();
    assert_eq!((by(&l0).images, by(&l0).size), (2, 5));
    assert_eq!((by(&l1).images, by(&l1).size), (1, 11));
    assert!(du.blobs_bytes > 0);
}

#[test]
fn recovery_cleans_partial_state() {
    let env = Env::new();
    let (a, b, _l0, l1) = two_images(&env);
    env.store.set_tag("a:1", &a).unwrap();
    env.store.set_tag("b:1", &b).unwrap();
    let root = env.root();
    // a pull cut short: staging leftovers
    std::fs::create_dir_all(root.join("tmp/layer-123/diff/x")).unwrap();
    std::fs::write(root.join("tmp/w-1"), b"half").unwrap();
    // a layer directory renamed into place but never completed
    let bogus = Digest::of(b"incomplete");
    std::fs::create_dir_all(root.join("layers/sha256").join(bogus.hex()).join("diff")).unwrap();
    // image b loses a layer
    std::fs::remove_file(root.join("layers/sha256").join(l1.hex()).join("layer.json")).unwrap();

    let env = env.reopen();
    assert_eq!(count(&root.join("tmp")), 0);
    assert!(!root.join("layers/sha256").join(bogus.hex()).exists());
    assert!(!root.join("layers/sha256").join(l1.hex()).exists());
    assert!(
        env.store.image(&b).unwrap().is_none(),
        "image with a missing layer dropped"
    );
    assert!(env.store.image(&a).unwrap().is_some());
    let refs = env.store.refs().unwrap();
    assert_eq!(refs.resolve("a:1"), Some(&a));
    assert_eq!(refs.resolve("b:1"), None, "ref to a dropped image removed");
    assert!(env.store.check(true).unwrap().is_empty());
}

#[test]
fn unused_layers_are_pruned() {
    let env = Env::new();
    let (a, _b, l0, _l1) = two_images(&env);
    let orphan = env
        .extract(GZIP, &gzip(&layer(&[("o", b"orphan")])), None)
        .unwrap();
    // an explicit prune keeps what images use
    let env2 = Env::new();
    let o2 = env2
        .extract(ZSTD, &zstd(&layer(&[("o", b"x")])), None)
        .unwrap();
    assert_eq!(env2.store.prune_layers().unwrap(), vec![o2.chain_id]);
    // a pull that never recorded its image leaves a layer; the next open removes it
    let env = env.reopen();
    assert!(env.store.layer(&orphan.chain_id).unwrap().is_none());
    assert!(env.store.layer(&l0).unwrap().is_some());
    assert_eq!(env.store.layers().unwrap().len(), 2);
    assert!(env.store.prune_layers().unwrap().is_empty());
    assert!(env.store.image(&a).unwrap().is_some());
}

#[test]
fn check_finds_modified_files_and_broken_records() {
    let env = Env::new();
    let (a, _b, l0, _l1) = two_images(&env);
    assert!(env.store.check(true).unwrap().is_empty());
    // same size, different content: only the deep check can see it
    let f = env.store.layer_diff_path(&l0).join("bin/sh");
    std::fs::write(&f, b"SHELL").unwrap();
    assert!(env.store.check(false).unwrap().is_empty());
    let problems = env.store.check(true).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].object.contains(l0.as_str()) && problems[0].message.contains("modified"),
        "{}",
        problems[0]
    );

    // a corrupt config blob and a deleted file
    std::fs::write(env.root().join("content/blobs/sha256").join(a.hex()), b"{}").unwrap();
    std::fs::remove_file(&f).unwrap();
    let problems = env.store.check(true).unwrap();
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(
        text.iter().any(|p| p.starts_with(&format!("blob {a}"))),
        "{text:?}"
    );
    assert!(
        text.iter().any(|p| p.contains("cannot rebuild")),
        "{text:?}"
    );
}

#[test]
fn layers_stage_in_any_order_and_commit_base_first() {
    let env = Env::new();
    let base = layer(&[("bin/sh", b"shell")]);
    let top = layer(&[("app", b"application")]);
    let base_diff = Digest::of(&base);
    let base_chain = Digest::chain(None, &base_diff);
    let stage = |tar: &[u8], parent: Option<&Digest>| {
        let gz = gzip(tar);
        env.store
            .stage_layer(
                skiff_storage::ExtractRequest {
                    parent,
                    media_type: Some(GZIP),
                    ..Default::default()
                },
                &mut gz.as_slice(),
            )
            .unwrap()
    };
    // the child finishes first: staged fine, but not visible and not committable yet
    let child = stage(&top, Some(&base_chain));
    let child_chain = child.info().unwrap().chain_id.clone();
    assert!(env.store.layer(&child_chain).unwrap().is_none());
    let parent = stage(&base, None);
    assert_eq!(parent.info().unwrap().chain_id, base_chain);
    env.store.commit_layer(parent).unwrap();
    env.store.commit_layer(child).unwrap();
    assert!(env.store.layer(&child_chain).unwrap().is_some());
    assert_eq!(count(&env.root().join("tmp")), 0);

    // a staged layer dropped without commit leaves nothing
    let orphan = stage(&layer(&[("x", b"y")]), None);
    drop(orphan);
    assert_eq!(count(&env.root().join("tmp")), 0);

    // committing a child whose parent never arrived is refused and cleaned up
    let lonely = stage(&top, Some(&Digest::of(b"no such parent")));
    let err = env.store.commit_layer(lonely).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(count(&env.root().join("tmp")), 0);
}

#[test]
fn readonly_open_reports_instead_of_repairing() {
    let env = Env::new();
    let (_, b, _, top) = two_images(&env);
    let root = env.root();
    std::fs::remove_file(
        root.join("layers/sha256")
            .join(top.hex())
            .join("layer.json"),
    )
    .unwrap();
    let ro = skiff_storage::Store::open_readonly(&root, Default::default()).unwrap();
    let problems = ro.check(false).unwrap();
    assert!(!problems.is_empty(), "check must report the damaged layer");
    // nothing was repaired: the image record is still there
    assert!(ro.image(&b).unwrap().is_some());
    assert!(root.join("layers/sha256").join(top.hex()).is_dir());
    assert!(skiff_storage::Store::open_readonly(&root.join("nope"), Default::default()).is_err());
}
