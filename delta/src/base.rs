//! Where apply reads base file content from.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};

use crate::error::{DeltaError, Result};
use crate::tarscan::Scanner;

/// Anything readable and seekable (a file, a cursor, a section of a tar).
pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek + ?Sized> ReadSeek for T {}

/// Where apply reads base file content: a regular file of base layer `layer` (index into
/// the base layer list used at create time, bottom to top) at tar path `path`
/// (normalized: no leading `/` or `./`, no `.`/`..`/empty components, no trailing `/`).
///
/// On a device this is `<layer dir>/diff/<path>`; an implementation must not follow
/// symlinks out of the layer. The delta verifies the length and content of what it
/// reads, so a wrong base gives an error, never a silently wrong layer.
pub trait BaseSource {
    fn open(&self, layer: usize, path: &str) -> io::Result<Box<dyn ReadSeek + '_>>;
}

/// A [`BaseSource`] over the base layers' tar streams (for offline `skiff delta apply`
/// and tests). Indexes every regular file; opening one returns a window of the tar.
pub struct TarBase<R> {
    layers: Vec<RefCell<R>>,
    index: Vec<HashMap<String, (u64, u64)>>,
}

impl<R: Read + Seek> TarBase<R> {
    /// Indexes the base layer tars, bottom to top.
    pub fn new(layers: Vec<R>) -> Result<Self> {
        let mut index = Vec::with_capacity(layers.len());
        let mut cells = Vec::with_capacity(layers.len());
        for (i, mut layer) in layers.into_iter().enumerate() {
            layer
                .seek(SeekFrom::Start(0))
                .map_err(DeltaError::io("rewinding a base layer tar"))?;
            let mut files = HashMap::new();
            let mut scan = Scanner::new(&mut layer);
            scan.others = Some(Vec::new());
            loop {
                let f = scan.next_file(None).map_err(|e| {
                    DeltaError::InvalidInput(format!("cannot read base layer {i}: {e}"))
                })?;
                // A later non-file entry of the same path replaces the file.
                for p in scan.others.as_mut().map(std::mem::take).unwrap_or_default() {
                    files.remove(&p);
                }
                let Some(f) = f else { break };
                if let Some(p) = f.path {
                    files.insert(p, (f.offset, f.size));
                }
            }
            index.push(files);
            cells.push(RefCell::new(layer));
        }
        Ok(TarBase {
            layers: cells,
            index,
        })
    }
}

impl<R: Read + Seek> BaseSource for TarBase<R> {
    fn open(&self, layer: usize, path: &str) -> io::Result<Box<dyn ReadSeek + '_>> {
        let not_found = || {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no such regular file in the base layer tar",
            )
        };
        let (offset, len) = *self
            .index
            .get(layer)
            .and_then(|m| m.get(path))
            .ok_or_else(not_found)?;
        let cell = self.layers.get(layer).ok_or_else(not_found)?;
        let inner = cell.try_borrow_mut().map_err(|_| {
            io::Error::other("base layer tar is already open; open one file at a time")
        })?;
        let mut section = Section {
            inner,
            start: offset,
            len,
            pos: 0,
        };
        section.seek(SeekFrom::Start(0))?;
        Ok(Box::new(section))
    }
}

/// A read-only window `[start, start+len)` of a seekable stream.
struct Section<T> {
    inner: T,
    start: u64,
    len: u64,
    pos: u64,
}

impl<T: std::ops::DerefMut<Target = R>, R: Read + Seek> Read for Section<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let want = (buf.len() as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<T: std::ops::DerefMut<Target = R>, R: Read + Seek> Seek for Section<T> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )
        })?;
        self.inner
            .seek(SeekFrom::Start(self.start + target.min(self.len)))?;
        self.pos = target;
        Ok(target)
    }
}
