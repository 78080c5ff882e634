//! Feeds arbitrary bytes to apply and inspect as a delta: they must return an error
//! or a verified layer, never panic, hang or allocate without bound. An input starting
//! with "SKFDELTA" is used as is; any other input is taken as an op stream and wrapped
//! in a valid header and zstd frame, so the fuzzer spends its time in the op parser.

#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use skiff_delta::{apply, inspect, TarBase};

fn base_tar() -> &'static Vec<u8> {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut b = tar::Builder::new(Vec::new());
        for (name, len) in [
            ("a", 3000usize),
            ("lib/libx.so.1", 20_000),
            ("etc/conf", 40),
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut h = tar::Header::new_gnu();
            h.set_size(len as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, data.as_slice())
                .expect("in-memory tar");
        }
        b.into_inner().expect("in-memory tar")
    })
}

fuzz_target!(|data: &[u8]| {
    let input: Vec<u8> = if data.starts_with(b"SKFDELTA") {
        data.to_vec()
    } else {
        // magic, version 1, flags 0, target size (small), sha256, 1 base layer, its id
        let mut v = b"SKFDELTA\x01\x00".to_vec();
        v.extend_from_slice(&4096u64.to_le_bytes());
        v.extend_from_slice(&[0u8; 32]);
        v.push(1);
        v.extend_from_slice(&[0u8; 32]);
        v.extend_from_slice(&zstd::bulk::compress(data, 1).expect("compress in memory"));
        v
    };
    let base = TarBase::new(vec![Cursor::new(base_tar().as_slice())]).expect("base indexes");
    let mut out = Vec::new();
    let _ = apply(&base, &mut input.as_slice(), &mut out);
    assert!(out.len() <= 1 << 32);
    let _ = inspect(&mut input.as_slice());
});
