//! Which URLs serve a registry: `insecure-registries` (plain HTTP allowed, TLS unverified)
//! and `registry-mirrors` (docker.io only), with dockerd's defaults and order.

use std::net::IpAddr;

use super::error::{Error, Result};
use super::reference::DEFAULT_DOMAIN;

/// The registry part of the daemon configuration (`insecure-registries`,
/// `registry-mirrors` in daemon.json).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// `host[:port]` or CIDR (`10.0.0.0/8`). Loopback is always insecure.
    pub insecure: Vec<String>,
    /// Mirror URLs for docker.io, e.g. `https://mirror.example.com`; tried in order before
    /// Docker Hub itself.
    pub mirrors: Vec<String>,
}

/// Docker Hub's registry host (the API endpoint behind `docker.io`).
const DOCKER_HUB_ORIGIN: &str = "https://registry-1.docker.io";

/// One base URL to talk to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Endpoint {
    /// `https` or `http`.
    pub scheme: &'static str,
    /// `host[:port]`.
    pub authority: String,
    /// False for insecure registries: their certificates are not checked (as dockerd).
    pub verify_tls: bool,
    pub mirror: bool,
}

impl Endpoint {
    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }
}

/// The ways to reach one registry or mirror, tried in order until one answers (https then
/// http for an insecure registry).
pub(crate) type EndpointGroup = Vec<Endpoint>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Self> {
        let (ip, prefix) = s.split_once('/')?;
        let net: IpAddr = ip.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { net, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        }
    }
}

/// The validated form of a [`RegistryConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    insecure_hosts: Vec<String>,
    insecure_cidrs: Vec<Cidr>,
    mirrors: Vec<Endpoint>,
    docker_hub: Endpoint,
}

impl Policy {
    pub fn new(config: &RegistryConfig) -> Result<Self> {
        let mut insecure_hosts = Vec::new();
        // dockerd's default: loopback is insecure.
        let mut insecure_cidrs = vec![
            Cidr::parse("127.0.0.0/8")
                .ok_or_else(|| Error::Internal("bad built-in cidr".into()))?,
            Cidr::parse("::1/128").ok_or_else(|| Error::Internal("bad built-in cidr".into()))?,
        ];
        for entry in &config.insecure {
            let entry = entry.trim();
            if entry.contains("://") {
                return Err(Error::InvalidArgument(format!(
                    "insecure registry {entry:?} should not contain '://'; give host[:port] or a CIDR such as 10.0.0.0/8"
                )));
            }
            if entry.contains('/') {
                let cidr = Cidr::parse(entry).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "insecure registry {entry:?} is not a valid CIDR; use e.g. 192.168.0.0/16"
                    ))
                })?;
                insecure_cidrs.push(cidr);
            } else if entry.is_empty() {
                return Err(Error::InvalidArgument(
                    "an insecure registry entry is empty; remove it or give host[:port]".into(),
                ));
            } else {
                insecure_hosts.push(entry.to_lowercase());
            }
        }
        let mut mirrors = Vec::new();
        for m in &config.mirrors {
            mirrors.push(parse_url_endpoint(m, true).map_err(|why| {
                Error::InvalidArgument(format!(
                    "invalid registry mirror {m:?}: {why}; use a URL such as https://mirror.example.com"
                ))
            })?);
        }
        let docker_hub = parse_url_endpoint(DOCKER_HUB_ORIGIN, false)
            .map_err(|why| Error::Internal(format!("built-in docker hub url: {why}")))?;
        let mut p = Self {
            insecure_hosts,
            insecure_cidrs,
            mirrors,
            docker_hub,
        };
        for i in 0..p.mirrors.len() {
            let authority = p.mirrors[i].authority.clone();
            p.mirrors[i].verify_tls =
                p.mirrors[i].scheme == "http" || !p.is_insecure(&authority, &[]);
        }
        Ok(p)
    }

    /// Where docker.io's content comes from when it is not a mirror (tests point it at a
    /// local registry).
    #[cfg(test)]
    pub fn set_docker_hub(&mut self, url: &str) -> Result<()> {
        self.docker_hub = parse_url_endpoint(url, false).map_err(Error::InvalidArgument)?;
        Ok(())
    }

    /// Whether `authority` (`host[:port]`) is an insecure registry. `resolved` are the host's
    /// addresses when it is a name (dockerd resolves names to match them against CIDRs).
    pub fn is_insecure(&self, authority: &str, resolved: &[IpAddr]) -> bool {
        let authority = authority.to_lowercase();
        let host = host_of(&authority);
        if self
            .insecure_hosts
            .iter()
            .any(|h| *h == authority || *h == host)
            || host == "localhost"
        {
            return true;
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ips: Vec<IpAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => resolved.to_vec(),
        };
        ips.iter()
            .any(|ip| self.insecure_cidrs.iter().any(|c| c.contains(*ip)))
    }

    /// The endpoint groups for a registry domain, in the order to try them.
    pub fn endpoints(&self, domain: &str, resolved: &[IpAddr]) -> Vec<EndpointGroup> {
        if domain == DEFAULT_DOMAIN {
            let mut groups: Vec<EndpointGroup> =
                self.mirrors.iter().map(|m| vec![m.clone()]).collect();
            groups.push(vec![self.docker_hub.clone()]);
            return groups;
        }
        let https = Endpoint {
            scheme: "https",
            authority: domain.to_string(),
            verify_tls: true,
            mirror: false,
        };
        if self.is_insecure(domain, resolved) {
            let http = Endpoint {
                scheme: "http",
                ..https.clone()
            };
            vec![vec![
                Endpoint {
                    verify_tls: false,
                    ..https
                },
                http,
            ]]
        } else {
            vec![vec![https]]
        }
    }

    /// Whether to check TLS certificates of `authority` (also for token servers).
    pub fn verify_tls_for(&self, authority: &str) -> bool {
        !self.is_insecure(authority, &[])
    }
}

