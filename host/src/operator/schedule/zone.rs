//! Time-zone names: IANA zones from the bundled tz database, plus `Local` for the operator's own zone.

use chrono_tz::Tz;

/// Resolve a zone name: `UTC`, an IANA name such as `Europe/Zurich`, or `Local` (the operator's zone
/// from `TZ` or `/etc/localtime`, UTC when neither names an IANA zone). `None` when the name is unknown.
///
/// `Local` makes the result depend on the machine, so the operator-wide default should be an IANA name;
/// it is accepted because K8up read cron times in the operator's local zone.
pub fn resolve(name: &str) -> Option<Tz> {
    if name == "Local" {
        return Some(local_zone());
    }
    name.parse::<Tz>().ok()
}

fn local_zone() -> Tz {
    let from_env = std::env::var("TZ")
        .ok()
        .and_then(|tz| tz.trim_start_matches(':').parse::<Tz>().ok());
    from_env
        .or_else(|| {
            // /etc/localtime is a link into the zoneinfo tree on most distributions; its tail is the name.
            let target = std::fs::read_link("/etc/localtime").ok()?;
            let target = target.to_str()?;
            let (_, name) = target.split_once("zoneinfo/")?;
            name.parse::<Tz>().ok()
        })
        .unwrap_or(Tz::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_names_and_utc_resolve_and_unknown_names_do_not() {
        assert_eq!(resolve("Europe/Berlin"), Some(Tz::Europe__Berlin));
        assert_eq!(resolve("UTC"), Some(Tz::UTC));
        assert_eq!(resolve("Mars/Olympus_Mons"), None);
        assert_eq!(resolve(""), None);
        assert!(resolve("Local").is_some());
    }
}
