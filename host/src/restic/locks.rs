//! Waiting for other clients' locks before prune and check, and the rule for removing a lock.
//!
//! The rule (never remove a live lock):
//! 1. Every round runs `restic unlock` *without* `--remove-all`: restic removes only what it considers stale
//!    (not refreshed for 30 minutes, or created on this very host by a process that no longer exists).
//! 2. A remaining lock is *orphaned* when all of these hold:
//!    - it was not refreshed for `--lockOrphanAfter` (default 15m; a live restic refreshes its locks every
//!      5 minutes, so a live process would have refreshed it at least twice),
//!    - its `hostname` is not the name of an existing pod in our namespace (inside a Job pod restic's hostname
//!      is the pod name), as told by the cluster; when the cluster cannot be asked, nothing is orphaned.
//! 3. Orphaned locks are removed with `restic unlock --remove-all` only when *every* lock present is orphaned,
//!    because restic cannot remove one chosen lock; the lock list is read again right before, so a lock that
//!    appeared meanwhile cancels the removal. A client that locks in the few milliseconds between that last
//!    listing and the removal is the remaining risk (restic 0.17+ notices a removed lock and aborts).
//! 4. Otherwise wait and retry until `--lockWait`; past it, fail naming the blocking lock (id, host, pid, age).

use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use super::Error;
use super::command::Globals;
use super::json::Lock;
use super::runner::{ResticError, Runner};

/// How often the lock list is polled while waiting.
const POLL: Duration = Duration::from_secs(5);

/// A lock in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoLock {
    /// Lock file ID.
    pub id: String,
    /// Its content.
    pub lock: Lock,
}

impl RepoLock {
    /// One line naming the lock: id, host, pid, age, kind.
    pub fn describe(&self) -> String {
        let age = (Utc::now() - self.lock.time).num_seconds().max(0);
        format!(
            "lock {} held by host {:?} pid {} ({}, {}s old)",
            self.id.get(..8).unwrap_or(&self.id),
            self.lock.hostname,
            self.lock.pid,
            if self.lock.exclusive {
                "exclusive"
            } else {
                "shared"
            },
            age
        )
    }
}

/// Tells whether a pod of that name exists (the lock's hostname); `None` when unknown.
pub trait PodLookup: Send + Sync {
    /// Whether the pod exists.
    fn pod_exists<'a>(&'a self, name: &'a str) -> futures::future::BoxFuture<'a, Option<bool>>;
}

/// Asks the API server (read-only `get pod` in the namespace).
pub struct KubePods {
    api: Api<Pod>,
}

impl KubePods {
    /// Pods of `namespace`.
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
        }
    }
}

impl PodLookup for KubePods {
    fn pod_exists<'a>(&'a self, name: &'a str) -> futures::future::BoxFuture<'a, Option<bool>> {
        Box::pin(async move {
            match self.api.get_opt(name).await {
                Ok(p) => Some(p.is_some()),
                Err(e) => {
                    tracing::warn!(pod = name, error = %e, "cannot tell whether the lock's pod exists");
                    None
                }
            }
        })
    }
}

/// What to wait for.
pub struct LockPolicy<'a> {
    /// Give up after this long.
    pub wait: Duration,
    /// Age (since last refresh) from which a lock of a vanished pod is orphaned.
    pub orphan_after: Duration,
    /// Cluster lookup of lock owners; `None` disables orphan removal.
    pub pods: Option<&'a dyn PodLookup>,
}

/// The locks currently in the repository (vanished ones skipped).
pub async fn list(runner: &Runner, g: &Globals) -> Result<Vec<RepoLock>, Error> {
    let out = runner.output(&g.list_locks()).await.map_err(Error::Locks)?;
    let mut locks = Vec::new();
    for id in out.stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match runner.output(&g.cat_lock(id)).await {
            Ok(o) => match serde_json::from_str::<Lock>(o.stdout.trim()) {
                Ok(lock) => locks.push(RepoLock {
                    id: id.to_owned(),
                    lock,
                }),
                Err(e) => tracing::warn!(lock = id, error = %e, "unreadable lock"),
            },
            // Released between listing and reading.
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(Error::Locks(e)),
        }
    }
    Ok(locks)
}

fn is_not_found(e: &ResticError) -> bool {
    e.stderr().is_some_and(|s| {
        s.contains("no such file") || s.contains("not found") || s.contains("does not exist")
    })
}

async fn is_orphaned(l: &RepoLock, policy: &LockPolicy<'_>) -> bool {
    let Some(pods) = policy.pods else { return false };
    let age = (Utc::now() - l.lock.time).to_std().unwrap_or(Duration::ZERO);
    if age < policy.orphan_after || l.lock.hostname.is_empty() {
        return false;
    }
    pods.pod_exists(&l.lock.hostname).await == Some(false)
}

/// Waits until no other client holds a lock, removing stale and orphaned locks by the rule above. Returns
/// the descriptions of the locks it removed as orphaned.
pub async fn wait_for_locks(
    runner: &Runner,
    g: &Globals,
    policy: &LockPolicy<'_>,
) -> Result<Vec<String>, Error> {
    let started = tokio::time::Instant::now();
    let deadline = started + policy.wait;
    let mut removed = Vec::new();
    loop {
        if let Err(e) = runner.output(&g.unlock(false)).await {
            tracing::warn!(error = %e, "failed to remove stale locks");
        }
        let locks = list(runner, g).await?;
        let Some(first) = locks.first() else {
            return Ok(removed);
        };
        let mut all_orphaned = true;
        for l in &locks {
            if !is_orphaned(l, policy).await {
                all_orphaned = false;
                break;
            }
        }
        if all_orphaned {
            // Read again right before removing: a lock that appeared meanwhile must survive.
            let again = list(runner, g).await?;
            let same = again.len() == locks.len() && again.iter().all(|a| locks.iter().any(|l| l.id == a.id));
            if same {
                for l in &locks {
                    tracing::warn!("removing orphaned {}: its pod no longer exists", l.describe());
                    removed.push(l.describe());
                }
                runner.output(&g.unlock(true)).await.map_err(Error::Locks)?;
                continue;
            }
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(Error::LockTimeout {
                waited: format!("{}s", policy.wait.as_secs()),
                lock: locks
                    .iter()
                    .map(RepoLock::describe)
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        tracing::info!("waiting for {}", first.describe());
        tokio::time::sleep(POLL.min(deadline - now)).await;
    }
}
