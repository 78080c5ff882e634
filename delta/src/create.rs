//! Create: index the base layers, split the target tar into raw bytes and file
//! contents, reuse whole stretches of base tar bytes where they match (unchanged
//! entries, headers included), pick the cheapest encoding per remaining file (in
//! parallel), write the delta.

use std::io::{self, Read, SeekFrom, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::base::ReadSeek;
use crate::error::{DeltaError, Result};
use crate::fastdiff;
use crate::format::{self, op, write_varint, Header};
use crate::matching::{slice, BaseFile, BaseIndex, Match};
use crate::tarscan::Scanner;

/// Tuning knobs for [`create`].
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// zstd level for the body stream and for patches (1..=22).
    pub level: i32,
    /// Worker threads for trying encodings; 0 means all cores.
    pub threads: usize,
    /// Files (base or target) larger than this are not tried with bsdiff, whose suffix
    /// array needs 4 bytes per base byte and whose scan is slow on huge inputs.
    pub bsdiff_max: u64,
    /// Base files larger than this are not tried as a zstd prefix: apply holds the
    /// prefix in memory (never more than 4 MiB), and on big binaries zstd at high
    /// levels is slow with a large prefix and loses to bsdiff anyway.
    pub zref_max: u64,
    /// Copy unchanged stretches of the base layer tars (headers and contents) with
    /// RANGE ops. Apply then needs [`crate::BaseSource::open_tar`].
    pub base_tar_ranges: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            level: 19,
            threads: 0,
            bsdiff_max: 64 << 20,
            zref_max: 1 << 20,
            base_tar_ranges: true,
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
    /// Files copied unchanged from the base (by path, or by content when moved),
    /// whether inside a base tar range or by a COPY op.
    pub copied: u64,
    /// Bytes of the target copied as ranges of base layer tars.
    pub range_bytes: u64,
    /// Files encoded as a bsdiff patch / as zstd with the base file as prefix.
    pub bsdiff: u64,
    pub zref: u64,
    /// Files stored literally (no base match, or nothing beat plain zstd).
    pub literal: u64,
    /// Bytes of target file content stored literally.
    pub literal_bytes: u64,
}

/// A CHECK op follows this many base-derived pieces or bytes, whichever comes first.
const CHECK_EVERY_PIECES: u64 = 64;
const CHECK_EVERY_BYTES: u64 = 16 << 20;
/// zstd level used to estimate what a file costs stored literally.
const LITERAL_ESTIMATE_LEVEL: i32 = 3;
/// zstd level at which patch candidates are compared.
const TRIAL_LEVEL: i32 = 9;
/// Shorter matching stretches are not worth a RANGE op.
const MIN_RANGE: usize = 512;

struct TargetFile {
    path: Option<String>,
    start: usize,
    end: usize,
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

/// Target bytes `[start, end)` equal base layer `layer` tar bytes from `base_start`.
#[derive(Debug, Clone, Copy)]
struct Range {
    start: usize,
    end: usize,
    layer: usize,
    base_start: usize,
}

/// Creates a delta that rebuilds `target_tar` byte for byte from `base_layers` (the
/// base image's layer tars, bottom to top), writing it to `out`. Server side: holds
/// the base and target tars in memory and uses `opts.threads` cores.
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
    let mut bases = Vec::with_capacity(base_layers.len());
    for (i, layer) in base_layers.iter_mut().enumerate() {
        let mut bytes = Vec::new();
        layer
            .seek(SeekFrom::Start(0))
            .and_then(|_| layer.read_to_end(&mut bytes))
            .map_err(|e| DeltaError::InvalidInput(format!("cannot read base layer {i}: {e}")))?;
        bases.push(bytes);
    }
    let base_diff_ids: Vec<[u8; 32]> = bases.iter().map(|b| Sha256::digest(b).into()).collect();
    let index = BaseIndex::build(&bases);

    let mut target = Vec::new();
    target_tar
        .read_to_end(&mut target)
        .map_err(|e| DeltaError::InvalidInput(format!("cannot read the target tar: {e}")))?;
    let target_sha256: [u8; 32] = Sha256::digest(&target).into();
    let mut files = split_target(&target);

