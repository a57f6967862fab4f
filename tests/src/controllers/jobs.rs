//! The Job controller: creates pods (owner reference, `controller-uid`/`job-name` labels) up to
//! `parallelism` until `completions` succeeded, retries failures with a growing delay while the
//! failures (failed pods, plus container restarts under `restartPolicy: OnFailure`) stay within
//! `backoffLimit`, enforces `activeDeadlineSeconds`, and reports `active/ready/succeeded/failed`,
//! `startTime/completionTime` and the conditions `SuccessCriteriaMet`+`Complete` or
//! `FailureTarget`+`Failed` like Kubernetes 1.31+. Finished Jobs are deleted after
//! `ttlSecondsAfterFinished`. Pods whose owning Job or Deployment is gone are deleted.
//!
//! `podFailurePolicy` (with `restartPolicy: Never`): the first rule a failed pod matches decides, by exit
//! codes (`In`/`NotIn`, optionally per container) or by pod conditions; `FailJob` fails the Job at once
//! (reason `PodFailurePolicy`, Kubernetes' message), `Ignore` does not count the pod against
//! `backoffLimit`, `Count` counts it as usual (`FailIndex` is treated as `Count`: no indexed Jobs here).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::{
    ControllerConfig, ControllerError, World, api_err, condition, controller_of, is_benign, now_json,
    pod_ready, pod_terminal,
};

/// Per Job: when the next pod may be created after a failure, and how many pods the controller
/// killed (they count as failed once gone).
#[derive(Default)]
pub struct Memory {
    next_create: HashMap<String, (usize, Timestamp)>,
    killed: HashMap<String, HashSet<String>>,
}

fn job_condition(prev: Option<&Value>, type_: &str, reason: &str, message: &str) -> Value {
    let mut c = condition(prev, type_, true, reason, message);
    if let Some(o) = c.as_object_mut()
        && let Some(t) = o.remove("lastUpdateTime")
    {
        o.insert("lastProbeTime".into(), t);
    }
    c
}

fn finished(j: &Job) -> Option<(&'static str, Timestamp)> {
    let conds = j.status.as_ref()?.conditions.as_ref()?;
    conds.iter().find_map(|c| {
        let t = c
            .last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or_else(Timestamp::now);
        match (c.type_.as_str(), c.status.as_str()) {
            ("Complete", "True") => Some(("Complete", t)),
            ("Failed", "True") => Some(("Failed", t)),
            _ => None,
        }
    })
}

fn restarts(p: &Pod) -> i32 {
    p.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .map(|c| c.restart_count)
        .sum()
}

fn terminated_at(p: &Pod) -> Option<Timestamp> {
    p.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .filter_map(|c| {
            c.state
                .as_ref()?
                .terminated
                .as_ref()?
                .finished_at
                .as_ref()
                .map(|t| t.0)
        })
        .max()
}

/// What the pod failure policy says about one failed pod.
#[derive(Debug, PartialEq)]
enum PolicyVerdict {
    /// Fail the Job with this message.
    FailJob(String),
    /// Do not count the failure.
    Ignore,
    /// Count it (no rule matched, or `Count`).
    Count,
}

