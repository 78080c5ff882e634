//! Tests against Debian's real `docker-registry`, with images pushed by skopeo.

mod harness;

use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::*;
use harness::*;

fn client() -> RegistryClient {
    RegistryClient::new(&RegistryConfig::default()).expect("client")
}

fn reference(s: &str) -> Reference {
    Reference::parse(s).expect("reference")
}

fn desc_digest(v: &Value) -> String {
    v["digest"].as_str().expect("digest").to_string()
}

async fn read_all(repo: &Repository, d: &Descriptor) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    repo.blob_stream(d).read_to_end(&mut out).await?;
    Ok(out)
}

fn busybox_layer(media_type: &'static str) -> Layer {
    let busybox =
        std::fs::read("/bin/busybox").expect("/bin/busybox (apt-get install busybox-static)");
    layer(make_tar(&[("bin/busybox", &busybox, 0o755)]), media_type)
}

/// One image (gzip busybox + zstd + uncompressed layers) pushed as `test/single:v1`.
struct Single {
    registry: TestRegistry,
    layers: Vec<Layer>,
    _layout: tempfile::TempDir,
}

fn push_single(htpasswd: Option<(&str, &str)>) -> Single {
    let registry = TestRegistry::start(htpasswd);
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::new(dir.path());
    let layers = vec![
        busybox_layer(MT_GZIP),
        layer(make_tar(&[("etc/zstd", b"zstd layer\n", 0o644)]), MT_ZSTD),
        layer(make_tar(&[("etc/plain", b"plain layer\n", 0o600)]), MT_TAR),
    ];
    let (manifest, _) = layout.image(&layers, "amd64");
    layout.tag("v1", &manifest);
    let creds = htpasswd.map(|(u, p)| format!("{u}:{p}"));
    // --preserve-digests: keep the uncompressed layer as is (skopeo compresses otherwise).
    let mut extra = vec!["--preserve-digests"];
    if let Some(c) = &creds {
        extra.extend(["--dest-creds", c]);
    }
    layout.push("v1", &registry.host(), "test/single", &extra);
    Single {
        registry,
        layers,
        _layout: dir,
    }
}

#[tokio::test]
async fn pulls_by_tag_and_by_digest_and_streams_every_layer() {
    let s = push_single(None);
    let host = s.registry.host();
    let client = client();
    let by_tag = reference(&format!("{host}/test/single:v1"));
    let repo = client.repository(&by_tag, &AuthConfig::default());
    let img = repo.resolve(None).await.expect("resolve by tag");
    assert_eq!(img.media_type, OCI_MANIFEST);
    // skopeo may re-serialise the manifest on push: compare with what the registry holds.
    let stored = raw_manifest(&host, "test/single:v1");
    assert_eq!(img.manifest_bytes, stored);
    assert_eq!(
        img.manifest_digest.to_string(),
        format!("sha256:{}", sha256_hex(&stored))
    );
    assert!(img.index_digest.is_none());
    assert_eq!(img.layers.len(), 3);
    let compressions: Vec<Compression> = img
        .layers
        .iter()
        .map(|l| l.compression().expect("known"))
        .collect();
    assert_eq!(
        compressions,
        vec![Compression::Gzip, Compression::Zstd, Compression::None]
    );
    for (d, want) in img.layers.iter().zip(&s.layers) {
        let got = read_all(&repo, d).await.expect("stream layer");
        assert_eq!(got.len() as u64, d.size);
        assert_eq!(format!("sha256:{}", sha256_hex(&got)), d.digest.to_string());
        assert_eq!(got, want.blob);
    }
    let config = repo.fetch_blob_bytes(&img.config).await.expect("config");
    let config: Value = serde_json::from_slice(&config).expect("config json");
    assert_eq!(
        config["rootfs"]["diff_ids"][0].as_str(),
        Some(s.layers[0].diff_id.as_str())
    );

    // By digest: the same manifest, verified.
    let by_digest = reference(&format!("{host}/test/single@{}", img.manifest_digest));
    let repo2 = client.repository(&by_digest, &AuthConfig::default());
    let img2 = repo2.resolve(None).await.expect("resolve by digest");
    assert_eq!(img2.manifest_digest, img.manifest_digest);
    assert_eq!(img2.layers, img.layers);
    assert_eq!(
        by_digest.familiar_string(),
        format!("{host}/test/single@{}", img.manifest_digest)
    );
}

