//! Seccomp: Docker's default profile (seccomp_default.json, in Docker's profile format) or a
//! custom profile from `--security-opt seccomp=<json>`, turned into OCI `linux.seccomp` for
//! this container: rules are kept or dropped by the container's capabilities, the host's
//! architecture and kernel version, as Docker does.

use oci_spec::runtime::LinuxSeccomp;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::SpecError;

const DEFAULT_PROFILE: &str = include_str!("seccomp_default.json");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    flags: Option<Vec<String>>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Option<Vec<Rule>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Value>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// The host as a seccomp profile sees it.
#[derive(Debug, Clone)]
pub struct Target {
    /// Go's name of the architecture ("amd64", "arm64", ...), used by includes/excludes.
    pub arch: &'static str,
    /// libseccomp's name of the native architecture ("SCMP_ARCH_X86_64").
    pub seccomp_arch: &'static str,
    pub kernel: (u32, u32),
}

impl Target {
    pub fn host() -> Target {
        let (arch, seccomp_arch) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
            "x86" => ("386", "SCMP_ARCH_X86"),
            "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
            "arm" => ("arm", "SCMP_ARCH_ARM"),
            "riscv64" => ("riscv64", "SCMP_ARCH_RISCV64"),
            "s390x" => ("s390x", "SCMP_ARCH_S390X"),
            "powerpc64" => ("ppc64le", "SCMP_ARCH_PPC64LE"),
            "mips64" => ("mips64", "SCMP_ARCH_MIPS64"),
            other => (other, "SCMP_ARCH_NATIVE"),
        };
        let kernel = nix::sys::utsname::uname()
            .ok()
            .and_then(|u| parse_kernel(&u.release().to_string_lossy()))
            .unwrap_or((0, 0));
        Target {
            arch,
            seccomp_arch,
            kernel,
        }
    }
}

fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// Docker's default profile for a container with `caps`.
pub fn default_profile(caps: &[String], target: &Target) -> Result<LinuxSeccomp, SpecError> {
    convert(DEFAULT_PROFILE, caps, target)
        .map_err(|e| SpecError::Internal(format!("the built-in seccomp profile is broken: {e}")))
}

/// A profile given with `--security-opt seccomp=<json>` (the client sends the file's content).
pub fn custom_profile(
    json_text: &str,
    caps: &[String],
    target: &Target,
) -> Result<LinuxSeccomp, SpecError> {
    convert(json_text, caps, target)
        .map_err(|e| SpecError::invalid(format!("invalid seccomp profile: {e}")))
}

fn convert(text: &str, caps: &[String], target: &Target) -> Result<LinuxSeccomp, String> {
    let profile: Profile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut architectures: Vec<String> = Vec::new();
    if let Some(map) = &profile.arch_map {
        if profile
            .architectures
            .as_ref()
            .is_some_and(|a| !a.is_empty())
        {
            return Err("use either architectures or archMap, not both".to_string());
        }
        for entry in map.iter().filter(|m| m.architecture == target.seccomp_arch) {
            architectures.push(entry.architecture.clone());
            architectures.extend(entry.sub_architectures.iter().flatten().cloned());
        }
    } else if let Some(arches) = &profile.architectures {
        architectures = arches.clone();
    }

    let mut syscalls = Vec::new();
    for rule in profile.syscalls.iter().flatten() {
        let names: Vec<String> = match (&rule.name, &rule.names) {
            (Some(_), Some(n)) if !n.is_empty() => {
                return Err("a syscall rule may use name or names, not both".to_string())
            }
            (Some(name), _) => vec![name.clone()],
            (None, Some(names)) => names.clone(),
            (None, None) => Vec::new(),
        };
        if names.is_empty() || !applies(rule, caps, target) {
            continue;
        }
        let mut out = json!({ "names": names, "action": rule.action });
        if let Some(errno) = rule.errno_ret {
            out["errnoRet"] = json!(errno);
        }
        if let Some(args) = &rule.args {
            out["args"] = json!(args);
        }
        syscalls.push(out);
    }

    let mut oci = json!({ "defaultAction": profile.default_action, "syscalls": syscalls });
    if let Some(errno) = profile.default_errno_ret {
        oci["defaultErrnoRet"] = json!(errno);
    }
    if !architectures.is_empty() {
        oci["architectures"] = json!(architectures);
    }
    if let Some(flags) = &profile.flags {
        oci["flags"] = json!(flags);
    }
    if let Some(p) = &profile.listener_path {
        oci["listenerPath"] = json!(p);
    }
    if let Some(m) = &profile.listener_metadata {
        oci["listenerMetadata"] = json!(m);
    }
    serde_json::from_value(oci).map_err(|e| e.to_string())
}

/// Docker's include/exclude semantics: includes need every listed cap, the arch in the list
/// and a new enough kernel; excludes drop the rule if any listed cap or the arch matches.
fn applies(rule: &Rule, caps: &[String], target: &Target) -> bool {
    let has_cap = |c: &String| caps.contains(c);
    if let Some(inc) = &rule.includes {
        if let Some(arches) = inc.arches.as_ref().filter(|a| !a.is_empty()) {
            if !arches.iter().any(|a| a == target.arch) {
                return false;
            }
        }
        if let Some(required) = inc.caps.as_ref().filter(|c| !c.is_empty()) {
            if !required.iter().all(has_cap) {
                return false;
            }
        }
        if let Some(min) = &inc.min_kernel {
            if let Some(min) = parse_kernel(min) {
                if target.kernel < min {
                    return false;
                }
            }
        }
    }
    if let Some(exc) = &rule.excludes {
        if exc.arches.iter().flatten().any(|a| a == target.arch) {
            return false;
        }
        if exc.caps.iter().flatten().any(has_cap) {
            return false;
        }
    }
    true
}
