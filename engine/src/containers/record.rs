//! The durable container record: `data-root/containers/<id>/config.v2.json`.
//!
//! The record keeps the create body's `Config`, `HostConfig` and `NetworkingConfig` exactly
//! as the client sent them (as JSON values), because device agents diff inspect output
//! against what they created. Everything the daemon derived (resolved image, command, state)
//! sits beside them. Writes are atomic and durable: temp file, fsync, rename, fsync dir.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

pub const RECORD_FILE: &str = "config.v2.json";

/// Docker's zero time, what inspect shows for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `State` as Docker's inspect shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    /// created, running, paused, restarting, removing, exited, dead
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: u32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: "created".into(),
            running: false,
            paused: false,
            restarting: false,
            oom_killed: false,
            dead: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
        }
    }
}

impl State {
    pub fn set_running(&mut self, pid: u32, at: DateTime<Utc>) {
        self.status = "running".into();
        self.running = true;
        self.paused = false;
        self.restarting = false;
        self.oom_killed = false;
        self.dead = false;
        self.pid = pid;
        self.exit_code = 0;
        self.error.clear();
        self.started_at = rfc3339(at);
    }

    pub fn set_exited(&mut self, code: i32, at: DateTime<Utc>, oom_killed: bool, error: &str) {
        self.status = "exited".into();
        self.running = false;
        self.paused = false;
        self.restarting = false;
        self.pid = 0;
        self.exit_code = code;
        self.oom_killed = oom_killed;
        self.error = error.to_string();
        self.finished_at = rfc3339(at);
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        self.status = if paused { "paused" } else { "running" }.into();
    }

    /// Restarting is shown while the restart policy's back-off runs.
    pub fn set_restarting(&mut self) {
        self.status = "restarting".into();
        self.restarting = true;
    }

    /// Running or paused: a process exists.
    pub fn is_alive(&self) -> bool {
        self.running
    }
}

/// RFC 3339 with nanoseconds, as Docker writes times.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    #[serde(rename = "ID")]
    pub id: String,
    /// With the leading `/`.
    pub name: String,
    /// RFC 3339 nano.
    pub created: String,
    /// `sha256:<hex>` of the image config.
    pub image: String,
    /// The image as the client named it (`Config.Image`).
    pub image_ref: String,
    /// The create body's fields as given (round-tripped by inspect).
    pub config: Value,
    pub host_config: Value,
    pub networking_config: Value,
    /// The resolved command.
    pub path: String,
    pub args: Vec<String>,
    pub state: State,
    pub restart_count: u64,
    /// A `docker stop`/`kill` turned the restart policy off until the next start.
    pub manually_stopped: bool,
    /// Runtime name (`libcontainer`, `runc`, or one from daemon.json).
    pub runtime: String,
    /// json-file log path; empty with the `none` driver.
    pub log_path: String,
    /// Hostname given to the container.
    pub hostname: String,
    /// The resolved stop signal and timeout (`StopSignal`/`StopTimeout` or image defaults).
    pub stop_signal: i32,
    pub stop_timeout: i64,
    /// Whether the rootfs overlay is currently mounted (so restore/remove unmount it).
    #[serde(default)]
    pub mounted: bool,
}

impl Record {
    pub fn tty(&self) -> bool {
        self.config.get("Tty").and_then(Value::as_bool) == Some(true)
    }

    pub fn labels(&self) -> std::collections::HashMap<String, String> {
        self.config
            .get("Labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn host_str(&self, key: &str) -> Option<&str> {
        self.host_config.get(key).and_then(Value::as_str)
    }

    pub fn auto_remove(&self) -> bool {
        self.host_config.get("AutoRemove").and_then(Value::as_bool) == Some(true)
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&self.created)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }
}

/// `data-root/containers`, holding one directory per container.
#[derive(Debug, Clone)]
pub struct RecordStore {
    root: PathBuf,
}

