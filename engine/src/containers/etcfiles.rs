//! `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` for a container: files in the
//! container's directory, bind-mounted into it by the spec (as dockerd does).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct EtcPaths {
    pub hostname: PathBuf,
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
}

pub struct EtcRequest<'a> {
    pub hostname: &'a str,
    pub domainname: &'a str,
    /// `host` network mode: the host's own files are used.
    pub host_network: bool,
    /// `ExtraHosts` entries, `name:ip`.
    pub extra_hosts: &'a [String],
    /// `Dns`, `DnsSearch`, `DnsOptions`.
    pub dns: &'a [String],
    pub dns_search: &'a [String],
    pub dns_options: &'a [String],
}

const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Writes the three files into `dir` (overwriting: a restart refreshes them).
pub fn write(dir: &Path, req: &EtcRequest<'_>) -> Result<EtcPaths> {
    let paths = EtcPaths {
        hostname: dir.join("hostname"),
        hosts: dir.join("hosts"),
        resolv_conf: dir.join("resolv.conf"),
    };
    let put = |p: &Path, s: &str| {
        fs::write(p, s).map_err(|e| Error::io(format!("cannot write {}", p.display()), e))
    };
    let hostname = if req.host_network {
        fs::read_to_string("/etc/hostname").unwrap_or_else(|_| format!("{}\n", req.hostname))
    } else {
        format!("{}\n", req.hostname)
    };
    put(&paths.hostname, &hostname)?;
    let mut hosts = if req.host_network {
        fs::read_to_string("/etc/hosts").unwrap_or_else(|_| DEFAULT_HOSTS.to_string())
    } else {
        DEFAULT_HOSTS.to_string()
    };
    for entry in req.extra_hosts {
        if let Some((name, ip)) = entry.split_once(':') {
            let ip = if ip == "host-gateway" {
                "127.0.0.1"
            } else {
                ip
            };
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    put(&paths.hosts, &hosts)?;
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    put(&paths.resolv_conf, &resolv_conf(&host_resolv, req))?;
    Ok(paths)
}

/// The host's resolv.conf without loopback nameservers (they cannot be reached from the
/// container's network namespace), Docker's public fallback when none remain, and the
/// container's own `Dns*` settings replacing the host's.
pub fn resolv_conf(host: &str, req: &EtcRequest<'_>) -> String {
    let mut out = String::new();
    let mut nameservers = Vec::new();
    let mut search: Option<String> = None;
    let mut options: Option<String> = None;
    for line in host.lines() {
        let t = line.trim();
        let mut words = t.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ns) = words.next() {
                    nameservers.push(ns.to_string());
                }
            }
            Some("search") | Some("domain") => search = Some(words.collect::<Vec<_>>().join(" ")),
            Some("options") => options = Some(words.collect::<Vec<_>>().join(" ")),
            _ => {}
        }
    }
    if !req.host_network {
        nameservers.retain(|ns| !is_loopback(ns));
    }
    if !req.dns.is_empty() {
        nameservers = req.dns.to_vec();
    }
    if nameservers.is_empty() {
        nameservers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    if !req.dns_search.is_empty() {
        search = Some(req.dns_search.join(" "));
    }
    if !req.dns_options.is_empty() {
        options = Some(req.dns_options.join(" "));
    }
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if let Some(s) = search.filter(|s| !s.is_empty() && s != ".") {
        out.push_str(&format!("search {s}\n"));
    }
    if let Some(o) = options.filter(|o| !o.is_empty()) {
        out.push_str(&format!("options {o}\n"));
    }
    out
}

fn is_loopback(ns: &str) -> bool {
    ns.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(dns: &'a [String]) -> EtcRequest<'a> {
        EtcRequest {
            hostname: "abc123",
            domainname: "",
            host_network: false,
            extra_hosts: &[],
            dns,
            dns_search: &[],
            dns_options: &[],
        }
    }

    #[test]
    fn loopback_nameservers_are_dropped_with_a_fallback() {
        let host =
            "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch lan\noptions ndots:2\n";
        let out = resolv_conf(host, &req(&[]));
        assert_eq!(out, "nameserver 10.0.0.1\nsearch lan\noptions ndots:2\n");
        let out = resolv_conf("nameserver 127.0.0.1\nnameserver ::1\n", &req(&[]));
        assert_eq!(out, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let dns = vec!["1.1.1.1".to_string()];
        assert_eq!(
            resolv_conf(host, &req(&dns)).lines().next(),
            Some("nameserver 1.1.1.1")
        );
    }

    #[test]
    fn files_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let extra = vec!["db:10.1.2.3".to_string()];
        let mut r = req(&[]);
        r.extra_hosts = &extra;
        let p = write(dir.path(), &r).unwrap();
        assert_eq!(fs::read_to_string(&p.hostname).unwrap(), "abc123\n");
        let hosts = fs::read_to_string(&p.hosts).unwrap();
        assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(hosts.ends_with("10.1.2.3\tdb\n"));
        assert!(p.resolv_conf.exists());
    }
}
