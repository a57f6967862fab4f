//! Status step (pure): the outcome of a reconcile becomes K8up's conditions and `started`/`finished` flags.
//!
//! Nothing here talks to the API server; `driver::mod` writes the result through the status subresource,
//! and only when it differs from what is stored (so an unchanged outcome causes no write and no new watch
//! event). `lastTransitionTime` is kept whenever a condition's `status` did not change.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{Status, condition_reason as reason, condition_type as ctype};

/// Reason of `Ready=False` when the spec cannot be run as written (k8up-rs addition to K8up's reasons).
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";

/// Where one Job stands, read from its conditions (the Job controller's verdict, not pod counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Neither `Complete` nor `Failed` is true yet.
    Running,
    /// `Complete=True`.
    Succeeded,
    /// `Failed=True` (backoff limit or deadline exceeded).
    Failed,
}

/// The state of a Job from its status conditions.
pub fn job_state(job: &Job) -> JobState {
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let is_true = |t: &str| conditions.iter().any(|c| c.type_ == t && c.status == "True");
    if is_true("Failed") {
        JobState::Failed
    } else if is_true("Complete") {
        JobState::Succeeded
    } else {
        JobState::Running
    }
}

/// K8up's per-Job message: "job '<name>' has X active, Y succeeded and Z failed pods".
pub fn job_message(job: &Job) -> String {
    let status = job.status.clone().unwrap_or_default();
    format!(
        "job '{}' has {} active, {} succeeded and {} failed pods",
        job.metadata.name.as_deref().unwrap_or_default(),
        status.active.unwrap_or(0),
        status.succeeded.unwrap_or(0),
        status.failed.unwrap_or(0),
    )
}

/// What this reconcile found out about the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The spec cannot be run; the message says what to change. Waits for a change of the object.
    InvalidSpec(String),
    /// A Job could not be created; retried with backoff.
    CreationFailed(String),
    /// Not started: another Job on the repository (or the concurrency limit) is in the way.
    Waiting(String),
    /// Jobs exist and at least one is still running.
    Running(String),
    /// Every Job succeeded, or there was nothing to do.
    Succeeded(String),
    /// At least one Job failed and none is running any more.
    Failed(String),
}

impl Outcome {
    /// Whether this outcome ends the action (`Completed` is set).
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Succeeded(_) | Self::Failed(_))
    }
}

/// Aggregates the owned Jobs like K8up's backup controller: all succeeded -> Succeeded, any failed and none
/// running -> Failed, else Running. `owned_by` is the `k8up.io/owned-by` value (`backup_<name>`).
pub fn outcome_from_jobs(owned_by: &str, jobs: &[Job]) -> Outcome {
    if jobs.is_empty() {
        // The object was started but its Jobs are gone (deleted by hand): it can never finish otherwise.
        return Outcome::Failed(format!("\"{owned_by}\" was started but its jobs no longer exist"));
    }
    let states: Vec<JobState> = jobs.iter().map(job_state).collect();
    let count = |s: JobState| states.iter().filter(|x| **x == s).count();
    let (succeeded, failed, running) = (
        count(JobState::Succeeded),
        count(JobState::Failed),
        count(JobState::Running),
    );
    let message = if jobs.len() == 1 {
        job_message(&jobs[0])
    } else {
        format!("\"{owned_by}\" has {succeeded} succeeded, {failed} failed, and {running} started jobs")
    };
    if running > 0 {
        Outcome::Running(message)
    } else if failed > 0 {
        Outcome::Failed(message)
    } else {
        Outcome::Succeeded(message)
    }
}

/// Sets `new` in `conditions`, keeping `lastTransitionTime` when the condition's status is unchanged.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) {
    if let Some(old) = conditions.iter_mut().find(|c| c.type_ == new.type_) {
        if old.status == new.status {
            new.last_transition_time = old.last_transition_time.clone();
        }
        *old = new;
    } else {
        conditions.push(new);
    }
}

