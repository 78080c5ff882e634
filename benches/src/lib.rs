//! Helpers shared by skiff's benchmarks: a deterministic generator of layer tars that look
//! like a root filesystem (many small files, some large ones, text and binary-like data,
//! symlinks, hardlinks), so storage benchmarks need no network and no image build.
//!
//! The end-to-end comparisons with dockerd and podman live in `benches/e2e/` (scripts).

use std::io::{self, Write};

use flate2::write::GzEncoder;
use flate2::Compression;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A generated layer: the gzip-compressed tar and what it holds.
#[derive(Debug, Clone)]
pub struct GeneratedLayer {
    /// The layer as a registry would serve it (`application/vnd.oci.image.layer.v1.tar+gzip`).
    pub tar_gz: Vec<u8>,
    /// Size of the uncompressed tar stream.
    pub tar_size: u64,
    /// Number of regular files in the layer.
    pub files: usize,
}

/// Words for text-like files: real rootfs content (docs, scripts, locale data) compresses
/// about 3:1 with gzip, random bytes not at all; mixing both gives a realistic ratio.
const WORDS: &[&str] = &[
    "the",
    "package",
    "library",
    "configuration",
    "debian",
    "system",
    "file",
    "version",
    "license",
    "copyright",
    "usr",
    "share",
    "lib",
    "error",
    "warning",
    "return",
    "include",
    "function",
    "static",
    "const",
    "struct",
    "int",
    "char",
    "void",
    "if",
    "else",
    "for",
    "while",
    "option",
    "default",
    "see",
    "manual",
    "page",
    "locale",
    "zone",
    "data",
];

/// Fixed mtime so the same seed gives the same bytes (2024-01-01T00:00:00Z).
const MTIME: u64 = 1_704_067_200;

/// Counts the bytes of the uncompressed tar stream on their way into the compressor.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Generate a gzip layer whose uncompressed tar is about `target_tar_size` bytes (at least
/// one file is always written). The same `seed` always yields the same bytes.
pub fn generate_layer(target_tar_size: u64, seed: u64) -> io::Result<GeneratedLayer> {
    let mut rng = StdRng::seed_from_u64(seed);
    let out = Counting {
        inner: GzEncoder::new(Vec::new(), Compression::default()),
        count: 0,
    };
    let mut tar = tar::Builder::new(out);
    let mut files = 0usize;
    let mut dirs: Vec<String> = Vec::new();
    let mut written = 0u64;
    let mut content = Vec::new();
    while written < target_tar_size || files == 0 {
        // A new directory every ~40 files, under /usr or under an earlier one.
        if dirs.is_empty() || rng.gen_ratio(1, 40) {
            let parent = if dirs.is_empty() || rng.gen_bool(0.5) {
                String::from("usr")
            } else {
                dirs[rng.gen_range(0..dirs.len())].clone()
            };
            let dir = format!("{parent}/d{}", dirs.len());
            if dirs.is_empty() {
                append_dir(&mut tar, "usr")?;
            }
            append_dir(&mut tar, &dir)?;
            dirs.push(dir);
        }
        let dir = &dirs[rng.gen_range(0..dirs.len())];
        let path = format!("{dir}/f{files}");
        // Like a Debian rootfs (~37 KB per file on average): log-uniform between 64 B and
        // 256 KiB, and one file in a hundred between 1 and 4 MiB (libraries, archives).
        let size = if rng.gen_ratio(1, 100) {
            rng.gen_range(1 << 20..4 << 20)
        } else {
            (2f64.powf(rng.gen_range(6.0..18.0))) as usize
        };
        fill(&mut rng, &mut content, size);
        let mode = if rng.gen_bool(0.2) { 0o755 } else { 0o644 };
        let mut header = new_header(tar::EntryType::Regular, mode, size as u64);
        tar.append_data(&mut header, &path, content.as_slice())?;
        files += 1;
        // Now and then a symlink or a hardlink to the file just written.
        if rng.gen_ratio(1, 25) {
            append_link(
                &mut tar,
                tar::EntryType::Symlink,
                &format!("{path}.sym"),
                &format!("f{}", files - 1),
            )?;
        } else if rng.gen_ratio(1, 50) {
            append_link(
                &mut tar,
                tar::EntryType::Link,
                &format!("{path}.hard"),
                &path,
            )?;
        }
        written = tar.get_ref().count;
    }
    let out = tar.into_inner()?;
    let tar_size = out.count;
    let tar_gz = out.inner.finish()?;
    Ok(GeneratedLayer {
        tar_gz,
        tar_size,
        files,
    })
}

/// A header with every numeric field set (root-owned, fixed mtime), as real layers have.
fn new_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME);
    header
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let mut header = new_header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut header, path, io::empty())
}

fn append_link<W: Write>(
    tar: &mut tar::Builder<W>,
    kind: tar::EntryType,
    path: &str,
    target: &str,
) -> io::Result<()> {
    let mut header = new_header(kind, 0o777, 0);
    tar.append_link(&mut header, path, target)
}

/// Fill `buf` with `size` bytes: two thirds of files text-like, the rest binary-like
/// (random bytes with runs of zeros, as in executables).
fn fill(rng: &mut StdRng, buf: &mut Vec<u8>, size: usize) {
    buf.clear();
    if rng.gen_ratio(2, 3) {
        while buf.len() < size {
            buf.extend_from_slice(WORDS[rng.gen_range(0..WORDS.len())].as_bytes());
            buf.push(if rng.gen_ratio(1, 12) { b'\n' } else { b' ' });
        }
    } else {
        while buf.len() < size {
            let run = rng.gen_range(16..512usize);
            if rng.gen_ratio(1, 3) {
                buf.resize(buf.len() + run, 0);
            } else {
                let start = buf.len();
                buf.resize(start + run, 0);
                rng.fill(&mut buf[start..]);
            }
        }
    }
    buf.truncate(size);
}
