//! Platforms (`linux/arm/v7`): parsing, normalisation and matching as containerd's
//! `platforms` package does, so manifest lists resolve to what docker would pick.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    /// Empty when the architecture has no variant (or uses its default one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl Platform {
    /// Parses `os[/arch[/variant]]` or a bare architecture (`arm64`), as the `platform`
    /// query parameter of `POST /images/create` allows, and normalises it.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::InvalidArgument(format!(
                "invalid platform {s:?}: {why}; use os/arch[/variant], e.g. linux/arm64 or linux/arm/v7"
            ))
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() > 3 {
            return Err(bad("too many components"));
        }
        for p in &parts {
            let ok = !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
            if !ok {
                return Err(bad(&format!("{p:?} is not a valid component")));
            }
        }
        let host = Self::host();
        let p = match parts.as_slice() {
            [one] => {
                let lower = one.to_lowercase();
                if is_known_os(&lower) {
                    Platform { os: lower, ..host }
                } else if is_known_arch(&lower) {
                    Platform::new(&host.os, &lower, "")
                } else {
                    return Err(bad(&format!(
                        "{one:?} is neither a known os nor a known architecture"
                    )));
                }
            }
            [os, arch] => Platform::new(os, arch, ""),
            [os, arch, variant] => Platform::new(os, arch, variant),
            _ => return Err(bad("empty")),
        };
        if !is_known_os(&p.os) {
            return Err(bad(&format!("unknown operating system {:?}", p.os)));
        }
        if !is_known_arch(&p.architecture) {
            return Err(bad(&format!("unknown architecture {:?}", p.architecture)));
        }
        Ok(p)
    }

    /// A normalised platform from its parts (`aarch64` -> `arm64`, `armhf` -> `arm/v7`, …).
    pub fn new(os: &str, architecture: &str, variant: &str) -> Self {
        let os = match os.to_lowercase().as_str() {
            "macos" => "darwin".to_string(),
            o => o.to_string(),
        };
        let (architecture, variant) =
            normalize_arch(&architecture.to_lowercase(), &variant.to_lowercase());
        Self {
            os,
            architecture,
            variant,
        }
    }

    /// The platform this binary runs on (for arm, the variant comes from /proc/cpuinfo).
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "arm" => "arm",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "riscv64" => "riscv64",
            "s390x" => "s390x",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            "mips64" => "mips64",
            "loongarch64" => "loong64",
            other => other,
        };
        let variant = if arch == "arm" {
            host_arm_variant()
        } else {
            String::new()
        };
        Platform::new(std::env::consts::OS, arch, &variant)
    }

    /// How well an entry of a manifest list serves this (wanted) platform: `None` when it
    /// cannot run here, else a rank where lower is better (an exact variant beats an older
    /// compatible one, e.g. arm/v6 on an arm/v7 host).
    pub fn match_rank(&self, entry: &Platform) -> Option<usize> {
        let entry = Platform::new(&entry.os, &entry.architecture, &entry.variant);
        if entry.os != self.os || entry.architecture != self.architecture {
            return None;
        }
        let ladder = compatible_variants(&self.architecture, &self.variant);
        if ladder.is_empty() {
            return (entry.variant == self.variant).then_some(0);
        }
        ladder.iter().position(|v| *v == entry.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

fn is_known_os(os: &str) -> bool {
    matches!(
        os,
        "linux"
            | "windows"
            | "darwin"
            | "freebsd"
            | "netbsd"
            | "openbsd"
            | "solaris"
            | "illumos"
            | "android"
            | "ios"
            | "aix"
            | "dragonfly"
            | "plan9"
            | "js"
            | "wasip1"
    )
}

fn is_known_arch(arch: &str) -> bool {
    matches!(
        arch,
        "386"
            | "amd64"
            | "arm"
            | "arm64"
            | "ppc64"
            | "ppc64le"
            | "riscv64"
            | "s390x"
            | "mips"
            | "mipsle"
            | "mips64"
            | "mips64le"
            | "loong64"
            | "wasm"
            | "amd64p32"
            | "arm64be"
            | "armbe"
            | "ppc"
            | "riscv"
            | "sparc64"
    ) || matches!(
        arch,
        "i386" | "x86_64" | "x86-64" | "aarch64" | "armhf" | "armel"
    )
}

/// containerd's `normalizeArch`.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (a, v) = match arch {
        "i386" => ("386", String::new()),
        "x86_64" | "x86-64" | "amd64" => (
            "amd64",
            if variant == "v1" {
                String::new()
            } else {
                variant.to_string()
            },
        ),
        "aarch64" | "arm64" => (
            "arm64",
            if matches!(variant, "8" | "v8") {
                String::new()
            } else {
                variant.to_string()
            },
        ),
        "armhf" => ("arm", "v7".to_string()),
        "armel" => ("arm", "v6".to_string()),
        "arm" => (
            "arm",
            match variant {
                "" | "7" => "v7".to_string(),
                "5" | "6" | "8" => format!("v{variant}"),
                v => v.to_string(),
            },
        ),
        other => (other, variant.to_string()),
    };
    (a.to_string(), v)
}

