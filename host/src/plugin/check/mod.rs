//! Plan checks (pure): a plugin's plan is untrusted input, checked against the host's policy before anything
//! is built from it. Every violation is a [`super::Error::PlanRejected`] naming the plugin, its version and
//! the [`Rule`] it broke.
//!
//! What a plan may do: mount only the PVCs the host offered, mount them and the spec's own volumes only under
//! the allowed roots (the data path, `/restore`, and the paths the spec's own `volumeMounts` name) and never
//! over the Job's scratch directories, mount only volumes the spec declares, reference only Secrets and
//! ConfigMaps the spec (or the operator, for its mirrored global credentials) names, never pass a credential
//! as a literal, set only valid names and labels, stay within size limits, and leave the host's identity
//! labels and environment (`RESTIC_REPOSITORY`, `HOSTNAME`, `RESTIC_OPTIONS`) alone. The contract itself
//! has no way to ask for host paths, privileged containers, images or commands.

mod policy;
pub mod syntax;

pub use policy::Policy;

use std::collections::BTreeSet;

use super::error::Error;
use super::types::{EnvFrom, JobPlan, PlanRequest, Toleration, ValueSource};
use crate::operator::driver::credentials::GLOBAL_CREDENTIALS_SECRET;
use crate::operator::driver::validate::{LABEL_K8UP_JOB, LABEL_OWNED_BY, LABEL_REPOSITORY_HASH, LABEL_TYPE};
use syntax::{
    is_config_key, is_dns_label, is_env_name, is_label_value, is_qualified_name, is_sub_path, is_within,
    normal_path,
};

/// Most Jobs one plan may ask for.
pub const MAX_JOBS: usize = 100;
/// Most entries of one list of a Job (args, env, mounts, labels, …).
pub const MAX_ITEMS: usize = 256;
/// Longest string in a plan (an argument, an env value, a path), in bytes.
pub const MAX_STRING: usize = 4096;
/// Longest plan message, in bytes.
pub const MAX_MESSAGE: usize = 32 * 1024;
/// Largest total size of one Job's annotations, in bytes (the API server's limit is 256 KiB).
pub const MAX_ANNOTATIONS: usize = 64 * 1024;
/// Where a folder Restore mounts its target PVC.
pub const RESTORE_ROOT: &str = "/restore";
/// The scratch directories every Job mounts besides the var dir.
pub const SCRATCH_PATHS: [&str; 2] = ["/tmp", "/.cache"];
/// Env vars only the host sets.
pub const HOST_ENV: [&str; 3] = ["RESTIC_REPOSITORY", "HOSTNAME", "RESTIC_OPTIONS"];
/// Env vars that carry credentials and may only come from a Secret.
pub const CREDENTIAL_ENV: &[&str] = &[
    "RESTIC_PASSWORD",
    "RESTIC_REST_PASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "RESTORE_ACCESSKEYID",
    "RESTORE_SECRETACCESSKEY",
    "GOOGLE_ACCESS_TOKEN",
    "AZURE_ACCOUNT_KEY",
    "AZURE_ACCOUNT_SAS",
    "B2_ACCOUNT_ID",
    "B2_ACCOUNT_KEY",
    "PASSWORD",
    "OS_PASSWORD",
    "OS_APPLICATION_CREDENTIAL_SECRET",
    "OS_AUTH_TOKEN",
    "ST_KEY",
];
/// Name endings that mark an env var as a credential too (`MY_API_TOKEN`, `DB_PASSWORD`, …).
pub const CREDENTIAL_SUFFIXES: &[&str] = &["PASSWORD", "_SECRET", "SECRET_KEY", "SECRETACCESSKEY", "_TOKEN"];

