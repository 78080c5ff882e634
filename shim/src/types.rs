//! Options and results shared by the engine-facing client and the shim process.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::runtime::RuntimeConfig;

/// Everything the shim needs to create one container task; written as `shim.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LaunchOptions {
    /// Container id (64 hex).
    pub id: String,
    /// Absolute bundle path: config.json + rootfs (already mounted by the engine).
    pub bundle: PathBuf,
    /// Per-container runtime state: shim.sock, shim.pid, exit.json, attach sockets.
    pub state_dir: PathBuf,
    pub runtime: RuntimeConfig,
    /// Config.Tty.
    pub terminal: bool,
    /// Config.OpenStdin.
    pub open_stdin: bool,
    /// Config.StdinOnce.
    pub stdin_once: bool,
    pub log: LogConfig,
}

/// Where the container's output is logged.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LogConfig {
    JsonFile {
        path: PathBuf,
        max_size: Option<u64>,
        max_file: u32,
    },
    None,
}

/// How a process ended. Signal deaths are reported as 128 + signal number.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ExitInfo {
    pub code: i32,
    #[serde(with = "rfc3339_nanos")]
    pub exited_at: DateTime<Utc>,
    pub oom_killed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    Created,
    Running,
    Paused,
    Stopped,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TaskState {
    pub pid: u32,
    pub status: TaskStatus,
    pub exit: Option<ExitInfo>,
}

/// Docker's timestamp format: RFC 3339 with nanoseconds and `Z`.
pub(crate) fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

mod rfc3339_nanos {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}
