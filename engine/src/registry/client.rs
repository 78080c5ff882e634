//! The registry client: endpoint choice (mirrors, https/http), the auth dance (anonymous,
//! Basic, Bearer tokens with a per-scope cache) and manifest/blob requests with retries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use super::auth::{parse_challenges, AuthConfig, Challenge, Credentials, TokenResponse};
use super::digest::Digest;
use super::endpoints::{host_of, Endpoint, EndpointGroup, Policy, RegistryConfig};
use super::error::{Error, Result};
use super::manifest::{
    check_image, parse_document, select_platform, Descriptor, Document, MANIFEST_ACCEPT,
    MAX_MANIFEST_SIZE,
};
use super::platform::Platform;
use super::reference::Reference;
use super::transport::{error_chain, read_capped, redact, Body, Transport};

/// Retries of one request after a connection error or a 5xx, before giving up.
const REQUEST_RETRIES: u32 = 2;
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Largest image config skiff fetches into memory.
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;
/// Largest error body read from a registry (only for its message).
const MAX_ERROR_BODY: u64 = 64 << 10;
const MAX_CACHED_TOKENS: usize = 256;

/// A registry client shared by all pulls of a daemon. Cheap to create: TLS and connection
/// pools are only set up by the first request.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Shared>,
}

struct Shared {
    /// The settings the policy was built from (push builds its own uploader from them).
    config: RegistryConfig,
    policy: Policy,
    transport: Transport,
    /// Per endpoint group (keyed by its first base URL): the endpoint that answered and its
    /// auth challenges.
    pinged: Mutex<HashMap<String, Pinged>>,
    /// Bearer tokens by (registry authority, scope, credentials fingerprint).
    tokens: Mutex<HashMap<TokenKey, (String, Instant)>>,
}

/// (registry authority, scope, credentials fingerprint).
type TokenKey = (String, String, String);

#[derive(Clone)]
struct Pinged {
    endpoint: Endpoint,
    challenges: Vec<Challenge>,
}

/// What an image reference resolves to in the registry.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub reference: Reference,
    /// Digest of the image manifest (for this platform when the reference names a list).
    pub manifest_digest: Digest,
    /// The image manifest exactly as the registry sent it.
    pub manifest_bytes: Vec<u8>,
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// When the reference named a manifest list / OCI index: its digest (docker records
    /// this one in RepoDigests) and bytes.
    pub index_digest: Option<Digest>,
    pub index_bytes: Option<Vec<u8>>,
    /// The platform of the chosen list entry, when there was a list.
    pub platform: Option<Platform>,
}

impl RegistryClient {
    /// Validates the configuration; no network, no TLS set-up yet.
    pub fn new(config: &RegistryConfig) -> Result<Self> {
        Ok(Self::from_policy(Policy::new(config)?, config.clone()))
    }

    fn from_policy(policy: Policy, config: RegistryConfig) -> Self {
        Self {
            inner: Arc::new(Shared {
                config,
                policy,
                transport: Transport::default(),
                pinged: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
            }),
        }
    }

    #[cfg(test)]
    pub(crate) fn with_docker_hub(config: &RegistryConfig, hub: &str) -> Result<Self> {
        let mut p = Policy::new(config)?;
        p.set_docker_hub(hub)?;
        Ok(Self::from_policy(p, config.clone()))
    }

    /// The insecure registries and mirrors this client was configured with.
    pub fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    /// A handle on one repository, authenticating with `auth` (from `X-Registry-Auth`).
    pub fn repository(&self, reference: &Reference, auth: &AuthConfig) -> Repository {
        Repository {
            inner: Arc::new(RepoInner {
                shared: self.inner.clone(),
                reference: reference.clone(),
                creds: auth.credentials(),
                scope: format!("repository:{}:pull", reference.path()),
                groups: tokio::sync::OnceCell::new(),
                preferred: Mutex::new(0),
            }),
        }
    }
}

/// One repository of one registry, with one set of credentials. Cheap to clone.
#[derive(Clone)]
pub struct Repository {
    inner: Arc<RepoInner>,
}

struct RepoInner {
    shared: Arc<Shared>,
    reference: Reference,
    creds: Credentials,
    scope: String,
    groups: tokio::sync::OnceCell<Vec<EndpointGroup>>,
    /// The endpoint group (mirror or origin) that last served this repository.
    preferred: Mutex<usize>,
}

