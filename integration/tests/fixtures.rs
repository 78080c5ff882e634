//! Tests of the test fixtures themselves (no daemon needed): the image build script, the
//! push script, the bad-image script and the registry harness produce what the daemon tests
//! rely on.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use skiff_integration::{
    build_into, process, reference, test_images, BadImages, Registry, Sentinel, TestImages,
    IMAGE_NAMES, SENTINEL_FILE, STORAGE_CORRUPTION_CASES,
};

const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn decompress(media_type: &str, blob: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match media_type {
        GZIP => {
            flate2::read::GzDecoder::new(blob)
                .read_to_end(&mut out)
                .unwrap();
        }
        ZSTD => out = zstd::decode_all(blob).unwrap(),
        TAR => out = blob.to_vec(),
        other => panic!("unexpected layer media type {other}"),
    }
    out
}

/// (manifest, config, [(layer descriptor, uncompressed tar)]) of one image manifest.
fn load_image(
    imgs: &TestImages,
    name: &str,
    digest: &str,
) -> (Value, Value, Vec<(Value, Vec<u8>)>) {
    let manifest = imgs.json_blob(name, digest).unwrap();
    assert_eq!(manifest["mediaType"], MANIFEST);
    let config = imgs
        .json_blob(name, manifest["config"]["digest"].as_str().unwrap())
        .unwrap();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let blob = imgs.blob(name, l["digest"].as_str().unwrap()).unwrap();
            assert_eq!(sha256(&blob), l["digest"], "blob digest of {name}");
            assert_eq!(blob.len() as u64, l["size"].as_u64().unwrap());
            (
                l.clone(),
                decompress(l["mediaType"].as_str().unwrap(), &blob),
            )
        })
        .collect::<Vec<_>>();
    let diff_ids: Vec<String> = layers.iter().map(|(_, tar)| sha256(tar)).collect();
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!(diff_ids),
        "{name} diff_ids"
    );
    (manifest, config, layers)
}

fn media_types(layers: &[(Value, Vec<u8>)]) -> Vec<&str> {
    layers
        .iter()
        .map(|(d, _)| d["mediaType"].as_str().unwrap())
        .collect()
}

/// path -> (entry type, mode, uid, link name, pax xattrs, content) for one layer tar.
type Entry = (
    tar::EntryType,
    u32,
    u64,
    String,
    BTreeMap<String, Vec<u8>>,
    Vec<u8>,
);

fn entries(tar_bytes: &[u8]) -> BTreeMap<String, Entry> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = BTreeMap::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        // directories come with a trailing "/"
        let path = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let mut xattrs = BTreeMap::new();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for ext in exts {
                let ext = ext.unwrap();
                if let Some(name) = ext.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(name.to_string(), ext.value_bytes().to_vec());
                }
            }
        }
        let h = e.header().clone();
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut content = Vec::new();
        e.read_to_end(&mut content).unwrap();
        out.insert(
            path,
            (
                h.entry_type(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                link,
                xattrs,
                content,
            ),
        );
    }
    out
}

#[test]
fn build_script_is_reproducible_and_idempotent() {
    let cached = test_images().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fresh = build_into(dir.path()).unwrap();
    let again = build_into(dir.path()).unwrap();
    for name in IMAGE_NAMES {
        let d = cached.digest(name).unwrap();
        assert_eq!(
            fresh.digest(name).unwrap(),
            d,
            "{name} rebuilt with another digest"
        );
        assert_eq!(
            again.digest(name).unwrap(),
            d,
            "{name} changed on a second run"
        );
    }
    // nothing left over from the build (temp dirs, old layouts)
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["images.json", "multi", "multiarch", "single", "zstd"]
    );
}

