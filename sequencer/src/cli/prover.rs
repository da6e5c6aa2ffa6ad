//! `collar prover`: a worker claiming sealed batches from the job queue under a lease.

use std::sync::Arc;
use std::time::Duration;

use collar_protocol::Genesis;
use collar_sequencer::db::Db;
use collar_sequencer::prover::{Halo2Backend, Worker, WorkerConfig};

use super::CircuitArgs;

/// Arguments of `collar prover`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The node's database (the genesis is read from it).
    #[arg(long, env = "COLLAR_DATABASE_URL")]
    pub database_url: String,
    /// Worker name (lease owner); defaults to host-pid.
    #[arg(long)]
    pub name: Option<String>,
    /// Lease length in seconds (renewed while proving).
    #[arg(long, default_value_t = 60)]
    pub lease_secs: u64,
    /// Attempts before a job is given up.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: i64,
    /// Exit when the queue is empty instead of polling.
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub circuit: CircuitArgs,
}

/// Runs the worker.
pub async fn run(a: Args) -> anyhow::Result<()> {
    super::init_tracing("info");
    let db = Db::connect(&a.database_url, 2).await?;
    let genesis: Genesis = serde_json::from_str(
        &db.meta("genesis")
            .await?
            .ok_or_else(|| anyhow::anyhow!("the database has no genesis: start a node first"))?,
    )?;
    let name = a
        .name
        .unwrap_or_else(|| format!("prover-{}", std::process::id()));
    let backend = Arc::new(Halo2Backend::new(genesis.clone(), a.circuit.halo2()));
    let mut cfg = WorkerConfig::named(name);
    cfg.lease = Duration::from_secs(a.lease_secs);
    cfg.max_attempts = a.max_attempts;
    let mut w = Worker::new(db, genesis, backend, cfg);
    if a.once {
        while let Some(o) = w.run_once().await? {
            println!("{o:?}");
        }
        return Ok(());
    }
    w.run().await;
    Ok(())
}