impl RecordStore {
    pub fn new(root: PathBuf) -> Result<Self> {
        fs::create_dir_all(&root)
            .map_err(|e| Error::io(format!("cannot create {}", root.display()), e))?;
        Ok(RecordStore { root })
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Creates the container's directory (durably) and writes its first record.
    pub fn create(&self, rec: &Record) -> Result<()> {
        let dir = self.dir(&rec.id);
        fs::create_dir(&dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        fsync_dir(&self.root)?;
        self.save(rec)
    }

    pub fn save(&self, rec: &Record) -> Result<()> {
        let bytes = serde_json::to_vec(rec).map_err(|e| {
            Error::Config(format!(
                "cannot encode the record of container {}: {e}",
                rec.id
            ))
        })?;
        write_atomic(&self.dir(&rec.id).join(RECORD_FILE), &bytes)
    }

    /// Removes the container's directory (logs, upper layer, record).
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(format!("cannot remove {}", dir.display()), e)),
        }
        fsync_dir(&self.root)
    }

    /// Every readable record; directories without a valid record (a create cut short) are
    /// returned separately so the caller can remove them.
    pub fn load_all(&self) -> Result<(Vec<Record>, Vec<PathBuf>)> {
        let mut recs = Vec::new();
        let mut broken = Vec::new();
        let rd = fs::read_dir(&self.root)
            .map_err(|e| Error::io(format!("cannot list {}", self.root.display()), e))?;
        for ent in rd.flatten() {
            let path = ent.path();
            if !path.is_dir() {
                continue;
            }
            let file = path.join(RECORD_FILE);
            match fs::read(&file)
                .ok()
                .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
            {
                Some(r) if path.file_name().and_then(|n| n.to_str()) == Some(r.id.as_str()) => {
                    recs.push(r)
                }
                _ => broken.push(path),
            }
        }
        recs.sort_by(|a, b| a.created.cmp(&b.created));
        Ok((recs, broken))
    }
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(format!("cannot fsync {}", dir.display()), e))
}

/// temp file beside `dest`, fsync, rename, fsync the directory.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(
        ".{}.tmp-{:08x}",
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io(format!("cannot create {}", tmp.display()), e))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
        fs::rename(&tmp, dest)
            .map_err(|e| Error::io(format!("cannot rename to {}", dest.display()), e))?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: &str) -> Record {
        Record {
            id: id.into(),
            name: "/web".into(),
            created: rfc3339(Utc::now()),
            image: "sha256:00".into(),
            image_ref: "busybox".into(),
            config: serde_json::json!({"Image":"busybox","Cmd":["true"],"Entrypoint":[]}),
            host_config: serde_json::json!({"AutoRemove":true,"Extra":{"x":null}}),
            networking_config: serde_json::json!({}),
            path: "true".into(),
            args: vec![],
            state: State::default(),
            restart_count: 0,
            manually_stopped: false,
            runtime: "runc".into(),
            log_path: String::new(),
            hostname: "abc".into(),
            stop_signal: 15,
            stop_timeout: 10,
            mounted: false,
        }
    }

    #[test]
    fn records_round_trip_and_broken_dirs_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = RecordStore::new(dir.path().join("containers")).unwrap();
        let mut rec = sample("aaaa");
        store.create(&rec).unwrap();
        rec.state.set_running(42, Utc::now());
        store.save(&rec).unwrap();
        fs::create_dir(dir.path().join("containers/bbbb")).unwrap();
        let (recs, broken) = store.load_all().unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].state.pid, 42);
        assert_eq!(recs[0].config, rec.config);
        assert_eq!(recs[0].host_config, rec.host_config);
        assert!(recs[0].auto_remove());
        assert_eq!(broken, vec![dir.path().join("containers/bbbb")]);
        store.remove("aaaa").unwrap();
        assert!(!store.dir("aaaa").exists());
        // no temp files left behind by saves
        assert_eq!(
            fs::read_dir(dir.path().join("containers")).unwrap().count(),
            1
        );
    }

    #[test]
    fn state_times_are_rfc3339_nanos() {
        let mut s = State::default();
        s.set_running(7, Utc::now());
        assert!(s.started_at.ends_with('Z'));
        assert_eq!(s.started_at.split('.').nth(1).unwrap().len(), 10);
        s.set_exited(3, Utc::now(), true, "");
        assert_eq!(s.status, "exited");
        assert!(s.oom_killed && !s.running && s.pid == 0);
    }
}
