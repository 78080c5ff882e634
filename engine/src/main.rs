//! The `skiff` binary: daemon, store check, offline delta tools.

mod registry;

fn main() {}
