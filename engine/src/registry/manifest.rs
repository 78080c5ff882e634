//! Manifest and index documents (Docker schema2 and OCI), media types, descriptors, and
//! choosing the manifest for a platform out of a list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{Error, Result};
use super::platform::Platform;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// What a manifest request accepts, best first.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest or index skiff reads (docker's limit too).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// A content descriptor as manifests carry them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Descriptor {
    /// The compression of a layer, from its media type; unknown layer types are refused.
    pub fn compression(&self) -> Result<Compression> {
        let mt = self.media_type.as_str();
        match mt {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => Ok(Compression::Gzip),
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Ok(Compression::Zstd),
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Ok(Compression::None),
            _ => Err(Error::InvalidArgument(format!(
                "unsupported layer media type {mt:?} for layer {}: skiff pulls tar layers that are uncompressed, gzip or zstd; this is probably not a container image",
                self.digest
            ))),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
    #[serde(default)]
    fs_layers: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
pub struct Index {
    pub manifests: Vec<Descriptor>,
}

/// A fetched manifest document, by kind.
pub enum Document {
    Image(ImageManifest),
    Index(Index),
}

/// Parses a manifest/index body; `content_type` is the response's Content-Type. `what`
/// names it in errors (`manifest for busybox:latest`).
pub fn parse_document(
    bytes: &[u8],
    content_type: Option<&str>,
    what: &str,
) -> Result<(String, Document)> {
    let malformed = |e: serde_json::Error| {
        Error::Internal(format!(
            "the registry sent a malformed {what}: {e}; the registry is broken or the content is not an image"
        ))
    };
    let probe: Probe = serde_json::from_slice(bytes).map_err(malformed)?;
    let content_type = content_type
        .map(|c| c.split(';').next().unwrap_or_default().trim().to_string())
        .filter(|c| !c.is_empty());
    let media_type = match (&probe.media_type, &content_type) {
        (Some(mt), _) if !mt.is_empty() => mt.clone(),
        // OCI documents may omit mediaType: tell them apart by shape.
        _ if probe.manifests.is_some() => OCI_INDEX.to_string(),
        _ if probe.config.is_some() && probe.layers.is_some() => match content_type.as_deref() {
            Some(DOCKER_MANIFEST) => DOCKER_MANIFEST.to_string(),
            _ => OCI_MANIFEST.to_string(),
        },
        (_, Some(ct)) => ct.clone(),
        _ => String::new(),
    };
    let schema1 = probe.schema_version == Some(1)
        || probe.fs_layers.is_some()
        || matches!(media_type.as_str(), DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED);
    if schema1 {
        return Err(Error::InvalidArgument(format!(
            "{what} uses the Docker Image manifest v2 schema 1 format, which skiff (like docker 28) does not support; push the image again with a current client to convert it to schema 2 or OCI"
        )));
    }
    if probe.schema_version != Some(2) {
        return Err(Error::Internal(format!(
            "the registry sent a malformed {what}: schemaVersion is {:?}, expected 2",
            probe.schema_version
        )));
    }
    match media_type.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let m: ImageManifest = serde_json::from_slice(bytes).map_err(malformed)?;
            Ok((media_type, Document::Image(m)))
        }
        DOCKER_MANIFEST_LIST | OCI_INDEX => {
            let i: Index = serde_json::from_slice(bytes).map_err(malformed)?;
            Ok((media_type, Document::Index(i)))
        }
        other => Err(Error::InvalidArgument(format!(
            "{what} has unsupported media type {other:?}: skiff pulls Docker schema 2 and OCI images and indexes; this is probably not a container image"
        ))),
    }
}

/// Checks an image manifest's config and layers are something skiff can pull.
pub fn check_image(m: &ImageManifest, what: &str) -> Result<()> {
    match m.config.media_type.as_str() {
        DOCKER_CONFIG | OCI_CONFIG => {}
        other => {
            return Err(Error::InvalidArgument(format!(
                "{what} is not a container image: its config has media type {other:?} (an artifact such as a helm chart or signature?)"
            )))
        }
    }
    for l in &m.layers {
        l.compression()?;
    }
    Ok(())
}

