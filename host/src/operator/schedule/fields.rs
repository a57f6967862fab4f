//! The five cron fields: parsing into bit sets and matching calendar dates, with Vixie cron's rules.

use chrono::{Datelike, NaiveDate};

use super::error::Problem;

/// The parsed fields of a 5-field expression. Each set is a bit mask: bit `v` set means value `v` matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CronFields {
    pub(crate) minutes: u64,
    pub(crate) hours: u64,
    pub(crate) days_of_month: u64,
    pub(crate) months: u64,
    /// Sunday is bit 0 (a `7` in the expression is folded onto it).
    pub(crate) days_of_week: u64,
    /// The field was written starting with `*` (or `?`). Vixie cron keys two rules on this, not on the
    /// resulting set: the day-of-month/day-of-week OR, and which jobs follow the clock across DST changes.
    pub(crate) minute_star: bool,
    pub(crate) hour_star: bool,
    pub(crate) dom_star: bool,
    pub(crate) dow_star: bool,
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Three-letter names, the first one standing for `names_base`.
    names: &'static [&'static str],
    names_base: u32,
    question_mark: bool,
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_base: 0,
    question_mark: false,
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_base: 0,
    question_mark: false,
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    names_base: 0,
    question_mark: true,
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    names_base: 1,
    question_mark: false,
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    names_base: 0,
    question_mark: true,
};

/// Days in each month of a leap year: the most a month can have.
const MAX_DAYS: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl CronFields {
    /// Parse exactly five whitespace-separated fields.
    pub(crate) fn parse(fields: &[&str]) -> Result<Self, Problem> {
        let [minute, hour, dom, month, dow] = fields else {
            return Err(Problem::FieldCount {
                found: fields.len(),
                hint: field_count_hint(fields.len()),
            });
        };
        let mut days_of_week = parse_field(dow, &DAY_OF_WEEK)?;
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week & !(1 << 7)) | 1;
        }
        let parsed = Self {
            minutes: parse_field(minute, &MINUTE)?,
            hours: parse_field(hour, &HOUR)?,
            days_of_month: parse_field(dom, &DAY_OF_MONTH)?,
            months: parse_field(month, &MONTH)?,
            days_of_week,
            minute_star: is_star(minute),
            hour_star: is_star(hour),
            dom_star: is_star(dom),
            dow_star: is_star(dow),
        };
        parsed.check_fires()?;
        Ok(parsed)
    }

    /// Refuse expressions such as `0 0 30 2 *` that match no date, instead of accepting a Schedule
    /// that silently never runs.
    fn check_fires(&self) -> Result<(), Problem> {
        // With a restricted day-of-week in play some weekday always comes round.
        if self.dom_star || !self.dow_star {
            return Ok(());
        }
        let possible = (1..=12u32).any(|m| {
            self.months & (1 << m) != 0
                && MAX_DAYS
                    .get(m as usize - 1)
                    .is_some_and(|&max| self.days_of_month & mask_range(1, max) != 0)
        });
        if possible {
            Ok(())
        } else {
            let months: Vec<&str> = (1..=12u32)
                .filter(|m| self.months & (1 << m) != 0)
                .filter_map(|m| MONTH_NAMES.get(m as usize - 1).copied())
                .collect();
            Err(Problem::NeverFires {
                reason: format!(
                    "none of the chosen days of the month exists in {}",
                    months.join(", ")
                ),
            })
        }
    }

    /// Does this local calendar date match the day fields? Standard (Vixie) cron: when both day fields
    /// are restricted a date matches if *either* does; when one starts with `*` both must match.
    pub(crate) fn date_matches(&self, date: NaiveDate) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().num_days_from_sunday()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first matching (hour, minute) at or after `(hour, minute)` on a matching day.
    pub(crate) fn first_time_from(&self, hour: u32, minute: u32) -> Option<(u32, u32)> {
        (hour..24).filter(|h| self.hours & (1 << h) != 0).find_map(|h| {
            let from = if h == hour { minute } else { 0 };
            lowest_bit_from(self.minutes, from)
                .filter(|&m| m < 60)
                .map(|m| (h, m))
        })
    }

    /// Vixie cron's "wildcard job": minute or hour written with `*`. Such jobs follow the wall clock as it
    /// is across DST changes; the others are time-of-day jobs (see the module docs of `schedule`).
    pub(crate) fn follows_clock(&self) -> bool {
        self.minute_star || self.hour_star
    }
}