fn policy_verdict(policy: Option<&k8s_openapi::api::batch::v1::PodFailurePolicy>, p: &Pod) -> PolicyVerdict {
    let Some(policy) = policy else {
        return PolicyVerdict::Count;
    };
    let status = p.status.clone().unwrap_or_default();
    let exits: Vec<(String, i32)> = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| {
            let code = c.state.as_ref()?.terminated.as_ref()?.exit_code;
            (code != 0).then(|| (c.name.clone(), code))
        })
        .collect();
    let pod = format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or_default(),
        p.metadata.name.as_deref().unwrap_or_default()
    );
    for (index, rule) in policy.rules.iter().enumerate() {
        let mut message = None;
        if let Some(req) = &rule.on_exit_codes {
            message = exits
                .iter()
                .filter(|(name, _)| req.container_name.as_ref().is_none_or(|c| c == name))
                .find(|(_, code)| match req.operator.as_str() {
                    "In" => req.values.contains(code),
                    "NotIn" => !req.values.contains(code),
                    _ => false,
                })
                .map(|(name, code)| {
                    format!(
                        "Container {name} for pod {pod} failed with exit code {code} matching {} rule at index {index}",
                        rule.action
                    )
                });
        }
        if let Some(patterns) = &rule.on_pod_conditions {
            let conditions = status.conditions.clone().unwrap_or_default();
            message = message.or_else(|| {
                patterns
                    .iter()
                    .find(|pat| {
                        conditions
                            .iter()
                            .any(|c| c.type_ == pat.type_ && c.status == pat.status)
                    })
                    .map(|pat| {
                        format!(
                            "Pod {pod} has condition {} matching {} rule at index {index}",
                            pat.type_, rule.action
                        )
                    })
            });
        }
        if let Some(message) = message {
            return match rule.action.as_str() {
                "FailJob" => PolicyVerdict::FailJob(message),
                "Ignore" => PolicyVerdict::Ignore,
                _ => PolicyVerdict::Count,
            };
        }
    }
    PolicyVerdict::Count
}

/// Reconciles every Job.
pub async fn reconcile(
    client: &Client,
    cfg: &ControllerConfig,
    world: &World,
    mem: &mut Memory,
) -> Result<(), ControllerError> {
    for j in &world.jobs {
        if j.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Err(e) = reconcile_one(client, cfg, world, mem, j).await {
            tracing::debug!(error = %crate::kubelet::error_chain(&e), job = ?j.metadata.name, "job reconcile failed");
        }
    }
    let live: HashSet<String> = world.jobs.iter().filter_map(|j| j.metadata.uid.clone()).collect();
    mem.next_create.retain(|k, _| live.contains(k));
    mem.killed.retain(|k, _| live.contains(k));
    Ok(())
}

async fn delete_pods(api: &Api<Pod>, pods: &[&Pod]) -> Result<(), ControllerError> {
    for p in pods {
        let pn = p.metadata.name.clone().unwrap_or_default();
        if let Err(e) = api.delete(&pn, &DeleteParams::default()).await
            && !is_benign(&e)
        {
            return Err(api_err(format!("delete pod {pn}"))(e));
        }
    }
    Ok(())
}