/// The best entry of an index for `want`; entries without a platform never match.
pub fn select_platform<'a>(index: &'a Index, want: &Platform) -> Option<&'a Descriptor> {
    index
        .manifests
        .iter()
        .filter(|d| matches!(d.media_type.as_str(), DOCKER_MANIFEST | OCI_MANIFEST | ""))
        .filter_map(|d| Some((want.match_rank(d.platform.as_ref()?)?, d)))
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(mt: &str, n: u8) -> serde_json::Value {
        serde_json::json!({"mediaType": mt, "digest": format!("sha256:{}", hex::encode([n; 32])), "size": 10})
    }

    #[test]
    fn parses_kinds() {
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": desc(DOCKER_CONFIG, 1), "layers": [desc("application/vnd.docker.image.rootfs.diff.tar.gzip", 2)]});
        let (mt, d) = parse_document(m.to_string().as_bytes(), None, "manifest").unwrap();
        assert_eq!(mt, DOCKER_MANIFEST);
        let Document::Image(img) = d else {
            panic!("not an image")
        };
        assert_eq!(img.layers[0].compression().unwrap(), Compression::Gzip);
        check_image(&img, "m").unwrap();

        // OCI without mediaType: told apart by shape.
        let m = serde_json::json!({"schemaVersion": 2, "config": desc(OCI_CONFIG, 1),
            "layers": [desc("application/vnd.oci.image.layer.v1.tar+zstd", 2), desc("application/vnd.oci.image.layer.v1.tar", 3)]});
        let (mt, d) = parse_document(
            m.to_string().as_bytes(),
            Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
            "m",
        )
        .unwrap();
        assert_eq!(mt, OCI_MANIFEST);
        let Document::Image(img) = d else {
            panic!("not an image")
        };
        assert_eq!(img.layers[0].compression().unwrap(), Compression::Zstd);
        assert_eq!(img.layers[1].compression().unwrap(), Compression::None);

        let i = serde_json::json!({"schemaVersion": 2, "manifests": [desc(OCI_MANIFEST, 1)]});
        let (mt, d) = parse_document(i.to_string().as_bytes(), None, "m").unwrap();
        assert_eq!(mt, OCI_INDEX);
        assert!(matches!(d, Document::Index(ref x) if x.manifests.len() == 1));
    }

    #[test]
    fn rejects_bad_documents() {
        let cases: Vec<(Vec<u8>, Option<&str>, super::super::ErrorKind, &str)> = vec![
            (b"{not json".to_vec(), None, super::super::ErrorKind::Internal, "malformed"),
            (br#"{"schemaVersion":1,"fsLayers":[]}"#.to_vec(), None, super::super::ErrorKind::InvalidArgument, "schema 1"),
            (br#"{"schemaVersion":2}"#.to_vec(), Some(DOCKER_SCHEMA1_SIGNED), super::super::ErrorKind::InvalidArgument, "schema 1"),
            (br#"{"schemaVersion":2,"mediaType":"application/x-foo"}"#.to_vec(), None, super::super::ErrorKind::InvalidArgument, "unsupported media type"),
            (br#"{"schemaVersion":3,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#.to_vec(), None, super::super::ErrorKind::Internal, "schemaVersion"),
            (br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}}"#.to_vec(), None, super::super::ErrorKind::Internal, "malformed"),
            (br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:zz","size":1}]}"#.to_vec(), None, super::super::ErrorKind::Internal, "invalid digest"),
        ];
        for (body, ct, kind, want) in cases {
            let e = match parse_document(&body, ct, "manifest for x") {
                Err(e) => e,
                Ok(_) => panic!("{} parsed", String::from_utf8_lossy(&body)),
            };
            assert_eq!(e.kind(), kind, "{e}");
            assert!(e.to_string().contains(want), "{e}");
        }
        let m: ImageManifest = serde_json::from_value(serde_json::json!({
            "config": desc("application/vnd.cncf.helm.config.v1+json", 1), "layers": []}))
        .unwrap();
        assert!(check_image(&m, "m")
            .unwrap_err()
            .to_string()
            .contains("not a container image"));
        let m: ImageManifest = serde_json::from_value(serde_json::json!({
            "config": desc(OCI_CONFIG, 1), "layers": [desc("application/x-tar+bzip2", 2)]}))
        .unwrap();
        assert!(check_image(&m, "m")
            .unwrap_err()
            .to_string()
            .contains("unsupported layer media type"));
    }

    #[test]
    fn selects_platform() {
        let entry = |n: u8, os: &str, arch: &str, variant: &str| {
            let mut d = desc(OCI_MANIFEST, n);
            d["platform"] = serde_json::json!({"os": os, "architecture": arch, "variant": variant});
            d
        };
        let index: Index = serde_json::from_value(serde_json::json!({"manifests": [
            entry(1, "linux", "amd64", ""), entry(2, "linux", "arm", "v6"), entry(3, "linux", "arm", "v7"),
            entry(4, "linux", "arm64", "v8"), entry(5, "unknown", "unknown", ""),
        ]}))
        .unwrap();
        let pick = |p: &str| {
            select_platform(&index, &Platform::parse(p).unwrap())
                .map(|d| d.digest.hex()[..2].to_string())
        };
        assert_eq!(pick("linux/amd64").as_deref(), Some("01"));
        assert_eq!(pick("linux/arm/v7").as_deref(), Some("03"));
        assert_eq!(pick("linux/arm/v6").as_deref(), Some("02"));
        assert_eq!(pick("linux/arm64").as_deref(), Some("04"));
        assert_eq!(pick("linux/arm/v5"), None);
        assert_eq!(pick("linux/s390x"), None);
    }
}
