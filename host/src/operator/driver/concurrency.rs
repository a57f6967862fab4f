//! Who may start on a repository (REFERENCE 2.3, with K8up's gaps closed).
//!
//! Rules, per repository (the `k8up.io/repository-hash` label of the Jobs):
//! - Check and Prune start only when no other k8up Job runs on the repository.
//! - Backup, Restore and Archive start only when no *exclusive* Job runs on it: a Check, Prune or Restore
//!   (by type, whatever the plugin labelled), or any Job labelled `k8upjob/exclusive=true`.
//! - Every kind respects its `BACKUP_GLOBAL_CONCURRENT_<KIND>_JOBS_LIMIT`: it starts only while fewer Jobs of
//!   its type run on the repository (K8up consulted the backup, restore and archive limits only).
//!
//! "Runs" means a Job that has not finished (no `Complete`/`Failed` condition), so a Job created a moment ago
//! whose pod does not exist yet counts too (K8up counted `status.active`, which let two starts race). The
//! decisions are serialised by [`Gate`] and read Jobs from a watch cache plus the Jobs this operator created
//! since (the cache lags), so two actions deciding at the same moment cannot both pass. A waiting object is
//! woken when a k8up Job finishes (the controllers watch Jobs), with a slow requeue as a safety net.
//!
//! A repository not yet known to exist (no k8up Job on it has completed since this operator started
//! watching) takes one Job at a time: concurrent `restic init` runs of one new repository can leave it
//! with keys but no config, unusable. Several Jobs of one action started together on such a repository
//! are told to wait for the first one's init instead ([`super::apply::await_repository`]).
//!
//! [`decide`] is pure; [`Gate`] holds the cache and the lock.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::runtime::reflector::Store;

use super::validate::{LABEL_OWNED_BY, LABEL_REPOSITORY_HASH, LABEL_TYPE, ValidatedAction};
use crate::crd::JobType;
use crate::jobs::LABEL_EXCLUSIVE;
use crate::operator::settings::ConcurrencyLimits;

/// How long a Job this operator created is remembered while the watch cache has not shown it yet.
const REMEMBER_CREATED: Duration = Duration::from_secs(120);

/// A running k8up Job, as far as concurrency goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RunningJob {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `k8up.io/type`.
    pub job_type: String,
    /// `k8up.io/repository-hash`.
    pub repository_hash: String,
    /// `k8up.io/owned-by`.
    pub owned_by: String,
    /// Labelled `k8upjob/exclusive=true`.
    pub exclusive_label: bool,
}

impl RunningJob {
    /// The running-job view of `job`, `None` when it finished or is being deleted.
    pub fn from_job(job: &Job) -> Option<Self> {
        if job.metadata.deletion_timestamp.is_some() || is_finished(job) {
            return None;
        }
        let label = |k: &str| job.labels().get(k).cloned().unwrap_or_default();
        Some(RunningJob {
            namespace: job.namespace().unwrap_or_default(),
            name: job.name_any(),
            job_type: label(LABEL_TYPE),
            repository_hash: label(LABEL_REPOSITORY_HASH),
            owned_by: label(LABEL_OWNED_BY),
            exclusive_label: label(LABEL_EXCLUSIVE) == "true",
        })
    }

    /// Whether this Job keeps Backup/Restore/Archive off the repository.
    fn blocks_shared(&self) -> bool {
        self.exclusive_label || matches!(self.job_type.as_str(), "check" | "prune" | "restore")
    }
}

/// Whether a Job has a final condition.
pub fn is_finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
}

/// Whether a Job completed successfully (`Complete=True`).
fn is_complete(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Complete" && c.status == "True"))
}

/// The verdict for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start now.
    Start,
    /// Wait; the message says for what.
    Wait(String),
}

fn limit_of(limits: &ConcurrencyLimits, kind: JobType) -> Option<u32> {
    match kind {
        JobType::Backup => limits.backup,
        JobType::Restore => limits.restore,
        JobType::Archive => limits.archive,
        JobType::Check => limits.check,
        JobType::Prune => limits.prune,
    }
    .map(|n| n.get())
}