    let mut stats = DeltaStats {
        target_size: target.len() as u64,
        target_diff_id: format!("sha256:{}", hex::encode(target_sha256)),
        files: files.len() as u64,
        ..DeltaStats::default()
    };
    for f in &mut files {
        f.plan = match index.find(f.path.as_deref(), &target[f.start..f.end]) {
            Match::Same(b) => Plan::Copy(b),
            Match::Related(b) => Plan::Try(b),
            Match::None => Plan::Literal,
        };
    }
    let ranges = if opts.base_tar_ranges {
        find_ranges(&target, &files, &index, &bases)
    } else {
        Vec::new()
    };
    encode_candidates(&target, &mut files, &ranges, &index, &bases, opts)?;

    let header = Header {
        version: format::VERSION,
        target_size: target.len() as u64,
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
    let pieces = pieces(target.len(), &files, &ranges);
    write_body(
        &target,
        &files,
        &pieces,
        &index,
        &mut counter,
        opts,
        &mut stats,
    )
    .map_err(DeltaError::io("writing the delta"))?;
    stats.delta_size = counter.count;
    Ok(stats)
}

/// Regular files with content in the target, in stream order.
fn split_target(target: &[u8]) -> Vec<TargetFile> {
    let mut scan = Scanner::new(target);
    let mut files = Vec::new();
    while let Ok(Some(head)) = scan.next_file(None) {
        if slice(target, head.offset, head.size).is_none() {
            break; // truncated content stays raw
        }
        let start = head.offset as usize;
        files.push(TargetFile {
            path: head.path,
            start,
            end: start + head.size as usize,
            plan: Plan::Literal,
        });
    }
    files
}

/// Stretches of the target that equal base tar bytes, grown around files whose
/// content is unchanged. Ranges never split a target file and, per base layer, only
/// move forward (apply reads each base tar once, sequentially).
fn find_ranges(
    target: &[u8],
    files: &[TargetFile],
    index: &BaseIndex,
    bases: &[Vec<u8>],
) -> Vec<Range> {
    let mut ranges: Vec<Range> = Vec::new();
    let mut cursor = vec![0usize; bases.len()];
    let mut covered = 0usize;
    for f in files {
        let Plan::Copy(b) = f.plan else { continue };
        if f.start < covered {
            continue;
        }
        let bf = &index.files[b];
        let base = &bases[bf.layer];
        let o = bf.offset as usize;
        let mut back = 0;
        while f.start - back > covered
            && o - back > 0
            && target[f.start - back - 1] == base[o - back - 1]
        {
            back += 1;
        }
        let len = f.end - f.start;
        let mut fwd = len;
        while f.start + fwd < target.len()
            && o + fwd < base.len()
            && target[f.start + fwd] == base[o + fwd]
        {
            fwd += 1;
        }
        let mut start = f.start - back;
        let mut end = f.start + fwd;
        // Never start or end inside another file's content.
        if let Some(g) = file_containing(files, start) {
            start = files[g].end;
        }
        if let Some(g) = file_containing(files, end) {
            end = files[g].start;
        }
        if end <= start || end - start < MIN_RANGE {
            continue;
        }
        let base_start = o + start - f.start;
        if base_start < cursor[bf.layer] {
            continue;
        }
        cursor[bf.layer] = base_start + (end - start);
        covered = end;
        ranges.push(Range {
            start,
            end,
            layer: bf.layer,
            base_start,
        });
    }
    ranges
}

/// The file whose content strictly contains `pos` (not at its start).
fn file_containing(files: &[TargetFile], pos: usize) -> Option<usize> {
    let i = files.partition_point(|f| f.start < pos);
    let g = i.checked_sub(1)?;
    (files[g].start < pos && pos < files[g].end).then_some(g)
}

/// Tries bsdiff and zstd-with-prefix against the matched base file for every file
/// planned as `Try` (and not inside a range), in parallel, keeping the smallest.
fn encode_candidates(
    target: &[u8],
    files: &mut [TargetFile],
    ranges: &[Range],
    index: &BaseIndex,
    bases: &[Vec<u8>],
    opts: &CreateOptions,
) -> Result<()> {
    let mut jobs: Vec<usize> = (0..files.len())
        .filter(|&i| matches!(files[i].plan, Plan::Try(_)))
        .collect();
    jobs.retain(|&i| {
        !ranges
            .iter()
            .any(|r| r.start <= files[i].start && files[i].end <= r.end)
    });
    if jobs.is_empty() {
        return Ok(());
    }
    // Biggest first so the slowest diff does not start last.
    jobs.sort_by_key(|&i| std::cmp::Reverse(files[i].end - files[i].start));
    let threads = worker_threads(opts);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Plan)>> = Mutex::new(Vec::with_capacity(jobs.len()));
    let files_ref: &[TargetFile] = files;
    std::thread::scope(|s| -> Result<()> {
        let mut handles = Vec::new();
        for _ in 0..threads.min(jobs.len()) {
            handles.push(s.spawn(|| -> Result<()> {
                while let Some(&i) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let f = &files_ref[i];
                    let Plan::Try(b) = f.plan else { continue };
                    let bf = &index.files[b];
                    let Some(old) = slice(&bases[bf.layer], bf.offset, bf.size) else {
                        continue;
                    };
                    let plan = best_encoding(old, &target[f.start..f.end], b, opts)?;
                    results.lock().map_err(|_| poisoned())?.push((i, plan));
                }
                Ok(())
            }));
        }
        for h in handles {
            h.join().map_err(|_| poisoned())??;
        }
        Ok(())
    })?;
    for (i, plan) in results.into_inner().map_err(|_| poisoned())? {
        files[i].plan = plan;
    }
    Ok(())
}

