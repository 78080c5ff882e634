//! Streaming application of a bsdiff patch (the `bsdiff` crate's layout: repeated
//! 24-byte control `mix_len u64le, copy_len u64le, seek i64 sign-magnitude`, then
//! `mix_len` bytes added to the base, then `copy_len` literal bytes).
//!
//! Unlike `bsdiff::patch` it never holds the base or the target in memory: the base is
//! read through `Seek`, the patch and the output are streams, memory is two buffers.

use std::io::{Read, SeekFrom, Write};

use crate::base::ReadSeek;
use crate::error::{DeltaError, Result};
use crate::format::MAX_IDLE_CONTROLS;

const CHUNK: usize = 64 * 1024;

/// Identifies the base file in error messages.
pub(crate) struct BaseRef<'a> {
    pub layer: usize,
    pub path: &'a str,
}

pub(crate) fn apply(
    base: &mut dyn ReadSeek,
    base_len: u64,
    base_ref: &BaseRef<'_>,
    patch: &mut dyn Read,
    target_len: u64,
    out: &mut dyn Write,
) -> Result<()> {
    let corrupt =
        |what: &str| DeltaError::corrupt(format!("bsdiff patch for '{}': {what}", base_ref.path));
    let mut diff = vec![0u8; CHUNK];
    let mut old = vec![0u8; CHUNK];
    let mut produced: u64 = 0;
    let mut oldpos: u64 = 0;
    let mut base_pos: Option<u64> = None;
    let mut idle = 0u32;
    while produced < target_len {
        let mut ctrl = [0u8; 24];
        patch
            .read_exact(&mut ctrl)
            .map_err(|e| corrupt(&format!("cannot read a control record: {e}")))?;
        let mix = u64::from_le_bytes(le8(&ctrl[0..8]));
        let copy = u64::from_le_bytes(le8(&ctrl[8..16]));
        let seek = offtin(le8(&ctrl[16..24]));
        let left = target_len - produced;
        if mix > left || copy > left - mix {
            return Err(corrupt("control record writes past the end of the file"));
        }
        if mix == 0 && copy == 0 {
            idle += 1;
            if idle > MAX_IDLE_CONTROLS {
                return Err(corrupt("too many empty control records"));
            }
        } else {
            idle = 0;
        }
        if mix > 0 {
            let end = oldpos.checked_add(mix).filter(|e| *e <= base_len);
            if end.is_none() {
                return Err(corrupt(
                    "control record reads past the end of the base file",
                ));
            }
            if base_pos != Some(oldpos) {
                base.seek(SeekFrom::Start(oldpos))
                    .map_err(|e| mismatch(base_ref, e))?;
            }
            let mut left = mix;
            while left > 0 {
                let n = (left as usize).min(CHUNK);
                patch
                    .read_exact(&mut diff[..n])
                    .map_err(|e| corrupt(&format!("cannot read diff bytes: {e}")))?;
                base.read_exact(&mut old[..n])
                    .map_err(|e| mismatch(base_ref, e))?;
                for (d, o) in diff[..n].iter_mut().zip(&old[..n]) {
                    *d = d.wrapping_add(*o);
                }
                out.write_all(&diff[..n])
                    .map_err(DeltaError::io("writing the target layer"))?;
                left -= n as u64;
            }
            oldpos += mix;
            base_pos = Some(oldpos);
        }
        let mut left = copy;
        while left > 0 {
            let n = (left as usize).min(CHUNK);
            patch
                .read_exact(&mut diff[..n])
                .map_err(|e| corrupt(&format!("cannot read literal bytes: {e}")))?;
            out.write_all(&diff[..n])
                .map_err(DeltaError::io("writing the target layer"))?;
            left -= n as u64;
        }
        oldpos = oldpos
            .checked_add_signed(seek)
            .ok_or_else(|| corrupt("control record seeks before the start of the base file"))?;
        produced += mix + copy;
    }
    let mut probe = [0u8; 1];
    match patch.read(&mut probe) {
        Ok(0) => Ok(()),
        Ok(_) => Err(corrupt("data after the end of the patch")),
        Err(e) => Err(corrupt(&format!("cannot read the end of the patch: {e}"))),
    }
}

fn mismatch(base_ref: &BaseRef<'_>, e: std::io::Error) -> DeltaError {
    DeltaError::BaseMismatch {
        layer: base_ref.layer,
        path: base_ref.path.to_string(),
        detail: format!("cannot read it: {e}"),
    }
}

fn le8(b: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    a
}

/// Sign-magnitude i64 as bsdiff writes it.
fn offtin(buf: [u8; 8]) -> i64 {
    let y = i64::from_le_bytes(buf);
    if y & (1 << 63) == 0 {
        y
    } else {
        -(y & !(1 << 63))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn matches_the_bsdiff_crate_patch() {
        let old: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut new = old.clone();
        new[100..110].copy_from_slice(b"0123456789");
        new.drain(20_000..20_500);
        new.extend_from_slice(b"tail bytes");
        let mut patch = Vec::new();
        bsdiff::diff(&old, &new, &mut patch).unwrap();
        let mut out = Vec::new();
        let r = BaseRef {
            layer: 0,
            path: "f",
        };
        apply(
            &mut Cursor::new(&old),
            old.len() as u64,
            &r,
            &mut patch.as_slice(),
            new.len() as u64,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, new);
    }

    #[test]
    fn rejects_reads_past_base_end() {
        let old = vec![1u8; 10];
        let mut patch = Vec::new();
        patch.extend_from_slice(&20u64.to_le_bytes());
        patch.extend_from_slice(&0u64.to_le_bytes());
        patch.extend_from_slice(&0u64.to_le_bytes());
        patch.extend_from_slice(&[0u8; 20]);
        let r = BaseRef {
            layer: 0,
            path: "f",
        };
        let err = apply(
            &mut Cursor::new(&old),
            10,
            &r,
            &mut patch.as_slice(),
            20,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(err, DeltaError::Corrupt(_)), "{err}");
    }
}
