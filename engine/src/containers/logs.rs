//! Reader of Docker json-file logs (written by the shim) behind `GET /containers/{id}/logs`.
//!
//! One JSON object per line: `{"log":"hi\n","stream":"stdout","time":"2026-…Z"}`. Rotated
//! files are `path.1` … `path.<max_file-1>`, the highest number the oldest. `tail` scans the
//! files backwards so a long log costs only what is shown; `follow` keeps reading the live
//! file, notices rotation (the file at `path` changes inode) and finishes the old file first.
//!
//! The reading runs on its own thread (plain blocking file IO, polling while following) and
//! ends as soon as the consumer drops the stream.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

/// How often a follower looks for new lines.
const POLL: Duration = Duration::from_millis(100);
/// Chunk size for backwards (tail) and forwards reads.
const CHUNK: usize = 64 * 1024;
/// An unterminated line longer than this is not a log line still being written: drop it.
const MAX_PARTIAL: usize = 4 * 1024 * 1024;
/// Entries buffered between the reader thread and the consumer.
const QUEUE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStreamKind {
    Stdout,
    Stderr,
}

impl LogStreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStreamKind::Stdout => "stdout",
            LogStreamKind::Stderr => "stderr",
        }
    }
}

/// One log line as the shim recorded it; `line` keeps its trailing newline (if it had one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: LogStreamKind,
    pub time: DateTime<Utc>,
    pub line: Bytes,
}

impl LogEntry {
    /// The bytes sent to the client: with `timestamps`, prefixed by Docker's fixed-width
    /// RFC 3339 time (`2026-12-06T03:00:00.123456789Z `).
    pub fn render(&self, timestamps: bool) -> Bytes {
        if !timestamps {
            return self.line.clone();
        }
        let stamp = self.time.to_rfc3339_opts(SecondsFormat::Nanos, true);
        let mut out = BytesMut::with_capacity(stamp.len() + 1 + self.line.len());
        out.put_slice(stamp.as_bytes());
        out.put_u8(b' ');
        out.put_slice(&self.line);
        out.freeze()
    }
}

/// What `GET /containers/{id}/logs` asked for. `tail: None` means all lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    pub stdout: bool,
    pub stderr: bool,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub tail: Option<usize>,
    pub follow: bool,
    pub timestamps: bool,
}

impl Default for LogQuery {
    fn default() -> Self {
        LogQuery {
            stdout: true,
            stderr: true,
            since: None,
            until: None,
            tail: None,
            follow: false,
            timestamps: false,
        }
    }
}

/// Streams the entries of the json-file log at `path` (and its rotated files) that `query`
/// selects. With `follow`, keeps streaming new lines until `stop` turns true (or its sender
/// is dropped) and everything written so far has been sent, or until `query.until` passes.
/// A missing log file is an empty log.
pub fn read_logs(
    path: PathBuf,
    max_file: u32,
    query: LogQuery,
    stop: watch::Receiver<bool>,
) -> impl Stream<Item = Result<LogEntry, io::Error>> + Send + 'static {
    let (tx, rx) = mpsc::channel(QUEUE);
    let err_tx = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("skiff-logs".into())
        .spawn(move || {
            let mut sink = Sink { tx, query };
            if let Err(e) = read_all(&path, max_file.max(1), &mut sink, stop) {
                let _ = sink.tx.blocking_send(Err(e));
            }
        });
    if let Err(e) = spawned {
        let _ = err_tx.try_send(Err(e));
    }
    drop(err_tx);
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Done,
}

/// Filters parsed lines and hands them to the consumer.
struct Sink {
    tx: mpsc::Sender<Result<LogEntry, io::Error>>,
    query: LogQuery,
}

