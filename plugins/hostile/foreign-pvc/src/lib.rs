//! Fixture: mounts a PVC the host did not offer.
// The generated guest bindings are the only unsafe code (the canonical ABI glue).
#![allow(unsafe_code)]
// Only meaningful as a wasm component; natively (`cargo build --workspace`) the crate is empty.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "action-plugin", path: "../../../wit/k8up-plugin@0.1.0" });

include!("../../common.rs");

const NAME: &str = "foreign-pvc";

fn plan(request: PlanRequest) -> Result<JobPlan, PluginError> {
    let mut j = job("", vec!["--backup".to_string()]);
    j.pvc_mounts.push(PvcMount {
        claim_name: "someone-elses-data".to_string(),
        mount_path: format!("{}/someone-elses-data", request.settings.data_path),
        read_only: true,
    });
    Ok(JobPlan {
        jobs: vec![j],
        message: None,
    })
}
