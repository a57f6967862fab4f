//! The sandbox and its host: `sandbox serve` works with kubectl and stops on SIGTERM, and nothing
//! is left on the host (processes, mounts, directories) after a shutdown.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8up_tests::cluster::{Sandbox, SandboxConfig, host_mounts_under, wait_for, wait_job_finished};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(90);

fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_against_sandbox_serve_creates_a_job_that_runs_and_completes() {
    if k8up_tests::runtime::images::which("kubectl").is_none() {
        eprintln!("kubectl not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let scratch = dir.path().join("scratch");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .arg("serve")
        .arg("--kubeconfig")
        .arg(&kc)
        .arg("--scratch")
        .arg(&scratch)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for("the kubeconfig", LIMIT, || async {
        Ok::<_, ()>(kc.exists().then_some(()))
    })
    .await
    .unwrap();
    let kc2 = kc.clone();
    let run = move |args: Vec<String>| {
        let kc = kc2.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                kubectl(&kc, &args.iter().map(String::as_str).collect::<Vec<_>>())
            })
            .await
            .unwrap()
        }
    };
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (ok, out) = run(v(&["get", "nodes"])).await;
    assert!(ok, "{out}");
    let (ok, out) = run(v(&[
        "create",
        "job",
        "hello",
        "--image=busybox",
        "--",
        "sh",
        "-c",
        "echo hello from kubectl",
    ]))
    .await;
    assert!(ok, "{out}");
    let (ok, out) = run(v(&[
        "wait",
        "--for=condition=complete",
        "job/hello",
        "--timeout=90s",
    ]))
    .await;
    assert!(ok, "{out}");
    let (ok, out) = run(v(&["logs", "-l", "job-name=hello"])).await;
    assert!(ok, "{out}");
    assert_eq!(out, "hello from kubectl\n");
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(LIMIT, child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!scratch.exists(), "sandbox serve removes its scratch directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_left_on_the_host_after_shutdown() {
    let watched = [
        "/data",
        "/k8up",
        "/restore",
        "/.cache/sandbox-probe",
        "/var/run/secrets",
    ]
    .map(PathBuf::from);
    let existed: Vec<bool> = watched.iter().map(|p| p.exists()).collect();
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    let sb = Sandbox::start(SandboxConfig {
        scratch_dir: Some(scratch.clone()),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let c = sb.client();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    for name in ["pvc-a", "target"] {
        let body = json!({ "metadata": { "name": name }, "spec": { "accessModes": ["ReadWriteMany"], "resources": { "requests": { "storage": "1Gi" } } } });
        pvcs.create(&PostParams::default(), &serde_json::from_value(body).unwrap())
            .await
            .unwrap();
    }
    let mounts = json!([
        { "name": "a", "mountPath": "/data/pvc-a" },
        { "name": "target", "mountPath": "/restore" },
        { "name": "scratch", "mountPath": "/k8up" },
        { "name": "cache", "mountPath": "/.cache/sandbox-probe" },
    ]);
    let volumes = json!([
        { "name": "a", "persistentVolumeClaim": { "claimName": "pvc-a" } },
        { "name": "target", "persistentVolumeClaim": { "claimName": "target" } },
        { "name": "scratch", "emptyDir": {} },
        { "name": "cache", "emptyDir": {} },
    ]);
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(c.clone(), "default");
    let job = json!({
        "metadata": { "name": "writer" },
        "spec": { "backoffLimit": 0, "template": { "spec": {
            "restartPolicy": "Never",
            "containers": [{ "name": "w", "image": "busybox", "volumeMounts": mounts, "command": ["sh", "-c",
                "for d in /data/pvc-a /restore /k8up /.cache/sandbox-probe /tmp; do echo x > $d/f || exit 1; done; ls /var/run/secrets/kubernetes.io/serviceaccount"] }],
            "volumes": volumes,
        }}},
    });
    jobs.create(&PostParams::default(), &serde_json::from_value(job).unwrap())
        .await
        .unwrap();
    let app = json!({ "metadata": { "name": "app" }, "spec": { "containers": [{ "name": "app", "image": "busybox", "volumeMounts": mounts }], "volumes": volumes } });
    Api::<Pod>::namespaced(c.clone(), "default")
        .create(&PostParams::default(), &serde_json::from_value(app).unwrap())
        .await
        .unwrap();
    let j = wait_job_finished(&c, "default", "writer", LIMIT).await.unwrap();
    assert_eq!(j.status.unwrap().succeeded, Some(1));
    wait_for("the app to run", LIMIT, || async {
        Ok::<_, ()>((!sb.kubelet().container_pids().is_empty()).then_some(()))
    })
    .await
    .unwrap();
    let pids = sb.kubelet().container_pids();
    assert!(
        !host_mounts_under(&scratch).iter().any(|_| true),
        "the host namespace never gets mounts"
    );
    sb.shutdown().await;
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "container process {pid} survived"
        );
    }
    assert!(!scratch.exists(), "scratch dir removed");
    for (p, before) in watched.iter().zip(existed) {
        if !before {
            assert!(!p.exists(), "{} was left on the host", p.display());
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(scratch.to_str().unwrap()));
}
