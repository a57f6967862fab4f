//! The SIGKILL fault suite: the `k8up operator` process is killed with SIGKILL at random moments, and
//! restarted after a random pause, while 100 Backups of a PVC run the real `restic` (built-in planner, Jobs
//! running `k8up restic` as sandbox pods) into a local repository. Once the killing stops and the last
//! operator is left running, every Backup has completed with `Succeeded` and is scrubbed, owns exactly one
//! Job whose only pod succeeded, no Job lacks its owner Backup, and the repository holds exactly 100
//! snapshots, mirrored one to one by 100 Snapshot resources.
//!
//! The kill schedule (how long each operator lives, how long it stays down, when Backups are created) comes
//! from a seeded RNG: the seed is printed, and `K8UP_SIGKILL_SEED=<seed>` replays that schedule (the
//! interleaving with the API and the Jobs still varies from run to run). For every kill the test prints in
//! which phases the Backups were at that moment (see [`Phases`]), so a run shows which windows it hit:
//! before Job creation, between Job creation and the status write, while Jobs run, between a Job's end and
//! `Completed` (snapshot sync), and between `Completed` and `Scrubbed` (history cleanup).
//!
//! The operator runs as the built binary (`$K8UP_BINARY` or `target/debug/k8up`, which `cargo test
//! --workspace` builds; alone: `cargo test --workspace --test operator_sigkill --test cli`), on the
//! sandbox's HTTPS kubeconfig, with leader election off: SIGKILL ends it without any shutdown code.

// Helpers outside `#[test]` functions fail the calling test by panicking, like assertions do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e_common;
mod operator_common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use e2e_common::*;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8up::crd::{Backup, Snapshot, Status};
use k8up::operator::driver::observe::termination_messages;
use k8up::operator::driver::status::{JobState, job_state};
use k8up::operator::snapshots::parse_report;
use k8up_tests::cluster::{Sandbox, default_k8up_binary, wait_for};
use k8up_tests::operator_process::OperatorProcess;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use operator_common::{has, owned_jobs, sandbox};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// Backup cycles.
const BACKUPS: usize = 100;
/// Backups created but not yet completed at any time: enough for the kills to find several in every
/// phase, few enough that two cores run their restic processes without slowing to a crawl.
const IN_FLIGHT: usize = 10;
/// Environment variable that replays a seed.
const SEED_VAR: &str = "K8UP_SIGKILL_SEED";
/// Deadline of the whole creation phase and of the final convergence (hangs, not speed).
const CREATE_LIMIT: Duration = Duration::from_secs(900);
const CONVERGE_LIMIT: Duration = Duration::from_secs(300);
/// Operator log lines shown when the Backups do not converge.
const LOG_TAIL: usize = 80;

/// `k8up operator` flags besides leader election and the metrics address (which [`OperatorProcess`] sets).
const OPERATOR_FLAGS: [&str; 7] = [
    "--debug",
    "--operator-namespace",
    NS,
    // Failed pods fail the Job instead of restarting in place, so a pod that ran twice is visible.
    "--restartpolicy",
    "Never",
    // History cleanup deletes the oldest finished Backups beyond the limit (default 3): keep all 100.
    "--global-successful-jobs-history-limit",
    "1000",
];

/// The seed: `$K8UP_SIGKILL_SEED`, else the clock.
fn seed() -> u64 {
    match std::env::var(SEED_VAR) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|e| panic!("{SEED_VAR}={v:?} is not a u64: {e}")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default(),
    }
}

fn backup_name(i: usize) -> String {
    format!("cycle-{i:03}")
}

fn owned_by(name: &str) -> String {
    format!("backup_{name}")
}

fn condition_true(status: &Status, type_: &str) -> bool {
    status.condition(type_).is_some_and(|c| c.status == "True")
}

/// How many Backups were in each phase at one moment: the windows a kill can land in.
#[derive(Debug, Clone, Copy, Default)]
struct Phases {
    /// Created, no Job yet (validate, observe, plan, Job creation ahead).
    unstarted: usize,
    /// A Job exists but the status does not say `started` (between Job creation and the status write).
    job_unrecorded: usize,
    /// Started, the Job still runs.
    running: usize,
    /// The Job finished, `Completed` not written yet (snapshot sync ahead).
    finished_unrecorded: usize,
    /// `Completed` but not `Scrubbed` (history cleanup ahead).
    unscrubbed: usize,
    /// `Completed` and `Scrubbed`.
    settled: usize,
}

