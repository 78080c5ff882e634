//! The container's mount list: Docker's default filesystems (/proc, /dev, /sys, ...), the
//! etc files, Binds ("src:dst[:opts]"), Mounts, Tmpfs and /dev/shm, ordered like Docker:
//! defaults first, then the user's mounts sorted by destination depth so parents come first.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, MountBuilder};

use super::error::SpecError;
use super::process_args::{check_container_path, normalize};
use super::request::{MountKind, MountRequest, SpecRequest};

/// Docker's default /dev/shm size: 64 MiB.
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()?)
}

fn with_option(mut m: Mount, opt: &str) -> Mount {
    let mut options = m.options().clone().unwrap_or_default();
    let opposite = match opt {
        "ro" => "rw",
        "rw" => "ro",
        _ => "",
    };
    options.retain(|o| o != opposite && o != opt);
    options.push(opt.to_string());
    m.set_options(Some(options));
    m
}

/// The filesystems every container gets (oci/defaults.go), before request tweaks.
fn default_mounts() -> Result<Vec<Mount>, SpecError> {
    Ok(vec![
        mount(
            "/proc",
            "proc",
            "proc",
            &["rw", "nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["rw", "nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "rw",
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["ro", "nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["rw", "nosuid", "noexec", "nodev"],
        )?,
    ])
}

/// Parses one `HostConfig.Binds` entry: "src:dst[:opts]" where src is an absolute host path
/// (bind) or a volume name, and opts is a comma list of ro/rw, propagation, z/Z, nocopy.
pub fn parse_bind(spec: &str) -> Result<MountRequest, SpecError> {
    let invalid = || SpecError::invalid(format!("invalid volume specification: '{spec}'"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [s, t] => (*s, *t, ""),
        [s, t, m] => (*s, *t, *m),
        _ => return Err(invalid()),
    };
    if source.is_empty() || target.is_empty() {
        return Err(invalid());
    }
    let mut req = MountRequest {
        kind: if source.starts_with('/') {
            MountKind::Bind
        } else {
            MountKind::Volume
        },
        source: source.to_string(),
        target: target.to_string(),
        ..MountRequest::default()
    };
    let mut rw_seen = false;
    for opt in mode.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" | "rw" if rw_seen => {
                return Err(SpecError::invalid(format!(
                    "invalid mode: {mode}: ro and rw may be given only once"
                )))
            }
            "ro" => {
                rw_seen = true;
                req.read_only = true;
            }
            "rw" => rw_seen = true,
            p if PROPAGATIONS.contains(&p) => {
                if req.propagation.is_some() {
                    return Err(SpecError::invalid(format!(
                        "invalid mode: {mode}: only one propagation mode may be given"
                    )));
                }
                req.propagation = Some(p.to_string());
            }
            // SELinux relabel and macOS consistency flags: accepted, nothing to do here
            "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated" => {}
            _ => return Err(SpecError::invalid(format!("invalid mode: {mode}"))),
        }
    }
    if req.kind == MountKind::Volume {
        check_volume_name(source)?;
    }
    Ok(req)
}

