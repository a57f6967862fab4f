//! Time zones and DST changes: `CRON_TZ=`/`TZ=` prefixes, the operator-wide default zone, and Vixie cron's
//! rule (time-of-day jobs run once per day, clock-following jobs keep their real-time spacing).

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;
use k8up::operator::schedule::{CronSpec, ScheduleContext, zone};
use rstest::rstest;

#[allow(clippy::unwrap_used)] // A test helper: a malformed literal fails the test.
fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[allow(clippy::unwrap_used)] // A test helper: a refused expression fails the test.
fn in_zone(expr: &str, tz: Tz) -> CronSpec {
    CronSpec::parse_with(expr, &ScheduleContext::new(tz)).unwrap()
}

fn fires(spec: &CronSpec, from: &str, until: &str) -> Vec<DateTime<Utc>> {
    spec.upcoming(at(from)).take_while(|&t| t < at(until)).collect()
}

#[rstest]
#[case::cron_tz_prefix("CRON_TZ=Europe/Berlin 0 2 * * *", "2025-01-15T01:00:00Z")]
#[case::tz_prefix("TZ=America/New_York 0 2 * * *", "2025-01-15T07:00:00Z")]
#[case::prefix_with_descriptor("CRON_TZ=Asia/Tokyo @daily", "2025-01-14T15:00:00Z")]
#[case::prefix_utc("TZ=UTC 0 2 * * *", "2025-01-15T02:00:00Z")]
fn a_zone_prefix_reads_the_times_in_that_zone(#[case] expr: &str, #[case] expected: &str) {
    // The default zone is not used when a prefix names one.
    let spec = in_zone(expr, Tz::Australia__Sydney);
    assert_eq!(spec.next_after(at("2025-01-14T12:00:00Z")), Some(at(expected)));
}

#[test]
fn the_default_zone_applies_without_a_prefix() {
    let spec = in_zone("0 2 * * *", Tz::Europe__Berlin);
    assert_eq!(spec.zone(), Tz::Europe__Berlin);
    assert_eq!(
        spec.next_after(at("2025-07-01T00:00:00Z")),
        Some(at("2025-07-01T00:00:00Z") + TimeDelta::hours(24))
    );
    assert_eq!(
        spec.next_after(at("2025-06-30T23:00:00Z")),
        Some(at("2025-07-01T00:00:00Z"))
    );
}

#[test]
fn the_operator_default_zone_name_resolves_through_the_tz_database() {
    assert_eq!(zone::resolve("America/New_York"), Some(Tz::America__New_York));
    assert_eq!(zone::resolve("Europe/Zurich "), None);
}

#[rstest]
// Europe/Berlin: 02:00 CET -> 03:00 CEST on 2025-03-30 at 01:00 UTC.
#[case::berlin(Tz::Europe__Berlin, "2025-03-29T12:00:00Z", ["2025-03-30T01:00:00Z", "2025-03-31T00:30:00Z"])]
// America/New_York: 02:00 EST -> 03:00 EDT on 2025-03-09 at 07:00 UTC.
#[case::new_york(Tz::America__New_York, "2025-03-08T12:00:00Z", ["2025-03-09T07:00:00Z", "2025-03-10T06:30:00Z"])]
// Australia/Sydney: 02:00 AEST -> 03:00 AEDT on 2025-10-05 at 16:00 UTC the day before.
#[case::sydney(Tz::Australia__Sydney, "2025-10-04T00:00:00Z", ["2025-10-04T16:00:00Z", "2025-10-05T15:30:00Z"])]
fn a_daily_time_in_the_skipped_hour_runs_once_at_the_end_of_the_gap(
    #[case] tz: Tz,
    #[case] from: &str,
    #[case] expected: [&str; 2],
) {
    let spec = in_zone("30 2 * * *", tz);
    let times: Vec<_> = spec.upcoming(at(from)).take(2).collect();
    assert_eq!(times, expected.map(at));
}

#[rstest]
// Europe/Berlin: 03:00 CEST -> 02:00 CET on 2025-10-26 at 01:00 UTC; 02:30 occurs at 00:30 and 01:30 UTC.
#[case::berlin(Tz::Europe__Berlin, "30 2 * * *", "2025-10-25T12:00:00Z", ["2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z"])]
// America/New_York: 02:00 EDT -> 01:00 EST on 2025-11-02 at 06:00 UTC; 01:30 occurs at 05:30 and 06:30 UTC.
#[case::new_york(Tz::America__New_York, "30 1 * * *", "2025-11-01T12:00:00Z", ["2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z"])]
// Australia/Sydney: 03:00 AEDT -> 02:00 AEST on 2025-04-06 at 16:00 UTC the day before.
#[case::sydney(Tz::Australia__Sydney, "30 2 * * *", "2025-04-05T00:00:00Z", ["2025-04-05T15:30:00Z", "2025-04-06T16:30:00Z"])]
fn a_daily_time_in_the_repeated_hour_runs_once_at_its_first_occurrence(
    #[case] tz: Tz,
    #[case] expr: &str,
    #[case] from: &str,
    #[case] expected: [&str; 2],
) {
    let spec = in_zone(expr, tz);
    let times: Vec<_> = spec.upcoming(at(from)).take(2).collect();
    assert_eq!(times, expected.map(at));
}

