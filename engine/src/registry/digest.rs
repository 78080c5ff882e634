//! Content digests (`sha256:<hex>`), validated like opencontainers/go-digest.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// A validated digest string: a supported algorithm and lower-case hex of the right length.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }
}

impl Digest {
    /// Parses `algorithm:hex`; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(format!(
                "invalid digest {s:?}: expected algorithm:hex, e.g. sha256:<64 hex digits>"
            ));
        };
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha384" => Algorithm::Sha384,
            "sha512" => Algorithm::Sha512,
            _ => return Err(format!("invalid digest {s:?}: unsupported digest algorithm {alg:?} (use sha256, sha384 or sha512)")),
        };
        if hex.len() != algorithm.hex_len()
            || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(format!(
                "invalid digest {s:?}: {alg} needs {} lower-case hex digits",
                algorithm.hex_len()
            ));
        }
        Ok(Self(s.to_string()))
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Self(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The digest of `bytes` with this digest's algorithm (to compare with it).
    pub fn same_algorithm_of(&self, bytes: &[u8]) -> Self {
        let hex = match self.algorithm() {
            Algorithm::Sha256 => hex::encode(Sha256::digest(bytes)),
            Algorithm::Sha384 => hex::encode(Sha384::digest(bytes)),
            Algorithm::Sha512 => hex::encode(Sha512::digest(bytes)),
        };
        Self(format!("{}:{hex}", self.algorithm().name()))
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.0.split_once(':').map(|(a, _)| a) {
            Some("sha384") => Algorithm::Sha384,
            Some("sha512") => Algorithm::Sha512,
            _ => Algorithm::Sha256,
        }
    }

    pub fn hex(&self) -> &str {
        self.0.split_once(':').map(|(_, h)| h).unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_computes() {
        let d = Digest::sha256_of(b"hello");
        assert_eq!(
            d.as_str(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert_eq!(d.same_algorithm_of(b"hello"), d);
        assert_ne!(d.same_algorithm_of(b"hellO"), d);
        let s512 = Digest::parse(&format!("sha512:{}", "a".repeat(128))).unwrap();
        assert_eq!(s512.same_algorithm_of(b"x").algorithm(), Algorithm::Sha512);
        for bad in [
            "sha256",
            "sha256:",
            "sha256:abc",
            "md5:0123",
            "SHA256:aa",
            &format!("sha256:{}", "A".repeat(64)),
        ] {
            let e = Digest::parse(bad).expect_err(bad);
            assert!(e.contains("invalid digest"), "{e}");
        }
    }
}
