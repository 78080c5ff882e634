//! Where apply reads base content from.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::mpsc;

use crate::error::{DeltaError, Result};
use crate::tarscan::Scanner;

/// Anything readable and seekable (a file, a cursor, a section of a tar).
pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek + ?Sized> ReadSeek for T {}

/// Where apply reads base content. `layer` indexes the base layer list used at create
/// time (bottom to top).
///
/// The delta verifies the length and content of everything it reads, so a wrong base
/// gives an error, never a silently wrong layer.
pub trait BaseSource {
    /// A regular file of base layer `layer` at tar path `path` (normalized: no leading
    /// `/` or `./`, no `.`/`..`/empty components, no trailing `/`). On a device this is
    /// `<layer dir>/diff/<path>`; an implementation must not follow symlinks out of
    /// the layer.
    fn open(&self, layer: usize, path: &str) -> io::Result<Box<dyn ReadSeek + '_>>;

    /// The exact tar stream of base layer `layer` (its bytes hash to the layer's
    /// diff_id), read sequentially from the start. Apply opens each layer at most once
    /// and reads it forward only. On a device, rebuild it from the layer's tar-split
    /// record (see [`reader_from_writer`]). Deltas made with
    /// `CreateOptions::base_tar_ranges = false` never call this.
    fn open_tar(&self, layer: usize) -> io::Result<Box<dyn Read + '_>> {
        let _ = layer;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this base source cannot stream base layer tars; create the delta with base_tar_ranges off",
        ))
    }
}

/// A [`BaseSource`] over the base layers' tar streams (for offline `skiff delta apply`
/// and tests). Indexes every regular file; opening one returns a window of the tar.
pub struct TarBase<R> {
    layers: Vec<RefCell<R>>,
    lens: Vec<u64>,
    index: Vec<HashMap<String, (u64, u64)>>,
}

impl<R: Read + Seek> TarBase<R> {
    /// Indexes the base layer tars, bottom to top.
    pub fn new(layers: Vec<R>) -> Result<Self> {
        let mut index = Vec::with_capacity(layers.len());
        let mut cells = Vec::with_capacity(layers.len());
        let mut lens = Vec::with_capacity(layers.len());
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
            let len = layer
                .seek(SeekFrom::End(0))
                .map_err(DeltaError::io("measuring a base layer tar"))?;
            index.push(files);
            cells.push(RefCell::new(layer));
            lens.push(len);
        }
        Ok(TarBase {
            layers: cells,
            lens,
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
        let (start, len) = *self
            .index
            .get(layer)
            .and_then(|m| m.get(path))
            .ok_or_else(not_found)?;
        let inner = self.layers.get(layer).ok_or_else(not_found)?;
        Ok(Box::new(Section {
            inner,
            start,
            len,
            pos: 0,
        }))
    }

    fn open_tar(&self, layer: usize) -> io::Result<Box<dyn Read + '_>> {
        let not_found = || io::Error::new(io::ErrorKind::NotFound, "no such base layer");
        let inner = self.layers.get(layer).ok_or_else(not_found)?;
        let len = *self.lens.get(layer).ok_or_else(not_found)?;
        Ok(Box::new(Section {
            inner,
            start: 0,
            len,
            pos: 0,
        }))
    }
}

/// A read-only window `[start, start+len)` of a shared seekable stream; it seeks
/// before every read, so several windows of one stream can be open at once.
struct Section<'a, R> {
    inner: &'a RefCell<R>,
    start: u64,
    len: u64,
    pos: u64,
}

impl<R: Read + Seek> Read for Section<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let want = (buf.len() as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let mut inner = self
            .inner
            .try_borrow_mut()
            .map_err(|_| io::Error::other("base layer tar is busy"))?;
        inner.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = inner.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R> Seek for Section<'_, R> {
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
        self.pos = target;
        Ok(target)
    }
}

/// Turns a producer that pushes a stream into a `Write` (such as a layer store's
/// "write the layer tar" function) into a `Read`, for [`BaseSource::open_tar`]. The
/// producer runs on its own thread; memory is bounded by a few 64 KiB chunks. If the
/// reader is dropped early the producer's writes fail and it stops.
pub fn reader_from_writer<F>(produce: F) -> impl Read + Send + 'static
where
    F: FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
    std::thread::spawn(move || {
        let mut w = ChunkWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(PIPE_CHUNK),
        };
        let result = produce(&mut w).and_then(|_| w.flush());
        if let Err(e) = result {
            let _ = tx.send(Err(e));
        }
    });
    ChannelReader {
        rx,
        chunk: Vec::new(),
        pos: 0,
        done: false,
    }
}

/// Runs `produce` (e.g. [`crate::apply`] writing the target tar) on a scoped thread
/// and `consume` (e.g. a layer extractor reading a tar) on this one, joined by a
/// bounded in-memory pipe. The consumer only sees a clean end of stream if the
/// producer succeeded (for apply: the rebuilt tar verified); a producer error reaches
/// the consumer as a read error. Whatever the consumer leaves unread is drained so the
/// producer always finishes. Returns both results.
pub fn pipe<T: Send, U>(
    produce: impl FnOnce(&mut dyn Write) -> io::Result<T> + Send,
    consume: impl FnOnce(&mut dyn Read) -> U,
) -> (io::Result<T>, U) {
    let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let mut w = ChunkWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(PIPE_CHUNK),
            };
            let result = produce(&mut w).and_then(|v| w.flush().map(|_| v));
            if let Err(e) = &result {
                let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
            }
            result
        });
        let mut reader = ChannelReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
            done: false,
        };
        let consumed = consume(&mut reader);
        let _ = io::copy(&mut reader, &mut io::sink());
        drop(reader);
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the producing thread panicked")));
        (produced, consumed)
    })
}

const PIPE_CHUNK: usize = 64 * 1024;

struct ChunkWriter {
    tx: mpsc::SyncSender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(PIPE_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PIPE_CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(PIPE_CHUNK));
        self.tx.send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the reader of the stream has gone",
            )
        })
    }
}

struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The producer finished and dropped its sender: end of stream.
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_passes_data_and_turns_producer_errors_into_read_errors() {
        let data: Vec<u8> = (0..500_000u32).map(|i| (i % 249) as u8).collect();
        let (p, c) = pipe(
            |w| w.write_all(&data).map(|_| 7),
            |r| {
                let mut got = Vec::new();
                r.read_to_end(&mut got).map(|_| got)
            },
        );
        assert_eq!(p.unwrap(), 7);
        assert_eq!(c.unwrap(), data);

        let (p, c) = pipe(
            |w| -> io::Result<()> {
                w.write_all(&data)?;
                Err(io::Error::other("target does not verify"))
            },
            |r| io::copy(r, &mut io::sink()),
        );
        assert!(p.is_err());
        assert!(c.unwrap_err().to_string().contains("does not verify"));

        // A consumer that stops early does not block the producer.
        let (p, c) = pipe(|w| w.write_all(&data), |r| r.read(&mut [0u8; 10]));
        assert!(p.is_ok());
        assert_eq!(c.unwrap(), 10);
    }

    #[test]
    fn reader_from_writer_streams_everything_and_reports_errors() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let copy = data.clone();
        let mut r = reader_from_writer(move |w| w.write_all(&copy));
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, data);

        let mut r = reader_from_writer(|w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("producer failed"))
        });
        let mut got = Vec::new();
        let err = r.read_to_end(&mut got).unwrap_err();
        assert!(err.to_string().contains("producer failed"));
    }
}