async fn reconcile_one(
    client: &Client,
    cfg: &ControllerConfig,
    world: &World,
    mem: &mut Memory,
    j: &Job,
) -> Result<(), ControllerError> {
    let ns = j.metadata.namespace.clone().unwrap_or_default();
    let name = j.metadata.name.clone().unwrap_or_default();
    let uid = j.metadata.uid.clone().unwrap_or_default();
    let spec = j.spec.clone().unwrap_or_default();
    let jobs_api: Api<Job> = Api::namespaced(client.clone(), &ns);
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pods: Vec<&Pod> = world
        .pods
        .iter()
        .filter(|p| {
            p.metadata.namespace.as_deref() == Some(&ns)
                && controller_of(&p.metadata).is_some_and(|o| o.uid == uid)
        })
        .collect();
    let active: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|p| !pod_terminal(p) && p.metadata.deletion_timestamp.is_none())
        .collect();
    let terminating = pods
        .iter()
        .filter(|p| !pod_terminal(p) && p.metadata.deletion_timestamp.is_some())
        .count();

    if let Some((_, at)) = finished(j) {
        // A finished Job keeps no running pods.
        delete_pods(&pods_api, &active).await?;
        if let Some(ttl) = spec.ttl_seconds_after_finished
            && Timestamp::now().duration_since(at).as_secs() >= i64::from(ttl)
        {
            let dp = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..Default::default()
            };
            if let Err(e) = jobs_api.delete(&name, &dp).await
                && !is_benign(&e)
            {
                return Err(api_err(format!("delete finished job {ns}/{name}"))(e));
            }
        }
        return Ok(());
    }
    if spec.suspend == Some(true) {
        delete_pods(&pods_api, &active).await?;
        return Ok(());
    }

    let completions = spec.completions.unwrap_or(1);
    let parallelism = spec.parallelism.unwrap_or(1);
    let backoff_limit = spec.backoff_limit.unwrap_or(6);
    let on_failure = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        == Some("OnFailure");
    let succeeded = pods
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"))
        .count() as i32;
    let present: HashSet<String> = pods.iter().filter_map(|p| p.metadata.uid.clone()).collect();
    let killed_gone = mem
        .killed
        .get(&uid)
        .map(|k| k.iter().filter(|u| !present.contains(*u)).count())
        .unwrap_or(0) as i32;
    let verdicts: Vec<PolicyVerdict> = pods
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
        .map(|p| policy_verdict(spec.pod_failure_policy.as_ref(), p))
        .collect();
    let failed_pods = verdicts.iter().filter(|v| **v != PolicyVerdict::Ignore).count() as i32;
    let fail_job = verdicts.into_iter().find_map(|v| match v {
        PolicyVerdict::FailJob(message) => Some(message),
        _ => None,
    });
    let prev_failed = j.status.as_ref().and_then(|s| s.failed).unwrap_or(0);
    let failed = (failed_pods + killed_gone).max(prev_failed);
    let failures = failed
        + if on_failure {
            pods.iter().map(|p| restarts(p)).sum::<i32>()
        } else {
            0
        };
    let prev_status = j.status.clone().unwrap_or_default();
    let start_time = prev_status
        .start_time
        .as_ref()
        .map(|t| t.0)
        .unwrap_or_else(Timestamp::now);
    let prev_conds = serde_json::to_value(&prev_status.conditions).ok();

    let mut conditions: Vec<Value> = Vec::new();
    let mut completion_time = None;
    let mut kill = false;
    if succeeded >= completions {
        conditions.push(job_condition(
            prev_conds.as_ref(),
            "SuccessCriteriaMet",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        ));
        conditions.push(job_condition(
            prev_conds.as_ref(),
            "Complete",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        ));
        completion_time = Some(now_json());
        kill = true;
    } else if let Some(message) = &fail_job {
        conditions.push(job_condition(
            prev_conds.as_ref(),
            "FailureTarget",
            "PodFailurePolicy",
            message,
        ));
        conditions.push(job_condition(
            prev_conds.as_ref(),
            "Failed",
            "PodFailurePolicy",
            message,
        ));
        kill = true;
    } else if failures > backoff_limit {
        conditions.push(job_condition(
            prev_conds.as_ref(),
            "FailureTarget",
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ));
        conditions.push(job_condition(
            prev_conds.as_ref(),
            "Failed",
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ));
        kill = true;
    } else if let Some(ads) = spec.active_deadline_seconds
        && Timestamp::now().duration_since(start_time).as_secs() >= ads
    {
        conditions.push(job_condition(
            prev_conds.as_ref(),
            "FailureTarget",
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ));
        conditions.push(job_condition(
            prev_conds.as_ref(),
            "Failed",
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ));
        kill = true;
    }

    let mut newly_killed = 0;
    if kill {
        let set = mem.killed.entry(uid.clone()).or_default();
        for p in &active {
            if let Some(u) = &p.metadata.uid
                && set.insert(u.clone())
            {
                newly_killed += 1;
            }
        }
        delete_pods(&pods_api, &active).await?;
    } else {
        let want = parallelism.min(completions - succeeded).max(0) as usize;
        if active.len() < want {
            // After a failure, wait `job_backoff * 2^(failures-1)` (at most 10 s) from the last one.
            let last_failure = pods
                .iter()
                .filter(|p| pod_terminal(p))
                .filter_map(|p| terminated_at(p))
                .max();
            let delay = if failures > 0 {
                cfg.job_backoff
                    .saturating_mul(1 << (failures - 1).clamp(0, 6))
                    .min(Duration::from_secs(10))
            } else {
                Duration::ZERO
            };
            let ready_at = last_failure.map(|t| t + delay).unwrap_or_else(Timestamp::now);
            if Timestamp::now() >= ready_at {
                for _ in active.len()..want {
                    create_pod(&pods_api, j).await?;
                }
            } else {
                mem.next_create.insert(uid.clone(), (want, ready_at));
            }
        }
    }

    let failed_total = if kill && !conditions.iter().any(|c| c["type"] == "Complete") {
        failed + newly_killed
    } else {
        failed
    };
    let ready = active.iter().filter(|p| pod_ready(p)).count();
    let mut status = json!({
        "active": if kill { 0 } else { active.len() },
        "ready": if kill { 0 } else { ready },
        "succeeded": succeeded,
        "failed": failed_total,
        "terminating": terminating,
        "startTime": prev_status.start_time.map(|t| serde_json::to_value(t).unwrap_or_default()).unwrap_or_else(now_json),
        "uncountedTerminatedPods": {},
    });
    if let Some(ct) = completion_time {
        status["completionTime"] = ct;
    }
    if !conditions.is_empty() {
        status["conditions"] = Value::Array(conditions);
    }
    let old = serde_json::to_value(j.status.clone().unwrap_or_default()).unwrap_or_default();
    let changed = status.as_object().is_some_and(|o| {
        o.iter()
            .any(|(k, v)| k != "uncountedTerminatedPods" && old.get(k) != Some(v))
    });
    if changed
        && let Err(e) = jobs_api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": status })),
            )
            .await
        && !is_benign(&e)
    {
        return Err(api_err(format!("update status of job {ns}/{name}"))(e));
    }
    Ok(())
}