fn field_count_hint(found: usize) -> String {
    match found {
        6 | 7 => "; a seconds (or year) field is not supported, remove it".to_owned(),
        _ => String::new(),
    }
}

fn is_star(field: &str) -> bool {
    field.starts_with('*') || field.starts_with('?')
}

fn lowest_bit_from(bits: u64, from: u32) -> Option<u32> {
    let shifted = bits.checked_shr(from)?;
    (shifted != 0).then(|| from + shifted.trailing_zeros())
}

fn mask_range(from: u32, to: u32) -> u64 {
    (from..=to).fold(0, |acc, v| acc | (1u64 << v))
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<u64, Problem> {
    let err = |reason: String| Problem::Field {
        field: spec.name,
        value: text.to_owned(),
        reason,
    };
    let mut bits = 0u64;
    for item in text.split(',') {
        bits |= parse_item(item, spec).map_err(err)?;
    }
    Ok(bits)
}

fn parse_item(item: &str, spec: &FieldSpec) -> Result<u64, String> {
    if item.is_empty() {
        return Err("it has an empty list element (two commas in a row, or a trailing comma)".to_owned());
    }
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(parse_step(step, spec)?)),
        None => (item, None),
    };
    let (from, to) = if range == "*" || (range == "?" && spec.question_mark) {
        (spec.min, spec.max)
    } else if range == "?" {
        return Err(
            "\"?\" is only allowed in the day-of-month and day-of-week fields, write \"*\"".to_owned(),
        );
    } else if let Some((a, b)) = range.split_once('-') {
        let from = parse_value(a, spec, false)?;
        let to = parse_value(b, spec, from > 0)?;
        if from > to {
            return Err(format!(
                "the range {range:?} runs backwards; ranges cannot wrap around, split it into two (e.g. \"22-23,0-2\")"
            ));
        }
        (from, to)
    } else {
        let from = parse_value(range, spec, false)?;
        // `5/15` means "from 5 to the end, every 15th", as in robfig/cron which K8up used.
        (from, if step.is_some() { spec.max } else { from })
    };
    let step = step.unwrap_or(1);
    Ok((from..=to)
        .step_by(step as usize)
        .fold(0, |acc, v| acc | (1u64 << v)))
}

fn parse_step(step: &str, spec: &FieldSpec) -> Result<u32, String> {
    match step.parse::<u32>() {
        Ok(0) => Err("a step of 0 never advances; use 1 or more".to_owned()),
        Ok(n) if n > spec.max => Err(format!(
            "the step {n} is larger than the largest {} ({})",
            spec.name, spec.max
        )),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("the step {step:?} is not a whole number")),
    }
}

