//! Property: any bytes after the librsync magic decode to an error or to output built
//! only from literals and in-range basis copies, never a panic.

use std::io::{Cursor, Read};

use proptest::prelude::*;
use skiff_delta::{rsync_patch, ConcatBasis, RSYNC_DELTA_MAGIC};

proptest! {
    #[test]
    fn arbitrary_commands_never_panic(cmds in proptest::collection::vec(any::<u8>(), 0..512)) {
        let layers: [Vec<u8>; 2] = [vec![1u8; 700], (0..900u32).map(|i| i as u8).collect()];
        let lens: Vec<u64> = layers.iter().map(|l| l.len() as u64).collect();
        let mut basis = ConcatBasis::new(&lens, |i| {
            Ok(Box::new(Cursor::new(layers[i].clone())) as Box<dyn Read>)
        });
        let mut delta = RSYNC_DELTA_MAGIC.to_be_bytes().to_vec();
        delta.extend_from_slice(&cmds);
        let mut out = Vec::new();
        if let Ok(p) = rsync_patch(&mut basis, &mut Cursor::new(delta), &mut out) {
            prop_assert_eq!(p.size, out.len() as u64);
            prop_assert!(p.copied <= p.size);
        }
    }
}
