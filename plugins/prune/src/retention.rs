//! The retention policy of a Prune, read from `spec.retention` and turned into the wrapper's `KEEP_*` env.
//!
//! K8up's rules (REFERENCE 1.6): a count reaches the wrapper only when it is > 0, and `keepDaily` is 14
//! when it is unset or 0. Fixes: `keepTags` is a real list (comma-joined in `KEEP_TAGS`, one
//! `--keep-tag` each), and the `keepWithin*` durations take restic's units (`y`, `m`, `d`, `h`) and
//! are checked here, so a typo is an invalid spec naming the field instead of a failed Job.

use k8up_plugin_sdk::{PluginError, invalid_spec};
use serde::Deserialize;

/// `keepDaily` when the spec sets no keep rule at all (counts of 0 count as unset), as K8up does.
pub const DEFAULT_KEEP_DAILY: u32 = 14;

/// The `KEEP_*` variables of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepEnv {
    /// Name and value of each variable, in a fixed order.
    pub vars: Vec<(&'static str, String)>,
    /// Whether `keepDaily` fell back to [`DEFAULT_KEEP_DAILY`].
    pub daily_defaulted: bool,
}

/// The fields of `spec.retention` this planner reads (JSON names as in `host/src/crd/retention.rs`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Retention {
    /// `KEEP_LAST`.
    pub keep_last: Option<i64>,
    /// `KEEP_HOURLY`.
    pub keep_hourly: Option<i64>,
    /// `KEEP_DAILY` (14 when no keep rule is set at all).
    pub keep_daily: Option<i64>,
    /// `KEEP_WEEKLY`.
    pub keep_weekly: Option<i64>,
    /// `KEEP_MONTHLY`.
    pub keep_monthly: Option<i64>,
    /// `KEEP_YEARLY`.
    pub keep_yearly: Option<i64>,
    /// `KEEP_TAGS`, comma-joined.
    pub keep_tags: Option<Vec<String>>,
    /// `KEEP_WITHIN`.
    pub keep_within: Option<String>,
    /// `KEEP_WITHIN_HOURLY`.
    pub keep_within_hourly: Option<String>,
    /// `KEEP_WITHIN_DAILY`.
    pub keep_within_daily: Option<String>,
    /// `KEEP_WITHIN_WEEKLY`.
    pub keep_within_weekly: Option<String>,
    /// `KEEP_WITHIN_MONTHLY`.
    pub keep_within_monthly: Option<String>,
    /// `KEEP_WITHIN_YEARLY`.
    pub keep_within_yearly: Option<String>,
    /// Only snapshots with these tags are considered (`--tag` each).
    pub tags: Option<Vec<String>>,
    /// Only snapshots of these hosts are considered (`--hostnameFilter`).
    pub hostnames: Option<Vec<String>>,
}

