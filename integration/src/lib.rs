//! shared helpers for the black-box tests
