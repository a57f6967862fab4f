//! `k8up restic`: the wrapper around the restic binary that runs inside every Job. Placeholder.

/// Flags and environment of `k8up restic` (REFERENCE.md 4.1).
#[derive(Debug, Clone, clap::Args)]
pub struct ResticArgs {
    /// The restic repository (`RESTIC_REPOSITORY`).
    #[arg(long = "resticRepository", env = "RESTIC_REPOSITORY")]
    pub restic_repository: Option<String>,
}