fn env_name(kind: JobType) -> String {
    format!(
        "BACKUP_GLOBAL_CONCURRENT_{}_JOBS_LIMIT",
        kind.to_string().to_uppercase()
    )
}

/// Names the blockers: the ones in `namespace` by name (at most three), the others counted (another
/// namespace's Job names are not this namespace's business).
fn describe(blockers: &[&RunningJob], namespace: &str) -> String {
    let mut own: Vec<String> = blockers
        .iter()
        .filter(|j| j.namespace == namespace)
        .map(|j| format!("{} ({})", j.name, j.job_type))
        .collect();
    own.sort();
    let others = blockers.len() - own.len();
    let shown = own.len().min(3);
    let mut parts: Vec<String> = own[..shown].to_vec();
    if own.len() > shown {
        parts.push(format!("{} more", own.len() - shown));
    }
    if others > 0 {
        parts.push(format!("{others} in other namespaces"));
    }
    parts.join(", ")
}

/// Whether `action` (of `kind`, owning Jobs labelled `owned_by`, on `repository_hash`) may start now, given
/// every running k8up Job. The action's own Jobs (a restart after creating them) never block it.
///
/// `initialised`: whether the repository is known to exist; if not, any other running Job on it (which may
/// be initialising it) makes `action` wait.
pub fn decide(
    kind: JobType,
    namespace: &str,
    owned_by: &str,
    repository: (&str, bool),
    running: &[RunningJob],
    limits: &ConcurrencyLimits,
) -> Decision {
    let (repository_hash, initialised) = repository;
    let on_repo: Vec<&RunningJob> = running
        .iter()
        .filter(|j| j.repository_hash == repository_hash && j.owned_by != owned_by)
        .collect();
    if matches!(kind, JobType::Check | JobType::Prune) {
        if !on_repo.is_empty() {
            return Decision::Wait(format!(
                "waiting for {} job(s) on the same repository to finish ({kind} needs the repository to itself): {}",
                on_repo.len(),
                describe(&on_repo, namespace)
            ));
        }
    } else {
        let exclusive: Vec<&RunningJob> = on_repo.iter().copied().filter(|j| j.blocks_shared()).collect();
        if !exclusive.is_empty() {
            return Decision::Wait(format!(
                "waiting for {} job(s) that need the repository to themselves to finish: {}",
                exclusive.len(),
                describe(&exclusive, namespace)
            ));
        }
    }
    if let Some(limit) = limit_of(limits, kind) {
        let same: Vec<&RunningJob> = on_repo
            .iter()
            .copied()
            .filter(|j| j.job_type == kind.to_string())
            .collect();
        if same.len() >= limit as usize {
            return Decision::Wait(format!(
                "waiting for a free slot: {} {kind} job(s) run on the same repository, the limit is {limit} ({}): {}",
                same.len(),
                env_name(kind),
                describe(&same, namespace)
            ));
        }
    }
    if !initialised && !on_repo.is_empty() {
        return Decision::Wait(format!(
            "waiting for {} job(s) on a repository not known to exist yet to finish (one initialises it; \
             concurrent initialisations can break a new repository): {}",
            on_repo.len(),
            describe(&on_repo, namespace)
        ));
    }
    Decision::Start
}

/// The operator-wide start lock, the watch cache of k8up Jobs, the Jobs created since, and the objects
/// waiting for their turn.
pub struct Gate {
    /// Held from the decision until the Jobs are created.
    lock: tokio::sync::Mutex<()>,
    /// Every k8up Job (`k8upjob=true`), from a watch; `None` reads the API instead (tests, no cache).
    store: Option<Store<Job>>,
    /// Jobs created by this operator, until the cache shows them.
    created: Mutex<BTreeMap<(String, String), (RunningJob, Instant)>>,
    /// Objects that were told to wait: (kind, namespace, name).
    waiting: Mutex<BTreeSet<(JobType, String, String)>>,
    /// Repository hashes known to exist: a k8up Job on them completed.
    initialised: Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").finish_non_exhaustive()
    }
}

