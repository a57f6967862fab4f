//! The chart installed the way a user installs it, and the README's first backup and restore run against it.
//!
//! `helm/template` renders the chart with Helm's own engine (no helm binary here) and `kubectl apply
//! --server-side` installs the output into the sandbox, CRDs included. Nothing runs in-process: the operator
//! is the chart's Deployment, a pod of the sandbox that authenticates with its ServiceAccount token (so the
//! chart's RBAC is what it gets), and its Jobs run the real `k8up restic` and `restic` against SeaweedFS. The
//! manifests are the YAML blocks of the README's "A first backup and restore", with the example S3 endpoint
//! and keys replaced by the test server's.
//!
//! Then the plugin tutorial (`plugins/examples/backup-split/README.md`) runs as written: its build and
//! kubectl steps install the example plugin into the operator's namespace, and a Backup naming it gets the
//! tutorial's plan (one Job per PVC) and succeeds.
//!
//! Against a real cluster, the same steps are `helm install` and the README's `kubectl apply`s.

// Helpers outside `#[test]` functions fail the calling test by panicking, like assertions do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_common;
mod operator_common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use e2e_common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8up::crd::{Backup, Restore};
use k8up_tests::cluster::{Sandbox, SandboxConfig, wait_for};
use kube::Api;
use kube::api::ListParams;
use operator_common::{conditions, has, owned_jobs};

const RELEASE_NS: &str = "k8up-system";
const APP_NS: &str = "my-app";
const README_SECTION: &str = "## A first backup and restore";

fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Runs `program args`, feeding `stdin`; returns stdout, panics with stderr on failure.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(repo_root())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut all = vec!["--kubeconfig", kubeconfig.to_str().unwrap()];
    all.extend_from_slice(args);
    run("kubectl", &all, stdin)
}

/// The ```yaml blocks of one `## ` section of the README, in order.
fn readme_yaml_blocks(section: &str) -> Vec<String> {
    doc_blocks("README.md", section, "yaml")
}

/// The fenced blocks of language `lang` in the `## ` section `section` of the markdown file `doc`, in order.
fn doc_blocks(doc: &str, section: &str, lang: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join(doc)).unwrap();
    let start = text
        .find(&format!("\n{section}\n"))
        .unwrap_or_else(|| panic!("{doc} has no section {section:?}"));
    let body = &text[start + section.len() + 2..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    let fence = format!("```{lang}\n");
    let mut blocks = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find(&fence) {
        let after = &rest[open + fence.len()..];
        let close = after.find("\n```").expect("an unclosed block");
        blocks.push(after[..close].to_string());
        rest = &after[close..];
    }
    blocks
}

