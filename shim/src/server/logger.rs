//! The json-file log driver: Docker's one-JSON-object-per-line format with size rotation.
//!
//! Output pumps never block on the disk: they hand lines to a bounded queue and, when it is
//! full, drop the line and count it.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::types::format_time;

/// Read chunks (each up to 32 KiB of lines) queued between the output pumps and the writer:
/// at most about 2 MiB waits for the disk.
const QUEUE_CHUNKS: usize = 64;
/// Docker splits lines longer than this into several log entries.
pub(crate) const MAX_LINE: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

enum LogMsg {
    /// The lines of one read, stamped with the read time.
    Lines {
        stream: Stream,
        lines: Vec<Vec<u8>>,
        time: DateTime<Utc>,
    },
    Flush(SyncSender<()>),
}

/// The pumps' handle on the log writer.
pub(crate) struct LogSink {
    tx: SyncSender<LogMsg>,
    dropped: AtomicU64,
}

impl LogSink {
    /// Starts the writer thread for a json-file log at `path`.
    pub(crate) fn start(
        path: PathBuf,
        max_size: Option<u64>,
        max_file: u32,
    ) -> std::io::Result<Self> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let writer = JsonFile::open(path, max_size, max_file.max(1))?;
        let (tx, rx) = sync_channel(QUEUE_CHUNKS);
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || writer.run(rx))?;
        Ok(LogSink {
            tx,
            dropped: AtomicU64::new(0),
        })
    }

    /// Queues log entries; never blocks (drops and counts them when the queue is full).
    pub(crate) fn send(&self, stream: Stream, lines: Vec<Vec<u8>>) {
        if lines.is_empty() {
            return;
        }
        let count = lines.len() as u64;
        let msg = LogMsg::Lines {
            stream,
            lines,
            time: Utc::now(),
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(msg) {
            self.dropped.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// Lines dropped because the writer could not keep up.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits (bounded) until everything queued so far is written.
    pub(crate) fn flush(&self, timeout: Duration) {
        let (ack_tx, ack_rx) = sync_channel(1);
        // Blocking here is fine: flush runs on the exit path, not in a pump.
        if self.tx.send(LogMsg::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv_timeout(timeout);
        }
    }
}

/// Splits a stream into log entries: one per line, long lines cut at [`MAX_LINE`].
#[derive(Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    pub(crate) fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(Vec<u8>)) {
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&data[..=i]);
            emit(std::mem::take(&mut self.partial));
            data = &data[i + 1..];
        }
        self.partial.extend_from_slice(data);
        while self.partial.len() >= MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            emit(std::mem::replace(&mut self.partial, rest));
        }
    }

    pub(crate) fn finish(&mut self, mut emit: impl FnMut(Vec<u8>)) {
        if !self.partial.is_empty() {
            emit(std::mem::take(&mut self.partial));
        }
    }
}

struct JsonFile {
    path: PathBuf,
    file: BufWriter<File>,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
}

impl JsonFile {
    fn open(path: PathBuf, max_size: Option<u64>, max_file: u32) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        let file = BufWriter::new(file);
        Ok(JsonFile {
            path,
            file,
            size,
            max_size,
            max_file,
        })
    }

    fn run(mut self, rx: Receiver<LogMsg>) {
        while let Ok(msg) = rx.recv() {
            self.handle(msg);
            // Batch whatever else is queued, then hand it to the kernel.
            while let Ok(msg) = rx.try_recv() {
                self.handle(msg);
            }
            let _ = self.file.flush();
        }
    }

    fn handle(&mut self, msg: LogMsg) {
        match msg {
            LogMsg::Lines {
                stream,
                lines,
                time,
            } => {
                let time = format_time(&time);
                for line in lines {
                    // A full disk loses log lines, never the container.
                    let _ = self.write(entry_json(stream, &line, &time).as_bytes());
                }
            }
            LogMsg::Flush(ack) => {
                let _ = self.file.flush();
                let _ = ack.try_send(());
            }
        }
    }

    fn write(&mut self, entry: &[u8]) -> std::io::Result<()> {
        if let Some(max) = self.max_size {
            if self.size > 0 && self.size + entry.len() as u64 > max {
                self.rotate()?;
            }
        }
        self.file.write_all(entry)?;
        self.size += entry.len() as u64;
        Ok(())
    }

    /// `path` -> `path.1` -> ... -> `path.<max_file-1>`; with max_file 1 the file is truncated.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        if self.max_file <= 1 {
            self.file.get_ref().set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        for i in (1..self.max_file - 1).rev() {
            let from = numbered(&self.path, i);
            if from.exists() {
                fs::rename(&from, numbered(&self.path, i + 1))?;
            }
        }
        fs::rename(&self.path, numbered(&self.path, 1))?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.file = BufWriter::new(file);
        self.size = 0;
        Ok(())
    }
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn entry_json(stream: Stream, data: &[u8], time: &str) -> String {
    let log = serde_json::Value::String(String::from_utf8_lossy(data).into_owned());
    format!(
        "{{\"log\":{log},\"stream\":\"{}\",\"time\":\"{time}\"}}\n",
        stream.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_emits_lines_and_cuts_long_ones() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        s.push(b"a\nb", |l| out.push(l));
        s.push(b"c\n", |l| out.push(l));
        assert_eq!(out, vec![b"a\n".to_vec(), b"bc\n".to_vec()]);
        out.clear();
        s.push(&vec![b'x'; MAX_LINE + 5], |l| out.push(l));
        s.finish(|l| out.push(l));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[1].len(), 5);
    }

    #[test]
    fn entries_are_docker_json_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut f = JsonFile::open(path.clone(), Some(100), 3).unwrap();
        let now = format_time(&Utc::now());
        for i in 0..10 {
            let e = entry_json(Stream::Stderr, format!("line {i}\n").as_bytes(), &now);
            f.write(e.as_bytes()).unwrap();
        }
        f.file.flush().unwrap();
        let first: serde_json::Value =
            serde_json::from_str(fs::read_to_string(&path).unwrap().lines().next().unwrap())
                .unwrap();
        assert_eq!(first["stream"], "stderr");
        assert!(first["log"].as_str().unwrap().starts_with("line "));
        assert!(first["time"].as_str().unwrap().ends_with('Z'));
        assert!(numbered(&path, 1).exists());
        assert!(numbered(&path, 2).exists());
        assert!(!numbered(&path, 3).exists());
        for p in [path.clone(), numbered(&path, 1), numbered(&path, 2)] {
            assert!(fs::metadata(p).unwrap().len() <= 100);
        }
    }
}
