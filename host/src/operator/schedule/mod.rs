//! Pure scheduling: parse a Schedule's cron expression and compute its fire times (no clock, no client).
//!
//! Accepted expressions:
//! - 5 fields `minute hour day-of-month month day-of-week` with `*`, `?` (day fields), lists, ranges,
//!   steps (`*/15`, `1-10/3`, `5/10` = from 5 on), month names `JAN`–`DEC`, weekday names `SUN`–`SAT`,
//!   Sunday as `0` or `7`. As in standard (Vixie) cron and robfig/cron, which K8up used: when both day
//!   fields are restricted a day matches if *either* matches; when one is written starting with `*` both
//!   must (so `0 0 */2 * 1` means odd days that are Mondays).
//! - `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`.
//! - `@every <Go duration>` (`90s`, `1h30m`, at least `1s`): ticks at `anchor + k·interval`, `k ≥ 1`, where
//!   the anchor is a stored time (the Schedule's creation time), so they survive operator restarts.
//! - `@hourly-random` … `@annually-random` (see [`random`]), expanded to a 5-field expression.
//! - A `CRON_TZ=<zone> ` or `TZ=<zone> ` prefix; without one the operator-wide default zone applies.
//!
//! Clock changes (DST) follow Vixie cron, the behaviour admins know from `cron(8)`:
//! - *Time-of-day jobs* (specific minute and hour, e.g. `30 2 * * *`) fire once per matching day. A time
//!   that does not exist (spring forward) fires at the first instant after the gap: 02:30 in Europe/Berlin on
//!   the last Sunday of March fires at 03:00 CEST. A time that occurs twice (fall back) fires at its first
//!   occurrence only.
//! - *Clock-following jobs* (`*` in the minute or hour field, e.g. `@hourly`, `*/15 * * * *`) fire whenever
//!   the wall clock shows a matching time: skipped times do not fire, repeated times fire twice, so the real
//!   spacing between runs stays even across the change.

mod calendar;
mod error;
mod every;
mod fields;
mod missed;
pub mod random;
pub mod zone;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub use error::{Problem, ScheduleError};
pub use missed::{DueTicks, MISSED_COUNT_LIMIT};
pub use random::RandomSeed;

use every::Every;
use fields::CronFields;

/// What parsing needs besides the expression: the default zone, the `@every` anchor and the random seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleContext {
    /// Zone of expressions without a `CRON_TZ=`/`TZ=` prefix (the operator's `--timezone`).
    pub default_zone: Tz,
    /// Start of `@every` intervals; the Schedule's creation time. Defaults to the Unix epoch.
    pub anchor: DateTime<Utc>,
    /// Identity for `@…-random` descriptors; without it they are refused.
    pub seed: Option<RandomSeed>,
}

impl Default for ScheduleContext {
    fn default() -> Self {
        Self {
            default_zone: Tz::UTC,
            anchor: DateTime::UNIX_EPOCH,
            seed: None,
        }
    }
}

impl ScheduleContext {
    /// A context with this default zone, the epoch as anchor and no seed.
    pub fn new(default_zone: Tz) -> Self {
        Self {
            default_zone,
            ..Self::default()
        }
    }

    /// Use `anchor` as the start of `@every` intervals.
    pub fn with_anchor(mut self, anchor: DateTime<Utc>) -> Self {
        self.anchor = anchor;
        self
    }

    /// Derive `@…-random` times from this identity.
    pub fn with_seed(mut self, seed: RandomSeed) -> Self {
        self.seed = Some(seed);
        self
    }
}

/// A parsed schedule expression, ready to compute fire times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSpec {
    expression: String,
    effective: String,
    random: bool,
    zone: Tz,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Calendar(CronFields),
    Every(Every),
}

