//! Applies parsed tar entries to a layer's `diff/` directory, never leaving it: parents are
//! resolved with openat2(RESOLVE_BENEATH), the last component is created with *at syscalls
//! and O_NOFOLLOW, and anything already there is removed (not written through) first.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmodat, fstatat, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::beneath::{open_beneath, open_dir, open_dir_beneath, own, set_xattr};
use crate::error::{Error, Result};
use crate::tarsplit::TarSplitWriter;

/// Entry paths longer than PATH_MAX are refused; this also bounds directory depth (and so
/// the recursion when a directory tree is replaced).
pub(crate) const MAX_PATH: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink(Vec<u8>),
    Hardlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

#[derive(Debug, Clone)]
pub(crate) struct Meta {
    /// Normalized path relative to the layer root; empty means the root itself.
    pub path: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, u32),
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(crate) fn shown(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn unsafe_path(p: &[u8], reason: &str) -> Error {
    Error::UnsafePath {
        path: shown(p),
        reason: reason.to_string(),
    }
}

/// Normalize a tar path: drop `.` and empty components, refuse absolute paths and `..`.
pub(crate) fn normalize(raw: &[u8]) -> Result<Vec<u8>> {
    if raw.first() == Some(&b'/') {
        return Err(unsafe_path(raw, "absolute paths are not allowed in layers"));
    }
    if raw.contains(&0) {
        return Err(unsafe_path(raw, "NUL byte in path"));
    }
    let mut out = Vec::with_capacity(raw.len());
    for c in raw.split(|b| *b == b'/') {
        if c.is_empty() || c == b"." {
            continue;
        }
        if c == b".." {
            return Err(unsafe_path(
                raw,
                "'..' components are not allowed in layers",
            ));
        }
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(c);
    }
    if out.len() > MAX_PATH {
        return Err(Error::InvalidLayer(format!(
            "path longer than {MAX_PATH} bytes: {:?}...",
            shown(&out[..64])
        )));
    }
    Ok(out)
}

pub(crate) fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

fn is_under(path: &[u8], prefix: &[u8]) -> bool {
    path.starts_with(prefix) && (path.len() == prefix.len() || path[prefix.len()] == b'/')
}

pub(crate) struct Extractor {
    layer_fd: OwnedFd,
    root: OwnedFd,
    pub(crate) split: TarSplitWriter,
    /// The last parent directory used: consecutive entries nearly always share it. An op only
    /// changes children of its parent, so the cached handle never goes stale.
    cache: Option<(Vec<u8>, OwnedFd)>,
    /// Regular files whose content the tar-split record reads back: path -> (ordinal, inode).
    recorded: BTreeMap<Vec<u8>, (u64, u64)>,
    by_ino: HashMap<u64, Vec<u8>>,
    shadow: Option<OwnedFd>,
    shadow_count: u64,
    /// A symlink was replaced: recorded paths resolved through it must be re-verified.
    aliases_changed: bool,
    dir_times: Vec<(Vec<u8>, (i64, u32))>,
    /// Sum of regular file sizes (the layer's content size).
    pub(crate) content_bytes: u64,
}

impl Extractor {
    /// `layer_dir` is the staging directory; `diff/` is created inside it.
    pub(crate) fn new(layer_dir: &Path, split: TarSplitWriter) -> Result<Extractor> {
        let layer_fd = open_dir(layer_dir)
            .map_err(|e| Error::nix(format!("open {}", layer_dir.display()), e))?;
        mkdirat(
            Some(layer_fd.as_raw_fd()),
            "diff",
            Mode::from_bits_truncate(0o755),
        )
        .map_err(|e| Error::nix("create diff directory", e))?;
        let root = open_beneath(&layer_fd, b"diff", OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(|e| Error::nix("open diff directory", e))?;
        Ok(Extractor {
            layer_fd,
            root,
            split,
            cache: None,
            recorded: BTreeMap::new(),
            by_ino: HashMap::new(),
            shadow: None,
            shadow_count: 0,
            aliases_changed: false,
            dir_times: Vec::new(),
            content_bytes: 0,
        })
    }

    fn resolve_err(&self, path: &[u8], e: Errno) -> Error {
        match e {
            Errno::EXDEV | Errno::ELOOP => unsafe_path(
                path,
                "its parent resolves outside the layer (symlink escape)",
            ),
            Errno::ENOTDIR => {
                Error::InvalidLayer(format!("parent of {:?} is not a directory", shown(path)))
            }
            e => Error::nix(format!("resolve parent of {:?}", shown(path)), e),
        }
    }

    /// Open the parent directory `parent` beneath the root, creating missing directories
    /// (mode 0755, as tar does for implied parents).
    fn take_parent(&mut self, parent: &[u8], entry: &[u8]) -> Result<OwnedFd> {
        if let Some((p, _)) = &self.cache {
            if p == parent {
                if let Some((_, fd)) = self.cache.take() {
                    return Ok(fd);
                }
            }
        }
        match open_dir_beneath(&self.root, parent) {
            Ok(fd) => Ok(fd),
            Err(Errno::ENOENT) => self.mkdir_parents(parent, entry),
            Err(e) => Err(self.resolve_err(entry, e)),
        }
    }

    fn mkdir_parents(&mut self, parent: &[u8], entry: &[u8]) -> Result<OwnedFd> {
        let mut cur = open_dir_beneath(&self.root, b"").map_err(|e| self.resolve_err(entry, e))?;
        let mut end = 0;
        let comps: Vec<&[u8]> = parent.split(|b| *b == b'/').collect();
        for comp in comps {
            end += if end == 0 { comp.len() } else { comp.len() + 1 };
            let prefix = &parent[..end];
            cur = match open_dir_beneath(&self.root, prefix) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match mkdirat(Some(cur.as_raw_fd()), comp, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(Error::nix(format!("create {:?}", shown(prefix)), e)),
                    }
                    open_dir_beneath(&self.root, prefix).map_err(|e| match e {
                        Errno::ENOENT => Error::InvalidLayer(format!(
                            "{:?} is a symlink to a missing directory, so {:?} cannot be created",
                            shown(prefix),
                            shown(entry)
                        )),
                        e => self.resolve_err(entry, e),
                    })?
                }
                Err(e) => return Err(self.resolve_err(entry, e)),
            };
        }
        Ok(cur)
    }

    fn put_parent(&mut self, parent: &[u8], fd: OwnedFd) {
        self.cache = Some((parent.to_vec(), fd));
    }

    /// Create a regular file for `m`; the caller writes its content then calls `finish_file`.
    pub(crate) fn create_file(&mut self, m: &Meta, size: u64) -> Result<File> {
        let (parent, name) = split_parent(&m.path);
        let pfd = self.take_parent(parent, &m.path)?;
        let r = (|| {
            self.remove_existing(&pfd, name, &m.path, false)?;
            let fd = openat(
                Some(pfd.as_raw_fd()),
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(|e| Error::nix(format!("create {:?}", shown(&m.path)), e))?;
            let f = File::from(own(fd));
            if size > 0 {
                let ino = f
                    .metadata()
                    .map(|md| std::os::unix::fs::MetadataExt::ino(&md))
                    .map_err(|e| Error::io(format!("stat {:?}", shown(&m.path)), e))?;
                let ordinal = self.split.file(&m.path, size)?;
                self.recorded.insert(m.path.clone(), (ordinal, ino));
                self.by_ino.insert(ino, m.path.clone());
                self.content_bytes += size;
            }
            Ok(f)
        })();
        self.put_parent(parent, pfd);
        r
    }

    pub(crate) fn finish_file(&mut self, f: File, m: &Meta) -> Result<()> {
        let fd = f.as_raw_fd();
        let ctx = || format!("set metadata of {:?}", shown(&m.path));
        nix::unistd::fchown(fd, Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)))
            .map_err(|e| Error::nix(ctx(), e))?;
        nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(m.mode & 0o7777))
            .map_err(|e| Error::nix(ctx(), e))?;
        let (parent, name) = split_parent(&m.path);
        if !m.xattrs.is_empty() {
            let pfd = self.take_parent(parent, &m.path)?;
            let r = apply_xattrs(&pfd, name, m);
            self.put_parent(parent, pfd);
            r?;
        }
        let t = timespec(m.mtime);
        nix::sys::stat::futimens(fd, &t, &t).map_err(|e| Error::nix(ctx(), e))?;
        Ok(())
    }

    /// Everything except regular files.
    pub(crate) fn apply(&mut self, m: &Meta) -> Result<()> {
        if m.path.is_empty() {
            return match m.kind {
                // the root entry ("./"): apply its metadata to diff/ itself
                Kind::Dir => self.apply_root(m),
                _ => Err(Error::InvalidLayer(
                    "the layer root must be a directory".into(),
                )),
            };
        }
        let (parent, name) = split_parent(&m.path);
        let pfd = self.take_parent(parent, &m.path)?;
        let r = self.apply_in(&pfd, name, m);
        self.put_parent(parent, pfd);
        r
    }

    fn apply_root(&mut self, m: &Meta) -> Result<()> {
        let fd = self.root.as_raw_fd();
        let ctx = || "set metadata of the layer root".to_string();
        nix::unistd::fchown(fd, Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)))
            .map_err(|e| Error::nix(ctx(), e))?;
        nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(m.mode & 0o7777))
            .map_err(|e| Error::nix(ctx(), e))?;
        let dot = open_dir_beneath(&self.root, b"").map_err(|e| Error::nix(ctx(), e))?;
        apply_xattrs(&dot, b".", m)?;
        self.dir_times.push((Vec::new(), m.mtime));
        Ok(())
    }

    fn apply_in(&mut self, pfd: &OwnedFd, name: &[u8], m: &Meta) -> Result<()> {
        let dirfd = Some(pfd.as_raw_fd());
        let ctx = || format!("create {:?}", shown(&m.path));
        let perm = Mode::from_bits_truncate(m.mode & 0o7777);
        match &m.kind {
            Kind::Dir => {
                if !self.remove_existing(pfd, name, &m.path, true)? {
                    mkdirat(dirfd, name, Mode::from_bits_truncate(0o700))
                        .map_err(|e| Error::nix(ctx(), e))?;
                }
            }
            Kind::Symlink(target) => {
                self.remove_existing(pfd, name, &m.path, false)?;
                symlinkat(target.as_slice(), dirfd, name).map_err(|e| Error::nix(ctx(), e))?;
            }
            Kind::Hardlink(target) => {
                self.remove_existing(pfd, name, &m.path, false)?;
                return self.hardlink(pfd, name, target, &m.path);
            }
            Kind::Char(maj, min) | Kind::Block(maj, min) => {
                self.remove_existing(pfd, name, &m.path, false)?;
                let kind = if matches!(m.kind, Kind::Char(..)) {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                mknodat(dirfd, name, kind, perm, libc::makedev(*maj, *min))
                    .map_err(|e| Error::nix(ctx(), e))?;
            }
            Kind::Fifo => {
                self.remove_existing(pfd, name, &m.path, false)?;
                mknodat(dirfd, name, SFlag::S_IFIFO, perm, 0).map_err(|e| Error::nix(ctx(), e))?;
            }
            Kind::File => {
                return Err(Error::InvalidArgument(
                    "regular files go through create_file".into(),
                ))
            }
        }
        let mctx = || format!("set metadata of {:?}", shown(&m.path));
        fchownat(
            dirfd,
            name,
            Some(Uid::from_raw(m.uid)),
            Some(Gid::from_raw(m.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::nix(mctx(), e))?;
        if !matches!(m.kind, Kind::Symlink(_)) {
            // chmod after chown: chown clears setuid/setgid bits. The name was created by us
            // just now (not a symlink), so following is harmless here.
            fchmodat(dirfd, name, perm, FchmodatFlags::FollowSymlink)
                .map_err(|e| Error::nix(mctx(), e))?;
        }
        apply_xattrs(pfd, name, m)?;
        if matches!(m.kind, Kind::Dir) {
            // set after the children are in place, or creating them would bump it
            self.dir_times.push((m.path.clone(), m.mtime));
        } else {
            let t = timespec(m.mtime);
            utimensat(dirfd, name, &t, &t, UtimensatFlags::NoFollowSymlink)
                .map_err(|e| Error::nix(mctx(), e))?;
        }
        Ok(())
    }

    fn hardlink(&mut self, pfd: &OwnedFd, name: &[u8], target: &[u8], path: &[u8]) -> Result<()> {
        if target.is_empty() {
            return Err(unsafe_path(path, "hardlink to the layer root"));
        }
        let (tparent, tname) = split_parent(target);
        let tfd = match open_dir_beneath(&self.root, tparent) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                return Err(Error::InvalidLayer(format!(
                    "hardlink {:?} points to missing {:?}",
                    shown(path),
                    shown(target)
                )))
            }
            Err(e) => return Err(self.resolve_err(target, e)),
        };
        match linkat(Some(tfd.as_raw_fd()), tname, Some(pfd.as_raw_fd()), name, AtFlags::empty()) {
            Ok(()) => Ok(()),
            Err(Errno::ENOENT) => Err(Error::InvalidLayer(format!(
                "hardlink {:?} points to missing {:?}; a hardlink target must come earlier in the same layer",
                shown(path),
                shown(target)
            ))),
            Err(Errno::EPERM) => Err(Error::InvalidLayer(format!(
                "hardlink {:?} points to a directory {:?}",
                shown(path),
                shown(target)
            ))),
            Err(e) => Err(Error::nix(format!("link {:?}", shown(path)), e)),
        }
    }

    /// `.wh.NAME` in `dir`: an overlay whiteout (char device 0:0) named NAME.
    pub(crate) fn whiteout(&mut self, m: &Meta, name: &[u8]) -> Result<()> {
        let (parent, _) = split_parent(&m.path);
        let pfd = self.take_parent(parent, &m.path)?;
        let r = (|| {
            let mut full = parent.to_vec();
            if !full.is_empty() {
                full.push(b'/');
            }
            full.extend_from_slice(name);
            self.remove_existing(&pfd, name, &full, false)?;
            let dirfd = Some(pfd.as_raw_fd());
            mknodat(
                dirfd,
                name,
                SFlag::S_IFCHR,
                Mode::empty(),
                libc::makedev(0, 0),
            )
            .map_err(|e| Error::nix(format!("create whiteout {:?}", shown(&full)), e))?;
            fchownat(
                dirfd,
                name,
                Some(Uid::from_raw(m.uid)),
                Some(Gid::from_raw(m.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| Error::nix(format!("chown whiteout {:?}", shown(&full)), e))
        })();
        self.put_parent(parent, pfd);
        r
    }

    /// `.wh..wh..opq` in `dir`: mark the directory opaque for overlayfs.
    pub(crate) fn opaque(&mut self, m: &Meta) -> Result<()> {
        let (parent, _) = split_parent(&m.path);
        let pfd = self.take_parent(parent, &m.path)?;
        let r = set_xattr(&pfd, b".", b"trusted.overlay.opaque", b"y")
            .map_err(|e| Error::nix(format!("mark {:?} opaque", shown(parent)), e));
        self.put_parent(parent, pfd);
        r
    }

    /// Remove whatever is at `name` so a new entry can be created there; a directory stays
    /// when the new entry is a directory too (returns true then). Content the tar-split record
    /// still needs is moved aside rather than deleted.
    fn remove_existing(
        &mut self,
        pfd: &OwnedFd,
        name: &[u8],
        path: &[u8],
        keep_dir: bool,
    ) -> Result<bool> {
        let st = match fstatat(Some(pfd.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(Error::nix(format!("stat {:?}", shown(path)), e)),
        };
        let fmt = st.st_mode & libc::S_IFMT;
        if fmt == libc::S_IFDIR && keep_dir {
            return Ok(true);
        }
        if fmt == libc::S_IFDIR || fmt == libc::S_IFLNK {
            if fmt == libc::S_IFLNK {
                self.aliases_changed = true;
            }
            self.shadow_recorded_under(path)?;
        }
        if fmt == libc::S_IFDIR {
            self.remove_tree(pfd.as_raw_fd(), name, path)?;
        } else if fmt == libc::S_IFREG && self.by_ino.contains_key(&st.st_ino) {
            self.shadow_file(pfd.as_raw_fd(), name, st.st_ino)?;
        } else {
            unlinkat(Some(pfd.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| Error::nix(format!("remove {:?}", shown(path)), e))?;
        }
        Ok(false)
    }

    /// Recorded files reached through `prefix` (a directory or symlink about to go). A file
    /// physically inside `prefix` is moved aside by the removal walk; one that was only reached
    /// through a symlink stays where it is, and the record learns its real path.
    fn shadow_recorded_under(&mut self, prefix: &[u8]) -> Result<()> {
        let hits: Vec<(Vec<u8>, u64, u64)> = self
            .recorded
            .range(prefix.to_vec()..)
            .take_while(|(p, _)| p.starts_with(prefix))
            .filter(|(p, _)| is_under(p, prefix))
            .map(|(p, (ord, ino))| (p.clone(), *ord, *ino))
            .collect();
        for (p, ordinal, ino) in hits {
            let real = self.real_path(&p, ino)?;
            if is_under(&real, prefix) || real == p {
                continue;
            }
            self.recorded.remove(&p);
            self.recorded.insert(real.clone(), (ordinal, ino));
            self.by_ino.insert(ino, real.clone());
            let mut name = b"diff/".to_vec();
            name.extend_from_slice(&real);
            self.split.moved(ordinal, name);
        }
        Ok(())
    }

    /// Where the recorded file `p` (inode `ino`) really is, relative to the layer root.
    fn real_path(&self, p: &[u8], ino: u64) -> Result<Vec<u8>> {
        let fd = open_beneath(&self.root, p, OFlag::O_PATH | OFlag::O_NOFOLLOW)
            .map_err(|_| self.lost(p))?;
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|_| self.lost(p))?;
        if st.st_ino != ino {
            return Err(self.lost(p));
        }
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(|e| Error::io(format!("locate {:?}", shown(p)), e))?;
        let root = std::fs::read_link(format!("/proc/self/fd/{}", self.root.as_raw_fd()))
            .map_err(|e| Error::io("locate the layer root", e))?;
        let rel = link.strip_prefix(&root).map_err(|_| self.lost(p))?;
        Ok(rel.as_os_str().as_encoded_bytes().to_vec())
    }

    fn lost(&self, p: &[u8]) -> Error {
        Error::InvalidLayer(format!(
            "the content of {:?} was replaced through a symlink alias; skiff cannot record this layer exactly",
            shown(p)
        ))
    }

    fn remove_tree(&mut self, dirfd: RawFd, name: &[u8], path: &[u8]) -> Result<()> {
        let ctx = || format!("remove {:?}", shown(path));
        let dfd = own(openat(
            Some(dirfd),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::nix(ctx(), e))?);
        let dup = nix::unistd::dup(dfd.as_raw_fd()).map_err(|e| Error::nix(ctx(), e))?;
        let mut dir = nix::dir::Dir::from_fd(dup).map_err(|e| Error::nix(ctx(), e))?;
        let mut names = Vec::new();
        for ent in dir.iter() {
            let ent = ent.map_err(|e| Error::nix(ctx(), e))?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(n.to_vec());
            }
        }
        drop(dir);
        for n in names {
            let st = fstatat(
                Some(dfd.as_raw_fd()),
                n.as_slice(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| Error::nix(ctx(), e))?;
            let fmt = st.st_mode & libc::S_IFMT;
            if fmt == libc::S_IFDIR {
                let mut sub = path.to_vec();
                sub.push(b'/');
                sub.extend_from_slice(&n);
                self.remove_tree(dfd.as_raw_fd(), &n, &sub)?;
            } else if fmt == libc::S_IFREG && self.by_ino.contains_key(&st.st_ino) {
                self.shadow_file(dfd.as_raw_fd(), &n, st.st_ino)?;
            } else {
                unlinkat(
                    Some(dfd.as_raw_fd()),
                    n.as_slice(),
                    UnlinkatFlags::NoRemoveDir,
                )
                .map_err(|e| Error::nix(ctx(), e))?;
            }
        }
        unlinkat(Some(dirfd), name, UnlinkatFlags::RemoveDir).map_err(|e| Error::nix(ctx(), e))
    }

    fn shadow_file(&mut self, dirfd: RawFd, name: &[u8], ino: u64) -> Result<()> {
        if self.shadow.is_none() {
            mkdirat(
                Some(self.layer_fd.as_raw_fd()),
                "shadow",
                Mode::from_bits_truncate(0o700),
            )
            .map_err(|e| Error::nix("create shadow directory", e))?;
            let fd = open_beneath(
                &self.layer_fd,
                b"shadow",
                OFlag::O_PATH | OFlag::O_DIRECTORY,
            )
            .map_err(|e| Error::nix("open shadow directory", e))?;
            self.shadow = Some(fd);
        }
        let Some(shadow) = &self.shadow else {
            return Err(Error::InvalidArgument("shadow directory missing".into()));
        };
        let sname = self.shadow_count.to_string();
        self.shadow_count += 1;
        renameat(Some(dirfd), name, Some(shadow.as_raw_fd()), sname.as_str())
            .map_err(|e| Error::nix("move replaced file aside", e))?;
        if let Some(path) = self.by_ino.remove(&ino) {
            if let Some((ordinal, _)) = self.recorded.remove(&path) {
                self.split
                    .moved(ordinal, format!("shadow/{sname}").into_bytes());
            }
        }
        Ok(())
    }

    /// Apply deferred directory times, verify recorded paths if symlinks changed under them,
    /// and close the tar-split record.
    pub(crate) fn finish(mut self) -> Result<u64> {
        for (path, mtime) in std::mem::take(&mut self.dir_times) {
            let t = timespec(mtime);
            if path.is_empty() {
                nix::sys::stat::futimens(self.root.as_raw_fd(), &t, &t)
                    .map_err(|e| Error::nix("set layer root time", e))?;
                continue;
            }
            let (parent, name) = split_parent(&path);
            // the directory may have been replaced by a later entry: then its time is moot
            let Ok(pfd) = open_dir_beneath(&self.root, parent) else {
                continue;
            };
            match fstatat(Some(pfd.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                    utimensat(
                        Some(pfd.as_raw_fd()),
                        name,
                        &t,
                        &t,
                        UtimensatFlags::NoFollowSymlink,
                    )
                    .map_err(|e| Error::nix(format!("set time of {:?}", shown(&path)), e))?;
                }
                _ => continue,
            }
        }
        if self.aliases_changed {
            for (p, (_, ino)) in &self.recorded {
                let ok = open_beneath(&self.root, p, OFlag::O_PATH | OFlag::O_NOFOLLOW)
                    .ok()
                    .and_then(|fd| nix::sys::stat::fstat(fd.as_raw_fd()).ok())
                    .is_some_and(|st| st.st_ino == *ino);
                if !ok {
                    return Err(self.lost(p));
                }
            }
        }
        let bytes = self.content_bytes;
        self.split.finish()?;
        Ok(bytes)
    }
}

fn apply_xattrs(pfd: &OwnedFd, name: &[u8], m: &Meta) -> Result<()> {
    for (k, v) in &m.xattrs {
        // overlay's own attributes steer the mount (redirects, opacity): a layer may not set them
        if k.starts_with(b"trusted.overlay.") {
            continue;
        }
        let key = String::from_utf8_lossy(k);
        match set_xattr(pfd, name, k, v) {
            Ok(()) => {}
            // as dockerd: a filesystem or file type without support for this namespace (e.g.
            // user.* on a symlink) loses the attribute with a warning, not the whole layer
            Err(e @ (Errno::ENOTSUP | Errno::EPERM)) => {
                tracing::warn!(path = %shown(&m.path), %key, error = %e, "xattr not kept");
            }
            Err(e) => {
                return Err(Error::nix(
                    format!("set xattr {key} on {:?}", shown(&m.path)),
                    e,
                ))
            }
        }
    }
    Ok(())
}

fn timespec((sec, nsec): (i64, u32)) -> TimeSpec {
    TimeSpec::new(sec, nsec as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize(b"./a//b/./c/").unwrap(), b"a/b/c");
        assert_eq!(normalize(b"./").unwrap(), b"");
        assert!(normalize(b"/etc/passwd").is_err());
        assert!(normalize(b"a/../../b").is_err());
        assert!(normalize(b"..").is_err());
        assert!(normalize(b"a\0b").is_err());
        assert!(normalize(&vec![b'a'; MAX_PATH + 1]).is_err());
    }

    #[test]
    fn prefix_match_is_component_wise() {
        assert!(is_under(b"a/b", b"a"));
        assert!(is_under(b"a", b"a"));
        assert!(!is_under(b"ab", b"a"));
        assert_eq!(split_parent(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_parent(b"c"), (&b""[..], &b"c"[..]));
    }
}