async fn create_pod(api: &Api<Pod>, j: &Job) -> Result<(), ControllerError> {
    let name = j.metadata.name.clone().unwrap_or_default();
    let uid = j.metadata.uid.clone().unwrap_or_default();
    let template = j.spec.clone().unwrap_or_default().template;
    let mut meta = template.metadata.clone().unwrap_or_default();
    let mut labels = meta.labels.take().unwrap_or_default();
    for (k, v) in [
        ("controller-uid", &uid),
        ("job-name", &name),
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
    ] {
        labels.insert(k.to_string(), v.clone());
    }
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": format!("{name}-"),
            "labels": labels,
            "annotations": meta.annotations,
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid,
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": template.spec,
    }))
    .unwrap_or_default();
    api.create(&PostParams::default(), &pod)
        .await
        .map_err(api_err(format!("create pod for job {name}")))?;
    Ok(())
}

/// Deletes pods whose controlling Job or Deployment no longer exists (a safety net beside the API
/// server's garbage collector).
pub async fn collect_orphans(client: &Client, world: &World) -> Result<(), ControllerError> {
    let owners: HashSet<&str> = world
        .jobs
        .iter()
        .filter_map(|j| j.metadata.uid.as_deref())
        .chain(world.deployments.iter().filter_map(|d| d.metadata.uid.as_deref()))
        .collect();
    for p in &world.pods {
        let Some(o) = controller_of(&p.metadata) else {
            continue;
        };
        let watched = (o.kind == "Job" && o.api_version == "batch/v1")
            || (o.kind == "Deployment" && o.api_version == "apps/v1");
        if !watched || owners.contains(o.uid.as_str()) || p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let pn = p.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        if let Err(e) = api.delete(&pn, &DeleteParams::default()).await
            && !is_benign(&e)
        {
            return Err(api_err(format!("delete orphaned pod {ns}/{pn}"))(e));
        }
    }
    Ok(())
}
