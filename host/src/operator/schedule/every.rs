//! `@every <duration>`: Go-style durations and fixed intervals counted from an anchor time.

use chrono::{DateTime, TimeDelta, Utc};

/// The shortest interval accepted: a shorter one would create objects faster than the operator can run them.
const MIN_INTERVAL_NANOS: i128 = 1_000_000_000;

/// A fixed interval, with ticks at `anchor + k * interval` for `k >= 1`. The anchor is a stored time (the
/// Schedule's creation time), so the ticks do not move when the operator restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Every {
    pub(crate) interval: TimeDelta,
    pub(crate) anchor: DateTime<Utc>,
}

fn nanos(t: DateTime<Utc>) -> i128 {
    i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())
}

fn from_nanos(n: i128) -> Option<DateTime<Utc>> {
    let secs = i64::try_from(n.div_euclid(1_000_000_000)).ok()?;
    let sub = u32::try_from(n.rem_euclid(1_000_000_000)).ok()?;
    DateTime::from_timestamp(secs, sub)
}

impl Every {
    fn interval_nanos(&self) -> i128 {
        // A TimeDelta holds at most ~292 billion years in nanoseconds only as i128; compute it piecewise.
        i128::from(self.interval.num_seconds()) * 1_000_000_000 + i128::from(self.interval.subsec_nanos())
    }

    /// Index of the last tick at or before `t` (0 = the anchor itself, which is not a tick).
    fn index_at_or_before(&self, t: DateTime<Utc>) -> i128 {
        (nanos(t) - nanos(self.anchor))
            .div_euclid(self.interval_nanos())
            .max(0)
    }

    fn tick(&self, k: i128) -> Option<DateTime<Utc>> {
        from_nanos(nanos(self.anchor).checked_add(k.checked_mul(self.interval_nanos())?)?)
    }

    /// The first tick strictly after `after`.
    pub(crate) fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.tick(self.index_at_or_before(after) + 1)
    }

    /// The last tick at or before `at`, if any.
    pub(crate) fn last_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.index_at_or_before(at) {
            0 => None,
            k => self.tick(k),
        }
    }

    /// How many ticks lie in `(from, to]`.
    pub(crate) fn count_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
        let n = self.index_at_or_before(to) - self.index_at_or_before(from);
        u64::try_from(n.max(0)).unwrap_or(u64::MAX)
    }
}

/// Parse a Go duration such as `1h30m`, `90s`, `1.5h` or `500ms`. Returns a reason in words on failure.
pub(crate) fn parse_go_duration(text: &str) -> Result<TimeDelta, String> {
    if text.is_empty() {
        return Err("the interval is missing; write e.g. \"@every 1h30m\"".to_owned());
    }
    if text.starts_with('-') {
        return Err("a negative interval never fires; write a positive duration".to_owned());
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        if number.is_empty() || number == "." {
            return Err(format!(
                "expected a number at {rest:?}; write numbers with units such as \"1h30m\""
            ));
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let unit_nanos: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => {
                return Err(format!(
                    "{number:?} has no unit; use ns, us, ms, s, m or h (e.g. \"{number}m\")"
                ));
            }
            "d" => {
                return Err(
                    "days are not a duration unit (Go durations stop at hours); write e.g. \"24h\""
                        .to_owned(),
                );
            }
            other => {
                return Err(format!("unknown unit {other:?}; use ns, us, ms, s, m or h"));
            }
        };
        total = total
            .checked_add(scale(number, unit_nanos)?)
            .ok_or_else(too_long)?;
        rest = tail;
    }
    if total < MIN_INTERVAL_NANOS {
        return Err("the interval must be at least 1s".to_owned());
    }
    let secs = i64::try_from(total / 1_000_000_000).map_err(|_| too_long())?;
    let sub = u32::try_from(total % 1_000_000_000).map_err(|_| too_long())?;
    TimeDelta::new(secs, sub).ok_or_else(too_long)
}

fn too_long() -> String {
    "the interval is too long".to_owned()
}

/// `number` (digits with at most one dot) times `unit_nanos`, exactly, dropping digits below a nanosecond.
fn scale(number: &str, unit_nanos: i128) -> Result<i128, String> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.contains('.') {
        return Err(format!("{number:?} is not a number"));
    }
    let parse = |digits: &str| -> Result<i128, String> {
        if digits.is_empty() {
            Ok(0)
        } else {
            digits.parse::<i128>().map_err(|_| too_long())
        }
    };
    let mut value = parse(whole)?.checked_mul(unit_nanos).ok_or_else(too_long)?;
    let mut place = unit_nanos;
    for digit in fraction.bytes() {
        place /= 10;
        value += i128::from(digit - b'0') * place;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn go_durations_combine_units_and_fractions() {
        let cases = [
            ("1h30m", 5_400_000),
            ("90s", 90_000),
            ("1.5h", 5_400_000),
            ("1500ms", 1_500),
            ("2h0m10s", 7_210_000),
            ("+1m", 60_000),
            (".5m", 30_000),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_go_duration(text).map(|d| d.num_milliseconds()),
                Ok(millis),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_durations_say_what_to_write_instead() {
        let cases = [
            ("", "missing"),
            ("10", "no unit"),
            ("1d", "24h"),
            ("5x", "unknown unit"),
            ("-5m", "negative"),
            ("500ms", "at least 1s"),
            ("0s", "at least 1s"),
            ("h", "expected a number"),
            ("1.2.3s", "not a number"),
        ];
        for (text, words) in cases {
            let err = parse_go_duration(text).unwrap_err();
            assert!(err.contains(words), "{text}: {err}");
        }
    }

    #[test]
    fn ticks_are_counted_from_the_anchor_and_exclude_it() {
        let anchor = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 7).unwrap();
        let every = Every {
            interval: TimeDelta::minutes(90),
            anchor,
        };
        let before = anchor - TimeDelta::days(3);
        assert_eq!(every.next_after(before), Some(anchor + TimeDelta::minutes(90)));
        assert_eq!(every.next_after(anchor), Some(anchor + TimeDelta::minutes(90)));
        let t = anchor + TimeDelta::minutes(180);
        assert_eq!(every.next_after(t), Some(anchor + TimeDelta::minutes(270)));
        assert_eq!(every.last_at_or_before(t), Some(t));
        assert_eq!(every.last_at_or_before(anchor), None);
        assert_eq!(every.count_between(anchor, t), 2);
        assert_eq!(every.count_between(before, anchor + TimeDelta::minutes(89)), 0);
    }
}
