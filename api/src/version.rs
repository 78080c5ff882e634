//! API version negotiation: `/v1.NN/...` prefixes, the supported range, and dockerd's messages.

use std::fmt;
use std::str::FromStr;

use crate::error::ApiError;

/// An Engine API version such as 1.47. Ordered, so handlers can write `v < ApiVersion::V1_44`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u16,
    pub minor: u16,
}

impl ApiVersion {
    pub const fn new(major: u16, minor: u16) -> Self {
        ApiVersion { major, minor }
    }
    pub const V1_24: ApiVersion = ApiVersion::new(1, 24);
    pub const V1_41: ApiVersion = ApiVersion::new(1, 41);
    pub const V1_42: ApiVersion = ApiVersion::new(1, 42);
    pub const V1_43: ApiVersion = ApiVersion::new(1, 43);
    pub const V1_44: ApiVersion = ApiVersion::new(1, 44);
    pub const V1_45: ApiVersion = ApiVersion::new(1, 45);
    pub const V1_47: ApiVersion = ApiVersion::new(1, 47);
}

/// Oldest version served.
pub const MIN_API_VERSION: ApiVersion = ApiVersion::V1_24;
/// Newest version served; also the `Api-Version` header.
pub const MAX_API_VERSION: ApiVersion = ApiVersion::V1_47;
/// Version used for unversioned paths.
pub const DEFAULT_API_VERSION: ApiVersion = ApiVersion::V1_47;

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for ApiVersion {
    type Err = ApiError;
    fn from_str(s: &str) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::invalid_argument(format!(
                "invalid API version {s:?}: expected MAJOR.MINOR such as 1.47"
            ))
        };
        let (major, minor) = s.split_once('.').ok_or_else(bad)?;
        let num = |p: &str| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse::<u16>().map_err(|_| bad())
        };
        Ok(ApiVersion::new(num(major)?, num(minor)?))
    }
}

/// Checks a requested version against the served range, with dockerd's wording.
pub fn check_version(v: ApiVersion) -> Result<ApiVersion, ApiError> {
    if v > MAX_API_VERSION {
        return Err(ApiError::invalid_argument(format!(
            "client version {v} is too new. Maximum supported API version is {MAX_API_VERSION}"
        )));
    }
    if v < MIN_API_VERSION {
        return Err(ApiError::invalid_argument(format!(
            "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok(v)
}

/// Splits a request path into its negotiated version and the unversioned rest.
///
/// `/v1.41/images/json` -> (1.41, `/images/json`); `/images/json` -> (default, same path).
/// `Ok(None)` means a `/vX...` prefix that is not a version at all (dockerd answers 404 there).
pub fn split_version(path: &str) -> Result<Option<(ApiVersion, &str)>, ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(Some((DEFAULT_API_VERSION, path)));
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    // dockerd's route pattern is /v{version:[0-9.]+}: anything else is just an unknown path.
    if ver.is_empty() || !ver.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Ok(Some((DEFAULT_API_VERSION, path)));
    }
    match ver.parse::<ApiVersion>() {
        Ok(v) => Ok(Some((check_version(v)?, tail))),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_versions() {
        let v: ApiVersion = "1.41".parse().unwrap();
        assert_eq!(v, ApiVersion::new(1, 41));
        assert!(v < ApiVersion::V1_44);
        assert!(ApiVersion::new(1, 9) < ApiVersion::new(1, 10));
        assert_eq!(ApiVersion::V1_47.to_string(), "1.47");
        for bad in [
            "", "1", "1.", ".1", "1.a", "a.1", "1.2.3", "1.-2", "99999.1",
        ] {
            assert!(bad.parse::<ApiVersion>().is_err(), "{bad}");
        }
    }

    #[test]
    fn splits_versioned_and_unversioned_paths() {
        assert_eq!(
            split_version("/v1.41/images/json").unwrap(),
            Some((ApiVersion::new(1, 41), "/images/json"))
        );
        assert_eq!(
            split_version("/images/json").unwrap(),
            Some((DEFAULT_API_VERSION, "/images/json"))
        );
        assert_eq!(
            split_version("/v1.24/_ping").unwrap(),
            Some((ApiVersion::V1_24, "/_ping"))
        );
        assert_eq!(
            split_version("/v1.47").unwrap(),
            Some((ApiVersion::V1_47, "/"))
        );
        // not a version: left for the router to 404
        assert_eq!(
            split_version("/volumes").unwrap(),
            Some((DEFAULT_API_VERSION, "/volumes"))
        );
        assert_eq!(split_version("/v1.2.3/_ping").unwrap(), None);
    }

    #[test]
    fn rejects_versions_outside_the_range_with_dockerds_words() {
        let e = split_version("/v1.99/version").unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(
            e.message,
            "client version 1.99 is too new. Maximum supported API version is 1.47"
        );
        let e = split_version("/v1.12/version").unwrap_err();
        assert_eq!(
            e.message,
            "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
        );
        assert!(check_version(MIN_API_VERSION).is_ok());
        assert!(check_version(MAX_API_VERSION).is_ok());
        assert!(check_version(ApiVersion::new(2, 0)).is_err());
    }
}