/// The plugin tutorial (`plugins/examples/backup-split/README.md`), steps 5 and 6, run as written: build the
/// component, install it as a ConfigMap in the operator's namespace with kubectl; returns its sha256.
fn install_tutorial_plugin(kubeconfig: &Path) -> String {
    const TUTORIAL: &str = "plugins/examples/backup-split/README.md";
    let build = doc_blocks(TUTORIAL, "## 5. Build the component", "sh").join("\n");
    let install = doc_blocks(TUTORIAL, "## 6. Install and use it", "sh")
        .into_iter()
        .next()
        .expect("step 6 has the kubectl commands")
        // The tutorial's operator namespace is `k8up`; the chart here is installed into RELEASE_NS.
        .replace("-n k8up ", &format!("-n {RELEASE_NS} "));
    let script = format!("set -euo pipefail\n{build}\n{install}\nsha256sum \"$wasm\" | cut -d' ' -f1\n");
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(repo_root())
        .env("KUBECONFIG", kubeconfig)
        // The outer cargo's flags would leak into the nested build and change its fingerprints.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the tutorial's steps failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout.lines().last().unwrap_or_default().trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rendered_chart_runs_the_operator_as_a_pod_and_the_readmes_backup_and_restore_complete() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let client = sb.client();
    let kubeconfig = sb.kubeconfig_path().to_path_buf();
    let weed = Seaweed::start().await;

    // `helm install k8up ./helm/k8up --namespace k8up-system --create-namespace`, without helm.
    kubectl(&kubeconfig, &["create", "namespace", RELEASE_NS], None);
    let rendered = run(
        "python3",
        &["helm/template", "--namespace", RELEASE_NS, "--include-crds"],
        None,
    );
    kubectl(
        &kubeconfig,
        &["apply", "--server-side", "-f", "-"],
        Some(&rendered),
    );

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), RELEASE_NS);
    let operator = deployments.get("k8up").await.unwrap();
    let selector = operator.spec.unwrap().selector.match_labels.unwrap();
    let selector = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Api<Pod> = Api::namespaced(client.clone(), RELEASE_NS);
    let operator_pod = wait_for("the operator pod to run", E2E_LIMIT, || async {
        let l = pods.list(&ListParams::default().labels(&selector)).await?;
        Ok::<_, kube::Error>(
            l.items
                .into_iter()
                .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")),
        )
    })
    .await
    .unwrap();
    let pod_spec = operator_pod.spec.clone().unwrap();
    assert_eq!(pod_spec.service_account_name.as_deref(), Some("k8up"));
    let operator_logs = || async {
        pods.logs(&operator_pod.metadata.name.clone().unwrap(), &Default::default())
            .await
            .unwrap_or_default()
    };

    // The user's application PVC, with data.
    namespace(&client, APP_NS).await;
    pvc_with(
        &client,
        APP_NS,
        "app-data",
        "ReadWriteOnce",
        serde_json::json!({}),
    )
    .await;
    let source = pvc_dir_in(&client, APP_NS, "app-data").await;
    std::fs::create_dir_all(source.join("uploads")).unwrap();
    std::fs::write(source.join("index.html"), b"<h1>my app</h1>\n").unwrap();
    std::fs::write(
        source.join("uploads/photo.bin"),
        (0..=255u8).cycle().take(300_000).collect::<Vec<_>>(),
    )
    .unwrap();

    let blocks: Vec<String> = readme_yaml_blocks(README_SECTION)
        .into_iter()
        .map(|b| {
            b.replace("http://minio.minio.svc:9000", &weed.endpoint)
                .replace("AKIAEXAMPLEACCESSKEY", &weed.access_key)
                .replace("example-secret-access-key", &weed.secret_key)
        })
        .collect();
    assert_eq!(
        blocks.len(),
        3,
        "the README's section has the Secrets, the Backup and the Restore blocks"
    );
    assert!(blocks[1].contains("kind: Backup") && blocks[2].contains("kind: Restore"));

    kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&blocks[0]));
    kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&blocks[1]));
    // The first sign of the operator pod at work: it picks the Backup up (else its log tells why not).
    let backups: Api<Backup> = Api::namespaced(client.clone(), APP_NS);
    let picked_up = wait_for("the operator to pick the Backup up", E2E_LIMIT, || async {
        let b = backups.get("first-backup").await?;
        Ok::<_, kube::Error>(b.status.is_some_and(|s| !s.conditions.is_empty()).then_some(()))
    })
    .await;
    if let Err(e) = picked_up {
        panic!("{e}; operator log:\n{}", operator_logs().await);
    }
    let backup = wait_finished_in::<Backup>(&client, APP_NS, "first-backup", "backup_first-backup").await;
    assert!(
        has(&backup, "Completed", "True", "Succeeded"),
        "the Backup did not succeed: {:?}\noperator log:\n{}",
        conditions(&backup),
        operator_logs().await
    );

    // The operator (the pod, with the chart's RBAC) made the Jobs' ServiceAccount binding and synced Snapshots.
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), APP_NS);
    let binding = bindings.list(&ListParams::default()).await.unwrap();
    assert!(
        binding.items.iter().any(|b| b.role_ref.name == "k8up-executor"),
        "no RoleBinding to the chart's k8up-executor ClusterRole in {APP_NS}"
    );
    let jobs: Api<Job> = Api::namespaced(client.clone(), APP_NS);
    let job_images: Vec<String> = jobs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .flat_map(|j| j.spec.clone().unwrap().template.spec.unwrap().containers)
        .filter_map(|c| c.image)
        .collect();
    let operator_image = pod_spec.containers[0].image.clone().unwrap();
    assert!(
        !job_images.is_empty() && job_images.iter().all(|i| *i == operator_image),
        "the Jobs run the chart's backup image ({operator_image}): {job_images:?}"
    );
    let snapshots = wait_for("the Snapshot resource of app-data", E2E_LIMIT, || async {
        let s = snapshot_resources(&client, APP_NS).await;
        Ok::<_, kube::Error>((!s.is_empty()).then_some(s))
    })
    .await
    .unwrap();
    let paths: Vec<String> = snapshots
        .iter()
        .flat_map(|s| s.spec.paths.clone().unwrap_or_default())
        .collect();
    assert_eq!(paths, ["/data/app-data"]);

    kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&blocks[2]));
    let restore =
        wait_finished_in::<Restore>(&client, APP_NS, "first-restore", "restore_first-restore").await;
    assert!(
        has(&restore, "Completed", "True", "Succeeded"),
        "the Restore did not succeed: {:?}\noperator log:\n{}",
        conditions(&restore),
        operator_logs().await
    );
    let restored = pvc_dir_in(&client, APP_NS, "app-data-restored").await;
    assert_eq!(
        files(&restored),
        files(&source),
        "the restored PVC differs from app-data"
    );

    let shown = kubectl(
        &kubeconfig,
        &["-n", APP_NS, "get", "backups,restores,snapshots"],
        None,
    );
    assert!(
        shown.contains("first-backup") && shown.contains("first-restore"),
        "{shown}"
    );

    // The plugin tutorial: its component, installed with its kubectl commands, plans a Backup that names it
    // (pinned by digest): one Job per PVC, named after the PVC, each mounting only that PVC.
    let digest = install_tutorial_plugin(&kubeconfig);
    assert_eq!(digest.len(), 64, "not a sha256: {digest:?}");
    let backend = serde_yaml::from_str::<serde_json::Value>(&blocks[1]).unwrap()["spec"]["backend"].clone();
    create::<Backup>(
        &client,
        APP_NS,
        serde_json::json!({
            "metadata": { "name": "split" },
            "spec": { "plugin": { "name": "backup-split", "sha256": digest }, "backend": backend },
        }),
    )
    .await;
    let split = wait_finished_in::<Backup>(&client, APP_NS, "split", "backup_split").await;
    assert!(
        has(&split, "Completed", "True", "Succeeded"),
        "the Backup planned by the tutorial plugin did not succeed: {:?}\noperator log:\n{}",
        conditions(&split),
        operator_logs().await
    );
    let mut planned: Vec<(String, Vec<String>)> = owned_jobs(&client, APP_NS, "backup_split")
        .await
        .into_iter()
        .map(|j| {
            let volumes = j.spec.unwrap().template.spec.unwrap().volumes.unwrap_or_default();
            let claims = volumes
                .into_iter()
                .filter_map(|v| v.persistent_volume_claim.map(|c| c.claim_name))
                .collect();
            (j.metadata.name.unwrap(), claims)
        })
        .collect();
    planned.sort();
    assert_eq!(planned.len(), 2, "one Job per PVC: {planned:?}");
    for (job, claims) in &planned {
        assert_eq!(claims.len(), 1, "{job} mounts {claims:?}");
        assert!(
            job.contains(&format!("pvc-{}", claims[0])),
            "{job} is not named after {}",
            claims[0]
        );
    }

    // Nothing a person or a log shipper sees carries a secret: the operator pod's and the Jobs' logs,
    // Events, statuses.
    let password = serde_yaml::from_str::<serde_json::Value>(blocks[0].split("\n---\n").next().unwrap())
        .unwrap()["stringData"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_no_secrets(&client, &[&password, &weed.access_key, &weed.secret_key]).await;
    sb.shutdown().await;
}