/// The host part of `host[:port]` (IPv6 kept in brackets).
pub(crate) fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        match authority.find(']') {
            Some(i) => &authority[..=i],
            None => authority,
        }
    } else {
        authority.split(':').next().unwrap_or(authority)
    }
}

fn parse_url_endpoint(url: &str, mirror: bool) -> std::result::Result<Endpoint, String> {
    let url = url.trim().trim_end_matches('/');
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        ("https", r)
    } else if let Some(r) = url.strip_prefix("http://") {
        ("http", r)
    } else {
        return Err("the scheme must be http:// or https://".into());
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err("only scheme://host[:port] is allowed (no path, query or user)".into());
    }
    rest.parse::<http::uri::Authority>()
        .map_err(|e| format!("bad host: {e}"))?;
    Ok(Endpoint {
        scheme,
        authority: rest.to_lowercase(),
        verify_tls: true,
        mirror,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(groups: &[EndpointGroup]) -> Vec<Vec<String>> {
        groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|e| {
                        format!(
                            "{}{}",
                            e.base(),
                            if e.verify_tls { "" } else { " (unverified)" }
                        )
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn insecure_defaults_and_config() {
        let p = Policy::new(&RegistryConfig {
            insecure: vec![
                "myreg:5000".into(),
                "other".into(),
                "10.1.0.0/16".into(),
                "fd00::/8".into(),
            ],
            mirrors: vec![],
        })
        .unwrap();
        let lo: [IpAddr; 1] = ["127.0.0.1".parse().unwrap()];
        let table: Vec<(&str, &[IpAddr], bool)> = vec![
            ("127.0.0.1:5000", &[], true),
            ("127.1.2.3", &[], true),
            ("[::1]:5000", &[], true),
            ("localhost:5000", &[], true),
            ("localhost", &[], true),
            ("myreg:5000", &[], true),
            ("myreg:5001", &[], false),
            ("other:443", &[], true),
            ("10.1.200.3:5000", &[], true),
            ("10.2.0.1:5000", &[], false),
            ("[fd12::1]:5000", &[], true),
            ("registry.example.com", &[], false),
            ("points-to-loopback.example", &lo, true),
            ("128.0.0.1", &[], false),
        ];
        for (host, resolved, want) in table {
            assert_eq!(p.is_insecure(host, resolved), want, "{host}");
        }
        assert_eq!(
            names(&p.endpoints("127.0.0.1:5000", &[])),
            vec![vec![
                "https://127.0.0.1:5000 (unverified)".to_string(),
                "http://127.0.0.1:5000".to_string()
            ]]
        );
        assert_eq!(
            names(&p.endpoints("quay.io", &[])),
            vec![vec!["https://quay.io".to_string()]]
        );
        assert_eq!(
            names(&p.endpoints("docker.io", &[])),
            vec![vec!["https://registry-1.docker.io".to_string()]]
        );
    }

    #[test]
    fn mirrors_for_docker_hub_only() {
        let p = Policy::new(&RegistryConfig {
            insecure: vec!["mirror.lan:5000".into()],
            mirrors: vec![
                "https://mirror.example.com/".into(),
                "http://mirror.lan:5000".into(),
                "https://mirror.lan:5000".into(),
            ],
        })
        .unwrap();
        assert_eq!(
            names(&p.endpoints("docker.io", &[])),
            vec![
                vec!["https://mirror.example.com".to_string()],
                vec!["http://mirror.lan:5000".to_string()],
                vec!["https://mirror.lan:5000 (unverified)".to_string()],
                vec!["https://registry-1.docker.io".to_string()],
            ]
        );
        assert!(p
            .endpoints("docker.io", &[])
            .iter()
            .take(3)
            .all(|g| g[0].mirror));
        assert_eq!(
            names(&p.endpoints("ghcr.io", &[])),
            vec![vec!["https://ghcr.io".to_string()]]
        );
    }

    #[test]
    fn rejects_bad_config() {
        for (insecure, mirror) in [
            ("http://x:5000", None),
            ("10.0.0.0/33", None),
            ("nonsense/8", None),
            ("", None),
            ("ok", Some("mirror.example.com")),
            ("ok", Some("https://mirror.example.com/v2/")),
            ("ok", Some("ftp://m")),
            ("ok", Some("https://")),
        ] {
            let cfg = RegistryConfig {
                insecure: vec![insecure.into()],
                mirrors: mirror.map(|m| vec![m.to_string()]).unwrap_or_default(),
            };
            let e = Policy::new(&cfg).expect_err(insecure);
            assert_eq!(e.kind(), super::super::ErrorKind::InvalidArgument, "{e}");
        }
    }

    #[test]
    fn cidr_edges() {
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        let one = Cidr::parse("192.168.1.7/32").unwrap();
        assert!(one.contains("192.168.1.7".parse().unwrap()));
        assert!(!one.contains("192.168.1.8".parse().unwrap()));
        assert_eq!(host_of("[::1]:5000"), "[::1]");
        assert_eq!(host_of("a:1"), "a");
    }
}
