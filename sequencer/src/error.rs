//! Typed errors of the sequencer library.

use collar_protocol::Rejection;

/// A persistence failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The database URL names an engine other than SQLite or Postgres.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// The driver failed (connection lost, constraint violated, …).
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// Stored data contradicts itself or the configuration.
    #[error("database content is inconsistent: {0}")]
    Corrupt(String),
}

/// Why the sequencer did not accept a submission.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The protocol rules or the signatures reject it (nothing was written).
    #[error("rejected: {0}")]
    Rejected(Rejection),
    /// The idempotency key was already used by a different payload.
    #[error("idempotency key {key} was used by a different payload")]
    Conflict {
        /// The key.
        key: String,
    },
    /// The transaction may not be submitted here (e.g. an operator kind on the user route).
    #[error("{0}")]
    Forbidden(String),
    /// The database did not confirm the commit; nothing is promised. Retry the same payload.
    #[error("not committed: {0}")]
    Unavailable(String),
}

/// A proving failure.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError {
    /// The circuit cannot prove this batch (yet); retrying will not help.
    #[error("unsupported by the circuit: {0}")]
    Unsupported(String),
    /// The batch contradicts its sealed record (roots or execution); retrying will not help.
    #[error("inconsistent batch: {0}")]
    Inconsistent(String),
    /// Proving or verification failed.
    #[error("proving failed: {0}")]
    Failed(String),
}

impl ProveError {
    /// Whether retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ProveError::Unsupported(_) | ProveError::Inconsistent(_)
        )
    }
}
