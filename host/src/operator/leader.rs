//! Leader election with a `coordination.k8s.io/v1` Lease, with client-go's rules: the holder renews the
//! Lease every retry period; a candidate takes it over only once `renewTime + leaseDurationSeconds` has
//! passed; every write carries the `resourceVersion` it read, so of two candidates racing for an expired
//! Lease exactly one wins (the other gets 409 Conflict). A leader that cannot renew within the renew
//! deadline stops leading before its Lease can expire, so two replicas never reconcile at once as long as
//! clocks agree within `lease duration - renew deadline`.
//!
//! No crate does this for kube 5 (kube-leader-election and kube-lease-manager pin older kube releases,
//! which would put a second kube client into the binary), hence the small state machine here.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use super::controller::Controllers;
use super::settings::LeaderElection;

/// Who holds the Lease, as this candidate sees it after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// This candidate holds the Lease (acquired or renewed just now).
    Leading,
    /// Another holder's Lease is still valid.
    Held {
        /// The holder's identity.
        holder: String,
    },
}

/// One candidate for the Lease.
#[derive(Debug, Clone)]
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: LeaderElection,
}

impl Elector {
    /// A candidate `identity` for the Lease `settings.lease_name` in `namespace`.
    pub fn new(
        client: Client,
        namespace: &str,
        identity: impl Into<String>,
        timing: LeaderElection,
    ) -> Elector {
        Elector {
            api: Api::namespaced(client, namespace),
            name: timing.lease_name.clone(),
            identity: identity.into(),
            timing,
        }
    }

    /// This candidate's identity (the Lease's `holderIdentity` while it leads).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Acquires the Lease if it is free or expired, renews it if this candidate holds it.
    pub async fn try_acquire_or_renew(&self) -> Result<Attempt, kube::Error> {
        let now = Timestamp::now();
        let duration_secs = i32::try_from(self.timing.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leading),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::Held {
                    holder: "another candidate (created it first)".to_string(),
                }),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == self.identity;
        if !mine && !holder.is_empty() {
            let valid_for_ms = i64::from(spec.lease_duration_seconds.unwrap_or(duration_secs)) * 1000;
            let renewed_ms = spec.renew_time.as_ref().map_or(0, |t| t.0.as_millisecond());
            if renewed_ms + valid_for_ms > now.as_millisecond() {
                return Ok(Attempt::Held { holder });
            }
        }
        if !mine {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(duration_secs);
        // `replace` sends the resourceVersion read above: a concurrent writer makes this a 409.
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(Attempt::Leading),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::Held {
                holder: "another candidate (won the race)".to_string(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (if this candidate holds it), so another replica takes over at its next attempt
    /// instead of after the lease duration.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits until this candidate leads (or `token` is cancelled: `false`).
    pub async fn acquire(&self, token: &CancellationToken) -> bool {
        let mut last_holder = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "became the leader");
                    return true;
                }
                Ok(Attempt::Held { holder }) => {
                    if last_holder.as_ref() != Some(&holder) {
                        tracing::info!(lease = %self.name, %holder, "another replica leads; waiting");
                        last_holder = Some(holder);
                    }
                }
                Err(e) => {
                    tracing::warn!(lease = %self.name, error = %e, "failed to read or write the leader Lease")
                }
            }
            tokio::select! {
                () = token.cancelled() => return false,
                () = tokio::time::sleep(self.timing.retry_period) => {}
            }
        }
    }

    /// Renews the Lease every retry period until `token` is cancelled (`true`) or leadership is lost
    /// (`false`): another holder took it, or no renewal succeeded within the renew deadline.
    pub async fn keep(&self, token: &CancellationToken) -> bool {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = token.cancelled() => return true,
                () = tokio::time::sleep(self.timing.retry_period) => {}
            }
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => last_renewal = tokio::time::Instant::now(),
                Ok(Attempt::Held { holder }) => {
                    tracing::warn!(lease = %self.name, %holder, "lost the leader Lease");
                    return false;
                }
                Err(e) => tracing::warn!(lease = %self.name, error = %e, "failed to renew the leader Lease"),
            }
            if last_renewal.elapsed() > self.timing.renew_deadline {
                tracing::warn!(
                    lease = %self.name,
                    deadline = ?self.timing.renew_deadline,
                    "could not renew the leader Lease within the renew deadline; stepping down"
                );
                return false;
            }
        }
    }
}

/// A default identity: the pod name (Downward API `POD_NAME`) or the host name, plus a random suffix so two
/// processes on one host differ.
pub fn default_identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|n| !n.is_empty()))
        .unwrap_or_else(|| "k8up-operator".to_string());
    format!("{base}_{:08x}", rand::random::<u32>())
}

/// Runs the controllers `start` makes while this candidate leads, until `token` is cancelled: waits for the
/// Lease, starts them, renews; when leadership is lost they are stopped and the candidate waits again. On
/// cancellation the controllers are stopped first, then the Lease is released for the next replica.
pub async fn lead_while_elected<F>(elector: Elector, token: CancellationToken, mut start: F)
where
    F: FnMut() -> Controllers,
{
    while elector.acquire(&token).await {
        let controllers = start();
        let cancelled = elector.keep(&token).await;
        controllers.shutdown().await;
        if cancelled {
            if let Err(e) = elector.release().await {
                tracing::warn!(error = %e, "failed to release the leader Lease; the next leader waits for it to expire");
            }
            return;
        }
        tracing::info!(identity = %elector.identity(), "stopped the controllers after losing the leader Lease");
    }
}
