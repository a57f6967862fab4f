// Shared by every fixture crate through `include!`, after the crate's own
// `wit_bindgen::generate!` (so the wrong-version fixture can point at its copied WIT):
// an honest `describe` and a `job` helper. Each crate adds its own `plan` (the
// misbehaviour under test) and its `NAME`.

use exports::k8up::plugin::planner::Guest;
#[allow(unused_imports)]
use k8up::plugin::types::{
    Action, EnvVar, Job, JobPlan, KeyRef, PlanRequest, PluginError, PluginInfo, PvcMount,
    ValueSource,
};

struct Fixture;

impl Guest for Fixture {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.to_string(),
            version: "0.0.1".to_string(),
            description: "a k8up-rs test fixture".to_string(),
            actions: vec![
                Action::Backup,
                Action::Prune,
                Action::Check,
                Action::Archive,
                Action::Restore,
            ],
        }
    }

    fn plan(request: PlanRequest) -> Result<JobPlan, PluginError> {
        plan(request)
    }
}

export!(Fixture);

/// A job with nothing in it but a suffix and the given args.
#[allow(dead_code)]
fn job(suffix: &str, args: Vec<String>) -> Job {
    Job {
        name_suffix: suffix.to_string(),
        args,
        env: Vec::new(),
        env_from: Vec::new(),
        pvc_mounts: Vec::new(),
        volume_mounts: Vec::new(),
        node_selector: Vec::new(),
        tolerations: Vec::new(),
        labels: Vec::new(),
        annotations: Vec::new(),
        exclusive: false,
    }
}
