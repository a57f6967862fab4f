//! k8up-rs: a Kubernetes backup operator built on restic, with per-action job planning in WASM plugins.
//!
//! The binary (`main.rs`) only parses the command line and dispatches; everything testable lives here.

pub mod cli;
pub mod crd;
pub mod errors;
pub mod jobs;
pub mod operator;
pub mod plugin;
pub mod restic;
pub mod telemetry;
