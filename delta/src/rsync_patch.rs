//! Streaming decoder for librsync deltas (`rdiff delta` output, magic `rs\x02\x36`), as
//! balenaEngine's delta images carry them, plus [`ConcatBasis`]: a seekable view of
//! several layer tar streams laid end to end (balenaEngine's basis is the base image's
//! layer tars concatenated).
//!
//! The delta format (librsync doc/format.md and prototab): a big-endian `u32` magic, then
//! commands of one opcode byte each:
//! - `0x00` end;
//! - `0x01..=0x40` literal of that many bytes, which follow;
//! - `0x41..=0x44` literal whose length follows as a 1, 2, 4 or 8 byte integer;
//! - `0x45..=0x54` copy from the basis: a start offset then a length, each 1, 2, 4 or
//!   8 bytes (`0x45` is 1+1, `0x46` 1+2, ... `0x49` 2+1, ... `0x54` 8+8).
//!
//! All integers are big-endian. Memory is one fixed buffer whatever the sizes.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::base::ReadSeek;
use crate::error::{DeltaError, Result};
use crate::format::{read_exact, read_u8};

/// `rs\x02\x36`: the only librsync delta format.
pub const RSYNC_DELTA_MAGIC: u32 = 0x7273_0236;

const CHUNK: usize = 64 * 1024;
const WIDTHS: [usize; 4] = [1, 2, 4, 8];

/// True when `head` starts like a librsync delta.
pub fn is_rsync_delta(head: &[u8]) -> bool {
    head.len() >= 4 && head[..4] == RSYNC_DELTA_MAGIC.to_be_bytes()
}

/// What [`rsync_patch`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Patched {
    /// Bytes written to the output.
    pub size: u64,
    /// Of those, bytes copied from the basis.
    pub copied: u64,
}

/// Applies the librsync delta `delta` to `basis`, streaming the result into `out`.
/// A delta that ends without its end command, names an unknown command, or copies past
/// the end of the basis is an error (the output written so far must be discarded).
/// librsync deltas carry no checksum of the result: the caller verifies it (for a layer,
/// against the diff_id the image config lists).
pub fn rsync_patch(
    basis: &mut dyn ReadSeek,
    delta: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<Patched> {
    rsync_patch_limited(basis, delta, out, u64::MAX)
}

/// [`rsync_patch`] that fails once the copies add up to more than `max_copied` bytes.
/// Each copy command is at most 17 bytes but may repeat the whole basis, so a tiny
/// delta could otherwise expand into terabytes before any check of the result; literal
/// bytes need no limit, they are bounded by the delta's own size.
pub fn rsync_patch_limited(
    basis: &mut dyn ReadSeek,
    delta: &mut dyn Read,
    out: &mut dyn Write,
    max_copied: u64,
) -> Result<Patched> {
    let mut magic = [0u8; 4];
    read_exact(delta, &mut magic, "librsync delta magic")?;
    if u32::from_be_bytes(magic) != RSYNC_DELTA_MAGIC {
        return Err(DeltaError::corrupt(format!(
            "not a librsync delta (magic {:08x}, want {RSYNC_DELTA_MAGIC:08x})",
            u32::from_be_bytes(magic)
        )));
    }
    let mut buf = vec![0u8; CHUNK];
    let mut done = Patched::default();
    loop {
        let cmd = read_u8(delta, "librsync command")?;
        match cmd {
            0x00 => return Ok(done),
            0x01..=0x40 => {
                literal(delta, out, u64::from(cmd), &mut buf)?;
                done.size += u64::from(cmd);
            }
            0x41..=0x44 => {
                let len = read_int(delta, WIDTHS[usize::from(cmd - 0x41)], "literal length")?;
                literal(delta, out, len, &mut buf)?;
                done.size += len;
            }
            0x45..=0x54 => {
                let k = usize::from(cmd - 0x45);
                let start = read_int(delta, WIDTHS[k / 4], "copy start")?;
                let len = read_int(delta, WIDTHS[k % 4], "copy length")?;
                if done.copied.saturating_add(len) > max_copied {
                    return Err(DeltaError::corrupt(format!(
                        "the delta copies more than {max_copied} bytes from the basis"
                    )));
                }
                copy(basis, out, start, len, &mut buf)?;
                done.size += len;
                done.copied += len;
            }
            other => {
                return Err(DeltaError::corrupt(format!(
                    "unknown librsync command 0x{other:02x}"
                )))
            }
        }
    }
}

fn read_int(r: &mut dyn Read, width: usize, what: &str) -> Result<u64> {
    let mut b = [0u8; 8];
    read_exact(r, &mut b[8 - width..], what)?;
    Ok(u64::from_be_bytes(b))
}

fn literal(delta: &mut dyn Read, out: &mut dyn Write, len: u64, buf: &mut [u8]) -> Result<()> {
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        read_exact(delta, &mut buf[..n], "librsync literal data")?;
        out.write_all(&buf[..n])
            .map_err(DeltaError::io("writing the patched output"))?;
        left -= n as u64;
    }
    Ok(())
}

