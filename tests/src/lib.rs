//! k8up-tests: the sandbox cluster and end-to-end test support.

pub mod api;
pub mod node;
