//! `k8up operator`: the controller manager. For now only its configuration exists; the controllers arrive
//! with issue 5.

pub mod schedule;
pub mod settings;

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The controllers are not part of this build yet.
    #[error("failed to start the controllers: they are not implemented yet (they arrive with issue 5)")]
    NotImplemented,
}

/// Run the operator with validated settings until it is told to stop.
pub async fn run(settings: settings::OperatorSettings) -> Result<(), Error> {
    tracing::info!(
        namespace = %settings.operator_namespace,
        leader_election = settings.leader_election.enabled,
        "starting the operator"
    );
    Err(Error::NotImplemented)
}
