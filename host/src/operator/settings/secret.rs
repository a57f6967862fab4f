//! A string that must never reach a log line, a `--help` screen or a `Debug` dump.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

/// What `Debug` and `Display` print instead of a secret value.
pub const REDACTED: &str = "***";

/// A sensitive value (a repository password, an S3 secret key).
///
/// `Debug` and `Display` print `***`; the value is only reachable through [`Secret::expose`], so every place that
/// hands it on (into a Kubernetes Secret, a restic environment) is explicit and easy to audit. It deliberately
/// implements neither `Serialize` nor `PartialEq` with `&str`, so it cannot leak through a JSON dump or an
/// assertion message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The cleartext value; call this only where the value leaves the process on purpose.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is the empty string (an unset environment variable often arrives as `""`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_print_stars_instead_of_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(***)");
        assert_eq!(secret.expose(), "hunter2");
    }
}