/// Removes the condition of type `type_`, if present.
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// A condition with the given fields.
pub fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: now.clone(),
    }
}

/// The status after `outcome`, starting from `previous`. Pure: the same inputs give the same status, and an
/// unchanged outcome gives back `previous` unchanged (apart from `observedGeneration`).
pub fn next_status(previous: &Status, outcome: &Outcome, generation: Option<i64>, now: &Time) -> Status {
    let mut status = previous.clone();
    let cond = |t: &str, s: bool, r: &str, m: &str| condition(t, s, r, m, generation, now);
    match outcome {
        Outcome::InvalidSpec(message) => {
            set_condition(
                &mut status.conditions,
                cond(ctype::READY, false, REASON_INVALID_SPEC, message),
            );
        }
        Outcome::CreationFailed(message) => {
            set_condition(
                &mut status.conditions,
                cond(ctype::READY, false, reason::CREATION_FAILED, message),
            );
        }
        Outcome::Waiting(message) => {
            set_condition(
                &mut status.conditions,
                cond(ctype::READY, false, reason::WAITING, message),
            );
        }
        Outcome::Running(message) => {
            status.started = true;
            set_condition(
                &mut status.conditions,
                cond(ctype::READY, true, reason::READY, message),
            );
            set_condition(
                &mut status.conditions,
                cond(ctype::PROGRESSING, true, reason::STARTED, message),
            );
        }
        Outcome::Succeeded(message) | Outcome::Failed(message) => {
            let completion = if matches!(outcome, Outcome::Succeeded(_)) {
                reason::SUCCEEDED
            } else {
                reason::FAILED
            };
            status.started = true;
            status.finished = true;
            // K8up removes `Ready` when an object finishes; `Completed` carries the verdict from now on.
            remove_condition(&mut status.conditions, ctype::READY);
            set_condition(
                &mut status.conditions,
                cond(ctype::PROGRESSING, false, reason::FINISHED, message),
            );
            set_condition(
                &mut status.conditions,
                cond(ctype::COMPLETED, true, completion, message),
            );
        }
    }
    status
}

/// K8up's "succeeded": `Completed` True with reason `Succeeded` (and no failed pre-backup).
pub fn is_succeeded(status: &Status) -> bool {
    status
        .condition(ctype::COMPLETED)
        .is_some_and(|c| c.status == "True" && c.reason == reason::SUCCEEDED)
        && !pre_backup_failed(status)
}

/// K8up's "failed": `Completed` True with another reason, or a failed pre-backup.
pub fn is_failed(status: &Status) -> bool {
    status
        .condition(ctype::COMPLETED)
        .is_some_and(|c| c.status == "True" && c.reason != reason::SUCCEEDED)
        || pre_backup_failed(status)
}

/// Whether the action finished (succeeded or failed).
pub fn is_finished(status: &Status) -> bool {
    is_succeeded(status) || is_failed(status)
}

