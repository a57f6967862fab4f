//! The sandbox and its host: `sandbox serve` works with kubectl and stops on SIGTERM, and nothing
//! is left on the host (processes, mounts, directories) after a shutdown.

// Helpers outside #[test] functions unwrap too: a failed setup step fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8up_tests::cluster::{Sandbox, SandboxConfig, host_mounts_under, wait_for, wait_job_finished};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(90);

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
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
    let run = |args: &[&str], stdin: Option<&str>| {
        let kc = kc.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let stdin = stdin.map(str::to_string);
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                kubectl(&kc, &args, stdin.as_deref())
            })
            .await
            .unwrap()
        }
    };
    let (ok, out) = run(&["get", "nodes"], None).await;
    assert!(ok, "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("node-")).count(), 3, "{out}");
    // `kubectl create job` sends protobuf, which the sandbox API does not decode; the Job is
    // rendered client-side and applied as JSON instead.
    let (ok, manifest) = run(
        &[
            "create",
            "job",
            "hello",
            "--image=busybox",
            "--dry-run=client",
            "-o",
            "yaml",
            "--",
            "sh",
            "-c",
            "echo hello from kubectl",
        ],
        None,
    )
    .await;
    assert!(ok, "{manifest}");
    let (ok, out) = run(&["apply", "--validate=false", "-f", "-"], Some(&manifest)).await;
    assert!(ok, "{out}");
    let (ok, out) = run(
        &["wait", "--for=condition=complete", "job/hello", "--timeout=90s"],
        None,
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = run(&["logs", "-l", "job-name=hello"], None).await;
    assert!(ok, "{out}");
    assert_eq!(out, "hello from kubectl\n");
    // A long-running pod, then exec into it: stdout, stdin and the exit code come back.
    let (ok, out) = run(&["run", "app", "--image=alpine", "--", "sleep", "infinity"], None).await;
    assert!(ok, "{out}");
    let (ok, out) = run(
        &["wait", "--for=condition=Ready", "pod/app", "--timeout=90s"],
        None,
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = run(&["exec", "app", "--", "sh", "-c", "echo in $(hostname)"], None).await;
    assert!(ok, "{out}");
    assert_eq!(out, "in app\n");
    let (ok, out) = run(
        &["exec", "-i", "app", "--", "sh", "-c", "tr a-z A-Z"],
        Some("piped through\n"),
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out, "PIPED THROUGH\n");
    let (ok, out) = run(&["exec", "app", "--", "sh", "-c", "exit 3"], None).await;
    assert!(!ok);
    assert!(out.contains("exit code 3"), "{out}");
    let (ok, out) = run(&["delete", "pod", "app", "--wait=true"], None).await;
    assert!(ok, "{out}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_sandbox_without_shutdown_still_kills_its_pods_and_removes_scratch() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    let sb = Sandbox::start(SandboxConfig {
        scratch_dir: Some(scratch.clone()),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let body = json!({ "metadata": { "name": "sleeper" }, "spec": { "containers": [{ "name": "s", "image": "busybox" }] } });
    Api::<Pod>::namespaced(sb.client(), "default")
        .create(&PostParams::default(), &serde_json::from_value(body).unwrap())
        .await
        .unwrap();
    wait_for("the sleeper to run", LIMIT, || async {
        Ok::<_, ()>((!sb.kubelet().container_pids().is_empty()).then_some(()))
    })
    .await
    .unwrap();
    let pids = sb.kubelet().container_pids();
    drop(sb);
    for pid in pids {
        wait_for("the container to die", LIMIT, || async {
            Ok::<_, ()>((!Path::new(&format!("/proc/{pid}")).exists()).then_some(()))
        })
        .await
        .unwrap();
    }
    assert!(!scratch.exists());
}