/// Held while deciding and creating; dropping it lets the next decision in.
pub type Permit<'a> = tokio::sync::MutexGuard<'a, ()>;

impl Gate {
    /// A gate reading Jobs from `store` (`None`: listed from the API at each decision).
    pub fn new(store: Option<Store<Job>>) -> Self {
        Gate {
            lock: tokio::sync::Mutex::new(()),
            store,
            created: Mutex::new(BTreeMap::new()),
            waiting: Mutex::new(BTreeSet::new()),
            initialised: Mutex::new(BTreeSet::new()),
        }
    }

    /// Waits up to `limit` for the Job cache's first full list (at once without a cache). Called before
    /// [`Gate::permit`]: before that list the cache knows nothing, and a decision must neither be made blind
    /// nor hold the permit while the watch is (re)connecting, which would stall every other decision.
    pub async fn cache_synced(&self, limit: Duration) -> bool {
        match &self.store {
            Some(store) => matches!(
                tokio::time::timeout(limit, store.wait_until_ready()).await,
                Ok(Ok(()))
            ),
            None => true,
        }
    }

    /// Waits for the start lock.
    pub async fn permit(&self) -> Permit<'_> {
        self.lock.lock().await
    }

    /// The running k8up Jobs: the cache (or a list), plus Jobs created since that it does not show yet.
    pub async fn running(&self, client: &kube::Client) -> Result<Vec<RunningJob>, kube::Error> {
        // The cache's objects are shared, not copied: this runs for every decision, over every k8up Job.
        let jobs: Vec<Arc<Job>> = match &self.store {
            // Synced: the caller waited for [`Gate::cache_synced`] before taking the permit.
            Some(store) => store.state(),
            None => kube::Api::<Job>::all(client.clone())
                .list(&kube::api::ListParams::default().labels("k8upjob=true"))
                .await?
                .items
                .into_iter()
                .map(Arc::new)
                .collect(),
        };
        {
            let mut initialised = self.initialised.lock().unwrap_or_else(|e| e.into_inner());
            for hash in jobs
                .iter()
                .filter(|j| is_complete(j))
                .filter_map(|j| j.labels().get(LABEL_REPOSITORY_HASH))
            {
                if !hash.is_empty() && !initialised.contains(hash) {
                    initialised.insert(hash.clone());
                }
            }
        }
        let mut running: Vec<RunningJob> = jobs.iter().filter_map(|j| RunningJob::from_job(j)).collect();
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        if !created.is_empty() {
            let known: HashSet<(&str, &str)> = jobs
                .iter()
                .map(|j| {
                    (
                        j.metadata.namespace.as_deref().unwrap_or_default(),
                        j.metadata.name.as_deref().unwrap_or_default(),
                    )
                })
                .collect();
            created.retain(|(ns, name), (_, at)| {
                !known.contains(&(ns.as_str(), name.as_str())) && at.elapsed() < REMEMBER_CREATED
            });
        }
        running.extend(created.values().map(|(j, _)| j.clone()));
        Ok(running)
    }

    /// Whether the repository is known to exist: a k8up Job on it completed (as seen by the last
    /// [`Gate::running`]).
    pub fn initialised(&self, repository_hash: &str) -> bool {
        let initialised = self.initialised.lock().unwrap_or_else(|e| e.into_inner());
        initialised.contains(repository_hash)
    }

    /// Records Jobs just created (call while holding the permit).
    pub fn created(&self, jobs: &[Job]) {
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        for job in jobs {
            if let Some(r) = RunningJob::from_job(job) {
                created.insert((r.namespace.clone(), r.name.clone()), (r, Instant::now()));
            }
        }
    }

    /// Marks `action` as waiting (or not) for its turn.
    pub fn set_waiting(&self, action: &ValidatedAction, waiting: bool) {
        let key = (action.job_type, action.namespace.clone(), action.name.clone());
        let mut set = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if waiting {
            set.insert(key);
        } else {
            set.remove(&key);
        }
    }

    /// The waiting objects of `kind` (namespace, name): woken when a k8up Job finishes.
    pub fn waiting_of(&self, kind: JobType) -> Vec<(String, String)> {
        let set = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        set.iter()
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, ns, name)| (ns.clone(), name.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn job(ns: &str, name: &str, kind: &str, repo: &str) -> RunningJob {
        RunningJob {
            namespace: ns.into(),
            name: name.into(),
            job_type: kind.into(),
            repository_hash: repo.into(),
            owned_by: format!("{kind}_{name}"),
            exclusive_label: false,
        }
    }

    fn unlimited() -> ConcurrencyLimits {
        ConcurrencyLimits {
            archive: None,
            backup: None,
            check: None,
            prune: None,
            restore: None,
        }
    }

    fn starts(kind: JobType, running: &[RunningJob], limits: &ConcurrencyLimits) -> bool {
        decide(kind, "ns", "mine_x", ("repo", true), running, limits) == Decision::Start
    }

    #[test]
    fn check_and_prune_need_the_repository_to_themselves_and_restore_blocks_the_others() {
        let l = unlimited();
        let backup = job("ns", "backup-a", "backup", "repo");
        let restore = job("ns", "restore-a", "restore", "repo");
        let prune = job("ns", "prune-a", "prune", "repo");
        let elsewhere = job("ns", "prune-b", "prune", "other-repo");
        for kind in [JobType::Check, JobType::Prune] {
            assert!(starts(kind, &[], &l));
            assert!(
                starts(kind, std::slice::from_ref(&elsewhere), &l),
                "other repositories do not count"
            );
            assert!(
                !starts(kind, std::slice::from_ref(&backup), &l),
                "{kind} waits for a backup"
            );
        }
        for kind in [JobType::Backup, JobType::Restore, JobType::Archive] {
            assert!(
                starts(kind, std::slice::from_ref(&backup), &l),
                "{kind} runs beside a backup"
            );
            assert!(
                !starts(kind, std::slice::from_ref(&restore), &l),
                "{kind} waits for a restore"
            );
            assert!(
                !starts(kind, std::slice::from_ref(&prune), &l),
                "{kind} waits for a prune"
            );
        }
        // A plugin's exclusive label blocks too; finished or own Jobs never do.
        let mut labelled = job("ns", "archive-a", "archive", "repo");
        labelled.exclusive_label = true;
        assert!(!starts(JobType::Backup, &[labelled], &l));
        let mut own = job("ns", "prune-x", "prune", "repo");
        own.owned_by = "mine_x".into();
        assert!(starts(JobType::Backup, &[own], &l));
    }

    #[test]
    fn every_kind_respects_its_per_repository_limit() {
        let two = NonZeroU32::new(2);
        let limits = ConcurrencyLimits {
            archive: two,
            backup: two,
            check: two,
            prune: two,
            restore: two,
        };
        let backups = [
            job("ns", "backup-a", "backup", "repo"),
            job("ns", "backup-b", "backup", "repo"),
        ];
        assert!(starts(JobType::Backup, &backups[..1], &limits));
        match decide(JobType::Backup, "ns", "mine_x", ("repo", true), &backups, &limits) {
            Decision::Wait(m) => {
                assert!(m.contains("limit is 2"), "{m}");
                assert!(m.contains("BACKUP_GLOBAL_CONCURRENT_BACKUP_JOBS_LIMIT"), "{m}");
                assert!(m.contains("backup-a (backup), backup-b (backup)"), "{m}");
            }
            Decision::Start => panic!("the third backup must wait"),
        }
        // Backups on another repository leave this one's slots free.
        let other: Vec<RunningJob> = backups
            .iter()
            .cloned()
            .map(|mut j| {
                j.repository_hash = "other".into();
                j
            })
            .collect();
        assert!(starts(JobType::Backup, &other, &limits));
        let restores = [
            job("ns", "restore-a", "restore", "repo"),
            job("ns", "restore-b", "restore", "repo"),
        ];
        assert!(
            !starts(JobType::Restore, &restores, &unlimited()),
            "exclusive anyway"
        );
        assert!(!starts(
            JobType::Archive,
            &[
                job("ns", "a", "archive", "repo"),
                job("ns", "b", "archive", "repo")
            ],
            &limits
        ));
    }

    #[test]
    fn a_waiting_message_names_this_namespaces_blockers_and_counts_the_others() {
        let running = [
            job("ns", "prune-weekly", "prune", "repo"),
            job("tenant-b", "restore-secret-name", "restore", "repo"),
        ];
        let Decision::Wait(m) = decide(
            JobType::Backup,
            "ns",
            "mine_x",
            ("repo", true),
            &running,
            &unlimited(),
        ) else {
            panic!("must wait");
        };
        assert!(m.contains("prune-weekly (prune)"), "{m}");
        assert!(m.contains("1 in other namespaces"), "{m}");
        assert!(!m.contains("restore-secret-name"), "{m}");
    }

    #[test]
    fn a_repository_not_known_to_exist_takes_one_job_at_a_time() {
        let backup = job("ns", "backup-a", "backup", "repo");
        let new_repo = |running: &[RunningJob]| {
            decide(
                JobType::Backup,
                "ns",
                "mine_x",
                ("repo", false),
                running,
                &unlimited(),
            )
        };
        assert_eq!(new_repo(&[]), Decision::Start, "the first one initialises it");
        match new_repo(std::slice::from_ref(&backup)) {
            Decision::Wait(m) => assert!(m.contains("not known to exist") && m.contains("backup-a"), "{m}"),
            Decision::Start => panic!("a second backup must not race the first one's init"),
        }
        assert!(
            starts(JobType::Backup, std::slice::from_ref(&backup), &unlimited()),
            "once known, backups share it"
        );
        let elsewhere = job("ns", "backup-b", "backup", "other-repo");
        assert_eq!(new_repo(&[elsewhere]), Decision::Start);
    }

    #[tokio::test]
    async fn a_repository_is_known_once_a_job_on_it_completed() {
        let (store, mut writer) = kube::runtime::reflector::store::<Job>();
        let job = |name: &str, repo: &str, condition: &str| -> Job {
            serde_json::from_value(serde_json::json!({
                "metadata": { "name": name, "namespace": "ns", "labels": {
                    "k8up.io/type": "backup", "k8up.io/repository-hash": repo, "k8up.io/owned-by": name,
                }},
                "status": { "conditions": [{ "type": condition, "status": "True" }] },
            }))
            .unwrap_or_default()
        };
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
        for j in [job("a", "done", "Complete"), job("b", "failed", "Failed")] {
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(j));
        }
        let gate = Gate::new(Some(store));
        assert!(!gate.initialised("done"), "not before the jobs were looked at");
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap())).unwrap();
        assert!(gate.running(&client).await.unwrap().is_empty());
        assert!(gate.initialised("done"));
        assert!(!gate.initialised("failed"), "a failed job proves nothing");
        assert!(!gate.initialised("never-seen"));
    }

    #[test]
    fn a_job_counts_as_running_until_it_has_a_final_condition() {
        let mut j: Job = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "backup-x", "namespace": "ns", "labels": {
                "k8up.io/type": "backup", "k8up.io/repository-hash": "repo", "k8up.io/owned-by": "backup_x",
            }},
        }))
        .unwrap_or_default();
        assert_eq!(
            RunningJob::from_job(&j).map(|r| r.job_type),
            Some("backup".to_string())
        );
        j.status = serde_json::from_value(serde_json::json!({
            "conditions": [{ "type": "Complete", "status": "True" }],
        }))
        .ok();
        assert_eq!(RunningJob::from_job(&j), None);
    }
}