impl Phases {
    /// The names and counts of the windows a kill can interrupt (everything but `settled`).
    fn windows(&self) -> [(&'static str, usize); 5] {
        [
            ("before Job creation", self.unstarted),
            ("Job created, status not written", self.job_unrecorded),
            ("Job running", self.running),
            ("Job done, Completed not written", self.finished_unrecorded),
            ("Completed, not Scrubbed", self.unscrubbed),
        ]
    }
}

/// The phase of every Backup now.
async fn phases(client: &Client) -> Phases {
    let backups = Api::<Backup>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let jobs = Api::<Job>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let mut by_owner: BTreeMap<String, Vec<&Job>> = BTreeMap::new();
    for job in &jobs {
        if let Some(owner) = job
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("k8up.io/owned-by"))
        {
            by_owner.entry(owner.clone()).or_default().push(job);
        }
    }
    let mut p = Phases::default();
    for b in &backups {
        let status = b.status.clone().unwrap_or_default();
        let name = b.metadata.name.clone().unwrap_or_default();
        let jobs = by_owner
            .get(&owned_by(&name))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let done = !jobs.is_empty() && jobs.iter().all(|j| job_state(j) != JobState::Running);
        let counter = if condition_true(&status, "Completed") {
            if condition_true(&status, "Scrubbed") {
                &mut p.settled
            } else {
                &mut p.unscrubbed
            }
        } else if jobs.is_empty() {
            &mut p.unstarted
        } else if !status.started {
            &mut p.job_unrecorded
        } else if done {
            &mut p.finished_unrecorded
        } else {
            &mut p.running
        };
        *counter += 1;
    }
    p
}

/// One SIGKILL.
#[derive(Debug)]
struct Kill {
    /// Since the start of the cycles.
    at: Duration,
    /// How long that operator took from spawn to `/readyz`.
    startup: Duration,
    /// How long it had been ready.
    lived: Duration,
    /// The Backups' phases just before the signal.
    phases: Phases,
}

/// What the killer needs.
struct Target<'a> {
    client: &'a Client,
    binary: &'a Path,
    kubeconfig: &'a Path,
    log: &'a Path,
}

impl Target<'_> {
    async fn start(&self) -> OperatorProcess {
        OperatorProcess::start(
            self.binary,
            self.kubeconfig,
            &OPERATOR_FLAGS,
            self.log.to_path_buf(),
        )
        .await
    }

    /// A line in the operator log, so that its tail shows where each process began and ended.
    fn mark(&self, line: &str) {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log)
            .unwrap();
        writeln!(log, "===== {line}").unwrap();
    }
}

/// Starts an operator, lets it run for a random time after it is ready (a third of the lives are short,
/// to land in the reconcile burst after a start), SIGKILLs it, waits a random pause and starts the next,
/// until `stop` is set; the operator running then is returned, left running.
async fn kill_loop(
    target: &Target<'_>,
    rng: &mut StdRng,
    stop: &AtomicBool,
    started: Instant,
) -> (OperatorProcess, Vec<Kill>) {
    let mut kills = Vec::new();
    loop {
        target.mark(&format!(
            "start #{} at {:.1} s",
            kills.len() + 1,
            started.elapsed().as_secs_f64()
        ));
        let spawned = Instant::now();
        let operator = target.start().await;
        let startup = spawned.elapsed();
        if stop.load(Ordering::SeqCst) {
            return (operator, kills);
        }
        let ready = Instant::now();
        let life = if rng.random_bool(0.33) {
            rng.random_range(0..400)
        } else {
            rng.random_range(400..4_000)
        };
        tokio::time::sleep(Duration::from_millis(life)).await;
        let phases = phases(target.client).await;
        let lived = ready.elapsed();
        let status = operator.kill().await.unwrap();
        assert!(
            status.code().is_none(),
            "the operator exited by itself before the kill: {status}"
        );
        let kill = Kill {
            at: started.elapsed(),
            startup,
            lived,
            phases,
        };
        target.mark(&format!(
            "SIGKILL #{} at {:.1} s",
            kills.len() + 1,
            kill.at.as_secs_f64()
        ));
        println!(
            "kill {:>3} at {:>6.1} s (ready after {:>4} ms, then {:>4} ms alive): {:?}",
            kills.len() + 1,
            kill.at.as_secs_f64(),
            kill.startup.as_millis(),
            kill.lived.as_millis(),
            kill.phases
        );
        kills.push(kill);
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1_000))).await;
    }
}

