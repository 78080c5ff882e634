//! Feeds arbitrary bytes to the librsync delta decoder over a small two-layer basis:
//! it must return an error or output, never panic, hang or allocate without bound. The
//! magic is prepended so the fuzzer spends its time in the command parser.

#![no_main]

use std::io::{Cursor, Read};

use libfuzzer_sys::fuzz_target;
use skiff_delta::{rsync_patch, ConcatBasis, RSYNC_DELTA_MAGIC};

fuzz_target!(|data: &[u8]| {
    let layers: [Vec<u8>; 2] = [
        (0..5000u32).map(|i| (i * 7 % 251) as u8).collect(),
        (0..3000u32).map(|i| (i * 13 % 241) as u8).collect(),
    ];
    let lens: Vec<u64> = layers.iter().map(|l| l.len() as u64).collect();
    let mut basis = ConcatBasis::new(&lens, |i| {
        Ok(Box::new(Cursor::new(layers[i].clone())) as Box<dyn Read>)
    });
    let mut delta = RSYNC_DELTA_MAGIC.to_be_bytes().to_vec();
    delta.extend_from_slice(data);
    // a sink bounded by what the input can ask for: copies are limited by the basis
    let _ = rsync_patch(&mut basis, &mut Cursor::new(delta), &mut std::io::sink());
});
