//! Create: index the base layers, split the target tar into raw bytes and file
//! contents, pick the cheapest encoding per file (in parallel), write the delta.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::base::ReadSeek;
use crate::error::{DeltaError, Result};
use crate::format::{self, op, write_varint, Header};
use crate::matching::{BaseFile, BaseIndex, Match};
use crate::tarscan::Scanner;

/// Tuning knobs for [`create`].
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// zstd level for the body stream and for patches (1..=22).
    pub level: i32,
    /// Worker threads for trying encodings; 0 means all cores.
    pub threads: usize,
    /// Files (base or target) larger than this are not tried with bsdiff, whose suffix
    /// sort needs about 16 bytes of memory per base byte and is slow on huge inputs.
    pub bsdiff_max: u64,
    /// Base files larger than this are not tried as a zstd prefix (apply holds the
    /// prefix in memory); never more than 4 MiB.
    pub zref_max: u64,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            level: 19,
            threads: 0,
            bsdiff_max: 64 << 20,
            zref_max: format::MAX_ZREF_BASE,
        }
    }
}

/// What create did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeltaStats {
    /// Size of the delta written.
    pub delta_size: u64,
    /// Size and `sha256:<hex>` diff_id of the target tar.
    pub target_size: u64,
    pub target_diff_id: String,
    /// Regular files with content in the target.
    pub files: u64,
    /// Files copied unchanged from the base (by path, or by content when moved).
    pub copied: u64,
    /// Files encoded as a bsdiff patch / as zstd with the base file as prefix.
    pub bsdiff: u64,
    pub zref: u64,
    /// Files stored literally (no base match, or nothing beat plain zstd).
    pub literal: u64,
    /// Bytes of target file content stored literally.
    pub literal_bytes: u64,
}

/// A CHECK op follows this many base-derived files or bytes, whichever comes first.
const CHECK_EVERY_FILES: u64 = 64;
const CHECK_EVERY_BYTES: u64 = 16 << 20;

enum Seg {
    Raw(Vec<u8>),
    File(TargetFile),
}

struct TargetFile {
    path: Option<String>,
    data: Vec<u8>,
    plan: Plan,
}

#[derive(Clone)]
enum Plan {
    Literal,
    Copy(usize),
    Try(usize),
    Patch {
        base: usize,
        op: u8,
        payload: Vec<u8>,
    },
}

/// Creates a delta that rebuilds `target_tar` byte for byte from files of
/// `base_layers` (the base image's layer tars, bottom to top), writing it to `out`.
pub fn create(
    base_layers: &mut [&mut dyn ReadSeek],
    target_tar: &mut dyn Read,
    out: &mut dyn Write,
    opts: &CreateOptions,
) -> Result<DeltaStats> {
    if base_layers.len() as u64 > format::MAX_BASE_LAYERS {
        return Err(DeltaError::InvalidInput(format!(
            "{} base layers exceeds the limit of {}",
            base_layers.len(),
            format::MAX_BASE_LAYERS
        )));
    }
    let (index, base_diff_ids) = BaseIndex::build(base_layers)?;
    let (mut segs, target_size, target_sha256) = read_target(target_tar)?;

    let mut stats = DeltaStats {
        target_size,
        target_diff_id: format!("sha256:{}", hex::encode(target_sha256)),
        ..DeltaStats::default()
    };
    for seg in &mut segs {
        if let Seg::File(f) = seg {
            stats.files += 1;
            f.plan = match index.find(f.path.as_deref(), &f.data) {
                Match::Same(b) => Plan::Copy(b),
                Match::Related(b) => Plan::Try(b),
                Match::None => Plan::Literal,
            };
        }
    }
    encode_candidates(&mut segs, &index, base_layers, opts)?;

    let header = Header {
        version: format::VERSION,
        target_size,
        target_sha256,
        base_diff_ids,
    };
    let mut counter = CountingWriter {
        inner: out,
        count: 0,
    };
    header
        .write(&mut counter)
        .map_err(DeltaError::io("writing the delta"))?;
    write_body(&segs, &index, &mut counter, opts, &mut stats)
        .map_err(DeltaError::io("writing the delta"))?;
    stats.delta_size = counter.count;
    Ok(stats)
}

fn read_target(target_tar: &mut dyn Read) -> Result<(Vec<Seg>, u64, [u8; 32])> {
    let mut hashing = HashingReader {
        inner: target_tar,
        hasher: Sha256::new(),
        count: 0,
    };
    let mut scan = Scanner::new(&mut hashing);
    let mut segs = Vec::new();
    let mut raw = Vec::new();
    let bad = |e: io::Error| DeltaError::InvalidInput(format!("cannot read the target tar: {e}"));
    loop {
        let head = scan.next_file(Some(&mut raw)).map_err(bad)?;
        let Some(head) = head else { break };
        let mut data = Vec::new();
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            let n = scan.read_content(&mut chunk).map_err(bad)?;
            if n == 0 {
                break;
            }
            data.extend_from_slice(&chunk[..n]);
        }
        if (data.len() as u64) < head.size {
            // Truncated content: keep it as raw bytes.
            raw.extend_from_slice(&data);
            continue;
        }
        if !raw.is_empty() {
            segs.push(Seg::Raw(std::mem::take(&mut raw)));
        }
        segs.push(Seg::File(TargetFile {
            path: head.path,
            data,
            plan: Plan::Literal,
        }));
    }
    if !raw.is_empty() {
        segs.push(Seg::Raw(raw));
    }
    let count = hashing.count;
    Ok((segs, count, hashing.hasher.finalize().into()))
}

