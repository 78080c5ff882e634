//! (filled by the containers issue)
