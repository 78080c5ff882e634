//! The base index and how a target file finds its base file: same content (anywhere),
//! else the same path, else a likely sibling (same path or file name once version
//! numbers are masked, e.g. `libfoo.so.1.2` -> `libfoo.so.1.3`, `python3.11/` ->
//! `python3.12/`), closest in size.

use std::collections::HashMap;
use std::io::SeekFrom;

use sha2::{Digest, Sha256};

use crate::base::ReadSeek;
use crate::create::HashingReader;
use crate::error::{DeltaError, Result};
use crate::tarscan::Scanner;

/// A regular file of a base layer.
#[derive(Debug, Clone)]
pub(crate) struct BaseFile {
    pub layer: usize,
    pub path: String,
    pub offset: u64,
    pub size: u64,
    pub sha256: [u8; 32],
    /// Order of the entry within its layer.
    seq: usize,
}

pub(crate) struct BaseIndex {
    pub files: Vec<BaseFile>,
    by_path: HashMap<String, usize>,
    by_hash: HashMap<[u8; 32], usize>,
    by_masked_path: HashMap<String, Vec<usize>>,
    by_masked_name: HashMap<String, Vec<usize>>,
}

/// What to do with one target file before trying encodings.
pub(crate) enum Match {
    /// Identical content: copy this base file.
    Same(usize),
    /// A related base file to diff against.
    Related(usize),
    None,
}

impl BaseIndex {
    /// Scans every base layer (bottom to top); returns the index and each layer's diff_id.
    pub fn build(base_layers: &mut [&mut dyn ReadSeek]) -> Result<(BaseIndex, Vec<[u8; 32]>)> {
        let mut idx = BaseIndex {
            files: Vec::new(),
            by_path: HashMap::new(),
            by_hash: HashMap::new(),
            by_masked_path: HashMap::new(),
            by_masked_name: HashMap::new(),
        };
        let mut diff_ids = Vec::with_capacity(base_layers.len());
        let mut chunk = vec![0u8; 256 * 1024];
        for (layer, r) in base_layers.iter_mut().enumerate() {
            r.seek(SeekFrom::Start(0))
                .map_err(DeltaError::io("rewinding a base layer"))?;
            let bad = |e: std::io::Error| {
                DeltaError::InvalidInput(format!("cannot read base layer {layer}: {e}"))
            };
            let mut hashing = HashingReader {
                inner: &mut **r,
                hasher: Sha256::new(),
                count: 0,
            };
            let mut scan = Scanner::new(&mut hashing);
            scan.others = Some(Vec::new());
            // Only the last entry of a path in a layer exists once the layer is extracted.
            let mut last: HashMap<String, usize> = HashMap::new();
            let mut layer_files: Vec<BaseFile> = Vec::new();
            let mut seq = 0usize;
            loop {
                let head = scan.next_file(None).map_err(bad)?;
                for p in scan.others.as_mut().map(std::mem::take).unwrap_or_default() {
                    seq += 1;
                    last.insert(p, seq);
                }
                let Some(head) = head else { break };
                let mut h = Sha256::new();
                let mut got = 0u64;
                loop {
                    let n = scan.read_content(&mut chunk).map_err(bad)?;
                    if n == 0 {
                        break;
                    }
                    h.update(&chunk[..n]);
                    got += n as u64;
                }
                let Some(path) = head.path else { continue };
                if got != head.size {
                    continue;
                }
                seq += 1;
                last.insert(path.clone(), seq);
                layer_files.push(BaseFile {
                    layer,
                    path,
                    offset: head.offset,
                    size: head.size,
                    sha256: h.finalize().into(),
                    seq,
                });
            }
            for f in layer_files {
                if last.get(&f.path) == Some(&f.seq) {
                    idx.add(f);
                }
            }
            // Drain whatever follows the archive so the diff_id covers the whole stream.
            std::io::copy(&mut hashing, &mut std::io::sink()).map_err(bad)?;
            diff_ids.push(hashing.hasher.finalize().into());
        }
        Ok((idx, diff_ids))
    }

    fn add(&mut self, f: BaseFile) {
        let i = self.files.len();
        // Later (upper) layers win for path and content lookups.
        self.by_path.insert(f.path.clone(), i);
        self.by_hash.insert(f.sha256, i);
        self.by_masked_path
            .entry(mask_digits(&f.path))
            .or_default()
            .push(i);
        self.by_masked_name
            .entry(mask_digits(file_name(&f.path)))
            .or_default()
            .push(i);
        self.files.push(f);
    }

    pub fn find(&self, path: Option<&str>, data: &[u8]) -> Match {
        let hash: [u8; 32] = Sha256::digest(data).into();
        let same_path = path.and_then(|p| self.by_path.get(p).copied());
        if let Some(i) = same_path {
            if self.files[i].sha256 == hash {
                return Match::Same(i);
            }
        }
        if let Some(&i) = self.by_hash.get(&hash) {
            return Match::Same(i);
        }
        if let Some(i) = same_path {
            return Match::Related(i);
        }
        let Some(path) = path else { return Match::None };
        let size = data.len() as u64;
        if let Some(c) = self.by_masked_path.get(&mask_digits(path)) {
            if let Some(i) = self.closest(c, size, u64::MAX) {
                return Match::Related(i);
            }
        }
        if let Some(c) = self.by_masked_name.get(&mask_digits(file_name(path))) {
            // A file moved to another directory: only trust it if the sizes are close.
            if let Some(i) = self.closest(c, size, 2) {
                return Match::Related(i);
            }
        }
        Match::None
    }

    /// The candidate closest in size, if within `max_ratio` of `size`.
    fn closest(&self, candidates: &[usize], size: u64, max_ratio: u64) -> Option<usize> {
        candidates
            .iter()
            .copied()
            .filter(|&i| {
                let s = self.files[i].size;
                s.saturating_mul(max_ratio) >= size && size.saturating_mul(max_ratio) >= s
            })
            .min_by_key(|&i| (self.files[i].size.abs_diff(size), std::cmp::Reverse(i)))
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Replaces each run of ASCII digits with `#`.
pub(crate) fn mask_digits(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_digits = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_version_numbers() {
        assert_eq!(
            mask_digits("usr/lib/libfoo.so.1.2"),
            mask_digits("usr/lib/libfoo.so.1.13")
        );
        assert_ne!(mask_digits("libfoo.so"), mask_digits("libbar.so"));
        assert_eq!(mask_digits("python3.11/x"), "python#.#/x");
    }
}