impl CronSpec {
    /// Parse with the default context: UTC, `@every` counted from the Unix epoch, random descriptors refused.
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        Self::parse_with(expression, &ScheduleContext::default())
    }

    /// Parse with an explicit default zone, `@every` anchor and random seed.
    pub fn parse_with(expression: &str, context: &ScheduleContext) -> Result<Self, ScheduleError> {
        let fail = |problem| ScheduleError::new(expression, problem);
        let trimmed = expression.trim();
        if trimmed.is_empty() {
            return Err(fail(Problem::Empty));
        }
        let (prefix, zone, body) = split_zone(trimmed).map_err(fail)?;
        let zone = zone.unwrap_or(context.default_zone);

        let mut effective = trimmed.to_owned();
        let random = random::is_random(body);
        let body = if random {
            random::check_known(body).map_err(fail)?;
            let seed = context
                .seed
                .as_ref()
                .ok_or_else(|| fail(Problem::RandomWithoutSeed))?;
            let generated = random::expand(body, seed).map_err(fail)?;
            effective = format!("{prefix}{generated}");
            generated
        } else {
            body.to_owned()
        };

        let kind = if let Some(rest) = body.strip_prefix("@every")
            && (rest.is_empty() || rest.starts_with(char::is_whitespace))
        {
            let value = rest.trim();
            let interval = every::parse_go_duration(value).map_err(|reason| {
                fail(Problem::Every {
                    value: value.to_owned(),
                    reason,
                })
            })?;
            Kind::Every(Every {
                interval,
                anchor: context.anchor,
            })
        } else if body.starts_with('@') {
            let fields = descriptor(&body).ok_or_else(|| {
                fail(Problem::UnknownDescriptor {
                    name: body.to_owned(),
                })
            })?;
            Kind::Calendar(CronFields::parse(&fields.split(' ').collect::<Vec<_>>()).map_err(fail)?)
        } else {
            let fields: Vec<&str> = body.split_whitespace().collect();
            Kind::Calendar(CronFields::parse(&fields).map_err(fail)?)
        };
        Ok(Self {
            expression: expression.to_owned(),
            effective,
            random,
            zone,
            kind,
        })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The expression that is actually scheduled: for a random descriptor the generated 5 fields (with the
    /// zone prefix, if any), e.g. `52 4 * * *`; otherwise the trimmed expression. This is what
    /// `status.effectiveSchedules[].generatedSchedule` shows.
    pub fn effective_expression(&self) -> &str {
        &self.effective
    }

    /// Was this an `@…-random` descriptor?
    pub fn is_random(&self) -> bool {
        self.random
    }

    /// The zone the expression is read in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first fire time strictly after `after`; `None` when there is none (in practice only past the
    /// year 262000).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Calendar(fields) => calendar::next_after(fields, self.zone, after),
            Kind::Every(every) => every.next_after(after),
        }
    }

    /// The fire times strictly after `after`, in order.
    pub fn upcoming(&self, after: DateTime<Utc>) -> Upcoming<'_> {
        Upcoming {
            spec: self,
            cursor: Some(after),
        }
    }
}

/// Iterator over the fire times of a [`CronSpec`] after a point in time (see [`CronSpec::upcoming`]).
#[derive(Debug, Clone)]
pub struct Upcoming<'a> {
    spec: &'a CronSpec,
    cursor: Option<DateTime<Utc>>,
}

impl Iterator for Upcoming<'_> {
    type Item = DateTime<Utc>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.spec.next_after(self.cursor?);
        self.cursor = next;
        next
    }
}

/// Split a `CRON_TZ=<zone> ` / `TZ=<zone> ` prefix off: (prefix as written incl. the space, zone, rest).
fn split_zone(expression: &str) -> Result<(&str, Option<Tz>, &str), Problem> {
    let Some(name_and_rest) = expression
        .strip_prefix("CRON_TZ=")
        .or_else(|| expression.strip_prefix("TZ="))
    else {
        return Ok(("", None, expression));
    };
    let (name, rest) = name_and_rest
        .split_once(char::is_whitespace)
        .unwrap_or((name_and_rest, ""));
    let zone = zone::resolve(name).ok_or_else(|| Problem::TimeZone {
        zone: name.to_owned(),
    })?;
    let body = rest.trim_start();
    if body.is_empty() {
        return Err(Problem::MissingAfterZone);
    }
    let prefix_len = expression.len() - body.len();
    Ok((expression.get(..prefix_len).unwrap_or(""), Some(zone), body))
}

/// The 5-field meaning of a fixed descriptor.
fn descriptor(name: &str) -> Option<&'static str> {
    Some(match name {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_prefix_is_split_off_with_its_spacing() {
        assert_eq!(
            split_zone("CRON_TZ=Europe/Berlin   0 2 * * *"),
            Ok(("CRON_TZ=Europe/Berlin   ", Some(Tz::Europe__Berlin), "0 2 * * *"))
        );
        assert_eq!(
            split_zone("TZ=UTC @daily"),
            Ok(("TZ=UTC ", Some(Tz::UTC), "@daily"))
        );
        assert_eq!(split_zone("0 2 * * *"), Ok(("", None, "0 2 * * *")));
        assert_eq!(split_zone("TZ=Europe/Berlin"), Err(Problem::MissingAfterZone));
    }
}