/// A rule of the plan checks. The name is stable: it appears in errors, Events and the docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// At most [`MAX_JOBS`] jobs, [`MAX_ITEMS`] entries per list, [`MAX_STRING`] bytes per string.
    PlanSize,
    /// Name suffixes are DNS-label fragments, Job names fit 63 characters and are unique.
    JobName,
    /// PVC mounts name only PVCs the host offered.
    OfferedPvc,
    /// Mount paths are absolute and normal, under an allowed root, never over a scratch directory, unique.
    MountPath,
    /// Volume mounts name only volumes of `spec.volumes`.
    DeclaredVolume,
    /// Secret references name only Secrets the spec or the operator names.
    SecretReference,
    /// ConfigMap references name only ConfigMaps the spec names.
    ConfigMapReference,
    /// No credential as a literal env value.
    LiteralCredential,
    /// Env var names and referenced keys are valid.
    EnvName,
    /// `RESTIC_REPOSITORY`, `HOSTNAME` and `RESTIC_OPTIONS` are the host's.
    HostEnv,
    /// Label, annotation and node-selector keys and values are valid.
    LabelSyntax,
    /// The host's identity labels cannot be set by a plan.
    IdentityLabel,
    /// Tolerations are valid.
    Toleration,
}

impl Rule {
    /// Every rule, in the order they are checked.
    pub const ALL: [Rule; 13] = [
        Rule::PlanSize,
        Rule::JobName,
        Rule::OfferedPvc,
        Rule::MountPath,
        Rule::DeclaredVolume,
        Rule::SecretReference,
        Rule::ConfigMapReference,
        Rule::LiteralCredential,
        Rule::EnvName,
        Rule::HostEnv,
        Rule::LabelSyntax,
        Rule::IdentityLabel,
        Rule::Toleration,
    ];

    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            Rule::PlanSize => "plan-size",
            Rule::JobName => "job-name",
            Rule::OfferedPvc => "offered-pvc",
            Rule::MountPath => "mount-path",
            Rule::DeclaredVolume => "declared-volume",
            Rule::SecretReference => "secret-reference",
            Rule::ConfigMapReference => "config-map-reference",
            Rule::LiteralCredential => "literal-credential",
            Rule::EnvName => "env-name",
            Rule::HostEnv => "host-env",
            Rule::LabelSyntax => "label-syntax",
            Rule::IdentityLabel => "identity-label",
            Rule::Toleration => "toleration",
        }
    }
}

/// Who made the plan, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The plugin's name.
    pub plugin: &'a str,
    /// The plugin's version.
    pub version: &'a str,
}

/// Checks `plan`, made for `request`, against `policy`. The first violation is returned.
pub fn check_plan(
    origin: Origin<'_>,
    policy: &Policy,
    request: &PlanRequest,
    plan: &JobPlan,
) -> Result<(), Error> {
    Checker {
        origin,
        policy,
        offered: request.pvcs.iter().map(|p| p.name.as_str()).collect(),
    }
    .plan(plan)
}

struct Checker<'a> {
    origin: Origin<'a>,
    policy: &'a Policy,
    offered: BTreeSet<&'a str>,
}

