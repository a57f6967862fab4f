//! Fixture: returns a plan far beyond the host's size limits (thousands of jobs, megabytes of args).
// The generated guest bindings are the only unsafe code (the canonical ABI glue).
#![allow(unsafe_code)]
// Only meaningful as a wasm component; natively (`cargo build --workspace`) the crate is empty.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "action-plugin", path: "../../../wit/k8up-plugin@0.1.0" });

include!("../../common.rs");

const NAME: &str = "huge-plan";

fn plan(_request: PlanRequest) -> Result<JobPlan, PluginError> {
    let jobs = (0..2000)
        .map(|i| job(&format!("j{i}"), vec!["x".repeat(1024); 4]))
        .collect();
    Ok(JobPlan { jobs, message: None })
}
