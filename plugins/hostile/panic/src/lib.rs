//! Fixture: `plan` panics; the host must report a trap with the panic message from stderr.
// The generated guest bindings are the only unsafe code (the canonical ABI glue).
#![allow(unsafe_code)]
// Only meaningful as a wasm component; natively (`cargo build --workspace`) the crate is empty.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "action-plugin", path: "../../../wit/k8up-plugin@0.1.0" });

include!("../../common.rs");

const NAME: &str = "panic";

#[allow(clippy::panic)]
fn plan(request: PlanRequest) -> Result<JobPlan, PluginError> {
    panic!("hostile fixture gave up on {}", request.object.name);
}
