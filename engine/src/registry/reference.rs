//! Image references, parsed and normalised exactly like docker's distribution/reference
//! (`ParseNormalizedNamed`, `TagNameOnly`, `FamiliarString`), without a regex engine.

use std::fmt;

use super::digest::Digest;
use super::error::{Error, Result};

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// A normalised image reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses what a user typed (`busybox`, `foo/bar:1`, `127.0.0.1:5000/a/b@sha256:…`) into
    /// a normalised reference, adding the `latest` tag when neither tag nor digest is given,
    /// as `docker pull` does.
    pub fn parse(s: &str) -> Result<Self> {
        let mut r = Self::parse_normalized_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// `reference.ParseNormalizedNamed`: like [`Reference::parse`] but never adds a tag.
    pub fn parse_normalized_named(s: &str) -> Result<Self> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::InvalidReference(format!(
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            )));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return Err(Error::InvalidReference(format!(
                "invalid reference format: repository name ({remote}) must be lowercase"
            )));
        }
        parse_full(s, &domain, &remainder)
    }

    /// The reference `POST /images/create?fromImage=…&tag=…` means: `tag` replaces any tag in
    /// `fromImage`, and a `tag` that is a digest (`sha256:…`) pins it (moby's rules). With
    /// neither a tag nor a digest anywhere, `latest` (skiff does not pull all tags).
    pub fn from_image_and_tag(from_image: &str, tag: &str) -> Result<Self> {
        // The docker CLI's `pull -a` sends a trailing ':'; moby strips it too.
        let from_image = from_image.strip_suffix(':').unwrap_or(from_image);
        let mut r = Self::parse_normalized_named(from_image)?;
        if !tag.is_empty() {
            if tag.contains(':') {
                let digest = Digest::parse(tag).map_err(|e| {
                    Error::InvalidReference(format!("invalid reference format: tag {tag:?}: {e}"))
                })?;
                r.tag = None;
                r.digest = Some(digest);
            } else {
                if !is_valid_tag(tag) {
                    return Err(Error::InvalidReference(format!(
                        "invalid tag format: {tag:?} (a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-')"
                    )));
                }
                r.tag = Some(tag.to_string());
            }
        }
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Registry host as written, e.g. `docker.io`, `127.0.0.1:5000`, `[::1]:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path inside the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Full name without tag or digest: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The name as docker shows it: `busybox`, `foo/bar`, `127.0.0.1:5000/a/b`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The whole reference as docker shows it (RepoTags, messages): `busybox:latest`,
    /// `127.0.0.1:5000/a/b:1`, `foo@sha256:…`.
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        push_tag_digest(&mut s, self.tag.as_deref(), self.digest.as_ref());
        s
    }

    /// The same repository with only this tag.
    pub fn with_tag(&self, tag: &str) -> Result<Self> {
        if !is_valid_tag(tag) {
            return Err(Error::InvalidReference(format!(
                "invalid tag format: {tag:?}"
            )));
        }
        Ok(Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned by digest only (what RepoDigests hold).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// What goes after `/manifests/` in the registry URL: the digest wins over the tag.
    pub(crate) fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        push_tag_digest(&mut s, self.tag.as_deref(), self.digest.as_ref());
        f.write_str(&s)
    }
}

impl std::str::FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

fn push_tag_digest(s: &mut String, tag: Option<&str>, digest: Option<&Digest>) {
    if let Some(t) = tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(d.as_str());
    }
}

/// `splitDockerDomain`: the first path element is a registry host only if it looks like one
/// (has a '.' or ':', is `localhost`, or has upper-case letters).
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i) => {
            let first = &name[..i];
            if !first.contains(['.', ':']) && first != "localhost" && first.to_lowercase() == first
            {
                (DEFAULT_DOMAIN.to_string(), name.to_string())
            } else {
                (first.to_string(), name[i + 1..].to_string())
            }
        }
        None => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// `reference.Parse` of `domain/remainder`, with docker's error texts.
fn parse_full(original: &str, domain: &str, remainder: &str) -> Result<Reference> {
    let invalid = || {
        Error::InvalidReference(format!(
            "invalid reference format: {original:?} is not a valid image reference (expected [registry[:port]/]name[:tag][@digest], lower case)"
        ))
    };
    if original.is_empty() {
        return Err(Error::InvalidReference(
            "invalid reference format: repository name must have at least one component".into(),
        ));
    }
    let (name_tag, digest) = match remainder.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (remainder, None),
    };
    // A tag separator is a ':' after the last '/' (the domain's port was split off already).
    let (path, tag) = match name_tag.rfind(':') {
        Some(i) if !name_tag[i..].contains('/') => (&name_tag[..i], Some(&name_tag[i + 1..])),
        _ => (name_tag, None),
    };
    if !is_valid_domain(domain) || !is_valid_path(path) {
        let lower_ok =
            is_valid_domain(&domain.to_lowercase()) && is_valid_path(&path.to_lowercase());
        if lower_ok {
            return Err(Error::InvalidReference(
                "invalid reference format: repository name must be lowercase".into(),
            ));
        }
        return Err(invalid());
    }
    if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(Error::InvalidReference(format!(
            "invalid reference format: repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )));
    }
    if let Some(t) = tag {
        if !is_valid_tag(t) {
            return Err(invalid());
        }
    }
    let digest = match digest {
        Some(d) => Some(
            Digest::parse(d)
                .map_err(|e| Error::InvalidReference(format!("invalid reference format: {e}")))?,
        ),
        None => None,
    };
    Ok(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`, components joined by '/'.
fn is_valid_path(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(is_valid_path_component)
}

fn is_valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__", or any number of '-'.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host(:port)?` where host is a DNS-ish name or a bracketed IPv6 address.
fn is_valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let addr = &rest[..end];
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        let after = &rest[end + 1..];
        match after.strip_prefix(':') {
            Some(p) => ("[v6]", Some(p)),
            None if after.is_empty() => ("[v6]", None),
            None => return false,
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if host == "[v6]" {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

/// `[\w][\w.-]{0,127}`.
pub(crate) fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= TAG_LENGTH_MAX
        && word(b[0])
        && b.iter().all(|x| word(*x) || *x == b'.' || *x == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalises_like_distribution_reference() {
        let d = format!("sha256:{HEX}");
        // (input, full form, familiar form)
        let table: Vec<(String, String, String)> = vec![
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            (
                "library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "docker.io/library/busybox:1",
                "docker.io/library/busybox:1",
                "busybox:1",
            ),
            ("foo/bar", "docker.io/foo/bar:latest", "foo/bar:latest"),
            (
                "foo/bar/baz:v1",
                "docker.io/foo/bar/baz:v1",
                "foo/bar/baz:v1",
            ),
            (
                "127.0.0.1:5000/a/b:1",
                "127.0.0.1:5000/a/b:1",
                "127.0.0.1:5000/a/b:1",
            ),
            (
                "127.0.0.1:5000/a",
                "127.0.0.1:5000/a:latest",
                "127.0.0.1:5000/a:latest",
            ),
            ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            (
                "localhost:5000/x:y",
                "localhost:5000/x:y",
                "localhost:5000/x:y",
            ),
            (
                "example.com/a_b/c__d/e--f/g.h:T_1.2-3",
                "example.com/a_b/c__d/e--f/g.h:T_1.2-3",
                "example.com/a_b/c__d/e--f/g.h:T_1.2-3",
            ),
            ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
            (
                "Example.COM/x",
                "Example.COM/x:latest",
                "Example.COM/x:latest",
            ),
        ]
        .into_iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .chain([
            (
                format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
                format!("busybox@{d}"),
            ),
            (
                format!("busybox:1@{d}"),
                format!("docker.io/library/busybox:1@{d}"),
                format!("busybox:1@{d}"),
            ),
            (
                format!("127.0.0.1:5000/a/b@{d}"),
                format!("127.0.0.1:5000/a/b@{d}"),
                format!("127.0.0.1:5000/a/b@{d}"),
            ),
        ])
        .collect();
        for (input, full, familiar) in table {
            let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), full, "full form of {input}");
            assert_eq!(r.familiar_string(), familiar, "familiar form of {input}");
            assert_eq!(Reference::parse(&full).unwrap(), r, "{full} round-trips");
        }
    }

    #[test]
    fn splits_parts() {
        let r = Reference::parse(&format!("127.0.0.1:5000/a/b:1@sha256:{HEX}")).unwrap();
        assert_eq!(r.domain(), "127.0.0.1:5000");
        assert_eq!(r.path(), "a/b");
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.digest().map(|d| d.hex()), Some(HEX));
        assert_eq!(r.manifest_ref(), format!("sha256:{HEX}"));
        assert_eq!(r.name(), "127.0.0.1:5000/a/b");
        assert_eq!(r.familiar_name(), "127.0.0.1:5000/a/b");
        let n = Reference::parse_normalized_named("busybox").unwrap();
        assert_eq!(n.tag(), None);
        assert_eq!(n.manifest_ref(), "latest");
        assert_eq!(
            Reference::parse("foo/bar").unwrap().familiar_name(),
            "foo/bar"
        );
        assert_eq!(
            Reference::parse("library/a/b").unwrap().familiar_name(),
            "library/a/b"
        );
    }

    #[test]
    fn rejects_invalid_references() {
        let long = format!("a/{}", "b".repeat(255));
        let table: Vec<(String, &str)> = vec![
            ("".into(), "must have at least one component"),
            (
                "Busybox".into(),
                "repository name (library/Busybox) must be lowercase",
            ),
            (
                "foo/Bar".into(),
                "repository name (foo/Bar) must be lowercase",
            ),
            (
                "127.0.0.1:5000/A".into(),
                "repository name (A) must be lowercase",
            ),
            (HEX.into(), "cannot specify 64-byte hexadecimal strings"),
            ("busybox:".into(), "is not a valid image reference"),
            ("busybox::1".into(), "is not a valid image reference"),
            (":tag".into(), "is not a valid image reference"),
            ("-foo".into(), "is not a valid image reference"),
            ("foo-".into(), "is not a valid image reference"),
            ("foo..bar".into(), "is not a valid image reference"),
            ("foo___bar".into(), "is not a valid image reference"),
            ("foo//bar".into(), "is not a valid image reference"),
            ("foo/".into(), "is not a valid image reference"),
            ("a b".into(), "is not a valid image reference"),
            ("busybox:.tag".into(), "is not a valid image reference"),
            (
                format!("busybox:{}", "t".repeat(129)),
                "is not a valid image reference",
            ),
            ("host:port/x".into(), "is not a valid image reference"),
            ("-host.com/x".into(), "is not a valid image reference"),
            ("busybox@sha256:abc".into(), "digest"),
            (format!("busybox@sha256:{}", HEX.to_uppercase()), "digest"),
            (format!("busybox@md5:{HEX}"), "digest"),
            ("busybox@".into(), "digest"),
            (long, "must not be more than 255 characters"),
        ];
        for (input, want) in table {
            let err = Reference::parse(&input).expect_err(&input);
            assert_eq!(err.kind(), super::super::ErrorKind::InvalidArgument);
            let msg = err.to_string();
            assert!(
                msg.contains(want),
                "{input:?}: {msg:?} should contain {want:?}"
            );
            assert!(!msg.ends_with('.'), "{msg}");
        }
    }

    #[test]
    fn images_create_from_image_and_tag() {
        let d = format!("sha256:{HEX}");
        let table: Vec<(&str, String, String)> = vec![
            (
                "busybox",
                "".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "busybox",
                "1.36".into(),
                "docker.io/library/busybox:1.36".into(),
            ),
            (
                "busybox:1",
                "2".into(),
                "docker.io/library/busybox:2".into(),
            ),
            (
                "busybox:",
                "latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            ("busybox:1", "".into(), "docker.io/library/busybox:1".into()),
            (
                "busybox",
                d.clone(),
                format!("docker.io/library/busybox@{d}"),
            ),
            (
                "busybox:1",
                d.clone(),
                format!("docker.io/library/busybox@{d}"),
            ),
            (
                "127.0.0.1:5000/x",
                "v1".into(),
                "127.0.0.1:5000/x:v1".into(),
            ),
        ];
        for (img, tag, want) in table {
            let r = Reference::from_image_and_tag(img, &tag).unwrap();
            assert_eq!(r.to_string(), want, "fromImage={img} tag={tag}");
        }
        for (img, tag) in [
            ("busybox", "sha256:abc"),
            ("busybox", "bad tag"),
            ("Bad", "1"),
            ("busybox", ".x"),
        ] {
            let err = Reference::from_image_and_tag(img, tag).expect_err(tag);
            assert_eq!(
                err.kind(),
                super::super::ErrorKind::InvalidArgument,
                "{img} {tag}"
            );
        }
    }

    #[test]
    fn with_tag_and_digest() {
        let r = Reference::parse("busybox:1").unwrap();
        let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(
            r.with_digest(d).familiar_string(),
            format!("busybox@sha256:{HEX}")
        );
        assert_eq!(
            r.with_tag("2").unwrap().to_string(),
            "docker.io/library/busybox:2"
        );
        assert!(r.with_tag("no good").is_err());
    }
}
