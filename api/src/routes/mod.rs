//! One module per API area.

pub(crate) mod images;
pub(crate) mod system;
