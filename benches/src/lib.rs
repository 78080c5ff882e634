//! benchmark helpers
