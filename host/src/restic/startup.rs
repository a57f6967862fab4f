//! The start-up sequence shared by every mode: sleep, client PEM, `init` if missing (it stops at the config
//! check of an existing repository), stale-lock `unlock` (which also proves the password), and for modes
//! other than a plain backup a `snapshots` listing (which warms the cache). Each call that opens the
//! repository costs ~1 s on a remote one, so a backup makes only `unlock` before its own.

use std::io::Write;

use rand::Rng;

use super::json::Snapshot;
use super::runner::ResticError;
use super::{Ctx, Error};

/// Runs the start-up sequence. The client PEM path is written into the runner's globals via `ctx`.
pub async fn prepare(ctx: &Ctx) -> Result<(), Error> {
    if !ctx.cfg.sleep.is_zero() {
        tracing::info!(seconds = ctx.cfg.sleep.as_secs(), "sleeping before start");
        tokio::time::sleep(ctx.cfg.sleep).await;
    }
    if !ctx.cfg.await_repository.is_zero() {
        await_repository(ctx, ctx.cfg.await_repository).await?;
        unlock_stale(ctx).await?;
    } else {
        // `init` first, even though an existing repository makes it fail: on S3 it also creates a missing
        // bucket, where any other command retries forever.
        init(ctx).await?;
        unlock_stale(ctx).await?;
    }
    if ctx.cfg.modes != [super::config::Mode::Backup] {
        list_snapshots(ctx, &ctx.cfg.filter(false)).await?;
    }
    Ok(())
}

/// Concatenates client certificate and key into one PEM under the var dir (restic's `--tls-client-cert`
/// wants both in one file). Returns its path.
pub fn write_client_pem(
    var_dir: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<std::path::PathBuf, Error> {
    let prep = |what: &str, source| Error::Prepare {
        what: what.to_owned(),
        source,
    };
    let mut pem = std::fs::read(cert).map_err(|e| prep("the client certificate", e))?;
    if !pem.ends_with(b"\n") {
        pem.push(b'\n');
    }
    pem.extend(std::fs::read(key).map_err(|e| prep("the client key", e))?);
    std::fs::create_dir_all(var_dir).map_err(|e| prep("the var directory", e))?;
    let suffix: String = rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(10)
        .map(char::from)
        .collect();
    let path = var_dir.join(format!("restic.repo.{suffix}.pem"));
    let mut f = std::fs::File::create(&path).map_err(|e| prep("the client PEM", e))?;
    f.write_all(&pem).map_err(|e| prep("the client PEM", e))?;
    Ok(path)
}

/// How often a Job waiting for another one to initialise the repository looks again.
const AWAIT_REPOSITORY_POLL: std::time::Duration = std::time::Duration::from_secs(2);

async fn init(ctx: &Ctx) -> Result<(), Error> {
    match ctx.runner.output(&ctx.cfg.globals.init()).await {
        Ok(_) => {
            tracing::info!("initialised a new repository");
            Ok(())
        }
        Err(e) if already_initialised(&e) => Ok(()),
        Err(e) => Err(Error::Init(e)),
    }
}

/// Waits until the repository's config exists (another Job initialises it), up to `limit`.
async fn await_repository(ctx: &Ctx, limit: std::time::Duration) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut logged = false;
    loop {
        match ctx.runner.output(&ctx.cfg.globals.cat_config()).await {
            Ok(_) => return Ok(()),
            // A missing repository is what is being waited for; a wrong password or a refused command is
            // not going to change.
            Err(e)
                if tokio::time::Instant::now() + AWAIT_REPOSITORY_POLL > deadline
                    || (e.is_permanent() && !matches!(e, ResticError::RepositoryMissing { .. })) =>
            {
                return Err(Error::AwaitRepository {
                    waited: humantime::format_duration(limit).to_string(),
                    source: e,
                });
            }
            Err(_) => {
                if !logged {
                    tracing::info!("waiting for another job to initialise the repository");
                    logged = true;
                }
                tokio::time::sleep(AWAIT_REPOSITORY_POLL).await;
            }
        }
    }
}

fn already_initialised(e: &ResticError) -> bool {
    e.stderr()
        .is_some_and(|s| s.contains("already initialized") || s.contains("already exists"))
}

/// `restic unlock`: removes only locks restic itself considers stale. A missing repository, a wrong password
/// and other permanent failures are errors (`Error::Open`); anything else is logged, not fatal.
pub async fn unlock_stale(ctx: &Ctx) -> Result<(), Error> {
    match ctx.runner.output(&ctx.cfg.globals.unlock(false)).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_permanent() => Err(Error::Open(e)),
        Err(e) => {
            tracing::warn!(error = %e, "failed to remove stale locks");
            Ok(())
        }
    }
}

/// `restic snapshots --json` with a filter.
pub async fn list_snapshots(
    ctx: &Ctx,
    filter: &super::command::SnapshotFilter,
) -> Result<Vec<Snapshot>, Error> {
    let out = ctx
        .runner
        .output(&ctx.cfg.globals.snapshots(filter))
        .await
        .map_err(Error::ListSnapshots)?;
    let text = out.stdout.trim();
    if text.is_empty() || text == "null" {
        return Ok(Vec::new());
    }
    serde_json::from_str(text).map_err(|e| {
        Error::ListSnapshots(ResticError::Failed {
            command: "snapshots".into(),
            code: Some(0),
            stderr: format!("unparsable output: {e}"),
        })
    })
}
