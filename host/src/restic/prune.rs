//! Prune mode: wait for other clients' locks, then `restic forget --prune` with the retention policy, only on
//! the namespace's hosts (or `--hostnameFilter`) and the `--tag` filter; removed snapshots go into the report.

use super::json::{ForgetGroup, first_json_line};
use super::locks::{self, KubePods, LockPolicy, PodLookup};
use super::report::ResticReport;
use super::runner::ResticError;
use super::{Ctx, Error, startup};

/// Waits for foreign locks by the rule in [`locks`]; orphaned locks removed become report warnings.
pub async fn wait_for_repository(ctx: &Ctx, report: &mut ResticReport) -> Result<(), Error> {
    let kube_pods = ctx.kube.clone().map(|c| KubePods::new(c, &ctx.cfg.host));
    let policy = LockPolicy {
        wait: ctx.cfg.lock_wait,
        orphan_after: ctx.cfg.lock_orphan_after,
        pods: kube_pods.as_ref().map(|p| p as &dyn PodLookup),
    };
    let removed = locks::wait_for_locks(&ctx.runner, &ctx.cfg.globals, &policy).await?;
    report
        .warnings
        .extend(removed.into_iter().map(|d| format!("removed orphaned {d}")));
    Ok(())
}

/// Runs the prune mode.
pub async fn run(ctx: &Ctx, report: &mut ResticReport) -> Result<(), Error> {
    wait_for_repository(ctx, report).await?;
    if ctx.cfg.retention.is_empty() {
        report
            .warnings
            .push("no retention rule is set: prune keeps every snapshot".to_owned());
    }
    let cmd = ctx
        .cfg
        .globals
        .forget_prune(&ctx.cfg.retention, &ctx.cfg.filter(false));
    let out = ctx.runner.output(&cmd).await.map_err(Error::Prune)?;
    let groups: Vec<ForgetGroup> = match first_json_line(&out.stdout) {
        Some(g) => g,
        None if out.stdout.trim().is_empty() => Vec::new(),
        None => {
            return Err(Error::Prune(ResticError::Failed {
                command: "forget".into(),
                code: Some(0),
                stderr: "restic printed no JSON result".into(),
            }));
        }
    };
    for g in &groups {
        tracing::info!(host = %g.host, paths = ?g.paths, kept = g.keep.len(), removed = g.remove.len(), "pruned group");
        report.removed.extend(g.remove.iter().map(|s| s.id.clone()));
    }
    if let Ok(all) = startup::list_snapshots(ctx, &ctx.cfg.filter(false)).await {
        ctx.notifier.snapshot_list(&ctx.cfg, &all).await;
    }
    Ok(())
}
