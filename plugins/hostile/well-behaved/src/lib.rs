//! Fixture: an honest plugin that mounts every offered PVC read-only under the data path.
// The generated guest bindings are the only unsafe code (the canonical ABI glue).
#![allow(unsafe_code)]
// Only meaningful as a wasm component; natively (`cargo build --workspace`) the crate is empty.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "action-plugin", path: "../../../wit/k8up-plugin@0.1.0" });

include!("../../common.rs");

const NAME: &str = "well-behaved";

fn plan(request: PlanRequest) -> Result<JobPlan, PluginError> {
    let mut j = job("", vec!["--backup".to_string()]);
    for pvc in &request.pvcs {
        j.pvc_mounts.push(PvcMount {
            claim_name: pvc.name.clone(),
            mount_path: format!("{}/{}", request.settings.data_path, pvc.name),
            read_only: true,
        });
    }
    j.env = request.backend.env.clone();
    Ok(JobPlan {
        jobs: vec![j],
        message: Some(format!("{} pvcs", request.pvcs.len())),
    })
}
