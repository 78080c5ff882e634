//! Test fixtures: a real `docker-registry` on 127.0.0.1, OCI layouts written by hand and
//! pushed with skopeo, and a TCP proxy that can cut connections.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A `docker-registry serve` child on 127.0.0.1; killed by its PID on drop.
pub struct TestRegistry {
    pub port: u16,
    child: Child,
    pub dir: tempfile::TempDir,
}

impl TestRegistry {
    pub fn start(htpasswd: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, pass)) = htpasswd {
            let file = dir.path().join("htpasswd");
            // Debian's libcrypt does bcrypt; the registry only accepts bcrypt hashes.
            let out = Command::new("python3")
                .args(["-W", "ignore", "-c", "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))", pass])
                .output()
                .expect("python3");
            let hash = String::from_utf8(out.stdout)
                .expect("utf8")
                .trim()
                .to_string();
            assert!(
                hash.starts_with("$2"),
                "no bcrypt hash: {hash:?} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(&file, format!("{user}:{hash}\n")).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: skiff-test\n    path: {}\n",
                file.display()
            ));
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).expect("write config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(log.try_clone().expect("clone"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry (apt-get install docker-registry)");
        let mut reg = Self { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = reg.child.try_wait() {
                panic!("docker-registry exited with {status}: {}", reg.log());
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen: {}",
                reg.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        // Child::kill signals exactly this PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OCI image layout under construction.
pub struct Layout {
    pub dir: PathBuf,
}

pub struct Layer {
    pub blob: Vec<u8>,
    pub media_type: &'static str,
    pub diff_id: String,
}

pub const MT_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MT_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MT_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// A tar of `files` (path, content, mode), made by GNU tar with fixed metadata.
pub fn make_tar(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let stage = tempfile::tempdir().expect("tempdir");
    for (path, content, mode) in files {
        let p = stage.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).expect("chmod");
    }
    let out = Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@1704067200",
            "-C",
        ])
        .arg(stage.path())
        .args(["-cf", "-", "."])
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn layer(tar: Vec<u8>, media_type: &'static str) -> Layer {
    let diff_id = format!("sha256:{}", sha256_hex(&tar));
    let blob = match media_type {
        MT_GZIP => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&tar).expect("gzip");
            e.finish().expect("gzip")
        }
        MT_ZSTD => zstd::encode_all(&tar[..], 3).expect("zstd"),
        _ => tar,
    };
    Layer {
        blob,
        media_type,
        diff_id,
    }
}

impl Layout {
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("oci-layout");
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// Stores a blob; returns its descriptor.
    pub fn put(&self, bytes: &[u8], media_type: &str) -> Value {
        let hex = sha256_hex(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(&hex), bytes).expect("blob");
        json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()})
    }

    /// Writes config + manifest for `layers`; returns (manifest descriptor, manifest bytes).
    pub fn image(&self, layers: &[Layer], arch: &str) -> (Value, Vec<u8>) {
        let config = json!({
            "architecture": arch, "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        });
        let config_desc = self.put(
            config.to_string().as_bytes(),
            "application/vnd.oci.image.config.v1+json",
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_desc,
            "layers": layers.iter().map(|l| self.put(&l.blob, l.media_type)).collect::<Vec<_>>(),
        });
        let bytes = serde_json::to_vec(&manifest).expect("json");
        let mut desc = self.put(&bytes, "application/vnd.oci.image.manifest.v1+json");
        desc["platform"] = json!({"os": "linux", "architecture": arch});
        (desc, bytes)
    }

    /// A nested OCI index over `manifests`; returns (descriptor, bytes).
    pub fn index(&self, manifests: &[Value]) -> (Value, Vec<u8>) {
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        let bytes = serde_json::to_vec(&index).expect("json");
        (
            self.put(&bytes, "application/vnd.oci.image.index.v1+json"),
            bytes,
        )
    }

    /// Points `tag` at `desc` in index.json.
    pub fn tag(&self, tag: &str, desc: &Value) {
        let mut d = desc.clone();
        d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        let index = json!({"schemaVersion": 2, "manifests": [d]});
        std::fs::write(self.dir.join("index.json"), index.to_string()).expect("index.json");
    }

    /// `skopeo copy` of `tag` to the registry as `name:tag`.
    pub fn push(&self, tag: &str, registry: &str, name: &str, extra: &[&str]) {
        let out = Command::new("skopeo")
            .args([
                "--insecure-policy",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
            ])
            .args(extra)
            .arg(format!("oci:{}:{tag}", self.dir.display()))
            .arg(format!("docker://{registry}/{name}:{tag}"))
            .stdin(Stdio::null())
            .output()
            .expect("skopeo");
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The manifest bytes the registry holds, as skopeo (not skiff) reads them.
pub fn raw_manifest(registry: &str, name_ref: &str) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--raw",
            "--tls-verify=false",
        ])
        .arg(format!("docker://{registry}/{name_ref}"))
        .stdin(Stdio::null())
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A TCP proxy in front of a registry. It cuts the first `cuts` connections whose
/// server-to-client traffic passes `cut_after` bytes, and can blind the registry to
/// `Range` headers; it records what clients sent.
pub struct Proxy {
    pub port: u16,
    pub sent: Arc<Mutex<Vec<u8>>>,
    pub cut_count: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: u16, cut_after: usize, cuts: usize, strip_range: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let cut_count = Arc::new(AtomicUsize::new(0));
        let (sent2, cut2) = (sent.clone(), cut_count.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (sent, cut_count) = (sent2.clone(), cut2.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = tokio::spawn(async move {
                        let mut buf = vec![0u8; 16 << 10];
                        while let Ok(n) = cr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            let chunk = &mut buf[..n];
                            if strip_range {
                                blind_range(chunk);
                            }
                            if let Ok(mut s) = sent.lock() {
                                s.extend_from_slice(chunk);
                            }
                            if sw.write_all(chunk).await.is_err() {
                                break;
                            }
                        }
                    });
                    let mut total = 0usize;
                    let mut buf = vec![0u8; 16 << 10];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if total + n > cut_after && cut_count.load(Ordering::SeqCst) < cuts {
                            cut_count.fetch_add(1, Ordering::SeqCst);
                            let _ = cw.write_all(&buf[..cut_after.saturating_sub(total)]).await;
                            break; // Dropping both halves closes the connection mid-body.
                        }
                        total += n;
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    up.abort();
                });
            }
        });
        Self {
            port,
            sent,
            cut_count,
            task,
        }
    }

    pub fn sent_text(&self) -> String {
        self.sent
            .lock()
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .unwrap_or_default()
    }
}

/// Renames `range:` request headers (same length) so the registry never sees them.
fn blind_range(chunk: &mut [u8]) {
    let needle = b"range: bytes=";
    let mut i = 0;
    while i + needle.len() <= chunk.len() {
        if chunk[i..i + needle.len()].eq_ignore_ascii_case(needle) {
            chunk[i..i + 5].copy_from_slice(b"x-rng");
        }
        i += 1;
    }
}
