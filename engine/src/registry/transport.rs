//! HTTP(S) for the registry client: hyper 1 with rustls (ring), built on first use only,
//! with timeouts and redirects (registries send blobs to storage URLs).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, LOCATION};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::error::{Error, Result};

pub(crate) type Body = Full<Bytes>;
type HyperClient = Client<HttpsConnector<HttpConnector>, Body>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Time to wait for response headers.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time without a single body byte after which a transfer counts as dropped.
pub(crate) const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_REDIRECTS: usize = 8;
const USER_AGENT: &str = concat!("skiff/", env!("CARGO_PKG_VERSION"));

/// Two lazily built clients: one that checks certificates, one for insecure registries.
/// Nothing (TLS roots, connection pools) is allocated until the first request.
#[derive(Default)]
pub(crate) struct Transport {
    verified: OnceLock<std::result::Result<HyperClient, String>>,
    unverified: OnceLock<std::result::Result<HyperClient, String>>,
}

impl Transport {
    fn client(&self, verify_tls: bool) -> Result<&HyperClient> {
        let cell = if verify_tls {
            &self.verified
        } else {
            &self.unverified
        };
        cell.get_or_init(|| build_client(verify_tls))
            .as_ref()
            .map_err(|e| Error::Internal(format!("cannot set up TLS for registry access: {e}")))
    }

    /// Sends one request (no redirects), waiting at most [`RESPONSE_TIMEOUT`] for headers.
    pub async fn send(&self, req: Request<Body>, verify_tls: bool) -> Result<Response<Incoming>> {
        let client = self.client(verify_tls)?;
        let url = redact(req.uri());
        match tokio::time::timeout(RESPONSE_TIMEOUT, client.request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(Error::Unavailable(format!(
                "cannot reach {url}: {}",
                error_chain(&e)
            ))),
            Err(_) => Err(Error::Unavailable(format!(
                "no response from {url} within {}s; check the network and the registry",
                RESPONSE_TIMEOUT.as_secs()
            ))),
        }
    }

    /// A GET/HEAD that follows redirects. `Authorization` is only sent to the original host:
    /// storage backends behind a redirect must not see registry credentials.
    pub async fn get_following(
        &self,
        method: Method,
        url: &str,
        headers: &[(HeaderName, String)],
        authorization: Option<&str>,
        verify_tls: bool,
        verify_tls_for: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Response<Incoming>> {
        let mut uri: Uri = url
            .parse()
            .map_err(|e| Error::Internal(format!("bad registry url {url:?}: {e}")))?;
        let origin = uri.authority().map(|a| a.as_str().to_string());
        let mut verify = verify_tls;
        for _ in 0..=MAX_REDIRECTS {
            let same_host = uri.authority().map(|a| a.as_str().to_string()) == origin;
            let mut b = Request::builder().method(method.clone()).uri(uri.clone());
            b = b.header(http::header::USER_AGENT, USER_AGENT);
            for (k, v) in headers {
                b = b.header(k, header_value(v)?);
            }
            if let (Some(a), true) = (authorization, same_host) {
                b = b.header(AUTHORIZATION, header_value(a)?);
            }
            let req = b.body(Body::default()).map_err(|e| {
                Error::Internal(format!("cannot build a request for {}: {e}", redact(&uri)))
            })?;
            let resp = self.send(req, verify).await?;
            if !matches!(
                resp.status(),
                StatusCode::MOVED_PERMANENTLY
                    | StatusCode::FOUND
                    | StatusCode::SEE_OTHER
                    | StatusCode::TEMPORARY_REDIRECT
                    | StatusCode::PERMANENT_REDIRECT
            ) {
                return Ok(resp);
            }
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    Error::Internal(format!(
                        "{} redirected without a Location header",
                        redact(&uri)
                    ))
                })?;
            uri = join_location(&uri, location)?;
            if !same_host_as(&uri, origin.as_deref()) {
                // A storage host has its own TLS identity.
                verify = uri
                    .authority()
                    .map(|a| verify_tls_for(a.as_str()))
                    .unwrap_or(true);
            }
        }
        Err(Error::Unavailable(format!(
            "too many redirects fetching {url}; the registry or its storage is misconfigured"
        )))
    }
}

