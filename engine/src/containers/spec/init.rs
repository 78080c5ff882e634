//! The minimal init run as PID 1 with `--init` (mounted at /sbin/docker-init).

/// The static init binary (built from init.c by build.rs).
pub fn init_binary() -> &'static [u8] {
    &[]
}
