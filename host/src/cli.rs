//! The `k8up` command line (clap derive): global logging flags and one subcommand per role of the binary.
//!
//! Every flag has an environment variable (K8up's name where K8up has one), a doc comment that becomes its
//! `--help` text, and a help heading per topic. `docs/configuration.md` is generated from this model by
//! [`config_reference_markdown`].

mod plan;
mod reference;
mod user;

use std::io::Write;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

pub use plan::{InspectArgs, LimitArgs, PlanArgs, PluginCommand, RunArgs, plan, plugin};
pub use reference::{REGENERATE_COMMAND as REGENERATE_DOCS_COMMAND, config_reference_markdown};
pub use user::{
    BackupArgs, ClusterArgs, DryRunArgs, Error as UserCliError, OutputFormat, RepositoryArgs, RestoreArgs,
    RestoreMethodArg, RestoreToS3Args, SnapshotsArgs, UserCliCommand, user,
};

use crate::operator::settings::OperatorArgs;
use crate::restic::ResticArgs;
use crate::telemetry::LogFormat;

/// Versions of the plugin contract (WIT packages) this build can run.
pub const SUPPORTED_WIT_VERSIONS: &[&str] = &["k8up:plugin@0.1.0"];

/// k8up: a Kubernetes backup operator built on restic, with job planning in WebAssembly plugins.
#[derive(Debug, Clone, Parser)]
#[command(name = "k8up", version, propagate_version = true, max_term_width = 120)]
pub struct Cli {
    /// Log at debug level for k8up's own crates (`RUST_LOG` still sets everything else).
    #[arg(
        long = "debug",
        short = 'd',
        visible_alias = "verbose",
        env = "K8UP_DEBUG",
        global = true,
        action = ArgAction::SetTrue,
        value_parser = BoolishValueParser::new()
    )]
    pub debug: bool,

    /// Format of log lines on stderr.
    #[arg(
        long = "log-format",
        value_name = "FORMAT",
        env = "K8UP_LOG_FORMAT",
        global = true,
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,

    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// One value per process: the size difference between variants costs nothing worth a `Box`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the operator: the controllers that turn k8up.io resources into Jobs.
    Operator(OperatorArgs),
    /// Run the restic wrapper (inside a Job pod, started by the operator).
    Restic(ResticArgs),
    /// Print every CustomResourceDefinition as YAML, or write one file per kind.
    Crds(CrdsArgs),
    /// Print the Jobs the operator would create for a resource (YAML), without writing to any cluster.
    Plan(PlanArgs),
    /// Inspect a plugin component or run its planner on a request.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// The user CLI: create a Restore or a one-off Backup, list the snapshots of a namespace (through the
    /// Kubernetes API, with a kubeconfig or in a cluster).
    #[command(subcommand)]
    Cli(UserCliCommand),
    /// Print the version, git commit, build target and supported plugin interface versions.
    Version,
}

/// Parse the process's arguments and environment like `Cli::try_parse()`, except that environment variables
/// set to the empty string count as unset.
///
/// K8up (urfave/cli) ignores empty variables, and Helm charts and Kustomize overlays render unset values as
/// `""`; clap would reject `BACKUP_GLOBAL_BACKOFF_LIMIT=""` as an invalid number instead.
pub fn try_parse() -> Result<Cli, clap::Error> {
    let mut command = command_ignoring_empty_env();
    let mut matches = command.try_get_matches_from_mut(std::env::args_os())?;
    Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command))
}

/// The clap command of [`Cli`] with every argument whose environment variable is set but empty detached from
/// that variable (it then takes its default, and `--help` does not mention the variable).
pub fn command_ignoring_empty_env() -> clap::Command {
    ignore_empty_env(Cli::command())
}

fn ignore_empty_env(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let empty = arg
                .get_env()
                .and_then(std::env::var_os)
                .is_some_and(|v| v.is_empty());
            if empty { arg.env(None::<&'static str>) } else { arg }
        })
        .mut_subcommands(ignore_empty_env)
}