#[test]
fn layouts_have_the_intended_layers_media_types_and_platforms() {
    let imgs = test_images().unwrap();

    let (_, config, layers) = load_image(imgs, "single", &imgs.digest("single").unwrap());
    assert_eq!(media_types(&layers), [GZIP]);
    assert_eq!(
        (config["architecture"].as_str(), config["os"].as_str()),
        (Some("amd64"), Some("linux"))
    );
    let files = entries(&layers[0].1);
    assert_eq!(
        files["bin/busybox"].5,
        std::fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(files["bin/sh"].3, "busybox");
    assert!(String::from_utf8_lossy(&files["etc/passwd"].5).contains("nobody:x:1000:1000"));
    assert!(String::from_utf8_lossy(&files["etc/group"].5).contains("nobody:x:1000:"));
    assert_eq!(files["tmp"].1, 0o1777);

    let (_, _, layers) = load_image(imgs, "multi", &imgs.digest("multi").unwrap());
    assert_eq!(media_types(&layers), [GZIP, TAR, GZIP, GZIP]);

    let (_, config, layers) = load_image(imgs, "zstd", &imgs.digest("zstd").unwrap());
    assert_eq!(media_types(&layers), [ZSTD]);
    let zblob = imgs
        .blob("zstd", layers[0].0["digest"].as_str().unwrap())
        .unwrap();
    assert_eq!(zblob[..4], [0x28, 0xb5, 0x2f, 0xfd], "zstd frame magic");
    assert_eq!(config["architecture"], "amd64");

    let top = imgs.descriptor("multiarch").unwrap();
    assert_eq!(top["mediaType"], INDEX);
    let index = imgs
        .json_blob("multiarch", top["digest"].as_str().unwrap())
        .unwrap();
    let mut seen = Vec::new();
    for m in index["manifests"].as_array().unwrap() {
        let platform = &m["platform"];
        let arch = platform["architecture"].as_str().unwrap();
        let (_, config, layers) = load_image(imgs, "multiarch", m["digest"].as_str().unwrap());
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["os"], "linux");
        assert_eq!(platform["os"], "linux");
        assert_eq!(config.get("variant"), platform.get("variant"));
        let files = entries(&layers[0].1);
        assert_eq!(files["etc/arch"].5, format!("{arch}\n").into_bytes());
        seen.push((
            arch.to_string(),
            platform["variant"].as_str().map(str::to_string),
        ));
    }
    assert_eq!(
        seen,
        [
            ("amd64".to_string(), None),
            ("arm64".to_string(), Some("v8".to_string()))
        ]
    );
}

#[test]
fn multi_layers_carry_whiteouts_links_xattrs_and_modes() {
    use tar::EntryType;
    let imgs = test_images().unwrap();
    let (_, _, layers) = load_image(imgs, "multi", &imgs.digest("multi").unwrap());
    let l1 = entries(&layers[0].1);
    let l2 = entries(&layers[1].1);
    let l3 = entries(&layers[2].1);
    for p in [
        "data/del.txt",
        "data/deldir/sub/b",
        "opt/app/old1",
        "opt/app/sub/old3",
    ] {
        assert!(l1.contains_key(p), "layer 1 lacks {p}");
    }
    assert_eq!(l1["data/replaced"].0, EntryType::Regular);
    // deletions and the opaque directory
    for p in [
        "data/.wh.del.txt",
        "data/.wh.deldir",
        "opt/app/.wh..wh..opq",
    ] {
        assert_eq!(l2[p].0, EntryType::Regular, "{p}");
    }
    assert_eq!(
        l2["data/replaced"].0,
        EntryType::Directory,
        "file replaced by a directory"
    );
    // hardlink and symlinks
    assert_eq!(
        (l2["data/hl-b"].0, l2["data/hl-b"].3.as_str()),
        (EntryType::Link, "data/hl-a")
    );
    assert_eq!(l2["data/link-rel"].3, "keep.txt");
    assert_eq!(l2["data/link-abs"].3, "/data/keep.txt");
    assert_eq!(l2["data/link-dangling"].0, EntryType::Symlink);
    // xattr, setuid, owner
    assert_eq!(
        l2["data/xattr.txt"]
            .4
            .get("user.skiff.test")
            .map(Vec::as_slice),
        Some(&b"hello"[..])
    );
    assert_eq!(l2["usr/bin/suid-busybox"].1, 0o4755);
    assert_eq!(
        (l2["home/nobody/owned.txt"].2, l2["home/nobody/owned.txt"].1),
        (1000, 0o640)
    );
    // layer 3 deletes from layer 2
    assert!(l3.contains_key("data/.wh.hl-b") && l3.contains_key("data/.wh.link-dangling"));
    assert_eq!(l3["etc/image"].5, b"multi\n");
}