/// Tries bsdiff and zstd-with-prefix against the matched base file for every file
/// planned as `Try`, in parallel, and keeps whichever is smallest (or literal).
fn encode_candidates(
    segs: &mut [Seg],
    index: &BaseIndex,
    base_layers: &mut [&mut dyn ReadSeek],
    opts: &CreateOptions,
) -> Result<()> {
    let mut jobs: Vec<(usize, usize)> = segs
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Seg::File(TargetFile {
                plan: Plan::Try(b), ..
            }) => Some((i, *b)),
            _ => None,
        })
        .collect();
    if jobs.is_empty() {
        return Ok(());
    }
    // Read the needed base files once, in layer order.
    let mut wanted: Vec<usize> = jobs.iter().map(|j| j.1).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut base_data: HashMap<usize, Vec<u8>> = HashMap::new();
    for b in wanted {
        let f = &index.files[b];
        base_data.insert(b, read_base_file(base_layers, f)?);
    }
    // Biggest first so the slowest diff does not start last.
    jobs.sort_by_key(|(i, _)| match &segs[*i] {
        Seg::File(f) => std::cmp::Reverse(f.data.len()),
        Seg::Raw(_) => std::cmp::Reverse(0),
    });
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        opts.threads
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Plan)>> = Mutex::new(Vec::with_capacity(jobs.len()));
    let segs_ref: &[Seg] = segs;
    std::thread::scope(|s| -> Result<()> {
        let mut handles = Vec::new();
        for _ in 0..threads.min(jobs.len()) {
            handles.push(s.spawn(|| -> Result<()> {
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(seg, b)) = jobs.get(j) else {
                        return Ok(());
                    };
                    let Seg::File(f) = &segs_ref[seg] else {
                        continue;
                    };
                    let Some(old) = base_data.get(&b) else {
                        continue;
                    };
                    let plan = best_encoding(old, &f.data, b, opts)?;
                    results.lock().map_err(|_| poisoned())?.push((seg, plan));
                }
            }));
        }
        for h in handles {
            h.join()
                .map_err(|_| DeltaError::InvalidInput("an encoder thread panicked".into()))??;
        }
        Ok(())
    })?;
    for (seg, plan) in results.into_inner().map_err(|_| poisoned())? {
        if let Seg::File(f) = &mut segs[seg] {
            f.plan = plan;
        }
    }
    Ok(())
}

fn poisoned() -> DeltaError {
    DeltaError::InvalidInput("an encoder thread failed".into())
}

fn read_base_file(base_layers: &mut [&mut dyn ReadSeek], f: &BaseFile) -> Result<Vec<u8>> {
    let layer = base_layers
        .get_mut(f.layer)
        .ok_or_else(|| DeltaError::InvalidInput("base layer index out of range".into()))?;
    layer
        .seek(SeekFrom::Start(f.offset))
        .map_err(DeltaError::io("reading a base layer"))?;
    let mut data = Vec::with_capacity(f.size as usize);
    (&mut **layer)
        .take(f.size)
        .read_to_end(&mut data)
        .map_err(DeltaError::io("reading a base layer"))?;
    if data.len() as u64 != f.size {
        return Err(DeltaError::InvalidInput(format!(
            "base layer {} changed while reading '{}'",
            f.layer, f.path
        )));
    }
    Ok(data)
}

/// Smallest of: literal (plain zstd in the body), bsdiff+zstd, zstd with the base as prefix.
fn best_encoding(old: &[u8], new: &[u8], base: usize, opts: &CreateOptions) -> Result<Plan> {
    let level = opts.level;
    let literal = compress(new, &[], level)?.len();
    let mut best: (usize, Plan) = (literal, Plan::Literal);
    // A patch op carries the base reference and lengths besides the payload.
    const OP_OVERHEAD: usize = 12;
    if (old.len() as u64) <= opts.zref_max.min(format::MAX_ZREF_BASE) {
        let payload = compress(new, old, level)?;
        if payload.len() + OP_OVERHEAD < best.0 {
            best = (
                payload.len() + OP_OVERHEAD,
                Plan::Patch {
                    base,
                    op: op::ZREF,
                    payload,
                },
            );
        }
    }
    if (old.len() as u64) <= opts.bsdiff_max && (new.len() as u64) <= opts.bsdiff_max {
        let mut patch = Vec::new();
        bsdiff::diff(old, new, &mut patch).map_err(DeltaError::io("computing a bsdiff patch"))?;
        let payload = compress(&patch, &[], level)?;
        if payload.len() + OP_OVERHEAD < best.0 {
            best = (
                payload.len() + OP_OVERHEAD,
                Plan::Patch {
                    base,
                    op: op::BSDIFF,
                    payload,
                },
            );
        }
    }
    Ok(best.1)
}

