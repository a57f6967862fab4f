//! `RetentionPolicy`: which snapshots `restic forget` keeps during a Prune.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which snapshots a Prune keeps (`restic forget --keep-*`, then `prune`).
///
/// Differences from K8up: `keepTags` really is passed on as a list (K8up's wrapper could not parse it), the
/// `keepWithin*` durations are exposed and accept restic's units (`y`, `m`, `d`, `h`, e.g. `1y6m`), and
/// `hostnames` is applied instead of being ignored.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicy {
    /// Keep the last n snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub keep_last: Option<i32>,

    /// Keep the last n hourly snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub keep_hourly: Option<i32>,

    /// Keep the last n daily snapshots (14 when no other keep rule is set, as in K8up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub keep_daily: Option<i32>,

    /// Keep the last n weekly snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub keep_weekly: Option<i32>,

    /// Keep the last n monthly snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub keep_monthly: Option<i32>,

    /// Keep the last n yearly snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub keep_yearly: Option<i32>,

    /// Keep every snapshot carrying one of these tags (`--keep-tag`, once per entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_tags: Option<Vec<String>>,

    /// Keep every snapshot newer than this duration relative to the latest snapshot (restic duration such
    /// as `2y5m7d3h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+[ymdh])+$"))]
    pub keep_within: Option<String>,

    /// Keep hourly snapshots newer than this restic duration (e.g. `7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+[ymdh])+$"))]
    pub keep_within_hourly: Option<String>,

    /// Keep daily snapshots newer than this restic duration (e.g. `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+[ymdh])+$"))]
    pub keep_within_daily: Option<String>,

    /// Keep weekly snapshots newer than this restic duration (e.g. `6m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+[ymdh])+$"))]
    pub keep_within_weekly: Option<String>,

    /// Keep monthly snapshots newer than this restic duration (e.g. `2y`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+[ymdh])+$"))]
    pub keep_within_monthly: Option<String>,

    /// Keep yearly snapshots newer than this restic duration (e.g. `10y`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+[ymdh])+$"))]
    pub keep_within_yearly: Option<String>,

    /// Apply the policy only to snapshots carrying these tags (`--tag`). Not to be confused with `keepTags`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,

    /// Apply the policy only to snapshots of these hosts. A Prune only ever touches its own namespace's
    /// snapshots (host = the namespace), so the only accepted entry is the namespace itself; others are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostnames: Option<Vec<String>>,
}

impl RetentionPolicy {
    /// True when no `keep*` rule is set; the Prune then keeps 14 daily snapshots, as K8up does.
    pub fn has_no_keep_rule(&self) -> bool {
        let counts = [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ];
        let durations = [
            &self.keep_within,
            &self.keep_within_hourly,
            &self.keep_within_daily,
            &self.keep_within_weekly,
            &self.keep_within_monthly,
            &self.keep_within_yearly,
        ];
        counts.iter().all(|c| c.is_none_or(|n| n <= 0))
            && durations.iter().all(|d| d.as_deref().is_none_or(str::is_empty))
            && self.keep_tags.as_ref().is_none_or(Vec::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_policy_has_no_keep_rule_but_a_keep_tag_is_one() {
        assert!(RetentionPolicy::default().has_no_keep_rule());
        let zero = RetentionPolicy {
            keep_daily: Some(0),
            tags: Some(vec!["db".into()]),
            ..Default::default()
        };
        assert!(zero.has_no_keep_rule(), "a filter is not a keep rule");
        let tags = RetentionPolicy {
            keep_tags: Some(vec!["important".into()]),
            ..Default::default()
        };
        assert!(!tags.has_no_keep_rule());
        let within = RetentionPolicy {
            keep_within: Some("7d".into()),
            ..Default::default()
        };
        assert!(!within.has_no_keep_rule());
    }
}
