//! Next fire times of descriptors and 5-field expressions, and the errors for invalid expressions.

use chrono::{DateTime, Utc};
use k8up::operator::schedule::{CronSpec, Problem, ScheduleContext};
use rstest::rstest;

#[allow(clippy::unwrap_used)] // A test helper: a malformed literal fails the test.
fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A Wednesday, 10:20:30 UTC.
const START: &str = "2025-01-15T10:20:30Z";

#[rstest]
#[case::every_minute("* * * * *", "2025-01-15T10:21:00Z")]
#[case::every_quarter_hour("*/15 * * * *", "2025-01-15T10:30:00Z")]
#[case::hourly("@hourly", "2025-01-15T11:00:00Z")]
#[case::hourly_as_fields("0 * * * *", "2025-01-15T11:00:00Z")]
#[case::daily("@daily", "2025-01-16T00:00:00Z")]
#[case::midnight("@midnight", "2025-01-16T00:00:00Z")]
#[case::weekly_is_sunday("@weekly", "2025-01-19T00:00:00Z")]
#[case::monthly("@monthly", "2025-02-01T00:00:00Z")]
#[case::yearly("@yearly", "2026-01-01T00:00:00Z")]
#[case::annually("@annually", "2026-01-01T00:00:00Z")]
#[case::weekdays_by_name("0 9 * * MON-FRI", "2025-01-16T09:00:00Z")]
#[case::weekend_lower_case_list("0 12 * * sat,sun", "2025-01-18T12:00:00Z")]
#[case::sunday_as_seven("0 0 * * 7", "2025-01-19T00:00:00Z")]
#[case::range_ending_on_sunday("0 0 * * FRI-SUN", "2025-01-17T00:00:00Z")]
#[case::list_of_days_today_passed("0 0 1,15 * *", "2025-02-01T00:00:00Z")]
#[case::later_today("45 10 * * *", "2025-01-15T10:45:00Z")]
#[case::month_names("15 14 1 JAN,jul *", "2025-07-01T14:15:00Z")]
#[case::start_slash_step_runs_to_the_end("5/20 */6 * * *", "2025-01-15T12:05:00Z")]
#[case::split_range_around_midnight("0 22-23,0-2 * * *", "2025-01-15T22:00:00Z")]
#[case::range_with_step("0 1-10/3 * * *", "2025-01-16T01:00:00Z")]
#[case::leap_day("0 0 29 2 *", "2028-02-29T00:00:00Z")]
#[case::question_mark_day_fields("0 6 ? * ?", "2025-01-16T06:00:00Z")]
#[case::surrounding_white_space("  0  6 * *  *  ", "2025-01-16T06:00:00Z")]
fn the_next_fire_time_follows_the_expression(#[case] expr: &str, #[case] expected: &str) {
    let spec = CronSpec::parse(expr).unwrap();
    assert_eq!(spec.next_after(at(START)), Some(at(expected)), "{expr}");
}

#[rstest]
// Both day fields restricted: a day matches when either does (every Friday, and every 13th).
#[case::friday_or_the_13th("0 0 13 * 5", "2025-01-17T00:00:00Z")]
#[case::first_week_or_mondays("30 4 1-7 * 1", "2025-01-20T04:30:00Z")]
// One day field starts with `*`: both must match (a day 1, 11, 21 or 31 that is a Monday).
#[case::star_step_day_and_monday("0 0 */10 * 1", "2025-03-31T00:00:00Z")]
#[case::every_day_restricted_to_monday("0 0 * * 1", "2025-01-20T00:00:00Z")]
fn day_of_month_and_day_of_week_combine_as_in_standard_cron(#[case] expr: &str, #[case] expected: &str) {
    let spec = CronSpec::parse(expr).unwrap();
    assert_eq!(spec.next_after(at(START)), Some(at(expected)), "{expr}");
}

#[test]
fn the_upcoming_times_come_in_order_without_repeats() {
    let spec = CronSpec::parse("*/20 9-10 * * *").unwrap();
    let times: Vec<_> = spec.upcoming(at(START)).take(6).collect();
    let expected = [
        "2025-01-15T10:40:00Z",
        "2025-01-16T09:00:00Z",
        "2025-01-16T09:20:00Z",
        "2025-01-16T09:40:00Z",
        "2025-01-16T10:00:00Z",
        "2025-01-16T10:20:00Z",
    ];
    assert_eq!(times, expected.map(at));
}

