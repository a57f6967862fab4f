//! Fixture: an otherwise honest plugin built against `k8up:plugin@0.9.0`, a version the host does not know.
// The generated guest bindings are the only unsafe code (the canonical ABI glue).
#![allow(unsafe_code)]
// Only meaningful as a wasm component; natively (`cargo build --workspace`) the crate is empty.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "action-plugin", path: "wit" });

include!("../../common.rs");

const NAME: &str = "wrong-version";

fn plan(_request: PlanRequest) -> Result<JobPlan, PluginError> {
    Ok(JobPlan {
        jobs: vec![job("", vec!["--check".to_string()])],
        message: None,
    })
}
