//! Storage throughput: extracting a ~50 MB gzip layer into a fresh store (what a pull does
//! after the network) and rebuilding its tar stream (what save, push and deltas do).
//!
//! `cargo bench -p skiff-benches --bench storage`; set SKIFF_BENCH_DIR to put the stores on
//! another filesystem (default: the system temp dir). Throughput is in uncompressed tar bytes.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use skiff_benches::generate_layer;
use skiff_storage::{ExtractRequest, Store, StoreOptions};
use tempfile::TempDir;

const LAYER_TAR_SIZE: u64 = 50 * 1024 * 1024;
const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn temp_store() -> (TempDir, Store) {
    let dir = match std::env::var_os("SKIFF_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base),
        None => tempfile::tempdir(),
    }
    .expect("create a temp dir for the store (set SKIFF_BENCH_DIR to a writable dir)");
    let store = Store::open(dir.path(), StoreOptions::default()).expect("open store");
    (dir, store)
}

fn storage(c: &mut Criterion) {
    let layer = generate_layer(LAYER_TAR_SIZE, 42).expect("generate layer");
    eprintln!(
        "layer: {} files, tar {} bytes, gzip {} bytes",
        layer.files,
        layer.tar_size,
        layer.tar_gz.len()
    );
    let mut g = c.benchmark_group("storage");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Bytes(layer.tar_size));

    // Each iteration gets a fresh store; removing it afterwards is not timed.
    g.bench_function("extract_layer_gzip_50MB", |b| {
        b.iter_batched(
            temp_store,
            |(dir, store)| {
                let req = ExtractRequest {
                    media_type: Some(GZIP),
                    ..Default::default()
                };
                let info = store
                    .extract_layer(req, &mut layer.tar_gz.as_slice())
                    .expect("extract");
                (dir, store, info)
            },
            BatchSize::PerIteration,
        )
    });

    let (_dir, store) = temp_store();
    let info = store
        .extract_layer(
            ExtractRequest {
                media_type: Some(GZIP),
                ..Default::default()
            },
            &mut layer.tar_gz.as_slice(),
        )
        .expect("extract");
    g.bench_function("write_layer_tar_50MB", |b| {
        b.iter(|| {
            store
                .write_layer_tar(&info.chain_id, &mut std::io::sink())
                .expect("rebuild tar")
        })
    });
    g.finish();
}

criterion_group!(benches, storage);
criterion_main!(benches);
