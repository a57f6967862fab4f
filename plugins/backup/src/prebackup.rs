//! The pre-backup Job: streams the output of backup commands in annotated pods into restic.
//!
//! Viable pods are Running, carry the backup-command annotation, and (when they name one) have
//! the container the container annotation asks for. One pod per owner is enough: replicas of a
//! Deployment hold the same data (REFERENCE 3.2 step 5).

use k8up_plugin_sdk::{Metadata, PlanRequest, Pod};
use std::collections::BTreeSet;

/// Name suffix of the pre-backup Job.
pub const SUFFIX: &str = "prebackup";

/// Names of the pods to exec into (sorted), or `None` when there is none.
pub fn target_pods(req: &PlanRequest, notes: &mut Vec<String>) -> Option<Vec<String>> {
    let settings = &req.settings;
    let mut pods: Vec<&Pod> = req
        .pods
        .iter()
        .filter(|pod| pod.phase == "Running")
        .filter(|pod| {
            pod.annotation(&settings.backup_command_annotation)
                .is_some_and(|cmd| !cmd.trim().is_empty())
        })
        .collect();
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    let mut owners = BTreeSet::new();
    let mut targets = Vec::new();
    for pod in pods {
        if let Some(container) = pod
            .annotation(&settings.container_annotation)
            .filter(|c| !c.is_empty())
            && !pod.containers.iter().any(|c| c == container)
        {
            notes.push(format!(
                "pod {} skipped: it has no container {container:?}",
                pod.name
            ));
            continue;
        }
        let owner = pod.owner_uid.as_deref().unwrap_or(&pod.uid);
        if owners.insert(owner.to_string()) {
            targets.push(pod.name.clone());
        }
    }
    (!targets.is_empty()).then_some(targets)
}
