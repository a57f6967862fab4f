//! Fixture: reads a key of a Secret the resource does not name.
// The generated guest bindings are the only unsafe code (the canonical ABI glue).
#![allow(unsafe_code)]
// Only meaningful as a wasm component; natively (`cargo build --workspace`) the crate is empty.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({ world: "action-plugin", path: "../../../wit/k8up-plugin@0.1.0" });

include!("../../common.rs");

const NAME: &str = "foreign-secret";

fn plan(_request: PlanRequest) -> Result<JobPlan, PluginError> {
    let mut j = job("", vec!["--check".to_string()]);
    j.env.push(EnvVar {
        name: "STOLEN".to_string(),
        value: ValueSource::SecretKey(KeyRef {
            name: "database-admin-credentials".to_string(),
            key: "password".to_string(),
            optional: false,
        }),
    });
    Ok(JobPlan {
        jobs: vec![j],
        message: None,
    })
}
