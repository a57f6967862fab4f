//! Ticks that came due while the operator was away: at most one run, the rest counted as missed.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use k8up::operator::schedule::{CronSpec, MISSED_COUNT_LIMIT, ScheduleContext};

#[allow(clippy::unwrap_used)] // A test helper: a malformed literal fails the test.
fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const TOLERANCE: TimeDelta = TimeDelta::minutes(1);

#[test]
fn nothing_is_due_before_the_next_tick() {
    let spec = CronSpec::parse("@hourly").unwrap();
    let now = at("2025-01-15T10:00:05Z");
    let due = spec.due_ticks(at("2025-01-15T10:00:00Z"), now);
    assert_eq!(due.due, None);
    assert_eq!(due.missed, 0);
    assert_eq!(due.next, Some(at("2025-01-15T11:00:00Z")));
    assert!(!due.is_catch_up(now, TOLERANCE));
}

#[test]
fn a_tick_reached_on_time_is_due_and_not_a_catch_up() {
    let spec = CronSpec::parse("@hourly").unwrap();
    let now = at("2025-01-15T11:00:00.250Z");
    let due = spec.due_ticks(at("2025-01-15T10:00:00Z"), now);
    assert_eq!(due.due, Some(at("2025-01-15T11:00:00Z")));
    assert_eq!(due.missed, 0);
    assert!(!due.missed_is_lower_bound);
    assert_eq!(due.next, Some(at("2025-01-15T12:00:00Z")));
    assert!(!due.is_catch_up(now, TOLERANCE));
}

#[test]
fn after_downtime_the_latest_tick_runs_once_and_the_older_ones_are_missed() {
    let spec = CronSpec::parse("@hourly").unwrap();
    let now = at("2025-01-15T15:30:00Z");
    let due = spec.due_ticks(at("2025-01-15T10:00:00Z"), now);
    assert_eq!(due.due, Some(at("2025-01-15T15:00:00Z")));
    assert_eq!(due.missed, 4);
    assert!(due.is_catch_up(now, TOLERANCE));
}

#[test]
fn a_single_late_tick_is_a_catch_up_without_missed_ticks() {
    let spec = CronSpec::parse("@hourly").unwrap();
    let now = at("2025-01-15T11:30:00Z");
    let due = spec.due_ticks(at("2025-01-15T10:00:00Z"), now);
    assert_eq!(due.due, Some(at("2025-01-15T11:00:00Z")));
    assert_eq!(due.missed, 0);
    assert!(due.is_catch_up(now, TOLERANCE));
}

#[test]
fn a_clock_that_went_backwards_has_nothing_due() {
    let spec = CronSpec::parse("* * * * *").unwrap();
    let due = spec.due_ticks(at("2025-01-15T10:00:00Z"), at("2025-01-15T09:00:00Z"));
    assert_eq!(due.due, None);
    assert_eq!(due.missed, 0);
    assert_eq!(due.next, Some(at("2025-01-15T09:01:00Z")));
}

#[test]
fn counting_missed_ticks_stops_at_the_limit_but_the_due_tick_is_exact() {
    let spec = CronSpec::parse("* * * * *").unwrap();
    let now = at("2025-03-01T12:34:56Z");
    let due = spec.due_ticks(at("2025-01-01T00:00:00Z"), now);
    assert_eq!(due.due, Some(at("2025-03-01T12:34:00Z")));
    assert_eq!(due.missed, MISSED_COUNT_LIMIT);
    assert!(due.missed_is_lower_bound);
}

#[test]
fn every_intervals_count_missed_ticks_exactly_from_the_anchor() {
    let created = at("2025-01-01T00:00:07Z");
    let context = ScheduleContext::default().with_anchor(created);
    let spec = CronSpec::parse_with("@every 90m", &context).unwrap();
    let due = spec.due_ticks(created, created + TimeDelta::hours(5));
    assert_eq!(due.due, Some(created + TimeDelta::minutes(270)));
    assert_eq!(due.missed, 2);
    assert_eq!(due.next, Some(created + TimeDelta::minutes(360)));
    // A year of every-second ticks is counted, not capped.
    let fast = CronSpec::parse_with("@every 1s", &context).unwrap();
    let year = fast.due_ticks(created, created + TimeDelta::days(365));
    assert_eq!(year.missed, 365 * 86_400 - 1);
    assert!(!year.missed_is_lower_bound);
}

#[test]
fn the_repeated_hour_counts_twice_for_an_hourly_job() {
    let context = ScheduleContext::new(Tz::Europe__Berlin);
    let spec = CronSpec::parse_with("@hourly", &context).unwrap();
    let due = spec.due_ticks(at("2025-10-25T23:00:00Z"), at("2025-10-26T02:00:00Z"));
    assert_eq!(due.due, Some(at("2025-10-26T02:00:00Z")));
    assert_eq!(due.missed, 2);
}

#[test]
fn the_latest_tick_is_found_however_far_back_it_is() {
    let leap = CronSpec::parse("0 0 29 2 *").unwrap();
    assert_eq!(
        leap.last_at_or_before(at("2031-01-01T00:00:00Z")),
        Some(at("2028-02-29T00:00:00Z"))
    );
    let yearly = CronSpec::parse("@yearly").unwrap();
    let due = yearly.due_ticks(at("2020-06-01T00:00:00Z"), at("2025-06-01T00:00:00Z"));
    assert_eq!(due.due, Some(at("2025-01-01T00:00:00Z")));
    assert_eq!(due.missed, 4);
}