#[tokio::test]
async fn reports_missing_things_as_not_found() {
    let s = push_single(None);
    let host = s.registry.host();
    let client = client();
    for r in [
        format!("{host}/test/single:nope"),
        format!("{host}/test/absent:v1"),
        format!("{host}/test/single@sha256:{}", "0".repeat(64)),
    ] {
        let e = client
            .repository(&reference(&r), &AuthConfig::default())
            .resolve(None)
            .await
            .expect_err(&r);
        assert_eq!(e.kind(), ErrorKind::NotFound, "{r}: {e}");
        assert!(e.to_string().contains("not found"), "{e}");
    }
    let repo = client.repository(
        &reference(&format!("{host}/test/single:v1")),
        &AuthConfig::default(),
    );
    let img = repo.resolve(None).await.expect("resolve");
    let missing = Descriptor {
        digest: Digest::sha256_of(b"not there"),
        ..img.config.clone()
    };
    let e = repo
        .fetch_blob_bytes(&missing)
        .await
        .expect_err("missing blob");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let io = read_all(&repo, &missing)
        .await
        .expect_err("missing blob stream");
    assert_eq!(
        blob_error(&io).map(Error::kind),
        Some(ErrorKind::NotFound),
        "{io}"
    );
    // A descriptor whose size is wrong never passes.
    let wrong_size = Descriptor {
        size: img.config.size - 1,
        ..img.config.clone()
    };
    assert!(repo.fetch_blob_bytes(&wrong_size).await.is_err());
}

#[tokio::test]
async fn pulls_docker_schema2() {
    let registry = TestRegistry::start(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::new(dir.path());
    let layers = vec![busybox_layer(MT_GZIP)];
    let (manifest, _) = layout.image(&layers, "amd64");
    layout.tag("v2s2", &manifest);
    layout.push(
        "v2s2",
        &registry.host(),
        "test/docker",
        &["--format", "v2s2"],
    );
    let repo = client().repository(
        &reference(&format!("{}/test/docker:v2s2", registry.host())),
        &AuthConfig::default(),
    );
    let img = repo.resolve(None).await.expect("resolve");
    assert_eq!(img.media_type, DOCKER_MANIFEST);
    assert_eq!(img.config.media_type, DOCKER_CONFIG);
    assert_eq!(
        img.layers[0].media_type,
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    assert_eq!(img.manifest_digest, Digest::sha256_of(&img.manifest_bytes));
    let got = read_all(&repo, &img.layers[0]).await.expect("layer");
    assert_eq!(got, layers[0].blob);
}

#[tokio::test]
async fn basic_auth_with_good_and_wrong_credentials() {
    let s = push_single(Some(("alice", "s3cret")));
    let host = s.registry.host();
    let client = client();
    let r = reference(&format!("{host}/test/single:v1"));
    let good = AuthConfig {
        username: "alice".into(),
        password: "s3cret".into(),
        serveraddress: host.clone(),
        ..Default::default()
    };
    let repo = client.repository(&r, &good);
    let img = repo.resolve(None).await.expect("resolve with credentials");
    let got = read_all(&repo, &img.layers[1])
        .await
        .expect("layer with credentials");
    assert_eq!(got, s.layers[1].blob);

    // The `auth` field form (base64 user:pass), as config.json stores it.
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE.encode(format!(
        r#"{{"auth":"{}","serveraddress":"{host}"}}"#,
        base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
    ));
    let from_header = AuthConfig::from_header(&header).expect("header");
    client
        .repository(&r, &from_header)
        .resolve(None)
        .await
        .expect("auth field");

    let wrong = AuthConfig {
        username: "alice".into(),
        password: "wrong".into(),
        ..Default::default()
    };
    for auth in [wrong, AuthConfig::default()] {
        let e = client
            .repository(&r, &auth)
            .resolve(None)
            .await
            .expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "unauthorized: authentication required for {host}/test/single"
            )),
            "{msg}"
        );
        assert!(msg.contains("docker login"), "{msg}");
    }
}

