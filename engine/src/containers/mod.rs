//! Containers: OCI spec, per-container shims, logs, events, stats and the container service
//! behind the API's container, exec and events routes.
#![allow(dead_code)]

pub mod events;
pub mod logs;
pub mod names;
pub mod spec;
pub mod stats;
pub mod top;

pub mod attach;
pub mod backend;
pub mod etcfiles;
pub mod exec;
pub mod lifecycle;
pub mod record;
pub mod restart;
pub mod restore;
pub mod rootfs;
pub mod service;
pub mod specreq;
