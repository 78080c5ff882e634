//! Test images: built once per test process by `scripts/build-test-images.sh`, pushed by
//! `scripts/push-test-images.sh`; bad images uploaded by `scripts/make-bad-images.py`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::error::{HarnessError, IoContext, Result};
use crate::process::{default_timeout, run_ok};
use crate::registry::Registry;
use crate::sentinel::Sentinel;

/// The image names the build script writes, each an OCI layout tagged `latest`.
pub const IMAGE_NAMES: [&str; 4] = ["single", "multi", "zstd", "multiarch"];
/// Repository prefix the push script uses: `HOST/skiff-test/NAME:latest`.
pub const TEST_REPO_PREFIX: &str = "skiff-test";
/// Repository prefix of the bad images: `HOST/skiff-bad/CASE:latest`.
pub const BAD_REPO_PREFIX: &str = "skiff-bad";

#[derive(Debug, Clone)]
pub struct TestImages {
    dir: PathBuf,
    summary: serde_json::Value,
}

static IMAGES: OnceLock<std::result::Result<TestImages, String>> = OnceLock::new();

/// The test images, built at most once per process. They are cached under
/// `<target>/skiff-test-images`, keyed by a hash of the build script and busybox, so later
/// test binaries reuse them; a file lock keeps parallel test binaries from racing.
pub fn test_images() -> Result<&'static TestImages> {
    IMAGES
        .get_or_init(|| build_cached().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| HarnessError::Invalid(format!("cannot build the test images: {e}")))
}

fn build_cached() -> Result<TestImages> {
    let dir = crate::target_dir().join("skiff-test-images");
    fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
    let lock_path = dir.join(".lock");
    let lock = fs::File::create(&lock_path).ctx(|| format!("create {}", lock_path.display()))?;
    let _guard =
        nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
            HarnessError::Invalid(format!("cannot lock {}: {e}", lock_path.display()))
        })?;
    let script = crate::scripts_dir().join("build-test-images.sh");
    let stamp = build_stamp(&script)?;
    let stamp_path = dir.join(".stamp");
    let fresh = fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp)
        && dir.join("images.json").is_file();
    if !fresh {
        build_into(&dir)?;
        fs::write(&stamp_path, &stamp).ctx(|| format!("write {}", stamp_path.display()))?;
    }
    TestImages::open(&dir)
}

/// Runs the build script into `dir` (no caching), e.g. to check it is reproducible.
pub fn build_into(dir: &Path) -> Result<TestImages> {
    let mut cmd = Command::new("bash");
    cmd.arg(crate::scripts_dir().join("build-test-images.sh"))
        .arg(dir);
    run_ok(cmd, None, default_timeout())?;
    TestImages::open(dir)
}

fn build_stamp(script: &Path) -> Result<String> {
    let mut h = Sha256::new();
    h.update(fs::read(script).ctx(|| format!("read {}", script.display()))?);
    let busybox = std::env::var_os("BUSYBOX").unwrap_or_else(|| "/bin/busybox".into());
    h.update(
        fs::read(&busybox).ctx(|| format!("read {busybox:?} (apt-get install busybox-static)"))?,
    );
    Ok(hex::encode(h.finalize()))
}

impl TestImages {
    pub fn open(dir: &Path) -> Result<TestImages> {
        let path = dir.join("images.json");
        let raw = fs::read(&path).ctx(|| format!("read {}", path.display()))?;
        let summary = serde_json::from_slice(&raw).map_err(|source| HarnessError::Json {
            what: path.display().to_string(),
            source,
        })?;
        Ok(TestImages {
            dir: dir.to_path_buf(),
            summary,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The OCI layout directory of image `name`.
    pub fn layout(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The top descriptor (manifest, or index for `multiarch`) of image `name`.
    pub fn descriptor(&self, name: &str) -> Result<&serde_json::Value> {
        self.summary
            .get(name)
            .ok_or_else(|| HarnessError::Invalid(format!("no test image called {name}")))
    }

    /// The digest a registry serves for `name:latest` (pushes preserve digests).
    pub fn digest(&self, name: &str) -> Result<String> {
        self.descriptor(name)?["digest"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| HarnessError::Invalid(format!("images.json has no digest for {name}")))
    }

    /// Bytes of a blob in image `name`'s layout.
    pub fn blob(&self, name: &str, digest: &str) -> Result<Vec<u8>> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let path = self.layout(name).join("blobs/sha256").join(hex);
        fs::read(&path).ctx(|| format!("read {}", path.display()))
    }

    /// A blob of image `name` parsed as JSON (manifest, index, config).
    pub fn json_blob(&self, name: &str, digest: &str) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.blob(name, digest)?).map_err(|source| HarnessError::Json {
            what: format!("blob {digest} of {name}"),
            source,
        })
    }

    /// Pushes every image to `registry` with the push script; returns name -> reference.
    pub fn push(&self, registry: &Registry) -> Result<BTreeMap<String, String>> {
        let mut cmd = Command::new("bash");
        cmd.arg(crate::scripts_dir().join("push-test-images.sh"))
            .arg(&self.dir)
            .arg(registry.host_port());
        if let Some(creds) = registry.creds_env() {
            cmd.env("SKIFF_TEST_CREDS", creds);
        }
        run_ok(cmd, None, default_timeout())?;
        Ok(IMAGE_NAMES
            .iter()
            .map(|n| (n.to_string(), reference(registry, n)))
            .collect())
    }
}

/// `HOST:PORT/skiff-test/NAME:latest`.
pub fn reference(registry: &Registry, name: &str) -> String {
    format!("{}/{TEST_REPO_PREFIX}/{name}:latest", registry.host_port())
}

/// What the bad-image script uploaded: case name -> image reference.
#[derive(Debug, Clone)]
pub struct BadImages {
    pub refs: BTreeMap<String, String>,
}

/// Cases made only when the script may rewrite the registry's storage.
pub const STORAGE_CORRUPTION_CASES: [&str; 2] =
    ["layer-digest-mismatch", "manifest-digest-mismatch"];

impl BadImages {
    /// Uploads every bad case to `registry`; escape attempts aim at `sentinel`'s directory;
    /// the decompression bomb inflates to `bomb_size` bytes.
    pub fn upload(registry: &Registry, sentinel: &Sentinel, bomb_size: u64) -> Result<BadImages> {
        let mut cmd = Command::new("python3");
        cmd.arg(crate::scripts_dir().join("make-bad-images.py"))
            .arg("--registry")
            .arg(registry.host_port())
            .arg("--registry-dir")
            .arg(registry.storage_dir())
            .arg("--sentinel-dir")
            .arg(sentinel.dir())
            .arg("--bomb-size")
            .arg(bomb_size.to_string())
            .arg("--prefix")
            .arg(BAD_REPO_PREFIX);
        if let Some((user, password)) = registry.credentials() {
            cmd.arg("--user").arg(user).arg("--password").arg(password);
        }
        let out = run_ok(cmd, None, default_timeout())?;
        let refs = serde_json::from_slice(&out).map_err(|source| HarnessError::Json {
            what: "make-bad-images.py".into(),
            source,
        })?;
        Ok(BadImages { refs })
    }

    pub fn reference(&self, case: &str) -> Result<&str> {
        self.refs
            .get(case)
            .map(String::as_str)
            .ok_or_else(|| HarnessError::Invalid(format!("no bad image case {case}")))
    }

    /// The registry repository of `case` (`skiff-bad/CASE`).
    pub fn repo(case: &str) -> String {
        format!("{BAD_REPO_PREFIX}/{case}")
    }
}
