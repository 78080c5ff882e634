//! The per-layer tar-split record: everything needed to rebuild the exact original tar
//! byte stream from the extracted files. See docs/storage.md for the format.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::OFlag;

use crate::beneath::{open_beneath, open_dir};
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"SKIFFTS\x01";
const SEG_END: u8 = 0;
const SEG_RAW: u8 = 1;
const SEG_FILE: u8 = 2;
const SEG_MOVED: u8 = 3;
/// Raw bytes are buffered and written in chunks of at most this size.
const RAW_CHUNK: usize = 256 * 1024;
/// Sanity caps when reading a record back (it is our own file, but may be corrupt).
const MAX_RAW_SEG: u32 = 16 * 1024 * 1024;
const MAX_NAME: u32 = 1024 * 1024;

pub(crate) struct TarSplitWriter {
    enc: zstd::Encoder<'static, BufWriter<File>>,
    raw: Vec<u8>,
    files: u64,
    moved: Vec<(u64, Vec<u8>)>,
}

impl TarSplitWriter {
    pub(crate) fn create(path: &Path) -> Result<TarSplitWriter> {
        let f =
            File::create(path).map_err(|e| Error::io(format!("create {}", path.display()), e))?;
        let mut enc = zstd::Encoder::new(BufWriter::with_capacity(128 * 1024, f), 3)
            .map_err(|e| Error::io("start tar-split compression", e))?;
        enc.write_all(MAGIC)
            .map_err(|e| Error::io("write tar-split", e))?;
        Ok(TarSplitWriter {
            enc,
            raw: Vec::with_capacity(RAW_CHUNK),
            files: 0,
            moved: Vec::new(),
        })
    }

    /// Record bytes of the stream that are not regular-file content.
    pub(crate) fn raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.raw.extend_from_slice(bytes);
        if self.raw.len() >= RAW_CHUNK {
            self.flush_raw()?;
        }
        Ok(())
    }

    fn flush_raw(&mut self) -> Result<()> {
        for chunk in self.raw.chunks(RAW_CHUNK) {
            let len = chunk.len() as u32;
            let w = &mut self.enc;
            w.write_all(&[SEG_RAW])
                .and_then(|_| w.write_all(&len.to_le_bytes()))
                .and_then(|_| w.write_all(chunk))
                .map_err(|e| Error::io("write tar-split", e))?;
        }
        self.raw.clear();
        Ok(())
    }

    /// Record that `size` bytes of content come from the file at `path` (relative to diff/).
    /// Returns the file's ordinal, used by `moved`.
    pub(crate) fn file(&mut self, path: &[u8], size: u64) -> Result<u64> {
        self.flush_raw()?;
        let w = &mut self.enc;
        w.write_all(&[SEG_FILE])
            .and_then(|_| w.write_all(&(path.len() as u32).to_le_bytes()))
            .and_then(|_| w.write_all(path))
            .and_then(|_| w.write_all(&size.to_le_bytes()))
            .map_err(|e| Error::io("write tar-split", e))?;
        self.files += 1;
        Ok(self.files - 1)
    }

    /// The content of file `ordinal` now lives at `name` (relative to the layer directory)
    /// because a later entry replaced its path.
    pub(crate) fn moved(&mut self, ordinal: u64, name: Vec<u8>) {
        self.moved.push((ordinal, name));
    }

    pub(crate) fn finish(mut self) -> Result<()> {
        self.flush_raw()?;
        let w = &mut self.enc;
        for (ordinal, name) in &self.moved {
            w.write_all(&[SEG_MOVED])
                .and_then(|_| w.write_all(&ordinal.to_le_bytes()))
                .and_then(|_| w.write_all(&(name.len() as u32).to_le_bytes()))
                .and_then(|_| w.write_all(name))
                .map_err(|e| Error::io("write tar-split", e))?;
        }
        w.write_all(&[SEG_END])
            .map_err(|e| Error::io("write tar-split", e))?;
        let mut inner = self
            .enc
            .finish()
            .map_err(|e| Error::io("finish tar-split", e))?;
        inner.flush().map_err(|e| Error::io("write tar-split", e))?;
        Ok(())
    }
}

enum Segment {
    Raw(u32),
    File { path: Vec<u8>, size: u64 },
    Moved { ordinal: u64, name: Vec<u8> },
    End,
}

fn corrupt(path: &Path, message: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.display().to_string(),
        message: message.into(),
    }
}

struct SegReader<R: Read> {
    r: R,
}

