//! Test fixtures shared by the request, check and Job builder tests: settings parsed like `k8up operator`
//! parses them, actions validated from YAML like the driver validates them, and observed state from YAML.

use std::sync::Arc;

use clap::Parser;

use crate::operator::driver::observe::Observed;
use crate::operator::driver::validate::{ValidatedAction, validate};
use crate::operator::kinds::ActionKind;
use crate::operator::settings::{OperatorArgs, OperatorSettings};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: OperatorArgs,
}

/// Settings as `k8up operator --operator-namespace k8up <flags>` validates them.
pub fn settings(flags: &[&str]) -> Arc<OperatorSettings> {
    let mut argv = vec!["operator", "--operator-namespace", "k8up"];
    argv.extend_from_slice(flags);
    let args = Cli::try_parse_from(argv).unwrap().args;
    Arc::new(OperatorSettings::from_args(args).unwrap())
}

/// Settings with a global S3 repository and password (objects without a backend are valid).
pub fn global_settings() -> Arc<OperatorSettings> {
    settings(&[
        "--globals3endpoint",
        "http://minio:9000",
        "--globals3bucket",
        "global",
        "--globalrepopassword",
        "not-in-any-plan",
        "--globalaccesskeyid",
        "global-id",
        "--globalsecretaccesskey",
        "global-secret",
    ])
}

/// The object in `yaml` (namespace `shop` and a uid filled in when missing), validated.
pub fn action<K: ActionKind>(yaml: &str, settings: &Arc<OperatorSettings>) -> ValidatedAction {
    let mut object: K = serde_yaml::from_str(yaml).unwrap();
    let meta = object.meta_mut();
    meta.namespace.get_or_insert_with(|| "shop".to_string());
    meta.uid
        .get_or_insert_with(|| "0e6f7a1c-5b8e-4c55-9d62-6f3c6c1a1b2c".to_string());
    validate(&object, settings).unwrap()
}

/// What the observe step would read from the state in `yaml` for `action`.
pub fn observed(action: &ValidatedAction, yaml: &str) -> Observed {
    let state = super::state::parse_state(yaml).unwrap();
    let pod_config = action.runnable.pod_config_ref.as_ref().map(|r| r.name.as_str());
    super::state::observed_from_state(
        &state,
        action.job_type,
        &action.namespace,
        &action.spec,
        pod_config,
    )
}
