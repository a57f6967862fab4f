//! The simulated nodes: one Ready `Node` object per configured name, labelled like a real node.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use super::{ControllerConfig, ControllerError, World, api_err, is_benign, now_json};
use crate::kubelet::state::POD_IP;

/// The label every node carries with its name (used by PV node affinity).
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// Creates the missing Node objects and marks them Ready.
pub async fn ensure(client: &Client, cfg: &ControllerConfig, world: &World) -> Result<(), ControllerError> {
    let api: Api<Node> = Api::all(client.clone());
    for name in &cfg.nodes {
        let exists = world
            .nodes
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(name));
        if exists {
            continue;
        }
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    HOSTNAME_LABEL: name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": std::env::consts::ARCH,
                    "node.kubernetes.io/instance-type": "sandbox",
                }
            },
            "spec": {}
        }))
        .unwrap_or_default();
        if let Err(e) = api.create(&PostParams::default(), &node).await
            && !is_benign(&e)
        {
            return Err(api_err(format!("create node {name}"))(e));
        }
        let now = now_json();
        let status = json!({ "status": {
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "sandbox kubelet is posting ready status",
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            }],
            "addresses": [
                { "type": "InternalIP", "address": POD_IP },
                { "type": "Hostname", "address": name },
            ],
            "capacity": { "cpu": "2", "memory": "4Gi", "pods": "110" },
            "allocatable": { "cpu": "2", "memory": "4Gi", "pods": "110" },
            "nodeInfo": {
                "architecture": std::env::consts::ARCH, "operatingSystem": "linux",
                "kubeletVersion": "v1.33.0-sandbox", "kubeProxyVersion": "", "containerRuntimeVersion": "sandbox://0.1.0",
                "bootID": "", "machineID": "", "systemUUID": "", "kernelVersion": "", "osImage": "k8up-rs sandbox",
            },
        }});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .map_err(api_err(format!("update status of node {name}")))?;
    }
    Ok(())
}
