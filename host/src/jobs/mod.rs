//! Job builder (pure): a validated action plus one *checked* planned job (and the action's PodConfig, if
//! any) become a `batch/v1` Job. No client, no I/O: data in, data out.
//!
//! Who adds what (the contract between plan and builder, `plugins/README.md`): the plugin chooses the
//! action's args, env, `envFrom`, mounts of offered PVCs and declared volumes, placement and extra labels;
//! the builder adds everything that decides *what* runs and *as whom*: image, command, `--varDir`, the
//! repository (`RESTIC_REPOSITORY`, last, so `$(USER)` expansion works), `HOSTNAME`, `RESTIC_OPTIONS`, the
//! scratch emptyDirs, `spec.volumes`, identity labels, resources, security context, service account,
//! backoff limit, deadline and the PodConfig merge ([`pod_config`]).
//!
//! Secure by default: without a `podSecurityContext` the pod runs as UID/GID 65532 with `runAsNonRoot`, and
//! the k8up container never escalates privileges and drops every capability.

pub mod pod_config;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapEnvSource, ConfigMapKeySelector, Container, EmptyDirVolumeSource, EnvFromSource,
    EnvVar, EnvVarSource, LocalObjectReference, PersistentVolumeClaimVolumeSource, PodSecurityContext,
    PodSpec, PodTemplateSpec, ResourceRequirements, SecretEnvSource, SecretKeySelector, SecurityContext,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::crd::{JobType, PodConfig, RunnableVolumeSpec};
use crate::operator::driver::validate::{LABEL_K8UP_JOB, LABEL_REPOSITORY_HASH, ValidatedAction};
use crate::plugin::types::{self as plan, ValueSource};

/// Label marking Jobs that need the repository to themselves.
pub const LABEL_EXCLUSIVE: &str = "k8upjob/exclusive";
/// UID (and GID) the Job pods run as when the spec sets no `podSecurityContext` (the k8up image's user).
pub const DEFAULT_UID: i64 = 65532;
/// Volume name of the wrapper's scratch directory.
pub const VAR_DIR_VOLUME: &str = "k8up-dir";
/// Volume name of `/tmp`.
pub const TMP_VOLUME: &str = "restic-tmp-dir";
/// Volume name of restic's cache.
pub const CACHE_VOLUME: &str = "restic-cache-dir";

/// The Job name of a planned job: `<type>-<name>[-<suffix>]` (the plan checks keep it within 63).
pub fn job_name(action: &ValidatedAction, suffix: &str) -> String {
    if suffix.is_empty() {
        format!("{}-{}", action.job_type, action.name)
    } else {
        format!("{}-{}-{suffix}", action.job_type, action.name)
    }
}

/// The failure policy of Job pods that never restart: a permanent wrapper failure
/// ([`crate::restic::PERMANENT_FAILURE_EXIT_CODE`]: bad configuration, no such snapshot, wrong password,
/// integrity) fails the Job at once instead of being retried up to `backoffLimit`; a pod disrupted by an
/// eviction or preemption is retried without counting against the limit.
pub fn pod_failure_policy(container: &str) -> PodFailurePolicy {
    PodFailurePolicy {
        rules: vec![
            PodFailurePolicyRule {
                action: "FailJob".into(),
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: Some(container.to_owned()),
                    operator: "In".into(),
                    values: vec![i32::from(crate::restic::PERMANENT_FAILURE_EXIT_CODE)],
                }),
                on_pod_conditions: None,
            },
            PodFailurePolicyRule {
                action: "Ignore".into(),
                on_exit_codes: None,
                on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                    type_: "DisruptionTarget".into(),
                    status: "True".into(),
                }]),
            },
        ],
    }
}

