//! The minimal init run as PID 1 with `--init` (mounted at /sbin/docker-init): reaps zombies,
//! forwards signals to the command and exits with its status. Built from init.c by
//! engine/build.rs as a static executable.

static INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/docker-init"));

/// The static init executable; empty when the build had no static C toolchain (the service
/// must then refuse `--init`).
pub fn init_binary() -> &'static [u8] {
    INIT
}
