//! `@…-random` descriptors: a concrete, stable time derived from the Schedule's identity.
//!
//! The seed is `<namespace>/<name>@<action>` and its SHA-1, read as one big-endian integer N, picks each
//! field as in K8up: minute `N mod 60`, hour `N mod 24`, day of month `1 + N mod 27` (27 so that the day
//! exists in every month), month `1 + N mod 12`. The same inputs give the same time on every run, machine
//! and cluster. Two K8up bugs are fixed: the weekday is `N mod 7` (K8up's `mod 6` never picked Saturday, so
//! `@weekly-random` differs from K8up) and `@annually-random` works (K8up returned it unchanged).
//! Because the fields share one N, hour ≡ minute (mod 12): K8up's values are kept for compatibility.

use sha1::{Digest, Sha1};

use super::error::Problem;

/// The identity a random schedule is derived from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RandomSeed {
    /// Namespace of the Schedule.
    pub namespace: String,
    /// Name of the Schedule.
    pub name: String,
    /// The action (`backup`, `check`, `prune`, `archive`, `restore`).
    pub job_type: String,
}

impl RandomSeed {
    /// The seed of action `job_type` in Schedule `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, job_type: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            job_type: job_type.into(),
        }
    }
}

impl std::fmt::Display for RandomSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}@{}", self.namespace, self.name, self.job_type)
    }
}

/// Is this a random descriptor (starts with `@`, ends with `-random`)? Such strings are expanded before parsing.
pub fn is_random(descriptor: &str) -> bool {
    descriptor.starts_with('@') && descriptor.ends_with("-random")
}

/// The random descriptors this module expands.
pub const DESCRIPTORS: [&str; 6] = [
    "@hourly-random",
    "@daily-random",
    "@weekly-random",
    "@monthly-random",
    "@yearly-random",
    "@annually-random",
];

/// Refuse an unknown `@…-random` name before anything else is looked at.
pub(crate) fn check_known(descriptor: &str) -> Result<(), Problem> {
    if DESCRIPTORS.contains(&descriptor) {
        Ok(())
    } else {
        Err(Problem::UnknownRandom {
            name: descriptor.to_owned(),
        })
    }
}

/// The 5-field expression that a random descriptor stands for, for this seed.
pub fn expand(descriptor: &str, seed: &RandomSeed) -> Result<String, Problem> {
    let digest = Sha1::digest(seed.to_string().as_bytes());
    let n = |modulus: u32| big_endian_mod(&digest, modulus);
    let (minute, hour, day, month, weekday) = (n(60), n(24), 1 + n(27), 1 + n(12), n(7));
    match descriptor {
        "@hourly-random" => Ok(format!("{minute} * * * *")),
        "@daily-random" => Ok(format!("{minute} {hour} * * *")),
        "@weekly-random" => Ok(format!("{minute} {hour} * * {weekday}")),
        "@monthly-random" => Ok(format!("{minute} {hour} {day} * *")),
        "@yearly-random" | "@annually-random" => Ok(format!("{minute} {hour} {day} {month} *")),
        other => Err(Problem::UnknownRandom {
            name: other.to_owned(),
        }),
    }
}

/// `bytes`, read as an unsigned big-endian integer, modulo `modulus` (Horner's rule, no big integers needed).
fn big_endian_mod(bytes: &[u8], modulus: u32) -> u32 {
    let m = u64::from(modulus);
    let rest = bytes.iter().fold(0u64, |acc, &b| (acc * 256 + u64::from(b)) % m);
    // `rest < modulus`, so it fits.
    u32::try_from(rest).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remainder_of_a_big_number_matches_long_division() {
        // 0x0102_0304_0506_0708_090a = 4_759_477_275_222_530_853_130
        let bytes = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        let value: u128 = 4_759_477_275_222_530_853_130;
        for m in [7u32, 12, 24, 27, 60, 1_000_003] {
            assert_eq!(u128::from(big_endian_mod(&bytes, m)), value % u128::from(m));
        }
    }

    #[test]
    fn the_seed_reads_namespace_slash_name_at_action() {
        assert_eq!(RandomSeed::new("ns", "s", "prune").to_string(), "ns/s@prune");
    }
}
