//! Uploads for `docker push`: blob-exists checks (`HEAD`), blob uploads (`POST` a session,
//! `PATCH` chunks, `PUT ?digest=`) and manifest `PUT`, authenticated for the
//! `repository:NAME:pull,push` scope.
//!
//! Why a separate session instead of a [`super::Repository`]: a repository handle's scope is
//! fixed to pull and its request path is GET-only; this module reuses the same pieces
//! (endpoint policy, transport, challenge parsing, token responses) for the write requests.
//! It goes to the origin only (mirrors are read-only), https first, then http for insecure
//! registries, as pull does.

use std::io::Read;
use std::path::Path;
use std::sync::Mutex;

use bytes::Bytes;
use http::header::{HeaderName, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;

use super::auth::{parse_challenges, AuthConfig, Challenge, Credentials, TokenResponse};
use super::client::{endpoint_groups, registry_said};
use super::digest::Digest;
use super::endpoints::{Endpoint, Policy, RegistryConfig};
use super::error::{Error, Result};
use super::reference::Reference;
use super::transport::{header_value, join_location, read_capped, redact, Body, Transport};

/// Bytes sent per `PATCH`: bounds the memory a push needs (the transport sends whole
/// bodies) while keeping round trips few.
pub const UPLOAD_CHUNK: usize = 1 << 20;
const MAX_SMALL_BODY: u64 = 64 << 10;
const USER_AGENT: &str = concat!("skiff/", env!("CARGO_PKG_VERSION"));

/// One push session: a registry endpoint, credentials and a push-scoped token.
pub struct Uploader {
    transport: Transport,
    policy: Policy,
    reference: Reference,
    creds: Credentials,
    scope: String,
    endpoint: tokio::sync::OnceCell<(Endpoint, Vec<Challenge>)>,
    token: Mutex<Option<String>>,
}

impl Uploader {
    /// No I/O yet; `config` decides which registries may use plain HTTP.
    pub fn new(config: &RegistryConfig, reference: &Reference, auth: &AuthConfig) -> Result<Self> {
        Ok(Uploader {
            transport: Transport::default(),
            policy: Policy::new(config)?,
            reference: reference.clone(),
            creds: auth.credentials(),
            scope: format!("repository:{}:pull,push", reference.path()),
            endpoint: tokio::sync::OnceCell::new(),
            token: Mutex::new(None),
        })
    }

    /// Reaches the registry and authenticates, so a refusal surfaces before any upload.
    pub async fn prepare(&self) -> Result<()> {
        let (ep, challenges) = self.endpoint().await?;
        let url = format!("{}/v2/", ep.base());
        let resp = self
            .send(Method::GET, &url, &[], Bytes::new(), ep, challenges)
            .await?;
        self.expect(resp, &[StatusCode::OK], "registry login")
            .await?;
        Ok(())
    }

    /// `HEAD` of a blob in this repository: its size when the registry has it.
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let (ep, ch) = self.endpoint().await?;
        let url = format!("{}/v2/{}/blobs/{digest}", ep.base(), self.reference.path());
        let resp = self
            .send(Method::HEAD, &url, &[], Bytes::new(), ep, ch)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(Some(
                resp.headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.status_error(resp, &format!("blob {digest}")).await),
        }
    }

    /// Uploads a small blob (an image config) in one `PUT`.
    pub async fn upload_bytes(&self, digest: &Digest, bytes: Bytes) -> Result<()> {
        let location = self.start_upload(digest).await?;
        self.finish_upload(&location, digest, bytes).await
    }

    /// Uploads the file at `path` (which must hash to `digest`) in [`UPLOAD_CHUNK`]
    /// `PATCH`es; `on_progress` gets the bytes sent so far after each one.
    pub async fn upload_file(
        &self,
        digest: &Digest,
        path: &Path,
        on_progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<()> {
        let mut location = self.start_upload(digest).await?;
        let mut file = std::fs::File::open(path).map_err(|e| {
            Error::Internal(format!(
                "cannot open the blob to push {}: {e}",
                path.display()
            ))
        })?;
        let (ep, ch) = self.endpoint().await?;
        let mut sent = 0u64;
        let what = format!("upload of blob {digest}");
        loop {
            let chunk = read_chunk(&mut file, path)?;
            if chunk.is_empty() {
                break;
            }
            let len = chunk.len() as u64;
            let headers = [
                (CONTENT_TYPE, "application/octet-stream".to_string()),
                (
                    HeaderName::from_static("content-range"),
                    format!("{sent}-{}", sent + len - 1),
                ),
            ];
            let resp = self
                .send(Method::PATCH, &location, &headers, chunk, ep, ch)
                .await?;
            let resp = self.expect(resp, &[StatusCode::ACCEPTED], &what).await?;
            location = self.location_of(&resp, &location, &what)?;
            sent += len;
            on_progress(sent);
        }
        self.finish_upload(&location, digest, Bytes::new()).await
    }

    /// `PUT /v2/NAME/manifests/TAG`; returns the digest of `bytes` (checked against the
    /// registry's `Docker-Content-Digest` when it sends one).
    pub async fn put_manifest(&self, tag: &str, media_type: &str, bytes: Bytes) -> Result<Digest> {
        let (ep, ch) = self.endpoint().await?;
        let url = format!("{}/v2/{}/manifests/{tag}", ep.base(), self.reference.path());
        let digest = Digest::sha256_of(&bytes);
        let headers = [(CONTENT_TYPE, media_type.to_string())];
        let resp = self
            .send(Method::PUT, &url, &headers, bytes, ep, ch)
            .await?;
        let what = format!("manifest {}:{tag}", self.reference.name());
        let resp = self
            .expect(resp, &[StatusCode::CREATED, StatusCode::OK], &what)
            .await?;
        if let Some(h) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if h.trim() != digest.as_str() {
                return Err(Error::DigestMismatch {
                    what,
                    expected: digest.to_string(),
                    actual: h.trim().to_string(),
                });
            }
        }
        Ok(digest)
    }

    /// `POST /v2/NAME/blobs/uploads/`: the session URL to send the blob to.
    async fn start_upload(&self, digest: &Digest) -> Result<String> {
        let (ep, ch) = self.endpoint().await?;
        let url = format!("{}/v2/{}/blobs/uploads/", ep.base(), self.reference.path());
        let what = format!("upload of blob {digest}");
        let resp = self
            .send(Method::POST, &url, &[], Bytes::new(), ep, ch)
            .await?;
        let resp = self.expect(resp, &[StatusCode::ACCEPTED], &what).await?;
        self.location_of(&resp, &url, &what)
    }

    /// The closing `PUT <location>?digest=` with the rest of the blob (or nothing).
    async fn finish_upload(&self, location: &str, digest: &Digest, body: Bytes) -> Result<()> {
        let (ep, ch) = self.endpoint().await?;
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", url_encode(digest.as_str()));
        let headers = [(CONTENT_TYPE, "application/octet-stream".to_string())];
        let resp = self.send(Method::PUT, &url, &headers, body, ep, ch).await?;
        self.expect(
            resp,
            &[StatusCode::CREATED, StatusCode::NO_CONTENT, StatusCode::OK],
            &format!("upload of blob {digest}"),
        )
        .await
        .map(drop)
    }

    fn location_of<B>(&self, resp: &Response<B>, base: &str, what: &str) -> Result<String> {
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::Internal(format!(
                    "the registry answered the {what} without a Location header; it does not follow the distribution API"
                ))
            })?;
        let base: Uri = base
            .parse()
            .map_err(|e| Error::Internal(format!("bad registry url {base:?}: {e}")))?;
        Ok(join_location(&base, loc)?.to_string())
    }

    async fn expect(
        &self,
        resp: Response<Incoming>,
        ok: &[StatusCode],
        what: &str,
    ) -> Result<Response<Incoming>> {
        if ok.contains(&resp.status()) || (resp.status().is_success() && ok.is_empty()) {
            return Ok(resp);
        }
        Err(self.status_error(resp, what).await)
    }

    async fn status_error(&self, resp: Response<Incoming>, what: &str) -> Error {
        let (status, said) = registry_said(resp, MAX_SMALL_BODY).await;
        let name = self.reference.name();
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized(format!(
                "denied: requested access to the resource is denied ({name}: {said}); log in (docker login) with an account that may push to it"
            )),
            StatusCode::NOT_FOUND => Error::NotFound(format!("{what}: {said}")),
            s if s.is_server_error() => Error::Unavailable(format!(
                "the registry failed the {what} ({said}); try again later"
            )),
            _ => Error::Internal(format!(
                "the registry refused the {what}: {said}"
            )),
        }
    }

    /// The origin endpoint that answers `GET /v2/`, and its auth challenges (pinged once).
    async fn endpoint(&self) -> Result<(&Endpoint, &[Challenge])> {
        let (ep, ch) = self
            .endpoint
            .get_or_try_init(|| async {
                let domain = self.reference.domain();
                let groups = endpoint_groups(&self.policy, domain).await;
                let origin = groups.last().cloned().unwrap_or_default();
                let mut errors = Vec::new();
                for ep in origin {
                    let url = format!("{}/v2/", ep.base());
                    match self
                        .transport
                        .get_following(Method::GET, &url, &[], None, ep.verify_tls, &|a| {
                            self.policy.verify_tls_for(a)
                        })
                        .await
                    {
                        Ok(resp)
                            if resp.status().is_success()
                                || resp.status() == StatusCode::UNAUTHORIZED =>
                        {
                            let challenges = challenges_of(&resp);
                            return Ok((ep, challenges));
                        }
                        Ok(resp) => errors.push(format!(
                            "{url} answered {}, not like a registry (v2 API)",
                            resp.status()
                        )),
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                Err(Error::Unavailable(format!(
                    "cannot reach registry {domain} to push: {}; check that it is running and reachable (plain-HTTP and self-signed registries must be loopback or in insecure-registries)",
                    errors.join("; ")
                )))
            })
            .await?;
        Ok((ep, ch.as_slice()))
    }

    /// One request with authorization; a 401 gets one more try with a fresh token.
    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(HeaderName, String)],
        body: Bytes,
        ep: &Endpoint,
        challenges: &[Challenge],
    ) -> Result<Response<Incoming>> {
        let mut fresh: Option<Vec<Challenge>> = None;
        loop {
            let ch = fresh.as_deref().unwrap_or(challenges);
            let authorization = self.authorization(ep, ch).await?;
            let resp = if method == Method::HEAD || method == Method::GET {
                self.transport
                    .get_following(
                        method.clone(),
                        url,
                        headers,
                        authorization.as_deref(),
                        ep.verify_tls,
                        &|a| self.policy.verify_tls_for(a),
                    )
                    .await?
            } else {
                let mut b = Request::builder()
                    .method(method.clone())
                    .uri(url)
                    .header(http::header::USER_AGENT, USER_AGENT)
                    .header(CONTENT_LENGTH, body.len());
                for (k, v) in headers {
                    b = b.header(k, header_value(v)?);
                }
                if let Some(a) = &authorization {
                    b = b.header(http::header::AUTHORIZATION, header_value(a)?);
                }
                let req = b.body(Body::new(body.clone())).map_err(|e| {
                    Error::Internal(format!("cannot build a request for {url}: {e}"))
                })?;
                let verify = ep.verify_tls;
                self.transport.send(req, verify).await?
            };
            if resp.status() == StatusCode::UNAUTHORIZED && fresh.is_none() {
                let c = challenges_of(&resp);
                if let Ok(mut t) = self.token.lock() {
                    *t = None;
                }
                fresh = Some(if c.is_empty() { challenges.to_vec() } else { c });
                continue;
            }
            return Ok(resp);
        }
    }

    /// The `Authorization` value, fetching a push-scoped bearer token when challenged.
    async fn authorization(
        &self,
        ep: &Endpoint,
        challenges: &[Challenge],
    ) -> Result<Option<String>> {
        if let Credentials::RegistryToken(t) = &self.creds {
            return Ok(Some(format!("Bearer {t}")));
        }
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let cached = self.token.lock().ok().and_then(|t| t.clone());
            let token = match cached {
                Some(t) => t,
                None => {
                    let t = self.fetch_token(ep, bearer).await?;
                    if let Ok(mut slot) = self.token.lock() {
                        *slot = Some(t.clone());
                    }
                    t
                }
            };
            return Ok(Some(format!("Bearer {token}")));
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            if let Credentials::Basic(u, p) = &self.creds {
                return Ok(Some(Credentials::basic_header(u, p)));
            }
        }
        Ok(None)
    }

    async fn fetch_token(&self, ep: &Endpoint, challenge: &Challenge) -> Result<String> {
        let registry = &ep.authority;
        let realm = challenge
            .params
            .get("realm")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                Error::Internal(format!(
                    "registry {registry} asked for a bearer token without saying where to get it (no realm)"
                ))
            })?;
        let realm_uri: Uri = realm.parse().map_err(|e| {
            Error::Internal(format!(
                "registry {registry} sent a bad token realm {realm:?}: {e}"
            ))
        })?;
        if !matches!(realm_uri.scheme_str(), Some("http" | "https")) {
            return Err(Error::Internal(format!(
                "registry {registry} sent a token realm {realm:?} that is not an http(s) URL"
            )));
        }
        let verify = self.policy.verify_tls_for(
            realm_uri
                .authority()
                .map(|a| a.as_str())
                .unwrap_or_default(),
        );
        let service = challenge.params.get("service").cloned().unwrap_or_default();
        let resp = match &self.creds {
            Credentials::IdentityToken(refresh) => {
                // OAuth2 refresh-token grant, as docker does with an identity token.
                let form = format!(
                    "grant_type=refresh_token&refresh_token={}&service={}&scope={}&client_id=skiff",
                    url_encode(refresh),
                    url_encode(&service),
                    url_encode(&self.scope)
                );
                let req = Request::builder()
                    .method(Method::POST)
                    .uri(realm_uri.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::new(Bytes::from(form)))
                    .map_err(|e| Error::Internal(format!("cannot build the token request: {e}")))?;
                self.transport.send(req, verify).await?
            }
            creds => {
                let mut url = realm.clone();
                url.push(if url.contains('?') { '&' } else { '?' });
                let mut q = vec![format!("scope={}", url_encode(&self.scope))];
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
                self.transport
                    .get_following(Method::GET, &url, &[], auth.as_deref(), verify, &|a| {
                        self.policy.verify_tls_for(a)
                    })
                    .await?
            }
        };
        let status = resp.status();
        let shown = redact(&realm_uri);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Error::Unauthorized(format!(
                "unauthorized: the token server {shown} refused the credentials for pushing to {}: incorrect username or password; log in again (docker login)",
                self.reference.name()
            )));
        }
        if !status.is_success() {
            return Err(Error::Unavailable(format!(
                "the token server {shown} for {registry} answered {status}; try again later"
            )));
        }
        let body = read_capped(resp, MAX_SMALL_BODY, "token response").await?;
        serde_json::from_slice::<TokenResponse>(&body)
            .ok()
            .and_then(TokenResponse::into_token)
            .map(|(t, _)| t)
            .ok_or_else(|| {
                Error::Internal(format!(
                    "the token server {shown} sent no token; the registry's auth service is misconfigured"
                ))
            })
    }
}

/// Reads up to [`UPLOAD_CHUNK`] bytes (fewer only at the end of the file).
fn read_chunk(file: &mut std::fs::File, path: &Path) -> Result<Bytes> {
    let mut buf = vec![0u8; UPLOAD_CHUNK];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::Internal(format!(
                    "cannot read the blob to push {}: {e}",
                    path.display()
                )))
            }
        }
    }
    buf.truncate(filled);
    Ok(Bytes::from(buf))
}

fn challenges_of<B>(resp: &Response<B>) -> Vec<Challenge> {
    resp.headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
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
