//! The process of `docker exec`: the container's process settings (capabilities, rlimits,
//! no-new-privileges, apparmor) with the exec's argv, env, user, working directory and tty,
//! as Docker derives it.

use std::path::Path;

use oci_spec::runtime::{Process, Spec, UserBuilder};

use super::error::SpecError;
use super::host::HostInfo;
use super::process_args::check_container_path;
use super::{process_capabilities, to_capabilities, user};

/// One exec's settings (ExecConfig of `POST /containers/{id}/exec`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// Empty: the container's user.
    pub user: Option<String>,
    /// Empty: the container's working directory.
    pub working_dir: Option<String>,
    pub tty: bool,
    pub privileged: bool,
}

/// Checks what an exec request can get wrong before anything runs.
pub fn validate_exec(req: &ExecRequest) -> Result<(), SpecError> {
    if req.cmd.is_empty() || req.cmd[0].is_empty() {
        return Err(SpecError::invalid(
            "no exec command specified: give the command to run",
        ));
    }
    if let Some(dir) = req.working_dir.as_deref().filter(|d| !d.is_empty()) {
        check_container_path("working directory", dir)?;
    }
    Ok(())
}

/// The exec's process, from the container's spec and its mounted rootfs.
pub fn exec_process(spec: &Spec, rootfs: &Path, req: &ExecRequest) -> Result<Process, SpecError> {
    validate_exec(req)?;
    let mut process = spec
        .process()
        .clone()
        .ok_or_else(|| SpecError::Internal("the container's spec has no process".to_string()))?;
    process.set_args(Some(req.cmd.clone()));
    process.set_terminal(Some(req.tty));
    process.set_console_size(None);

    let mut env = process.env().clone().unwrap_or_default();
    if req.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_string());
    }
    for entry in &req.env {
        super::process_args::replace_or_append(&mut env, entry);
    }
    process.set_env(Some(env));

    if let Some(dir) = req.working_dir.as_deref().filter(|d| !d.is_empty()) {
        process.set_cwd(super::process_args::normalize(dir).into());
    }
    if let Some(spec_user) = req.user.as_deref().filter(|u| !u.is_empty()) {
        let resolved = user::resolve_user(rootfs, spec_user, &[])?;
        process.set_user(
            UserBuilder::default()
                .uid(resolved.uid)
                .gid(resolved.gid)
                .additional_gids(resolved.additional_gids)
                .build()?,
        );
    }
    // privileged execs get every capability; a changed user changes what the set grants
    let bounding = if req.privileged {
        to_capabilities(&HostInfo::probe().capabilities)?
    } else {
        process
            .capabilities()
            .as_ref()
            .and_then(|c| c.bounding().clone())
            .unwrap_or_default()
    };
    let uid = process.user().uid();
    process.set_capabilities(Some(process_capabilities(bounding, uid)?));
    Ok(process)
}