/// Flags of `k8up crds`.
#[derive(Debug, Clone, Args)]
pub struct CrdsArgs {
    /// Write one YAML file per kind into this directory instead of printing them all to stdout.
    #[arg(long = "dir", env = "K8UP_CRDS_DIR", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Why a CLI command (other than the operator and the wrapper, which have their own errors) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CRDs could not be rendered.
    #[error("failed to render the CRDs")]
    RenderCrds(#[source] serde_yaml::Error),
    /// The CRD files could not be written.
    #[error("failed to write the CRDs to {}", dir.display())]
    WriteCrds {
        /// The target directory.
        dir: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// Standard output could not be written.
    #[error("failed to write to standard output")]
    WriteOutput(#[source] std::io::Error),
    /// The operator settings given to `k8up plan` are invalid.
    #[error(transparent)]
    Settings(crate::operator::settings::SettingsError),
    /// The async runtime could not be started.
    #[error("failed to start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// A dry run (`k8up plan`, `k8up plugin`) failed.
    #[error(transparent)]
    DryRun(#[from] crate::plugin::dryrun::DryRunError),
    /// Jobs could not be rendered as YAML.
    #[error("failed to render the jobs as YAML")]
    RenderYaml(#[source] serde_yaml::Error),
    /// A request or plan could not be rendered as JSON.
    #[error("failed to render JSON")]
    RenderJson(#[source] serde_json::Error),
}

/// `k8up crds`: print all CRDs to `out`, or write them into `args.dir` and list the files written.
pub fn crds(args: &CrdsArgs, out: &mut impl Write) -> Result<(), Error> {
    match &args.dir {
        None => {
            let yaml = crate::crd::render_all().map_err(Error::RenderCrds)?;
            out.write_all(yaml.as_bytes()).map_err(Error::WriteOutput)
        }
        Some(dir) => {
            let written = crate::crd::write_dir(dir).map_err(|source| Error::WriteCrds {
                dir: dir.clone(),
                source,
            })?;
            for path in written {
                writeln!(out, "wrote {}", path.display()).map_err(Error::WriteOutput)?;
            }
            Ok(())
        }
    }
}

/// What `k8up version` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// Crate version.
    pub version: &'static str,
    /// Git commit the binary was built from (`K8UP_GIT_COMMIT` at build time), or `unknown`.
    pub commit: &'static str,
    /// CPU architecture and operating system of the build.
    pub target: String,
    /// Supported plugin interface versions.
    pub wit_versions: &'static [&'static str],
}

impl VersionInfo {
    /// The facts of this build.
    pub fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            // Set by the release build (CI or the container build); a plain `cargo build` does not know it.
            commit: option_env!("K8UP_GIT_COMMIT").unwrap_or("unknown"),
            target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
            wit_versions: SUPPORTED_WIT_VERSIONS,
        }
    }
}

impl std::fmt::Display for VersionInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "k8up {}", self.version)?;
        writeln!(f, "commit: {}", self.commit)?;
        writeln!(f, "target: {}", self.target)?;
        writeln!(f, "plugin interfaces: {}", self.wit_versions.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_info_names_the_crate_version_and_the_plugin_interface() {
        let text = VersionInfo::current().to_string();
        assert!(
            text.starts_with(&format!("k8up {}\n", env!("CARGO_PKG_VERSION"))),
            "{text}"
        );
        assert!(text.contains("plugin interfaces: k8up:plugin@0.1.0"), "{text}");
    }

    #[test]
    fn debug_accepts_its_k8up_aliases() {
        for flag in ["--debug", "--verbose", "-d"] {
            let cli = Cli::try_parse_from(["k8up", flag, "version"]).unwrap();
            assert!(cli.debug, "{flag}");
        }
        let cli = Cli::try_parse_from(["k8up", "version", "--log-format", "json"]).unwrap();
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(!cli.debug);
    }

    #[test]
    fn the_command_model_is_consistent() {
        Cli::command().debug_assert();
    }
}