impl Sink {
    fn line(&mut self, raw: &[u8]) -> Flow {
        let Some(entry) = parse_line(raw) else {
            tracing::debug!(line = %String::from_utf8_lossy(raw), "skipping malformed log line");
            return Flow::Continue;
        };
        if self.query.until.is_some_and(|u| entry.time > u) {
            return Flow::Done;
        }
        if self.query.since.is_some_and(|s| entry.time < s) {
            return Flow::Continue;
        }
        let wanted = match entry.stream {
            LogStreamKind::Stdout => self.query.stdout,
            LogStreamKind::Stderr => self.query.stderr,
        };
        if !wanted {
            return Flow::Continue;
        }
        match self.tx.blocking_send(Ok(entry)) {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Done, // the client went away
        }
    }
}

#[derive(Deserialize)]
struct RawLine {
    log: String,
    stream: String,
    time: String,
}

fn parse_line(raw: &[u8]) -> Option<LogEntry> {
    let raw: RawLine = serde_json::from_slice(raw).ok()?;
    let stream = match raw.stream.as_str() {
        "stdout" => LogStreamKind::Stdout,
        "stderr" => LogStreamKind::Stderr,
        _ => return None,
    };
    let time = DateTime::parse_from_rfc3339(&raw.time)
        .ok()?
        .with_timezone(&Utc);
    Some(LogEntry {
        stream,
        time,
        line: Bytes::from(raw.log),
    })
}

/// `path.<max_file-1>` … `path.1`: the rotated files, oldest first.
fn rotated_paths(path: &Path, max_file: u32) -> Vec<PathBuf> {
    (1..max_file)
        .rev()
        .map(|n| {
            let mut p = path.as_os_str().to_owned();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        })
        .collect()
}

fn open_if_exists(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn read_all(
    path: &Path,
    max_file: u32,
    sink: &mut Sink,
    stop: watch::Receiver<bool>,
) -> io::Result<()> {
    // open the live file first: what rotates away after this is still read through the fd
    let live = open_if_exists(path)?;
    let mut files: Vec<(File, u64)> = Vec::new();
    for p in rotated_paths(path, max_file) {
        if let Some(f) = open_if_exists(&p)? {
            let len = f.metadata()?.len();
            files.push((f, len));
        }
    }
    let live_index = match live {
        Some(f) => {
            let len = f.metadata()?.len();
            files.push((f, len));
            Some(files.len() - 1)
        }
        None => None,
    };

    let starts = match sink.query.tail {
        Some(n) => tail_starts(&mut files, n)?,
        None => vec![0; files.len()],
    };
    let mut live_pos = 0;
    for (i, ((file, end), start)) in files.iter_mut().zip(starts).enumerate() {
        let (pos, flow) = read_range(file, start, *end, sink)?;
        if flow == Flow::Done {
            return Ok(());
        }
        if Some(i) == live_index {
            live_pos = pos;
        }
    }
    if !sink.query.follow {
        return Ok(());
    }
    let live = live_index.map(|i| files.swap_remove(i).0);
    drop(files);
    follow(path, live, live_pos, sink, stop)
}

/// For each file, where reading must start so that only the last `want` complete lines
/// (across all files) are read. Files are oldest first; the scan goes newest first.
fn tail_starts(files: &mut [(File, u64)], want: usize) -> io::Result<Vec<u64>> {
    let mut starts: Vec<u64> = files.iter().map(|(_, end)| *end).collect();
    let mut remaining = want;
    for (i, (file, end)) in files.iter_mut().enumerate().rev() {
        let (start, found) = tail_start(file, *end, remaining)?;
        starts[i] = start;
        remaining -= found;
        if remaining == 0 {
            break;
        }
    }
    Ok(starts)
}

/// Scans `file[..end]` backwards for the start of its last `want` complete lines; returns
/// that offset and how many complete lines it covers (fewer when the file is short). A
/// trailing unterminated line is never counted.
fn tail_start(file: &mut File, end: u64, want: usize) -> io::Result<(u64, usize)> {
    let mut newlines = 0usize;
    let mut hi = end;
    let mut buf = vec![0u8; CHUNK];
    while hi > 0 {
        let lo = hi.saturating_sub(CHUNK as u64);
        let chunk = &mut buf[..(hi - lo) as usize];
        file.seek(SeekFrom::Start(lo))?;
        file.read_exact(chunk)?;
        for (i, b) in chunk.iter().enumerate().rev() {
            if *b == b'\n' {
                newlines += 1;
                // the newline ending the line before the wanted ones
                if newlines == want + 1 {
                    return Ok((lo + i as u64 + 1, want));
                }
            }
        }
        hi = lo;
    }
    Ok((0, newlines))
}

/// Emits the complete lines of `file[start..end]`; returns the offset after the last complete
/// line (where a follower continues).
fn read_range(file: &mut File, start: u64, end: u64, sink: &mut Sink) -> io::Result<(u64, Flow)> {
    if start >= end {
        return Ok((start, Flow::Continue));
    }
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::with_capacity(CHUNK, (&*file).take(end - start));
    let mut pos = start;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            // EOF, or an unterminated line still being written: not emitted yet
            return Ok((pos, Flow::Continue));
        }
        pos += n as u64;
        if sink.line(&line) == Flow::Done {
            return Ok((pos, Flow::Done));
        }
    }
}