/// umoci, an independent implementation, applies multi's layers to the documented view.
#[test]
fn umoci_unpacks_multi_to_the_documented_filesystem() {
    let imgs = test_images().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let mut cmd = Command::new("umoci");
    cmd.arg("unpack")
        .arg("--image")
        .arg(format!("{}:latest", imgs.layout("multi").display()))
        .arg(&bundle);
    process::run_ok(cmd, None, Duration::from_secs(120)).unwrap();
    let root = bundle.join("rootfs");
    let exists = |p: &str| root.join(p).symlink_metadata().is_ok();
    for gone in [
        "data/del.txt",
        "data/deldir",
        "opt/app/old1",
        "opt/app/sub",
        "data/hl-b",
        "data/link-dangling",
    ] {
        assert!(!exists(gone), "{gone} should be deleted");
    }
    let mut app: Vec<_> = std::fs::read_dir(root.join("opt/app"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    app.sort();
    assert_eq!(app, ["new.txt"]);
    assert_eq!(
        std::fs::read(root.join("data/hl-a")).unwrap(),
        b"shared-content\n"
    );
    assert_eq!(
        std::fs::read(root.join("data/replaced/inside.txt")).unwrap(),
        b"inside\n"
    );
    assert_eq!(std::fs::read(root.join("etc/image")).unwrap(), b"multi\n");
    assert_eq!(
        std::fs::read_link(root.join("data/link-rel"))
            .unwrap()
            .to_str(),
        Some("keep.txt")
    );
    let suid = std::fs::metadata(root.join("usr/bin/suid-busybox")).unwrap();
    assert_eq!(suid.permissions().mode() & 0o7777, 0o4755);
    let owned = std::fs::metadata(root.join("home/nobody/owned.txt")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1000, 1000));
    assert!(root.join("data/empty-dir").is_dir());
}

fn skopeo_inspect(registry: &Registry, args: &[&str], reference: &str) -> Vec<u8> {
    let mut cmd = Command::new("skopeo");
    cmd.arg("inspect").arg("--tls-verify=false").args(args);
    if let Some((u, p)) = registry.credentials() {
        cmd.arg("--creds").arg(format!("{u}:{p}"));
    }
    cmd.arg(format!("docker://{reference}"));
    process::run_ok(cmd, None, Duration::from_secs(60)).unwrap()
}

#[test]
fn pushed_images_keep_digests_media_types_and_platforms() {
    let imgs = test_images().unwrap();
    let registry = Registry::start().unwrap();
    let refs = imgs.push(&registry).unwrap();
    assert_eq!(refs.len(), IMAGE_NAMES.len());
    for name in IMAGE_NAMES {
        let r = &refs[name];
        assert_eq!(r, &reference(&registry, name));
        let raw = skopeo_inspect(&registry, &["--raw"], r);
        assert_eq!(
            sha256(&raw),
            imgs.digest(name).unwrap(),
            "{name}: registry changed the manifest"
        );

        // raw HTTP: the registry reports the same digest and serves every blob intact
        let repo = format!("skiff-test/{name}");
        let resp = registry.manifest(&repo, "latest").unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.header("docker-content-digest"),
            Some(imgs.digest(name).unwrap().as_str())
        );
        let manifest = resp.json().unwrap();
        let manifests = if manifest["mediaType"] == INDEX {
            manifest["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["digest"].as_str().unwrap().to_string())
                .collect()
        } else {
            vec![imgs.digest(name).unwrap()]
        };
        for digest in manifests {
            let m = registry.manifest(&repo, &digest).unwrap().json().unwrap();
            let mut blobs = vec![m["config"].clone()];
            blobs.extend(m["layers"].as_array().unwrap().iter().cloned());
            for b in blobs {
                let d = b["digest"].as_str().unwrap();
                let resp = registry.blob(&repo, d).unwrap();
                assert_eq!(resp.status, 200, "{name} blob {d}");
                assert_eq!(sha256(&resp.body), d);
                assert_eq!(resp.body, imgs.blob(name, d).unwrap());
            }
        }
    }

    let single: Value =
        serde_json::from_slice(&skopeo_inspect(&registry, &[], &refs["single"])).unwrap();
    assert_eq!(single["Architecture"], "amd64");
    assert_eq!(single["Layers"].as_array().unwrap().len(), 1);
    let multi: Value =
        serde_json::from_slice(&skopeo_inspect(&registry, &[], &refs["multi"])).unwrap();
    assert_eq!(multi["Layers"].as_array().unwrap().len(), 4);
    let zstd: Value =
        serde_json::from_slice(&skopeo_inspect(&registry, &["--raw"], &refs["zstd"])).unwrap();
    assert_eq!(zstd["layers"][0]["mediaType"], ZSTD);
    let multi_raw: Value =
        serde_json::from_slice(&skopeo_inspect(&registry, &["--raw"], &refs["multi"])).unwrap();
    assert_eq!(
        multi_raw["layers"][1]["mediaType"], TAR,
        "the plain layer must stay uncompressed"
    );

    let arm: Value = serde_json::from_slice(&skopeo_inspect(
        &registry,
        &[
            "--override-arch",
            "arm64",
            "--override-variant",
            "v8",
            "--config",
        ],
        &refs["multiarch"],
    ))
    .unwrap();
    assert_eq!(
        (arm["architecture"].as_str(), arm["variant"].as_str()),
        (Some("arm64"), Some("v8"))
    );
    let amd: Value = serde_json::from_slice(&skopeo_inspect(
        &registry,
        &["--override-arch", "amd64", "--config"],
        &refs["multiarch"],
    ))
    .unwrap();
    assert_eq!(amd["architecture"], "amd64");
}

#[test]
fn registry_with_auth_wants_the_right_credentials() {
    let imgs = test_images().unwrap();
    let registry = Registry::start_with_auth("skiff", "s3cret").unwrap();
    assert_eq!(
        registry.request("GET", "/v2/", &[], None).unwrap().status,
        200
    );
    // without credentials, and with wrong ones
    let anon = |auth: Option<&str>| {
        let s = std::net::TcpStream::connect(registry.host_port()).unwrap();
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        skiff_integration::http::request(s, "GET", registry.host_port(), "/v2/", &headers, None)
            .unwrap()
    };
    let r = anon(None);
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap_or("")
        .starts_with("Basic"));
    assert_eq!(anon(Some("Basic c2tpZmY6d3Jvbmc=")).status, 401); // skiff:wrong

    imgs.push(&registry).unwrap();
    let raw = skopeo_inspect(&registry, &["--raw"], &reference(&registry, "single"));
    assert_eq!(sha256(&raw), imgs.digest("single").unwrap());
    let mut cmd = Command::new("skopeo");
    cmd.args([
        "inspect",
        "--tls-verify=false",
        "--raw",
        "--creds",
        "skiff:wrong",
    ])
    .arg(format!("docker://{}", reference(&registry, "single")));
    let out = process::run(cmd, None, Duration::from_secs(60)).unwrap();
    assert!(!out.status.success(), "wrong credentials were accepted");

    // the bad-image script authenticates too
    let sentinel = Sentinel::new().unwrap();
    let bad = BadImages::upload(&registry, &sentinel, 1 << 20).unwrap();
    assert!(bad.reference("dotdot").is_ok());
    let r = registry
        .manifest(&BadImages::repo("dotdot"), "latest")
        .unwrap();
    assert_eq!(r.status, 200);
}

