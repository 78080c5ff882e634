//! The base index and how a target file finds its base file: same content (anywhere),
//! else the same path, else a likely sibling (same path or file name once version
//! numbers are masked, e.g. `libfoo.so.1.2` -> `libfoo.so.1.3`, `python3.11/` ->
//! `python3.12/`), closest in size.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

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
    layers: usize,
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
    /// Indexes every base layer (bottom to top, whole tars in memory).
    pub fn build(base_layers: &[Vec<u8>]) -> BaseIndex {
        let mut idx = BaseIndex {
            files: Vec::new(),
            layers: base_layers.len(),
            by_path: HashMap::new(),
            by_hash: HashMap::new(),
            by_masked_path: HashMap::new(),
            by_masked_name: HashMap::new(),
        };
        for (layer, bytes) in base_layers.iter().enumerate() {
            let mut scan = Scanner::new(bytes.as_slice());
            scan.others = Some(Vec::new());
            // Only the last entry of a path in a layer exists once the layer is extracted.
            let mut last: HashMap<String, usize> = HashMap::new();
            let mut layer_files: Vec<BaseFile> = Vec::new();
            let mut seq = 0usize;
            // Reading a slice cannot fail; a malformed tail just ends the scan.
            while let Ok(head) = scan.next_file(None) {
                for p in scan.others.as_mut().map(std::mem::take).unwrap_or_default() {
                    seq += 1;
                    last.insert(p, seq);
                }
                let Some(head) = head else { break };
                let Some(content) = slice(bytes, head.offset, head.size) else {
                    break;
                };
                let Some(path) = head.path else { continue };
                seq += 1;
                last.insert(path.clone(), seq);
                layer_files.push(BaseFile {
                    layer,
                    path,
                    offset: head.offset,
                    size: head.size,
                    sha256: Sha256::digest(content).into(),
                    seq,
                });
            }
            for f in layer_files {
                if last.get(&f.path) == Some(&f.seq) {
                    idx.add(f);
                }
            }
        }
        idx
    }

    pub fn layers(&self) -> usize {
        self.layers
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

/// `bytes[offset..offset+len]` if it is all there.
pub(crate) fn slice(bytes: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    bytes.get(start..end)
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