fn worker_threads(opts: &CreateOptions) -> usize {
    if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    }
}

fn poisoned() -> DeltaError {
    DeltaError::InvalidInput("an encoder thread failed".into())
}

/// Smallest of: literal (plain zstd in the body), bsdiff+zstd, zstd with the base as
/// prefix. Candidates are compared at a fast level; only the winner is compressed at
/// the requested level (high zstd levels cost ~40x more and rarely change the order).
fn best_encoding(old: &[u8], new: &[u8], base: usize, opts: &CreateOptions) -> Result<Plan> {
    let trial = opts.level.min(TRIAL_LEVEL);
    // The body compresses literal content harder than this estimate, so it only leans
    // towards patches, which are what we want for related files.
    let literal = compress(new, &[], opts.level.min(LITERAL_ESTIMATE_LEVEL))?.len();
    let mut best = (literal, Candidate::Literal);
    // A patch op carries the base reference and lengths besides the payload.
    const OP_OVERHEAD: usize = 12;
    if (old.len() as u64) <= opts.zref_max.min(format::MAX_ZREF_BASE) {
        let payload = compress(new, old, trial)?;
        if payload.len() + OP_OVERHEAD < best.0 {
            best = (payload.len() + OP_OVERHEAD, Candidate::Zref(payload));
        }
    }
    if (old.len() as u64) <= opts.bsdiff_max && (new.len() as u64) <= opts.bsdiff_max {
        let mut patch = Vec::new();
        fastdiff::diff(old, new, &mut patch).map_err(DeltaError::io("computing a bsdiff patch"))?;
        let payload = compress(&patch, &[], trial)?;
        if payload.len() + OP_OVERHEAD < best.0 {
            best = (
                payload.len() + OP_OVERHEAD,
                Candidate::Bsdiff(payload, patch),
            );
        }
    }
    let final_level = opts.level > trial;
    Ok(match best.1 {
        Candidate::Literal => Plan::Literal,
        Candidate::Zref(payload) => {
            let payload = if final_level {
                compress(new, old, opts.level)?
            } else {
                payload
            };
            Plan::Patch {
                base,
                op: op::ZREF,
                payload,
            }
        }
        Candidate::Bsdiff(payload, patch) => {
            let payload = if final_level {
                compress(&patch, &[], opts.level)?
            } else {
                payload
            };
            Plan::Patch {
                base,
                op: op::BSDIFF,
                payload,
            }
        }
    })
}

enum Candidate {
    Literal,
    Zref(Vec<u8>),
    /// Compressed payload and the raw patch (to recompress at the final level).
    Bsdiff(Vec<u8>, Vec<u8>),
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

/// How the target is written, in order.
enum Piece {
    Raw(usize, usize),
    File(usize),
    Range(Range),
}

fn pieces(len: usize, files: &[TargetFile], ranges: &[Range]) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut cur = 0;
    let mut fi = 0;
    let uncovered = |from: usize, to: usize, out: &mut Vec<Piece>, fi: &mut usize| {
        let mut pos = from;
        while *fi < files.len() && files[*fi].start < to {
            let f = &files[*fi];
            if f.start >= pos {
                if f.start > pos {
                    out.push(Piece::Raw(pos, f.start));
                }
                out.push(Piece::File(*fi));
                pos = f.end;
            }
            *fi += 1;
        }
        if to > pos {
            out.push(Piece::Raw(pos, to));
        }
    };
    for r in ranges {
        uncovered(cur, r.start, &mut out, &mut fi);
        while fi < files.len() && files[fi].start < r.end {
            fi += 1;
        }
        out.push(Piece::Range(*r));
        cur = r.end;
    }
    uncovered(cur, len, &mut out, &mut fi);
    out
}

