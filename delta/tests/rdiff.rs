//! The librsync decoder against deltas made by the real `rdiff` (Debian's librsync
//! tools), with balenaEngine's block size.

use std::io::{Cursor, Read};
use std::process::Command;

use skiff_delta::{rsync_patch, ConcatBasis};

fn rdiff(args: &[&std::path::Path]) {
    let status = Command::new("rdiff")
        .arg("-b")
        .arg("512")
        .args(args)
        .status()
        .expect("rdiff must be installed (apt package rdiff)");
    assert!(status.success());
}

#[test]
fn applies_rdiff_deltas_over_a_concatenated_basis() {
    let dir = tempfile::tempdir().unwrap();
    let layer_a: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let layer_b: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let basis = [layer_a.clone(), layer_b.clone()].concat();
    // target: pieces of both layers out of order, plus new bytes
    let mut target = layer_b[1000..150_000].to_vec();
    target.extend_from_slice(b"new content that is nowhere in the basis");
    target.extend_from_slice(&layer_a[5..250_000]);
    target.extend((0..10_000u32).map(|i| (i * 13) as u8));
    let (b, t, s, d) = (
        dir.path().join("basis"),
        dir.path().join("target"),
        dir.path().join("sig"),
        dir.path().join("delta"),
    );
    std::fs::write(&b, &basis).unwrap();
    std::fs::write(&t, &target).unwrap();
    rdiff(&[std::path::Path::new("signature"), &b, &s]);
    rdiff(&[std::path::Path::new("delta"), &s, &t, &d]);
    let delta = std::fs::read(&d).unwrap();
    assert!(delta.len() < target.len() / 4, "rdiff found the copies");

    let layers = [layer_a, layer_b];
    let lens: Vec<u64> = layers.iter().map(|l| l.len() as u64).collect();
    let mut basis = ConcatBasis::new(&lens, |i| {
        Ok(Box::new(Cursor::new(layers[i].clone())) as Box<dyn Read>)
    });
    let mut out = Vec::new();
    let p = rsync_patch(&mut basis, &mut Cursor::new(&delta), &mut out).unwrap();
    assert_eq!(out, target);
    assert_eq!(p.size, target.len() as u64);
    assert!(p.copied > 0);
}
