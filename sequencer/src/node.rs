//! A running node: database, sequencer task, optional in-process prover workers and the HTTP
//! server, started together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use collar_circuits::batch::{table_size, MIN_TABLE_SIZE};
use collar_protocol::Genesis;
use tokio::task::JoinHandle;

use crate::api::{router, ApiConfig, AppState};
use crate::db::Db;
use crate::l1::{spawn_watcher, L1Feed};
use crate::metrics::Metrics;
use crate::prover::{Halo2Backend, Halo2Config, ProofBackend, Worker, WorkerConfig};
use crate::sequencer::{self, SequencerConfig, SequencerHandle};

/// Everything a node needs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Listen address (port 0 picks a free one).
    pub bind: SocketAddr,
    /// Genesis (recorded in the database on first start; must match later).
    pub genesis: Genesis,
    /// Batching.
    pub sequencer: SequencerConfig,
    /// HTTP.
    pub api: ApiConfig,
    /// In-process prover workers (0 for none).
    pub workers: usize,
    /// Circuit shape for in-process workers.
    pub halo2: Halo2Config,
    /// Database pool size.
    pub max_connections: u32,
    /// Where deposits come from.
    pub l1: L1Config,
}

/// Where a node's deposits come from.
#[derive(Clone, Debug, Default)]
pub enum L1Config {
    /// No L1: the operator submits deposits (`POST /v1/operator/deposits`), each under an
    /// `Idempotency-Key` naming it on L1 (see [`crate::idempotency`]).
    #[default]
    Operator,
    /// The devnet settlement contract, in process ([`L1Feed`]): deposits are read from its
    /// events; `journal` makes the devnet durable (`None`: in memory, lost on exit).
    Devnet {
        /// The devnet's journal file.
        journal: Option<PathBuf>,
    },
}

/// A started node.
pub struct Node {
    /// The bound address.
    pub addr: SocketAddr,
    /// The sequencer.
    pub sequencer: SequencerHandle,
    /// The database.
    pub db: Db,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The server task.
    pub server: JoinHandle<()>,
    /// Worker tasks.
    pub workers: Vec<JoinHandle<()>>,
    /// The L1 deposits come from, if any, and the task feeding them in.
    pub l1: Option<(L1Feed, JoinHandle<()>)>,
}

impl Node {
    /// Connects, migrates, replays the log, binds and serves. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// Database or bind failures; an account limit below [`MIN_TABLE_SIZE`]; while workers
    /// run, a batch size above the circuit capacity or batches that may name more accounts
    /// than the circuit's account table holds.
    pub async fn start(cfg: NodeConfig) -> anyhow::Result<Node> {
        if let Some(max) = cfg.sequencer.max_accounts {
            anyhow::ensure!(
                max >= MIN_TABLE_SIZE,
                "an account limit of {max} is below {MIN_TABLE_SIZE}, the accounts one \
                 transaction may name"
            );
        }
        if cfg.workers > 0 {
            anyhow::ensure!(
                cfg.sequencer.batch_size <= cfg.halo2.capacity,
                "batch size {} exceeds the circuit capacity {}",
                cfg.sequencer.batch_size,
                cfg.halo2.capacity
            );
            let named = table_size(cfg.sequencer.batch_size, cfg.sequencer.max_accounts);
            anyhow::ensure!(
                named <= cfg.halo2.table_size(),
                "batches may name {named} accounts; the circuit's account table holds {}",
                cfg.halo2.table_size()
            );
        }
        let db = Db::connect(&cfg.database_url, cfg.max_connections).await?;
        let metrics = Arc::new(Metrics::default());
        let seq = sequencer::start(
            db.clone(),
            cfg.genesis.clone(),
            cfg.sequencer.clone(),
            metrics.clone(),
        )
        .await?;
        let mut workers = Vec::new();
        if cfg.workers > 0 {
            let backend: Arc<dyn ProofBackend> =
                Arc::new(Halo2Backend::new(cfg.genesis.clone(), cfg.halo2.clone()));
            for i in 0..cfg.workers {
                let w = Worker::new(
                    db.clone(),
                    cfg.genesis.clone(),
                    backend.clone(),
                    WorkerConfig::named(format!("inproc-{}-{i}", std::process::id())),
                )
                .with_metrics(metrics.clone());
                workers.push(tokio::spawn(w.run()));
            }
        }
        let mut state = AppState::new(seq.clone(), db.clone(), metrics.clone(), cfg.api.clone());
        let l1 = match &cfg.l1 {
            L1Config::Operator => None,
            L1Config::Devnet { journal } => {
                let feed = L1Feed::open_devnet(journal.as_deref(), &cfg.genesis)?;
                state = state.with_l1(feed.clone());
                let watcher = spawn_watcher(feed.clone(), seq.clone());
                Some((feed, watcher))
            }
        };
        let app = router(state);
        let listener = tokio::net::TcpListener::bind(cfg.bind).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            // Connection info gives the API each client's address for the per-client limit.
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "server stopped");
            }
        });
        tracing::info!(%addr, "listening");
        Ok(Node {
            addr,
            sequencer: seq,
            db,
            metrics,
            server,
            workers,
            l1,
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and workers.
    pub fn stop(self) {
        self.server.abort();
        for w in self.workers {
            w.abort();
        }
        if let Some((_, watcher)) = self.l1 {
            watcher.abort();
        }
    }
}
