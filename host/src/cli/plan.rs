//! `k8up plan` and `k8up plugin inspect|run`: the flags, and the commands that print their results.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Subcommand};

use super::Error;
use crate::operator::settings::{OperatorArgs, OperatorSettings};
use crate::plugin::dryrun::{self, Cluster, Resource};
use crate::plugin::source::Fixed;
use crate::plugin::{Limits, PluginEngine, PluginPlanner};

/// Flags of `k8up plan`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// The resource to plan: a Backup, Restore, Archive, Check or Prune manifest (one YAML document).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        env = "K8UP_PLAN_FILE",
        help_heading = "Plan"
    )]
    pub file: PathBuf,

    /// The cluster the plan sees, instead of a real one: a multi-document YAML (or `kind: List`) of
    /// PersistentVolumeClaims, PersistentVolumes, Pods, PreBackupPods and PodConfigs. Without it and
    /// without `--kubeconfig` the plan sees an empty namespace.
    #[arg(
        long = "state",
        value_name = "FILE",
        env = "K8UP_PLAN_STATE",
        conflicts_with = "kubeconfig",
        help_heading = "Plan"
    )]
    pub state: Option<PathBuf>,

    /// Read the cluster state through this kubeconfig (read-only: nothing is created or changed).
    #[arg(
        long = "kubeconfig",
        value_name = "FILE",
        env = "K8UP_PLAN_KUBECONFIG",
        help_heading = "Plan"
    )]
    pub kubeconfig: Option<PathBuf>,

    /// Plan with this plugin component instead of the built-in one (to try a custom plugin).
    #[arg(
        long = "plugin-file",
        value_name = "FILE.wasm",
        env = "K8UP_PLAN_PLUGIN_FILE",
        help_heading = "Plan"
    )]
    pub plugin_file: Option<PathBuf>,

    /// Print the plan request the plugin gets (the contract's JSON, for `k8up plugin run`) instead of Jobs.
    #[arg(
        long = "request-only",
        env = "K8UP_PLAN_REQUEST_ONLY",
        action = ArgAction::SetTrue,
        value_parser = BoolishValueParser::new(),
        help_heading = "Plan"
    )]
    pub request_only: bool,

    /// The operator settings the plan is made with: the same flags and environment variables as
    /// `k8up operator`, so that a plan made in the operator's environment is exactly what it would do.
    #[command(flatten)]
    pub operator: OperatorArgs,
}

/// `k8up plugin` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum PluginCommand {
    /// Load a plugin component and print its name, version, contract version, actions, size and sha256.
    Inspect(InspectArgs),
    /// Call a plugin component's `plan` with a plan request (JSON) and print its raw, unchecked plan (JSON).
    Run(RunArgs),
}

/// The sandbox limits of `k8up plugin` calls.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Wall-clock budget of one plugin call, in milliseconds.
    #[arg(
        long = "plugin-timeout-ms",
        value_name = "MS",
        env = "K8UP_PLUGIN_TIMEOUT_MS",
        default_value_t = 1000
    )]
    pub timeout_ms: u64,

    /// Memory cap of one plugin instance, in MiB.
    #[arg(
        long = "plugin-memory-mib",
        value_name = "MIB",
        env = "K8UP_PLUGIN_MEMORY_MIB",
        default_value_t = 64
    )]
    pub memory_mib: u64,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            timeout: Duration::from_millis(self.timeout_ms),
            memory_bytes: usize::try_from(self.memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            ..Limits::default()
        }
    }
}

/// Flags of `k8up plugin inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// The component (`.wasm`).
    #[arg(value_name = "FILE.wasm", env = "K8UP_PLUGIN_FILE")]
    pub file: PathBuf,
    /// Sandbox limits.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Flags of `k8up plugin run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The component (`.wasm`).
    #[arg(value_name = "FILE.wasm", env = "K8UP_PLUGIN_FILE")]
    pub file: PathBuf,
    /// The plan request, as JSON (`k8up plan --request-only` prints one).
    #[arg(long = "request", value_name = "FILE.json", env = "K8UP_PLUGIN_REQUEST")]
    pub request: PathBuf,
    /// Sandbox limits.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// `k8up plan`: prints the Jobs (multi-document YAML) or the request (JSON) to `out`, the plugin's note to
/// `notes`. Writes nothing to any cluster.
pub fn plan(args: PlanArgs, out: &mut impl Write, notes: &mut impl Write) -> Result<(), Error> {
    let check_only = args.operator.check_config;
    let settings = Arc::new(OperatorSettings::from_args(args.operator).map_err(Error::Settings)?);
    if check_only {
        return writeln!(out, "{settings:#?}").map_err(Error::WriteOutput);
    }
    let text = dryrun::read(&args.file)?;
    let resource = Resource::parse(&String::from_utf8_lossy(&text))?;
    let state = match &args.state {
        Some(path) => crate::plugin::state::parse_state(&String::from_utf8_lossy(&dryrun::read(path)?))
            .map_err(dryrun::DryRunError::from)?,
        None => crate::plugin::state::State::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let result = runtime.block_on(async {
        let planner = match &args.plugin_file {
            Some(path) => {
                let engine = PluginEngine::new(crate::plugin::planner::limits(&settings.plugins))?;
                let fixed = Fixed::from_file(&engine, path)?;
                PluginPlanner::new(engine, Arc::new(fixed))
            }
            None => PluginPlanner::with_builtins(&settings.plugins).await?,
        };
        match &args.kubeconfig {
            Some(path) => {
                let client = dryrun::client_from_kubeconfig(path).await?;
                dryrun::plan_resource(
                    &planner,
                    &resource,
                    &settings,
                    Cluster::Client(&client),
                    args.request_only,
                )
                .await
            }
            None => {
                dryrun::plan_resource(
                    &planner,
                    &resource,
                    &settings,
                    Cluster::State(&state),
                    args.request_only,
                )
                .await
            }
        }
    })?;
    if args.request_only {
        let json = serde_json::to_string_pretty(&result.request).map_err(Error::RenderJson)?;
        return writeln!(out, "{json}").map_err(Error::WriteOutput);
    }
    for (i, job) in result.jobs.iter().enumerate() {
        if i > 0 {
            out.write_all(b"---\n").map_err(Error::WriteOutput)?;
        }
        let yaml = serde_yaml::to_string(job).map_err(Error::RenderYaml)?;
        out.write_all(yaml.as_bytes()).map_err(Error::WriteOutput)?;
    }
    if result.jobs.is_empty() {
        let (namespace, name) = resource.key();
        writeln!(
            notes,
            "{namespace}/{name}: no Jobs, the action would complete as Succeeded"
        )
        .map_err(Error::WriteOutput)?;
    }
    if let Some(message) = &result.message {
        writeln!(notes, "plan message: {message}").map_err(Error::WriteOutput)?;
    }
    Ok(())
}

/// `k8up plugin inspect|run`: prints the inspection (YAML-style lines) or the raw plan (JSON) to `out`.
pub fn plugin(command: PluginCommand, out: &mut impl Write) -> Result<(), Error> {
    match command {
        PluginCommand::Inspect(args) => {
            let inspection = dryrun::inspect(&args.file, args.limits.limits())?;
            write!(out, "{inspection}").map_err(Error::WriteOutput)
        }
        PluginCommand::Run(args) => {
            let plan = dryrun::run_plugin(&args.file, &args.request, args.limits.limits())?;
            let json = serde_json::to_string_pretty(&plan).map_err(Error::RenderJson)?;
            writeln!(out, "{json}").map_err(Error::WriteOutput)
        }
    }
}
