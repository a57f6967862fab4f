//! Check mode: wait for other clients' locks, then `restic check [--read-data-subset]`.

use super::report::ResticReport;
use super::{Ctx, Error, prune};

/// Runs the check mode.
pub async fn run(ctx: &Ctx, report: &mut ResticReport) -> Result<(), Error> {
    prune::wait_for_repository(ctx, report).await?;
    let cmd = ctx.cfg.globals.check(ctx.cfg.read_data_subset.as_deref());
    let out = ctx.runner.output(&cmd).await.map_err(Error::Check)?;
    for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
        tracing::info!("check: {line}");
    }
    Ok(())
}