fn same_host_as(uri: &Uri, origin: Option<&str>) -> bool {
    uri.authority().map(|a| a.as_str()) == origin
}

pub(crate) fn header_value(v: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(v).map_err(|_| Error::InvalidArgument("a header value contains characters HTTP does not allow (check credentials for line breaks)".into()))
}

/// Resolves a redirect `Location` against the URL that sent it.
pub(crate) fn join_location(base: &Uri, location: &str) -> Result<Uri> {
    let bad = |e: String| {
        Error::Internal(format!(
            "the registry redirected to an invalid location {location:?}: {e}"
        ))
    };
    if location.starts_with("http://") || location.starts_with("https://") {
        return location
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(e.to_string()));
    }
    let scheme = base.scheme_str().unwrap_or("https");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}")
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(e.to_string()));
    }
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let dir = base.path().rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        format!("{dir}/{location}")
    };
    format!("{scheme}://{authority}{path}")
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))
}

/// The URL without its query (pre-signed storage URLs carry secrets there).
pub(crate) fn redact(uri: &Uri) -> String {
    format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("https"),
        uri.authority().map(|a| a.as_str()).unwrap_or_default(),
        uri.path()
    )
}

/// `err: cause: cause`, so "connection refused" or the TLS reason reach the user.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// Reads a whole body, refusing more than `cap` bytes.
pub(crate) async fn read_capped(resp: Response<Incoming>, cap: u64, what: &str) -> Result<Vec<u8>> {
    if let Some(len) = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > cap {
            return Err(Error::InvalidArgument(format!(
                "{what} is {len} bytes, more than the {cap} bytes skiff accepts; this is not a normal image"
            )));
        }
    }
    let mut body = resp.into_body();
    let mut out = Vec::new();
    loop {
        let frame = match tokio::time::timeout(BODY_IDLE_TIMEOUT, body.frame()).await {
            Ok(Some(Ok(f))) => f,
            Ok(None) => return Ok(out),
            Ok(Some(Err(e))) => {
                return Err(Error::Unavailable(format!(
                    "connection lost while reading {what}: {}",
                    error_chain(&e)
                )))
            }
            Err(_) => {
                return Err(Error::Unavailable(format!(
                    "reading {what} stalled; check the network"
                )))
            }
        };
        if let Ok(data) = frame.into_data() {
            if out.len() as u64 + data.len() as u64 > cap {
                return Err(Error::InvalidArgument(format!(
                    "{what} is larger than the {cap} bytes skiff accepts; this is not a normal image"
                )));
            }
            out.extend_from_slice(&data);
        }
    }
}

fn build_client(verify_tls: bool) -> std::result::Result<HyperClient, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let tls = if verify_tls {
        builder
            .with_root_certificates(root_store())
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider)))
            .with_no_client_auth()
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(2)
        .build(https))
}

/// The system's CA certificates (what dockerd trusts), or Mozilla's built-in list when the
/// device has none.
fn root_store() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

/// Insecure registries: encrypted, but the certificate is not checked (dockerd's
/// `InsecureSkipVerify`). Handshake signatures are still verified.
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_redirect_locations() {
        let base: Uri = "https://reg.example:5000/v2/a/blobs/sha256:x?q=1"
            .parse()
            .unwrap();
        let table = [
            (
                "https://s3.example/bucket/obj?sig=abc",
                "https://s3.example/bucket/obj?sig=abc",
            ),
            ("http://other/x", "http://other/x"),
            (
                "/v2/a/blobs/other",
                "https://reg.example:5000/v2/a/blobs/other",
            ),
            ("//cdn.example/y", "https://cdn.example/y"),
            ("rel?x=1", "https://reg.example:5000/v2/a/blobs/rel?x=1"),
        ];
        for (loc, want) in table {
            assert_eq!(
                join_location(&base, loc).unwrap().to_string(),
                want,
                "{loc}"
            );
        }
        assert!(join_location(&base, "https://bad host/").is_err());
        assert_eq!(
            redact(&"https://s3/x?sig=secret".parse().unwrap()),
            "https://s3/x"
        );
    }
}