/// Builds the Job of one planned job. `planned` must have passed [`crate::plugin::check::check_plan`].
pub fn build_job(action: &ValidatedAction, planned: &plan::Job, pod_config: Option<&PodConfig>) -> Job {
    let jobs = &action.settings.jobs;
    let mut labels: BTreeMap<String, String> = planned
        .labels
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    labels.extend(action.identity_labels());
    labels.insert(LABEL_REPOSITORY_HASH.to_string(), action.repository_hash());
    if planned.exclusive {
        labels.insert(LABEL_EXCLUSIVE.to_string(), "true".to_string());
    }
    let annotations: BTreeMap<String, String> = planned
        .annotations
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();

    let base = PodSpec {
        containers: vec![Container {
            name: action.job_type.to_string(),
            image: Some(jobs.image.clone()),
            command: Some(jobs.command.clone()),
            args: Some(args(action, planned)),
            resources: resources(action),
            security_context: Some(container_security_context()),
            ..Container::default()
        }],
        restart_policy: Some(jobs.restart_policy.as_str().to_string()),
        security_context: Some(
            action
                .runnable
                .pod_security_context
                .clone()
                .unwrap_or_else(pod_security_context),
        ),
        node_selector: Some(
            planned
                .node_selector
                .iter()
                .map(|p| (p.key.clone(), p.value.clone()))
                .collect(),
        )
        .filter(|m: &BTreeMap<String, String>| !m.is_empty()),
        tolerations: Some(planned.tolerations.iter().map(toleration).collect())
            .filter(|t: &Vec<_>| !t.is_empty()),
        image_pull_secrets: jobs
            .image_pull_secret
            .as_ref()
            .map(|name| vec![LocalObjectReference { name: name.clone() }]),
        service_account_name: matches!(action.job_type, JobType::Backup | JobType::Prune)
            .then(|| jobs.pod_exec_account_name.clone()),
        ..PodSpec::default()
    };
    let own = OwnParts {
        env: env(action, planned),
        env_from: env_from(action, planned),
        scratch: scratch(action),
        mounts: mounts(action, planned),
    };
    let (spec, pod_metadata) = pod_config::assemble(base, own, pod_config);
    // Kubernetes allows a podFailurePolicy only with `restartPolicy: Never` (a PodConfig may change it).
    let failure_policy = (spec.restart_policy.as_deref() == Some("Never"))
        .then(|| pod_failure_policy(&action.job_type.to_string()));

    let mut pod_labels = pod_metadata.labels;
    pod_labels.extend(action.identity_labels());
    pod_labels.insert(LABEL_K8UP_JOB.to_string(), "true".to_string());
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(action, &planned.name_suffix)),
            namespace: Some(action.namespace.clone()),
            labels: Some(labels),
            annotations: Some(annotations).filter(|a| !a.is_empty()),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            active_deadline_seconds: action.runnable.active_deadline_seconds,
            backoff_limit: (action.job_type == JobType::Backup).then_some(jobs.backoff_limit),
            pod_failure_policy: failure_policy,
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_metadata.annotations).filter(|a| !a.is_empty()),
                    ..ObjectMeta::default()
                }),
                spec: Some(spec),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// What the builder appends to the container and pod after any PodConfig merge.
#[derive(Debug, Clone, Default)]
pub struct OwnParts {
    /// The container's env (plugin env, then `HOSTNAME`, `RESTIC_OPTIONS`, `RESTIC_REPOSITORY`).
    pub env: Vec<EnvVar>,
    /// The container's `envFrom`.
    pub env_from: Vec<EnvFromSource>,
    /// Scratch directories: (volume, mount). A PodConfig may replace them with its own mount at the path.
    pub scratch: Vec<(Volume, VolumeMount)>,
    /// Every other volume and mount (spec volumes, PVCs); they win over a PodConfig's at the same path.
    pub mounts: (Vec<Volume>, Vec<VolumeMount>),
}

fn args(action: &ValidatedAction, planned: &plan::Job) -> Vec<String> {
    let mut args = vec!["--varDir".to_string(), action.settings.jobs.var_dir.clone()];
    args.extend(planned.args.iter().cloned());
    args
}

