//! Next fire time of a 5-field expression in a time zone, with Vixie cron's rules for DST changes.

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::fields::CronFields;

/// Longer than any clock change in the tz database since 1970 (at most two hours back), so every instant a
/// wall-clock time can stand for lies within this distance of its naive reading.
const MARGIN: TimeDelta = TimeDelta::hours(3);

/// How far to look for a matching day: February 29th can be 8 years away (2096 -> 2104).
const SEARCH_DAYS: u32 = 366 * 9;

/// The longest gap a spring-forward can open (Samoa skipped a whole day in 2011).
const MAX_GAP_MINUTES: i64 = 48 * 60;

/// The first fire time strictly after `after`. See the module docs of `schedule` for the DST rule.
pub(crate) fn next_after(fields: &CronFields, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = floor_minute(after.with_timezone(&tz).naive_local());
    // Near a clock change, later wall-clock times can stand for earlier instants (the repeated hour), so
    // start a little earlier in wall-clock time and keep looking a little after the first candidate.
    let mut from = if transition_near(tz, after) {
        local.checked_sub_signed(MARGIN)?
    } else {
        local
    };
    let mut best: Option<DateTime<Utc>> = None;
    let mut look_until: Option<NaiveDateTime> = None;
    while let Some(naive) = next_naive_match(fields, from) {
        if look_until.is_some_and(|until| naive > until) {
            break;
        }
        for instant in instants(fields, tz, naive).into_iter().flatten() {
            if instant > after && best.is_none_or(|b| instant < b) {
                best = Some(instant);
            }
        }
        if let (Some(found), None) = (best, look_until) {
            if !transition_near(tz, found) {
                return best;
            }
            look_until = naive.checked_add_signed(MARGIN);
        }
        match naive.checked_add_signed(TimeDelta::minutes(1)) {
            Some(next) => from = next,
            None => break,
        }
    }
    best
}

/// The first wall-clock time at or after `from` (whole minutes) that the fields match.
fn next_naive_match(fields: &CronFields, from: NaiveDateTime) -> Option<NaiveDateTime> {
    let mut date = from.date();
    let (mut hour, mut minute) = (from.hour(), from.minute());
    for _ in 0..SEARCH_DAYS {
        if fields.date_matches(date)
            && let Some((h, m)) = fields.first_time_from(hour, minute)
        {
            return date.and_hms_opt(h, m, 0);
        }
        date = date.succ_opt()?;
        (hour, minute) = (0, 0);
    }
    None
}

/// The instants a matching wall-clock time fires at.
///
/// Time-of-day jobs fire once per wall-clock time: at the first of two occurrences (fall-back), or at the
/// first instant after the gap when the time does not exist (spring-forward). Jobs that follow the clock
/// (`*` in the minute or hour field) fire at every instant the clock shows the time: twice in a repeated
/// hour, never in a skipped one, so their spacing in real time stays even.
fn instants(fields: &CronFields, tz: Tz, naive: NaiveDateTime) -> [Option<DateTime<Utc>>; 2] {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => [Some(t.to_utc()), None],
        LocalResult::Ambiguous(a, b) => {
            let (first, second) = if a <= b { (a, b) } else { (b, a) };
            if fields.follows_clock() {
                [Some(first.to_utc()), Some(second.to_utc())]
            } else {
                [Some(first.to_utc()), None]
            }
        }
        LocalResult::None if fields.follows_clock() => [None, None],
        LocalResult::None => [gap_end(tz, naive), None],
    }
}

/// The instant a spring-forward gap containing `naive` ends: the first wall-clock minute after `naive`
/// that exists (clock changes happen on whole minutes), e.g. 03:00 CEST for 02:30 in Europe/Berlin.
fn gap_end(tz: Tz, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    (1..=MAX_GAP_MINUTES).find_map(|k| {
        let candidate = naive.checked_add_signed(TimeDelta::minutes(k))?;
        tz.from_local_datetime(&candidate).earliest().map(|t| t.to_utc())
    })
}

/// Is there a clock change within `MARGIN` of `t`? Unknown (out of range) counts as yes, which only makes
/// the search more careful.
fn transition_near(tz: Tz, t: DateTime<Utc>) -> bool {
    let offset = |x: Option<DateTime<Utc>>| {
        x.map(|x| {
            tz.offset_from_utc_datetime(&x.naive_utc())
                .fix()
                .local_minus_utc()
        })
    };
    let before = offset(t.checked_sub_signed(MARGIN));
    let now = offset(Some(t));
    let later = offset(t.checked_add_signed(MARGIN));
    before.is_none() || before != now || now != later
}

fn floor_minute(t: NaiveDateTime) -> NaiveDateTime {
    t.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn fields(expr: &str) -> CronFields {
        CronFields::parse(&expr.split_whitespace().collect::<Vec<_>>()).unwrap()
    }

    fn naive(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    #[test]
    fn the_naive_search_crosses_days_months_and_years() {
        let f = fields("15 10 1 1 *");
        assert_eq!(
            next_naive_match(&f, naive(2025, 1, 1, 10, 16)),
            Some(naive(2026, 1, 1, 10, 15))
        );
        let leap = fields("0 0 29 2 *");
        assert_eq!(
            next_naive_match(&leap, naive(2097, 1, 1, 0, 0)),
            Some(naive(2104, 2, 29, 0, 0))
        );
    }

    #[test]
    fn a_time_in_the_gap_maps_to_the_end_of_the_gap() {
        let at = gap_end(Tz::Europe__Berlin, naive(2025, 3, 30, 2, 30)).unwrap();
        assert_eq!(at.to_rfc3339(), "2025-03-30T01:00:00+00:00");
    }

    #[test]
    fn clock_changes_are_noticed_within_the_margin_only() {
        let change = Utc.with_ymd_and_hms(2025, 3, 30, 1, 0, 0).unwrap();
        assert!(transition_near(Tz::Europe__Berlin, change));
        assert!(transition_near(Tz::Europe__Berlin, change - TimeDelta::hours(2)));
        assert!(!transition_near(Tz::Europe__Berlin, change - TimeDelta::hours(4)));
        assert!(!transition_near(Tz::UTC, change));
    }
}
