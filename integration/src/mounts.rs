//! Unmounting whatever a daemon left mounted under its roots (overlay rootfs, volumes).

use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};

/// Mount points at or below `root`, deepest first, from /proc/self/mountinfo.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(root))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Lazily detaches every mount under `root` (like `umount -R -l`); returns what failed.
pub fn unmount_under(root: &Path) -> Vec<(PathBuf, nix::Error)> {
    let mut failed = Vec::new();
    for m in mounts_under(root) {
        if let Err(e) = umount2(&m, MntFlags::MNT_DETACH) {
            // EINVAL: already gone (a parent's detach took it along)
            if e != nix::Error::EINVAL && e != nix::Error::ENOENT {
                failed.push((m, e));
            }
        }
    }
    failed
}

/// mountinfo escapes space, tab, newline and backslash as \ooo octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        if let (b'\\', Some(v)) = (b[i], octal) {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_octal_sequences() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape(r"/x\134y"), r"/x\y");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape(r"/trailing\04"), r"/trailing\04");
    }

    #[test]
    fn finds_and_detaches_mounts_deepest_first() {
        let dir = tempfile::tempdir().unwrap();
        let outer = dir.path().join("outer dir");
        let inner = outer.join("inner");
        std::fs::create_dir_all(&outer).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &outer,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        std::fs::create_dir(&inner).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &inner,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        assert_eq!(mounts_under(dir.path()), vec![inner.clone(), outer.clone()]);
        assert!(unmount_under(dir.path()).is_empty());
        assert!(mounts_under(dir.path()).is_empty());
    }
}
