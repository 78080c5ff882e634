//! OCI runtime spec from the image config and the create request, following Docker's rules
//! (moby's daemon/oci_linux.go and oci/defaults.go): argv, env, user, working directory,
//! mounts, namespaces, capabilities, devices, seccomp, resources, rlimits and sysctls.
//!
//! The service maps the API's Config/HostConfig into a [`SpecRequest`], calls [`validate`]
//! before creating any state (every 400 is found there), then [`build_spec`] once the
//! rootfs is mounted (user names are resolved from the image's /etc files).

mod beneath;
mod caps;
mod devices;
mod error;
mod exec;
mod host;
mod init;
mod mounts;
mod namespaces;
mod process_args;
mod request;
mod resources;
mod rlimits;
mod seccomp;
mod security;
mod signal;
mod sysctls;
mod user;

#[cfg(test)]
mod runc_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, ProcessBuilder, RootBuilder,
    Spec, SpecBuilder, UserBuilder,
};

// the service's interface; the crate is a binary, so re-exports count as unused until used
#[allow(unused_imports)]
pub use beneath::ensure_workdir;
#[allow(unused_imports)]
pub use error::SpecError;
#[allow(unused_imports)]
pub use exec::{exec_process, validate_exec, ExecRequest};
#[allow(unused_imports)]
pub use host::HostInfo;
#[allow(unused_imports)]
pub use init::init_binary;
#[allow(unused_imports)]
pub use mounts::{parse_bind, uncovered_image_volumes, DEFAULT_SHM_SIZE};
#[allow(unused_imports)]
pub use process_args::{command, DEFAULT_PATH};
#[allow(unused_imports)]
pub use request::{
    DeviceRequest, EtcFiles, ImageRuntimeConfig, MountKind, MountRequest, NamespacePaths,
    Resources, SpecRequest, Ulimit,
};
#[allow(unused_imports)]
pub use seccomp::Target;
#[allow(unused_imports)]
pub use signal::{parse_signal, stop_signal};
#[allow(unused_imports)]
pub use user::{resolve_user, ResolvedUser};

use namespaces::NsMode;
use security::SeccompChoice;

/// Where the init binary is mounted in the container (Docker's path).
pub const INIT_PATH_IN_CONTAINER: &str = "/sbin/docker-init";

/// Paths of /proc and /sys hidden from unprivileged containers.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths of /proc made read-only for unprivileged containers.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Everything that can be checked before any state exists; every error is a 400.
pub fn validate(req: &SpecRequest) -> Result<(), SpecError> {
    validate_with(req, &HostInfo::probe(), &Target::host())
}

pub(crate) fn validate_with(
    req: &SpecRequest,
    host: &HostInfo,
    target: &Target,
) -> Result<(), SpecError> {
    process_args::command(req)?;
    process_args::check_env_and_args(req)?;
    process_args::working_dir(req)?;
    mounts::check_image_volumes(req)?;
    mounts::user_mount_requests(req)?;
    for d in &req.devices {
        devices::check_permissions(d)?;
    }
    let caps = caps::capabilities(
        &req.cap_add,
        &req.cap_drop,
        req.privileged,
        &host.capabilities,
    )?;
    let security = security::parse(&req.security_opt)?;
    if let SeccompChoice::Custom(profile) = &security.seccomp {
        seccomp::custom_profile(profile, &caps, target)?;
    }
    let modes = namespaces::modes(req)?;
    sysctls::validate(
        &req.sysctls,
        modes.network != NsMode::Host,
        modes.ipc != NsMode::Host,
    )?;
    rlimits::validate(&req.ulimits)?;
    resources::validate(&req.resources, host)?;
    if let Some(adj) = req.oom_score_adj {
        if !(-1000..=1000).contains(&adj) {
            return Err(SpecError::invalid(format!(
                "Invalid value {adj}, range for oom score adj is [-1000, 1000]"
            )));
        }
    }
    if req.shm_size.is_some_and(|s| s < 0) {
        return Err(SpecError::invalid("SHM size can not be less than 0"));
    }
    if req.hostname.len() > 64 || req.hostname.contains('\0') {
        return Err(SpecError::invalid(format!(
            "invalid hostname {:?}: at most 64 characters, no NUL bytes",
            req.hostname
        )));
    }
    signal::stop_signal(req)?;
    Ok(())
}

