//! Host bindings of each supported WIT contract version, and reading a component's version.
//!
//! Every published `k8up:plugin` version gets its own `bindgen!` module here. The newest one
//! is the host's working shape ([`current`]); older ones are converted to it at the edge
//! (in the engine), so the rest of the host only ever sees one set of types.

use wasmtime::Engine;
use wasmtime::component::Component;

/// Bindings of `k8up:plugin@0.1.0`.
pub mod v0_1_0 {
    wasmtime::component::bindgen!({
        world: "action-plugin",
        path: "../wit/k8up-plugin@0.1.0",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });
}

/// The newest contract version: the types the host works with.
pub use v0_1_0 as current;

/// The WIT versions this host can run, oldest first.
pub const SUPPORTED_WIT_VERSIONS: &[&str] = &["0.1.0"];

/// The WIT package every action plugin imports from or exports to.
pub const WIT_PACKAGE: &str = "k8up:plugin";

/// What the component's imports and exports say about its contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitVersion {
    /// The component names `k8up:plugin/...@<version>` and the version is supported.
    Supported(&'static str),
    /// The component names `k8up:plugin/...@<version>` with a version this host does not know.
    Unsupported(String),
    /// The component names no `k8up:plugin` interface at all (or several versions at once).
    NotAPlugin(String),
}

/// Reads the `k8up:plugin` version from the names of a component's imports and exports
/// (e.g. `k8up:plugin/planner@0.1.0`), without instantiating it.
pub fn wit_version(engine: &Engine, component: &Component) -> WitVersion {
    let ty = component.component_type();
    let mut versions: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name)
        .chain(ty.exports(engine).map(|(name, _)| name))
        .filter_map(|name| {
            let rest = name.strip_prefix(WIT_PACKAGE)?.strip_prefix('/')?;
            // An unversioned name is a contract we cannot place either.
            Some(rest.split_once('@').map_or(String::new(), |(_, v)| v.to_string()))
        })
        .collect();
    versions.sort();
    versions.dedup();
    match versions.as_slice() {
        [] => WitVersion::NotAPlugin(format!(
            "the component neither imports nor exports any {WIT_PACKAGE} interface"
        )),
        [one] => match SUPPORTED_WIT_VERSIONS.iter().find(|v| **v == one.as_str()) {
            Some(v) => WitVersion::Supported(v),
            None => WitVersion::Unsupported(one.clone()),
        },
        many => WitVersion::NotAPlugin(format!(
            "the component mixes {WIT_PACKAGE} versions {}",
            many.join(", ")
        )),
    }
}
