//! Small parsers for the value shapes operator settings use: Kubernetes quantities and names, Go-style
//! durations and bind addresses, HTTP URLs, cron expressions and time-zone names.
//!
//! Each returns a plain `String` reason on failure; `validated.rs` wraps it with the flag and env var names.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Parse a Kubernetes resource quantity (`500m`, `1.5`, `128Mi`, `1e3`) into its value in base units.
///
/// Only the comparison of a request with its limit needs the number; the original string is what goes into the
/// Job, so `f64` precision is enough. Negative quantities are rejected because they are never valid resources.
pub fn quantity(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (number, suffix) = split_number(s);
    if number.is_empty() || number == "." || number.starts_with('-') {
        return Err(format!(
            "{s:?} is not a Kubernetes quantity (expected e.g. \"500m\", \"1\", \"128Mi\", \"2Gi\")"
        ));
    }
    let value: f64 = number
        .trim_start_matches('+')
        .parse()
        .map_err(|_| format!("{s:?} is not a Kubernetes quantity"))?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => {
            let power: i32 = exp[1..]
                .parse()
                .map_err(|_| format!("{s:?} has an invalid exponent {exp:?}"))?;
            10f64.powi(power)
        }
        other => {
            return Err(format!(
                "{s:?} has an unknown suffix {other:?} (use one of n u m k M G T P E Ki Mi Gi Ti Pi Ei)"
            ));
        }
    };
    Ok(value * factor)
}

/// Split `"1.5Gi"` into `("1.5", "Gi")`; a leading sign belongs to the number.
fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
        .map_or(s.len(), |(i, _)| i);
    s.split_at(end)
}

/// Parse a Go-style duration (`15s`, `1m30s`, `500ms`, `2h`) as K8up's flags accept them.
///
/// A bare `0` is zero; any other number needs a unit so that `10` is never silently read as nanoseconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("an empty string is not a duration (expected e.g. \"15s\" or \"1m30s\")".into());
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration (expected e.g. \"15s\" or \"1m30s\")"))?;
        let seconds_per_unit = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("{text:?} lacks a unit (use ms, s, m or h)")),
            other => {
                return Err(format!(
                    "{text:?} has an unknown unit {other:?} (use ms, s, m or h)"
                ));
            }
        };
        total += Duration::try_from_secs_f64(value * seconds_per_unit)
            .map_err(|_| format!("{text:?} is out of range"))?;
        rest = next;
    }
    Ok(total)
}

/// Parse a bind address in the Go form K8up documents (`:8080`, `0.0.0.0:8080`, `[::]:8080`,
/// `localhost:8080`). `"0"` disables the listener, as in controller-runtime, and gives `None`.
pub fn bind_address(s: &str) -> Result<Option<SocketAddr>, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(None);
    }
    let invalid =
        || format!("{s:?} is not a bind address (expected \":8080\", \"127.0.0.1:8080\" or \"[::]:8080\")");
    let (host, port) = s.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    let ip = match host {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        bracketed if bracketed.starts_with('[') && bracketed.ends_with(']') => {
            bracketed[1..bracketed.len() - 1].parse().map_err(|_| invalid())?
        }
        other => other.parse().map_err(|_| invalid())?,
    };
    Ok(Some(SocketAddr::new(ip, port)))
}

/// Parse an absolute `http` or `https` URL with a host.
pub fn http_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s.trim()).map_err(|e| format!("{:?} is not a URL: {e}", redact_url_text(s)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{:?} must start with http:// or https://",
            redact_url_text(s)
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{:?} has no host", redact_url_text(s)));
    }
    Ok(url)
}

/// The scheme and host of a URL-like string, for error messages about values that may carry credentials.
pub fn redact_url_text(s: &str) -> String {
    match url::Url::parse(s.trim()) {
        Ok(url) => redact_url(&url),
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

/// `scheme://host[:port]/…`: what may be shown of a URL whose path, query or user info can hold a token.
pub fn redact_url(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let hidden =
        url.path() != "/" || url.query().is_some() || !url.username().is_empty() || url.password().is_some();
    format!(
        "{}://{host}{port}/{}",
        url.scheme(),
        if hidden { "***" } else { "" }
    )
}

/// Check a DNS-1123 label (namespace names): 1-63 lowercase alphanumerics or `-`, alphanumeric at both ends.
pub fn dns_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)"
        ))
    }
}

/// Check a DNS-1123 subdomain (names of ServiceAccounts, ConfigMaps, Secrets, Leases).
pub fn dns_subdomain(s: &str) -> Result<(), String> {
    let ok = !s.is_empty() && s.len() <= 253 && s.split('.').all(|label| dns_label(label).is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid Kubernetes object name (DNS-1123 subdomain: lowercase letters, digits, '-' and '.')"
        ))
    }
}

/// Check an annotation key (`[prefix/]name`), as the API server validates it.
pub fn annotation_key(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, s),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && name.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric);
    let prefix_ok = prefix.is_none_or(|p| dns_subdomain(p).is_ok());
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid annotation key (expected \"[prefix/]name\", e.g. \"k8up.io/backup\")"
        ))
    }
}

/// Check the shape of a cron expression: five fields, or one of the `@` macros K8up knows (with its `-random`
/// variants). The scheduler parses it fully; this only catches typos at start-up.
pub fn cron_shape(s: &str) -> Result<(), String> {
    let s = s.trim();
    if let Some(name) = s.strip_prefix('@') {
        let base = name.strip_suffix("-random").unwrap_or(name);
        return if matches!(
            base,
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly"
        ) {
            Ok(())
        } else {
            Err(format!(
                "{s:?} is not a known cron macro (e.g. @daily, @weekly-random)"
            ))
        };
    }
    let fields = s.split_whitespace().count();
    if fields == 5 {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a cron expression: expected 5 fields (minute hour day month weekday), found {fields}"
        ))
    }
}

