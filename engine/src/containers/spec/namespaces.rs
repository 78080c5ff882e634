//! Namespaces from NetworkMode, IpcMode, PidMode and UTSMode. Mount namespaces are always
//! private; the cgroup namespace is the host's (as Docker on cgroup v1 hosts).

use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType};

use super::error::SpecError;
use super::request::SpecRequest;

/// How one namespace is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsMode {
    /// A new namespace for this container.
    Private,
    /// Shares the host's (no namespace entry in the spec).
    Host,
    /// Joins another container's (`container:<name>`), at this path once resolved.
    Join(Option<PathBuf>),
}

fn parse(
    kind: &str,
    mode: &str,
    path: &Option<PathBuf>,
    allowed: &[&str],
) -> Result<NsMode, SpecError> {
    if mode == "host" {
        return Ok(NsMode::Host);
    }
    if let Some(target) = mode.strip_prefix("container:") {
        if target.is_empty() {
            return Err(SpecError::invalid(format!(
                "invalid {kind} mode: {mode:?}: name the container to share with"
            )));
        }
        return Ok(NsMode::Join(path.clone()));
    }
    if mode.is_empty() || allowed.contains(&mode) {
        return Ok(NsMode::Private);
    }
    Err(SpecError::invalid(format!(
        "invalid {kind} mode: {mode:?}: use host, container:<name> or {}",
        if allowed.is_empty() {
            "nothing".to_string()
        } else {
            allowed.join(", ")
        }
    )))
}

/// The four modes, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modes {
    pub network: NsMode,
    pub ipc: NsMode,
    pub pid: NsMode,
    pub uts: NsMode,
}

pub fn modes(req: &SpecRequest) -> Result<Modes, SpecError> {
    let p = &req.namespace_paths;
    // every network name other than host/container:x gets its own netns (bridge, none,
    // default and user networks alike; networking fills it in later)
    let network = if req.network_mode == "host" {
        NsMode::Host
    } else if req.network_mode.starts_with("container:") {
        parse("network", &req.network_mode, &p.network, &[])?
    } else {
        NsMode::Private
    };
    Ok(Modes {
        network,
        ipc: parse(
            "IPC",
            &req.ipc_mode,
            &p.ipc,
            &["private", "shareable", "none"],
        )?,
        pid: parse("PID", &req.pid_mode, &p.pid, &[])?,
        uts: match req.uts_mode.as_str() {
            "host" => NsMode::Host,
            "" | "private" => NsMode::Private,
            other => {
                return Err(SpecError::invalid(format!(
                    "invalid UTS mode: {other:?}: use host or leave it empty"
                )))
            }
        },
    })
}

pub fn namespaces(m: &Modes) -> Result<Vec<LinuxNamespace>, SpecError> {
    let mut out = vec![LinuxNamespaceBuilder::default()
        .typ(LinuxNamespaceType::Mount)
        .build()?];
    for (typ, mode, kind) in [
        (LinuxNamespaceType::Network, &m.network, "network"),
        (LinuxNamespaceType::Uts, &m.uts, "uts"),
        (LinuxNamespaceType::Pid, &m.pid, "pid"),
        (LinuxNamespaceType::Ipc, &m.ipc, "ipc"),
    ] {
        match mode {
            NsMode::Host => {}
            NsMode::Private => out.push(LinuxNamespaceBuilder::default().typ(typ).build()?),
            NsMode::Join(Some(path)) => out.push(
                LinuxNamespaceBuilder::default()
                    .typ(typ)
                    .path(path.clone())
                    .build()?,
            ),
            NsMode::Join(None) => {
                return Err(SpecError::Internal(format!(
                    "the {kind} namespace of the container to share with was not resolved to a path"
                )))
            }
        }
    }
    Ok(out)
}
