//! Streaming apply: delta + base files in, target tar out, memory bounded by a constant.

use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};

use crate::base::{BaseSource, ReadSeek};
use crate::bspatch::{self, BaseRef};
use crate::error::{DeltaError, Result};
use crate::format::{self, op, read_exact, read_u8, read_varint, Header};
use crate::tarscan::normalize_path;

const CHUNK: usize = 64 * 1024;

/// What apply produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `sha256:<hex>` of the rebuilt tar (the target layer's diff_id).
    pub diff_id: String,
    /// Length of the rebuilt tar in bytes.
    pub size: u64,
}

/// Rebuilds the target tar from `base` and `delta`, streaming it into `out`. The
/// result is verified against the sha256 and size recorded in the delta; on any
/// mismatch an error is returned (the bytes already written must then be discarded).
pub fn apply(base: &dyn BaseSource, delta: &mut dyn Read, out: &mut dyn Write) -> Result<Applied> {
    let header = Header::read(delta)?;
    let mut body = zstd::stream::read::Decoder::new(delta)
        .map_err(DeltaError::io("starting the zstd decoder"))?
        .single_frame();
    body.window_log_max(format::MAX_WINDOW_LOG)
        .map_err(DeltaError::io("configuring the zstd decoder"))?;
    let mut out = Output::new(out, header.target_size);
    let mut ctx = Ctx {
        base,
        header: &header,
        buf: vec![0u8; CHUNK],
        last_layer: 0,
        last_path: String::new(),
        file_ops: 0,
        tars: Vec::new(),
    };
    loop {
        let code = read_u8(&mut body, "op code")?;
        match code {
            op::END => break,
            op::RAW => {
                let len = read_len(&mut body, &out, "raw length")?;
                copy_exact(&mut body, &mut out, len, &mut ctx.buf)?;
            }
            op::COPY => {
                let (layer, path) = ctx.read_base_ref(&mut body)?;
                let len = read_len(&mut body, &out, "copy length")?;
                let mut f = ctx.open_base(layer, &path, len)?;
                out.in_file = true;
                copy_base(&mut *f, &mut out, len, &mut ctx.buf, layer, &path)?;
                out.in_file = false;
                ctx.done_file(layer, path);
            }
            op::BSDIFF | op::ZREF => {
                let (layer, path) = ctx.read_base_ref(&mut body)?;
                let base_len = read_varint(&mut body, "base length")?;
                let target_len = read_len(&mut body, &out, "target length")?;
                let payload_len = read_varint(&mut body, "payload length")?;
                if code == op::ZREF && base_len > format::MAX_ZREF_BASE {
                    return Err(DeltaError::corrupt(format!(
                        "zstd-ref base of {base_len} bytes exceeds the limit"
                    )));
                }
                let mut f = ctx.open_base(layer, &path, base_len)?;
                let mut payload = (&mut body).take(payload_len);
                out.in_file = true;
                if code == op::BSDIFF {
                    let mut patch = nested_decoder(&mut payload, &[])?;
                    let r = BaseRef { layer, path: &path };
                    bspatch::apply(&mut *f, base_len, &r, &mut patch, target_len, &mut out)?;
                } else {
                    let mut prefix = Vec::with_capacity(base_len as usize);
                    (&mut *f)
                        .take(base_len)
                        .read_to_end(&mut prefix)
                        .map_err(|e| base_err(layer, &path, e))?;
                    if prefix.len() as u64 != base_len {
                        return Err(base_err(layer, &path, io::ErrorKind::UnexpectedEof.into()));
                    }
                    let mut dec = nested_decoder(&mut payload, &prefix)?;
                    copy_exact(&mut dec, &mut out, target_len, &mut ctx.buf)?;
                    expect_eof(&mut dec, "zstd-ref payload")?;
                }
                out.in_file = false;
                let rest = io::copy(&mut payload, &mut io::sink())
                    .map_err(|e| format::read_error("payload", e))?;
                if rest != 0 || payload.limit() != 0 {
                    return Err(DeltaError::corrupt(format!(
                        "payload for '{path}' has the wrong length"
                    )));
                }
                ctx.done_file(layer, path);
            }
            op::RANGE => {
                let layer = read_varint(&mut body, "range layer")?;
                let skip = read_varint(&mut body, "range skip")?;
                let len = read_len(&mut body, &out, "range length")?;
                let layer = ctx.layer_index(layer)?;
                let mut buf = std::mem::take(&mut ctx.buf);
                let tar = ctx.tar(layer)?;
                skip_base(tar, skip, layer)?;
                out.in_file = true;
                let copied = copy_base(tar, &mut out, len, &mut buf, layer, TAR_NAME);
                out.in_file = false;
                ctx.buf = buf;
                copied?;
                ctx.done_file(layer, TAR_NAME.to_string());
            }
            op::CHECK => {
                let mut want = [0u8; format::CHECK_LEN];
                read_exact(&mut body, &mut want, "check digest")?;
                if ctx.file_ops == 0 {
                    return Err(DeltaError::corrupt("check without a preceding file"));
                }
                let got = out.take_check();
                if got[..format::CHECK_LEN] != want {
                    return Err(DeltaError::BaseMismatch {
                        layer: ctx.last_layer,
                        path: ctx.last_path.clone(),
                        detail: "content read from the base differs (checked up to this file)"
                            .into(),
                    });
                }
                ctx.file_ops = 0;
            }
            other => return Err(DeltaError::corrupt(format!("unknown op code {other}"))),
        }
    }
    if ctx.file_ops != 0 {
        return Err(DeltaError::corrupt("files after the last check"));
    }
    expect_eof(&mut body, "delta body")?;
    let mut rest = body.finish();
    let trailing = rest
        .fill_buf()
        .map_err(|e| format::read_error("end of the delta", e))?;
    if !trailing.is_empty() {
        return Err(DeltaError::corrupt("data after the end of the delta"));
    }
    let (size, digest) = out.finish();
    if size != header.target_size || digest != header.target_sha256 {
        return Err(DeltaError::TargetMismatch {
            detail: format!(
                "got {size} bytes sha256:{}, expected {} bytes sha256:{}",
                hex::encode(digest),
                header.target_size,
                hex::encode(header.target_sha256)
            ),
        });
    }
    Ok(Applied {
        diff_id: format!("sha256:{}", hex::encode(digest)),
        size,
    })
}

