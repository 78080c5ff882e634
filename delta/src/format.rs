//! Wire constants and primitive encodings of the delta format (see docs/delta-format.md).

use std::io::{self, Read, Write};

use crate::error::{DeltaError, Result};

/// First bytes of every delta.
pub const MAGIC: [u8; 8] = *b"SKFDELTA";
/// Format version this build writes and reads.
pub const VERSION: u8 = 1;

/// Op codes of the body stream.
pub mod op {
    pub const END: u8 = 0;
    pub const RAW: u8 = 1;
    pub const COPY: u8 = 2;
    pub const BSDIFF: u8 = 3;
    pub const ZREF: u8 = 4;
    pub const CHECK: u8 = 5;
    pub const RANGE: u8 = 6;
}

/// Bytes of sha256 kept in a CHECK op.
pub const CHECK_LEN: usize = 16;
/// Most base layers a delta may reference.
pub const MAX_BASE_LAYERS: u64 = 4096;
/// Longest base path accepted in an op.
pub const MAX_PATH_LEN: u64 = 16 * 1024;
/// Largest zstd window (log2) apply accepts, which bounds decoder memory.
pub const MAX_WINDOW_LOG: u32 = 23;
/// Window (log2) create uses for the body stream.
pub const BODY_WINDOW_LOG: u32 = 22;
/// Largest base file a ZREF op may use (it is held in memory as the zstd prefix).
pub const MAX_ZREF_BASE: u64 = 4 * 1024 * 1024;
/// Most consecutive bsdiff controls that produce no output (guards against spin loops).
pub const MAX_IDLE_CONTROLS: u32 = 1024;

/// Fixed header at the start of a delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub target_size: u64,
    pub target_sha256: [u8; 32],
    pub base_diff_ids: Vec<[u8; 32]>,
}

impl Header {
    pub fn write(&self, w: &mut dyn Write) -> io::Result<()> {
        w.write_all(&MAGIC)?;
        w.write_all(&[self.version, 0])?;
        w.write_all(&self.target_size.to_le_bytes())?;
        w.write_all(&self.target_sha256)?;
        write_varint(w, self.base_diff_ids.len() as u64)?;
        for id in &self.base_diff_ids {
            w.write_all(id)?;
        }
        Ok(())
    }

    pub fn read(r: &mut dyn Read) -> Result<Header> {
        let mut magic = [0u8; 8];
        read_exact(r, &mut magic, "header")?;
        if magic != MAGIC {
            return Err(DeltaError::BadMagic);
        }
        let mut vf = [0u8; 2];
        read_exact(r, &mut vf, "header")?;
        if vf[0] != VERSION {
            return Err(DeltaError::UnsupportedVersion(vf[0], VERSION));
        }
        if vf[1] != 0 {
            return Err(DeltaError::corrupt(format!(
                "unknown header flags {:#x}",
                vf[1]
            )));
        }
        let mut size = [0u8; 8];
        read_exact(r, &mut size, "header")?;
        let mut target_sha256 = [0u8; 32];
        read_exact(r, &mut target_sha256, "header")?;
        let count = read_varint(r, "header")?;
        if count > MAX_BASE_LAYERS {
            return Err(DeltaError::corrupt(format!(
                "{count} base layers exceeds the limit of {MAX_BASE_LAYERS}"
            )));
        }
        let mut base_diff_ids = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let mut id = [0u8; 32];
            read_exact(r, &mut id, "header")?;
            base_diff_ids.push(id);
        }
        Ok(Header {
            version: vf[0],
            target_size: u64::from_le_bytes(size),
            target_sha256,
            base_diff_ids,
        })
    }
}

/// Maps a failed read of the delta to an error that names the part being read.
pub fn read_error(what: &str, e: io::Error) -> DeltaError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        DeltaError::corrupt(format!("truncated while reading the {what}"))
    } else {
        DeltaError::corrupt(format!("cannot read the {what}: {e}"))
    }
}

pub fn read_exact(r: &mut dyn Read, buf: &mut [u8], what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| read_error(what, e))
}

pub fn read_u8(r: &mut dyn Read, what: &str) -> Result<u8> {
    let mut b = [0u8; 1];
    read_exact(r, &mut b, what)?;
    Ok(b[0])
}

/// LEB128 unsigned varint.
pub fn write_varint(w: &mut dyn Write, mut v: u64) -> io::Result<()> {
    let mut buf = [0u8; 10];
    let mut n = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf[n] = byte;
            n += 1;
            break;
        }
        buf[n] = byte | 0x80;
        n += 1;
    }
    w.write_all(&buf[..n])
}

pub fn read_varint(r: &mut dyn Read, what: &str) -> Result<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = read_u8(r, what)?;
        let bits = u64::from(b & 0x7f);
        if i == 9 && bits > 1 {
            return Err(DeltaError::corrupt(format!(
                "varint overflow in the {what}"
            )));
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DeltaError::corrupt(format!(
        "varint too long in the {what}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_edges() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            write_varint(&mut buf, v).unwrap();
            assert_eq!(read_varint(&mut buf.as_slice(), "t").unwrap(), v, "{v}");
        }
    }

    #[test]
    fn varint_rejects_overlong() {
        let buf = [0xffu8; 11];
        assert!(read_varint(&mut &buf[..], "t").is_err());
    }

    #[test]
    fn header_round_trips_and_rejects_bad_magic() {
        let h = Header {
            version: VERSION,
            target_size: 12345,
            target_sha256: [7; 32],
            base_diff_ids: vec![[1; 32], [2; 32]],
        };
        let mut buf = Vec::new();
        h.write(&mut buf).unwrap();
        assert_eq!(Header::read(&mut buf.as_slice()).unwrap(), h);
        buf[0] = b'X';
        assert!(matches!(
            Header::read(&mut buf.as_slice()),
            Err(DeltaError::BadMagic)
        ));
    }
}
