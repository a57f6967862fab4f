//! History cleanup (REFERENCE 2.4): among *siblings* (objects of the same kind in the namespace with the
//! same controller owner, e.g. the same Schedule; standalone objects group together) keep only the newest
//! `successfulJobsHistoryLimit` succeeded and `failedJobsHistoryLimit` failed objects. Running objects are
//! never deleted. The selection is pure; the driver deletes (foreground, so Jobs and pods go with them).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;

use super::status::{is_failed, is_succeeded};
use super::validate::EffectiveHistory;
use crate::operator::kinds::ActionKind;

/// Where a sibling stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiblingState {
    /// Not finished: never deleted.
    Running,
    /// Completed/Succeeded.
    Succeeded,
    /// Completed with another reason, or a failed pre-backup.
    Failed,
}

/// The facts about one object of the same kind that cleanup needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sibling {
    /// Name.
    pub name: String,
    /// UID of its controller owner (`None` for standalone objects).
    pub owner: Option<String>,
    /// Creation time.
    pub created: Option<Time>,
    /// Where it stands.
    pub state: SiblingState,
}

/// The grouping key: the controller owner's UID, falling back to a (legacy, non-controller) Schedule owner.
pub fn owner_key<K: Resource>(object: &K) -> Option<String> {
    let refs = object.meta().owner_references.as_deref().unwrap_or_default();
    refs.iter()
        .find(|r| r.controller == Some(true))
        .or_else(|| refs.iter().find(|r| r.kind == "Schedule"))
        .map(|r| r.uid.clone())
}

/// The sibling facts of `object`.
pub fn sibling<K: ActionKind>(object: &K) -> Sibling {
    let state = match object.status() {
        Some(s) if is_failed(s) => SiblingState::Failed,
        Some(s) if is_succeeded(s) => SiblingState::Succeeded,
        _ => SiblingState::Running,
    };
    Sibling {
        name: object.meta().name.clone().unwrap_or_default(),
        owner: owner_key(object),
        created: object.meta().creation_timestamp.clone(),
        state,
    }
}

/// Names of the objects to delete, oldest first: among `all` objects of the kind, those with the same
/// owner as `owner`, beyond the limits.
pub fn select_for_deletion(all: &[Sibling], owner: &Option<String>, limits: EffectiveHistory) -> Vec<String> {
    let mut doomed = Vec::new();
    for (state, keep) in [
        (SiblingState::Succeeded, limits.successful),
        (SiblingState::Failed, limits.failed),
    ] {
        let mut group: Vec<&Sibling> = all
            .iter()
            .filter(|s| &s.owner == owner && s.state == state)
            .collect();
        group.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        let excess = group.len().saturating_sub(keep as usize);
        doomed.extend(group.iter().take(excess).map(|s| s.name.clone()));
    }
    doomed
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn s(name: &str, owner: Option<&str>, at: i64, state: SiblingState) -> Sibling {
        Sibling {
            name: name.into(),
            owner: owner.map(str::to_string),
            created: Timestamp::from_second(at).ok().map(Time),
            state,
        }
    }

    #[test]
    fn only_the_oldest_finished_siblings_beyond_the_limits_are_deleted_and_running_ones_never() {
        use SiblingState::*;
        // K8up's TestCleanup: 3 running, 2 failed, 2 succeeded, limits 1/1 -> 2 deleted.
        let all = vec![
            s("r1", None, 1, Running),
            s("r2", None, 2, Running),
            s("r3", None, 3, Running),
            s("f-old", None, 4, Failed),
            s("f-new", None, 5, Failed),
            s("ok-old", None, 6, Succeeded),
            s("ok-new", None, 7, Succeeded),
        ];
        let limits = EffectiveHistory {
            successful: 1,
            failed: 1,
        };
        assert_eq!(select_for_deletion(&all, &None, limits), vec!["ok-old", "f-old"]);
    }

    #[test]
    fn siblings_of_another_schedule_are_never_evicted() {
        use SiblingState::*;
        let all = vec![
            s("mine-1", Some("sched-a"), 1, Succeeded),
            s("mine-2", Some("sched-a"), 2, Succeeded),
            s("theirs-0", Some("sched-b"), 0, Succeeded),
            s("standalone", None, 0, Succeeded),
        ];
        let limits = EffectiveHistory {
            successful: 1,
            failed: 0,
        };
        assert_eq!(
            select_for_deletion(&all, &Some("sched-a".into()), limits),
            vec!["mine-1"]
        );
    }

    #[test]
    fn equal_creation_times_are_ordered_by_name() {
        use SiblingState::*;
        let all = vec![
            s("b", None, 1, Failed),
            s("a", None, 1, Failed),
            s("c", None, 1, Failed),
        ];
        let limits = EffectiveHistory {
            successful: 0,
            failed: 1,
        };
        assert_eq!(select_for_deletion(&all, &None, limits), vec!["a", "b"]);
    }
}
