//! Quick hand measurement of create and apply on real tars (not a benchmark harness).
//!
//! ```text
//! cargo run --release -p skiff-delta --example measure -- create BASE.tar... TARGET.tar DELTA
//! cargo run --release -p skiff-delta --example measure -- apply  BASE.tar... DELTA
//! cargo run --release -p skiff-delta --example measure -- inspect DELTA
//! ```
//! `create` prints the delta size, stats and create time; `apply` rebuilds the target
//! into a sink and prints the apply time, throughput, diff_id and the process's peak RSS.

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::time::Instant;

use skiff_delta::{apply, create, CreateOptions, ReadSeek, TarBase};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: measure create BASE.tar... TARGET.tar DELTA | measure apply BASE.tar... DELTA | measure inspect DELTA";
    let (mode, rest) = args.split_first().ok_or(usage)?;
    match mode.as_str() {
        "create" if rest.len() >= 2 => {
            let (out, rest) = rest.split_last().ok_or(usage)?;
            let (target, bases) = rest.split_last().ok_or(usage)?;
            let mut files: Vec<BufReader<File>> = bases
                .iter()
                .map(|p| File::open(p).map(BufReader::new))
                .collect::<io::Result<_>>()?;
            let mut refs: Vec<&mut dyn ReadSeek> =
                files.iter_mut().map(|f| f as &mut dyn ReadSeek).collect();
            let mut target = BufReader::new(File::open(target)?);
            let mut out = BufWriter::new(File::create(out)?);
            let mut opts = CreateOptions::default();
            if let Ok(l) = std::env::var("DELTA_LEVEL") {
                opts.level = l.parse()?;
            }
            let t = Instant::now();
            let stats = create(&mut refs, &mut target, &mut out, &opts)?;
            let secs = t.elapsed().as_secs_f64();
            println!("delta_size {} bytes", stats.delta_size);
            println!("create_time {secs:.2} s");
            println!("{stats:#?}");
        }
        "apply" if rest.len() >= 2 => {
            let (delta, bases) = rest.split_last().ok_or(usage)?;
            let files: Vec<BufReader<File>> = bases
                .iter()
                .map(|p| File::open(p).map(BufReader::new))
                .collect::<io::Result<_>>()?;
            let base = TarBase::new(files)?;
            let rss_before = peak_rss_kib();
            let mut delta = BufReader::new(File::open(delta)?);
            let t = Instant::now();
            let applied = apply(&base, &mut delta, &mut io::sink())?;
            let secs = t.elapsed().as_secs_f64();
            println!(
                "apply_time {secs:.2} s ({:.1} MB/s of target)",
                applied.size as f64 / secs / 1e6
            );
            println!("target {} bytes {}", applied.size, applied.diff_id);
            println!(
                "peak_rss {} KiB (before apply {} KiB)",
                peak_rss_kib(),
                rss_before
            );
        }
        "inspect" if rest.len() == 1 => {
            let info = skiff_delta::inspect(&mut BufReader::new(File::open(&rest[0])?))?;
            println!("{info:#?}");
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
