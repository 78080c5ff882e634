//! A byte-exact tar walker: it splits a tar stream into regular-file contents and
//! everything else ("raw" bytes: headers, extension records, padding, trailer), so
//! the raw bytes plus the contents, in order, are exactly the input stream.
//!
//! Anything it cannot parse (bad checksum, truncated block, junk after the end) becomes
//! raw bytes up to the end of the stream, so create never fails on an odd tar; it only
//! loses the chance to match those files.

use std::io::{self, Read};

const BLOCK: usize = 512;
/// Extension records (pax, GNU long names) larger than this are kept raw, not parsed.
const MAX_EXTENSION: u64 = 1024 * 1024;

/// A regular file whose content starts at the scanner's current position.
#[derive(Debug, Clone)]
pub(crate) struct FileHead {
    /// Normalized path (see [`normalize_path`]); `None` when it cannot be used as a key.
    pub path: Option<String>,
    pub size: u64,
    /// Offset of the content in the stream.
    pub offset: u64,
}

pub(crate) struct Scanner<R> {
    r: R,
    pos: u64,
    /// Content of the last returned file the caller has not read yet (skipped, not raw).
    unread: u64,
    /// Padding after the last file's content (raw).
    pad: u64,
    done: bool,
    /// When set, paths of the non-regular entries passed (a later entry replaces an
    /// earlier file of the same path in the same layer).
    pub others: Option<Vec<String>>,
}

impl<R: Read> Scanner<R> {
    pub fn new(r: R) -> Self {
        Scanner {
            r,
            pos: 0,
            unread: 0,
            pad: 0,
            done: false,
            others: None,
        }
    }

    /// Reads the content of the file last returned by [`Scanner::next_file`], at most
    /// `buf.len()` bytes; 0 means the content is finished (or the stream ended early).
    #[cfg(test)]
    pub fn read_content(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.unread) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = read_some(&mut self.r, &mut buf[..want])?;
        if n == 0 {
            // Truncated stream: nothing more will come.
            self.unread = 0;
            self.pad = 0;
            self.done = true;
        }
        self.unread -= n as u64;
        self.pos += n as u64;
        Ok(n)
    }

    /// Advances to the next regular file with content, appending every non-content byte
    /// passed on the way to `raw` (when given). Returns `None` at the end of the stream,
    /// after appending the trailer.
    pub fn next_file(&mut self, mut raw: Option<&mut Vec<u8>>) -> io::Result<Option<FileHead>> {
        let mut long_name: Option<Vec<u8>> = None;
        let mut pax_path: Option<Vec<u8>> = None;
        let mut pax_size: Option<u64> = None;
        loop {
            if self.unread > 0 {
                let n = self.unread;
                // Content the caller did not read is skipped, not raw.
                self.unread = 0;
                self.copy(n, None)?;
            }
            if self.pad > 0 {
                let n = self.pad;
                self.pad = 0;
                self.copy(n, raw.as_deref_mut())?;
            }
            if self.done {
                return Ok(None);
            }
            let mut block = [0u8; BLOCK];
            let n = read_full(&mut self.r, &mut block)?;
            self.pos += n as u64;
            push(&mut raw, &block[..n]);
            if n < BLOCK || !checksum_ok(&block) {
                return self.finish(raw);
            }
            let header = tar::Header::from_byte_slice(&block);
            let size = match pax_size.take() {
                Some(s) => s,
                None => match header.entry_size() {
                    Ok(s) => s,
                    Err(_) => return self.finish(raw),
                },
            };
            let kind = block[156];
            match kind {
                b'x' | b'L' if size <= MAX_EXTENSION => {
                    let data = self.read_small(size, raw.as_deref_mut())?;
                    if kind == b'L' {
                        let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                        long_name = Some(data[..end].to_vec());
                    } else {
                        for ext in tar::PaxExtensions::new(&data).flatten() {
                            match ext.key() {
                                Ok("path") => pax_path = Some(ext.value_bytes().to_vec()),
                                Ok("size") => {
                                    pax_size = ext.value().ok().and_then(|v| v.parse().ok());
                                }
                                _ => {}
                            }
                        }
                    }
                    self.pad = padding(size);
                }
                b'0' | 0 | b'7' if size > 0 => {
                    let name = pax_path
                        .take()
                        .or_else(|| long_name.take())
                        .unwrap_or_else(|| header.path_bytes().into_owned());
                    if name.ends_with(b"/") {
                        // Old-style directory: keep its data raw.
                        if let Some(others) = self.others.as_mut() {
                            others.extend(normalize_path(&name));
                        }
                        self.copy(size, raw.as_deref_mut())?;
                        self.pad = padding(size);
                        continue;
                    }
                    self.unread = size;
                    self.pad = padding(size);
                    return Ok(Some(FileHead {
                        path: normalize_path(&name),
                        size,
                        offset: self.pos,
                    }));
                }
                _ => {
                    // Any other entry (or oversized extension): its data is raw.
                    if let Some(others) = self.others.as_mut() {
                        let name = pax_path
                            .take()
                            .or_else(|| long_name.take())
                            .unwrap_or_else(|| header.path_bytes().into_owned());
                        others.extend(normalize_path(&name));
                    }
                    pax_path = None;
                    long_name = None;
                    self.copy(size, raw.as_deref_mut())?;
                    self.pad = padding(size);
                }
            }
        }
    }

    fn finish(&mut self, raw: Option<&mut Vec<u8>>) -> io::Result<Option<FileHead>> {
        self.done = true;
        match raw {
            Some(v) => {
                let n = self.r.read_to_end(v)?;
                self.pos += n as u64;
            }
            None => {
                let n = io::copy(&mut self.r, &mut io::sink())?;
                self.pos += n;
            }
        }
        Ok(None)
    }

    fn read_small(&mut self, size: u64, raw: Option<&mut Vec<u8>>) -> io::Result<Vec<u8>> {
        let mut data = Vec::new();
        let n = (&mut self.r).take(size).read_to_end(&mut data)?;
        self.pos += n as u64;
        if let Some(v) = raw {
            v.extend_from_slice(&data);
        }
        if (n as u64) < size {
            self.done = true;
        }
        Ok(data)
    }

    fn copy(&mut self, size: u64, raw: Option<&mut Vec<u8>>) -> io::Result<()> {
        let n = match raw {
            Some(v) => (&mut self.r).take(size).read_to_end(v)? as u64,
            None => io::copy(&mut (&mut self.r).take(size), &mut io::sink())?,
        };
        self.pos += n;
        if n < size {
            self.done = true;
        }
        Ok(())
    }
}

