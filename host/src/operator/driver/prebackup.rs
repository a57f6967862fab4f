//! PreBackupPods: before a Backup plans its Jobs, every PreBackupPod it selects runs as a Deployment of
//! one replica whose pod carries the backup-command annotation; the Backup waits until all of them are
//! available, its pre-backup Job execs the command in them, and the Deployments are deleted once it finished.
//!
//! Unlike K8up, each Backup gets Deployments of its own (`<backup>-<prebackuppod>`, shortened with a digest
//! when too long, labelled with the Backup's UID): two Backups of one namespace running at once never
//! share, and never delete, each other's pre-backup pods.
//!
//! The pure part ([`deployment`], [`readiness`], [`selected`]) is unit-tested; the driver does the API calls.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::ResourceExt;

use super::validate::ValidatedAction;
use crate::crd::PreBackupPod;
use crate::plugin::request::candidates::{
    LABEL_OWNER_BACKUP_UID, LABEL_PRE_BACKUP_POD, any_matches, label_selectors,
};

/// Label on the pods of pre-backup Deployments (K8up's).
pub const LABEL_BACKUP_COMMAND_POD: &str = "k8up.io/backupCommandPod";

/// Where the pre-backup pods of a Backup stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Some Deployments have no available replica yet.
    Waiting {
        /// How many are not available yet.
        pending: usize,
        /// Of how many.
        total: usize,
    },
    /// Every Deployment has an available replica.
    Ready(usize),
    /// A Deployment exceeded its progress deadline: the Backup fails.
    Failed(String),
}

/// The PreBackupPods `action` uses: all of the namespace, or those matching its `labelSelectors`; `meta`
/// reads an entry's metadata (a decoded PreBackupPod, or one that does not decode).
pub fn selected<'a, T>(
    action: &ValidatedAction,
    all: &'a [T],
    meta: impl Fn(&T) -> &ObjectMeta,
) -> Vec<&'a T> {
    let selectors: Vec<LabelSelector> = label_selectors(action);
    let mut chosen: Vec<&T> = all
        .iter()
        .filter(|p| meta(p).deletion_timestamp.is_none())
        .filter(|p| selectors.is_empty() || any_matches(&selectors, meta(p).labels.as_ref()))
        .collect();
    chosen.sort_by(|a, b| meta(a).name.cmp(&meta(b).name));
    chosen
}

/// The name of the Deployment of `pre_backup_pod` for the Backup `backup` (a DNS label).
pub fn deployment_name(backup: &str, pre_backup_pod: &str) -> String {
    let name = format!("{backup}-{pre_backup_pod}");
    if name.len() <= 63 {
        return name;
    }
    let digest = crate::plugin::sha256_hex(name.as_bytes());
    let mut head: String = name.chars().take(63 - 9).collect();
    while head.ends_with('-') {
        head.pop();
    }
    format!("{head}-{}", &digest[..8])
}