/// A Backup of the namespace's PVCs into the local repository on the `repository` PVC.
fn backup(name: &str) -> serde_json::Value {
    json!({
        "metadata": { "name": name },
        "spec": {
            "backend": {
                "repoPasswordSecretRef": { "name": "backup-repo", "key": "password" },
                "local": { "mountPath": "/repository" },
                "volumeMounts": [{ "name": "repository", "mountPath": "/repository" }],
            },
            "volumes": [{ "name": "repository", "persistentVolumeClaim": { "claimName": "repository" } }],
        },
    })
}

/// Creates the Backups one after another, at most [`IN_FLIGHT`] uncompleted at a time, with random gaps.
async fn create_backups(client: &Client, rng: &mut StdRng) {
    let api: Api<Backup> = Api::namespaced(client.clone(), NS);
    let deadline = Instant::now() + CREATE_LIMIT;
    for i in 0..BACKUPS {
        loop {
            let list = api.list(&ListParams::default()).await.unwrap().items;
            let open = list
                .iter()
                .filter(|b| !condition_true(&b.status.clone().unwrap_or_default(), "Completed"))
                .count();
            if open < IN_FLIGHT {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {i} Backups created in {CREATE_LIMIT:?}: {open} stay uncompleted"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let object = serde_json::from_value(backup(&backup_name(i))).unwrap();
        api.create(&PostParams::default(), &object).await.unwrap();
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..500))).await;
    }
}

/// The last `n` lines of the operator log.
fn log_tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The operator log lines that mention `name`, each run of them headed by the start or kill marker before
/// it; the last `n` of those.
fn log_about(log: &Path, name: &str, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut kept: Vec<&str> = Vec::new();
    let mut marker = None;
    for line in text.lines() {
        if line.starts_with("=====") {
            marker = Some(line);
        } else if line.contains(name) {
            kept.extend(marker.take());
            kept.push(line);
        }
    }
    kept[kept.len().saturating_sub(n)..].join("\n")
}

/// Waits until every Backup is `Completed` and `Scrubbed`; on timeout fails with the status and Jobs of
/// the unsettled ones and the operator log's tail.
async fn wait_settled(client: &Client, log: &Path) -> Vec<Backup> {
    let api: Api<Backup> = Api::namespaced(client.clone(), NS);
    let settled = wait_for(
        "every Backup to complete and be scrubbed",
        CONVERGE_LIMIT,
        || async {
            let list = api.list(&ListParams::default()).await?.items;
            let all = list.len() == BACKUPS
                && list.iter().all(|b| {
                    let s = b.status.clone().unwrap_or_default();
                    condition_true(&s, "Completed") && condition_true(&s, "Scrubbed")
                });
            Ok::<_, kube::Error>(all.then_some(list))
        },
    )
    .await;
    match settled {
        Ok(list) => list,
        Err(e) => {
            let mut stuck = String::new();
            for b in api.list(&ListParams::default()).await.unwrap().items {
                let s = b.status.clone().unwrap_or_default();
                if condition_true(&s, "Completed") && condition_true(&s, "Scrubbed") {
                    continue;
                }
                let name = b.metadata.name.clone().unwrap_or_default();
                let jobs: Vec<_> = owned_jobs(client, NS, &owned_by(&name))
                    .await
                    .into_iter()
                    .map(|j| (j.metadata.name, j.status))
                    .collect();
                stuck.push_str(&format!(
                    "{name}: status {}\n  jobs {jobs:?}\n",
                    serde_json::to_string(&s).unwrap()
                ));
            }
            panic!(
                "STUCK BACKUP: {e}\n{stuck}\n--- operator log (last {LOG_TAIL} lines)\n{}",
                log_tail(log, LOG_TAIL)
            );
        }
    }
}

/// The pods of Job `name`.
async fn job_pods(client: &Client, name: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels(&format!("job-name={name}")))
        .await
        .unwrap()
        .items
}