fn env(action: &ValidatedAction, planned: &plan::Job) -> Vec<EnvVar> {
    let mut env: Vec<EnvVar> = planned.env.iter().map(env_var).collect();
    env.push(literal("HOSTNAME", &action.namespace));
    let options = &action.settings.jobs.restic_options;
    if !options.is_empty() {
        env.push(literal("RESTIC_OPTIONS", &options.join(",")));
    }
    // Last, so that `$(USER)`/`$(PASSWORD)` in a REST repository expand from the variables above.
    env.push(literal("RESTIC_REPOSITORY", &action.repository.url));
    env
}

fn literal(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        value_from: None,
    }
}

/// The Kubernetes shape of a planned env var.
pub fn env_var(var: &plan::EnvVar) -> EnvVar {
    let optional = |o: bool| o.then_some(true);
    let value_from = match &var.value {
        ValueSource::Literal(value) => return literal(&var.name, value),
        ValueSource::SecretKey(r) => EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: r.name.clone(),
                key: r.key.clone(),
                optional: optional(r.optional),
            }),
            ..EnvVarSource::default()
        },
        ValueSource::ConfigMapKey(r) => EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: r.name.clone(),
                key: r.key.clone(),
                optional: optional(r.optional),
            }),
            ..EnvVarSource::default()
        },
    };
    EnvVar {
        name: var.name.clone(),
        value: None,
        value_from: Some(value_from),
    }
}

/// The planned `envFrom`; an entry the spec's `backend.envFrom` also has keeps the spec's prefix and
/// `optional` (the contract does not carry them).
fn env_from(action: &ValidatedAction, planned: &plan::Job) -> Vec<EnvFromSource> {
    let spec = action
        .runnable
        .backend
        .as_ref()
        .and_then(|b| b.env_from.clone())
        .unwrap_or_default();
    planned
        .env_from
        .iter()
        .map(|source| {
            let same = |s: &&EnvFromSource| match source {
                plan::EnvFrom::Secret(name) => s.secret_ref.as_ref().is_some_and(|r| &r.name == name),
                plan::EnvFrom::ConfigMap(name) => s.config_map_ref.as_ref().is_some_and(|r| &r.name == name),
            };
            spec.iter().find(same).cloned().unwrap_or_else(|| match source {
                plan::EnvFrom::Secret(name) => EnvFromSource {
                    secret_ref: Some(SecretEnvSource {
                        name: name.clone(),
                        optional: None,
                    }),
                    ..EnvFromSource::default()
                },
                plan::EnvFrom::ConfigMap(name) => EnvFromSource {
                    config_map_ref: Some(ConfigMapEnvSource {
                        name: name.clone(),
                        optional: None,
                    }),
                    ..EnvFromSource::default()
                },
            })
        })
        .collect()
}

fn scratch(action: &ValidatedAction) -> Vec<(Volume, VolumeMount)> {
    [
        (VAR_DIR_VOLUME, action.settings.jobs.var_dir.as_str()),
        (TMP_VOLUME, "/tmp"),
        (CACHE_VOLUME, "/.cache"),
    ]
    .into_iter()
    .map(|(name, path)| {
        (
            Volume {
                name: name.to_string(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            },
            mount(name, path, false, None),
        )
    })
    .collect()
}

fn mount(name: &str, path: &str, read_only: bool, sub_path: Option<String>) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        read_only: read_only.then_some(true),
        sub_path,
        ..VolumeMount::default()
    }
}

