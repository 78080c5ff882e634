//! A slow TCP proxy in front of the registry: makes a pull last long enough to interrupt
//! it, and counts the bytes the registry sent so a test can see a download stop.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

pub struct SlowProxy {
    addr: String,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl SlowProxy {
    /// Forwards 127.0.0.1:<free port> to `upstream`; the upstream-to-client direction
    /// moves `chunk` bytes every `pause`.
    pub fn start(upstream: &str, chunk: usize, pause: Duration) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = upstream.to_string();
        let (sent2, stop2) = (sent.clone(), stop.clone());
        thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect(&upstream) else {
                            continue;
                        };
                        pipe(
                            client.try_clone().unwrap(),
                            server.try_clone().unwrap(),
                            None,
                        );
                        pipe(server, client, Some((sent2.clone(), chunk, pause)));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        SlowProxy { addr, sent, stop }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Bytes sent from the registry to the daemon so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` to `to` on a thread until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream, slow: Option<(Arc<AtomicU64>, usize, Duration)>) {
    thread::spawn(move || {
        let chunk = slow.as_ref().map_or(64 << 10, |s| s.1);
        let mut buf = vec![0u8; chunk];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            if let Some((sent, _, pause)) = &slow {
                sent.fetch_add(n as u64, Ordering::Relaxed);
                thread::sleep(*pause);
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
    });
}