/// Tails the live file: new lines as they come, across rotations, until told to stop.
fn follow(
    path: &Path,
    mut file: Option<File>,
    mut pos: u64,
    sink: &mut Sink,
    stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut partial: Vec<u8> = Vec::new();
    loop {
        // decide before draining, so whatever was written before the stop is still sent
        let stopping = *stop.borrow() || stop.has_changed().is_err();
        if let Some(f) = file.as_mut() {
            if read_new(f, &mut pos, &mut partial, sink)? == Flow::Done {
                return Ok(());
            }
        }
        // rotated (or created): finish the old file, then switch to the new one
        if let Ok(meta) = std::fs::metadata(path) {
            let current = match &file {
                Some(f) => Some(f.metadata()?),
                None => None,
            };
            let replaced = current.is_none_or(|m| m.ino() != meta.ino() || m.dev() != meta.dev());
            if replaced {
                if let Some(new) = open_if_exists(path)? {
                    if let Some(old) = file.as_mut() {
                        if read_new(old, &mut pos, &mut partial, sink)? == Flow::Done {
                            return Ok(());
                        }
                    }
                    file = Some(new);
                    pos = 0;
                    partial.clear();
                    continue;
                }
            }
        }
        if stopping || sink.tx.is_closed() || sink.query.until.is_some_and(|u| Utc::now() > u) {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
}

/// Reads what was appended since `pos`; emits complete lines, keeps an unfinished one.
fn read_new(
    file: &mut File,
    pos: &mut u64,
    partial: &mut Vec<u8>,
    sink: &mut Sink,
) -> io::Result<Flow> {
    let len = file.metadata()?.len();
    if len < *pos {
        // truncated in place: start over
        *pos = 0;
        partial.clear();
    }
    if len == *pos {
        return Ok(Flow::Continue);
    }
    file.seek(SeekFrom::Start(*pos))?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(Flow::Continue);
        }
        *pos += n as u64;
        let mut rest = &buf[..n];
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            partial.extend_from_slice(&rest[..=i]);
            rest = &rest[i + 1..];
            let flow = sink.line(partial);
            partial.clear();
            if flow == Flow::Done {
                return Ok(Flow::Done);
            }
        }
        partial.extend_from_slice(rest);
        if partial.len() > MAX_PARTIAL {
            tracing::debug!(
                bytes = partial.len(),
                "dropping an overlong unterminated log line"
            );
            partial.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use futures::StreamExt;
    use std::io::Write;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 5).unwrap()
    }

    fn json_line(stream: &str, secs: i64, text: &str) -> String {
        let v = serde_json::json!({
            "log": format!("{text}\n"),
            "stream": stream,
            "time": t(secs).to_rfc3339_opts(SecondsFormat::Nanos, true),
        });
        format!("{v}\n")
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Lines 0..n, stdout for even numbers, stderr for odd; line i at time i.
    fn lines(range: std::ops::Range<i64>) -> String {
        range
            .map(|i| {
                json_line(
                    if i % 2 == 0 { "stdout" } else { "stderr" },
                    i,
                    &format!("line {i}"),
                )
            })
            .collect()
    }

    async fn collect(path: &Path, max_file: u32, query: LogQuery) -> Vec<String> {
        let (_tx, rx) = watch::channel(true);
        read_logs(path.to_path_buf(), max_file, query, rx)
            .map(|r| String::from_utf8(r.unwrap().line.to_vec()).unwrap())
            .collect()
            .await
    }

    fn texts(range: impl Iterator<Item = i64>) -> Vec<String> {
        range.map(|i| format!("line {i}\n")).collect()
    }

    #[tokio::test]
    async fn reads_rotated_files_oldest_first_with_filters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        append(&dir.path().join("c-json.log.2"), &lines(0..3));
        append(&dir.path().join("c-json.log.1"), &lines(3..6));
        append(&path, &lines(6..10));
        // garbage and an unfinished last line are skipped
        append(&path, "not json\n{\"log\":1}\n");
        append(&path, "{\"log\":\"late");

        assert_eq!(collect(&path, 3, LogQuery::default()).await, texts(0..10));
        // max_file 2 ignores .2
        assert_eq!(collect(&path, 2, LogQuery::default()).await, texts(3..10));
        let only_out = LogQuery {
            stderr: false,
            ..Default::default()
        };
        assert_eq!(
            collect(&path, 3, only_out).await,
            texts((0..10).filter(|i| i % 2 == 0))
        );
        let window = LogQuery {
            since: Some(t(2)),
            until: Some(t(7)),
            ..Default::default()
        };
        assert_eq!(collect(&path, 3, window).await, texts(2..8));
        // a missing log is empty, not an error
        assert!(
            collect(&dir.path().join("none.log"), 3, LogQuery::default())
                .await
                .is_empty()
        );
    }

    #[tokio::test]
    async fn tail_spans_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        append(&dir.path().join("c-json.log.1"), &lines(0..5));
        append(&path, &lines(5..8));
        append(&path, "{\"log\":\"partial"); // unterminated: neither counted nor shown
        for (n, want) in [
            (0, 8..8),
            (2, 6..8),
            (3, 5..8),
            (5, 3..8),
            (8, 0..8),
            (50, 0..8),
        ] {
            let q = LogQuery {
                tail: Some(n),
                ..Default::default()
            };
            assert_eq!(collect(&path, 5, q).await, texts(want), "tail {n}");
        }
        // tail counts lines before the stream filter, as dockerd does
        let q = LogQuery {
            tail: Some(2),
            stderr: false,
            ..Default::default()
        };
        assert_eq!(collect(&path, 5, q).await, texts([6].into_iter()));
    }

    #[tokio::test]
    async fn tail_works_on_files_larger_than_a_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        append(&path, &lines(0..3000));
        assert!(std::fs::metadata(&path).unwrap().len() > 2 * CHUNK as u64);
        let q = LogQuery {
            tail: Some(1500),
            ..Default::default()
        };
        assert_eq!(collect(&path, 1, q).await, texts(1500..3000));
    }

    async fn next_line<S>(s: &mut S) -> String
    where
        S: Stream<Item = Result<LogEntry, io::Error>> + Unpin,
    {
        let e = tokio::time::timeout(Duration::from_secs(30), s.next())
            .await
            .expect("log line expected")
            .expect("stream ended early")
            .unwrap();
        String::from_utf8(e.line.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn follow_survives_rotation_and_drains_on_stop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        append(&path, &lines(0..3));
        let (stop_tx, stop_rx) = watch::channel(false);
        let q = LogQuery {
            follow: true,
            tail: Some(1),
            ..Default::default()
        };
        let mut s = Box::pin(read_logs(path.clone(), 3, q, stop_rx));
        assert_eq!(next_line(&mut s).await, "line 2\n");
        append(&path, &lines(3..4));
        assert_eq!(next_line(&mut s).await, "line 3\n");
        // a line written in two pieces comes out once, whole
        let l4 = lines(4..5);
        append(&path, &l4[..10]);
        append(&path, &l4[10..]);
        assert_eq!(next_line(&mut s).await, "line 4\n");
        // rotate: the old file gets a last line after the rename, the new file starts fresh
        std::fs::rename(&path, dir.path().join("c-json.log.1")).unwrap();
        append(&dir.path().join("c-json.log.1"), &lines(5..6));
        append(&path, &lines(6..8));
        assert_eq!(next_line(&mut s).await, "line 5\n");
        assert_eq!(next_line(&mut s).await, "line 6\n");
        assert_eq!(next_line(&mut s).await, "line 7\n");
        // stop: what was written before is still delivered, then the stream ends
        append(&path, &lines(8..9));
        stop_tx.send(true).unwrap();
        let rest: Vec<String> =
            tokio::time::timeout(Duration::from_secs(30), s.collect::<Vec<_>>())
                .await
                .expect("stream must end after stop")
                .into_iter()
                .map(|r| String::from_utf8(r.unwrap().line.to_vec()).unwrap())
                .collect();
        assert_eq!(rest, texts(8..9));
    }

    fn json_line_at(time: DateTime<Utc>, text: &str) -> String {
        let v = serde_json::json!({
            "log": format!("{text}\n"),
            "stream": "stdout",
            "time": time.to_rfc3339_opts(SecondsFormat::Nanos, true),
        });
        format!("{v}\n")
    }

    async fn collect_all<S>(s: S) -> Vec<String>
    where
        S: Stream<Item = Result<LogEntry, io::Error>>,
    {
        tokio::time::timeout(Duration::from_secs(30), s.collect::<Vec<_>>())
            .await
            .expect("the stream must end")
            .into_iter()
            .map(|r| String::from_utf8(r.unwrap().line.to_vec()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn follow_waits_for_a_log_that_does_not_exist_yet_and_ends_at_until() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let (_stop_tx, stop_rx) = watch::channel(false);
        let now = Utc::now();
        let until = now + chrono::Duration::hours(1);
        let q = LogQuery {
            follow: true,
            until: Some(until),
            ..Default::default()
        };
        let s = read_logs(path.clone(), 1, q, stop_rx);
        // the first entry after `until` ends the stream, whatever follows it
        let text = [
            json_line_at(now, "a"),
            json_line_at(now, "b"),
            json_line_at(until + chrono::Duration::seconds(1), "late"),
            json_line_at(now, "c"),
        ]
        .concat();
        append(&path, &text);
        assert_eq!(collect_all(s).await, ["a\n", "b\n"]);

        // with nothing written, the stream ends once the clock passes `until`
        let (_stop_tx, stop_rx) = watch::channel(false);
        let q = LogQuery {
            follow: true,
            until: Some(Utc::now() + chrono::Duration::milliseconds(300)),
            ..Default::default()
        };
        let empty = dir.path().join("empty.log");
        assert!(collect_all(read_logs(empty, 1, q, stop_rx))
            .await
            .is_empty());
    }

    #[tokio::test]
    async fn dropping_the_stream_ends_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        append(&path, &lines(0..1));
        let (stop_tx, stop_rx) = watch::channel(false);
        let q = LogQuery {
            follow: true,
            ..Default::default()
        };
        let mut s = Box::pin(read_logs(path.clone(), 1, q, stop_rx));
        assert!(s.next().await.is_some());
        drop(s);
        // the reader thread holds the only other receiver; once it has gone, send fails
        tokio::time::timeout(Duration::from_secs(30), stop_tx.closed())
            .await
            .expect("reader thread must exit when the stream is dropped");
    }

    #[test]
    fn render_prefixes_dockers_timestamp() {
        let e = LogEntry {
            stream: LogStreamKind::Stdout,
            time: Utc.timestamp_opt(1_700_000_000, 120_000_000).unwrap(),
            line: Bytes::from_static(b"hi\n"),
        };
        assert_eq!(e.render(false), Bytes::from_static(b"hi\n"));
        assert_eq!(
            e.render(true),
            Bytes::from_static(b"2023-11-14T22:13:20.120000000Z hi\n")
        );
        assert_eq!(LogStreamKind::Stderr.as_str(), "stderr");
    }
}