fn push(raw: &mut Option<&mut Vec<u8>>, bytes: &[u8]) {
    if let Some(v) = raw.as_deref_mut() {
        v.extend_from_slice(bytes);
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// True when the block is a header whose checksum is right (an all-zero block is not).
fn checksum_ok(block: &[u8; BLOCK]) -> bool {
    let field = &block[148..156];
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    let Ok(text) = std::str::from_utf8(&digits) else {
        return false;
    };
    let Ok(stored) = u64::from_str_radix(text, 8) else {
        return false;
    };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    !block.iter().all(|&b| b == 0) && (stored == unsigned || stored as i64 == signed)
}

/// Canonical form of a tar path used as the key of a base file: no leading `/` or
/// `./`, no `.` or empty components, no trailing `/`. `None` for non-UTF-8 paths and
/// paths with `..` (which can never name a file inside a layer).
pub fn normalize_path(p: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(p).ok()?;
    let mut out = String::with_capacity(s.len());
    for comp in s.split('/') {
        match comp {
            "" | "." => continue,
            ".." => return None,
            c => {
                if c.contains('\0') {
                    return None;
                }
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(c);
            }
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Reads until `buf` is full or the stream ends; returns the count read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let got = read_some(r, &mut buf[n..])?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_prefixes_and_rejects_dotdot() {
        assert_eq!(normalize_path(b"./usr/bin/x").as_deref(), Some("usr/bin/x"));
        assert_eq!(
            normalize_path(b"/usr//bin/./x/").as_deref(),
            Some("usr/bin/x")
        );
        assert_eq!(normalize_path(b"usr/../etc/passwd"), None);
        assert_eq!(normalize_path(b"./"), None);
    }

    #[test]
    fn scanner_splits_raw_and_content_exactly() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "./a/b.txt", &b"hello"[..]).unwrap();
        let long = format!("{}/file", "d".repeat(200));
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        b.append_data(&mut h, &long, &b"xyz"[..]).unwrap();
        let tar = b.into_inner().unwrap();

        let mut s = Scanner::new(tar.as_slice());
        let mut rebuilt = Vec::new();
        let mut names = Vec::new();
        while let Some(f) = s.next_file(Some(&mut rebuilt)).unwrap() {
            assert_eq!(f.offset, rebuilt.len() as u64);
            names.push(f.path.clone().unwrap());
            let mut buf = vec![0u8; f.size as usize];
            assert_eq!(s.read_content(&mut buf).unwrap(), f.size as usize);
            rebuilt.extend_from_slice(&buf);
        }
        assert_eq!(names, vec!["a/b.txt".to_string(), long]);
        assert_eq!(rebuilt, tar);
        assert_eq!(s.pos, tar.len() as u64);
    }
}
