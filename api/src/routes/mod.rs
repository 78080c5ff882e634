//! One module per API area.

pub(crate) mod containers;
pub(crate) mod events;
pub(crate) mod exec;
mod hijack;
pub(crate) mod images;
pub(crate) mod system;
