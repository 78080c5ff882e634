//! Devices: Docker's device cgroup defaults, HostConfig.Devices ("/dev/x:/dev/y:rwm", a
//! directory maps every device below it) and privileged containers (every host device).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};

use super::error::SpecError;
use super::request::DeviceRequest;

fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup, SpecError> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .access(access);
    if let Some(t) = typ {
        b = b.typ(t);
    }
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    Ok(b.build()?)
}

/// Deny everything, then allow the devices every container needs (the runtime creates
/// null, zero, full, random, urandom, tty, console and ptmx itself), deny /dev/rtc0.
pub fn default_rules() -> Result<Vec<LinuxDeviceCgroup>, SpecError> {
    use LinuxDeviceType::C;
    Ok(vec![
        rule(false, None, None, None, "rwm")?,
        rule(true, Some(C), Some(1), Some(5), "rwm")?,
        rule(true, Some(C), Some(1), Some(3), "rwm")?,
        rule(true, Some(C), Some(1), Some(9), "rwm")?,
        rule(true, Some(C), Some(1), Some(8), "rwm")?,
        rule(true, Some(C), Some(5), Some(0), "rwm")?,
        rule(true, Some(C), Some(5), Some(1), "rwm")?,
        rule(false, Some(C), Some(10), Some(229), "rwm")?,
    ])
}

/// Privileged: every device is allowed.
pub fn allow_all_rule() -> Result<Vec<LinuxDeviceCgroup>, SpecError> {
    Ok(vec![rule(true, None, None, None, "rwm")?])
}

/// Checks the permission string ("rwm" subset, no repeats).
pub fn check_permissions(d: &DeviceRequest) -> Result<(), SpecError> {
    let p = &d.cgroup_permissions;
    let valid = p.len() <= 3
        && p.chars().all(|c| "rwm".contains(c))
        && p.chars().enumerate().all(|(i, c)| !p[..i].contains(c));
    if !valid {
        return Err(SpecError::invalid(format!(
            "invalid device specification: {}:{}:{}: permissions must be a combination of r, w and m",
            d.path_on_host, d.path_in_container, d.cgroup_permissions
        )));
    }
    if !d.path_on_host.starts_with('/')
        || d.path_on_host.contains('\0')
        || d.path_in_container.contains('\0')
    {
        return Err(SpecError::invalid(format!(
            "invalid device specification: {:?}: the paths must be absolute, without NUL bytes",
            d.path_on_host
        )));
    }
    if !d.path_in_container.is_empty() && !d.path_in_container.starts_with('/') {
        return Err(SpecError::invalid(format!(
            "invalid device specification: {:?}: the container path must be absolute",
            d.path_in_container
        )));
    }
    Ok(())
}

/// The device node at `host` (following symlinks), as a spec device at `container`.
fn device_at(host: &Path, container: &Path) -> Result<Option<LinuxDevice>, std::io::Error> {
    let md = std::fs::metadata(host)?;
    let ft = md.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Ok(None);
    };
    let rdev = md.rdev();
    LinuxDeviceBuilder::default()
        .path(container)
        .typ(typ)
        .major(i64::from(libc::major(rdev)))
        .minor(i64::from(libc::minor(rdev)))
        .file_mode(md.mode() & 0o7777)
        .uid(md.uid())
        .gid(md.gid())
        .build()
        .map(Some)
        .map_err(std::io::Error::other)
}

/// Device nodes below `dir`, skipping the directories a container gets its own of.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    const SKIP: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
    if depth > 8 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            let name = entry.file_name();
            if !SKIP.iter().any(|s| name == *s) {
                walk(&path, out, depth + 1);
            }
        } else if ft.is_char_device() || ft.is_block_device() {
            out.push(path);
        }
    }
}

/// Every host device (for privileged containers), except /dev/console (the runtime owns it).
pub fn host_devices() -> Vec<LinuxDevice> {
    let mut paths = Vec::new();
    walk(Path::new("/dev"), &mut paths, 0);
    paths.sort();
    paths
        .iter()
        .filter(|p| p.as_path() != Path::new("/dev/console"))
        .filter_map(|p| device_at(p, p).ok().flatten())
        .collect()
}

/// The requested devices and their allow rules.
pub fn requested(
    requests: &[DeviceRequest],
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), SpecError> {
    let mut devices = Vec::new();
    let mut rules = Vec::new();
    for d in requests {
        check_permissions(d)?;
        let host = PathBuf::from(&d.path_on_host);
        let container = if d.path_in_container.is_empty() {
            host.clone()
        } else {
            PathBuf::from(&d.path_in_container)
        };
        let access = if d.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            d.cgroup_permissions.as_str()
        };
        let gather_error = |e: std::io::Error| {
            SpecError::invalid(format!(
                "error gathering device information while adding custom device {:?}: {e}",
                d.path_on_host
            ))
        };
        let md = std::fs::metadata(&host).map_err(gather_error)?;
        let mut found = Vec::new();
        if md.is_dir() {
            let mut paths = Vec::new();
            walk(&host, &mut paths, 0);
            paths.sort();
            for p in paths {
                let rel = p.strip_prefix(&host).unwrap_or(&p);
                if let Some(dev) = device_at(&p, &container.join(rel)).map_err(gather_error)? {
                    found.push(dev);
                }
            }
        } else {
            match device_at(&host, &container).map_err(gather_error)? {
                Some(dev) => found.push(dev),
                None => {
                    return Err(SpecError::invalid(format!(
                        "error gathering device information while adding custom device {:?}: not a device node",
                        d.path_on_host
                    )))
                }
            }
        }
        for dev in found {
            rules.push(rule(
                true,
                Some(dev.typ()),
                Some(dev.major()),
                Some(dev.minor()),
                access,
            )?);
            devices.push(dev);
        }
    }
    Ok((devices, rules))
}