#[derive(Deserialize, Default)]
struct RegistryErrors {
    #[serde(default)]
    errors: Vec<RegistryErrorEntry>,
}

#[derive(Deserialize)]
struct RegistryErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// What a registry said in an error answer: its `errors[]` as `code: message`, or the
/// HTTP status when the body says nothing useful.
pub(crate) async fn registry_said(resp: Response<Incoming>, cap: u64) -> (StatusCode, String) {
    let status = resp.status();
    let body = read_capped(resp, cap, "error body")
        .await
        .unwrap_or_default();
    let parsed: RegistryErrors = serde_json::from_slice(&body).unwrap_or_default();
    let detail: Vec<String> = parsed
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.code.to_lowercase(), e.message))
        .collect();
    let said = if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        detail.join("; ")
    };
    (status, said)
}

/// The endpoint groups (mirrors, then the origin) for a registry domain. dockerd matches
/// a registry's resolved addresses against insecure CIDRs; IP literals and docker.io (never
/// insecure) need no lookup.
pub(crate) async fn endpoint_groups(policy: &Policy, domain: &str) -> Vec<EndpointGroup> {
    let host = host_of(domain);
    let skip = host.parse::<IpAddr>().is_ok()
        || host.starts_with('[')
        || domain == super::reference::DEFAULT_DOMAIN;
    let resolved: Vec<IpAddr> = if skip {
        Vec::new()
    } else {
        match tokio::net::lookup_host((host, 0)).await {
            Ok(addrs) => addrs.map(|a| a.ip()).collect(),
            Err(_) => Vec::new(),
        }
    };
    policy.endpoints(domain, &resolved)
}

impl Repository {
    pub fn reference(&self) -> &Reference {
        &self.inner.reference
    }

    /// Fetches the manifest the reference names; a manifest list / OCI index is resolved to
    /// `platform` (default: this host's). Digests are verified.
    pub async fn resolve(&self, platform: Option<&Platform>) -> Result<ResolvedImage> {
        let r = &self.inner.reference;
        let what = format!("manifest for {}", r.familiar_string());
        let (bytes, content_type, header_digest) =
            self.fetch_manifest(&r.manifest_ref(), &what).await?;
        let digest = verify_manifest_digest(&bytes, r.digest(), header_digest.as_deref(), &what)?;
        let (media_type, doc) = parse_document(&bytes, content_type.as_deref(), &what)?;
        let index = match doc {
            Document::Image(m) => {
                check_image(&m, &what)?;
                return Ok(ResolvedImage {
                    reference: r.clone(),
                    manifest_digest: digest,
                    manifest_bytes: bytes,
                    media_type,
                    config: m.config,
                    layers: m.layers,
                    index_digest: None,
                    index_bytes: None,
                    platform: None,
                });
            }
            Document::Index(i) => i,
        };
        let want = platform.cloned().unwrap_or_else(Platform::host);
        let entry = select_platform(&index, &want).ok_or_else(|| {
            let mut have: Vec<String> = index
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                .filter(|p| !p.starts_with("unknown"))
                .collect();
            have.dedup();
            Error::NotFound(format!(
                "no matching manifest for {want} in the manifest list entries of {}: the image is built for {}; pull another tag or ask for one of those platforms",
                r.familiar_string(),
                if have.is_empty() { "no platform".to_string() } else { have.join(", ") }
            ))
        })?;
        let entry = entry.clone();
        let what_entry = format!(
            "manifest {} ({want}) of {}",
            entry.digest,
            r.familiar_string()
        );
        if entry.size > MAX_MANIFEST_SIZE {
            return Err(Error::InvalidArgument(format!(
                "{what_entry} is {} bytes, more than the {MAX_MANIFEST_SIZE} bytes skiff accepts",
                entry.size
            )));
        }
        let (mbytes, mct, mheader) = self
            .fetch_manifest(entry.digest.as_str(), &what_entry)
            .await?;
        let mdigest = verify_manifest_digest(
            &mbytes,
            Some(&entry.digest),
            mheader.as_deref(),
            &what_entry,
        )?;
        let (mmt, mdoc) = parse_document(&mbytes, mct.as_deref(), &what_entry)?;
        let Document::Image(m) = mdoc else {
            return Err(Error::InvalidArgument(format!(
                "{what_entry} is itself a list; nested manifest lists are not supported"
            )));
        };
        check_image(&m, &what_entry)?;
        Ok(ResolvedImage {
            reference: r.clone(),
            manifest_digest: mdigest,
            manifest_bytes: mbytes,
            media_type: mmt,
            config: m.config,
            layers: m.layers,
            index_digest: Some(digest),
            index_bytes: Some(bytes),
            platform: entry.platform.clone(),
        })
    }

