//! Logging setup (tracing): human-readable or JSON lines on stderr, filtered by `RUST_LOG` and `--debug`.
//!
//! Nothing here can keep a secret out of a log line; that is the job of the types that carry secrets
//! (`operator::settings::Secret` prints `***`). Log fields with `?value` only for types known to redact.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{Directive, ParseError};

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `RUST_LOG` holds a directive that does not parse.
    #[error("failed to parse the log filter {filter:?}")]
    ParseFilter {
        /// The offending filter string.
        filter: String,
        /// The parser's complaint.
        source: ParseError,
    },
    /// A global subscriber was installed already (telemetry initialised twice).
    #[error("failed to install the log subscriber")]
    Install(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Crates of this project, raised to `debug` by `--debug`.
const OWN_CRATES: &[&str] = &["k8up", "k8up_tests", "k8up_plugin_sdk"];

/// Without `RUST_LOG`: `info` for us, and quieter dependencies whose `info` is noise in an operator.
const DEFAULT_FILTER: &str =
    "info,kube_runtime=warn,hyper=warn,rustls=warn,cranelift_codegen=warn,wasmtime=warn";

/// Build the filter: `RUST_LOG` if set (else [`DEFAULT_FILTER`]), plus `debug` for our crates with `--debug`.
pub fn filter(debug: bool, rust_log: Option<&str>) -> Result<EnvFilter, Error> {
    let base = rust_log
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(DEFAULT_FILTER);
    let parse_error = |source| Error::ParseFilter {
        filter: base.to_owned(),
        source,
    };
    let mut filter = EnvFilter::builder().parse(base).map_err(parse_error)?;
    if debug {
        for krate in OWN_CRATES {
            let directive: Directive = format!("{krate}=debug").parse().map_err(parse_error)?;
            filter = filter.add_directive(directive);
        }
    }
    Ok(filter)
}

/// Install the global subscriber writing to stderr. Call once, at the start of `main`.
pub fn init(debug: bool, format: LogFormat) -> Result<(), Error> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = filter(debug, rust_log.as_deref())?;
    // Colour only for a person at a terminal: escape codes would litter `kubectl logs` and log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_target(debug).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .flatten_event(true)
            .try_init(),
    }
    .map_err(Error::Install)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_raises_only_our_crates_to_debug() {
        let text = filter(true, None).unwrap().to_string();
        assert!(text.contains("k8up=debug"), "{text}");
        assert!(text.contains("hyper=warn"), "{text}");
        assert!(!filter(false, None).unwrap().to_string().contains("k8up=debug"));
    }

    #[test]
    fn rust_log_replaces_the_default_filter() {
        let text = filter(false, Some("trace")).unwrap().to_string();
        assert!(!text.contains("hyper=warn"), "{text}");
        assert!(text.contains("trace"), "{text}");
    }

    #[test]
    fn an_unparsable_rust_log_is_an_error_naming_it() {
        let err = filter(false, Some("k8up=loud")).unwrap_err();
        assert!(err.to_string().contains("k8up=loud"), "{err}");
    }
}
