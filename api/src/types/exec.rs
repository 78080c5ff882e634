//! Exec wire types (moby `container.ExecOptions`, `ExecStartOptions`, `ExecInspect`).

use serde::{Deserialize, Serialize};

use crate::types::null_as_default;

/// Body of `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecCreateRequest {
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdin: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdout: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stderr: bool,
    /// `None`: the container's (or the daemon's) detach keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detach_keys: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub tty: bool,
    /// Added to the container's environment.
    pub env: Option<Vec<String>>,
    /// Required, non-empty (400 otherwise).
    pub cmd: Option<Vec<String>>,
    #[serde(deserialize_with = "null_as_default")]
    pub privileged: bool,
    /// `None` or `""`: the container's user.
    pub user: Option<String>,
    /// `None` or `""`: the container's working directory.
    pub working_dir: Option<String>,
    /// `[height, width]` of the initial tty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u32; 2]>,
}

/// Answer of `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecCreateResponse {
    #[serde(rename = "Id")]
    pub id: String,
}

/// Body of `POST /exec/{id}/start`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStartRequest {
    #[serde(deserialize_with = "null_as_default")]
    pub detach: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub tty: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u32; 2]>,
}

/// `ProcessConfig` of exec inspect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecProcessConfig {
    pub privileged: bool,
    pub user: String,
    pub tty: bool,
    pub entrypoint: String,
    pub arguments: Vec<String>,
}

/// Answer of `GET /exec/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecInspect {
    #[serde(rename = "ID")]
    pub id: String,
    pub running: bool,
    /// `null` until the process has exited.
    pub exit_code: Option<i64>,
    pub process_config: ExecProcessConfig,
    pub open_stdin: bool,
    pub open_stderr: bool,
    pub open_stdout: bool,
    pub can_remove: bool,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    pub detach_keys: String,
    /// 0 until started.
    pub pid: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_docker_cli_exec_body() {
        let r: ExecCreateRequest = serde_json::from_str(
            r#"{"User":"","Privileged":false,"Tty":true,"ConsoleSize":[50,120],"AttachStdin":true,
               "AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,
               "WorkingDir":"","Cmd":["sh","-c","echo hi"]}"#,
        )
        .unwrap();
        assert!(r.tty && r.attach_stdin);
        assert_eq!(r.console_size, Some([50, 120]));
        assert_eq!(r.cmd.unwrap(), ["sh", "-c", "echo hi"]);
        let s: ExecStartRequest = serde_json::from_str(r#"{"Detach":null,"Tty":true}"#).unwrap();
        assert!(!s.detach && s.tty);
        let s: ExecStartRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(s, ExecStartRequest::default());
    }

    #[test]
    fn inspect_has_dockers_field_names() {
        let v = serde_json::to_value(ExecInspect::default()).unwrap();
        for k in [
            "ID",
            "ContainerID",
            "ExitCode",
            "ProcessConfig",
            "OpenStdin",
            "Pid",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert!(v["ExitCode"].is_null());
        assert!(v["ProcessConfig"].get("entrypoint").is_some());
    }
}
