//! A [`BaseSource`] over extracted layer directories, as a device has them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::base::{BaseSource, ReadSeek};

type TarOpener<'t> = Box<dyn Fn(usize) -> io::Result<Box<dyn Read + 't>> + Send + Sync + 't>;

/// Base files read from extracted layer directories: `roots[layer]` is the directory
/// holding the layer's files (e.g. `<layer>/diff`). Paths never leave the root: every
/// component must be a real directory or, last, a regular file, and symlinks are
/// refused (a delta may name any path, and must not read the host through a link).
/// Layer directories are immutable once extracted, so checking then opening is safe.
pub struct DirBase<'t> {
    roots: Vec<PathBuf>,
    tars: Option<TarOpener<'t>>,
}

impl<'t> DirBase<'t> {
    pub fn new(roots: Vec<PathBuf>) -> Self {
        DirBase { roots, tars: None }
    }

    /// Adds the source of base layer tar streams for RANGE ops, e.g. a closure that
    /// rebuilds a layer's tar from its tar-split record via
    /// [`crate::reader_from_writer`].
    pub fn with_tar_streams(
        mut self,
        open: impl Fn(usize) -> io::Result<Box<dyn Read + 't>> + Send + Sync + 't,
    ) -> Self {
        self.tars = Some(Box::new(open));
        self
    }
}

impl BaseSource for DirBase<'_> {
    fn open(&self, layer: usize, path: &str) -> io::Result<Box<dyn ReadSeek + '_>> {
        let root = self
            .roots
            .get(layer)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such base layer"))?;
        let mut full = root.clone();
        let comps: Vec<&str> = path.split('/').collect();
        for (i, comp) in comps.iter().enumerate() {
            if comp.is_empty() || *comp == "." || *comp == ".." {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "path is not normalized",
                ));
            }
            full.push(comp);
            let ft = fs::symlink_metadata(&full)?.file_type();
            let last = i + 1 == comps.len();
            if ft.is_symlink() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "path goes through a symlink",
                ));
            }
            if (last && !ft.is_file()) || (!last && !ft.is_dir()) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a regular file",
                ));
            }
        }
        let f: File = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&full)?;
        Ok(Box::new(f))
    }

    fn open_tar(&self, layer: usize) -> io::Result<Box<dyn Read + '_>> {
        match &self.tars {
            Some(open) => open(layer),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no base layer tar streams were configured; create the delta with base_tar_ranges off",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_files_and_refuses_links_dirs_and_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("diff");
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        fs::write(root.join("usr/lib/x.so"), b"content").unwrap();
        fs::write(dir.path().join("secret"), b"host file").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
        let base = DirBase::new(vec![root]);

        let mut s = String::new();
        base.open(0, "usr/lib/x.so")
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "content");
        assert!(base.open(0, "link").is_err());
        assert!(base.open(0, "up/secret").is_err());
        assert!(base.open(0, "usr/../../secret").is_err());
        assert!(base.open(0, "usr/lib").is_err());
        assert_eq!(
            base.open(0, "missing").err().map(|e| e.kind()),
            Some(io::ErrorKind::NotFound)
        );
        assert!(base.open(1, "usr/lib/x.so").is_err());
        assert_eq!(
            base.open_tar(0).err().map(|e| e.kind()),
            Some(io::ErrorKind::Unsupported)
        );
    }
}
