//! Fixture: `plan` allocates without bound; the host's memory cap must stop it.
// The generated guest bindings are the only unsafe code (the canonical ABI glue).
#![allow(unsafe_code)]
// Only meaningful as a wasm component; natively (`cargo build --workspace`) the crate is empty.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "action-plugin", path: "../../../wit/k8up-plugin@0.1.0" });

include!("../../common.rs");

const NAME: &str = "memory-bomb";

fn plan(_request: PlanRequest) -> Result<JobPlan, PluginError> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every page so the allocation is real.
        hoard.push(vec![0xA5; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}
