//! Daemon configuration: embedded defaults, overridden by a daemon.json-style file,
//! overridden by command-line flags (as the design says; dockerd refuses duplicates instead).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

pub const DEFAULT_DATA_ROOT: &str = "/var/lib/skiff";
pub const DEFAULT_EXEC_ROOT: &str = "/run/skiff";
pub const DEFAULT_SOCKET: &str = "/run/skiff/skiff.sock";
pub const DEFAULT_CONFIG_FILE: &str = "/etc/skiff/daemon.json";
/// The runtime linked into the binary (youki's libcontainer); nothing to install.
pub const BUILTIN_RUNTIME: &str = "libcontainer";
/// Where `runc` is looked for when daemon.json does not declare it (Debian's path).
pub const DEFAULT_RUNC_PATH: &str = "/usr/sbin/runc";

/// The subset of dockerd's daemon.json vocabulary skiff understands. Unknown keys are an
/// error, like dockerd, so a typo never silently does nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub hosts: Option<Vec<String>>,
    pub pidfile: Option<PathBuf>,
    pub log_level: Option<String>,
    pub insecure_registries: Option<Vec<String>>,
    pub registry_mirrors: Option<Vec<String>>,
    pub log_driver: Option<String>,
    pub log_opts: Option<std::collections::BTreeMap<String, String>>,
    pub default_runtime: Option<String>,
    pub runtimes: Option<std::collections::BTreeMap<String, RuntimeConfig>>,
    pub live_restore: Option<bool>,
    pub max_concurrent_downloads: Option<usize>,
    pub debug: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub path: String,
    #[serde(default, rename = "runtimeArgs")]
    pub runtime_args: Vec<String>,
}

/// Values given on the command line; `None`/empty means "not given".
#[derive(Debug, Default, Clone)]
pub struct FlagConfig {
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub hosts: Vec<String>,
    pub config_file: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub log_level: Option<String>,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
    pub max_concurrent_downloads: Option<usize>,
}

/// The effective configuration the daemon runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub socket: PathBuf,
    pub pidfile: Option<PathBuf>,
    pub log_level: String,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
    pub log_driver: String,
    #[allow(dead_code)] // validated into log_rotation; kept as given
    pub log_opts: std::collections::BTreeMap<String, String>,
    /// json-file rotation from `log-opts` (`max-size`, `max-file`), validated at load.
    pub log_rotation: LogRotation,
    pub default_runtime: String,
    pub runtimes: std::collections::BTreeMap<String, RuntimeConfig>,
    pub live_restore: bool,
    pub max_concurrent_downloads: usize,
}

