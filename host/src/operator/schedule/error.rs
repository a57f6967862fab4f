//! Why a schedule expression was refused, in words the author of the Schedule can act on.

/// A schedule expression that cannot be used. The message quotes the expression as written and names the
/// problem, so it can go into a `Ready=False` condition unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schedule {expression:?}: {problem}")]
pub struct ScheduleError {
    /// The expression exactly as the user wrote it.
    pub expression: String,
    /// What is wrong with it.
    pub problem: Problem,
}

impl ScheduleError {
    pub(crate) fn new(expression: &str, problem: Problem) -> Self {
        Self {
            expression: expression.to_owned(),
            problem,
        }
    }
}

/// The ways a schedule expression can be wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Nothing but white space.
    #[error(
        "it is empty; write 5 fields (minute hour day-of-month month day-of-week) such as \"0 2 * * *\", \
         or a descriptor such as \"@daily\""
    )]
    Empty,
    /// Not 5 fields.
    #[error("expected 5 fields (minute hour day-of-month month day-of-week) but found {found}{hint}")]
    FieldCount {
        /// How many fields were found.
        found: usize,
        /// Extra advice for common mistakes (a leading seconds field), empty otherwise.
        hint: String,
    },
    /// One field does not parse or is out of range.
    #[error("the {field} field {value:?} is invalid: {reason}")]
    Field {
        /// Which field (`minute`, `hour`, `day-of-month`, `month`, `day-of-week`).
        field: &'static str,
        /// The field's text.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `@name` that is not a known descriptor.
    #[error(
        "unknown descriptor {name:?}; known are @yearly, @annually, @monthly, @weekly, @daily, @midnight, \
         @hourly, @every <duration> and their -random forms (@hourly-random … @annually-random)"
    )]
    UnknownDescriptor {
        /// The descriptor as written.
        name: String,
    },
    /// An `@…-random` name that is not one of the supported random descriptors.
    #[error(
        "unknown random descriptor {name:?}; known are @hourly-random, @daily-random, @weekly-random, \
         @monthly-random, @yearly-random and @annually-random"
    )]
    UnknownRandom {
        /// The descriptor as written.
        name: String,
    },
    /// A random descriptor was parsed without the identity its time is derived from.
    #[error(
        "a random descriptor needs the Schedule's namespace, name and action to derive its time (internal error)"
    )]
    RandomWithoutSeed,
    /// `@every` with a bad duration.
    #[error("the @every interval {value:?} is invalid: {reason}")]
    Every {
        /// The duration text.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `CRON_TZ=`/`TZ=` prefix or default zone that is not a known IANA time zone.
    #[error("unknown time zone {zone:?}; use an IANA name such as \"Europe/Zurich\" or \"UTC\"")]
    TimeZone {
        /// The zone name as written.
        zone: String,
    },
    /// A `CRON_TZ=`/`TZ=` prefix with nothing after it.
    #[error("nothing follows the time-zone prefix; write e.g. \"CRON_TZ=Europe/Zurich 0 2 * * *\"")]
    MissingAfterZone,
    /// A well-formed expression that matches no date at all.
    #[error("it never fires: {reason}")]
    NeverFires {
        /// Why no date matches.
        reason: String,
    },
}