    /// A small blob (an image config) in memory, size-capped and digest-verified.
    pub async fn fetch_blob_bytes(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        let what = format!("blob {} of {}", desc.digest, self.inner.reference.name());
        if desc.size > MAX_CONFIG_SIZE {
            return Err(Error::InvalidArgument(format!(
                "{what} is {} bytes, more than the {MAX_CONFIG_SIZE} bytes skiff reads into memory; this is not a normal image config",
                desc.size
            )));
        }
        let resp = self.get_blob(&desc.digest, None, &what).await?;
        let bytes = read_capped(resp, desc.size, &what).await?;
        if bytes.len() as u64 != desc.size {
            return Err(Error::Unavailable(format!(
                "{what}: the registry sent {} bytes, the descriptor says {}; try again",
                bytes.len(),
                desc.size
            )));
        }
        let actual = desc.digest.same_algorithm_of(&bytes);
        if actual != desc.digest {
            return Err(Error::DigestMismatch {
                what,
                expected: desc.digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// GET of a blob, optionally from `offset` on (a `Range` request).
    pub(crate) async fn get_blob(
        &self,
        digest: &Digest,
        offset: Option<u64>,
        what: &str,
    ) -> Result<Response<Incoming>> {
        let path = format!("/v2/{}/blobs/{}", self.inner.reference.path(), digest);
        let mut headers = Vec::new();
        if let Some(o) = offset {
            headers.push((http::header::RANGE, format!("bytes={o}-")));
        }
        self.get(&path, &headers, what).await
    }

    /// Returns (bytes, Content-Type, Docker-Content-Digest).
    async fn fetch_manifest(
        &self,
        reference: &str,
        what: &str,
    ) -> Result<(Vec<u8>, Option<String>, Option<String>)> {
        let path = format!("/v2/{}/manifests/{reference}", self.inner.reference.path());
        let resp = self
            .get(&path, &[(ACCEPT, MANIFEST_ACCEPT.to_string())], what)
            .await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(CONTENT_TYPE.as_str());
        let digest = header("docker-content-digest");
        let bytes = read_capped(resp, MAX_MANIFEST_SIZE, what).await?;
        Ok((bytes, content_type, digest))
    }

    /// `docker login`: checks the credentials with an authorized `GET /v2/` on the origin
    /// (never a mirror). Anonymous access counts as success when no credentials were given.
    pub async fn check_login(&self) -> Result<()> {
        let groups = self.groups().await;
        let origin = groups
            .iter()
            .rev()
            .find(|g| g.iter().all(|e| !e.mirror))
            .or(groups.last())
            .ok_or_else(|| {
                Error::Internal(format!("no endpoint for {}", self.inner.reference.domain()))
            })?;
        let pinged = self.ping(origin).await?;
        self.send_authorized(pinged, "/v2/", &[], "registry login")
            .await
            .map(drop)
    }

    async fn groups(&self) -> &Vec<EndpointGroup> {
        self.inner
            .groups
            .get_or_init(|| {
                endpoint_groups(&self.inner.shared.policy, self.inner.reference.domain())
            })
            .await
    }

    /// A GET through the endpoint groups (mirrors first, then the origin), with auth and
    /// retries. Returns the response for any 2xx status, an error otherwise.
    pub(crate) async fn get(
        &self,
        path: &str,
        headers: &[(HeaderName, String)],
        what: &str,
    ) -> Result<Response<Incoming>> {
        let groups = self.groups().await;
        let preferred = self.inner.preferred.lock().map(|g| *g).unwrap_or(0);
        let order: Vec<usize> = std::iter::once(preferred)
            .chain((0..groups.len()).filter(|i| *i != preferred))
            .filter(|i| *i < groups.len())
            .collect();
        let mut last_err = None;
        for (n, gi) in order.iter().enumerate() {
            let group = &groups[*gi];
            let is_last = n + 1 == order.len();
            let result = async {
                let pinged = self.ping(group).await?;
                self.send_authorized(pinged, path, headers, what).await
            }
            .await;
            match result {
                Ok(resp) => {
                    if let Ok(mut p) = self.inner.preferred.lock() {
                        *p = *gi;
                    }
                    return Ok(resp);
                }
                // A mirror that fails in any way falls back to the origin, as in dockerd.
                Err(e) if !is_last && group.iter().all(|e| e.mirror) => {
                    tracing::info!(mirror = %group[0].base(), error = %e, "registry mirror failed, trying the next endpoint");
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| {
            Error::Internal(format!("no endpoint for {}", self.inner.reference.domain()))
        }))
    }

    /// Finds the endpoint of a group that answers `GET /v2/` and its auth challenges
    /// (cached for the life of the client).
    async fn ping(&self, group: &EndpointGroup) -> Result<Pinged> {
        let shared = &self.inner.shared;
        let key = group.first().map(Endpoint::base).unwrap_or_default();
        if let Some(p) = shared.pinged.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(p);
        }
        let mut errors = Vec::new();
        for ep in group {
            let url = format!("{}/v2/", ep.base());
            let resp = shared
                .transport
                .get_following(Method::GET, &url, &[], None, ep.verify_tls, &|a| {
                    shared.policy.verify_tls_for(a)
                })
                .await;
            match resp {
                Ok(resp)
                    if resp.status().is_success() || resp.status() == StatusCode::UNAUTHORIZED =>
                {
                    let pinged = Pinged {
                        endpoint: ep.clone(),
                        challenges: challenges_of(&resp),
                    };
                    if let Ok(mut m) = shared.pinged.lock() {
                        m.insert(key, pinged.clone());
                    }
                    return Ok(pinged);
                }
                Ok(resp) => errors.push(format!(
                    "{url} answered {}, not like a registry (v2 API)",
                    resp.status()
                )),
                Err(e) => errors.push(e.to_string()),
            }
        }
        let insecure_hint = if group.iter().any(|e| e.scheme == "http") {
            ""
        } else {
            "; if it is a plain-HTTP or self-signed registry, add it to insecure-registries"
        };
        Err(Error::Unavailable(format!(
            "cannot reach registry {}: {}; check that it is running and reachable{insecure_hint}",
            group
                .first()
                .map(|e| e.authority.as_str())
                .unwrap_or_default(),
            errors.join("; ")
        )))
    }

    /// One GET with authorization, retried after connection errors and 5xx; a 401 gets one
    /// more try with fresh challenges/token.
    async fn send_authorized(
        &self,
        mut pinged: Pinged,
        path: &str,
        headers: &[(HeaderName, String)],
        what: &str,
    ) -> Result<Response<Incoming>> {
        let shared = &self.inner.shared;
        let url = format!("{}{path}", pinged.endpoint.base());
        let mut attempt = 0u32;
        let mut reauthenticated = false;
        loop {
            let authorization = self.authorization(&pinged).await?;
            let sent = shared
                .transport
                .get_following(
                    Method::GET,
                    &url,
                    headers,
                    authorization.as_deref(),
                    pinged.endpoint.verify_tls,
                    &|a| shared.policy.verify_tls_for(a),
                )
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) if e.is_transient() && attempt < REQUEST_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            if status == StatusCode::UNAUTHORIZED && !reauthenticated {
                reauthenticated = true;
                let fresh = challenges_of(&resp);
                if !fresh.is_empty() {
                    pinged.challenges = fresh;
                }
                self.forget_token(&pinged.endpoint);
                continue;
            }
            if status.is_server_error() && attempt < REQUEST_RETRIES {
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            return Err(self.status_error(resp, what).await);
        }
    }

    async fn status_error(&self, resp: Response<Incoming>, what: &str) -> Error {
        let (status, said) = registry_said(resp, MAX_ERROR_BODY).await;
        let name = self.inner.reference.name();
        match status {
            StatusCode::NOT_FOUND => Error::NotFound(format!("{what} not found: {said}")),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized(format!(
                "unauthorized: authentication required for {name} ({said}); log in (docker login) with an account that can pull it, and check that the repository exists"
            )),
            StatusCode::TOO_MANY_REQUESTS => Error::Unavailable(format!(
                "toomanyrequests: the registry limits pulls for {name} ({said}); wait, log in, or use a registry mirror"
            )),
            s if s.is_server_error() => Error::Unavailable(format!(
                "the registry failed to serve {what} ({said}); try again later"
            )),
            _ => Error::Internal(format!("unexpected answer from the registry for {what}: {said}")),
        }
    }

    /// The `Authorization` value for a request, fetching a bearer token if needed.
    async fn authorization(&self, pinged: &Pinged) -> Result<Option<String>> {
        if let Credentials::RegistryToken(t) = &self.inner.creds {
            return Ok(Some(format!("Bearer {t}")));
        }
        if let Some(bearer) = pinged.challenges.iter().find(|c| c.scheme == "bearer") {
            let token = self.bearer_token(&pinged.endpoint, bearer).await?;
            return Ok(Some(format!("Bearer {token}")));
        }
        if pinged.challenges.iter().any(|c| c.scheme == "basic") {
            if let Credentials::Basic(u, p) = &self.inner.creds {
                return Ok(Some(Credentials::basic_header(u, p)));
            }
        }
        Ok(None)
    }

    fn token_key(&self, ep: &Endpoint) -> TokenKey {
        (
            ep.authority.clone(),
            self.inner.scope.clone(),
            self.inner.creds.fingerprint(),
        )
    }

    fn forget_token(&self, ep: &Endpoint) {
        let key = self.token_key(ep);
        if let Ok(mut m) = self.inner.shared.tokens.lock() {
            m.remove(&key);
        }
    }

    /// A token for this repository's pull scope from the challenge's realm (cached).
    async fn bearer_token(&self, ep: &Endpoint, challenge: &Challenge) -> Result<String> {
        let shared = &self.inner.shared;
        let key = self.token_key(ep);
        let now = Instant::now();
        if let Some((t, _)) = shared
            .tokens
            .lock()
            .ok()
            .and_then(|m| m.get(&key).filter(|(_, exp)| *exp > now).cloned())
        {
            return Ok(t);
        }
        let registry = &ep.authority;
        let realm = challenge.params.get("realm").filter(|r| !r.is_empty()).ok_or_else(|| {
            Error::Internal(format!(
                "registry {registry} asked for a bearer token without saying where to get it (no realm)"
            ))
        })?;
        let realm_uri: http::Uri = realm.parse().map_err(|e| {
            Error::Internal(format!(
                "registry {registry} sent a bad token realm {realm:?}: {e}"
            ))
        })?;
        if !matches!(realm_uri.scheme_str(), Some("http" | "https")) {
            return Err(Error::Internal(format!(
                "registry {registry} sent a token realm {realm:?} that is not an http(s) URL"
            )));
        }
        let realm_authority = realm_uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let verify = shared.policy.verify_tls_for(&realm_authority);
        let service = challenge.params.get("service").cloned().unwrap_or_default();
        let scope = &self.inner.scope;
        let resp = match &self.inner.creds {
            Credentials::IdentityToken(refresh) => {
                // OAuth2 refresh-token grant, as docker does with an identity token.
                let form = format!(
                    "grant_type=refresh_token&refresh_token={}&service={}&scope={}&client_id=skiff",
                    url_encode(refresh),
                    url_encode(&service),
                    url_encode(scope)
                );
                let req = Request::builder()
                    .method(Method::POST)
                    .uri(realm_uri.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::new(Bytes::from(form)))
                    .map_err(|e| Error::Internal(format!("cannot build the token request: {e}")))?;
                shared.transport.send(req, verify).await?
            }
            creds => {
                let mut url = realm.clone();
                url.push(if url.contains('?') { '&' } else { '?' });
                let mut q = vec![format!("scope={}", url_encode(scope))];
                if !service.is_empty() {
                    q.push(format!("service={}", url_encode(&service)));
                }
                let auth = match creds {
                    Credentials::Basic(u, p) => {
                        q.push(format!("account={}", url_encode(u)));
                        Some(Credentials::basic_header(u, p))
                    }
                    _ => None,
                };
                url.push_str(&q.join("&"));
                shared
                    .transport
                    .get_following(Method::GET, &url, &[], auth.as_deref(), verify, &|a| {
                        shared.policy.verify_tls_for(a)
                    })
                    .await?
            }
        };
        let status = resp.status();
        let realm_shown = redact(&realm_uri);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Error::Unauthorized(format!(
                "unauthorized: the token server {realm_shown} refused the credentials for {}: incorrect username or password; log in again (docker login)",
                self.inner.reference.name()
            )));
        }
        if !status.is_success() {
            return Err(Error::Unavailable(format!(
                "the token server {realm_shown} for {registry} answered {status}; try again later"
            )));
        }
        let body = read_capped(resp, MAX_ERROR_BODY, "token response").await?;
        let (token, expires_in) = serde_json::from_slice::<TokenResponse>(&body)
            .ok()
            .and_then(TokenResponse::into_token)
            .ok_or_else(|| {
                Error::Internal(format!(
                    "the token server {realm_shown} sent no token; the registry's auth service is misconfigured"
                ))
            })?;
        // Docker's token spec: 60 s when unspecified. Renew a little early.
        let lifetime = expires_in.unwrap_or(60);
        let keep = Duration::from_secs(lifetime.saturating_sub(lifetime / 10 + 1).max(1));
        if let Ok(mut m) = shared.tokens.lock() {
            if m.len() >= MAX_CACHED_TOKENS {
                let now = Instant::now();
                m.retain(|_, (_, exp)| *exp > now);
                if m.len() >= MAX_CACHED_TOKENS {
                    m.clear();
                }
            }
            m.insert(key, (token.clone(), Instant::now() + keep));
        }
        Ok(token)
    }
}

fn challenges_of<B>(resp: &Response<B>) -> Vec<Challenge> {
    resp.headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
}

/// Verifies manifest bytes against the digest asked for (and the registry's
/// Docker-Content-Digest header); returns the digest to record.
fn verify_manifest_digest(
    bytes: &[u8],
    wanted: Option<&Digest>,
    header: Option<&str>,
    what: &str,
) -> Result<Digest> {
    let digest = match wanted {
        Some(w) => {
            let actual = w.same_algorithm_of(bytes);
            if actual != *w {
                return Err(Error::DigestMismatch {
                    what: what.to_string(),
                    expected: w.to_string(),
                    actual: actual.to_string(),
                });
            }
            w.clone()
        }
        None => Digest::sha256_of(bytes),
    };
    if let Some(h) = header.and_then(|h| Digest::parse(h.trim()).ok()) {
        let actual = h.same_algorithm_of(bytes);
        if actual != h {
            return Err(Error::DigestMismatch {
                what: format!("{what} (Docker-Content-Digest header)"),
                expected: h.to_string(),
                actual: actual.to_string(),
            });
        }
    }
    Ok(digest)
}

/// Exponential backoff: 200 ms, 400 ms, 800 ms, …
pub(crate) fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF * 2u32.saturating_pow(attempt.saturating_sub(1).min(8))
}

/// Percent-encoding for query and form values (RFC 3986 unreserved characters kept).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Turns a transport-level error into text (used by the blob stream).
pub(crate) fn describe(e: &hyper::Error) -> String {
    error_chain(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_backs_off() {
        assert_eq!(
            url_encode("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
        assert_eq!(url_encode("a-b.c_d~"), "a-b.c_d~");
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(3), Duration::from_millis(800));
    }

    #[test]
    fn verifies_manifest_digests() {
        let body = br#"{"schemaVersion":2}"#;
        let good = Digest::sha256_of(body);
        let other = Digest::sha256_of(b"x");
        assert_eq!(
            verify_manifest_digest(body, Some(&good), None, "m").unwrap(),
            good
        );
        assert_eq!(
            verify_manifest_digest(body, None, Some(good.as_str()), "m").unwrap(),
            good
        );
        let e = verify_manifest_digest(body, Some(&other), None, "m").unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        let e = verify_manifest_digest(body, None, Some(other.as_str()), "m").unwrap_err();
        assert!(e.to_string().contains("Docker-Content-Digest"), "{e}");
    }
}