/// Check the shape of a time-zone name: `UTC`, `Local`, or an IANA name like `Europe/Zurich`.
///
/// The tz database is not linked into the binary yet; the scheduler resolves the name when it lands.
pub fn timezone(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a time-zone name (expected \"UTC\" or an IANA name like \"Europe/Zurich\")"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("500m", 0.5)]
    #[case("1", 1.0)]
    #[case("1.5", 1.5)]
    #[case("+2", 2.0)]
    #[case("128Mi", 128.0 * 1024.0 * 1024.0)]
    #[case("2Gi", 2.0 * 1024.0 * 1024.0 * 1024.0)]
    #[case("1k", 1000.0)]
    #[case("1e3", 1000.0)]
    #[case("100u", 1e-4)]
    fn quantities_in_every_suffix_family_parse_to_base_units(#[case] input: &str, #[case] expected: f64) {
        let value = quantity(input).unwrap();
        assert!((value - expected).abs() <= expected * 1e-12, "{input} -> {value}");
    }

    #[rstest]
    #[case("")]
    #[case("Mi")]
    #[case("1 Gi")]
    #[case("1GB")]
    #[case("-1")]
    #[case("1.2.3")]
    #[case("1eX")]
    fn malformed_or_negative_quantities_are_rejected(#[case] input: &str) {
        assert!(quantity(input).is_err(), "{input:?} was accepted");
    }

    #[rstest]
    #[case("0", 0)]
    #[case("15s", 15_000)]
    #[case("1m30s", 90_000)]
    #[case("500ms", 500)]
    #[case("2h", 7_200_000)]
    #[case("1.5s", 1_500)]
    fn go_style_durations_parse(#[case] input: &str, #[case] millis: u128) {
        assert_eq!(duration(input).unwrap().as_millis(), millis);
    }

    #[rstest]
    #[case("")]
    #[case("10")]
    #[case("3d")]
    #[case("s")]
    #[case("1m-1s")]
    fn durations_without_a_known_unit_are_rejected(#[case] input: &str) {
        assert!(duration(input).is_err(), "{input:?} was accepted");
    }

    #[rstest]
    #[case(":8080", Some("0.0.0.0:8080"))]
    #[case("127.0.0.1:9090", Some("127.0.0.1:9090"))]
    #[case("[::]:8080", Some("[::]:8080"))]
    #[case("localhost:1", Some("127.0.0.1:1"))]
    #[case("0", None)]
    fn go_style_bind_addresses_parse(#[case] input: &str, #[case] expected: Option<&str>) {
        let parsed = bind_address(input).unwrap().map(|a| a.to_string());
        assert_eq!(parsed.as_deref(), expected);
    }

    #[rstest]
    #[case("8080")]
    #[case(":http")]
    #[case("example.com:80")]
    #[case(":99999")]
    fn bind_addresses_without_an_ip_and_port_are_rejected(#[case] input: &str) {
        assert!(bind_address(input).is_err(), "{input:?} was accepted");
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        assert!(http_url("https://s3.example.com:9000/bucket").is_ok());
        assert!(http_url("s3.example.com").is_err());
        assert!(http_url("ftp://example.com").is_err());
        assert!(http_url("http://").is_err());
    }

    #[test]
    fn url_errors_and_redaction_hide_paths_and_credentials() {
        let url = url::Url::parse("https://user:pw@hooks.example.com/T000/B000/token?x=1").unwrap();
        assert_eq!(redact_url(&url), "https://hooks.example.com/***");
        let err = http_url("ftp://user:pw@example.com/secret-token").unwrap_err();
        assert!(!err.contains("pw") && !err.contains("secret-token"), "{err}");
    }

    #[rstest]
    #[case("k8up.io/backup", true)]
    #[case("backup", true)]
    #[case("example.com/my_key.v2", true)]
    #[case("k8up.io/", false)]
    #[case("Bad_Prefix/x", false)]
    #[case("k8up.io/-x", false)]
    fn annotation_keys_follow_the_api_server_rules(#[case] key: &str, #[case] valid: bool) {
        assert_eq!(annotation_key(key).is_ok(), valid, "{key}");
    }

    #[rstest]
    #[case("k8up-system", true)]
    #[case("pod-executor", true)]
    #[case("a.b", false)]
    #[case("Upper", false)]
    #[case("-x", false)]
    fn namespaces_are_dns_labels(#[case] name: &str, #[case] valid: bool) {
        assert_eq!(dns_label(name).is_ok(), valid, "{name}");
    }

    #[rstest]
    #[case("0 0 * * 0", true)]
    #[case("@weekly-random", true)]
    #[case("@annually", true)]
    #[case("0 0 * *", false)]
    #[case("@fortnightly", false)]
    fn cron_expressions_need_five_fields_or_a_known_macro(#[case] expr: &str, #[case] valid: bool) {
        assert_eq!(cron_shape(expr).is_ok(), valid, "{expr}");
    }

    #[rstest]
    #[case("UTC", true)]
    #[case("Europe/Zurich", true)]
    #[case("America/Argentina/Buenos_Aires", true)]
    #[case("Etc/GMT+5", true)]
    #[case("", false)]
    #[case("Europe/", false)]
    #[case("UTC+1 hour", false)]
    fn timezone_names_have_the_iana_shape(#[case] tz: &str, #[case] valid: bool) {
        assert_eq!(timezone(tz).is_ok(), valid, "{tz}");
    }
}
