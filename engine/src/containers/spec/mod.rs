//! OCI runtime spec from the image config and the create request (filled by the containers issue)