#[test]
fn a_fire_time_is_strictly_after_the_given_time() {
    let spec = CronSpec::parse("@hourly").unwrap();
    let on_the_hour = at("2025-01-15T11:00:00Z");
    assert_eq!(spec.next_after(on_the_hour), Some(at("2025-01-15T12:00:00Z")));
    assert_eq!(spec.next_after(at("2025-01-15T10:59:59.999Z")), Some(on_the_hour));
}

#[test]
fn every_interval_counts_from_the_anchor_not_from_now() {
    let created = at("2025-01-01T08:00:07Z");
    let context = ScheduleContext::default().with_anchor(created);
    let spec = CronSpec::parse_with("@every 1h30m", &context).unwrap();
    assert_eq!(spec.next_after(created), Some(at("2025-01-01T09:30:07Z")));
    // A restart at any moment computes the same grid.
    assert_eq!(
        spec.next_after(at("2025-01-02T00:00:00Z")),
        Some(at("2025-01-02T00:30:07Z"))
    );
    let seconds = CronSpec::parse_with("@every 90s", &context).unwrap();
    assert_eq!(
        seconds.next_after(at("2025-01-01T08:01:40Z")),
        Some(at("2025-01-01T08:03:07Z"))
    );
}

#[test]
fn every_without_an_anchor_counts_from_the_unix_epoch() {
    let spec = CronSpec::parse("@every 2h").unwrap();
    assert_eq!(spec.next_after(at(START)), Some(at("2025-01-15T12:00:00Z")));
}

#[test]
fn the_expression_and_its_zone_are_kept() {
    let spec = CronSpec::parse(" 0 2 * * * ").unwrap();
    assert_eq!(spec.expression(), " 0 2 * * * ");
    assert_eq!(spec.effective_expression(), "0 2 * * *");
    assert!(!spec.is_random());
    assert_eq!(spec.zone(), chrono_tz::Tz::UTC);
}

#[rstest]
#[case::empty("", "it is empty")]
#[case::blank("   ", "it is empty")]
#[case::four_fields(
    "0 2 * *",
    "expected 5 fields (minute hour day-of-month month day-of-week) but found 4"
)]
#[case::seconds_field("0 0 2 * * *", "a seconds (or year) field is not supported")]
#[case::minute_out_of_range("61 * * * *", "the minute field \"61\" is invalid: 61 is out of range 0-59")]
#[case::hour_out_of_range("0 24 * * *", "the hour field \"24\" is invalid: 24 is out of range 0-23")]
#[case::day_zero("0 0 0 * *", "the day-of-month field \"0\" is invalid")]
#[case::bad_month_name("0 0 * JAM *", "\"JAM\" is neither a number nor a name (JAN, FEB")]
#[case::bad_weekday("0 0 * * 8", "day-of-week field \"8\" is invalid: 8 is out of range 0-7")]
#[case::wrapping_range("0 23-1 * * *", "ranges cannot wrap around")]
#[case::zero_step("*/0 * * * *", "a step of 0 never advances")]
#[case::quartz_last_day("0 0 L * *", "\"L\" is not a number")]
#[case::never_fires(
    "0 0 31 2 *",
    "it never fires: none of the chosen days of the month exists in February"
)]
#[case::unknown_descriptor("@dayly", "unknown descriptor \"@dayly\"")]
#[case::descriptor_is_case_sensitive("@DAILY", "unknown descriptor \"@DAILY\"")]
#[case::unknown_random("@foo-random", "unknown random descriptor \"@foo-random\"")]
#[case::every_without_duration("@every", "the interval is missing")]
#[case::every_without_unit("@every 10", "\"10\" has no unit")]
#[case::every_in_days("@every 1d", "write e.g. \"24h\"")]
#[case::every_too_short("@every 100ms", "at least 1s")]
#[case::every_glued("@every1h", "unknown descriptor \"@every1h\"")]
#[case::unknown_zone("CRON_TZ=Mars/Base 0 2 * * *", "unknown time zone \"Mars/Base\"")]
#[case::zone_alone("TZ=Europe/Berlin", "nothing follows the time-zone prefix")]
fn invalid_expressions_are_refused_with_the_expression_quoted(#[case] expr: &str, #[case] words: &str) {
    let err = CronSpec::parse(expr).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("invalid schedule {expr:?}: ")),
        "{message}"
    );
    assert!(message.contains(words), "{message}");
}

#[test]
fn a_random_descriptor_without_a_seed_is_refused() {
    let err = CronSpec::parse("@daily-random").unwrap_err();
    assert_eq!(err.problem, Problem::RandomWithoutSeed);
    assert_eq!(err.expression, "@daily-random");
}
