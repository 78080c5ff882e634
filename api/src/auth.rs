//! `X-Registry-Auth`: base64url JSON credentials sent with pull/push.

use std::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const REGISTRY_AUTH_HEADER: &str = "x-registry-auth";

/// Registry credentials as the clients send them (Go decodes field names case-insensitively,
/// so the capitalised spellings some clients use are accepted too).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(default, alias = "Username")]
    pub username: String,
    #[serde(default, alias = "Password")]
    pub password: String,
    /// base64("user:password"), as stored in ~/.docker/config.json.
    #[serde(default, alias = "Auth")]
    pub auth: String,
    #[serde(default, alias = "ServerAddress", alias = "serverAddress")]
    pub serveraddress: String,
    #[serde(default, alias = "IdentityToken", alias = "identityToken")]
    pub identitytoken: String,
    #[serde(default, alias = "RegistryToken", alias = "registryToken")]
    pub registrytoken: String,
}

// Credentials never reach logs.
impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("auth", &redact(&self.auth))
            .field("serveraddress", &self.serveraddress)
            .field("identitytoken", &redact(&self.identitytoken))
            .field("registrytoken", &redact(&self.registrytoken))
            .finish()
    }
}

impl AuthConfig {
    pub fn is_empty(&self) -> bool {
        *self == AuthConfig::default()
    }

    /// Username and password, from the explicit fields or else from `auth`.
    pub fn basic_credentials(&self) -> Option<(String, String)> {
        if !self.username.is_empty() || !self.password.is_empty() {
            return Some((self.username.clone(), self.password.clone()));
        }
        if self.auth.is_empty() {
            return None;
        }
        let raw = decode_base64(self.auth.trim())?;
        let text = String::from_utf8(raw).ok()?;
        let (u, p) = text.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    }
}

const INDIFFERENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const URL_SAFE_ANY: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, INDIFFERENT);
const STANDARD_ANY: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, INDIFFERENT);

/// base64url as the docker CLI sends it, padded or not; dockerode sends the standard
/// alphabet, so that is accepted too.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_ANY
        .decode(s)
        .or_else(|_| STANDARD_ANY.decode(s))
        .ok()
}

/// Decodes an `X-Registry-Auth` header value; absent, empty or `{}` means no credentials.
pub fn decode_registry_auth(header: Option<&str>) -> Result<Option<AuthConfig>, ApiError> {
    let value = header.map(str::trim).unwrap_or("");
    if value.is_empty() {
        return Ok(None);
    }
    let raw = decode_base64(value).ok_or_else(|| {
        ApiError::invalid_argument("invalid X-Registry-Auth header: not base64url; send base64url-encoded JSON credentials")
    })?;
    let auth: AuthConfig = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::invalid_argument(format!(
            "invalid X-Registry-Auth header: {e}; send base64url-encoded JSON such as {{\"username\":\"u\",\"password\":\"p\"}}"
        ))
    })?;
    Ok((!auth.is_empty()).then_some(auth))
}

/// Encodes credentials the way the docker CLI does (padded base64url JSON).
pub fn encode_registry_auth(auth: &AuthConfig) -> String {
    let json = serde_json::to_vec(auth).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE.encode(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};

    #[test]
    fn decodes_padded_unpadded_and_standard_base64() {
        // '?' in the password makes base64 and base64url differ ('/' vs '_')
        let json = r#"{"username":"me","password":"s3cr?t>>","serveraddress":"127.0.0.1:5000"}"#;
        for enc in [
            URL_SAFE.encode(json),
            URL_SAFE_NO_PAD.encode(json),
            STANDARD.encode(json),
        ] {
            let a = decode_registry_auth(Some(&enc)).unwrap().unwrap();
            assert_eq!(a.username, "me");
            assert_eq!(a.password, "s3cr?t>>");
            assert_eq!(a.serveraddress, "127.0.0.1:5000");
        }
        let a = decode_registry_auth(Some(&URL_SAFE.encode(r#"{"registrytoken":"tok"}"#)))
            .unwrap()
            .unwrap();
        assert_eq!(a.registrytoken, "tok");
        assert_eq!(a.basic_credentials(), None);
    }

    #[test]
    fn empty_headers_mean_no_credentials() {
        assert_eq!(decode_registry_auth(None).unwrap(), None);
        assert_eq!(decode_registry_auth(Some("")).unwrap(), None);
        assert_eq!(
            decode_registry_auth(Some(&URL_SAFE.encode("{}"))).unwrap(),
            None
        );
    }

    #[test]
    fn malformed_headers_are_400() {
        for bad in [
            "***".to_string(),
            URL_SAFE.encode("not json"),
            URL_SAFE.encode("[1]"),
        ] {
            let e = decode_registry_auth(Some(&bad)).unwrap_err();
            assert_eq!(e.status().as_u16(), 400);
            assert!(
                e.message.starts_with("invalid X-Registry-Auth header"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn round_trips_and_reads_auth_field_and_redacts() {
        let a = AuthConfig {
            auth: STANDARD.encode("bob:pw:with:colons"),
            serveraddress: "reg".into(),
            ..Default::default()
        };
        let back = decode_registry_auth(Some(&encode_registry_auth(&a)))
            .unwrap()
            .unwrap();
        assert_eq!(back, a);
        assert_eq!(
            back.basic_credentials(),
            Some(("bob".into(), "pw:with:colons".into()))
        );
        let dbg = format!(
            "{:?}",
            AuthConfig {
                password: "hunter2".into(),
                ..Default::default()
            }
        );
        assert!(!dbg.contains("hunter2"));
        let caps: AuthConfig =
            serde_json::from_str(r#"{"Username":"u","ServerAddress":"s"}"#).unwrap();
        assert_eq!(
            (caps.username.as_str(), caps.serveraddress.as_str()),
            ("u", "s")
        );
    }
}
