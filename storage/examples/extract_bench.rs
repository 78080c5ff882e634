//! Time extracting a layer file into a fresh store: `extract_bench LAYER.tar[.gz|.zst] DIR`.
//! Compare with `tar -xf` of the same file into the same filesystem (see docs/storage.md).

use std::time::Instant;

use skiff_storage::{ExtractRequest, Store, StoreOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(layer), Some(dir)) = (args.get(1), args.get(2)) else {
        return Err("usage: extract_bench LAYER DIR".into());
    };
    let store = Store::open(std::path::Path::new(dir), StoreOptions::default())?;
    let mut f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(layer)?);
    let t = Instant::now();
    let info = store.extract_layer(ExtractRequest::default(), &mut f)?;
    let extract = t.elapsed();
    let t = Instant::now();
    let n = store.write_layer_tar(&info.chain_id, &mut std::io::sink())?;
    let rebuild = t.elapsed();
    let problems = store.check(true)?;
    if !problems.is_empty() {
        return Err(format!("check found problems: {problems:?}").into());
    }
    println!(
        "extract {:.3}s rebuild {:.3}s (deep check ok) tar {} bytes content {} bytes diff_id {}",
        extract.as_secs_f64(),
        rebuild.as_secs_f64(),
        n,
        info.size,
        info.diff_id
    );
    Ok(())
}
