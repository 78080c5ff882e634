//! Tests against a real registry.
