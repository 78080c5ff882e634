//! Image wire types: list, inspect, history, delete, prune, and the pull/list requests.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::AuthConfig;
use crate::filters::Filters;
use crate::types::null_as_default;
use crate::version::ApiVersion;

/// One entry of `GET /images/json` (and of `/system/df`'s `Images`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    pub size: i64,
    /// -1 unless `shared-size=1` was asked for.
    pub shared_size: i64,
    /// Only below API 1.44; the server sets it from `Size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_size: Option<i64>,
    pub labels: HashMap<String, String>,
    /// -1 unless counted.
    pub containers: i64,
}

/// An image's `Config` as dockerd returns it (container.Config shape). Fields whose JSON shape
/// matters (`null` vs `[]`, e.g. `Entrypoint: []`) are kept as raw JSON values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageConfig {
    #[serde(deserialize_with = "null_as_default")]
    pub hostname: String,
    #[serde(deserialize_with = "null_as_default")]
    pub domainname: String,
    #[serde(deserialize_with = "null_as_default")]
    pub user: String,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdin: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdout: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub exposed_ports: Value,
    #[serde(deserialize_with = "null_as_default")]
    pub tty: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub open_stdin: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub stdin_once: bool,
    pub env: Value,
    pub cmd: Value,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub healthcheck: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(deserialize_with = "null_as_default")]
    pub image: String,
    pub volumes: Value,
    #[serde(deserialize_with = "null_as_default")]
    pub working_dir: String,
    pub entrypoint: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    pub on_build: Value,
    pub labels: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub shell: Value,
}

impl ImageConfig {
    /// Reads the `config` (or `container_config`) object of an image config JSON, keeping
    /// every value's shape. Unknown keys (e.g. OCI's `Memory`) are ignored.
    pub fn from_json(config: &Value) -> Result<Self, serde_json::Error> {
        if config.is_null() {
            return Ok(ImageConfig::default());
        }
        ImageConfig::deserialize(config)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub name: String,
    pub data: HashMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageMetadata {
    /// RFC 3339; Go's zero time when never tagged locally.
    pub last_tag_time: String,
}

impl Default for ImageMetadata {
    fn default() -> Self {
        ImageMetadata {
            last_tag_time: "0001-01-01T00:00:00Z".to_string(),
        }
    }
}

/// `GET /images/{name}/json`. The backend fills everything it knows; the server then shapes
/// the version-dependent fields (`VirtualSize` < 1.44, `Container`/`ContainerConfig` < 1.45).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    /// RFC 3339 with nanoseconds; omitted when the image config has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_config: Option<ImageConfig>,
    pub docker_version: String,
    pub author: String,
    pub config: Option<ImageConfig>,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_size: Option<i64>,
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    pub metadata: ImageMetadata,
}

/// One layer of `GET /images/{name}/history`, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    /// Image ID for the top entry of a local image, `<missing>` for the others.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    pub created_by: String,
    pub tags: Option<Vec<String>>,
    pub size: i64,
    pub comment: String,
}

/// One line of `DELETE /images/{name}` and of prune's `ImagesDeleted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageDeleteItem {
    Untagged(String),
    Deleted(String),
}

/// `POST /images/prune`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    pub images_deleted: Vec<ImageDeleteItem>,
    pub space_reclaimed: u64,
}

/// `POST /images/create?fromImage=&tag=&platform=` with its `X-Registry-Auth`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullRequest {
    pub from_image: String,
    /// A tag, a digest (`sha256:...`, as balena sends it), or empty (all tags).
    pub tag: String,
    /// `os[/arch[/variant]]` when the client asked for one.
    pub platform: Option<String>,
    pub auth: Option<AuthConfig>,
}

impl PullRequest {
    /// The single reference to pull: `name:tag`, `name@sha256:...`, or `fromImage` as given
    /// when the tag is empty or already part of it.
    pub fn reference(&self) -> String {
        if self.tag.is_empty() {
            self.from_image.clone()
        } else if self.tag.contains(':') {
            format!("{}@{}", self.from_image, self.tag)
        } else {
            format!("{}:{}", self.from_image, self.tag)
        }
    }
}

/// `GET /images/json` options; `filters` keys are already validated
/// (`before`, `dangling`, `label`, `reference`, `since`, `until`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageListOptions {
    pub all: bool,
    pub digests: bool,
    pub shared_size: bool,
    pub filters: Filters,
    pub version: ApiVersion,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_config_keeps_null_versus_empty() {
        let raw = serde_json::json!({
            "User": "", "Env": ["PATH=/bin"], "Cmd": null, "Entrypoint": [], "Hostname": null,
            "Labels": {"a": "b"}, "Memory": 0, "ArgsEscaped": true
        });
        let c = ImageConfig::from_json(&raw).unwrap();
        assert_eq!(c.entrypoint, serde_json::json!([]));
        assert!(c.cmd.is_null());
        let out = serde_json::to_value(&c).unwrap();
        assert_eq!(out["Entrypoint"], serde_json::json!([]));
        assert!(out["Cmd"].is_null());
        assert!(out.as_object().unwrap().contains_key("Volumes"));
        assert!(!out.as_object().unwrap().contains_key("Healthcheck"));
        assert_eq!(out["Hostname"], "");
        assert_eq!(out["ArgsEscaped"], true);
        assert_eq!(
            ImageConfig::from_json(&Value::Null).unwrap(),
            ImageConfig::default()
        );
    }

    #[test]
    fn delete_items_and_references_have_dockers_shape() {
        let items = vec![
            ImageDeleteItem::Untagged("a:1".into()),
            ImageDeleteItem::Deleted("sha256:x".into()),
        ];
        assert_eq!(
            serde_json::to_string(&items).unwrap(),
            r#"[{"Untagged":"a:1"},{"Deleted":"sha256:x"}]"#
        );
        let mut p = PullRequest {
            from_image: "busybox".into(),
            tag: "1".into(),
            ..Default::default()
        };
        assert_eq!(p.reference(), "busybox:1");
        p.tag = "sha256:abc".into();
        assert_eq!(p.reference(), "busybox@sha256:abc");
        p.tag.clear();
        assert_eq!(p.reference(), "busybox");
    }
}
