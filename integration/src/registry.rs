//! A real registry (Debian's `docker-registry`) on 127.0.0.1, a free port and temp storage.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::error::{HarnessError, IoContext, Result};
use crate::http::{self, Response};
use crate::process;

/// Accept header that asks for every manifest kind the tests use.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

pub struct Registry {
    child: Child,
    host_port: String,
    dir: tempfile::TempDir,
    credentials: Option<(String, String)>,
}

impl Registry {
    /// Starts an anonymous registry and waits until `/v2/` answers.
    pub fn start() -> Result<Registry> {
        Self::start_inner(None)
    }

    /// Starts a registry that wants HTTP basic auth (htpasswd) for `user`/`password`.
    pub fn start_with_auth(user: &str, password: &str) -> Result<Registry> {
        Self::start_inner(Some((user.to_string(), password.to_string())))
    }

    fn start_inner(credentials: Option<(String, String)>) -> Result<Registry> {
        // Another process may take the free port between our probe and the registry's bind;
        // retry a few times rather than fail a test on that race.
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(credentials.clone()) {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::Invalid("registry never started".into())))
    }

    fn try_start(credentials: Option<(String, String)>) -> Result<Registry> {
        let dir = tempfile::Builder::new()
            .prefix("skiff-registry-")
            .tempdir()
            .ctx(|| "create the registry's temp dir".into())?;
        let port = free_port()?;
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).ctx(|| format!("create {}", storage.display()))?;
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
             delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some((user, password)) = &credentials {
            let hash = bcrypt::hash(password, 4)
                .map_err(|e| HarnessError::Invalid(format!("cannot hash the password: {e}")))?;
            let htpasswd = dir.path().join("htpasswd");
            fs::write(&htpasswd, format!("{user}:{hash}\n"))
                .ctx(|| format!("write {}", htpasswd.display()))?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: skiff-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).ctx(|| format!("write {}", config_path.display()))?;
        let log_path = dir.path().join("registry.log");
        let log = fs::File::create(&log_path).ctx(|| format!("create {}", log_path.display()))?;
        let log2 = log.try_clone().ctx(|| "dup the log file".into())?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .ctx(|| "start docker-registry (apt-get install docker-registry)".into())?;
        let mut reg = Registry {
            child,
            host_port: format!("127.0.0.1:{port}"),
            dir,
            credentials,
        };
        reg.wait_ready(Duration::from_secs(20))?;
        Ok(reg)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .ctx(|| "wait for the registry".into())?
            {
                return Err(self.not_ready(format!("it exited with {status}")));
            }
            // 401 means up, with auth on
            if let Ok(r) = self.request("GET", "/v2/", &[], None) {
                if r.status == 200 || r.status == 401 {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(self.not_ready(format!("/v2/ did not answer within {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn not_ready(&self, why: String) -> HarnessError {
        HarnessError::NotReady {
            what: format!("docker-registry on {}", self.host_port),
            why,
            log: self.log_path().display().to_string(),
            tail: crate::tail(&self.log(), 30),
        }
    }

    /// `127.0.0.1:PORT`, as image references and `--insecure-registry` want it.
    pub fn host_port(&self) -> &str {
        &self.host_port
    }

    /// The registry's `storage.filesystem.rootdirectory`.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where a blob's bytes live in the storage (to corrupt them on purpose).
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let prefix = hex.get(..2).unwrap_or(hex);
        self.storage_dir()
            .join("docker/registry/v2/blobs/sha256")
            .join(prefix)
            .join(hex)
            .join("data")
    }

    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One raw HTTP request; sends the credentials when the registry has them.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response> {
        let stream = TcpStream::connect(&self.host_port)
            .ctx(|| format!("connect to the registry at {}", self.host_port))?;
        let timeout = Some(process::default_timeout());
        stream
            .set_read_timeout(timeout)
            .ctx(|| "set a read timeout".into())?;
        let auth = self.credentials.as_ref().map(|(u, p)| {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            format!("Basic {token}")
        });
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &auth {
            all.push(("Authorization", a));
        }
        http::request(stream, method, &self.host_port, path, &all, body)
    }

    /// GET a manifest or index by tag or digest, asking for every known media type.
    pub fn manifest(&self, repo: &str, reference: &str) -> Result<Response> {
        self.request(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", MANIFEST_ACCEPT)],
            None,
        )
    }

    /// GET a blob's bytes.
    pub fn blob(&self, repo: &str, digest: &str) -> Result<Response> {
        self.request("GET", &format!("/v2/{repo}/blobs/{digest}"), &[], None)
    }

    /// `--creds user:pass` for skopeo when the registry has auth.
    pub(crate) fn creds_env(&self) -> Option<String> {
        self.credentials.as_ref().map(|(u, p)| format!("{u}:{p}"))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = process::terminate(&mut self.child, Duration::from_secs(5));
    }
}

/// A port nobody listens on right now (the kernel's pick for port 0).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").ctx(|| "bind 127.0.0.1:0".into())?;
    Ok(l.local_addr().ctx(|| "read the bound port".into())?.port())
}