impl Retention {
    /// The `KEEP_*` variables, validated.
    pub fn keep_env(&self) -> Result<KeepEnv, PluginError> {
        let mut env = Vec::new();
        let counts = [
            ("keepLast", "KEEP_LAST", self.keep_last),
            ("keepHourly", "KEEP_HOURLY", self.keep_hourly),
            ("keepDaily", "KEEP_DAILY", self.keep_daily),
            ("keepWeekly", "KEEP_WEEKLY", self.keep_weekly),
            ("keepMonthly", "KEEP_MONTHLY", self.keep_monthly),
            ("keepYearly", "KEEP_YEARLY", self.keep_yearly),
        ];
        for (field, var, value) in counts {
            if let Some(n) = count(field, value)? {
                env.push((var, n.to_string()));
            }
        }
        let keep_tags = non_empty(self.keep_tags.as_deref());
        if let Some(tag) = keep_tags.iter().find(|tag| tag.contains(',')) {
            return Err(invalid_spec(format!(
                "retention.keepTags: {tag:?} contains a comma; list each tag as its own entry"
            )));
        }
        if !keep_tags.is_empty() {
            env.push(("KEEP_TAGS", keep_tags.join(",")));
        }
        let durations = [
            ("keepWithin", "KEEP_WITHIN", &self.keep_within),
            ("keepWithinHourly", "KEEP_WITHIN_HOURLY", &self.keep_within_hourly),
            ("keepWithinDaily", "KEEP_WITHIN_DAILY", &self.keep_within_daily),
            ("keepWithinWeekly", "KEEP_WITHIN_WEEKLY", &self.keep_within_weekly),
            (
                "keepWithinMonthly",
                "KEEP_WITHIN_MONTHLY",
                &self.keep_within_monthly,
            ),
            ("keepWithinYearly", "KEEP_WITHIN_YEARLY", &self.keep_within_yearly),
        ];
        for (field, var, value) in durations {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                validate_restic_duration(value)
                    .map_err(|why| invalid_spec(format!("retention.{field}: {why}")))?;
                env.push((var, value.to_string()));
            }
        }
        // Without any keep rule `restic forget` would refuse to run (or, with K8up's flags, forget
        // everything): keep 14 daily snapshots, K8up's default. An explicit rule is never widened by it.
        let defaulted = env.is_empty();
        if defaulted {
            env.push(("KEEP_DAILY", DEFAULT_KEEP_DAILY.to_string()));
        }
        Ok(KeepEnv {
            vars: env,
            daily_defaulted: defaulted,
        })
    }

    /// The snapshot tags the policy applies to (empty entries dropped).
    pub fn tag_filter(&self) -> Vec<&str> {
        non_empty(self.tags.as_deref())
    }

    /// The hosts the policy applies to. Only the namespace's own host is allowed: every snapshot a k8up
    /// Job writes carries `--host <namespace>`, so any other host belongs to another namespace (or
    /// another restic client) sharing the repository, and a Prune must never forget those.
    pub fn host_filter(&self, namespace: &str) -> Result<Vec<String>, PluginError> {
        let mut hosts: Vec<String> = Vec::new();
        for host in non_empty(self.hostnames.as_deref()) {
            if host != namespace {
                return Err(invalid_spec(format!(
                    "retention.hostnames: {host:?} is not this namespace's host; a Prune only forgets \
                     snapshots of host {namespace:?} so that it cannot remove other namespaces' backups \
                     (remove the entry, or create the Prune in namespace {host:?})"
                )));
            }
            if !hosts.iter().any(|h| h == host) {
                hosts.push(host.to_string());
            }
        }
        Ok(hosts)
    }
}

/// A keep count: `None` when unset or 0, an error when negative or too large.
fn count(field: &str, value: Option<i64>) -> Result<Option<u32>, PluginError> {
    match value {
        None | Some(0) => Ok(None),
        Some(n) if n < 0 => Err(invalid_spec(format!(
            "retention.{field}: {n} is negative; use 0 or leave it out to not keep by this rule"
        ))),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| invalid_spec(format!("retention.{field}: {n} is too large"))),
    }
}

/// The entries of an optional list that are not empty or blank.
fn non_empty(values: Option<&[String]>) -> Vec<&str> {
    values
        .unwrap_or_default()
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .collect()
}

/// A restic duration as `restic forget --keep-within` takes it: one or more `<number><unit>` with units
/// `y` (years), `m` (months), `d` (days) and `h` (hours), not all zero, e.g. `2y5m7d3h`. The same rule
/// as the wrapper's, so what passes here never fails there.
pub fn validate_restic_duration(value: &str) -> Result<(), String> {
    let mut digits = String::new();
    let mut positive = false;
    for c in value.chars() {
        match c {
            '0'..='9' => digits.push(c),
            'y' | 'm' | 'd' | 'h' => {
                if digits.is_empty() {
                    return Err(format!("{value:?}: unit '{c}' has no number before it"));
                }
                positive |= digits.chars().any(|d| d != '0');
                digits.clear();
            }
            other => {
                return Err(format!(
                    "{value:?}: '{other}' is not allowed; write a restic duration such as 7d, 6m or 2y5m7d3h \
                     (units y, m for months, d, h)"
                ));
            }
        }
    }
    if !digits.is_empty() {
        return Err(format!(
            "{value:?}: the number {digits} has no unit (y, m for months, d or h)"
        ));
    }
    if !positive {
        return Err(format!("{value:?} is not a positive duration"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restic_durations_with_year_month_day_and_hour_units_are_accepted() {
        for ok in ["7d", "1y", "6m", "12h", "2y5m7d3h", "0y1d", "365d"] {
            assert_eq!(validate_restic_duration(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn malformed_or_zero_durations_are_refused_with_a_reason() {
        let cases = [
            ("", "not a positive duration"),
            ("0d", "not a positive duration"),
            ("7", "has no unit"),
            ("d", "has no number"),
            ("5s", "'s' is not allowed"),
            ("1w", "'w' is not allowed"),
            ("-1d", "'-' is not allowed"),
            ("7 d", "' ' is not allowed"),
            ("1d2", "has no unit"),
        ];
        for (bad, reason) in cases {
            match validate_restic_duration(bad) {
                Err(message) => assert!(message.contains(reason), "{bad}: {message}"),
                Ok(()) => unreachable!("{bad:?} was accepted"),
            }
        }
    }
}
