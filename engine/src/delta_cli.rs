//! `skiff delta create|apply|inspect`: the publisher's offline tools over layer tars
//! (plain, gzip or zstd) and OCI image layouts. The format is in docs/delta-format.md.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use skiff_delta::{CreateOptions, DeltaInfo, ReadSeek, TarBase};

#[derive(Debug, clap::Args)]
pub struct DeltaArgs {
    #[command(subcommand)]
    command: DeltaCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DeltaCommand {
    /// Make a delta from base layer tars to a target layer tar (or per layer between
    /// two OCI image layouts).
    Create(CreateArgs),
    /// Rebuild the target layer tar from the base layer tars and a delta.
    Apply(ApplyArgs),
    /// Print what a delta contains (no base needed).
    Inspect(InspectArgs),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// Base layer tar (plain, gzip or zstd), bottom to top; repeatable.
    #[arg(long = "base", value_name = "BASE.tar", conflicts_with = "base_oci")]
    bases: Vec<PathBuf>,
    /// Target layer tar (plain, gzip or zstd).
    #[arg(
        long,
        value_name = "TARGET.tar",
        required_unless_present = "target_oci",
        conflicts_with = "target_oci"
    )]
    target: Option<PathBuf>,
    /// Base image as an OCI layout directory, optionally with a tag (ref.name).
    #[arg(long = "base-oci", value_name = "DIR[:TAG]", requires = "target_oci")]
    base_oci: Option<String>,
    /// Target image as an OCI layout directory: one delta per target layer.
    #[arg(long = "target-oci", value_name = "DIR[:TAG]", requires = "base_oci")]
    target_oci: Option<String>,
    /// Output: the delta file (layer tars) or a directory (OCI layouts).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: PathBuf,
    /// zstd level, 1..=22.
    #[arg(long, default_value_t = 19, value_parser = clap::value_parser!(i32).range(1..=22))]
    level: i32,
    /// Do not copy stretches of base layer tars: the delta then needs only the base
    /// layers' extracted files (bigger: tar headers are sent).
    #[arg(long = "no-base-ranges")]
    no_base_ranges: bool,
}

#[derive(Debug, clap::Args)]
struct ApplyArgs {
    /// Base layer tar (plain, gzip or zstd), bottom to top, exactly as given to create.
    #[arg(long = "base", value_name = "BASE.tar")]
    bases: Vec<PathBuf>,
    /// The delta file.
    #[arg(value_name = "DELTA")]
    delta: PathBuf,
    /// Where to write the rebuilt layer tar (written only when it verified).
    #[arg(short = 'o', long = "output", value_name = "OUT.tar")]
    output: PathBuf,
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// The delta file.
    #[arg(value_name = "DELTA")]
    delta: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs one `skiff delta` subcommand.
pub fn run(args: DeltaArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DeltaCommand::Create(a) => match (&a.base_oci, &a.target_oci) {
            (Some(base), Some(target)) => create_oci(&a, base, target),
            _ => create_tars(&a),
        },
        DeltaCommand::Apply(a) => apply(&a),
        DeltaCommand::Inspect(a) => inspect(&a),
    }?;
    Ok(ExitCode::SUCCESS)
}

/// A layer tar ready to read: uncompressed (into an anonymous temp file if it was
/// compressed, since create and apply seek) with its diff_id.
struct LayerTar {
    name: String,
    reader: Box<dyn ReadSeek>,
    diff_id: String,
    size: u64,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

fn open_layer(path: &Path) -> anyhow::Result<LayerTar> {
    let name = path.display().to_string();
    let file = File::open(path).with_context(|| format!("cannot open layer {name}"))?;
    let mut file = BufReader::new(file);
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut file, &mut magic).with_context(|| format!("cannot read {name}"))?;
    file.seek(SeekFrom::Start(0))
        .with_context(|| format!("cannot rewind {name}"))?;
    let magic = &magic[..n];
    let decoder: Option<Box<dyn Read>> = if magic.starts_with(GZIP_MAGIC) {
        Some(Box::new(flate2::read::MultiGzDecoder::new(
            file.get_ref().try_clone()?,
        )))
    } else if magic.starts_with(ZSTD_MAGIC) {
        let d = zstd::stream::read::Decoder::new(file.get_ref().try_clone()?)
            .with_context(|| format!("cannot start decompressing {name}"))?;
        Some(Box::new(d))
    } else {
        None
    };
    let (mut reader, diff_id, size): (Box<dyn ReadSeek>, _, _) = match decoder {
        Some(mut decoder) => {
            let mut tmp = tempfile::tempfile()
                .context("cannot create a temp file to decompress a layer into; check TMPDIR")?;
            let (diff_id, size) = {
                let mut out = BufWriter::new(&mut tmp);
                let r = hash_copy(&mut decoder, &mut out)
                    .with_context(|| format!("cannot decompress layer {name}; is it complete?"))?;
                out.flush().context("cannot write the decompressed layer")?;
                r
            };
            (Box::new(BufReader::new(tmp)), diff_id, size)
        }
        None => {
            let r = hash_copy(&mut file, &mut io::sink())
                .with_context(|| format!("cannot read layer {name}"))?;
            (Box::new(file), r.0, r.1)
        }
    };
    reader
        .seek(SeekFrom::Start(0))
        .with_context(|| format!("cannot rewind {name}"))?;
    Ok(LayerTar {
        name,
        reader,
        diff_id,
        size,
    })
}

fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Copies `r` to `w`, returning the `sha256:<hex>` and length of what was copied.
fn hash_copy(r: &mut dyn Read, w: &mut dyn Write) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), total))
}

/// `path` + ".tmp": where output goes until it is complete.
fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Writes `path` through `path.tmp`, renamed only when `write` succeeded, so a failed
/// run never leaves a partial file behind.
fn write_atomically<T>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let tmp = tmp_path(path);
    let result = (|| {
        let file = File::create(&tmp)
            .with_context(|| format!("cannot create {}; check the directory", tmp.display()))?;
        let mut out = BufWriter::new(file);
        let value = write(&mut out)?;
        let file = out
            .into_inner()
            .map_err(|e| anyhow!("cannot write {}: {}", tmp.display(), e.error()))?;
        file.sync_all()
            .with_context(|| format!("cannot sync {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} into place", tmp.display()))?;
        Ok(value)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn create_options(a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        level: a.level,
        base_tar_ranges: !a.no_base_ranges,
        ..CreateOptions::default()
    }
}

fn create_tars(a: &CreateArgs) -> anyhow::Result<()> {
    let target_path = a
        .target
        .as_deref()
        .ok_or_else(|| anyhow!("--target is missing; pass the target layer tar"))?;
    let mut bases = a
        .bases
        .iter()
        .map(|p| open_layer(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut target = open_layer(target_path)?;
    let started = Instant::now();
    let stats = write_atomically(&a.output, |out| {
        let mut refs: Vec<&mut dyn ReadSeek> = bases
            .iter_mut()
            .map(|b| &mut *b.reader as &mut dyn ReadSeek)
            .collect();
        skiff_delta::create(&mut refs, &mut target.reader, out, &create_options(a))
            .context("cannot create the delta")
    })?;
    let secs = started.elapsed().as_secs_f64();
    let base_bytes: u64 = bases.iter().map(|b| b.size).sum();
    println!("bases    {} layers ({base_bytes} bytes)", bases.len());
    println!(
        "target   {} ({} bytes)",
        stats.target_diff_id, stats.target_size
    );
    println!(
        "delta    {} ({} bytes, {} of the target)",
        a.output.display(),
        stats.delta_size,
        ratio(stats.delta_size, stats.target_size)
    );
    println!(
        "files    {} copied, {} bsdiff, {} zstd-ref, {} literal ({} bytes); {} bytes as base tar ranges",
        stats.copied, stats.bsdiff, stats.zref, stats.literal, stats.literal_bytes, stats.range_bytes
    );
    println!("time     {secs:.2} s");
    Ok(())
}

fn ratio(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "n/a".into();
    }
    format!("{:.2}%", part as f64 * 100.0 / whole as f64)
}

fn read_info(path: &Path) -> anyhow::Result<DeltaInfo> {
    let file = File::open(path).with_context(|| format!("cannot open delta {}", path.display()))?;
    skiff_delta::inspect(&mut BufReader::new(file))
        .with_context(|| format!("cannot read delta {}", path.display()))
}

fn apply(a: &ApplyArgs) -> anyhow::Result<()> {
    // Inspect first: a corrupt or truncated delta fails before any output exists.
    let info = read_info(&a.delta)?;
    if a.bases.len() != info.base_diff_ids.len() {
        bail!(
            "the delta was made against {} base layers but {} were given; pass every base layer tar with --base, bottom to top",
            info.base_diff_ids.len(),
            a.bases.len()
        );
    }
    let bases = a
        .bases
        .iter()
        .map(|p| open_layer(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (i, (b, want)) in bases.iter().zip(&info.base_diff_ids).enumerate() {
        if &b.diff_id != want {
            bail!(
                "base layer {i} ({}) has diff_id {} but the delta was made against {want}; pass the base layer tars the delta was created from, bottom to top",
                b.name,
                b.diff_id
            );
        }
    }
    let base = TarBase::new(bases.into_iter().map(|b| b.reader).collect())
        .context("cannot index the base layer tars")?;
    let started = Instant::now();
    let applied = write_atomically(&a.output, |out| {
        let file = File::open(&a.delta)
            .with_context(|| format!("cannot open delta {}", a.delta.display()))?;
        let applied = skiff_delta::apply(&base, &mut BufReader::new(file), out)
            .with_context(|| format!("cannot apply delta {}", a.delta.display()))?;
        if applied.diff_id != info.target_diff_id || applied.size != info.target_size {
            bail!(
                "rebuilt layer is {} ({} bytes) but the delta records {} ({} bytes); the delta or base is damaged, recreate the delta",
                applied.diff_id,
                applied.size,
                info.target_diff_id,
                info.target_size
            );
        }
        Ok(applied)
    })?;
    println!("{}", applied.diff_id);
    eprintln!(
        "wrote {} ({} bytes, verified) in {:.2} s",
        a.output.display(),
        applied.size,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn info_json(info: &DeltaInfo) -> Value {
    json!({
        "FormatVersion": info.version,
        "TargetSize": info.target_size,
        "TargetDiffID": info.target_diff_id,
        "BaseDiffIDs": info.base_diff_ids,
        "Ops": {
            "Copy": info.copies,
            "Bsdiff": info.bsdiff,
            "Zref": info.zref,
            "Range": info.ranges,
        },
        "Bytes": {
            "Literal": info.literal_bytes,
            "Copied": info.copied_bytes,
            "Patched": info.patched_bytes,
            "Payload": info.payload_bytes,
            "Range": info.range_bytes,
        },
    })
}

fn inspect(a: &InspectArgs) -> anyhow::Result<()> {
    let info = read_info(&a.delta)?;
    let size = std::fs::metadata(&a.delta).map(|m| m.len()).unwrap_or(0);
    if a.json {
        let mut v = info_json(&info);
        v["DeltaSize"] = json!(size);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("format version  {}", info.version);
    println!("delta size      {size} bytes");
    println!(
        "target          {} ({} bytes)",
        info.target_diff_id, info.target_size
    );
    println!("base layers     {}", info.base_diff_ids.len());
    for (i, id) in info.base_diff_ids.iter().enumerate() {
        println!("  {i}  {id}");
    }
    println!("ops");
    println!(
        "  copy          {} ({} bytes)",
        info.copies, info.copied_bytes
    );
    println!(
        "  range         {} ({} bytes)",
        info.ranges, info.range_bytes
    );
    println!(
        "  bsdiff        {} / zstd-ref {} ({} bytes from {} payload bytes)",
        info.bsdiff, info.zref, info.patched_bytes, info.payload_bytes
    );
    println!("  literal       {} bytes", info.literal_bytes);
    Ok(())
}

/// One image of an OCI layout: its manifest digest and layer blob paths.
struct OciImage {
    layout: PathBuf,
    manifest: String,
    layers: Vec<(String, PathBuf)>,
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// `DIR` or `DIR:TAG` (a directory whose name holds a `:` wins over a tag).
fn parse_oci_ref(spec: &str) -> (PathBuf, Option<String>) {
    if Path::new(spec).is_dir() {
        return (PathBuf::from(spec), None);
    }
    match spec.rsplit_once(':') {
        Some((dir, tag)) if !tag.contains('/') => (PathBuf::from(dir), Some(tag.to_string())),
        _ => (PathBuf::from(spec), None),
    }
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// `blobs/<alg>/<hex>` for a digest; refuses anything that is not a plain digest so a
/// manifest cannot point outside the layout.
fn blob_path(layout: &Path, digest: &str) -> anyhow::Result<PathBuf> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| anyhow!("'{digest}' is not a digest"))?;
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    if !plain(alg) || !plain(hex) {
        bail!("'{digest}' is not a digest; the OCI layout is damaged");
    }
    Ok(layout.join("blobs").join(alg).join(hex))
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    }
}

fn read_oci(spec: &str) -> anyhow::Result<OciImage> {
    let (layout, tag) = parse_oci_ref(spec);
    let index = read_json(&layout.join("index.json")).with_context(|| {
        format!(
            "{} is not an OCI image layout; make one with `skopeo copy docker://IMAGE oci:DIR:TAG`",
            layout.display()
        )
    })?;
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let chosen: Vec<&Value> = manifests
        .iter()
        .filter(|m| match &tag {
            Some(t) => m["annotations"][REF_NAME].as_str() == Some(t),
            None => true,
        })
        .collect();
    let mut desc = match chosen.as_slice() {
        [one] => (*one).clone(),
        [] => bail!(
            "no image tagged '{}' in {}; list the tags with `jq '.manifests[].annotations' {}/index.json`",
            tag.unwrap_or_default(),
            layout.display(),
            layout.display()
        ),
        _ => bail!(
            "{} holds {} images; pick one with {}:TAG",
            layout.display(),
            chosen.len(),
            layout.display()
        ),
    };
    let mut manifest_digest = desc["digest"].as_str().unwrap_or_default().to_string();
    let mut manifest = read_json(&blob_path(&layout, &manifest_digest)?)?;
    // A multi-platform index: take this machine's platform.
    if manifest["manifests"].is_array() {
        desc = manifest["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == go_arch())
            .cloned()
            .ok_or_else(|| {
                anyhow!(
                    "{spec} is a multi-platform image without linux/{}; copy one platform with `skopeo copy --override-arch ARCH`",
                    go_arch()
                )
            })?;
        manifest_digest = desc["digest"].as_str().unwrap_or_default().to_string();
        manifest = read_json(&blob_path(&layout, &manifest_digest)?)?;
    }
    let layers = manifest["layers"]
        .as_array()
        .ok_or_else(|| anyhow!("manifest {manifest_digest} in {spec} has no layers list"))?
        .iter()
        .map(|l| {
            let digest = l["digest"].as_str().unwrap_or_default().to_string();
            let path = blob_path(&layout, &digest)?;
            Ok((digest, path))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(OciImage {
        layout,
        manifest: manifest_digest,
        layers,
    })
}

/// One delta per target layer against all base layers, into the directory `a.output`,
/// plus `summary.json`. Target layers the base already has need no delta.
fn create_oci(a: &CreateArgs, base_spec: &str, target_spec: &str) -> anyhow::Result<()> {
    let base_img = read_oci(base_spec)?;
    let target_img = read_oci(target_spec)?;
    let mut bases = base_img
        .layers
        .iter()
        .map(|(_, p)| open_layer(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let base_ids: Vec<String> = bases.iter().map(|b| b.diff_id.clone()).collect();
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("cannot create output directory {}", a.output.display()))?;
    let opts = create_options(a);
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut target_ids = Vec::new();
    let (mut total_target, mut total_delta) = (0u64, 0u64);
    for (i, (digest, path)) in target_img.layers.iter().enumerate() {
        let mut target = open_layer(path)?;
        target_ids.push(target.diff_id.clone());
        total_target += target.size;
        if base_ids.contains(&target.diff_id) {
            println!("layer {i}  {}  in the base, no delta", target.diff_id);
            rows.push(json!({
                "Index": i, "Digest": digest, "DiffID": target.diff_id, "Size": target.size,
                "InBase": true, "Delta": null, "DeltaSize": 0,
            }));
            continue;
        }
        let hex = target.diff_id.trim_start_matches("sha256:");
        let name = format!("{hex}.delta");
        let stats = write_atomically(&a.output.join(&name), |out| {
            for b in bases.iter_mut() {
                b.reader.seek(SeekFrom::Start(0))?;
            }
            let mut refs: Vec<&mut dyn ReadSeek> = bases
                .iter_mut()
                .map(|b| &mut *b.reader as &mut dyn ReadSeek)
                .collect();
            skiff_delta::create(&mut refs, &mut target.reader, out, &opts)
                .with_context(|| format!("cannot create the delta for target layer {i}"))
        })?;
        total_delta += stats.delta_size;
        println!(
            "layer {i}  {}  {} -> {} bytes ({})  {name}",
            target.diff_id,
            stats.target_size,
            stats.delta_size,
            ratio(stats.delta_size, stats.target_size)
        );
        rows.push(json!({
            "Index": i, "Digest": digest, "DiffID": target.diff_id, "Size": target.size,
            "InBase": false, "Delta": name, "DeltaSize": stats.delta_size,
        }));
    }
    let summary = json!({
        "Base": {
            "Layout": base_img.layout, "Manifest": base_img.manifest, "DiffIDs": base_ids,
        },
        "Target": {
            "Layout": target_img.layout, "Manifest": target_img.manifest, "DiffIDs": target_ids,
        },
        "Layers": rows,
        "TargetSize": total_target,
        "DeltaSize": total_delta,
    });
    write_atomically(&a.output.join("summary.json"), |out| {
        serde_json::to_writer_pretty(&mut *out, &summary)?;
        out.write_all(b"\n")?;
        Ok(())
    })?;
    println!(
        "total    {total_target} -> {total_delta} bytes ({}) in {:.2} s; summary in {}",
        ratio(total_delta, total_target),
        started.elapsed().as_secs_f64(),
        a.output.join("summary.json").display()
    );
    Ok(())
}
