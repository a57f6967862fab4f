//! The `k8up` binary: parse the CLI, start telemetry, dispatch. Everything else lives in the library.

use std::process::ExitCode;

use anyhow::Context as _;
use k8up::cli::Command;
use k8up::operator::settings::OperatorSettings;
use k8up::restic::ResticArgs;

fn main() -> ExitCode {
    let cli = k8up::cli::try_parse().unwrap_or_else(|error| error.exit());
    if let Err(error) = k8up::telemetry::init(cli.debug, cli.log_format) {
        print_error(&anyhow::Error::new(error));
        return ExitCode::FAILURE;
    }
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(error) => {
            print_error(&error);
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Operator(args) => {
            let check_only = args.check_config;
            let settings = OperatorSettings::from_args(args)?;
            // `OperatorSettings`' Debug redacts every secret, so the whole configuration can be logged.
            tracing::debug!(?settings, "validated operator settings");
            if check_only {
                println!("{settings:#?}");
                return Ok(ExitCode::SUCCESS);
            }
            let runtime = tokio::runtime::Runtime::new().context("failed to start the async runtime")?;
            runtime.block_on(k8up::operator::run(settings))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Restic(args) => restic(args),
        Command::Crds(args) => {
            k8up::cli::crds(&args, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(args) => {
            k8up::cli::plan(args, &mut std::io::stdout().lock(), &mut std::io::stderr().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(command) => {
            k8up::cli::plugin(command, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Cli(command) => {
            // Unlocked handles: log lines go to stderr too while the command runs.
            k8up::cli::user(command, &mut std::io::stdout(), &mut std::io::stderr())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Version => {
            print!("{}", k8up::cli::VersionInfo::current());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `k8up restic`: runs the wrapper. Its report (JSON) is already on stdout and in the termination message;
/// a failure is printed once more on stderr with its cause chain and exits non-zero, so the Job fails
/// (with [`k8up::restic::PERMANENT_FAILURE_EXIT_CODE`] when retrying cannot help).
fn restic(args: ResticArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("failed to start the async runtime")?;
    match runtime.block_on(k8up::restic::run(args)) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            let code = if error.is_permanent() {
                ExitCode::from(k8up::restic::PERMANENT_FAILURE_EXIT_CODE)
            } else {
                ExitCode::FAILURE
            };
            print_error(&anyhow::Error::new(error));
            Ok(code)
        }
    }
}

/// Print the error and its whole cause chain, one cause per line.
fn print_error(error: &anyhow::Error) {
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
