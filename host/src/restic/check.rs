//! Check mode: wait for other clients' locks, then `restic check [--read-data-subset]`; the outcome goes to
//! the webhook and the Pushgateway when they are configured.

use super::notify::CheckOutcome;
use super::report::ResticReport;
use super::{Ctx, Error, prune};

/// Runs the check mode.
pub async fn run(ctx: &Ctx, report: &mut ResticReport) -> Result<(), Error> {
    let started = chrono::Utc::now();
    let result = check(ctx, report).await;
    let outcome = CheckOutcome {
        started,
        error: result.as_ref().err().map(ToString::to_string),
    };
    ctx.notifier.check_result(&ctx.cfg, &outcome).await;
    result
}

async fn check(ctx: &Ctx, report: &mut ResticReport) -> Result<(), Error> {
    prune::wait_for_repository(ctx, report).await?;
    let cmd = ctx.cfg.globals.check(ctx.cfg.read_data_subset.as_deref());
    let out = ctx.runner.output(&cmd).await.map_err(Error::Check)?;
    for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
        tracing::info!("check: {line}");
    }
    Ok(())
}