#[tokio::test]
async fn resolves_a_multi_platform_index() {
    let registry = TestRegistry::start(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::new(dir.path());
    let amd = vec![layer(make_tar(&[("arch", b"amd64\n", 0o644)]), MT_GZIP)];
    let arm = vec![layer(make_tar(&[("arch", b"arm64\n", 0o644)]), MT_ZSTD)];
    let (m_amd, _) = layout.image(&amd, "amd64");
    let (m_arm, _) = layout.image(&arm, "arm64");
    let (index, index_bytes) = layout.index(&[m_amd.clone(), m_arm.clone()]);
    layout.tag("multi", &index);
    layout.push("multi", &registry.host(), "test/multi", &["--all"]);
    let client = client();
    let r = reference(&format!("{}/test/multi:multi", registry.host()));
    let repo = client.repository(&r, &AuthConfig::default());
    for (platform, manifest, layers) in [
        ("linux/amd64", &m_amd, &amd),
        ("linux/arm64", &m_arm, &arm),
        ("linux/arm64/v8", &m_arm, &arm),
    ] {
        let p = Platform::parse(platform).expect("platform");
        let img = repo.resolve(Some(&p)).await.expect(platform);
        assert_eq!(
            img.manifest_digest.to_string(),
            desc_digest(manifest),
            "{platform}"
        );
        assert_eq!(
            img.index_digest.as_ref().map(|d| d.to_string()),
            Some(desc_digest(&index))
        );
        assert_eq!(img.index_bytes.as_deref(), Some(&index_bytes[..]));
        assert_eq!(
            img.platform.as_ref().map(|p| p.architecture.as_str()),
            Some(
                manifest["platform"]["architecture"]
                    .as_str()
                    .unwrap_or_default()
            )
        );
        assert_eq!(
            read_all(&repo, &img.layers[0]).await.expect("layer"),
            layers[0].blob
        );
    }
    // The host platform (this machine is amd64 or arm64).
    let host_img = repo.resolve(None).await.expect("host platform");
    assert_eq!(
        host_img.platform.map(|p| p.architecture),
        Some(Platform::host().architecture)
    );

    // By the index digest, with a platform.
    let by_digest = reference(&format!(
        "{}/test/multi@{}",
        registry.host(),
        desc_digest(&index)
    ));
    let img = client
        .repository(&by_digest, &AuthConfig::default())
        .resolve(Some(&Platform::parse("linux/arm64").expect("p")))
        .await
        .expect("by index digest");
    assert_eq!(img.manifest_digest.to_string(), desc_digest(&m_arm));

    let e = repo
        .resolve(Some(&Platform::parse("linux/arm/v7").expect("p")))
        .await
        .expect_err("no arm");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let msg = e.to_string();
    assert!(
        msg.contains("no matching manifest for linux/arm/v7"),
        "{msg}"
    );
    assert!(msg.contains("linux/amd64, linux/arm64"), "{msg}");
}

/// The first blob response is cut twice mid-body; the stream resumes with Range requests
/// and still yields exactly the blob.
#[tokio::test]
async fn resumes_a_dropped_blob_transfer_with_range() {
    let s = push_single(None);
    let layer = &s.layers[0]; // busybox, ~1 MB gzipped
    assert!(
        layer.blob.len() > 600_000,
        "layer too small for the test: {}",
        layer.blob.len()
    );
    let proxy = Proxy::start(s.registry.port, 300_000, 2, false).await;
    let r = reference(&format!("127.0.0.1:{}/test/single:v1", proxy.port));
    let repo = client().repository(&r, &AuthConfig::default());
    let img = repo.resolve(None).await.expect("resolve through proxy");
    let got = read_all(&repo, &img.layers[0])
        .await
        .expect("resumed stream");
    assert_eq!(
        proxy.cut_count.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the proxy cut twice"
    );
    assert_eq!(got.len(), layer.blob.len());
    assert_eq!(sha256_hex(&got), sha256_hex(&layer.blob));
    let sent = proxy.sent_text().to_lowercase();
    assert!(
        sent.contains("range: bytes="),
        "resumed without a Range request"
    );
}

#[tokio::test]
async fn fails_when_the_registry_ignores_range_after_a_drop() {
    let s = push_single(None);
    let proxy = Proxy::start(s.registry.port, 300_000, 1, true).await;
    let r = reference(&format!("127.0.0.1:{}/test/single:v1", proxy.port));
    let repo = client().repository(&r, &AuthConfig::default());
    let img = repo.resolve(None).await.expect("resolve through proxy");
    let mut reader = repo.blob_stream(&img.layers[0]);
    let mut got = Vec::new();
    let e = reader
        .read_to_end(&mut got)
        .await
        .expect_err("cannot resume");
    assert!(e.to_string().contains("ignores Range"), "{e}");
    assert_eq!(
        blob_error(&e).map(Error::kind),
        Some(ErrorKind::Unavailable)
    );
    assert!(got.len() <= 300_000, "handed out {} bytes", got.len());
}

#[tokio::test]
async fn docker_hub_mirror_and_fallback_to_origin() {
    let registry = TestRegistry::start(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = Layout::new(dir.path());
    let (manifest, _) = layout.image(
        &[layer(make_tar(&[("x", b"x\n", 0o644)]), MT_GZIP)],
        "amd64",
    );
    layout.tag("latest", &manifest);
    layout.push("latest", &registry.host(), "library/tiny", &[]);
    let live = format!("http://{}", registry.host());
    let dead = format!("http://127.0.0.1:{}", free_port());
    let r = reference("tiny");
    assert_eq!(r.to_string(), "docker.io/library/tiny:latest");
    // A dead mirror falls back to the origin.
    let config = RegistryConfig {
        insecure: vec![],
        mirrors: vec![dead.clone()],
    };
    let c = RegistryClient::with_docker_hub(&config, &live).expect("client");
    let img = c
        .repository(&r, &AuthConfig::default())
        .resolve(None)
        .await
        .expect("fallback");
    assert_eq!(img.manifest_digest.to_string(), desc_digest(&manifest));
    // A live mirror serves even when the origin is down.
    let config = RegistryConfig {
        insecure: vec![],
        mirrors: vec![live.clone()],
    };
    let c = RegistryClient::with_docker_hub(&config, &dead).expect("client");
    let repo = c.repository(&r, &AuthConfig::default());
    let img = repo.resolve(None).await.expect("mirror");
    assert_eq!(
        read_all(&repo, &img.layers[0])
            .await
            .expect("layer from mirror")
            .len() as u64,
        img.layers[0].size
    );
    // Mirrors are for docker.io only: another registry's name is not rewritten.
    let other = reference(&format!("127.0.0.1:{}/library/tiny", free_port()));
    let e = c
        .repository(&other, &AuthConfig::default())
        .resolve(None)
        .await
        .expect_err("not mirrored");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}

#[tokio::test]
async fn unreachable_registry_is_unavailable() {
    let port = free_port();
    let r = reference(&format!("127.0.0.1:{port}/x:1"));
    let e = client()
        .repository(&r, &AuthConfig::default())
        .resolve(None)
        .await
        .expect_err("nothing listens");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("cannot reach registry 127.0.0.1:{port}")),
        "{msg}"
    );
    assert!(msg.contains("refused"), "{msg}");
}