/// Every bad case the daemon tests will pull exists in the registry, wrong in the way its
/// name says and in no other (so a failure points at the right defence).
#[test]
fn bad_image_script_uploads_every_case() {
    let registry = Registry::start().unwrap();
    let sentinel = Sentinel::new().unwrap();
    let bomb_size: u64 = 64 << 20; // the daemon tests use more; the shape is what matters here
    let bad = BadImages::upload(&registry, &sentinel, bomb_size).unwrap();
    let expected = [
        "absolute",
        "bomb",
        "config-diffid-mismatch",
        "config-malformed",
        "config-too-few-diffids",
        "dotdot",
        "hardlink-missing",
        "hardlink-outside",
        "layer-digest-mismatch",
        "manifest-config-size-wrong",
        "manifest-digest-mismatch",
        "manifest-invalid-utf8",
        "manifest-wrong-case-keys",
        "symlink-parent-abs",
        "symlink-parent-rel",
        "symlink-then-dir",
        "symlink-then-file",
        "truncated-gzip",
        "unknown-config-mediatype",
        "unknown-layer-mediatype",
    ];
    assert_eq!(
        bad.refs.keys().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
    for case in STORAGE_CORRUPTION_CASES {
        assert!(bad.refs.contains_key(case));
    }

    let fetch = |case: &str| -> (Vec<u8>, String) {
        assert_eq!(
            bad.reference(case).unwrap(),
            format!("{}/skiff-bad/{case}:latest", registry.host_port())
        );
        let r = registry.manifest(&BadImages::repo(case), "latest").unwrap();
        assert_eq!(r.status, 200, "{case}: {}", r.text());
        let d = r.header("docker-content-digest").unwrap().to_string();
        (r.body, d)
    };
    let parsed = |case: &str| -> Value { serde_json::from_slice(&fetch(case).0).unwrap() };
    let blob = |case: &str, d: &Value| -> Vec<u8> {
        let r = registry
            .blob(&BadImages::repo(case), d.as_str().unwrap())
            .unwrap();
        assert_eq!(r.status, 200, "{case} blob {d}");
        r.body
    };
    let layer_tar = |case: &str| -> Vec<u8> {
        let m = parsed(case);
        decompress(GZIP, &blob(case, &m["layers"][0]["digest"]))
    };
    for case in expected {
        let (body, digest) = fetch(case);
        let digest_matches = sha256(&body) == digest;
        assert_eq!(
            digest_matches,
            case != "manifest-digest-mismatch",
            "{case} manifest digest"
        );
    }

    // escapes aim at the sentinel
    let sdir = sentinel.dir().to_string_lossy().into_owned();
    let names = |case: &str| entries(&layer_tar(case));
    assert!(names("dotdot")
        .keys()
        .any(|p| p.starts_with("../../") && p.ends_with(&format!("{sdir}/escaped-dotdot"))));
    assert!(names("absolute").contains_key(&format!("{sdir}/escaped-absolute")));
    assert_eq!(names("symlink-parent-abs")["evil"].3, sdir);
    assert!(names("symlink-parent-rel")["evil"].3.starts_with("../../"));
    let hl = &layer_tar("hardlink-outside");
    let mut archive = tar::Archive::new(&hl[..]);
    let kinds: Vec<(String, tar::EntryType, String)> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().entry_type(),
                link,
            )
        })
        .collect();
    assert_eq!(kinds[1].1, tar::EntryType::Link);
    assert!(kinds[1].2.ends_with(&format!("{sdir}/{SENTINEL_FILE}")));
    assert_eq!(
        (kinds[2].0.as_str(), kinds[2].1),
        ("h", tar::EntryType::Regular)
    );
    let std_entries = |case: &str| -> Vec<(String, tar::EntryType)> {
        let t = layer_tar(case);
        let mut a = tar::Archive::new(&t[..]);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                )
            })
            .collect()
    };
    let std_entries_dir = std_entries("symlink-then-dir");
    assert_eq!(
        std_entries_dir.iter().map(|(_, k)| *k).collect::<Vec<_>>(),
        [
            tar::EntryType::Regular,
            tar::EntryType::Symlink,
            tar::EntryType::Directory,
            tar::EntryType::Regular
        ]
    );
    let std_entries_file = std_entries("symlink-then-file");
    assert_eq!(
        std_entries_file[1],
        ("evil".to_string(), tar::EntryType::Symlink)
    );
    assert_eq!(
        std_entries_file[2],
        ("evil".to_string(), tar::EntryType::Regular)
    );

    // broken streams
    let m = parsed("truncated-gzip");
    let mut sink = Vec::new();
    let truncated = blob("truncated-gzip", &m["layers"][0]["digest"]);
    assert!(flate2::read::GzDecoder::new(&truncated[..])
        .read_to_end(&mut sink)
        .is_err());
    let m = parsed("bomb");
    let bomb = blob("bomb", &m["layers"][0]["digest"]);
    assert!(
        (bomb.len() as u64) < bomb_size / 100,
        "bomb is {} bytes",
        bomb.len()
    );
    let mut hasher = Sha256::new();
    let mut dec = flate2::read::GzDecoder::new(&bomb[..]);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = dec.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    assert!(
        total > bomb_size && total < bomb_size + 4096,
        "bomb inflates to {total}"
    );
    let config: Value = serde_json::from_slice(&blob("bomb", &m["config"]["digest"])).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        format!("sha256:{}", hex::encode(hasher.finalize()))
    );

    // malformed or unexpected metadata
    assert!(std::str::from_utf8(&fetch("manifest-invalid-utf8").0).is_err());
    let wrong_case = parsed("manifest-wrong-case-keys");
    assert!(wrong_case.get("schemaVersion").is_none() && wrong_case.get("SchemaVersion").is_some());
    let m = parsed("manifest-config-size-wrong");
    assert_ne!(
        blob("manifest-config-size-wrong", &m["config"]["digest"]).len() as u64,
        m["config"]["size"].as_u64().unwrap()
    );
    assert_eq!(
        parsed("unknown-layer-mediatype")["layers"][0]["mediaType"],
        "application/vnd.example.unknown.layer.v1+weird"
    );
    assert_ne!(
        parsed("unknown-config-mediatype")["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let m = parsed("config-malformed");
    assert!(
        serde_json::from_slice::<Value>(&blob("config-malformed", &m["config"]["digest"])).is_err()
    );
    for case in ["config-diffid-mismatch", "config-too-few-diffids"] {
        let m = parsed(case);
        let config: Value = serde_json::from_slice(&blob(case, &m["config"]["digest"])).unwrap();
        let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
        let layers = m["layers"].as_array().unwrap();
        let actual = sha256(&layer_tar(case));
        assert!(
            diff_ids.len() != layers.len() || diff_ids[0] != actual.as_str(),
            "{case}"
        );
    }

    // the corrupted layer: same length, other bytes, still a valid gzip of the same tar
    let m = parsed("layer-digest-mismatch");
    let d = &m["layers"][0]["digest"];
    let served = blob("layer-digest-mismatch", d);
    assert_ne!(sha256(&served), d.as_str().unwrap());
    assert_eq!(
        served.len() as u64,
        m["layers"][0]["size"].as_u64().unwrap()
    );
    let config: Value =
        serde_json::from_slice(&blob("layer-digest-mismatch", &m["config"]["digest"])).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        sha256(&decompress(GZIP, &served))
    );
    assert!(registry.blob_data_path(d.as_str().unwrap()).is_file());

    sentinel.check().unwrap();
}
