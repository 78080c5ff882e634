//! The process's argv, environment and working directory, combined from the image config and
//! the request the way Docker does.

use super::error::SpecError;
use super::request::SpecRequest;

/// Docker's default PATH for Linux containers.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Entrypoint + Cmd. A request Entrypoint (even `[]`, or `[""]` which `docker run
/// --entrypoint ""` sends) replaces the image's and drops the image's Cmd; the request Cmd
/// wins over the image Cmd when it is non-empty.
pub fn command(req: &SpecRequest) -> Result<Vec<String>, SpecError> {
    let request_entrypoint = req.entrypoint.as_ref().map(|e| {
        if e.len() == 1 && e[0].is_empty() {
            Vec::new()
        } else {
            e.clone()
        }
    });
    let request_cmd = req.cmd.clone().filter(|c| !c.is_empty());
    let (entrypoint, cmd) = match request_entrypoint {
        Some(entrypoint) => (entrypoint, request_cmd.unwrap_or_default()),
        None => (
            req.image.entrypoint.clone().unwrap_or_default(),
            request_cmd
                .or_else(|| req.image.cmd.clone())
                .unwrap_or_default(),
        ),
    };
    let mut args = entrypoint;
    args.extend(cmd);
    if args.is_empty() || args[0].is_empty() {
        return Err(SpecError::invalid(
            "no command specified: give a command or use an image with an entrypoint or cmd",
        ));
    }
    Ok(args)
}

/// Sets `entry` ("KEY=VALUE") in `env`, replacing an existing KEY in place; a bare "KEY"
/// (no '=') removes KEY, as Docker does for `-e KEY` without a value in the client's env.
pub(crate) fn replace_or_append(env: &mut Vec<String>, entry: &str) {
    let key = entry.split('=').next().unwrap_or(entry);
    let position = env
        .iter()
        .position(|e| e.split('=').next().unwrap_or(e) == key);
    match (entry.contains('='), position) {
        (true, Some(i)) => env[i] = entry.to_string(),
        (true, None) => env.push(entry.to_string()),
        (false, Some(i)) => {
            env.remove(i);
        }
        (false, None) => {}
    }
}

/// PATH, HOSTNAME and TERM (with a tty) first, then the image's env, then the request's;
/// later entries override earlier ones by key.
pub fn environment(req: &SpecRequest) -> Vec<String> {
    let mut env = vec![format!("PATH={DEFAULT_PATH}")];
    if !req.hostname.is_empty() {
        env.push(format!("HOSTNAME={}", req.hostname));
    }
    if req.tty {
        env.push("TERM=xterm".to_string());
    }
    let image_env = req.image.env.iter().flatten();
    for entry in image_env.chain(req.env.iter()) {
        if !entry.is_empty() {
            replace_or_append(&mut env, entry);
        }
    }
    env
}

/// Rejects working directories and volume targets that could reach outside the container:
/// `..` components, or the host's open files through /proc/self/fd (CVE-2024-21626).
pub fn check_container_path(what: &str, path: &str) -> Result<(), SpecError> {
    if path.contains('\0') {
        return Err(SpecError::invalid(format!(
            "the {what} {path:?} is invalid, it must not contain NUL bytes"
        )));
    }
    if !path.starts_with('/') {
        return Err(SpecError::invalid(format!(
            "the {what} '{path}' is invalid, it needs to be an absolute path"
        )));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(SpecError::invalid(format!(
            "the {what} '{path}' is invalid, it must not contain '..'"
        )));
    }
    let normalized = normalize(path);
    let proc_fd = normalized.starts_with("/proc/self/fd")
        || normalized.starts_with("/proc/thread-self/fd")
        || normalized
            .strip_prefix("/proc/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(pid, rest)| {
                pid.chars().all(|c| c.is_ascii_digit()) && (rest == "fd" || rest.starts_with("fd/"))
            });
    if proc_fd {
        return Err(SpecError::invalid(format!(
            "the {what} '{path}' is invalid, it must not be under /proc/<pid>/fd"
        )));
    }
    Ok(())
}

/// Collapses repeated and trailing slashes and "." components of an absolute path.
pub fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// The working directory: the request's, else the image's, else "/".
pub fn working_dir(req: &SpecRequest) -> Result<String, SpecError> {
    let dir = req
        .working_dir
        .as_deref()
        .filter(|d| !d.is_empty())
        .or(req.image.working_dir.as_deref().filter(|d| !d.is_empty()))
        .unwrap_or("/");
    check_container_path("working directory", dir)?;
    Ok(normalize(dir))
}

/// Env entries need a name, and no string handed to execve may hold a NUL byte.
pub fn check_env_and_args(req: &SpecRequest) -> Result<(), SpecError> {
    for entry in req.env.iter().chain(req.image.env.iter().flatten()) {
        if entry.starts_with('=') || entry.contains('\0') {
            return Err(SpecError::invalid(format!(
                "invalid environment variable: {entry:?}: use NAME=value"
            )));
        }
    }
    let args = [
        &req.entrypoint,
        &req.cmd,
        &req.image.entrypoint,
        &req.image.cmd,
    ];
    if args
        .iter()
        .filter_map(|a| a.as_ref())
        .flatten()
        .any(|a| a.contains('\0'))
    {
        return Err(SpecError::invalid(
            "invalid command: arguments must not contain NUL bytes",
        ));
    }
    Ok(())
}