impl Config {
    /// Builds the effective configuration. The config file is read when given with
    /// `--config-file`, or from the default path when that file exists.
    pub fn load(flags: FlagConfig) -> Result<Config> {
        let file = match &flags.config_file {
            Some(path) => read_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                read_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        Self::merge(file, flags)
    }

    fn merge(file: FileConfig, flags: FlagConfig) -> Result<Config> {
        let hosts = if !flags.hosts.is_empty() {
            flags.hosts
        } else {
            file.hosts.unwrap_or_default()
        };
        let socket = match hosts.as_slice() {
            [] => PathBuf::from(DEFAULT_SOCKET),
            [one] => parse_host(one)?,
            _ => {
                return Err(Error::Config(
                    "more than one listen address given; skiff serves one unix socket for now: pass a single -H unix:///path".into(),
                ))
            }
        };
        let log_level = flags
            .log_level
            .or(file.log_level)
            .or_else(|| (file.debug == Some(true)).then(|| "debug".to_string()))
            .unwrap_or_else(|| "info".into());
        validate_log_level(&log_level)?;
        let pick = |flag: Vec<String>, file: Option<Vec<String>>| {
            if flag.is_empty() {
                file.unwrap_or_default()
            } else {
                flag
            }
        };
        let mut runtimes = file.runtimes.unwrap_or_default();
        if runtimes.contains_key(BUILTIN_RUNTIME) {
            return Err(Error::Config(format!(
                "runtime name {BUILTIN_RUNTIME:?} is reserved for the built-in runtime; declare yours under another name"
            )));
        }
        for (name, rt) in &runtimes {
            if rt.path.is_empty() {
                return Err(Error::Config(format!(
                    "runtime {name:?} has no path; give the runtime binary's path in runtimes.{name}.path"
                )));
            }
        }
        runtimes
            .entry("runc".into())
            .or_insert_with(|| RuntimeConfig {
                path: DEFAULT_RUNC_PATH.into(),
                runtime_args: Vec::new(),
            });
        let default_runtime = file
            .default_runtime
            .unwrap_or_else(|| BUILTIN_RUNTIME.into());
        if default_runtime != BUILTIN_RUNTIME && !runtimes.contains_key(&default_runtime) {
            return Err(Error::Config(format!(
                "default-runtime {default_runtime:?} is not declared in runtimes; use {BUILTIN_RUNTIME:?}, \"runc\" or declare it"
            )));
        }
        let log_driver = file.log_driver.unwrap_or_else(|| "json-file".into());
        if log_driver != "json-file" && log_driver != "none" {
            return Err(Error::Config(format!(
                "log-driver {log_driver:?} is not supported: use \"json-file\" or \"none\""
            )));
        }
        let log_opts = file.log_opts.unwrap_or_default();
        let log_rotation = LogRotation::from_opts(&log_opts)?;
        Ok(Config {
            data_root: flags
                .data_root
                .or(file.data_root)
                .unwrap_or_else(|| DEFAULT_DATA_ROOT.into()),
            exec_root: flags
                .exec_root
                .or(file.exec_root)
                .unwrap_or_else(|| DEFAULT_EXEC_ROOT.into()),
            socket,
            pidfile: flags.pidfile.or(file.pidfile),
            log_level,
            insecure_registries: pick(flags.insecure_registries, file.insecure_registries),
            registry_mirrors: pick(flags.registry_mirrors, file.registry_mirrors),
            log_driver,
            log_opts,
            log_rotation,
            default_runtime,
            runtimes,
            live_restore: file.live_restore.unwrap_or(true),
            max_concurrent_downloads: flags
                .max_concurrent_downloads
                .or(file.max_concurrent_downloads)
                .unwrap_or(3)
                .max(1),
        })
    }
}

/// json-file rotation settings: rotate when the file exceeds `max_size` bytes, keeping
/// `max_file` files in all (dockerd's defaults: no limit, 1 file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRotation {
    pub max_size: Option<u64>,
    pub max_file: u32,
}

impl LogRotation {
    pub fn from_opts(opts: &std::collections::BTreeMap<String, String>) -> Result<Self> {
        let mut out = LogRotation {
            max_size: None,
            max_file: 1,
        };
        for (k, v) in opts {
            match k.as_str() {
                "max-size" => out.max_size = parse_size(v)?,
                "max-file" => {
                    out.max_file = v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        Error::Config(format!(
                            "log-opts max-file {v:?} is invalid: give a whole number of at least 1"
                        ))
                    })?
                }
                // dockerd's json-file options skiff accepts and ignores
                "compress" | "labels" | "labels-regex" | "env" | "env-regex" | "tag" | "mode"
                | "max-buffer-size" => {}
                other => {
                    return Err(Error::Config(format!(
                        "unknown log-opts key {other:?}: json-file takes max-size and max-file"
                    )))
                }
            }
        }
        if out.max_file > 1 && out.max_size.is_none() {
            return Err(Error::Config(
                "log-opts max-file needs max-size: set max-size too (e.g. \"10m\")".into(),
            ));
        }
        Ok(out)
    }
}

/// Docker's size syntax: `1024`, `10k`, `10m`, `1g` (binary units, optional `b`); -1 = none.
pub fn parse_size(v: &str) -> Result<Option<u64>> {
    let bad = || {
        Error::Config(format!(
            "invalid size {v:?}: use a number with an optional unit k, m or g, e.g. \"10m\""
        ))
    };
    let t = v.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(None);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    if !(n.is_finite() && n > 0.0) {
        return Err(bad());
    }
    Ok(Some((n * mult as f64) as u64))
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Config(format!(
            "cannot read config file {}: {e}; fix the path given to --config-file",
            path.display()
        ))
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::Config(format!(
            "config file {} is not valid: {e}; it takes daemon.json keys such as data-root, hosts, insecure-registries",
            path.display()
        ))
    })
}

/// Accepts `unix:///path` (and a bare absolute path); TCP is refused until TLS exists.
pub fn parse_host(host: &str) -> Result<PathBuf> {
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Ok(PathBuf::from(DEFAULT_SOCKET));
        }
        if !path.starts_with('/') {
            return Err(Error::Config(format!(
                "unix socket path in {host:?} must be absolute, e.g. unix:///run/skiff/skiff.sock"
            )));
        }
        return Ok(PathBuf::from(path));
    }
    if host.starts_with('/') {
        return Ok(PathBuf::from(host));
    }
    if host.starts_with("tcp://") || host.starts_with("fd://") {
        return Err(Error::Config(format!(
            "listen address {host:?} is not supported yet: skiff listens on a unix socket only; use -H unix:///path"
        )));
    }
    Err(Error::Config(format!(
        "invalid listen address {host:?}: use unix:///path/to/skiff.sock"
    )))
}