/// A number or a three-letter name. `sunday_as_seven`: a range like `MON-SUN` ends on day 7.
fn parse_value(text: &str, spec: &FieldSpec, sunday_as_seven: bool) -> Result<u32, String> {
    let value = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u32>()
            .map_err(|_| format!("{text:?} is too large"))?
    } else if let Some(index) = spec.names.iter().position(|name| name.eq_ignore_ascii_case(text)) {
        let value = index as u32 + spec.names_base;
        if sunday_as_seven && spec.max == 7 && value == 0 {
            7
        } else {
            value
        }
    } else if text.is_empty() {
        return Err("a range is missing a number".to_owned());
    } else if spec.names.is_empty() {
        return Err(format!("{text:?} is not a number"));
    } else {
        return Err(format!(
            "{text:?} is neither a number nor a name ({})",
            spec.names.join(", ")
        ));
    };
    if value < spec.min || value > spec.max {
        return Err(format!("{value} is out of range {}-{}", spec.min, spec.max));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(expr: &str) -> Result<CronFields, Problem> {
        CronFields::parse(&expr.split_whitespace().collect::<Vec<_>>())
    }

    fn values(bits: u64) -> Vec<u32> {
        (0..64).filter(|v| bits & (1 << v) != 0).collect()
    }

    #[test]
    fn lists_ranges_and_steps_expand_to_the_matching_values() {
        let f = parse("0,15-17,*/20 1-10/3 5/10 * *").unwrap();
        assert_eq!(values(f.minutes), vec![0, 15, 16, 17, 20, 40]);
        assert_eq!(values(f.hours), vec![1, 4, 7, 10]);
        assert_eq!(values(f.days_of_month), vec![5, 15, 25]);
    }

    #[test]
    fn month_and_weekday_names_are_case_insensitive_and_sunday_is_0_or_7() {
        let f = parse("0 0 * jan-Mar,DEC mon-sun").unwrap();
        assert_eq!(values(f.months), vec![1, 2, 3, 12]);
        assert_eq!(values(f.days_of_week), vec![0, 1, 2, 3, 4, 5, 6]);
        let f = parse("0 0 * * 7").unwrap();
        assert_eq!(values(f.days_of_week), vec![0]);
    }

    #[test]
    fn the_star_flags_follow_the_written_text_like_vixie_cron() {
        let f = parse("*/5 3 */2 * ?").unwrap();
        assert!(f.minute_star && !f.hour_star && f.dom_star && f.dow_star);
        assert!(f.follows_clock());
        assert!(!parse("5 3 1 * 1").unwrap().follows_clock());
    }

    #[test]
    fn the_first_time_of_day_skips_to_the_next_matching_hour() {
        let f = parse("10,50 3,5 * * *").unwrap();
        assert_eq!(f.first_time_from(0, 0), Some((3, 10)));
        assert_eq!(f.first_time_from(3, 11), Some((3, 50)));
        assert_eq!(f.first_time_from(3, 51), Some((5, 10)));
        assert_eq!(f.first_time_from(5, 51), None);
    }

    #[test]
    fn bad_fields_name_the_field_and_the_reason() {
        let cases = [
            ("60 * * * *", "minute", "out of range 0-59"),
            ("* 24 * * *", "hour", "out of range 0-23"),
            ("* * 0 * *", "day-of-month", "out of range 1-31"),
            ("* * * 13 *", "month", "out of range 1-12"),
            ("* * * * 8", "day-of-week", "out of range 0-7"),
            ("* * * foo *", "month", "neither a number nor a name"),
            ("*/0 * * * *", "minute", "step of 0"),
            ("5-1 * * * *", "minute", "runs backwards"),
            ("1,,2 * * * *", "minute", "empty list element"),
            ("? * * * *", "minute", "only allowed"),
            ("x * * * *", "minute", "not a number"),
            ("*/a * * * *", "minute", "not a whole number"),
        ];
        for (expr, field, reason) in cases {
            match parse(expr) {
                Err(Problem::Field {
                    field: f, reason: r, ..
                }) => {
                    assert_eq!(f, field, "{expr}");
                    assert!(r.contains(reason), "{expr}: {r}");
                }
                other => panic!("{expr}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_day_that_exists_in_no_chosen_month_is_refused() {
        assert!(matches!(parse("0 0 30 2 *"), Err(Problem::NeverFires { .. })));
        assert!(matches!(parse("0 0 31 4,6 *"), Err(Problem::NeverFires { .. })));
        // February 29th exists in leap years; with a weekday the OR rule makes it fire every week.
        assert!(parse("0 0 29 2 *").is_ok());
        assert!(parse("0 0 30 2 1").is_ok());
    }
}