struct Ctx<'a> {
    base: &'a dyn BaseSource,
    header: &'a Header,
    buf: Vec<u8>,
    last_layer: usize,
    last_path: String,
    file_ops: u64,
    /// Base layer tar streams opened by RANGE ops, read forward only.
    tars: Vec<Option<Box<dyn Read + 'a>>>,
}

/// Names a base layer's tar stream in errors.
const TAR_NAME: &str = "<layer tar stream>";

impl<'a> Ctx<'a> {
    fn layer_index(&self, layer: u64) -> Result<usize> {
        if layer >= self.header.base_diff_ids.len() as u64 {
            return Err(DeltaError::corrupt(format!(
                "op references base layer {layer} which the header does not list"
            )));
        }
        Ok(layer as usize)
    }

    fn tar(&mut self, layer: usize) -> Result<&mut (dyn Read + 'a)> {
        if self.tars.len() <= layer {
            self.tars.resize_with(layer + 1, || None);
        }
        let slot = &mut self.tars[layer];
        if slot.is_none() {
            let r = self
                .base
                .open_tar(layer)
                .map_err(|source| DeltaError::BaseMissing {
                    layer,
                    path: TAR_NAME.to_string(),
                    source,
                })?;
            *slot = Some(r);
        }
        match slot {
            Some(r) => Ok(&mut **r),
            None => Err(DeltaError::corrupt("base layer tar not open")),
        }
    }

    fn read_base_ref(&mut self, body: &mut dyn Read) -> Result<(usize, String)> {
        let layer = read_varint(body, "base layer")?;
        let layer = self.layer_index(layer)?;
        let len = read_varint(body, "base path length")?;
        if len == 0 || len > format::MAX_PATH_LEN {
            return Err(DeltaError::corrupt(format!(
                "base path length {len} is out of range"
            )));
        }
        let mut raw = vec![0u8; len as usize];
        read_exact(body, &mut raw, "base path")?;
        match normalize_path(&raw) {
            Some(p) if p.as_bytes() == raw.as_slice() => Ok((layer, p)),
            _ => Err(DeltaError::corrupt(
                "base path is not a normalized relative path",
            )),
        }
    }