fn pre_backup_failed(status: &Status) -> bool {
    status.condition(ctype::PRE_BACKUP_POD_READY).is_some_and(|c| {
        c.status == "False"
            && ![
                reason::SUCCEEDED,
                reason::WAITING,
                reason::NO_PRE_BACKUP_PODS_FOUND,
                reason::READY,
            ]
            .contains(&c.reason.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap_or_default())
    }

    fn job(name: &str, cond: Option<&str>, active: i32) -> Job {
        let mut j = Job::default();
        j.metadata.name = Some(name.into());
        j.status = Some(JobStatus {
            active: Some(active),
            conditions: cond.map(|t| {
                vec![JobCondition {
                    type_: t.into(),
                    status: "True".into(),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        });
        j
    }

    fn types(s: &Status) -> Vec<(String, String, String)> {
        let mut v: Vec<_> = s
            .conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn an_active_job_keeps_the_action_progressing_with_ready_and_started() {
        let outcome = outcome_from_jobs("backup_b", &[job("backup-b-0", None, 1)]);
        assert_eq!(
            outcome,
            Outcome::Running("job 'backup-b-0' has 1 active, 0 succeeded and 0 failed pods".into())
        );
        let s = next_status(&Status::default(), &outcome, Some(1), &at(10));
        assert!(s.started && !s.finished);
        assert_eq!(
            types(&s),
            vec![
                ("Progressing".into(), "True".into(), "Started".into()),
                ("Ready".into(), "True".into(), "Ready".into()),
            ]
        );
    }

    #[test]
    fn completed_jobs_finish_the_action_and_remove_ready() {
        let running = next_status(
            &Status::default(),
            &outcome_from_jobs("backup_b", &[job("j", None, 1)]),
            None,
            &at(10),
        );
        let outcome = outcome_from_jobs("backup_b", &[job("j", Some("Complete"), 0)]);
        let done = next_status(&running, &outcome, None, &at(20));
        assert!(done.started && done.finished && is_succeeded(&done) && !is_failed(&done));
        assert_eq!(
            types(&done),
            vec![
                ("Completed".into(), "True".into(), "Succeeded".into()),
                ("Progressing".into(), "False".into(), "Finished".into()),
            ]
        );
    }

    #[test]
    fn one_failed_job_among_finished_ones_fails_the_action_only_when_none_runs() {
        let jobs = [
            job("a", Some("Complete"), 0),
            job("b", Some("Failed"), 0),
            job("c", None, 1),
        ];
        assert!(matches!(
            outcome_from_jobs("backup_x", &jobs),
            Outcome::Running(_)
        ));
        let outcome = outcome_from_jobs("backup_x", &jobs[..2]);
        assert_eq!(
            outcome,
            Outcome::Failed("\"backup_x\" has 1 succeeded, 1 failed, and 0 started jobs".into())
        );
        let s = next_status(&Status::default(), &outcome, None, &at(1));
        assert!(is_failed(&s) && !is_succeeded(&s));
    }

    #[test]
    fn last_transition_time_is_kept_while_a_condition_keeps_its_status() {
        let outcome = Outcome::Running("one".into());
        let first = next_status(&Status::default(), &outcome, None, &at(10));
        let second = next_status(&first, &Outcome::Running("two".into()), None, &at(99));
        let ready = second.condition("Ready").map(|c| c.last_transition_time.clone());
        assert_eq!(ready, Some(at(10)));
        assert_eq!(second.condition("Ready").map(|c| c.message.as_str()), Some("two"));
        let same = next_status(&second, &Outcome::Running("two".into()), None, &at(200));
        assert_eq!(same, second, "an unchanged outcome must not change the status");
        let done = next_status(&second, &Outcome::Succeeded("ok".into()), None, &at(300));
        let progressing = done
            .condition("Progressing")
            .map(|c| c.last_transition_time.clone());
        assert_eq!(
            progressing,
            Some(at(300)),
            "Progressing flipped to False, so its time moves"
        );
    }

    #[test]
    fn an_invalid_spec_sets_ready_false_with_the_message_and_starts_nothing() {
        let s = next_status(
            &Status::default(),
            &Outcome::InvalidSpec("set spec.backend".into()),
            Some(3),
            &at(1),
        );
        let ready = s.condition("Ready");
        assert_eq!(ready.map(|c| c.reason.as_str()), Some(REASON_INVALID_SPEC));
        assert_eq!(ready.map(|c| c.message.as_str()), Some("set spec.backend"));
        assert_eq!(ready.and_then(|c| c.observed_generation), Some(3));
        assert!(!s.started && !s.finished && !is_finished(&s));
    }

    #[test]
    fn jobs_that_vanished_after_the_start_fail_the_action() {
        assert!(matches!(outcome_from_jobs("check_c", &[]), Outcome::Failed(_)));
    }
}