fn copy(
    basis: &mut dyn ReadSeek,
    out: &mut dyn Write,
    start: u64,
    len: u64,
    buf: &mut [u8],
) -> Result<()> {
    if start.checked_add(len).is_none() {
        return Err(DeltaError::corrupt("librsync copy range overflows"));
    }
    basis
        .seek(SeekFrom::Start(start))
        .map_err(DeltaError::io("seeking in the delta basis"))?;
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        basis.read_exact(&mut buf[..n]).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                DeltaError::BaseMismatch {
                    layer: 0,
                    path: String::new(),
                    detail: format!(
                        "the delta copies bytes {start}..{} but the basis is shorter",
                        start + len
                    ),
                }
            } else {
                DeltaError::Io {
                    context: "reading the delta basis",
                    source: e,
                }
            }
        })?;
        out.write_all(&buf[..n])
            .map_err(DeltaError::io("writing the patched output"))?;
        left -= n as u64;
    }
    Ok(())
}

type LayerOpener<'a> = Box<dyn Fn(usize) -> io::Result<Box<dyn Read + 'a>> + 'a>;

/// Several streams (layer tars, bottom to top) seen as one seekable stream. Each layer
/// is opened on demand and read forward; seeking forward within the open layer skips
/// bytes, seeking backward reopens the layer (librsync deltas of tar streams copy mostly
/// in order, so this stays close to one pass). Memory: one layer reader at a time.
pub struct ConcatBasis<'a> {
    /// End offset of each layer in the concatenation.
    ends: Vec<u64>,
    open: LayerOpener<'a>,
    pos: u64,
    /// The open layer: index, offset within it, reader.
    cur: Option<(usize, u64, Box<dyn Read + 'a>)>,
}

impl<'a> ConcatBasis<'a> {
    /// `lens[i]` is the exact length of stream `i`; `open(i)` streams it from its start.
    pub fn new(lens: &[u64], open: impl Fn(usize) -> io::Result<Box<dyn Read + 'a>> + 'a) -> Self {
        let mut ends = Vec::with_capacity(lens.len());
        let mut total = 0u64;
        for l in lens {
            total = total.saturating_add(*l);
            ends.push(total);
        }
        ConcatBasis {
            ends,
            open: Box::new(open),
            pos: 0,
            cur: None,
        }
    }

