//! What the kubelet knows about the containers it runs, and the pod status computed from it.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// The IP every pod and node reports (everything runs on this host).
pub const POD_IP: &str = "127.0.0.1";

/// How a finished container attempt ended.
#[derive(Debug, Clone)]
pub struct Terminated {
    pub exit_code: i32,
    pub reason: String,
    pub message: Option<String>,
    pub started: Timestamp,
    pub finished: Timestamp,
}

/// The state of one container attempt.
#[derive(Debug, Clone)]
pub enum Phase {
    Waiting { reason: String, message: Option<String> },
    Running { started: Timestamp, pid: u32 },
    Terminated(Terminated),
}

/// Everything about one container of a pod.
#[derive(Debug, Clone)]
pub struct ContainerRecord {
    pub name: String,
    pub image: String,
    pub init: bool,
    pub phase: Phase,
    pub restart_count: i32,
    pub last_terminated: Option<Terminated>,
    /// No further attempt will be made (terminated for good).
    pub done: bool,
    /// Directory of this container's logs (`<attempt>.log`).
    pub log_dir: PathBuf,
    /// The environment its processes (and execs) get.
    pub env: Vec<(String, String)>,
    /// Process groups of running execs, killed with the container.
    pub exec_groups: Vec<u32>,
}

impl ContainerRecord {
    /// A container that has not started yet.
    pub fn new(name: &str, image: &str, init: bool, log_dir: PathBuf) -> Self {
        ContainerRecord {
            name: name.to_string(),
            image: image.to_string(),
            init,
            phase: Phase::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
            restart_count: 0,
            last_terminated: None,
            done: false,
            log_dir,
            env: Vec::new(),
            exec_groups: Vec::new(),
        }
    }

    /// The log file of the current attempt.
    pub fn log_path(&self, attempt: i32) -> PathBuf {
        self.log_dir.join(format!("{attempt}.log"))
    }

    fn status(&self) -> ContainerStatus {
        ContainerStatus {
            name: self.name.clone(),
            image: self.image.clone(),
            image_id: format!("sandbox://{}", self.image),
            container_id: Some(format!("sandbox://{}", self.name)),
            restart_count: self.restart_count,
            ready: matches!(self.phase, Phase::Running { .. }),
            started: Some(matches!(self.phase, Phase::Running { .. })),
            state: Some(state_of(&self.phase)),
            last_state: self.last_terminated.as_ref().map(|t| ContainerState {
                terminated: Some(terminated(t)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

fn terminated(t: &Terminated) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: t.exit_code,
        reason: Some(t.reason.clone()),
        message: t.message.clone(),
        started_at: Some(Time(t.started)),
        finished_at: Some(Time(t.finished)),
        ..Default::default()
    }
}

fn state_of(p: &Phase) -> ContainerState {
    match p {
        Phase::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..Default::default()
        },
        Phase::Running { started, .. } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(*started)),
            }),
            ..Default::default()
        },
        Phase::Terminated(t) => ContainerState {
            terminated: Some(terminated(t)),
            ..Default::default()
        },
    }
}

/// The pod's phase from its containers, as the kubelet computes it.
pub fn pod_phase(records: &[ContainerRecord]) -> &'static str {
    let (init, main): (Vec<_>, Vec<_>) = records.iter().partition(|c| c.init);
    let failed =
        |c: &&ContainerRecord| c.done && matches!(&c.phase, Phase::Terminated(t) if t.exit_code != 0);
    if init.iter().any(failed) || (!main.is_empty() && main.iter().all(|c| c.done) && main.iter().any(failed))
    {
        return "Failed";
    }
    if !main.is_empty() && main.iter().all(|c| c.done) {
        return "Succeeded";
    }
    let started = |c: &&ContainerRecord| {
        matches!(c.phase, Phase::Running { .. } | Phase::Terminated(_)) || c.restart_count > 0
    };
    if main.iter().any(started) {
        "Running"
    } else {
        "Pending"
    }
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, since: Timestamp) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        last_transition_time: Some(Time(since)),
        ..Default::default()
    }
}

/// The whole pod status.
pub fn pod_status(records: &[ContainerRecord], start_time: Timestamp) -> PodStatus {
    let phase = pod_phase(records);
    let (init, main): (Vec<_>, Vec<_>) = records.iter().partition(|c| c.init);
    let initialized = init.iter().all(|c| c.done);
    let ready = !main.is_empty() && main.iter().all(|c| matches!(c.phase, Phase::Running { .. }));
    let terminal_reason = matches!(phase, "Succeeded" | "Failed").then_some("PodCompleted");
    let not_ready_reason = terminal_reason.or((!ready).then_some("ContainersNotReady"));
    PodStatus {
        phase: Some(phase.to_string()),
        host_ip: Some(POD_IP.into()),
        pod_ip: Some(POD_IP.into()),
        pod_ips: Some(vec![PodIP { ip: POD_IP.into() }]),
        start_time: Some(Time(start_time)),
        qos_class: Some("BestEffort".into()),
        conditions: Some(vec![
            condition("PodScheduled", true, None, start_time),
            condition("Initialized", initialized, None, start_time),
            condition(
                "ContainersReady",
                ready,
                if ready { None } else { not_ready_reason },
                start_time,
            ),
            condition(
                "Ready",
                ready,
                if ready { None } else { not_ready_reason },
                start_time,
            ),
        ]),
        init_container_statuses: (!init.is_empty()).then(|| init.iter().map(|c| c.status()).collect()),
        container_statuses: Some(main.iter().map(|c| c.status()).collect()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(phase: Phase, done: bool) -> ContainerRecord {
        let mut r = ContainerRecord::new("c", "busybox", false, PathBuf::new());
        r.phase = phase;
        r.done = done;
        r
    }

    fn term(code: i32) -> Phase {
        let now = Timestamp::now();
        Phase::Terminated(Terminated {
            exit_code: code,
            reason: "x".into(),
            message: None,
            started: now,
            finished: now,
        })
    }

    #[test]
    fn a_pod_succeeds_when_every_container_ended_with_zero() {
        assert_eq!(pod_phase(&[rec(term(0), true), rec(term(0), true)]), "Succeeded");
    }

    #[test]
    fn a_pod_fails_when_one_container_failed_for_good() {
        assert_eq!(pod_phase(&[rec(term(0), true), rec(term(2), true)]), "Failed");
    }

    #[test]
    fn a_pod_with_a_restarting_container_is_running() {
        assert_eq!(pod_phase(&[rec(term(1), false)]), "Running");
        assert_eq!(
            pod_phase(&[rec(
                Phase::Waiting {
                    reason: "ContainerCreating".into(),
                    message: None
                },
                false
            )]),
            "Pending"
        );
    }
}
