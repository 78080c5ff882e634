//! Tar stream framing done by hand (header fields parsed by the `tar` crate) so every raw
//! byte reaches the tar-split record and the extractor sees each entry exactly once.

use std::io::{Read, Write};

use tar::{EntryType, Header, PaxExtensions};

use crate::error::{Error, Result};
use crate::extract::{normalize, shown, split_parent, Extractor, Kind, Meta};

const BLOCK: usize = 512;
const COPY_BUF: usize = 1024 * 1024;

/// Stream-parse and extract a whole tar. Returns the number of content bytes written.
pub(crate) fn extract_tar(r: &mut dyn Read, x: &mut Extractor, max_header: u64) -> Result<()> {
    let mut p = Parser {
        r,
        buf: vec![0u8; COPY_BUF],
        max_header,
    };
    p.run(x)
}

struct Parser<'a> {
    r: &'a mut dyn Read,
    buf: Vec<u8>,
    max_header: u64,
}

#[derive(Default)]
struct Pending {
    pax: Vec<(String, Vec<u8>)>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

fn truncated() -> Error {
    Error::InvalidLayer("truncated stream: the layer ends in the middle of the archive".into())
}

fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

impl Parser<'_> {
    /// Fill `buf` completely; Ok(false) on a clean EOF before the first byte.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            match self.r.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => return Err(truncated()),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(map_read_err(e)),
            }
        }
        Ok(true)
    }

    fn must_read(&mut self, buf: &mut [u8]) -> Result<()> {
        if buf.is_empty() || self.read_full(buf)? {
            Ok(())
        } else {
            Err(truncated())
        }
    }

    /// Read a metadata entry's data (pax, GNU long names) plus padding, capped.
    fn read_meta(&mut self, x: &mut Extractor, size: u64, what: &str) -> Result<Vec<u8>> {
        if size > self.max_header {
            return Err(Error::InvalidLayer(format!(
                "{what} of {size} bytes exceeds the {} byte limit",
                self.max_header
            )));
        }
        let mut data = vec![0u8; size as usize + padding(size)];
        self.must_read(&mut data)?;
        x.split.raw(&data)?;
        data.truncate(size as usize);
        Ok(data)
    }

    /// Copy `n` bytes of stream into the tar-split record (data we do not extract).
    fn raw_copy(&mut self, x: &mut Extractor, mut n: u64) -> Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        let r = (|| {
            while n > 0 {
                let k = (buf.len() as u64).min(n) as usize;
                self.must_read(&mut buf[..k])?;
                x.split.raw(&buf[..k])?;
                n -= k as u64;
            }
            Ok(())
        })();
        self.buf = buf;
        r
    }

    fn run(&mut self, x: &mut Extractor) -> Result<()> {
        let mut pending = Pending::default();
        let mut block = [0u8; BLOCK];
        loop {
            if !self.read_full(&mut block)? {
                return Err(Error::InvalidLayer(
                    "truncated stream: missing the end-of-archive marker".into(),
                ));
            }
            x.split.raw(&block)?;
            if block.iter().all(|b| *b == 0) {
                // End of archive: the rest (second zero block, padding, anything) is kept
                // verbatim so the rebuilt stream is byte-identical.
                let mut buf = std::mem::take(&mut self.buf);
                loop {
                    let n = loop {
                        match self.r.read(&mut buf) {
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            other => break other.map_err(map_read_err)?,
                        }
                    };
                    if n == 0 {
                        break;
                    }
                    x.split.raw(&buf[..n])?;
                }
                self.buf = buf;
                return Ok(());
            }
            let h = Header::from_byte_slice(&block);
            verify_checksum(h)?;
            let et = h.entry_type();
            if !supported(et) {
                let name = h.path_bytes();
                return Err(Error::InvalidLayer(format!(
                    "entry {:?} has type {:?}, which is not supported in image layers",
                    shown(&name),
                    et.as_byte() as char
                )));
            }
            let size = pax_u64(&pending.pax, "size")?
                .map_or_else(|| h.size(), Ok)
                .map_err(bad)?;
            match et {
                EntryType::XHeader => {
                    let data = self.read_meta(x, size, "pax header")?;
                    pending.pax = parse_pax(&data)?;
                    continue;
                }
                EntryType::XGlobalHeader => {
                    // global defaults are not used by image layers; keep the bytes only
                    self.read_meta(x, size, "pax global header")?;
                    continue;
                }
                EntryType::GNULongName => {
                    pending.long_name = Some(cstr(self.read_meta(x, size, "GNU long name")?));
                    continue;
                }
                EntryType::GNULongLink => {
                    pending.long_link =
                        Some(cstr(self.read_meta(x, size, "GNU long link name")?));
                    continue;
                }
                _ => {}
            }
            let p = std::mem::take(&mut pending);
            let raw_path = match (pax_bytes(&p.pax, "path"), p.long_name) {
                (Some(v), _) => v.to_vec(),
                (None, Some(v)) => v,
                (None, None) => h.path_bytes().into_owned(),
            };
            if p.pax.iter().any(|(k, _)| k.starts_with("GNU.sparse.")) || et == EntryType::GNUSparse
            {
                return Err(Error::InvalidLayer(format!(
                    "sparse file {:?} is not supported",
                    shown(&raw_path)
                )));
            }
            let link = match (pax_bytes(&p.pax, "linkpath"), p.long_link) {
                (Some(v), _) => Some(v.to_vec()),
                (None, Some(v)) => Some(v),
                (None, None) => h.link_name_bytes().map(|c| c.into_owned()),
            };
            let path = normalize(&raw_path)?;
            let kind = match et {
                EntryType::Regular | EntryType::Continuous => {
                    // old tars mark directories with a regular type and a trailing slash
                    if block[156] == 0 && raw_path.ends_with(b"/") {
                        Kind::Dir
                    } else {
                        Kind::File
                    }
                }
                EntryType::Directory => Kind::Dir,
                EntryType::Symlink => Kind::Symlink(non_empty_link(link, &raw_path)?),
                EntryType::Link => Kind::Hardlink(normalize(&non_empty_link(link, &raw_path)?)?),
                EntryType::Char | EntryType::Block => {
                    let maj = h.device_major().map_err(bad)?.unwrap_or(0);
                    let min = h.device_minor().map_err(bad)?.unwrap_or(0);
                    if et == EntryType::Char {
                        Kind::Char(maj, min)
                    } else {
                        Kind::Block(maj, min)
                    }
                }
                EntryType::Fifo => Kind::Fifo,
                other => {
                    return Err(Error::InvalidLayer(format!(
                        "entry {:?} has unsupported type {:?}",
                        shown(&raw_path),
                        other.as_byte() as char
                    )))
                }
            };
            let uid = match pax_u64(&p.pax, "uid")? {
                Some(v) => v,
                None if empty_field(h, 108..116) => 0,
                None => h.uid().map_err(bad)?,
            };
            let gid = match pax_u64(&p.pax, "gid")? {
                Some(v) => v,
                None if empty_field(h, 116..124) => 0,
                None => h.gid().map_err(bad)?,
            };
            let mtime = match pax_bytes(&p.pax, "mtime") {
                Some(v) => parse_pax_time(v)?,
                None if empty_field(h, 136..148) => (0, 0),
                None => (h.mtime().map_err(bad)? as i64, 0),
            };
            let meta = Meta {
                path,
                kind,
                mode: if empty_field(h, 100..108) {
                    0
                } else {
                    h.mode().map_err(bad)?
                },
                uid: u32::try_from(uid).map_err(|_| bad_msg(format!("uid {uid} out of range")))?,
                gid: u32::try_from(gid).map_err(|_| bad_msg(format!("gid {gid} out of range")))?,
                mtime,
                xattrs: p
                    .pax
                    .iter()
                    .filter_map(|(k, v)| {
                        k.strip_prefix("SCHILY.xattr.")
                            .map(|k| (k.as_bytes().to_vec(), v.clone()))
                    })
                    .collect(),
            };
            self.entry(x, &meta, size)?;
        }
    }

    fn entry(&mut self, x: &mut Extractor, m: &Meta, size: u64) -> Result<()> {
        let (_, base) = split_parent(&m.path);
        if let Some(rest) = base.strip_prefix(b".wh.") {
            if rest == b".wh..opq" {
                x.opaque(m)?;
            } else if rest.starts_with(b".wh.") {
                // aufs bookkeeping (.wh..wh.plnk etc.): not part of the image content
            } else if rest.is_empty() || rest == b"." || rest == b".." {
                return Err(Error::InvalidLayer(format!(
                    "invalid whiteout {:?}",
                    shown(&m.path)
                )));
            } else {
                x.whiteout(m, rest)?;
            }
            return self.raw_copy(x, size + padding(size) as u64);
        }
        if m.kind != Kind::File {
            x.apply(m)?;
            // data on non-regular entries is unusual; keep it verbatim
            return self.raw_copy(x, size + padding(size) as u64);
        }
        if m.path.is_empty() {
            return Err(Error::InvalidLayer(
                "a regular file cannot be the layer root".into(),
            ));
        }
        let mut f = x.create_file(m, size)?;
        let mut buf = std::mem::take(&mut self.buf);
        let r = (|| {
            let mut left = size;
            while left > 0 {
                let k = (buf.len() as u64).min(left) as usize;
                self.must_read(&mut buf[..k])?;
                f.write_all(&buf[..k])
                    .map_err(|e| Error::io(format!("write {:?}", shown(&m.path)), e))?;
                left -= k as u64;
            }
            Ok(())
        })();
        self.buf = buf;
        r?;
        x.finish_file(f, m)?;
        self.raw_copy(x, padding(size) as u64)
    }
}