/// The Deployment that runs `pre_backup_pod` for `action` (a Backup): one replica of its pod template, with
/// k8up's labels and the backup-command annotations (replacing the template's own, as in K8up), owned by
/// the Backup so it goes with it.
pub fn deployment(action: &ValidatedAction, pre_backup_pod: &PreBackupPod) -> Deployment {
    let pbp = pre_backup_pod.name_any();
    let pod_labels = BTreeMap::from([
        (LABEL_BACKUP_COMMAND_POD.to_string(), "true".to_string()),
        (LABEL_PRE_BACKUP_POD.to_string(), pbp.clone()),
        (LABEL_OWNER_BACKUP_UID.to_string(), action.uid.clone()),
    ]);
    let annotations_settings = &action.settings.annotations;
    let mut annotations = BTreeMap::new();
    if let Some(command) = &pre_backup_pod.spec.backup_command {
        annotations.insert(annotations_settings.backup_command.clone(), command.clone());
    }
    if let Some(extension) = &pre_backup_pod.spec.file_extension {
        annotations.insert(annotations_settings.file_extension.clone(), extension.clone());
    }
    let mut template = pre_backup_pod.spec.pod.clone();
    let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    meta.labels = Some(pod_labels.clone());
    meta.annotations = Some(annotations);
    Deployment {
        metadata: ObjectMeta {
            name: Some(deployment_name(&action.name, &pbp)),
            namespace: Some(action.namespace.clone()),
            labels: Some(BTreeMap::from([
                (LABEL_PRE_BACKUP_POD.to_string(), pbp),
                (LABEL_OWNER_BACKUP_UID.to_string(), action.uid.clone()),
            ])),
            owner_references: Some(vec![OwnerReference {
                api_version: "k8up.io/v1".to_string(),
                kind: "Backup".to_string(),
                name: action.name.clone(),
                uid: action.uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(pod_labels),
                ..LabelSelector::default()
            },
            template,
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// The label selector of the pre-backup Deployments of the Backup with `uid`.
pub fn owned_selector(uid: &str) -> String {
    format!("{LABEL_OWNER_BACKUP_UID}={uid}")
}

/// Where `expected` Deployments stand, from the stored ones.
pub fn readiness(expected: &[String], stored: &[Deployment]) -> Readiness {
    let mut pending = 0;
    for name in expected {
        let Some(d) = stored.iter().find(|d| d.metadata.name.as_deref() == Some(name)) else {
            pending += 1;
            continue;
        };
        let status = d.status.clone().unwrap_or_default();
        let deadline = status.conditions.iter().flatten().find(|c| {
            c.type_ == "Progressing"
                && c.status == "False"
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        });
        if let Some(c) = deadline {
            return Readiness::Failed(format!(
                "pre-backup Deployment {name} did not become available: {}",
                c.message
                    .clone()
                    .unwrap_or_else(|| "progress deadline exceeded".to_string())
            ));
        }
        if status.available_replicas.unwrap_or(0) < 1 {
            pending += 1;
        }
    }
    if pending == 0 {
        Readiness::Ready(expected.len())
    } else {
        Readiness::Waiting {
            pending,
            total: expected.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};

    use super::*;
    use crate::crd::Backup;
    use crate::plugin::fixtures::{action, global_settings};

    fn pbp(yaml: &str) -> PreBackupPod {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn mysqldump() -> PreBackupPod {
        pbp(r#"
apiVersion: k8up.io/v1
kind: PreBackupPod
metadata: {name: mysqldump, namespace: shop, labels: {db: mysql}}
spec:
  backupCommand: mysqldump --all-databases
  fileExtension: .sql
  pod:
    metadata: {labels: {app: mine}, annotations: {note: dropped}}
    spec:
      containers: [{name: dump, image: mysql:8, command: [sleep, infinity]}]
"#)
    }

    #[test]
    fn the_deployment_runs_the_template_once_with_k8ups_labels_and_the_command_annotations() {
        let backup = action::<Backup>("metadata: {name: nightly}\nspec: {}\n", &global_settings());
        let d = deployment(&backup, &mysqldump());
        assert_eq!(d.metadata.name.as_deref(), Some("nightly-mysqldump"));
        assert_eq!(d.metadata.namespace.as_deref(), Some("shop"));
        let owner = &d.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Backup", backup.uid.as_str())
        );
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(1));
        let meta = spec.template.metadata.unwrap();
        let labels = meta.labels.unwrap();
        assert_eq!(
            labels.get("k8up.io/backupCommandPod").map(String::as_str),
            Some("true")
        );
        assert_eq!(
            labels.get("k8up.io/preBackupPod").map(String::as_str),
            Some("mysqldump")
        );
        assert_eq!(labels.get("k8up.io/ownerBackupUID"), Some(&backup.uid));
        assert!(!labels.contains_key("app"), "the template's labels are replaced");
        assert_eq!(spec.selector.match_labels.unwrap(), labels);
        let annotations = meta.annotations.unwrap();
        assert_eq!(
            annotations.get("k8up.io/backupcommand").map(String::as_str),
            Some("mysqldump --all-databases")
        );
        assert_eq!(
            annotations.get("k8up.io/file-extension").map(String::as_str),
            Some(".sql")
        );
        assert!(!annotations.contains_key("note"));
        assert_eq!(
            spec.template.spec.unwrap().containers[0].image.as_deref(),
            Some("mysql:8")
        );
    }

    #[test]
    fn long_names_are_shortened_to_a_dns_label_with_a_digest() {
        let name = deployment_name(&"b".repeat(40), &"p".repeat(40));
        assert!(name.len() <= 63, "{name}");
        assert_ne!(name, deployment_name(&"b".repeat(40), &"q".repeat(40)));
        assert_eq!(deployment_name("a", "b"), "a-b");
    }

    #[test]
    fn label_selectors_choose_the_pre_backup_pods() {
        let mut other = mysqldump();
        other.metadata.name = Some("pgdump".to_string());
        other.metadata.labels = None;
        let all = [mysqldump(), other];
        let plain = action::<Backup>("metadata: {name: b}\nspec: {}\n", &global_settings());
        assert_eq!(selected(&plain, &all, |p| &p.metadata).len(), 2);
        let narrowed = action::<Backup>(
            "metadata: {name: b}\nspec: {labelSelectors: [{matchLabels: {db: mysql}}]}\n",
            &global_settings(),
        );
        let names: Vec<String> = selected(&narrowed, &all, |p| &p.metadata)
            .iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(names, ["mysqldump"]);
    }

    fn stored(name: &str, available: i32, deadline: bool) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            spec: None,
            status: Some(DeploymentStatus {
                available_replicas: Some(available),
                conditions: deadline.then(|| {
                    vec![DeploymentCondition {
                        type_: "Progressing".to_string(),
                        status: "False".to_string(),
                        reason: Some("ProgressDeadlineExceeded".to_string()),
                        message: Some("ReplicaSet has timed out progressing.".to_string()),
                        ..DeploymentCondition::default()
                    }]
                }),
                ..DeploymentStatus::default()
            }),
        }
    }

    #[test]
    fn readiness_waits_for_every_deployment_and_fails_on_a_progress_deadline() {
        let expected = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            readiness(&expected, &[stored("a", 1, false)]),
            Readiness::Waiting { pending: 1, total: 2 }
        );
        assert_eq!(
            readiness(&expected, &[stored("a", 1, false), stored("b", 0, false)]),
            Readiness::Waiting { pending: 1, total: 2 }
        );
        assert_eq!(
            readiness(&expected, &[stored("a", 1, false), stored("b", 1, false)]),
            Readiness::Ready(2)
        );
        let Readiness::Failed(message) = readiness(&expected, &[stored("a", 0, true)]) else {
            panic!("not failed")
        };
        assert!(
            message.contains("pre-backup Deployment a") && message.contains("timed out"),
            "{message}"
        );
    }
}