fn check_volume_name(name: &str) -> Result<(), SpecError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if first_ok && rest_ok && name.len() > 1 {
        Ok(())
    } else {
        Err(SpecError::invalid(format!(
            "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )))
    }
}

fn kind_name(kind: MountKind) -> &'static str {
    match kind {
        MountKind::Bind => "bind",
        MountKind::Tmpfs => "tmpfs",
        MountKind::Volume => "volume",
    }
}

fn check_target(kind: MountKind, target: &str) -> Result<(), SpecError> {
    let k = kind_name(kind);
    if target.contains('\0') {
        return Err(SpecError::invalid(format!(
            "invalid mount config for type {k:?}: invalid mount path: {target:?} must not contain NUL bytes"
        )));
    }
    if target.is_empty() {
        return Err(SpecError::invalid(format!(
            "invalid mount config for type {k:?}: field Target must not be empty"
        )));
    }
    if !target.starts_with('/') {
        return Err(SpecError::invalid(format!(
            "invalid mount config for type {k:?}: invalid mount path: '{target}' mount path must be absolute"
        )));
    }
    if target.split('/').any(|c| c == "..") {
        return Err(SpecError::invalid(format!(
            "invalid mount config for type {k:?}: invalid mount path: '{target}' must not contain '..'"
        )));
    }
    if normalize(target) == "/" {
        return Err(SpecError::invalid(format!(
            "invalid mount config for type {k:?}: invalid specification: destination can't be '/'"
        )));
    }
    Ok(())
}

/// Checks one Mounts entry. `from_binds`: Docker creates a missing bind source for Binds but
/// refuses it for Mounts.
pub fn check_mount(m: &MountRequest, from_binds: bool) -> Result<(), SpecError> {
    check_target(m.kind, &m.target)?;
    let k = kind_name(m.kind);
    match m.kind {
        MountKind::Bind => {
            if m.source.is_empty() {
                return Err(SpecError::invalid(format!(
                    "invalid mount config for type {k:?}: field Source must not be empty"
                )));
            }
            if !m.source.starts_with('/') || m.source.contains('\0') {
                return Err(SpecError::invalid(format!(
                    "invalid mount config for type {k:?}: invalid mount path: '{}' mount path must be absolute",
                    m.source
                )));
            }
            if !from_binds && !Path::new(&m.source).exists() {
                return Err(SpecError::invalid(format!(
                    "invalid mount config for type {k:?}: bind source path does not exist: {}",
                    m.source
                )));
            }
        }
        MountKind::Tmpfs => {
            if !m.source.is_empty() {
                return Err(SpecError::invalid(format!(
                    "invalid mount config for type {k:?}: field Source must not be specified"
                )));
            }
            if m.tmpfs_size.is_some_and(|s| s < 0) {
                return Err(SpecError::invalid(format!(
                    "invalid mount config for type {k:?}: tmpfs size must not be negative"
                )));
            }
        }
        MountKind::Volume => {
            if !m.source.is_empty() {
                check_volume_name(&m.source)?;
            }
        }
    }
    if let Some(p) = &m.propagation {
        if !PROPAGATIONS.contains(&p.as_str()) {
            return Err(SpecError::invalid(format!(
                "invalid mount config for type {k:?}: invalid propagation mode {p:?}"
            )));
        }
        if m.kind != MountKind::Bind {
            return Err(SpecError::invalid(format!(
                "invalid mount config for type {k:?}: bind propagation is only for bind mounts"
            )));
        }
    }
    Ok(())
}

/// Checks a `HostConfig.Tmpfs` entry's destination.
pub fn check_tmpfs_target(target: &str) -> Result<(), SpecError> {
    check_target(MountKind::Tmpfs, target)
}

/// Every user mount: Binds (parsed), Mounts, then Tmpfs; checks each and duplicates.
pub fn user_mount_requests(req: &SpecRequest) -> Result<Vec<(MountRequest, bool)>, SpecError> {
    let mut all = Vec::new();
    for b in &req.binds {
        let m = parse_bind(b)?;
        check_mount(&m, true)?;
        all.push((m, true));
    }
    for m in &req.mounts {
        check_mount(m, false)?;
        all.push((m.clone(), false));
    }
    let mut seen = BTreeSet::new();
    for (m, _) in &all {
        if !seen.insert(normalize(&m.target)) {
            return Err(SpecError::invalid(format!(
                "Duplicate mount point: {}",
                normalize(&m.target)
            )));
        }
    }
    for target in req.tmpfs.keys() {
        check_tmpfs_target(target)?;
        if !seen.insert(normalize(target)) {
            return Err(SpecError::invalid(format!(
                "Duplicate mount point: {}",
                normalize(target)
            )));
        }
    }
    Ok(all)
}

/// Merges tmpfs options: later flags override their opposite (exec beats noexec), later
/// key=value options replace earlier ones with the same key.
fn merge_tmpfs_options(options: &[String]) -> Vec<String> {
    let opposites = [
        ("exec", "noexec"),
        ("suid", "nosuid"),
        ("dev", "nodev"),
        ("ro", "rw"),
        ("atime", "noatime"),
        ("diratime", "nodiratime"),
    ];
    let mut out: Vec<String> = Vec::new();
    for opt in options {
        let key = opt.split('=').next().unwrap_or(opt);
        out.retain(|o| {
            let k = o.split('=').next().unwrap_or(o);
            let opposite = opposites
                .iter()
                .any(|(a, b)| (k == *a && key == *b) || (k == *b && key == *a));
            k != key && !opposite
        });
        out.push(opt.clone());
    }
    out
}

fn tmpfs_mount(target: &str, data: &[String], read_only: bool) -> Result<Mount, SpecError> {
    let mut options: Vec<String> = ["noexec", "nosuid", "nodev", "rprivate"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    options.extend(data.iter().filter(|s| !s.is_empty()).cloned());
    if read_only {
        options.push("ro".to_string());
    }
    Ok(MountBuilder::default()
        .destination(normalize(target))
        .typ("tmpfs")
        .source("tmpfs")
        .options(merge_tmpfs_options(&options))
        .build()?)
}

/// Docker's bind options: rbind, ro when read-only, then the propagation if any (binds
/// default to rprivate; volumes have none).
fn bind_mount(
    source: &Path,
    target: &str,
    read_only: bool,
    propagation: Option<&str>,
) -> Result<Mount, SpecError> {
    let mut options = vec!["rbind".to_string()];
    if read_only {
        options.push("ro".to_string());
    }
    options.extend(propagation.map(String::from));
    Ok(MountBuilder::default()
        .destination(normalize(target))
        .typ("bind")
        .source(source)
        .options(options)
        .build()?)
}

fn depth(m: &Mount) -> usize {
    let dest = normalize(&m.destination().to_string_lossy());
    if dest == "/" {
        0
    } else {
        dest.matches('/').count()
    }
}

/// The full mount list for the spec. Creates missing Binds sources on the host (Docker's
/// legacy `-v` behaviour); everything else is read-only with respect to the host.
pub fn mounts(req: &SpecRequest, ipc_host: bool) -> Result<Vec<Mount>, SpecError> {
    let mut user: Vec<Mount> = Vec::new();
    for (m, from_binds) in user_mount_requests(req)? {
        match m.kind {
            MountKind::Bind => {
                let source = PathBuf::from(&m.source);
                if from_binds && !source.exists() {
                    std::fs::create_dir_all(&source).map_err(|e| {
                        SpecError::io(format!("create bind source {}", source.display()), e)
                    })?;
                }
                let propagation = m.propagation.as_deref().unwrap_or("rprivate");
                user.push(bind_mount(
                    &source,
                    &m.target,
                    m.read_only,
                    Some(propagation),
                )?);
            }
            MountKind::Volume => {
                let source = req.volume_paths.get(&m.source).ok_or_else(|| {
                    SpecError::Internal(format!(
                        "volume {:?} for {} has no host directory: the volume must be created before the spec",
                        m.source, m.target
                    ))
                })?;
                user.push(bind_mount(source, &m.target, m.read_only, None)?);
            }
            MountKind::Tmpfs => {
                let mut data = Vec::new();
                if let Some(size) = m.tmpfs_size.filter(|s| *s > 0) {
                    data.push(format!("size={size}"));
                }
                if let Some(mode) = m.tmpfs_mode {
                    data.push(format!("mode={mode:o}"));
                }
                user.push(tmpfs_mount(&m.target, &data, m.read_only)?);
            }
        }
    }
    for (target, opts) in &req.tmpfs {
        let data: Vec<String> = opts.split(',').map(|s| s.trim().to_string()).collect();
        user.push(tmpfs_mount(target, &data, false)?);
    }

    let user_dests: BTreeSet<String> = user
        .iter()
        .map(|m| m.destination().to_string_lossy().into_owned())
        .collect();
    let mount_dev = user_dests.contains("/dev");
    let overridden =
        |dest: &str| user_dests.contains(dest) || (mount_dev && dest.starts_with("/dev/"));

    // /dev/shm: the host's with --ipc host, none with --ipc none, else a tmpfs of ShmSize
    if !overridden("/dev/shm") && req.ipc_mode != "none" {
        if ipc_host {
            user.push(bind_mount(
                Path::new("/dev/shm"),
                "/dev/shm",
                false,
                Some("rprivate"),
            )?);
        } else {
            let size = req.shm_size.filter(|s| *s > 0).unwrap_or(DEFAULT_SHM_SIZE);
            user.push(mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &[
                    "rw",
                    "nosuid",
                    "noexec",
                    "nodev",
                    "mode=1777",
                    &format!("size={size}"),
                ],
            )?);
        }
    }
    let writable_etc = !req.readonly_rootfs;
    for (path, dest) in [
        (&req.etc_files.hostname, "/etc/hostname"),
        (&req.etc_files.hosts, "/etc/hosts"),
        (&req.etc_files.resolv_conf, "/etc/resolv.conf"),
    ] {
        if !path.as_os_str().is_empty() && !overridden(dest) {
            user.push(bind_mount(path, dest, !writable_etc, Some("rprivate"))?);
        }
    }
    user.sort_by_key(depth);

    let mut out = Vec::new();
    for m in default_mounts()? {
        let dest = m.destination().to_string_lossy().into_owned();
        if overridden(&dest) {
            continue;
        }
        let mut m = m;
        if dest == "/dev/mqueue" && ipc_host {
            m = bind_mount(
                Path::new("/dev/mqueue"),
                "/dev/mqueue",
                false,
                Some("rprivate"),
            )?;
        }
        if req.readonly_rootfs
            && !["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"].contains(&dest.as_str())
        {
            m = with_option(m, "ro");
        }
        // privileged wins over the read-only rootfs for /sys and the cgroup mount
        if req.privileged && (dest == "/sys" || dest == "/sys/fs/cgroup") {
            m = with_option(m, "rw");
        }
        out.push(m);
    }
    out.extend(user);
    if init_applies(req) {
        if let Some(init) = &req.init_path {
            out.push(
                MountBuilder::default()
                    .destination("/sbin/docker-init")
                    .typ("bind")
                    .source(init)
                    .options(vec!["bind".to_string(), "ro".to_string()])
                    .build()?,
            );
        }
    }
    Ok(out)
}

/// Image VOLUME targets not covered by a user mount: the service creates an anonymous volume
/// for each (as Docker does) and passes it back as a `MountKind::Volume` mount.
pub fn uncovered_image_volumes(req: &SpecRequest) -> Vec<String> {
    let mut covered: BTreeSet<String> = req.mounts.iter().map(|m| normalize(&m.target)).collect();
    for b in &req.binds {
        if let Ok(m) = parse_bind(b) {
            covered.insert(normalize(&m.target));
        }
    }
    covered.extend(req.tmpfs.keys().map(|t| normalize(t)));
    req.image
        .volume_targets()
        .into_iter()
        .map(|t| normalize(&t))
        .filter(|t| !covered.contains(t))
        .collect()
}

/// Checks the image's VOLUME targets (an image could point them at /proc/self/fd).
pub fn check_image_volumes(req: &SpecRequest) -> Result<(), SpecError> {
    for target in req.image.volume_targets() {
        check_container_path("image volume", &target)?;
        if normalize(&target) == "/" {
            return Err(SpecError::invalid(
                "the image volume '/' is invalid: a volume cannot be mounted over the root",
            ));
        }
    }
    Ok(())
}

/// Docker adds the init only in a private PID namespace: elsewhere there already is one.
pub fn init_applies(req: &SpecRequest) -> bool {
    req.init && (req.pid_mode.is_empty() || req.pid_mode == "private")
}