/// Variants that run on a host of `arch/variant`, best first; empty when only an exact
/// variant match counts.
fn compatible_variants(arch: &str, variant: &str) -> Vec<String> {
    let down = |levels: &[&str], from: &str| -> Vec<String> {
        match levels.iter().position(|l| *l == from) {
            Some(i) => levels[..=i].iter().rev().map(|s| s.to_string()).collect(),
            None => vec![from.to_string()],
        }
    };
    match arch {
        "arm" => down(&["v5", "v6", "v7", "v8"], variant),
        // x86-64 micro-architecture levels; "" is v1.
        "amd64" => down(&["", "v2", "v3", "v4"], variant),
        _ => Vec::new(),
    }
}

fn host_arm_variant() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "CPU architecture").then(|| v.trim().to_string())
        })
        .and_then(|v| match v.as_str() {
            "5" | "5TE" | "5TEJ" => Some("v5".to_string()),
            "6" | "6TEJ" => Some("v6".to_string()),
            "7" => Some("v7".to_string()),
            "8" | "AArch64" => Some("v8".to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "v7".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let host = Platform::host();
        let table = [
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("linux/arm64", "linux/arm64"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/arm/v6", "linux/arm/v6"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/i386", "linux/386"),
            ("Linux/ARM64", "linux/arm64"),
            ("windows/amd64", "windows/amd64"),
            ("macos/arm64", "darwin/arm64"),
        ];
        for (input, want) in table {
            assert_eq!(Platform::parse(input).unwrap().to_string(), want, "{input}");
        }
        assert_eq!(
            Platform::parse("arm64").unwrap(),
            Platform::new(&host.os, "arm64", "")
        );
        assert_eq!(Platform::parse("linux").unwrap(), host);
        for bad in [
            "",
            "linux/",
            "/amd64",
            "linux/amd64/v7/x",
            "linux/foo",
            "plan10/amd64",
            "linux/amd 64",
            "nonsense",
        ] {
            let e = Platform::parse(bad).expect_err(bad);
            assert_eq!(e.kind(), super::super::ErrorKind::InvalidArgument);
            assert!(e.to_string().contains("invalid platform"), "{e}");
        }
    }

    #[test]
    fn host_is_known() {
        let h = Platform::host();
        assert!(is_known_os(&h.os) && is_known_arch(&h.architecture), "{h}");
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        assert_eq!(h.to_string(), "linux/amd64");
    }

    #[test]
    fn matches_with_variant_fallback() {
        let p = |s: &str| Platform::parse(s).unwrap();
        let e = |os: &str, a: &str, v: &str| Platform {
            os: os.into(),
            architecture: a.into(),
            variant: v.into(),
        };
        // wanted, entry, rank
        let table = [
            (p("linux/amd64"), e("linux", "amd64", ""), Some(0)),
            (p("linux/amd64"), e("linux", "amd64", "v3"), None),
            (p("linux/amd64/v3"), e("linux", "amd64", "v3"), Some(0)),
            (p("linux/amd64/v3"), e("linux", "amd64", ""), Some(2)),
            (p("linux/amd64"), e("linux", "arm64", ""), None),
            (p("linux/amd64"), e("windows", "amd64", ""), None),
            (p("linux/arm64"), e("linux", "arm64", "v8"), Some(0)),
            (p("linux/arm64"), e("linux", "arm64", ""), Some(0)),
            (p("linux/arm64"), e("linux", "aarch64", ""), Some(0)),
            (p("linux/arm/v7"), e("linux", "arm", "v7"), Some(0)),
            (p("linux/arm/v7"), e("linux", "arm", ""), Some(0)),
            (p("linux/arm/v7"), e("linux", "arm", "v6"), Some(1)),
            (p("linux/arm/v7"), e("linux", "arm", "v5"), Some(2)),
            (p("linux/arm/v6"), e("linux", "arm", "v7"), None),
            (p("linux/arm/v7"), e("linux", "arm", "v8"), None),
            (p("linux/arm/v8"), e("linux", "arm", "v7"), Some(1)),
            (p("linux/amd64"), e("unknown", "unknown", ""), None),
            (p("linux/riscv64"), e("linux", "riscv64", ""), Some(0)),
        ];
        for (want, entry, rank) in table {
            assert_eq!(want.match_rank(&entry), rank, "{want} vs {entry:?}");
        }
    }
}