/// The OCI runtime spec for `req`, with `rootfs` (the mounted overlay, absolute) as root.
/// Resolves the user from the rootfs's /etc/passwd and /etc/group and creates a missing
/// working directory in the rootfs (as Docker does when it builds the spec).
pub fn build_spec(req: &SpecRequest, rootfs: &Path) -> Result<Spec, SpecError> {
    build_spec_with(req, rootfs, &HostInfo::probe(), &Target::host())
}

/// Docker's SetCapabilities: root gets the set as bounding, effective and permitted; other
/// users only as bounding (what execve would leave them). Inheritable and ambient are
/// always empty (the builder's defaults are runc's example caps, so set them explicitly).
pub(crate) fn process_capabilities(
    caps: Capabilities,
    uid: u32,
) -> Result<oci_spec::runtime::LinuxCapabilities, SpecError> {
    let (effective, permitted) = if uid == 0 {
        (caps.clone(), caps.clone())
    } else {
        (Capabilities::new(), Capabilities::new())
    };
    Ok(LinuxCapabilitiesBuilder::default()
        .bounding(caps)
        .effective(effective)
        .permitted(permitted)
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()?)
}

pub(crate) fn to_capabilities(names: &[String]) -> Result<Capabilities, SpecError> {
    names
        .iter()
        .map(|n| {
            serde_json::from_value::<Capability>(serde_json::Value::String(n.clone())).map_err(
                |e| SpecError::Internal(format!("capability {n} is unknown to oci-spec: {e}")),
            )
        })
        .collect()
}

