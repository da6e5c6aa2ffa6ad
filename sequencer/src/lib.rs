//! Collar's node: an HTTP API taking signed transactions, a durable SQLite/Postgres log,
//! batching, prover workers sharing a job queue, and the pieces of the `collar` CLI.
//!
//! "Accepted" means committed: the API replies 2xx only after the database transaction holding
//! the transaction has committed. The log is the source of truth; on restart the state is
//! rebuilt by replaying it from genesis.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod api;
pub mod client;
pub mod db;
pub mod error;
pub mod idempotency;
pub mod l1;
pub mod metrics;
pub mod node;
pub mod prover;
pub mod sequencer;

pub use error::{DbError, ProveError, SubmitError};