/// One zstd frame with content size, without checksum (the delta verifies the output),
/// window capped so apply's decoder memory stays bounded.
fn compress(data: &[u8], prefix: &[u8], level: i32) -> Result<Vec<u8>> {
    let mut enc = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), level, prefix)
        .map_err(DeltaError::io("starting zstd"))?;
    let setup = |enc: &mut zstd::stream::write::Encoder<'_, Vec<u8>>| -> io::Result<()> {
        enc.include_checksum(false)?;
        enc.include_contentsize(true)?;
        enc.set_pledged_src_size(Some(data.len() as u64))?;
        if level > 19 {
            enc.window_log(format::MAX_WINDOW_LOG)?;
        }
        Ok(())
    };
    setup(&mut enc).map_err(DeltaError::io("configuring zstd"))?;
    enc.write_all(data).map_err(DeltaError::io("compressing"))?;
    enc.finish().map_err(DeltaError::io("compressing"))
}

fn write_body(
    segs: &[Seg],
    index: &BaseIndex,
    out: &mut dyn Write,
    opts: &CreateOptions,
    stats: &mut DeltaStats,
) -> io::Result<()> {
    let mut enc = zstd::stream::write::Encoder::new(out, opts.level)?;
    enc.include_checksum(false)?;
    enc.window_log(format::BODY_WINDOW_LOG)?;
    let mut check = Sha256::new();
    let (mut check_files, mut check_bytes) = (0u64, 0u64);
    let mut i = 0;
    while i < segs.len() {
        // A run of raw segments and literal files becomes one RAW op.
        let run_end = segs[i..]
            .iter()
            .position(|s| matches!(s, Seg::File(f) if matches!(f.plan, Plan::Copy(_) | Plan::Patch { .. })))
            .map_or(segs.len(), |p| i + p);
        if run_end > i {
            let len: usize = segs[i..run_end]
                .iter()
                .map(|s| match s {
                    Seg::Raw(r) => r.len(),
                    Seg::File(f) => f.data.len(),
                })
                .sum();
            enc.write_all(&[op::RAW])?;
            write_varint(&mut enc, len as u64)?;
            for s in &segs[i..run_end] {
                match s {
                    Seg::Raw(r) => enc.write_all(r)?,
                    Seg::File(f) => {
                        stats.literal += 1;
                        stats.literal_bytes += f.data.len() as u64;
                        enc.write_all(&f.data)?;
                    }
                }
            }
            i = run_end;
            continue;
        }
        let Seg::File(f) = &segs[i] else {
            unreachable_raw()?
        };
        match &f.plan {
            Plan::Copy(b) => {
                let bf = &index.files[*b];
                enc.write_all(&[op::COPY])?;
                write_ref(&mut enc, bf)?;
                write_varint(&mut enc, f.data.len() as u64)?;
                stats.copied += 1;
            }
            Plan::Patch {
                base,
                op: code,
                payload,
            } => {
                let bf = &index.files[*base];
                enc.write_all(&[*code])?;
                write_ref(&mut enc, bf)?;
                write_varint(&mut enc, bf.size)?;
                write_varint(&mut enc, f.data.len() as u64)?;
                write_varint(&mut enc, payload.len() as u64)?;
                enc.write_all(payload)?;
                if *code == op::BSDIFF {
                    stats.bsdiff += 1;
                } else {
                    stats.zref += 1;
                }
            }
            Plan::Literal | Plan::Try(_) => unreachable_raw()?,
        }
        check.update(&f.data);
        check_files += 1;
        check_bytes += f.data.len() as u64;
        if check_files >= CHECK_EVERY_FILES || check_bytes >= CHECK_EVERY_BYTES {
            write_check(&mut enc, &mut check)?;
            (check_files, check_bytes) = (0, 0);
        }
        i += 1;
    }
    if check_files > 0 {
        write_check(&mut enc, &mut check)?;
    }
    enc.write_all(&[op::END])?;
    enc.finish()?;
    Ok(())
}

/// Plans are resolved before writing; reaching this is a bug, reported as an error.
fn unreachable_raw<T>() -> io::Result<T> {
    Err(io::Error::other("internal error: unresolved file plan"))
}

fn write_ref(w: &mut dyn Write, f: &BaseFile) -> io::Result<()> {
    write_varint(w, f.layer as u64)?;
    write_varint(w, f.path.len() as u64)?;
    w.write_all(f.path.as_bytes())
}

fn write_check(w: &mut dyn Write, check: &mut Sha256) -> io::Result<()> {
    let digest: [u8; 32] = std::mem::take(check).finalize().into();
    w.write_all(&[op::CHECK])?;
    w.write_all(&digest[..format::CHECK_LEN])
}

struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    count: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub(crate) struct HashingReader<R> {
    pub inner: R,
    pub hasher: Sha256,
    pub count: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
