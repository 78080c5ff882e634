//! skiff's per-container shim (containerd shim v2 over ttrpc). Empty until the containers
//! issue: the daemon does not run containers yet and nothing links this crate.