/// Prepares the namespace: the repository password, a `repository` PVC (not backed up) holding an
/// initialised restic repository, and an `app` PVC with a few small files. Returns the repository path.
///
/// The repository is initialised first: concurrent first backups into a new repository race on `restic
/// init`, which this test is not about.
async fn prepare(client: &Client) -> PathBuf {
    create_repository_secret(client).await;
    pvc_with(
        client,
        NS,
        "repository",
        "ReadWriteMany",
        json!({ "annotations": { "k8up.io/backup": "false" } }),
    )
    .await;
    pvc_with(client, NS, "app", "ReadWriteMany", json!({})).await;
    let app = pvc_dir(client, "app").await;
    std::fs::create_dir_all(app.join("conf")).unwrap();
    std::fs::write(app.join("hello.txt"), b"hello from the app\n").unwrap();
    std::fs::write(app.join("conf/settings.ini"), b"[main]\nmode = kill-me\n").unwrap();
    let blob: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(app.join("conf/blob.bin"), blob).unwrap();
    let repository = pvc_dir(client, "repository").await;
    restic(repository.to_str().unwrap(), &["init"]);
    repository
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_neither_duplicate_nor_get_lost_nor_stick_while_the_operator_is_sigkilled_at_random() {
    let binary = default_k8up_binary().unwrap_or_else(|| {
        panic!(
            "no k8up binary: set K8UP_BINARY or build target/debug/k8up \
             (`cargo build --workspace`; `cargo test --workspace` builds it)"
        )
    });
    let seed = seed();
    println!(
        "seed {seed} (replay the kill schedule with {SEED_VAR}={seed}); operator {}",
        binary.display()
    );
    let mut kill_rng = StdRng::seed_from_u64(seed);
    let mut create_rng = StdRng::seed_from_u64(seed.wrapping_add(1));

    let sb: Sandbox = sandbox().await;
    let client = sb.client();
    let repository = prepare(&client).await;
    // Not a TempDir: the log must outlive a failed run.
    let logs = std::env::temp_dir().join(format!("k8up-sigkill-{seed}"));
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join("operator.log");
    let _ = std::fs::remove_file(&log);
    println!("operator log: {}", log.display());
    let target = Target {
        client: &client,
        binary: &binary,
        kubeconfig: sb.kubeconfig_path(),
        log: &log,
    };

    let started = Instant::now();
    let stop = AtomicBool::new(false);
    let ((operator, kills), ()) = tokio::join!(kill_loop(&target, &mut kill_rng, &stop, started), async {
        create_backups(&client, &mut create_rng).await;
        stop.store(true, Ordering::SeqCst);
    });
    let created = started.elapsed();
    let backups = wait_settled(&client, &log).await;
    let settled = started.elapsed();

    let hit: Vec<String> = Phases::default()
        .windows()
        .iter()
        .enumerate()
        .map(|(w, (what, _))| {
            let n = kills.iter().filter(|k| k.phases.windows()[w].1 > 0).count();
            format!("{what}: {n}")
        })
        .collect();
    println!(
        "{} kills while {BACKUPS} Backups were created ({IN_FLIGHT} in flight) in {:.1} s; all settled at \
         {:.1} s. Kills that found Backups in each window: {}",
        kills.len(),
        created.as_secs_f64(),
        settled.as_secs_f64(),
        hit.join(", ")
    );
    assert!(
        kills.len() >= 10,
        "only {} kills: the suite did not do what it says",
        kills.len()
    );

    // Every Backup succeeded (settled means Completed and Scrubbed).
    let failed: Vec<String> = backups
        .iter()
        .filter(|b| {
            !has(
                &b.status.clone().unwrap_or_default(),
                "Completed",
                "True",
                "Succeeded",
            )
        })
        .map(|b| format!("{}: {:?}", b.metadata.name.clone().unwrap_or_default(), b.status))
        .collect();
    assert!(failed.is_empty(), "Backups that did not succeed: {failed:#?}");

    // Exactly one Job per Backup, owned by it, run by exactly one pod that succeeded; what that pod reported.
    let uids: BTreeMap<String, String> = backups
        .iter()
        .map(|b| (b.metadata.uid.clone().unwrap(), b.metadata.name.clone().unwrap()))
        .collect();
    let jobs = Api::<Job>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let mut problems = Vec::new();
    let mut jobs_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Backup -> (its Job, the snapshot ids its pod's report says it created).
    let mut reported: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for job in &jobs {
        let name = job.metadata.name.clone().unwrap_or_default();
        let owners: Vec<&String> = job
            .metadata
            .owner_references
            .iter()
            .flatten()
            .filter_map(|r| uids.get(&r.uid))
            .collect();
        let label = job
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("k8up.io/owned-by"))
            .cloned()
            .unwrap_or_default();
        let pods = job_pods(&client, &name).await;
        let created: Vec<String> = termination_messages(&pods)
            .iter()
            .filter_map(|m| parse_report(m))
            .flat_map(|r| r.created.into_iter().map(|c| c.id))
            .collect();
        match owners.as_slice() {
            [owner] if label == owned_by(owner) => {
                jobs_of.entry((*owner).clone()).or_default().push(name.clone());
                reported.insert((*owner).clone(), (name.clone(), created));
            }
            _ => problems.push(format!("ORPHAN JOB {name}: label {label:?}, owners {owners:?}")),
        }
        let status = job.status.clone().unwrap_or_default();
        if status.succeeded != Some(1) || status.failed.unwrap_or(0) != 0 {
            problems.push(format!(
                "job {name}: succeeded {:?}, failed {:?}",
                status.succeeded, status.failed
            ));
        }
        if pods.len() != 1 {
            let pods: Vec<_> = pods.iter().map(|p| p.metadata.name.clone()).collect();
            problems.push(format!("job {name} ran {} pods: {pods:?}", pods.len()));
        }
    }
    for name in uids.values() {
        let jobs = jobs_of.get(name).cloned().unwrap_or_default();
        if jobs.len() != 1 {
            problems.push(format!("DUPLICATE OR MISSING JOB: {name} owns {jobs:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(jobs.len(), BACKUPS, "one Job per Backup");

    // Each Backup's one snapshot is in the repository and mirrored by a Snapshot resource; nothing else is.
    let snapshots = restic_snapshots(repository.to_str().unwrap());
    let in_repository: BTreeSet<String> = snapshots
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        snapshots.iter().all(|s| s["paths"] == json!(["/data/app"])),
        "every snapshot is of the app PVC: {snapshots:?}"
    );
    let resources: Vec<Snapshot> = snapshot_resources(&client, NS).await;
    let mirrored: BTreeMap<String, String> = resources
        .iter()
        .filter_map(|s| Some((s.spec.id.clone()?, s.metadata.name.clone()?)))
        .collect();
    let mut problems = Vec::new();
    for (backup, (job, ids)) in &reported {
        let [id] = ids.as_slice() else {
            problems.push(format!("{backup}: Job {job} reported {ids:?}, not one snapshot"));
            continue;
        };
        if !in_repository.contains(id) {
            problems.push(format!(
                "LOST SNAPSHOT: {backup} (Job {job}) reported {id}, which the repository does not hold"
            ));
        }
        if !mirrored.contains_key(id) {
            problems.push(format!(
                "LOST SNAPSHOT RESOURCE: {backup} (Job {job}) reported {id}, which the repository holds, \
                 but no Snapshot resource names it, though {backup} is Completed. Its log lines:\n{}",
                log_about(&log, backup, LOG_TAIL)
            ));
        }
    }
    let all_reported: BTreeSet<&String> = reported.values().flat_map(|(_, ids)| ids).collect();
    for id in &in_repository {
        if !all_reported.contains(id) {
            problems.push(format!(
                "EXTRA SNAPSHOT {id} in the repository: no Job reported it"
            ));
        }
    }
    for (id, name) in &mirrored {
        if !in_repository.contains(id) {
            problems.push(format!(
                "STRAY SNAPSHOT RESOURCE {name}: {id} is not in the repository"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems (operator log: {}):\n{}",
        problems.len(),
        log.display(),
        problems.join("\n")
    );
    assert_eq!(
        snapshots.len(),
        BACKUPS,
        "one snapshot per Backup in the repository"
    );
    assert_eq!(resources.len(), BACKUPS, "one Snapshot resource per snapshot");

    operator.stop().await;
    sb.shutdown().await;
    // Kept when the test fails, for its log.
    let _ = std::fs::remove_dir_all(&logs);
}