pub(crate) fn build_spec_with(
    req: &SpecRequest,
    rootfs: &Path,
    host: &HostInfo,
    target: &Target,
) -> Result<Spec, SpecError> {
    validate_with(req, host, target)?;
    if !rootfs.is_absolute() {
        return Err(SpecError::Internal(format!(
            "the rootfs path {} must be absolute",
            rootfs.display()
        )));
    }
    let modes = namespaces::modes(req)?;
    let security = security::parse(&req.security_opt)?;

    // process
    let mut args = process_args::command(req)?;
    if mounts::init_applies(req) {
        if req.init_path.is_none() {
            return Err(SpecError::Internal(
                "init was requested but no init binary path was given".to_string(),
            ));
        }
        let mut with_init = vec![INIT_PATH_IN_CONTAINER.to_string(), "--".to_string()];
        with_init.append(&mut args);
        args = with_init;
    }
    let user_spec = req
        .user
        .as_deref()
        .filter(|u| !u.is_empty())
        .or(req.image.user.as_deref())
        .unwrap_or("");
    let user = user::resolve_user(rootfs, user_spec, &req.group_add)?;
    // Docker creates a missing working directory, owned by the user, when it builds the spec
    let cwd = process_args::working_dir(req)?;
    ensure_workdir(rootfs, &cwd, user.uid, user.gid)?;
    let cap_names = caps::capabilities(
        &req.cap_add,
        &req.cap_drop,
        req.privileged,
        &host.capabilities,
    )?;
    let capabilities = process_capabilities(to_capabilities(&cap_names)?, user.uid)?;
    let mut process = ProcessBuilder::default()
        .terminal(req.tty)
        .user(
            UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids.clone())
                .build()?,
        )
        .args(args)
        .env(process_args::environment(req))
        .cwd(cwd)
        .capabilities(capabilities)
        .rlimits(rlimits::rlimits(&req.ulimits, &host.hard_limits))
        .build()?;
    // Only ever `true` or absent: libcontainer 0.7 treats a present `false` like `true` when
    // ordering seccomp, loads the filter after dropping CAP_SYS_ADMIN and fails. (The
    // builder's default is `Some(true)`, so set it explicitly either way.)
    process.set_no_new_privileges(security.no_new_privileges.then_some(true));
    if let Some([height, width]) = req.console_size.filter(|s| req.tty && s[0] > 0 && s[1] > 0) {
        let size = oci_spec::runtime::BoxBuilder::default()
            .height(height as u64)
            .width(width as u64)
            .build()?;
        process.set_console_size(Some(size));
    }
    if let Some(adj) = req.oom_score_adj {
        process.set_oom_score_adj(Some(adj as i32));
    }
    if let Some(profile) = security.apparmor.as_ref().filter(|p| *p != "unconfined") {
        if apparmor_enabled() {
            process.set_apparmor_profile(Some(profile.clone()));
        }
    }

    // linux
    let ipc_host = modes.ipc == NsMode::Host;
    let mount_list = mounts::mounts(req, ipc_host)?;
    let mut resources = resources::resources(&req.resources, host)?;
    let mut device_rules = if req.privileged {
        devices::allow_all_rule()?
    } else {
        devices::default_rules()?
    };
    let mut device_nodes = if req.privileged {
        devices::host_devices()
    } else {
        Vec::new()
    };
    let (requested_nodes, requested_rules) = devices::requested(&req.devices)?;
    for node in requested_nodes {
        device_nodes.retain(|d| d.path() != node.path());
        device_nodes.push(node);
    }
    if !req.privileged {
        device_rules.extend(requested_rules);
    }
    resources.set_devices(Some(device_rules));

    let cgroups_path = match req.cgroup_parent.as_deref().filter(|p| !p.is_empty()) {
        Some(parent) => Path::new("/")
            .join(parent.trim_start_matches('/'))
            .join(&req.id),
        None => Path::new("/skiff").join(&req.id),
    };
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces::namespaces(&modes)?)
        .resources(resources)
        .devices(device_nodes)
        .cgroups_path(cgroups_path)
        .build()?;
    let mut sysctl = HashMap::new();
    if modes.network == NsMode::Private {
        // Docker's defaults for a new netns: ping without CAP_NET_RAW and binding low
        // ports without CAP_NET_BIND_SERVICE (only where the kernel has the knobs)
        for (key, value) in [
            ("net.ipv4.ping_group_range", "0 2147483647"),
            ("net.ipv4.ip_unprivileged_port_start", "0"),
        ] {
            if host.sysctls.iter().any(|k| k == key) {
                sysctl.insert(key.to_string(), value.to_string());
            }
        }
    }
    sysctl.extend(req.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())));
    if !sysctl.is_empty() {
        linux.set_sysctl(Some(sysctl));
    }
    let confined_paths = !req.privileged && !security.unconfined_paths;
    let masked = match &req.masked_paths {
        Some(list) => list.clone(),
        None if confined_paths => DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
        None => Vec::new(),
    };
    let readonly = match &req.readonly_paths {
        Some(list) => list.clone(),
        None if confined_paths => DEFAULT_READONLY_PATHS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        None => Vec::new(),
    };
    if confined_paths {
        linux.set_masked_paths(Some(masked));
        linux.set_readonly_paths(Some(readonly));
    } else {
        linux.set_masked_paths(Some(Vec::new()));
        linux.set_readonly_paths(Some(Vec::new()));
    }
    if !req.privileged {
        let seccomp = match &security.seccomp {
            SeccompChoice::Default => Some(seccomp::default_profile(&cap_names, target)?),
            SeccompChoice::Custom(profile) => {
                Some(seccomp::custom_profile(profile, &cap_names, target)?)
            }
            SeccompChoice::Unconfined => None,
        };
        linux.set_seccomp(seccomp);
    }
    if let Some(propagation) = root_propagation(req) {
        linux.set_rootfs_propagation(Some(propagation.to_string()));
    }

    // oci-spec's builder defaults are an example spec (hostname "youki", annotations...):
    // every field is set explicitly below
    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(rootfs)
                .readonly(req.readonly_rootfs)
                .build()?,
        )
        .mounts(mount_list)
        .process(process)
        .linux(linux)
        .build()?;
    spec.set_annotations(None);
    spec.set_hostname(None);
    spec.set_domainname(None);
    if modes.uts != NsMode::Host {
        if !req.hostname.is_empty() {
            spec.set_hostname(Some(req.hostname.clone()));
        }
        if let Some(domain) = req.domainname.as_ref().filter(|d| !d.is_empty()) {
            spec.set_domainname(Some(domain.clone()));
        }
    }
    Ok(spec)
}

/// A shared or slave bind needs the container's root mount to propagate too.
fn root_propagation(req: &SpecRequest) -> Option<&'static str> {
    let mut props: Vec<String> = req
        .mounts
        .iter()
        .filter_map(|m| m.propagation.clone())
        .collect();
    props.extend(
        req.binds
            .iter()
            .filter_map(|b| mounts::parse_bind(b).ok())
            .filter_map(|m| m.propagation),
    );
    if props.iter().any(|p| p.ends_with("shared")) {
        Some("rshared")
    } else if props.iter().any(|p| p.ends_with("slave")) {
        Some("rslave")
    } else {
        None
    }
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}