    fn open_base(&self, layer: usize, path: &str, len: u64) -> Result<Box<dyn ReadSeek + 'a>> {
        let mut f = self
            .base
            .open(layer, path)
            .map_err(|source| DeltaError::BaseMissing {
                layer,
                path: path.to_string(),
                source,
            })?;
        let actual = f
            .seek(SeekFrom::End(0))
            .map_err(|e| base_err(layer, path, e))?;
        if actual != len {
            return Err(DeltaError::BaseMismatch {
                layer,
                path: path.to_string(),
                detail: format!("it is {actual} bytes, the delta expects {len}"),
            });
        }
        f.seek(SeekFrom::Start(0))
            .map_err(|e| base_err(layer, path, e))?;
        Ok(f)
    }

    fn done_file(&mut self, layer: usize, path: String) {
        self.last_layer = layer;
        self.last_path = path;
        self.file_ops += 1;
    }
}

fn base_err(layer: usize, path: &str, e: io::Error) -> DeltaError {
    DeltaError::BaseMismatch {
        layer,
        path: path.to_string(),
        detail: format!("cannot read it: {e}"),
    }
}

fn nested_decoder<'a>(payload: &'a mut dyn Read, prefix: &'a [u8]) -> Result<impl Read + 'a> {
    let mut dec = zstd::stream::read::Decoder::with_ref_prefix(
        io::BufReader::with_capacity(CHUNK, payload),
        prefix,
    )
    .map_err(DeltaError::io("starting the zstd decoder"))?
    .single_frame();
    dec.window_log_max(format::MAX_WINDOW_LOG)
        .map_err(DeltaError::io("configuring the zstd decoder"))?;
    Ok(dec)
}

/// A length read from the delta that must fit in what is left of the target.
fn read_len(body: &mut dyn Read, out: &Output<'_>, what: &str) -> Result<u64> {
    let len = read_varint(body, what)?;
    if len == 0 || len > out.remaining() {
        return Err(DeltaError::corrupt(format!("{what} {len} is out of range")));
    }
    Ok(len)
}

fn copy_exact(from: &mut dyn Read, out: &mut Output<'_>, len: u64, buf: &mut [u8]) -> Result<()> {
    let mut left = len;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        from.read_exact(&mut buf[..n])
            .map_err(|e| format::read_error("data", e))?;
        out.write_all(&buf[..n])
            .map_err(DeltaError::io("writing the target layer"))?;
        left -= n as u64;
    }
    Ok(())
}

fn copy_base(
    from: &mut dyn Read,
    out: &mut Output<'_>,
    len: u64,
    buf: &mut [u8],
    layer: usize,
    path: &str,
) -> Result<()> {
    let mut left = len;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        from.read_exact(&mut buf[..n])
            .map_err(|e| base_err(layer, path, e))?;
        out.write_all(&buf[..n])
            .map_err(DeltaError::io("writing the target layer"))?;
        left -= n as u64;
    }
    Ok(())
}

fn skip_base(from: &mut dyn Read, len: u64, layer: usize) -> Result<()> {
    let n =
        io::copy(&mut from.take(len), &mut io::sink()).map_err(|e| base_err(layer, TAR_NAME, e))?;
    if n != len {
        return Err(base_err(
            layer,
            TAR_NAME,
            io::ErrorKind::UnexpectedEof.into(),
        ));
    }
    Ok(())
}

fn expect_eof(r: &mut dyn Read, what: &str) -> Result<()> {
    let mut probe = [0u8; 1];
    match r.read(&mut probe) {
        Ok(0) => Ok(()),
        Ok(_) => Err(DeltaError::corrupt(format!(
            "data after the end of the {what}"
        ))),
        Err(e) => Err(format::read_error(what, e)),
    }
}

/// The target output: counts, hashes everything, and separately hashes file bytes
/// that came from the base (for CHECK ops).
struct Output<'a> {
    out: &'a mut dyn Write,
    limit: u64,
    count: u64,
    all: Sha256,
    check: Sha256,
    in_file: bool,
}

impl<'a> Output<'a> {
    fn new(out: &'a mut dyn Write, limit: u64) -> Self {
        Output {
            out,
            limit,
            count: 0,
            all: Sha256::new(),
            check: Sha256::new(),
            in_file: false,
        }
    }

    fn remaining(&self) -> u64 {
        self.limit - self.count
    }

    fn take_check(&mut self) -> [u8; 32] {
        std::mem::take(&mut self.check).finalize().into()
    }

    fn finish(self) -> (u64, [u8; 32]) {
        (self.count, self.all.finalize().into())
    }
}

impl Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.remaining() {
            return Err(io::Error::other(
                "delta produces more bytes than its target size",
            ));
        }
        let n = self.out.write(buf)?;
        self.all.update(&buf[..n]);
        if self.in_file {
            self.check.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
