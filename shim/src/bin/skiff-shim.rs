//! Stand-alone shim binary (`skiff-shim shim --state-dir DIR`), the same code as
//! `skiff shim`; the shim's own tests launch it.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "shim") {
        args.next();
    }
    let mut state_dir = None;
    while let Some(arg) = args.next() {
        if arg == "--state-dir" {
            state_dir = args.next().map(PathBuf::from);
        }
    }
    match state_dir {
        Some(dir) => skiff_shim::run_shim_main(&dir),
        None => {
            eprintln!("usage: skiff-shim shim --state-dir DIR");
            ExitCode::from(2)
        }
    }
}
