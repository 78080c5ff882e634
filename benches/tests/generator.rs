//! The generated layers are what the storage benchmarks feed to skiff-storage: they must be
//! valid, deterministic, of the asked size and realistically compressible, and the store
//! must take them and give back the exact same tar.

use std::io::Read;

use flate2::read::GzDecoder;
use skiff_benches::generate_layer;
use skiff_storage::{Digest, ExtractRequest, Store, StoreOptions};

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(gz).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = generate_layer(512 * 1024, 7).unwrap();
    let b = generate_layer(512 * 1024, 7).unwrap();
    let c = generate_layer(512 * 1024, 8).unwrap();
    assert_eq!(a.tar_gz, b.tar_gz);
    assert_ne!(a.tar_gz, c.tar_gz);
}

#[test]
fn size_is_close_to_target_and_compression_is_realistic() {
    let target = 4 * 1024 * 1024;
    let l = generate_layer(target, 1).unwrap();
    let tar = gunzip(&l.tar_gz);
    assert_eq!(tar.len() as u64, l.tar_size);
    // Stops after the first file that crosses the target; files are at most 2 MiB.
    assert!(l.tar_size >= target, "tar {} < target {target}", l.tar_size);
    assert!(
        l.tar_size <= target + 2 * 1024 * 1024 + 64 * 1024,
        "tar {} too big",
        l.tar_size
    );
    let ratio = l.tar_size as f64 / l.tar_gz.len() as f64;
    assert!(
        (1.5..6.0).contains(&ratio),
        "gzip ratio {ratio:.2} is not rootfs-like"
    );
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut regular = 0;
    for e in archive.entries().unwrap() {
        if e.unwrap().header().entry_type().is_file() {
            regular += 1;
        }
    }
    assert_eq!(regular, l.files);
    // Rootfs-like: many small files, not a few big ones.
    assert!(l.files > 40, "only {} files", l.files);
}

#[test]
fn store_extracts_it_and_rebuilds_the_exact_tar() {
    let l = generate_layer(3 * 1024 * 1024, 3).unwrap();
    let tar = gunzip(&l.tar_gz);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let info = store
        .extract_layer(
            ExtractRequest {
                media_type: Some("application/vnd.oci.image.layer.v1.tar+gzip"),
                ..Default::default()
            },
            &mut l.tar_gz.as_slice(),
        )
        .unwrap();
    assert_eq!(info.diff_id, Digest::of(&tar));
    assert_eq!(info.tar_size, l.tar_size);
    let mut rebuilt = Vec::new();
    let n = store.write_layer_tar(&info.chain_id, &mut rebuilt).unwrap();
    assert_eq!(n, l.tar_size);
    assert!(rebuilt == tar, "rebuilt tar differs from the generated one");
}