impl<R: Read> SegReader<R> {
    fn u32(&mut self) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.r.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> io::Result<u64> {
        let mut b = [0u8; 8];
        self.r.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn name(&mut self) -> io::Result<Vec<u8>> {
        let len = self.u32()?;
        if len > MAX_NAME {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "name too long"));
        }
        let mut v = vec![0u8; len as usize];
        self.r.read_exact(&mut v)?;
        Ok(v)
    }
    fn next(&mut self) -> io::Result<Segment> {
        let mut t = [0u8; 1];
        self.r.read_exact(&mut t)?;
        match t[0] {
            SEG_END => Ok(Segment::End),
            SEG_RAW => {
                let len = self.u32()?;
                if len > MAX_RAW_SEG {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "raw segment too long",
                    ));
                }
                Ok(Segment::Raw(len))
            }
            SEG_FILE => {
                let path = self.name()?;
                let size = self.u64()?;
                Ok(Segment::File { path, size })
            }
            SEG_MOVED => {
                let ordinal = self.u64()?;
                let name = self.name()?;
                Ok(Segment::Moved { ordinal, name })
            }
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown segment type {other}"),
            )),
        }
    }
}

fn open_record(path: &Path) -> Result<SegReader<impl Read>> {
    let f = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let dec =
        zstd::Decoder::new(f).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    let mut r = BufReader::with_capacity(256 * 1024, dec);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .map_err(|e| corrupt(path, format!("cannot read header: {e}")))?;
    if &magic != MAGIC {
        return Err(corrupt(path, "not a skiff tar-split record (bad magic)"));
    }
    Ok(SegReader { r })
}

/// Rebuild the original tar stream of the layer at `layer_dir` into `out`; returns the byte
/// count. Regular-file content is read back from `diff/` (or the layer's moved-aside copies).
pub(crate) fn rebuild(layer_dir: &Path, out: &mut dyn Write) -> Result<u64> {
    let record = layer_dir.join("tar-split.zst");
    // Pass 1: where did replaced files go? (Recorded at the end of the stream.)
    let mut moved: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut seg = open_record(&record)?;
    loop {
        match seg.next().map_err(|e| corrupt(&record, e.to_string()))? {
            Segment::End => break,
            Segment::Raw(len) => {
                io::copy(&mut (&mut seg.r).take(len as u64), &mut io::sink())
                    .map_err(|e| corrupt(&record, e.to_string()))?;
            }
            Segment::File { .. } => {}
            Segment::Moved { ordinal, name } => {
                moved.insert(ordinal, name);
            }
        }
    }
    let layer_fd =
        open_dir(layer_dir).map_err(|e| Error::nix(format!("open {}", layer_dir.display()), e))?;
    let diff_fd = open_beneath(&layer_fd, b"diff", OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .map_err(|e| Error::nix(format!("open {}/diff", layer_dir.display()), e))?;

    let mut seg = open_record(&record)?;
    let mut total = 0u64;
    let mut ordinal = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match seg.next().map_err(|e| corrupt(&record, e.to_string()))? {
            Segment::End => break,
            Segment::Raw(len) => {
                let n = io::copy(&mut (&mut seg.r).take(len as u64), out)
                    .map_err(|e| Error::io("write layer tar", e))?;
                if n != len as u64 {
                    return Err(corrupt(&record, "truncated raw segment"));
                }
                total += n;
            }
            Segment::File { path, size } => {
                let (base, rel): (&OwnedFd, &[u8]) = match moved.get(&ordinal) {
                    Some(name) => (&layer_fd, name),
                    None => (&diff_fd, &path),
                };
                let shown = String::from_utf8_lossy(rel).into_owned();
                let fd = open_beneath(base, rel, OFlag::O_RDONLY | OFlag::O_NOFOLLOW)
                    .map_err(|e| Error::nix(format!("open layer file {shown:?}"), e))?;
                let mut f = File::from(fd);
                let n = copy_exact(&mut f, out, size, &mut buf)
                    .map_err(|e| Error::io(format!("copy layer file {shown:?}"), e))?;
                if n != size {
                    return Err(corrupt(
                        layer_dir,
                        format!("file {shown:?} has {n} bytes, the layer recorded {size}"),
                    ));
                }
                total += n;
                ordinal += 1;
            }
            Segment::Moved { .. } => {}
        }
    }
    Ok(total)
}

/// Copy up to `size` bytes; returns how many were available (the file may have shrunk).
fn copy_exact(r: &mut File, out: &mut dyn Write, size: u64, buf: &mut [u8]) -> io::Result<u64> {
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        let n = r.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(size - left)
}
