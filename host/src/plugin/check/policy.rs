//! The policy of one action: what its spec (and the operator, for its mirrored credentials) lets a plan
//! touch. Pure.

use std::collections::BTreeSet;

use super::syntax::normal_path;
use super::{RESTORE_ROOT, SCRATCH_PATHS};
use crate::operator::driver::credentials::offered_keys;
use crate::operator::driver::validate::ValidatedAction;

/// What the action allows a plan to touch, derived from its spec and the operator settings. Pure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `<type>-<name>`: every Job name starts with it.
    pub job_prefix: String,
    /// Roots mounts must be within (normal paths).
    pub mount_roots: Vec<String>,
    /// The scratch directories (normal paths) no mount may cover.
    pub scratch: Vec<String>,
    /// Names of `spec.volumes` entries with a source.
    pub volumes: BTreeSet<String>,
    /// Secrets the spec names.
    pub secrets: BTreeSet<String>,
    /// ConfigMaps the spec names.
    pub config_maps: BTreeSet<String>,
    /// Keys of the mirrored global-credentials Secret a plan may reference.
    pub global_keys: Vec<&'static str>,
}

impl Policy {
    /// The policy of `action`.
    pub fn for_action(action: &ValidatedAction) -> Policy {
        let settings = &action.settings.jobs;
        let mut policy = Policy {
            job_prefix: format!("{}-{}", action.job_type, action.name),
            global_keys: offered_keys(action),
            ..Policy::default()
        };
        let mut roots = vec![settings.data_path.clone(), RESTORE_ROOT.to_string()];
        collect_names(&action.spec, &mut policy, &mut roots);
        policy.mount_roots = roots.iter().filter_map(|r| normal_path(r)).collect();
        policy.mount_roots.sort();
        policy.mount_roots.dedup();
        policy.scratch = std::iter::once(settings.var_dir.as_str())
            .chain(SCRATCH_PATHS)
            .filter_map(normal_path)
            .collect();
        for volume in action.runnable.volumes.iter().flatten() {
            if volume.persistent_volume_claim.is_some()
                || volume.secret.is_some()
                || volume.config_map.is_some()
            {
                policy.volumes.insert(volume.name.clone());
            }
        }
        policy
    }
}

/// Walks the spec for the Secrets, ConfigMaps and mount paths it names: every `…SecretRef`/`…SecretReg`
/// selector, `envFrom` entries, `volumes` sources, and `volumeMounts` paths, wherever they are nested.
fn collect_names(value: &serde_json::Value, policy: &mut Policy, roots: &mut Vec<String>) {
    let name_at = |v: &serde_json::Value, pointer: &str| {
        v.pointer(pointer).and_then(|n| n.as_str()).map(str::to_string)
    };
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                if key.ends_with("SecretRef") || key.ends_with("SecretReg") {
                    policy.secrets.extend(name_at(v, "/name"));
                }
                let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
                match key.as_str() {
                    "envFrom" => {
                        for item in items {
                            policy.secrets.extend(name_at(item, "/secretRef/name"));
                            policy.config_maps.extend(name_at(item, "/configMapRef/name"));
                        }
                    }
                    "volumes" => {
                        for item in items {
                            policy.secrets.extend(name_at(item, "/secret/secretName"));
                            policy.config_maps.extend(name_at(item, "/configMap/name"));
                        }
                    }
                    "volumeMounts" => roots.extend(items.iter().filter_map(|m| name_at(m, "/mountPath"))),
                    _ => {}
                }
                collect_names(v, policy, roots);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_names(v, policy, roots)),
        _ => {}
    }
}
