//! Credentials (docker's `AuthConfig`, as sent in `X-Registry-Auth`) and the registry's
//! `WWW-Authenticate` challenges.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::error::{Error, Result};

/// docker's `registry.AuthConfig`. Any field may be empty.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    /// base64 of `username:password` (what `~/.docker/config.json` stores).
    pub auth: String,
    pub email: String,
    pub serveraddress: String,
    /// An OAuth refresh token from `docker login` against a token server.
    pub identitytoken: String,
    /// A bearer token to send to the registry as is.
    pub registrytoken: String,
}

impl std::fmt::Debug for AuthConfig {
    // Never print secrets into logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("serveraddress", &self.serveraddress)
            .field("has_password", &!self.password.is_empty())
            .field("has_identitytoken", &!self.identitytoken.is_empty())
            .field("has_registrytoken", &!self.registrytoken.is_empty())
            .finish()
    }
}

impl AuthConfig {
    /// Decodes an `X-Registry-Auth` header value: base64url (padded or not, standard
    /// alphabet tolerated) of the JSON. An empty header or `{}` means anonymous.
    pub fn from_header(value: &str) -> Result<Self> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(Self::default());
        }
        let trimmed = value.trim_end_matches('=');
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(trimmed)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
            .map_err(|e| {
                Error::InvalidArgument(format!(
                    "invalid X-Registry-Auth header: not base64 ({e}); send base64url-encoded JSON like {{\"username\":…,\"password\":…}}"
                ))
            })?;
        serde_json::from_slice(&json).map_err(|e| {
            Error::InvalidArgument(format!(
                "invalid X-Registry-Auth header: the decoded value is not an auth JSON object ({e})"
            ))
        })
    }

    /// What to authenticate with, from the fields that are set (docker's precedence).
    pub(crate) fn credentials(&self) -> Credentials {
        if !self.registrytoken.is_empty() {
            return Credentials::RegistryToken(self.registrytoken.clone());
        }
        if !self.identitytoken.is_empty() {
            return Credentials::IdentityToken(self.identitytoken.clone());
        }
        if !self.username.is_empty() || !self.password.is_empty() {
            return Credentials::Basic(self.username.clone(), self.password.clone());
        }
        if !self.auth.is_empty() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(self.auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            if let Some((u, p)) = decoded.as_deref().and_then(|s| s.split_once(':')) {
                return Credentials::Basic(u.to_string(), p.to_string());
            }
        }
        Credentials::Anonymous
    }
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credentials {
    Anonymous,
    Basic(String, String),
    IdentityToken(String),
    RegistryToken(String),
}

impl Credentials {
    /// A short, non-reversible key so tokens fetched with one user's credentials are never
    /// handed to a request made with another's.
    pub(crate) fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        match self {
            Credentials::Anonymous => h.update(b"anon"),
            Credentials::Basic(u, p) => {
                h.update(b"basic\0");
                h.update(u.as_bytes());
                h.update(b"\0");
                h.update(p.as_bytes());
            }
            Credentials::IdentityToken(t) => {
                h.update(b"identity\0");
                h.update(t.as_bytes());
            }
            Credentials::RegistryToken(t) => {
                h.update(b"registry\0");
                h.update(t.as_bytes());
            }
        }
        hex::encode(&h.finalize()[..12])
    }

    pub(crate) fn basic_header(user: &str, pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    }
}

/// One challenge of a `WWW-Authenticate` header: scheme (lower-cased) and parameters
/// (names lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses every challenge of a `WWW-Authenticate` value, e.g.
/// `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"`.
/// Several challenges may share one header, separated by commas (RFC 7235).
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let s = header.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && (s[*i] == b' ' || s[*i] == b'\t' || s[*i] == b',') {
            *i += 1;
        }
    };
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b);
    loop {
        skip_ws(&mut i);
        if i >= s.len() {
            break;
        }
        // A token: either a new scheme or, if followed by '=', a parameter name.
        let start = i;
        while i < s.len() && is_token(s[i]) {
            i += 1;
        }
        if i == start {
            i += 1; // Garbage byte: skip it rather than loop forever.
            continue;
        }
        let word = &header[start..i];
        let mut j = i;
        while j < s.len() && (s[j] == b' ' || s[j] == b'\t') {
            j += 1;
        }
        if j < s.len() && s[j] == b'=' && !out.is_empty() {
            i = j + 1;
            while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
                i += 1;
            }
            let value = if i < s.len() && s[i] == b'"' {
                i += 1;
                let mut v = Vec::new();
                while i < s.len() && s[i] != b'"' {
                    if s[i] == b'\\' && i + 1 < s.len() {
                        i += 1;
                    }
                    v.push(s[i]);
                    i += 1;
                }
                i += 1; // Closing quote.
                String::from_utf8_lossy(&v).into_owned()
            } else {
                let vs = i;
                while i < s.len() && s[i] != b',' && s[i] != b' ' {
                    i += 1;
                }
                header[vs..i].to_string()
            };
            if let Some(last) = out.last_mut() {
                last.params.insert(word.to_ascii_lowercase(), value);
            }
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    out
}

