//! registry client (in progress)