    /// Total length of the concatenation.
    pub fn len(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    /// True when there is no byte at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Read for ConcatBasis<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // the layer holding `pos`: the first whose end is beyond it
        let layer = self.ends.partition_point(|e| *e <= self.pos);
        if layer >= self.ends.len() || buf.is_empty() {
            return Ok(0);
        }
        let start = if layer == 0 { 0 } else { self.ends[layer - 1] };
        let want_off = self.pos - start;
        let reuse = matches!(&self.cur, Some((l, off, _)) if *l == layer && *off <= want_off);
        if !reuse {
            self.cur = Some((layer, 0, (self.open)(layer)?));
        }
        let (_, off, r) = self
            .cur
            .as_mut()
            .ok_or_else(|| io::Error::other("no layer open"))?;
        let mut skip = [0u8; 8192];
        while *off < want_off {
            let n = ((want_off - *off) as usize).min(skip.len());
            let got = r.read(&mut skip[..n])?;
            if got == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("base layer {layer} is shorter than its recorded size"),
                ));
            }
            *off += got as u64;
        }
        let left = self.ends[layer] - self.pos;
        let n = (buf.len() as u64).min(left) as usize;
        let got = r.read(&mut buf[..n])?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("base layer {layer} is shorter than its recorded size"),
            ));
        }
        *off += got as u64;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Seek for ConcatBasis<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn delta(cmds: &[u8]) -> Vec<u8> {
        let mut d = RSYNC_DELTA_MAGIC.to_be_bytes().to_vec();
        d.extend_from_slice(cmds);
        d
    }

    #[test]
    fn decodes_literals_and_copies_of_every_width() {
        let basis: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let mut cmds = vec![0x03, b'a', b'b', b'c'];
        cmds.extend([0x41, 2, b'x', b'y']); // literal, 1-byte length
        cmds.extend([0x45, 10, 5]); // copy 1+1
        cmds.extend([0x4b, 0x01, 0x00, 0, 0, 0, 3]); // copy 2+4: start 256, len 3
        cmds.extend([0x54, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]); // 8+8: 65536, 2
        cmds.push(0);
        let mut out = Vec::new();
        let p = rsync_patch(
            &mut Cursor::new(&basis),
            &mut Cursor::new(delta(&cmds)),
            &mut out,
        )
        .unwrap();
        let mut want = b"abcxy".to_vec();
        want.extend_from_slice(&basis[10..15]);
        want.extend_from_slice(&basis[256..259]);
        want.extend_from_slice(&basis[65536..65538]);
        assert_eq!(out, want);
        assert_eq!(p.size, want.len() as u64);
        assert_eq!(p.copied, 10);
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        let basis = vec![7u8; 100];
        let run = |d: Vec<u8>| {
            rsync_patch(
                &mut Cursor::new(&basis),
                &mut Cursor::new(d),
                &mut Vec::new(),
            )
        };
        assert!(run(b"SKFDELTA".to_vec()).is_err());
        assert!(run(delta(&[0x05, b'a'])).is_err()); // truncated literal
        assert!(run(delta(&[0x01, b'a'])).is_err()); // no end command
        assert!(run(delta(&[0x55, 0])).is_err()); // unknown command
        assert!(matches!(
            run(delta(&[0x45, 90, 20, 0])),
            Err(DeltaError::BaseMismatch { .. })
        ));
        let mut cmds = vec![];
        for _ in 0..10 {
            cmds.extend([0x45, 0, 100]);
        }
        cmds.push(0);
        assert!(rsync_patch_limited(
            &mut Cursor::new(&basis),
            &mut Cursor::new(delta(&cmds)),
            &mut Vec::new(),
            500
        )
        .is_err());
        let huge = [
            0x54, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 9,
        ];
        assert!(run(delta(&huge)).is_err());
    }

    #[test]
    fn concat_basis_reads_across_layers_and_seeks_both_ways() {
        let layers: Vec<Vec<u8>> = vec![
            (0..1000u32).map(|i| i as u8).collect(),
            vec![],
            (0..5000u32).map(|i| (i * 7) as u8).collect(),
        ];
        let all: Vec<u8> = layers.concat();
        let lens: Vec<u64> = layers.iter().map(|l| l.len() as u64).collect();
        let opens = std::cell::Cell::new(0);
        let mut b = ConcatBasis::new(&lens, |i| {
            opens.set(opens.get() + 1);
            Ok(Box::new(Cursor::new(layers[i].clone())) as Box<dyn Read>)
        });
        assert_eq!(b.len(), 6000);
        for (start, len) in [(990usize, 30usize), (10, 5), (3000, 1000), (5990, 10)] {
            let mut got = vec![0u8; len];
            b.seek(SeekFrom::Start(start as u64)).unwrap();
            b.read_exact(&mut got).unwrap();
            assert_eq!(got, all[start..start + len], "at {start}");
        }
        let mut rest = Vec::new();
        b.seek(SeekFrom::Start(5995)).unwrap();
        b.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, all[5995..]);
        assert!(opens.get() >= 3);
    }
}