/// A token server's answer (docker's token spec and OAuth2 both).
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    pub(crate) fn into_token(self) -> Option<(String, Option<u64>)> {
        let t = if self.token.is_empty() {
            self.access_token
        } else {
            self.token
        };
        (!t.is_empty()).then_some((t, self.expires_in))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn parses_challenges() {
        let table: Vec<(&str, Vec<Challenge>)> = vec![
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
                vec![ch(
                    "bearer",
                    &[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                        ("scope", "repository:library/busybox:pull"),
                    ],
                )],
            ),
            (
                r#"Basic realm="Registry Realm""#,
                vec![ch("basic", &[("realm", "Registry Realm")])],
            ),
            (
                r#"basic realm="a, b", Bearer realm=http://x/t , service = "s\"q""#,
                vec![
                    ch("basic", &[("realm", "a, b")]),
                    ch("bearer", &[("realm", "http://x/t"), ("service", "s\"q")]),
                ],
            ),
            ("Negotiate", vec![ch("negotiate", &[])]),
            ("", vec![]),
            (
                r#"Bearer realm="unterminated"#,
                vec![ch("bearer", &[("realm", "unterminated")])],
            ),
            (
                r#"Bearer Realm="r",error="invalid_token""#,
                vec![ch("bearer", &[("realm", "r"), ("error", "invalid_token")])],
            ),
        ];
        for (input, want) in table {
            assert_eq!(parse_challenges(input), want, "{input}");
        }
    }

    #[test]
    fn decodes_header_and_picks_credentials() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let json = r#"{"username":"u","password":"p?>","serveraddress":"127.0.0.1:5000"}"#;
        for enc in [
            URL_SAFE.encode(json),
            STANDARD.encode(json),
            URL_SAFE_NO_PAD_ENC(json),
        ] {
            let a = AuthConfig::from_header(&enc).unwrap();
            assert_eq!(a.serveraddress, "127.0.0.1:5000");
            assert!(a.credentials() == Credentials::Basic("u".into(), "p?>".into()));
        }
        assert!(AuthConfig::from_header("").unwrap().credentials() == Credentials::Anonymous);
        assert!(
            AuthConfig::from_header(&URL_SAFE.encode("{}"))
                .unwrap()
                .credentials()
                == Credentials::Anonymous
        );
        let tok =
            AuthConfig::from_header(&URL_SAFE.encode(r#"{"registrytoken":"abc","username":"u"}"#))
                .unwrap();
        assert!(tok.credentials() == Credentials::RegistryToken("abc".into()));
        let id = AuthConfig {
            identitytoken: "rt".into(),
            username: "u".into(),
            ..Default::default()
        };
        assert!(id.credentials() == Credentials::IdentityToken("rt".into()));
        let auth = AuthConfig {
            auth: STANDARD.encode("me:se:cret"),
            ..Default::default()
        };
        assert!(auth.credentials() == Credentials::Basic("me".into(), "se:cret".into()));
        assert!(AuthConfig::from_header("!!!")
            .unwrap_err()
            .to_string()
            .contains("X-Registry-Auth"));
        assert!(AuthConfig::from_header(&URL_SAFE.encode("[1]")).is_err());
        assert!(!format!("{auth:?}").contains("cret"));
        let a = Credentials::Basic("u".into(), "p".into()).fingerprint();
        assert_ne!(a, Credentials::Basic("u".into(), "q".into()).fingerprint());
        assert_ne!(a, Credentials::Anonymous.fingerprint());
    }

    #[allow(non_snake_case)]
    fn URL_SAFE_NO_PAD_ENC(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn token_response() {
        let t: TokenResponse = serde_json::from_str(r#"{"token":"a","expires_in":300}"#).unwrap();
        assert_eq!(t.into_token(), Some(("a".into(), Some(300))));
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"b"}"#).unwrap();
        assert_eq!(t.into_token(), Some(("b".into(), None)));
        let t: TokenResponse = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(t.into_token(), None);
    }
}