impl Checker<'_> {
    fn reject(&self, rule: Rule, detail: String) -> Error {
        Error::PlanRejected {
            plugin: self.origin.plugin.to_string(),
            version: self.origin.version.to_string(),
            rule: rule.name(),
            detail,
        }
    }

    fn ensure(&self, ok: bool, rule: Rule, detail: impl FnOnce() -> String) -> Result<(), Error> {
        if ok {
            Ok(())
        } else {
            Err(self.reject(rule, detail()))
        }
    }

    fn plan(&self, plan: &JobPlan) -> Result<(), Error> {
        let jobs = plan.jobs.len();
        self.ensure(jobs <= MAX_JOBS, Rule::PlanSize, || {
            format!("{jobs} jobs, at most {MAX_JOBS}")
        })?;
        let message = plan.message.as_deref().map_or(0, str::len);
        self.ensure(message <= MAX_MESSAGE, Rule::PlanSize, || {
            format!("a message of {message} bytes, at most {MAX_MESSAGE}")
        })?;
        let mut names = BTreeSet::new();
        for job in &plan.jobs {
            let name = self.job_name(&job.name_suffix)?;
            let duplicate = !names.insert(name.clone());
            self.ensure(!duplicate, Rule::JobName, || format!("two jobs are named {name}"))?;
            self.job(&name, job)?;
        }
        Ok(())
    }

    fn job_name(&self, suffix: &str) -> Result<String, Error> {
        if suffix.is_empty() {
            return Ok(self.policy.job_prefix.clone());
        }
        let name = format!("{}-{suffix}", self.policy.job_prefix);
        self.ensure(is_dns_label(suffix) && name.len() <= 63, Rule::JobName, || {
            format!(
                "name suffix {:?} must be lowercase letters, digits and '-' and keep the job name within 63 \
                 characters ({name} has {})",
                truncate(suffix),
                name.len()
            )
        })?;
        Ok(name)
    }

    fn job(&self, name: &str, job: &super::types::Job) -> Result<(), Error> {
        let at = |what: &str| format!("job {name}: {what}");
        let lists = [
            ("args", job.args.len()),
            ("env", job.env.len()),
            ("env-from", job.env_from.len()),
            ("pvc-mounts", job.pvc_mounts.len()),
            ("volume-mounts", job.volume_mounts.len()),
            ("node-selector", job.node_selector.len()),
            ("tolerations", job.tolerations.len()),
            ("labels", job.labels.len()),
            ("annotations", job.annotations.len()),
        ];
        for (list, len) in lists {
            self.ensure(len <= MAX_ITEMS, Rule::PlanSize, || {
                at(&format!("{len} {list}, at most {MAX_ITEMS}"))
            })?;
        }
        // Which field a string is in, never its content: an oversized value may well be a secret.
        let strings = job
            .args
            .iter()
            .map(|s| ("an argument", s))
            .chain(job.env.iter().flat_map(|e| {
                std::iter::once(("an env var name", &e.name)).chain(
                    value_strings(&e.value)
                        .into_iter()
                        .map(|s| ("an env var value", s)),
                )
            }))
            .chain(
                job.pvc_mounts
                    .iter()
                    .flat_map(|m| [("a pvc mount", &m.claim_name), ("a pvc mount", &m.mount_path)]),
            )
            .chain(job.volume_mounts.iter().flat_map(|m| {
                [("a volume mount", &m.name), ("a volume mount", &m.mount_path)]
                    .into_iter()
                    .chain(m.sub_path.iter().map(|s| ("a volume mount", s)))
            }))
            .chain(
                job.node_selector
                    .iter()
                    .flat_map(|p| [("the node selector", &p.key), ("the node selector", &p.value)]),
            )
            .chain(
                job.labels
                    .iter()
                    .flat_map(|p| [("a label", &p.key), ("a label", &p.value)]),
            )
            .chain(job.annotations.iter().map(|p| ("an annotation key", &p.key)));
        for (field, s) in strings {
            self.ensure(s.len() <= MAX_STRING, Rule::PlanSize, || {
                at(&format!("{field} of {} bytes, at most {MAX_STRING}", s.len()))
            })?;
        }
        let annotations: usize = job.annotations.iter().map(|p| p.key.len() + p.value.len()).sum();
        self.ensure(annotations <= MAX_ANNOTATIONS, Rule::PlanSize, || {
            at(&format!(
                "annotations of {annotations} bytes, at most {MAX_ANNOTATIONS}"
            ))
        })?;
        self.mounts(job, &at)?;
        self.env(job, &at)?;
        self.metadata(job, &at)?;
        for t in &job.tolerations {
            self.toleration(t, &at)?;
        }
        Ok(())
    }

    fn mounts(&self, job: &super::types::Job, at: &dyn Fn(&str) -> String) -> Result<(), Error> {
        let mut paths = BTreeSet::new();
        let pvc_paths = job
            .pvc_mounts
            .iter()
            .map(|m| (format!("pvc {}", m.claim_name), &m.mount_path));
        let volume_paths = job
            .volume_mounts
            .iter()
            .map(|m| (format!("volume {}", m.name), &m.mount_path));
        for m in &job.pvc_mounts {
            self.ensure(
                self.offered.contains(m.claim_name.as_str()),
                Rule::OfferedPvc,
                || {
                    at(&format!(
                        "mounts pvc {:?}, which the host did not offer",
                        truncate(&m.claim_name)
                    ))
                },
            )?;
        }
        for m in &job.volume_mounts {
            self.ensure(
                self.policy.volumes.contains(&m.name),
                Rule::DeclaredVolume,
                || {
                    at(&format!(
                        "mounts volume {:?}, which spec.volumes does not declare",
                        truncate(&m.name)
                    ))
                },
            )?;
            if let Some(sub) = &m.sub_path {
                self.ensure(is_sub_path(sub), Rule::MountPath, || {
                    at(&format!(
                        "sub path {:?} of volume {} leaves the volume",
                        truncate(sub),
                        m.name
                    ))
                })?;
            }
        }
        for (what, raw) in pvc_paths.chain(volume_paths) {
            let Some(path) = normal_path(raw) else {
                return Err(self.reject(
                    Rule::MountPath,
                    at(&format!(
                        "{what} at {:?}: not an absolute, normal path",
                        truncate(raw)
                    )),
                ));
            };
            let allowed = self.policy.mount_roots.iter().any(|root| is_within(&path, root));
            self.ensure(allowed, Rule::MountPath, || {
                at(&format!(
                    "{what} at {path}: outside the allowed roots {}",
                    self.policy.mount_roots.join(", ")
                ))
            })?;
            let covered = self.policy.scratch.iter().find(|s| is_within(s, &path));
            self.ensure(covered.is_none(), Rule::MountPath, || {
                at(&format!(
                    "{what} at {path}: covers the scratch directory {}",
                    covered.map_or("", |s| s)
                ))
            })?;
            let fresh = paths.insert(path.clone());
            self.ensure(fresh, Rule::MountPath, || at(&format!("two mounts at {path}")))?;
        }
        Ok(())
    }

    fn env(&self, job: &super::types::Job, at: &dyn Fn(&str) -> String) -> Result<(), Error> {
        for var in &job.env {
            let name = var.name.as_str();
            self.ensure(is_env_name(name), Rule::EnvName, || {
                at(&format!("env var name {:?} is not valid", truncate(name)))
            })?;
            self.ensure(!HOST_ENV.contains(&name), Rule::HostEnv, || {
                at(&format!("sets {name}, which only the host sets"))
            })?;
            match &var.value {
                ValueSource::Literal(_) => {
                    let upper = name.to_ascii_uppercase();
                    let credential = CREDENTIAL_ENV.contains(&upper.as_str())
                        || CREDENTIAL_SUFFIXES.iter().any(|s| upper.ends_with(s));
                    self.ensure(!credential, Rule::LiteralCredential, || {
                        at(&format!(
                            "{name} carries a credential and must come from a Secret, not a literal"
                        ))
                    })?;
                }
                ValueSource::SecretKey(r) => {
                    self.key(name, &r.key, at)?;
                    self.secret(&r.name, Some(&r.key), at)?;
                }
                ValueSource::ConfigMapKey(r) => {
                    self.key(name, &r.key, at)?;
                    self.config_map(&r.name, at)?;
                }
            }
        }
        for source in &job.env_from {
            match source {
                EnvFrom::Secret(secret) => self.secret(secret, None, at)?,
                EnvFrom::ConfigMap(config_map) => self.config_map(config_map, at)?,
            }
        }
        Ok(())
    }

    fn key(&self, var: &str, key: &str, at: &dyn Fn(&str) -> String) -> Result<(), Error> {
        self.ensure(is_config_key(key), Rule::EnvName, || {
            at(&format!(
                "{var} reads key {:?}, which is not a valid key",
                truncate(key)
            ))
        })
    }

    fn secret(&self, secret: &str, key: Option<&str>, at: &dyn Fn(&str) -> String) -> Result<(), Error> {
        if secret == GLOBAL_CREDENTIALS_SECRET {
            let offered = key.is_some_and(|k| self.policy.global_keys.contains(&k));
            return self.ensure(offered, Rule::SecretReference, || {
                at(&format!(
                    "reads {} of the operator's credentials, which this action is not offered (offered: {})",
                    key.map_or_else(|| "every key".to_string(), |k| format!("key {k:?}")),
                    if self.policy.global_keys.is_empty() {
                        "none".to_string()
                    } else {
                        self.policy.global_keys.join(", ")
                    }
                ))
            });
        }
        self.ensure(
            self.policy.secrets.contains(secret),
            Rule::SecretReference,
            || {
                at(&format!(
                    "references Secret {:?}, which the resource's spec does not name",
                    truncate(secret)
                ))
            },
        )
    }

    fn config_map(&self, config_map: &str, at: &dyn Fn(&str) -> String) -> Result<(), Error> {
        self.ensure(
            self.policy.config_maps.contains(config_map),
            Rule::ConfigMapReference,
            || {
                at(&format!(
                    "references ConfigMap {:?}, which the resource's spec does not name",
                    truncate(config_map)
                ))
            },
        )
    }

    fn metadata(&self, job: &super::types::Job, at: &dyn Fn(&str) -> String) -> Result<(), Error> {
        let identity = [
            LABEL_K8UP_JOB,
            LABEL_TYPE,
            LABEL_OWNED_BY,
            LABEL_REPOSITORY_HASH,
            "k8upjob/exclusive",
        ];
        for (what, pairs) in [("node selector", &job.node_selector), ("label", &job.labels)] {
            for p in pairs {
                self.ensure(
                    is_qualified_name(&p.key) && is_label_value(&p.value),
                    Rule::LabelSyntax,
                    || {
                        at(&format!(
                            "{what} {:?}={:?} is not a valid label",
                            truncate(&p.key),
                            truncate(&p.value)
                        ))
                    },
                )?;
            }
        }
        for p in &job.labels {
            self.ensure(!identity.contains(&p.key.as_str()), Rule::IdentityLabel, || {
                at(&format!("sets label {}, which only the host sets", p.key))
            })?;
        }
        for p in &job.annotations {
            self.ensure(is_qualified_name(&p.key), Rule::LabelSyntax, || {
                at(&format!("annotation key {:?} is not valid", truncate(&p.key)))
            })?;
        }
        Ok(())
    }

    fn toleration(&self, t: &Toleration, at: &dyn Fn(&str) -> String) -> Result<(), Error> {
        let key_ok = t
            .key
            .as_deref()
            .is_none_or(|k| k.is_empty() || is_qualified_name(k));
        let operator = t.operator.as_deref().unwrap_or("Equal");
        let operator_ok = matches!(operator, "Equal" | "Exists")
            && (operator == "Equal" || t.value.as_deref().is_none_or(str::is_empty))
            && (operator == "Exists" || t.key.as_deref().is_some_and(|k| !k.is_empty()));
        let effect = t.effect.as_deref().unwrap_or("");
        let effect_ok = matches!(effect, "" | "NoSchedule" | "PreferNoSchedule" | "NoExecute")
            && (t.toleration_seconds.is_none() || effect == "NoExecute");
        let value_ok = t.value.as_deref().is_none_or(is_label_value);
        self.ensure(
            key_ok && operator_ok && effect_ok && value_ok,
            Rule::Toleration,
            || at(&format!("toleration {t:?} is not valid")),
        )
    }
}

fn value_strings(value: &ValueSource) -> Vec<&String> {
    match value {
        ValueSource::Literal(v) => vec![v],
        ValueSource::SecretKey(r) | ValueSource::ConfigMapKey(r) => vec![&r.name, &r.key],
    }
}

/// At most 80 bytes of `s` for a message (on a character boundary).
fn truncate(s: &str) -> &str {
    let mut end = s.len().min(80);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
