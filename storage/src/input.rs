//! The reader chain from the network body to the tar parser: compressed-side hashing,
//! counting, progress and cancellation; decompression chosen by magic bytes; uncompressed
//! hashing (the diff_id) with size and expansion-ratio limits.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The compression a layer media type declares.
    pub fn from_media_type(mt: &str) -> Result<Compression> {
        Ok(match mt {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Compression::Zstd,
            other => return Err(Error::UnsupportedMediaType(other.to_string())),
        })
    }

    /// Detect by magic bytes; formats we know but do not support are a clear error.
    fn detect(head: &[u8]) -> Result<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Ok(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Ok(Compression::Zstd)
        } else if head.starts_with(b"BZh") {
            Err(Error::UnsupportedCompression("bzip2"))
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Err(Error::UnsupportedCompression("xz"))
        } else if head.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
            Err(Error::UnsupportedCompression("lz4"))
        } else {
            Ok(Compression::None)
        }
    }
}

/// Bytes of compressed input consumed so far, shared between both ends of the chain.
type Counter = Rc<Cell<u64>>;

pub(crate) struct CompressedSide<'a> {
    inner: &'a mut dyn Read,
    hasher: Sha256,
    count: Counter,
    max: u64,
    progress: Option<&'a mut dyn FnMut(u64)>,
    cancel: Option<&'a AtomicBool>,
}

impl Read for CompressedSide<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Cancelled.into_io());
        }
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        let total = self.count.get() + n as u64;
        self.count.set(total);
        if total > self.max {
            return Err(
                Error::TooLarge(format!("compressed layer exceeds {} bytes", self.max)).into_io(),
            );
        }
        if n > 0 {
            if let Some(p) = self.progress.as_mut() {
                p(total);
            }
        }
        Ok(n)
    }
}

type Head<'a> = BufReader<Chain<Cursor<Vec<u8>>, CompressedSide<'a>>>;

enum Decoder<'a> {
    Plain(Head<'a>),
    Gzip(flate2::bufread::MultiGzDecoder<Head<'a>>),
    Zstd(zstd::stream::read::Decoder<'static, Head<'a>>),
}

impl<'a> Decoder<'a> {
    fn head(&mut self) -> &mut Head<'a> {
        match self {
            Decoder::Plain(h) => h,
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Zstd(d) => d.get_mut(),
        }
    }
}

impl Read for Decoder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(h) => h.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_size: u64,
    pub ratio: u64,
    pub floor: u64,
}

/// The uncompressed tar stream as the parser sees it.
pub(crate) struct LayerInput<'a> {
    dec: Decoder<'a>,
    hasher: Sha256,
    pub(crate) uncompressed: u64,
    compressed: Counter,
    limits: Limits,
}

impl<'a> LayerInput<'a> {
    pub(crate) fn new(
        input: &'a mut dyn Read,
        declared: Option<Compression>,
        limits: Limits,
        progress: Option<&'a mut dyn FnMut(u64)>,
        cancel: Option<&'a AtomicBool>,
    ) -> Result<LayerInput<'a>> {
        let count: Counter = Rc::new(Cell::new(0));
        let mut side = CompressedSide {
            inner: input,
            hasher: Sha256::new(),
            count: count.clone(),
            max: limits.max_size,
            progress,
            cancel,
        };
        let mut head = Vec::with_capacity(8);
        (&mut side)
            .take(6)
            .read_to_end(&mut head)
            .map_err(|e| Error::io("read layer", e))?;
        let detected = Compression::detect(&head)?;
        if let Some(declared) = declared {
            if declared != detected {
                return Err(Error::CompressionMismatch {
                    declared: declared.name(),
                    detected: detected.name(),
                });
            }
        }
        let buf = BufReader::with_capacity(256 * 1024, Cursor::new(head).chain(side));
        let dec = match detected {
            Compression::None => Decoder::Plain(buf),
            Compression::Gzip => Decoder::Gzip(flate2::bufread::MultiGzDecoder::new(buf)),
            Compression::Zstd => Decoder::Zstd(
                zstd::stream::read::Decoder::with_buffer(buf)
                    .map_err(|e| Error::io("start zstd decompression", e))?,
            ),
        };
        Ok(LayerInput {
            dec,
            hasher: Sha256::new(),
            uncompressed: 0,
            compressed: count,
            limits,
        })
    }

    /// After the tar parser is done: drain any compressed bytes the decoder left (a trailer,
    /// padding) so the blob digest covers the whole body; return (blob digest, diff_id,
    /// compressed size).
    pub(crate) fn finish(mut self) -> Result<(Digest, Digest, u64)> {
        let head = self.dec.head();
        loop {
            let n = {
                let b = head.fill_buf().map_err(|e| Error::io("read layer", e))?;
                b.len()
            };
            if n == 0 {
                break;
            }
            head.consume(n);
        }
        let side = head.get_mut().get_mut().1;
        let blob = Digest::hasher_result(std::mem::take(&mut side.hasher));
        let diff_id = Digest::hasher_result(std::mem::take(&mut self.hasher));
        Ok((blob, diff_id, self.compressed.get()))
    }
}

impl Read for LayerInput<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.dec.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.uncompressed += n as u64;
        let l = self.limits;
        if self.uncompressed > l.max_size {
            return Err(Error::TooLarge(format!(
                "uncompressed layer exceeds {} bytes",
                l.max_size
            ))
            .into_io());
        }
        let compressed = self.compressed.get().max(1);
        if self.uncompressed > l.floor && self.uncompressed / compressed > l.ratio {
            return Err(Error::TooLarge(format!(
                "layer expands more than {}x ({} bytes from {compressed}): likely a decompression bomb",
                l.ratio, self.uncompressed
            ))
            .into_io());
        }
        Ok(n)
    }
}
