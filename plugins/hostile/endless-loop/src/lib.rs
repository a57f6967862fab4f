//! Fixture: `plan` never returns; the host's epoch deadline must stop it.
// The generated guest bindings are the only unsafe code (the canonical ABI glue).
#![allow(unsafe_code)]
// Only meaningful as a wasm component; natively (`cargo build --workspace`) the crate is empty.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "action-plugin", path: "../../../wit/k8up-plugin@0.1.0" });

include!("../../common.rs");

const NAME: &str = "endless-loop";

fn plan(request: PlanRequest) -> Result<JobPlan, PluginError> {
    let mut n: u64 = request.pvcs.len() as u64;
    loop {
        // black_box keeps the optimiser from proving the loop useless.
        n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}
