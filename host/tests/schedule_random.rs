//! `@…-random` descriptors: K8up's stable values, determinism, fixed weekday range and `@annually-random`.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use k8up::operator::schedule::{CronSpec, Problem, RandomSeed, ScheduleContext, random};
use rstest::rstest;

#[allow(clippy::unwrap_used)] // A test helper: a malformed literal fails the test.
fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn k8up_seed() -> RandomSeed {
    RandomSeed::new("k8up-system", "my-scheduled-backup", "backup")
}

#[rstest]
// The values K8up's own unit tests pin for this seed (REFERENCE.md 2.2).
#[case::hourly("@hourly-random", "52 * * * *")]
#[case::daily("@daily-random", "52 4 * * *")]
#[case::monthly("@monthly-random", "52 4 26 * *")]
#[case::yearly("@yearly-random", "52 4 26 5 *")]
// Fixed here: K8up returned "@annually-random" unchanged (and then failed to parse it).
#[case::annually("@annually-random", "52 4 26 5 *")]
// Fixed here: the weekday is N mod 7 (K8up's mod 6 gave 4 and never Saturday).
#[case::weekly("@weekly-random", "52 4 * * 0")]
fn random_descriptors_keep_k8ups_values_for_its_tested_seed(
    #[case] descriptor: &str,
    #[case] expected: &str,
) {
    assert_eq!(random::expand(descriptor, &k8up_seed()).unwrap(), expected);
}

#[test]
fn a_random_schedule_parses_to_its_generated_expression_and_fires_at_it() {
    let context = ScheduleContext::default().with_seed(k8up_seed());
    let spec = CronSpec::parse_with("@daily-random", &context).unwrap();
    assert!(spec.is_random());
    assert_eq!(spec.expression(), "@daily-random");
    assert_eq!(spec.effective_expression(), "52 4 * * *");
    assert_eq!(
        spec.next_after(at("2025-01-15T10:00:00Z")),
        Some(at("2025-01-16T04:52:00Z"))
    );
}

#[test]
fn annually_random_fires_once_a_year_on_the_same_day_as_yearly_random() {
    let context = ScheduleContext::default().with_seed(k8up_seed());
    let annually = CronSpec::parse_with("@annually-random", &context).unwrap();
    let yearly = CronSpec::parse_with("@yearly-random", &context).unwrap();
    let from = at("2025-01-01T00:00:00Z");
    let times: Vec<_> = annually.upcoming(from).take(3).collect();
    assert_eq!(times, yearly.upcoming(from).take(3).collect::<Vec<_>>());
    let expected = [
        "2025-05-26T04:52:00Z",
        "2026-05-26T04:52:00Z",
        "2027-05-26T04:52:00Z",
    ];
    assert_eq!(times, expected.map(at));
}

#[test]
fn a_zone_prefix_stays_in_front_of_the_generated_expression() {
    let context = ScheduleContext::default().with_seed(k8up_seed());
    let spec = CronSpec::parse_with("CRON_TZ=Europe/Zurich @hourly-random", &context).unwrap();
    assert_eq!(spec.effective_expression(), "CRON_TZ=Europe/Zurich 52 * * * *");
    assert_eq!(spec.zone(), Tz::Europe__Zurich);
}

#[test]
fn the_same_identity_always_gives_the_same_time_and_another_identity_usually_another() {
    let descriptors = [
        "@hourly-random",
        "@daily-random",
        "@weekly-random",
        "@monthly-random",
        "@yearly-random",
    ];
    for descriptor in descriptors {
        let a = random::expand(descriptor, &k8up_seed()).unwrap();
        let again = random::expand(descriptor, &k8up_seed()).unwrap();
        assert_eq!(a, again);
    }
    // Namespace, name and action each take part in the seed.
    let daily = |seed: RandomSeed| random::expand("@daily-random", &seed).unwrap();
    let base = daily(k8up_seed());
    let others = [
        RandomSeed::new("other-namespace", "my-scheduled-backup", "backup"),
        RandomSeed::new("k8up-system", "other-schedule", "backup"),
        RandomSeed::new("k8up-system", "my-scheduled-backup", "prune"),
    ];
    for seed in others {
        assert_ne!(daily(seed.clone()), base, "{seed}");
    }
}

#[test]
fn an_unknown_random_descriptor_is_refused() {
    let context = ScheduleContext::default().with_seed(k8up_seed());
    let err = CronSpec::parse_with("@fortnightly-random", &context).unwrap_err();
    assert_eq!(
        err.problem,
        Problem::UnknownRandom {
            name: "@fortnightly-random".to_owned()
        }
    );
    assert!(err.to_string().contains("\"@fortnightly-random\""));
}

#[test]
fn every_minute_hour_weekday_day_and_month_is_reachable_over_many_schedules() {
    let (mut minutes, mut hours, mut weekdays, mut days, mut months) = (
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
    );
    let from = at("2025-01-01T00:00:00Z");
    for i in 0..2_000 {
        let context = ScheduleContext::default().with_seed(RandomSeed::new(
            format!("team-{}", i % 37),
            format!("nightly-{i}"),
            "backup",
        ));
        let weekly = CronSpec::parse_with("@weekly-random", &context).unwrap();
        let yearly = CronSpec::parse_with("@yearly-random", &context).unwrap();
        let w = weekly.next_after(from).unwrap();
        let y = yearly.next_after(from).unwrap();
        minutes.insert(y.minute());
        hours.insert(y.hour());
        days.insert(y.day());
        months.insert(y.month());
        weekdays.insert(w.weekday().num_days_from_sunday());
    }
    assert_eq!(minutes, (0..60).collect());
    assert_eq!(hours, (0..24).collect());
    assert_eq!(weekdays, (0..7).collect(), "Saturday included");
    // Days stop at 27 on purpose: a monthly time must exist in every month.
    assert_eq!(days, (1..=27).collect());
    assert_eq!(months, (1..=12).collect());
}