#[rstest]
#[case::berlin(Tz::Europe__Berlin)]
#[case::new_york(Tz::America__New_York)]
#[case::sydney(Tz::Australia__Sydney)]
fn a_daily_job_runs_exactly_once_on_every_local_day_of_a_year_with_two_clock_changes(#[case] tz: Tz) {
    let spec = in_zone("30 2 * * *", tz);
    let times = fires(&spec, "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z");
    let days: BTreeSet<_> = times.iter().map(|t| t.with_timezone(&tz).date_naive()).collect();
    assert_eq!(days.len(), times.len(), "one run per local day");
    assert!((364..=365).contains(&times.len()), "{}", times.len());
    let off_time: Vec<_> = times
        .iter()
        .map(|t| t.with_timezone(&tz).time())
        .filter(|&t| t != NaiveTime::from_hms_opt(2, 30, 0).unwrap())
        .collect();
    // Only the spring-forward day deviates, and then to the end of the gap.
    assert_eq!(off_time, vec![NaiveTime::from_hms_opt(3, 0, 0).unwrap()]);
}

#[rstest]
#[case::berlin(Tz::Europe__Berlin)]
#[case::new_york(Tz::America__New_York)]
#[case::sydney(Tz::Australia__Sydney)]
fn an_hourly_job_runs_every_real_hour_across_both_clock_changes(#[case] tz: Tz) {
    let spec = in_zone("@hourly", tz);
    let times = fires(&spec, "2024-12-31T23:59:00Z", "2026-01-01T00:00:00Z");
    assert_eq!(times.len(), 365 * 24);
    for pair in times.windows(2) {
        assert_eq!(pair[1] - pair[0], TimeDelta::hours(1), "{pair:?}");
    }
}

#[test]
fn a_quarter_hourly_job_keeps_its_spacing_through_the_repeated_hour() {
    let spec = in_zone("*/15 * * * *", Tz::Europe__Berlin);
    let times = fires(&spec, "2025-10-25T23:50:00Z", "2025-10-26T02:10:00Z");
    assert_eq!(times.len(), 9);
    assert!(times.windows(2).all(|p| p[1] - p[0] == TimeDelta::minutes(15)));
}

#[test]
fn a_clock_following_job_inside_the_skipped_hour_does_not_run_that_day() {
    // `*` in the minute field: it runs when the clock shows 02:xx, which it never does on 2025-03-30.
    let spec = in_zone("*/30 2 * * *", Tz::Europe__Berlin);
    let times = fires(&spec, "2025-03-29T00:00:00Z", "2025-04-01T00:00:00Z");
    let expected = [
        "2025-03-29T01:00:00Z",
        "2025-03-29T01:30:00Z",
        "2025-03-31T00:00:00Z",
        "2025-03-31T00:30:00Z",
    ];
    assert_eq!(times, expected.map(at));
}

#[test]
fn two_times_that_both_land_on_the_end_of_the_gap_run_once() {
    // 02:00 does not exist and moves to 03:00 CEST, which is also a time of its own.
    let spec = in_zone("0 2,3 * * *", Tz::Europe__Berlin);
    let times = fires(&spec, "2025-03-29T12:00:00Z", "2025-03-31T00:00:00Z");
    assert_eq!(times, vec![at("2025-03-30T01:00:00Z")]);
}

#[test]
fn a_time_of_day_job_in_the_repeated_hour_runs_once_per_minute_matched() {
    // Specific minutes in the repeated hour: each runs at its first occurrence only.
    let spec = in_zone("0,30 2 * * *", Tz::Europe__Berlin);
    let times = fires(&spec, "2025-10-25T12:00:00Z", "2025-10-26T12:00:00Z");
    assert_eq!(
        times,
        vec![at("2025-10-26T00:00:00Z"), at("2025-10-26T00:30:00Z")]
    );
}

#[test]
fn a_start_inside_the_repeated_hour_still_finds_the_second_occurrence_of_clock_following_jobs() {
    let spec = in_zone("45 * * * *", Tz::Europe__Berlin);
    // 00:50 UTC is 02:50 CEST; the clock shows 02:45 again at 01:45 UTC (CET).
    assert_eq!(
        spec.next_after(at("2025-10-26T00:50:00Z")),
        Some(at("2025-10-26T01:45:00Z"))
    );
    // 01:10 UTC is 02:10 CET, after the change: the next is 02:45 CET.
    assert_eq!(
        spec.next_after(at("2025-10-26T01:10:00Z")),
        Some(at("2025-10-26T01:45:00Z"))
    );
}

#[test]
fn every_intervals_ignore_clock_changes() {
    let context = ScheduleContext::new(Tz::Europe__Berlin).with_anchor(at("2025-03-29T00:00:00Z"));
    let spec = CronSpec::parse_with("@every 1h", &context).unwrap();
    let times = fires(&spec, "2025-03-30T00:00:00Z", "2025-03-30T03:30:00Z");
    let expected = [
        "2025-03-30T01:00:00Z",
        "2025-03-30T02:00:00Z",
        "2025-03-30T03:00:00Z",
    ];
    assert_eq!(times, expected.map(at));
}