fn validate_log_level(level: &str) -> Result<()> {
    match level {
        "trace" | "debug" | "info" | "warn" | "error" | "fatal" => Ok(()),
        other => Err(Error::Config(format!(
            "unknown log level {other:?}: use one of debug, info, warn, error, fatal"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let cfg = Config::merge(FileConfig::default(), FlagConfig::default()).unwrap();
        assert_eq!(cfg.data_root, PathBuf::from(DEFAULT_DATA_ROOT));
        assert_eq!(cfg.exec_root, PathBuf::from(DEFAULT_EXEC_ROOT));
        assert_eq!(cfg.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(cfg.log_level, "info");
        assert_eq!(cfg.default_runtime, BUILTIN_RUNTIME);
        assert_eq!(cfg.runtimes["runc"].path, DEFAULT_RUNC_PATH);
        assert_eq!(cfg.log_driver, "json-file");
        assert_eq!(
            cfg.log_rotation,
            LogRotation {
                max_size: None,
                max_file: 1
            }
        );
    }

    #[test]
    fn runtimes_and_log_opts_are_read_and_checked() {
        let file: FileConfig = serde_json::from_str(
            r#"{"runtimes":{"crun":{"path":"/usr/bin/crun","runtimeArgs":["--debug"]}},
                "default-runtime":"crun","log-opts":{"max-size":"10m","max-file":"3"},
                "live-restore":true}"#,
        )
        .unwrap();
        let cfg = Config::merge(file, FlagConfig::default()).unwrap();
        assert_eq!(cfg.default_runtime, "crun");
        assert_eq!(
            cfg.runtimes["crun"].runtime_args,
            vec!["--debug".to_string()]
        );
        assert_eq!(cfg.runtimes["runc"].path, DEFAULT_RUNC_PATH);
        assert_eq!(cfg.log_rotation.max_size, Some(10 << 20));
        assert_eq!(cfg.log_rotation.max_file, 3);
        for bad in [
            r#"{"default-runtime":"nope"}"#,
            r#"{"runtimes":{"libcontainer":{"path":"/x"}}}"#,
            r#"{"log-driver":"syslog"}"#,
            r#"{"log-opts":{"max-size":"ten"}}"#,
            r#"{"log-opts":{"max-file":"0","max-size":"1m"}}"#,
            r#"{"log-opts":{"max-file":"2"}}"#,
        ] {
            let file: FileConfig = serde_json::from_str(bad).unwrap();
            assert!(Config::merge(file, FlagConfig::default()).is_err(), "{bad}");
        }
        assert_eq!(parse_size("1k").unwrap(), Some(1024));
        assert_eq!(parse_size("2MB").unwrap(), Some(2 << 20));
        assert_eq!(parse_size("100").unwrap(), Some(100));
    }

    #[test]
    fn flags_override_file() {
        let file: FileConfig = serde_json::from_str(
            r#"{"data-root":"/a","hosts":["unix:///tmp/f.sock"],"insecure-registries":["r:5000"],"log-level":"warn"}"#,
        )
        .unwrap();
        let flags = FlagConfig {
            data_root: Some("/b".into()),
            log_level: Some("debug".into()),
            ..Default::default()
        };
        let cfg = Config::merge(file, flags).unwrap();
        assert_eq!(cfg.data_root, PathBuf::from("/b"));
        assert_eq!(cfg.socket, PathBuf::from("/tmp/f.sock"));
        assert_eq!(cfg.insecure_registries, vec!["r:5000".to_string()]);
        assert_eq!(cfg.log_level, "debug");
    }

    #[test]
    fn unknown_keys_and_bad_hosts_are_refused() {
        assert!(serde_json::from_str::<FileConfig>(r#"{"data_root":"/x"}"#).is_err());
        assert!(parse_host("tcp://0.0.0.0:2375").is_err());
        assert!(parse_host("unix://relative").is_err());
        assert_eq!(
            parse_host("unix:///x/y.sock").unwrap(),
            PathBuf::from("/x/y.sock")
        );
        let bad = FlagConfig {
            log_level: Some("loud".into()),
            ..Default::default()
        };
        assert!(Config::merge(FileConfig::default(), bad).is_err());
    }
}