fn supported(et: EntryType) -> bool {
    matches!(
        et,
        EntryType::Regular
            | EntryType::Continuous
            | EntryType::Directory
            | EntryType::Symlink
            | EntryType::Link
            | EntryType::Char
            | EntryType::Block
            | EntryType::Fifo
            | EntryType::XHeader
            | EntryType::XGlobalHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink
    )
}

fn map_read_err(e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => truncated(),
        // decoders report corrupt input this way; our own errors travel as `Other`
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => {
            Error::InvalidLayer(format!("corrupt compressed data: {e}"))
        }
        _ => Error::io("read layer stream", e),
    }
}

fn bad(e: std::io::Error) -> Error {
    Error::InvalidLayer(format!("malformed tar header: {e}"))
}

fn bad_msg(m: String) -> Error {
    Error::InvalidLayer(m)
}

fn non_empty_link(link: Option<Vec<u8>>, path: &[u8]) -> Result<Vec<u8>> {
    match link {
        Some(l) if !l.is_empty() => Ok(l),
        _ => Err(Error::InvalidLayer(format!(
            "link {:?} has no target",
            shown(path)
        ))),
    }
}

fn verify_checksum(h: &Header) -> Result<()> {
    let stored = h.cksum().map_err(|_| {
        Error::InvalidLayer(
            "not a tar archive (bad header checksum field): unknown compression or corrupt data"
                .into(),
        )
    })?;
    let bytes = h.as_bytes();
    let sum: u32 = bytes[..148]
        .iter()
        .chain(&[b' '; 8])
        .chain(&bytes[156..])
        .map(|b| *b as u32)
        .sum();
    if sum != stored {
        return Err(Error::InvalidLayer(
            "not a tar archive (header checksum mismatch): unknown compression or corrupt data"
                .into(),
        ));
    }
    Ok(())
}

