//! Builds the container init (engine/src/containers/spec/init.c) as a static executable that
//! the engine embeds: a glibc-dynamic binary would not run inside images without glibc.
//! When no static C toolchain is available the build still succeeds with an empty init and
//! a warning; `--init` then fails with a clear error at create time.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = PathBuf::from("src/containers/spec/init.c");
    println!("cargo:rerun-if-changed={}", src.display());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let out = out_dir.join("docker-init");

    let compiler = cc::Build::new()
        .opt_level_str("s")
        .cargo_metadata(false)
        .get_compiler();
    let mut cmd: Command = compiler.to_command();
    cmd.args(["-static", "-Os", "-s", "-Wall", "-o"])
        .arg(&out)
        .arg(&src);
    let built = match cmd.status() {
        Ok(status) if status.success() => true,
        Ok(status) => {
            println!("cargo:warning=building the static init failed ({status}): --init will be unavailable; install a static libc (glibc's libc.a)");
            false
        }
        Err(e) => {
            println!(
                "cargo:warning=no C compiler for the static init ({e}): --init will be unavailable"
            );
            false
        }
    };
    if !built {
        std::fs::write(&out, b"").expect("write the empty init placeholder");
    }
}
