//! Ticks that came due while nobody fired them: at most one run is made for them, the rest are reported.

use chrono::{DateTime, TimeDelta, Utc};

use super::{CronSpec, Kind};

/// Counting missed ticks one by one stops here (an every-minute schedule after a week of downtime); the
/// count is then a lower bound. `@every` schedules are counted exactly by arithmetic.
pub const MISSED_COUNT_LIMIT: u64 = 10_000;

/// Look-back windows for the latest tick before a time, growing until one holds a tick. The last one covers
/// the longest gap between two ticks (February 29th, 8 years apart across 2100).
const LOOK_BACK: [TimeDelta; 6] = [
    TimeDelta::hours(1),
    TimeDelta::days(1),
    TimeDelta::days(8),
    TimeDelta::days(32),
    TimeDelta::days(367),
    TimeDelta::days(366 * 9),
];

/// The ticks in `(last_fire, now]`, as the controller sees them when it wakes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueTicks {
    /// The latest tick in `(last_fire, now]`: the one run to make now. `None` = nothing is due.
    pub due: Option<DateTime<Utc>>,
    /// How many other ticks in `(last_fire, now]` there were: they are reported, not run.
    pub missed: u64,
    /// `missed` reached [`MISSED_COUNT_LIMIT`] and stopped counting.
    pub missed_is_lower_bound: bool,
    /// The first tick after `now`: when to wake up next.
    pub next: Option<DateTime<Utc>>,
}

impl DueTicks {
    /// Is the due run a catch-up, i.e. was its tick more than `tolerance` before `now` or were ticks missed?
    /// A controller that wakes up on time sees `false`.
    pub fn is_catch_up(&self, now: DateTime<Utc>, tolerance: TimeDelta) -> bool {
        self.missed > 0 || self.due.is_some_and(|due| now - due > tolerance)
    }
}

impl CronSpec {
    /// The ticks that came due in `(last_fire, now]`. Pass the last time the action was fired, or the
    /// Schedule's creation time when it never was. At most one run is due, whatever the number of ticks.
    pub fn due_ticks(&self, last_fire: DateTime<Utc>, now: DateTime<Utc>) -> DueTicks {
        let next = self.next_after(now);
        if now <= last_fire {
            return DueTicks {
                due: None,
                missed: 0,
                missed_is_lower_bound: false,
                next,
            };
        }
        let (count, capped) = match &self.kind {
            Kind::Every(every) => (every.count_between(last_fire, now), false),
            Kind::Calendar(_) => {
                let mut count = 0u64;
                for _ in self.upcoming(last_fire).take_while(|&t| t <= now) {
                    count += 1;
                    if count > MISSED_COUNT_LIMIT {
                        break;
                    }
                }
                (count, count > MISSED_COUNT_LIMIT)
            }
        };
        let due = if count == 0 {
            None
        } else {
            self.last_at_or_before(now).filter(|&t| t > last_fire)
        };
        DueTicks {
            due,
            missed: if capped {
                MISSED_COUNT_LIMIT
            } else {
                count.saturating_sub(1)
            },
            missed_is_lower_bound: capped,
            next,
        }
    }

    /// The latest tick at or before `at`, if there is one within 9 years (`@every`: since the anchor).
    pub fn last_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if let Kind::Every(every) = &self.kind {
            return every.last_at_or_before(at);
        }
        LOOK_BACK.iter().find_map(|&window| {
            let start = at.checked_sub_signed(window)?;
            self.upcoming(start).take_while(|&t| t <= at).last()
        })
    }
}
