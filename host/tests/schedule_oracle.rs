//! Cross-check of the fire-time search against a minute-by-minute scan of real time around clock changes.
//!
//! The oracle states the DST rule directly: a clock-following job fires at every minute whose wall-clock
//! reading matches; a time-of-day job fires at the first instant showing a matching reading, and at the end
//! of a spring-forward gap when a matching reading was skipped.

use chrono::{DateTime, Datelike, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use k8up::operator::schedule::{CronSpec, ScheduleContext};

type Matcher = fn(NaiveDateTime) -> bool;

/// (expression, follows the clock, an independent statement of what it matches)
const CASES: [(&str, bool, Matcher); 7] = [
    ("*/15 * * * *", true, |n| n.minute() % 15 == 0),
    ("30 2 * * *", false, |n| n.hour() == 2 && n.minute() == 30),
    ("0 1-3 * * *", false, |n| {
        (1..=3).contains(&n.hour()) && n.minute() == 0
    }),
    ("*/20 2 * * *", true, |n| n.hour() == 2 && n.minute() % 20 == 0),
    ("45 */2 * * 0", true, |n| {
        n.hour() % 2 == 0 && n.minute() == 45 && n.weekday() == Weekday::Sun
    }),
    ("0,30 0-4 * * SUN", false, |n| {
        n.hour() <= 4 && n.minute() % 30 == 0 && n.weekday() == Weekday::Sun
    }),
    ("59 1,2 * * *", false, |n| {
        (1..=2).contains(&n.hour()) && n.minute() == 59
    }),
];

/// Windows of four days around each 2025 clock change of three zones.
const WINDOWS: [(Tz, &str); 6] = [
    (Tz::Europe__Berlin, "2025-03-28T00:00:00Z"),
    (Tz::Europe__Berlin, "2025-10-24T00:00:00Z"),
    (Tz::America__New_York, "2025-03-07T00:00:00Z"),
    (Tz::America__New_York, "2025-10-31T00:00:00Z"),
    (Tz::Australia__Sydney, "2025-04-03T00:00:00Z"),
    (Tz::Australia__Sydney, "2025-10-02T00:00:00Z"),
];

fn offset_seconds(tz: Tz, t: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
}

fn oracle(
    tz: Tz,
    follows_clock: bool,
    matches: Matcher,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let mut fires = Vec::new();
    let mut t = from + TimeDelta::minutes(1);
    while t < until {
        let local = t.with_timezone(&tz).naive_local();
        let previous = t - TimeDelta::minutes(1);
        let jumped = offset_seconds(tz, t) > offset_seconds(tz, previous);
        let skipped_match = jumped && {
            // The wall-clock minutes the jump skipped.
            let mut n = previous.with_timezone(&tz).naive_local() + TimeDelta::minutes(1);
            let mut any = false;
            while n < local {
                any |= matches(n);
                n += TimeDelta::minutes(1);
            }
            any
        };
        let first_showing = tz.from_local_datetime(&local).earliest().map(|e| e.to_utc()) == Some(t);
        let fire = if follows_clock {
            matches(local)
        } else {
            (matches(local) && first_showing) || skipped_match
        };
        if fire {
            fires.push(t);
        }
        t += TimeDelta::minutes(1);
    }
    fires
}

#[test]
fn the_search_agrees_with_a_minute_by_minute_scan_around_every_clock_change() {
    for (tz, start) in WINDOWS {
        let from: DateTime<Utc> = start.parse().unwrap();
        let until = from + TimeDelta::days(4);
        for (expr, follows_clock, matches) in CASES {
            let spec = CronSpec::parse_with(expr, &ScheduleContext::new(tz)).unwrap();
            let searched: Vec<_> = spec.upcoming(from).take_while(|&t| t < until).collect();
            let expected = oracle(tz, follows_clock, matches, from, until);
            assert!(
                !expected.is_empty(),
                "{expr} in {tz}: the window should hold fire times"
            );
            assert_eq!(searched, expected, "{expr} in {tz} from {start}");
        }
    }
}