/// GNU long names are NUL-terminated inside their data.
fn cstr(mut v: Vec<u8>) -> Vec<u8> {
    if let Some(i) = v.iter().position(|b| *b == 0) {
        v.truncate(i);
    }
    v
}

fn parse_pax(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for ext in PaxExtensions::new(data) {
        let ext = ext.map_err(bad)?;
        let key = ext
            .key()
            .map_err(|_| bad_msg("pax header key is not UTF-8".into()))?;
        out.push((key.to_string(), ext.value_bytes().to_vec()));
    }
    Ok(out)
}

fn pax_bytes<'a>(pax: &'a [(String, Vec<u8>)], key: &str) -> Option<&'a [u8]> {
    // later records override earlier ones
    pax.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_slice())
}

fn pax_u64(pax: &[(String, Vec<u8>)], key: &str) -> Result<Option<u64>> {
    match pax_bytes(pax, key) {
        None => Ok(None),
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| bad_msg(format!("invalid pax {key} {:?}", shown(v)))),
    }
}

/// Pax times are decimal seconds with an optional fraction, possibly negative.
fn parse_pax_time(v: &[u8]) -> Result<(i64, u32)> {
    let s = std::str::from_utf8(v).map_err(|_| bad_msg("pax mtime is not UTF-8".into()))?;
    let err = || bad_msg(format!("invalid pax mtime {s:?}"));
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = int.parse().map_err(|_| err())?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nanos: u32 = digits.parse().map_err(|_| err())?;
    if s.starts_with('-') && nanos > 0 {
        // -1.25 means 1.25 s before the epoch: (-2 s, +0.75 s)
        return Ok((secs - 1, 1_000_000_000 - nanos));
    }
    Ok((secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_time_parsing() {
        assert_eq!(parse_pax_time(b"1700000000").unwrap(), (1_700_000_000, 0));
        assert_eq!(
            parse_pax_time(b"1700000000.5").unwrap(),
            (1_700_000_000, 500_000_000)
        );
        assert_eq!(parse_pax_time(b"-1.25").unwrap(), (-2, 750_000_000));
        assert!(parse_pax_time(b"abc").is_err());
        assert!(parse_pax_time(b"1.x").is_err());
    }

    #[test]
    fn padding_rounds_to_blocks() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
        assert_eq!(padding(513), 511);
    }
}

/// A numeric header field left empty (all NUL or spaces) reads as 0, as in Go's
/// archive/tar, which is what dockerd and most image builders use.
fn empty_field(h: &tar::Header, range: std::ops::Range<usize>) -> bool {
    h.as_bytes()[range].iter().all(|b| *b == 0 || *b == b' ')
}

#[cfg(test)]
mod empty_field_tests {
    use super::empty_field;

    #[test]
    fn nul_and_space_fields_are_empty_digits_are_not() {
        let mut h = tar::Header::new_gnu();
        h.as_mut_bytes()[108..116].fill(0);
        assert!(empty_field(&h, 108..116));
        h.as_mut_bytes()[108..116].copy_from_slice(b"       \0");
        assert!(empty_field(&h, 108..116));
        h.set_uid(5);
        assert!(!empty_field(&h, 108..116));
    }
}
