//! Image names: references as the store keeps them (fully qualified) and as docker shows
//! them (familiar), and resolving whatever a client typed to one image ID.

use skiff_api::ApiError;
use skiff_storage::{Digest, Refs};

use super::errors;
use crate::registry::Reference;

/// The store's key for a reference: `docker.io/library/busybox:latest` or `name@sha256:…`.
pub fn store_key(r: &Reference) -> String {
    let mut s = r.name();
    if let Some(tag) = r.tag() {
        s.push(':');
        s.push_str(tag);
    }
    if let Some(d) = r.digest() {
        s.push('@');
        s.push_str(d.as_str());
    }
    s
}

/// A stored key as docker shows it (`busybox:latest`); keys that no longer parse are shown
/// as stored rather than hidden.
pub fn familiar(key: &str) -> String {
    Reference::parse_normalized_named(key)
        .map(|r| r.familiar_string())
        .unwrap_or_else(|_| key.to_string())
}

/// Repository of a stored key: `docker.io/library/busybox`.
pub fn repository(key: &str) -> String {
    Reference::parse_normalized_named(key)
        .map(|r| r.name())
        .unwrap_or_else(|_| key.to_string())
}

pub fn short_id(id: &Digest) -> &str {
    &id.hex()[..12]
}

/// How a name matched an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// Through this reference (a store key of `refs`).
    Reference(String),
    /// Through the image ID or an ID prefix.
    Id,
}

/// Resolves `name` like dockerd: a full ID, a reference (tag or digest), then an ID prefix.
pub fn resolve(name: &str, refs: &Refs, ids: &[Digest]) -> Result<(Digest, Matched), ApiError> {
    let not_found = || ApiError::not_found(format!("No such image: {name}"));
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    let is_hex = !hex.is_empty() && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if hex.len() == 64 && is_hex {
        let id = Digest::from_hex(hex).map_err(errors::store)?;
        return if ids.contains(&id) {
            Ok((id, Matched::Id))
        } else {
            Err(not_found())
        };
    }
    if !name.starts_with("sha256:") {
        if let Ok(r) = Reference::parse(name) {
            let key = store_key(&r);
            if let Some(id) = refs.resolve(&key) {
                return Ok((id.clone(), Matched::Reference(key)));
            }
        }
    }
    if is_hex {
        let mut found = ids.iter().filter(|id| id.hex().starts_with(hex));
        if let Some(first) = found.next() {
            if found.next().is_some() {
                return Err(ApiError::invalid_argument(format!(
                    "image ID prefix {name} is ambiguous; give more characters"
                )));
            }
            return Ok((first.clone(), Matched::Id));
        }
    }
    Err(not_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        Digest::from_hex(&c.to_string().repeat(64)).unwrap()
    }

    #[test]
    fn resolves_ids_references_and_prefixes() {
        let mut refs = Refs::default();
        refs.tags
            .insert("docker.io/library/busybox:latest".into(), d('a'));
        refs.tags.insert("127.0.0.1:5000/x/y:1".into(), d('b'));
        let ids = vec![d('a'), d('b')];
        assert_eq!(resolve("busybox", &refs, &ids).unwrap().0, d('a'));
        assert_eq!(
            resolve("docker.io/library/busybox:latest", &refs, &ids)
                .unwrap()
                .1,
            Matched::Reference("docker.io/library/busybox:latest".into())
        );
        assert_eq!(
            resolve("127.0.0.1:5000/x/y:1", &refs, &ids).unwrap().0,
            d('b')
        );
        assert_eq!(resolve("bbbb", &refs, &ids).unwrap(), (d('b'), Matched::Id));
        assert_eq!(
            resolve(d('a').as_str(), &refs, &ids).unwrap().1,
            Matched::Id
        );
        assert!(resolve("cccc", &refs, &ids).is_err());
        assert!(resolve("busybox:2", &refs, &ids).is_err());
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar("127.0.0.1:5000/x/y:1"), "127.0.0.1:5000/x/y:1");
    }
}
