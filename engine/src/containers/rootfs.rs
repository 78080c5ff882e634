//! The container's root filesystem: an overlay of the image's layer directories (read-only
//! lowers, top first) with a per-container `upper/` and `work/` under
//! `data-root/containers/<id>/`, mounted at `merged/`.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Error, Result};

/// The kernel copies mount options into one page.
const MAX_MOUNT_DATA: usize = 4095;

pub fn merged_dir(container_dir: &Path) -> PathBuf {
    container_dir.join("merged")
}

pub fn upper_dir(container_dir: &Path) -> PathBuf {
    container_dir.join("upper")
}

/// Mounts the overlay; `lowers` are layer diff directories, top layer first. Mounting an
/// already mounted rootfs is a no-op (a restart after a daemon crash finds it mounted).
pub fn mount_rootfs(container_dir: &Path, lowers: &[PathBuf]) -> Result<PathBuf> {
    let merged = merged_dir(container_dir);
    if is_mounted(&merged) {
        return Ok(merged);
    }
    let upper = upper_dir(container_dir);
    let work = container_dir.join("work");
    let empty = container_dir.join("empty");
    for d in [&upper, &work, &merged] {
        fs::create_dir_all(d)
            .map_err(|e| Error::io(format!("cannot create {}", d.display()), e))?;
    }
    let mut lower_list: Vec<String> = Vec::with_capacity(lowers.len().max(1));
    for l in lowers {
        let s = l
            .to_str()
            .ok_or_else(|| Error::Config(format!("layer path {} is not UTF-8", l.display())))?;
        if s.contains(':') || s.contains(',') {
            return Err(Error::Config(format!(
                "layer path {s} holds ':' or ',', which overlay options cannot carry; use a data root without them"
            )));
        }
        lower_list.push(s.to_string());
    }
    if lower_list.is_empty() {
        // an image without layers: overlay needs one lower directory
        fs::create_dir_all(&empty)
            .map_err(|e| Error::io(format!("cannot create {}", empty.display()), e))?;
        lower_list.push(empty.display().to_string());
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower_list.join(":"),
        upper.display(),
        work.display()
    );
    if data.len() > MAX_MOUNT_DATA {
        return Err(Error::Config(format!(
            "the image has too many layers ({}) for one overlay mount under {}; use a shorter data root",
            lowers.len(),
            container_dir.display()
        )));
    }
    mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| {
        Error::io(
            format!(
                "cannot mount the container's root filesystem at {}",
                merged.display()
            ),
            e.into(),
        )
    })?;
    Ok(merged)
}

/// Unmounts `merged/` if mounted (lazily when busy, so a leftover process never blocks
/// container removal).
pub fn unmount_rootfs(container_dir: &Path) -> Result<()> {
    let merged = merged_dir(container_dir);
    if !is_mounted(&merged) {
        return Ok(());
    }
    match umount2(&merged, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => umount2(&merged, MntFlags::MNT_DETACH)
            .map_err(|e| Error::io(format!("cannot unmount {}", merged.display()), e.into())),
        Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::io(
            format!("cannot unmount {}", merged.display()),
            e.into(),
        )),
    }
}

/// True when `path` is a mount point in this mount namespace.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .map(unescape_mount_path)
            .is_some_and(|p| p == want)
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(n) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Bytes allocated by the container's own changes (`SizeRw`).
pub fn upper_size(container_dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![upper_dir(container_dir)];
    while let Some(p) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(rd) = fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if meta.is_file() {
            total += meta.size();
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape_mount_path("/a\\040b"), "/a b");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
    }

    /// Needs root and overlayfs: two layers, a whiteout in the top one hides a file of the
    /// lower one, writes land in upper/ only.
    #[test]
    fn overlay_of_layers_with_a_whiteout() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        let top = dir.path().join("top");
        fs::create_dir_all(base.join("etc")).unwrap();
        fs::write(base.join("etc/gone"), "x").unwrap();
        fs::write(base.join("etc/kept"), "base").unwrap();
        fs::create_dir_all(top.join("etc")).unwrap();
        fs::write(top.join("etc/kept"), "top").unwrap();
        nix::sys::stat::mknod(
            &top.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let cdir = dir.path().join("c");
        fs::create_dir(&cdir).unwrap();
        let merged = mount_rootfs(&cdir, &[top.clone(), base.clone()]).unwrap();
        let result = std::panic::catch_unwind(|| {
            assert!(is_mounted(&merged));
            assert!(!merged.join("etc/gone").exists());
            assert_eq!(fs::read_to_string(merged.join("etc/kept")).unwrap(), "top");
            fs::write(merged.join("new"), "hello").unwrap();
        });
        // mounting twice is a no-op
        mount_rootfs(&cdir, &[top, base.clone()]).unwrap();
        unmount_rootfs(&cdir).unwrap();
        result.unwrap();
        assert!(!is_mounted(&merged));
        assert_eq!(
            fs::read_to_string(upper_dir(&cdir).join("new")).unwrap(),
            "hello"
        );
        assert!(!base.join("new").exists());
        assert!(upper_size(&cdir) >= 5);
        unmount_rootfs(&cdir).unwrap();
    }
}
