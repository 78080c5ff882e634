//! `HostConfig.SecurityOpt` as Docker parses it: "no-new-privileges[=bool]",
//! "seccomp=unconfined|builtin|<profile json>", "apparmor=...", "label=...",
//! "systempaths=unconfined"; "key:value" is the deprecated spelling of "key=value".

use super::error::SpecError;

/// Which seccomp filter the container gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SeccompChoice {
    #[default]
    Default,
    Unconfined,
    /// A profile's JSON text (the client sends the file's content).
    Custom(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityOptions {
    pub no_new_privileges: bool,
    pub seccomp: SeccompChoice,
    pub apparmor: Option<String>,
    /// SELinux labels: accepted and ignored (no SELinux support).
    pub labels: Vec<String>,
    /// "systempaths=unconfined": no masked or read-only /proc and /sys paths.
    pub unconfined_paths: bool,
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Some(true),
        "0" | "f" | "false" => Some(false),
        _ => None,
    }
}

pub fn parse(opts: &[String]) -> Result<SecurityOptions, SpecError> {
    let mut out = SecurityOptions::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            out.labels.push(opt.clone());
            continue;
        }
        let split = opt.split_once('=').or_else(|| opt.split_once(':'));
        let Some((key, value)) = split else {
            return Err(SpecError::invalid(format!(
                "invalid --security-opt 1: {opt:?}: use key=value, e.g. seccomp=unconfined"
            )));
        };
        let bad = || {
            SpecError::invalid(format!(
                "invalid --security-opt 2: {opt:?}: known options are no-new-privileges, seccomp, apparmor, label and systempaths"
            ))
        };
        match key {
            "label" => out.labels.push(value.to_string()),
            "apparmor" => out.apparmor = Some(value.to_string()),
            "seccomp" => {
                out.seccomp = match value {
                    "unconfined" => SeccompChoice::Unconfined,
                    "builtin" | "" => SeccompChoice::Default,
                    v if v.trim_start().starts_with('{') => SeccompChoice::Custom(v.to_string()),
                    _ => {
                        return Err(SpecError::invalid(format!(
                            "invalid seccomp profile {value:?}: give unconfined or the profile's json content"
                        )))
                    }
                }
            }
            "no-new-privileges" => out.no_new_privileges = parse_bool(value).ok_or_else(bad)?,
            "writable-cgroups" => {
                parse_bool(value).ok_or_else(bad)?;
            }
            "systempaths" if value == "unconfined" => out.unconfined_paths = true,
            _ => return Err(bad()),
        }
    }
    Ok(out)
}
