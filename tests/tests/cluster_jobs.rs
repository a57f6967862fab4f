//! The sandbox's Job controller and kubelet: Jobs run shell commands as local processes and report
//! like Kubernetes (completion, backoffLimit, activeDeadlineSeconds, logs, termination messages).

// Helpers outside #[test] functions unwrap too: a failed setup step fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8up_tests::cluster::{Sandbox, SandboxConfig, wait_for, wait_job_finished};
use kube::api::{DeleteParams, ListParams, LogParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(90);

async fn create_job(client: &Client, ns: &str, body: serde_json::Value) -> Job {
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &serde_json::from_value(body).unwrap())
        .await
        .unwrap()
}

fn shell_job(name: &str, script: &str, restart: &str, backoff: i32) -> serde_json::Value {
    json!({
        "metadata": { "name": name },
        "spec": { "backoffLimit": backoff, "template": { "spec": {
            "restartPolicy": restart,
            "containers": [{ "name": "main", "image": "busybox", "command": ["sh", "-c", script] }],
        }}},
    })
}

async fn job_pods(client: &Client, ns: &str, job: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
        .unwrap()
        .items
}

fn condition(j: &Job, type_: &str) -> Option<(String, String)> {
    j.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_running_a_shell_command_completes_and_its_pod_log_is_readable() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    create_job(
        &c,
        "default",
        shell_job(
            "hello",
            "echo hello from $HOSTNAME; echo to-stderr >&2",
            "Never",
            0,
        ),
    )
    .await;
    let j = wait_job_finished(&c, "default", "hello", LIMIT).await.unwrap();
    assert!(condition(&j, "Complete").is_some(), "{:?}", j.status);
    assert!(condition(&j, "SuccessCriteriaMet").is_some());
    let st = j.status.unwrap();
    assert_eq!((st.succeeded, st.failed, st.active), (Some(1), Some(0), Some(0)));
    assert!(st.start_time.is_some() && st.completion_time.is_some());
    let pods = job_pods(&c, "default", "hello").await;
    assert_eq!(pods.len(), 1);
    let pod = &pods[0];
    let name = pod.metadata.name.clone().unwrap();
    assert!(name.starts_with("hello-"));
    assert_eq!(pod.status.as_ref().unwrap().phase.as_deref(), Some("Succeeded"));
    let term = pod.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!((term.exit_code, term.reason.as_deref()), (0, Some("Completed")));
    let log = Api::<Pod>::namespaced(c.clone(), "default")
        .logs(&name, &LogParams::default())
        .await
        .unwrap();
    assert_eq!(log, format!("hello from {name}\nto-stderr\n"));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_honours_backoff_limit_and_ends_failed() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    create_job(
        &c,
        "default",
        shell_job("fails", "echo failing; exit 3", "Never", 2),
    )
    .await;
    let j = wait_job_finished(&c, "default", "fails", LIMIT).await.unwrap();
    let (reason, message) = condition(&j, "Failed").expect("Failed condition");
    assert_eq!(reason, "BackoffLimitExceeded");
    assert_eq!(message, "Job has reached the specified backoff limit");
    assert!(condition(&j, "FailureTarget").is_some());
    assert_eq!(
        j.status.as_ref().unwrap().failed,
        Some(3),
        "backoffLimit 2 allows 3 attempts"
    );
    assert_eq!(j.status.as_ref().unwrap().succeeded, Some(0));
    let pods = job_pods(&c, "default", "fails").await;
    assert_eq!(pods.len(), 3);
    for p in pods {
        let st = p.status.unwrap();
        assert_eq!(st.phase.as_deref(), Some("Failed"));
        let t = st.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!((t.exit_code, t.reason.as_deref()), (3, Some("Error")));
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_failure_job_counts_container_restarts_against_the_backoff_limit() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    create_job(&c, "default", shell_job("restarts", "exit 1", "OnFailure", 1)).await;
    let j = wait_job_finished(&c, "default", "restarts", LIMIT).await.unwrap();
    assert_eq!(
        condition(&j, "Failed").map(|c| c.0).as_deref(),
        Some("BackoffLimitExceeded")
    );
    // One pod restarted in place until the limit; it is then killed and counted as failed.
    assert_eq!(j.status.as_ref().unwrap().failed, Some(1));
    assert!(
        job_pods(&c, "default", "restarts").await.is_empty(),
        "the restarting pod is deleted"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_its_active_deadline_is_killed_and_fails() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    let mut body = shell_job("slow", "echo started; sleep 600", "Never", 6);
    body["spec"]["activeDeadlineSeconds"] = json!(2);
    create_job(&c, "default", body).await;
    // The pod really runs before the deadline hits.
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    wait_for("the slow pod to run", LIMIT, || async {
        let ps = pods.list(&ListParams::default().labels("job-name=slow")).await?;
        Ok::<_, kube::Error>(
            ps.items
                .into_iter()
                .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")),
        )
    })
    .await
    .unwrap();
    let pid_count_before = sb.kubelet().container_pids().len();
    assert_eq!(pid_count_before, 1);
    let j = wait_job_finished(&c, "default", "slow", LIMIT).await.unwrap();
    let (reason, message) = condition(&j, "Failed").expect("Failed condition");
    assert_eq!(reason, "DeadlineExceeded");
    assert_eq!(message, "Job was active longer than specified deadline");
    assert_eq!(j.status.as_ref().unwrap().active, Some(0));
    assert_eq!(j.status.as_ref().unwrap().failed, Some(1));
    wait_for("the slow pod's process to die", LIMIT, || async {
        Ok::<_, ()>(sb.kubelet().container_pids().is_empty().then_some(()))
    })
    .await
    .unwrap();
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_termination_message_file_becomes_the_container_status_message() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    create_job(
        &c,
        "default",
        shell_job(
            "report",
            "printf '{\"result\":42}' > /dev/termination-log",
            "Never",
            0,
        ),
    )
    .await;
    wait_job_finished(&c, "default", "report", LIMIT).await.unwrap();
    let pods = job_pods(&c, "default", "report").await;
    let t = pods[0].status.clone().unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(t.message.as_deref(), Some("{\"result\":42}"));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_job_kills_its_running_pods() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    create_job(&c, "default", shell_job("doomed", "sleep 600", "Never", 0)).await;
    wait_for("the doomed pod to run", LIMIT, || async {
        Ok::<_, ()>((sb.kubelet().container_pids().len() == 1).then_some(()))
    })
    .await
    .unwrap();
    let pid = sb.kubelet().container_pids()[0];
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    jobs.delete("doomed", &DeleteParams::background()).await.unwrap();
    wait_for("the pods of the deleted job to go", LIMIT, || async {
        let left = job_pods(&c, "default", "doomed").await;
        Ok::<_, ()>(left.is_empty().then_some(()))
    })
    .await
    .unwrap();
    wait_for("the process to die", LIMIT, || async {
        Ok::<_, ()>((!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(()))
    })
    .await
    .unwrap();
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_k8up_image_runs_the_configured_k8up_binary_at_its_image_path() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("k8up");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"$0 called with: $*\"\nls /usr/local/bin/restic\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let restic = dir.path().join("restic");
    std::fs::write(&restic, "#!/bin/sh\n").unwrap();
    let cfg = SandboxConfig {
        k8up_binary: Some(fake),
        restic_binary: Some(restic),
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(cfg).await.unwrap();
    let c = sb.client();
    let body = json!({
        "metadata": { "name": "k8up-job" },
        "spec": { "backoffLimit": 0, "template": { "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "backup", "image": "ghcr.io/k8up-io/k8up:v2.13",
                "command": ["/usr/local/bin/k8up", "restic"], "args": ["-varDir", "/k8up"],
            }],
        }}},
    });
    create_job(&c, "default", body).await;
    let j = wait_job_finished(&c, "default", "k8up-job", LIMIT).await.unwrap();
    assert!(condition(&j, "Complete").is_some(), "{:?}", j.status);
    let pods = job_pods(&c, "default", "k8up-job").await;
    let name = pods[0].metadata.name.clone().unwrap();
    let log = Api::<Pod>::namespaced(c.clone(), "default")
        .logs(&name, &LogParams::default())
        .await
        .unwrap();
    assert_eq!(
        log,
        "/usr/local/bin/k8up called with: restic -varDir /k8up\n/usr/local/bin/restic\n"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_with_completions_and_parallelism_runs_that_many_pods() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    let mut body = shell_job("batch", "echo done", "Never", 0);
    body["spec"]["completions"] = json!(3);
    body["spec"]["parallelism"] = json!(2);
    create_job(&c, "default", body).await;
    let j = wait_job_finished(&c, "default", "batch", LIMIT).await.unwrap();
    assert!(condition(&j, "Complete").is_some(), "{:?}", j.status);
    assert_eq!(j.status.unwrap().succeeded, Some(3));
    assert_eq!(job_pods(&c, "default", "batch").await.len(), 3);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_job_is_deleted_after_its_ttl() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    let mut body = shell_job("short-lived", "true", "Never", 0);
    body["spec"]["ttlSecondsAfterFinished"] = json!(1);
    create_job(&c, "default", body).await;
    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    wait_for("the job to be deleted", LIMIT, || async {
        Ok::<_, kube::Error>(jobs.get_opt("short-lived").await?.is_none().then_some(()))
    })
    .await
    .unwrap();
    wait_for("its pods to be collected", LIMIT, || async {
        Ok::<_, ()>(
            job_pods(&c, "default", "short-lived")
                .await
                .is_empty()
                .then_some(()),
        )
    })
    .await
    .unwrap();
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_failure_policy_fails_the_job_at_once_on_a_matching_exit_code_and_ignores_what_it_says() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let c = sb.client();
    let policy = json!({ "rules": [
        { "action": "Ignore", "onExitCodes": { "operator": "In", "values": [7] } },
        { "action": "FailJob", "onExitCodes": { "containerName": "main", "operator": "In", "values": [42] } },
    ]});
    // Exit 42 fails the Job with its first pod although the backoff limit would allow six more.
    let mut permanent = shell_job("permanent", "exit 42", "Never", 6);
    permanent["spec"]["podFailurePolicy"] = policy.clone();
    create_job(&c, "default", permanent).await;
    // Exit 7 is ignored: never counted against backoffLimit 0, so the Job keeps replacing the pod.
    let mut ignored = shell_job("ignored", "exit 7", "Never", 0);
    ignored["spec"]["podFailurePolicy"] = policy;
    create_job(&c, "default", ignored).await;
    // Without a matching rule the failure counts as usual.
    let mut counted = shell_job("counted", "exit 3", "Never", 1);
    counted["spec"]["podFailurePolicy"] = json!({ "rules": [
        { "action": "FailJob", "onExitCodes": { "operator": "In", "values": [42] } },
    ]});
    create_job(&c, "default", counted).await;

    let j = wait_job_finished(&c, "default", "permanent", LIMIT)
        .await
        .unwrap();
    let (reason, message) = condition(&j, "Failed").unwrap();
    assert_eq!(reason, "PodFailurePolicy");
    assert!(
        message.contains("Container main for pod default/permanent-")
            && message.contains("failed with exit code 42 matching FailJob rule at index 1"),
        "{message}"
    );
    assert_eq!(job_pods(&c, "default", "permanent").await.len(), 1);

    let jobs: Api<Job> = Api::namespaced(c.clone(), "default");
    wait_for("three ignored failures of one Job", LIMIT, || async {
        let failed = job_pods(&c, "default", "ignored")
            .await
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
            .count();
        Ok::<_, kube::Error>((failed >= 3).then_some(()))
    })
    .await
    .unwrap();
    let j = jobs.get("ignored").await.unwrap();
    assert!(condition(&j, "Failed").is_none(), "{:?}", j.status);
    assert_eq!(j.status.and_then(|s| s.failed), Some(0));

    let j = wait_job_finished(&c, "default", "counted", LIMIT).await.unwrap();
    assert_eq!(condition(&j, "Failed").unwrap().0, "BackoffLimitExceeded");
    assert_eq!(job_pods(&c, "default", "counted").await.len(), 2);
    sb.shutdown().await;
}