/// `spec.volumes` (entries without a source dropped, as in K8up), the planned PVCs as volumes, and every
/// planned mount (identical mounts once).
fn mounts(action: &ValidatedAction, planned: &plan::Job) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes: Vec<Volume> = action
        .runnable
        .volumes
        .iter()
        .flatten()
        .filter_map(spec_volume)
        .collect();
    let mut taken: BTreeSet<String> = volumes.iter().map(|v| v.name.clone()).collect();
    taken.extend([VAR_DIR_VOLUME, TMP_VOLUME, CACHE_VOLUME].map(str::to_string));
    let mut claims: BTreeMap<&str, (String, bool)> = BTreeMap::new();
    for m in &planned.pvc_mounts {
        let entry = claims.entry(m.claim_name.as_str()).or_insert_with(|| {
            let name = pvc_volume_name(&m.claim_name, &taken);
            taken.insert(name.clone());
            (name, true)
        });
        entry.1 &= m.read_only;
    }
    let mut mounts: Vec<VolumeMount> = Vec::new();
    let mut push = |m: VolumeMount| {
        if !mounts.contains(&m) {
            mounts.push(m);
        }
    };
    for m in &planned.pvc_mounts {
        if let Some((volume, _)) = claims.get(m.claim_name.as_str()) {
            push(mount(volume, &m.mount_path, m.read_only, None));
        }
    }
    for m in &planned.volume_mounts {
        push(mount(&m.name, &m.mount_path, m.read_only, m.sub_path.clone()));
    }
    // Volumes in the order of their first mount, so the Job reads like the plan.
    let mut by_first_mount: Vec<(&str, &(String, bool))> = claims.iter().map(|(c, v)| (*c, v)).collect();
    by_first_mount.sort_by_key(|(claim, _)| planned.pvc_mounts.iter().position(|m| m.claim_name == *claim));
    for (claim, (name, read_only)) in by_first_mount {
        volumes.push(Volume {
            name: name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.to_string(),
                read_only: read_only.then_some(true),
            }),
            ..Volume::default()
        });
    }
    (volumes, mounts)
}

/// The volume name of a PVC: its own name (K8up) when that is a DNS label no other volume has, otherwise
/// `pvc-<hash>` (PVC names may contain dots and be 253 characters long; volume names may not).
fn pvc_volume_name(claim: &str, taken: &BTreeSet<String>) -> String {
    if crate::plugin::check::syntax::is_dns_label(claim) && !taken.contains(claim) {
        return claim.to_string();
    }
    format!("pvc-{}", &crate::plugin::sha256_hex(claim.as_bytes())[..16])
}

fn spec_volume(v: &RunnableVolumeSpec) -> Option<Volume> {
    if v.persistent_volume_claim.is_none() && v.secret.is_none() && v.config_map.is_none() {
        return None;
    }
    Some(Volume {
        name: v.name.clone(),
        persistent_volume_claim: v.persistent_volume_claim.clone(),
        secret: v.secret.clone(),
        config_map: v.config_map.clone(),
        ..Volume::default()
    })
}

/// `spec.resources`, with the operator's default requests and limits filling what it leaves unset.
fn resources(action: &ValidatedAction) -> Option<ResourceRequirements> {
    let defaults = &action.settings.resources;
    let mut r = action.runnable.resources.clone().unwrap_or_default();
    let fill = |map: &mut Option<BTreeMap<String, Quantity>>, key: &str, value: &Option<Quantity>| {
        if let Some(value) = value {
            map.get_or_insert_with(BTreeMap::new)
                .entry(key.to_string())
                .or_insert_with(|| value.clone());
        }
    };
    fill(&mut r.requests, "cpu", &defaults.cpu_request);
    fill(&mut r.requests, "memory", &defaults.memory_request);
    fill(&mut r.limits, "cpu", &defaults.cpu_limit);
    fill(&mut r.limits, "memory", &defaults.memory_limit);
    (r != ResourceRequirements::default()).then_some(r)
}

/// The pod security context used when the spec sets none.
pub fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(DEFAULT_UID),
        run_as_group: Some(DEFAULT_UID),
        ..PodSecurityContext::default()
    }
}

/// The k8up container's security context: no privilege escalation, no capabilities.
pub fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            add: None,
        }),
        ..SecurityContext::default()
    }
}

fn toleration(t: &plan::Toleration) -> Toleration {
    Toleration {
        key: t.key.clone(),
        operator: t.operator.clone(),
        value: t.value.clone(),
        effect: t.effect.clone(),
        toleration_seconds: t.toleration_seconds,
    }
}

#[cfg(test)]
mod tests;
