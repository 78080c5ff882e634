#![allow(dead_code)]
//! Helpers shared by the storage integration tests: tar building, compression, stores.

use std::io::Write;
use std::path::{Path, PathBuf};

use skiff_storage::{Digest, ExtractRequest, LayerInfo, Store, StoreOptions};
use tar::{Builder, EntryType, Header};

pub const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const PLAIN: &str = "application/vnd.oci.image.layer.v1.tar";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub store: Store,
}

impl Env {
    pub fn new() -> Env {
        Env::with(StoreOptions::default())
    }
    pub fn with(opts: StoreOptions) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/sentinel"), b"untouched").unwrap();
        let store = Store::open(&dir.path().join("root"), opts).unwrap();
        Env { dir, store }
    }
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    pub fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }
    pub fn reopen(self) -> Env {
        let Env { dir, store } = self;
        drop(store);
        let store = Store::open(&dir.path().join("root"), StoreOptions::default()).unwrap();
        Env { dir, store }
    }
    /// Nothing escaped, nothing left behind.
    pub fn assert_clean(&self, layers_before: usize) {
        assert_eq!(
            std::fs::read(self.outside().join("sentinel")).unwrap(),
            b"untouched"
        );
        let outside: Vec<_> = std::fs::read_dir(self.outside()).unwrap().collect();
        assert_eq!(outside.len(), 1, "a file appeared outside the store");
        assert_eq!(count(&self.root().join("tmp")), 0, "staging left behind");
        assert_eq!(
            count(&self.root().join("layers/sha256")),
            layers_before,
            "a layer appeared"
        );
    }
    pub fn extract(
        &self,
        media: &str,
        blob: &[u8],
        parent: Option<&Digest>,
    ) -> skiff_storage::Result<LayerInfo> {
        let diff = Digest::of(&decompress(media, blob));
        let bd = Digest::of(blob);
        self.store.extract_layer(
            ExtractRequest {
                parent,
                media_type: Some(media),
                expected_blob: Some(&bd),
                expected_diff_id: Some(&diff),
                ..Default::default()
            },
            &mut &blob[..],
        )
    }
    /// Extract without expected digests (the stream is judged on its own).
    pub fn extract_unchecked(
        &self,
        media: Option<&str>,
        blob: &[u8],
    ) -> skiff_storage::Result<LayerInfo> {
        self.store.extract_layer(
            ExtractRequest {
                media_type: media,
                ..Default::default()
            },
            &mut &blob[..],
        )
    }
}

pub fn count(p: &Path) -> usize {
    std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0)
}

pub fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

pub fn zstd(b: &[u8]) -> Vec<u8> {
    zstd::encode_all(b, 3).unwrap()
}

pub fn compress(media: &str, b: &[u8]) -> Vec<u8> {
    match media {
        GZIP => gzip(b),
        ZSTD => zstd(b),
        _ => b.to_vec(),
    }
}

pub fn decompress(media: &str, b: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    match media {
        GZIP => {
            flate2::read::MultiGzDecoder::new(b)
                .read_to_end(&mut out)
                .unwrap();
        }
        ZSTD => out = zstd::decode_all(b).unwrap(),
        _ => out = b.to_vec(),
    }
    out
}

pub fn header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(1000);
    h.set_gid(1001);
    h.set_mtime(1_600_000_000);
    h
}

pub fn file(b: &mut Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = header(EntryType::Regular, 0o644, data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

pub fn dir(b: &mut Builder<Vec<u8>>, path: &str) {
    let mut h = header(EntryType::Directory, 0o755, 0);
    b.append_data(&mut h, path, &[][..]).unwrap();
}

pub fn symlink(b: &mut Builder<Vec<u8>>, path: &str, target: &str) {
    let mut h = header(EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, path, target).unwrap();
}

/// An entry with its name (and link name) written verbatim, bypassing the tar crate's path
/// checks: for malicious inputs.
pub fn raw(b: &mut Builder<Vec<u8>>, kind: EntryType, name: &[u8], link: &[u8], data: &[u8]) {
    let mut h = header(kind, 0o644, data.len() as u64);
    let old = h.as_old_mut();
    old.name = [0; 100];
    old.name[..name.len()].copy_from_slice(name);
    old.linkname = [0; 100];
    old.linkname[..link.len()].copy_from_slice(link);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

pub fn finish(b: Builder<Vec<u8>>) -> Vec<u8> {
    b.into_inner().unwrap()
}

pub fn layer_tar(env: &Env, chain: &Digest) -> Vec<u8> {
    let mut out = Vec::new();
    env.store.write_layer_tar(chain, &mut out).unwrap();
    out
}

pub fn lstat(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap()
}

pub fn xattr(p: &Path, key: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let key = std::ffi::CString::new(key).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a writable buffer of the given length.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            key.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}
