//! Objects the Helm chart installs that a test cluster needs too, read from the chart's own templates so
//! that the tests exercise exactly the RBAC users get.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

/// `helm/k8up/templates/executor-clusterrole.yaml`.
const EXECUTOR_TEMPLATE: &str = include_str!("../../helm/k8up/templates/executor-clusterrole.yaml");

/// The `k8up-executor` ClusterRole of the chart (its `rules`, without the Helm templating around them).
pub fn executor_cluster_role() -> Result<ClusterRole, String> {
    let start = EXECUTOR_TEMPLATE
        .find("\nrules:")
        .ok_or("executor-clusterrole.yaml has no rules")?;
    let rules: String = EXECUTOR_TEMPLATE[start..]
        .lines()
        .filter(|l| !l.contains("{{"))
        .collect::<Vec<_>>()
        .join("\n");
    #[derive(serde::Deserialize)]
    struct Rules {
        rules: Vec<PolicyRule>,
    }
    let parsed: Rules =
        serde_yaml::from_str(&rules).map_err(|e| format!("executor-clusterrole.yaml rules: {e}"))?;
    Ok(ClusterRole {
        metadata: ObjectMeta {
            name: Some("k8up-executor".to_string()),
            ..ObjectMeta::default()
        },
        rules: Some(parsed.rules),
        ..ClusterRole::default()
    })
}

/// Applies the chart's `k8up-executor` ClusterRole, which the operator binds in every namespace with
/// Backups.
pub async fn install_executor_role(client: &Client) -> Result<(), String> {
    let role = executor_cluster_role()?;
    Api::<ClusterRole>::all(client.clone())
        .patch(
            "k8up-executor",
            &PatchParams::apply("k8up-tests").force(),
            &Patch::Apply(&role),
        )
        .await
        .map_err(|e| format!("applying the k8up-executor ClusterRole: {e}"))?;
    Ok(())
}
