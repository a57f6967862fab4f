//! The action-plugin host: the sandboxed engine, the contract bindings, the plan checks, the
//! built-in plugins, the ConfigMap registry and the dry-run commands.

pub mod bindings;
pub mod builtin;
pub mod check;
pub mod dryrun;
pub mod engine;
pub mod error;
pub mod planner;
pub mod registry;
pub mod request;
pub mod source;
pub mod state;

#[cfg(test)]
pub(crate) mod fixtures;

pub use engine::{Limits, Plugin, PluginEngine, sha256_hex};
pub use error::Error;
pub use planner::{PluginPlanner, plan_jobs};
pub use registry::Registry;
pub use source::{Builtins, PluginSource};

/// The contract types the host works with (the newest WIT version's).
pub mod types {
    pub use super::bindings::current::k8up::plugin::types::*;
}