fn write_body(
    target: &[u8],
    files: &[TargetFile],
    pieces: &[Piece],
    index: &BaseIndex,
    out: &mut dyn Write,
    opts: &CreateOptions,
    stats: &mut DeltaStats,
) -> io::Result<()> {
    let mut enc = zstd::stream::write::Encoder::new(out, opts.level)?;
    enc.include_checksum(false)?;
    enc.window_log(format::BODY_WINDOW_LOG)?;
    let threads = worker_threads(opts);
    if threads > 1 {
        // The same frame format; zstd splits the work into overlapping jobs.
        enc.multithread(threads as u32)?;
    }
    let mut check = Sha256::new();
    let (mut check_pieces, mut check_bytes) = (0u64, 0u64);
    let mut cursor = vec![0usize; index.layers()];
    let is_literal = |p: &Piece| match p {
        Piece::Raw(..) => true,
        Piece::File(i) => matches!(files[*i].plan, Plan::Literal | Plan::Try(_)),
        Piece::Range(_) => false,
    };
    let mut i = 0;
    while i < pieces.len() {
        if is_literal(&pieces[i]) {
            // Consecutive literal pieces are contiguous target bytes: one RAW op.
            let run_end = pieces[i..]
                .iter()
                .position(|p| !is_literal(p))
                .map_or(pieces.len(), |p| i + p);
            let start = span(&pieces[i], files).0;
            let end = span(&pieces[run_end - 1], files).1;
            for p in &pieces[i..run_end] {
                if let Piece::File(f) = p {
                    stats.literal += 1;
                    stats.literal_bytes += (files[*f].end - files[*f].start) as u64;
                }
            }
            enc.write_all(&[op::RAW])?;
            write_varint(&mut enc, (end - start) as u64)?;
            enc.write_all(&target[start..end])?;
            i = run_end;
            continue;
        }
        let (start, end) = span(&pieces[i], files);
        match &pieces[i] {
            Piece::Range(r) => {
                enc.write_all(&[op::RANGE])?;
                write_varint(&mut enc, r.layer as u64)?;
                write_varint(&mut enc, (r.base_start - cursor[r.layer]) as u64)?;
                write_varint(&mut enc, (r.end - r.start) as u64)?;
                cursor[r.layer] = r.base_start + (r.end - r.start);
                stats.range_bytes += (r.end - r.start) as u64;
                // Ranges never split files: those starting inside lie wholly inside.
                let lo = files.partition_point(|f| f.start < r.start);
                let hi = files.partition_point(|f| f.start < r.end);
                stats.copied += (hi - lo) as u64;
            }
            Piece::File(fi) => match &files[*fi].plan {
                Plan::Copy(b) => {
                    enc.write_all(&[op::COPY])?;
                    write_ref(&mut enc, &index.files[*b])?;
                    write_varint(&mut enc, (end - start) as u64)?;
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
                    write_varint(&mut enc, (end - start) as u64)?;
                    write_varint(&mut enc, payload.len() as u64)?;
                    enc.write_all(payload)?;
                    if *code == op::BSDIFF {
                        stats.bsdiff += 1;
                    } else {
                        stats.zref += 1;
                    }
                }
                Plan::Literal | Plan::Try(_) => {
                    return Err(io::Error::other("internal error: unresolved file plan"))
                }
            },
            Piece::Raw(..) => return Err(io::Error::other("internal error: raw piece out of run")),
        }
        check.update(&target[start..end]);
        check_pieces += 1;
        check_bytes += (end - start) as u64;
        if check_pieces >= CHECK_EVERY_PIECES || check_bytes >= CHECK_EVERY_BYTES {
            write_check(&mut enc, &mut check)?;
            (check_pieces, check_bytes) = (0, 0);
        }
        i += 1;
    }
    if check_pieces > 0 {
        write_check(&mut enc, &mut check)?;
    }
    enc.write_all(&[op::END])?;
    enc.finish()?;
    Ok(())
}

fn span(p: &Piece, files: &[TargetFile]) -> (usize, usize) {
    match p {
        Piece::Raw(s, e) => (*s, *e),
        Piece::File(i) => (files[*i].start, files[*i].end),
        Piece::Range(r) => (r.start, r.end),
    }
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
