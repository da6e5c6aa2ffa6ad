//! Shared test fixtures: a database per test (a temporary SQLite file, or a uniquely named
//! Postgres database on 127.0.0.1:5432 dropped afterwards) and an in-process node on a free
//! port.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use collar_protocol::batch::{BatchPublicInputs, ExecutedBatch};
use collar_protocol::testkit::Harness;
use collar_protocol::{ProtocolParams, SignedTx, State};
use collar_sequencer::api::ApiConfig;
use collar_sequencer::client::{Client, Reply};
use collar_sequencer::node::{L1Config, Node, NodeConfig};
use collar_sequencer::prover::{Halo2Config, ProofBackend, ProofBlob};
use collar_sequencer::sequencer::SequencerConfig;
use collar_sequencer::ProveError;
use sha2::{Digest, Sha256};

/// The operator token of test nodes.
pub const TOKEN: &str = "test-operator-token";

/// Admin URL of the local Postgres (trust auth).
pub fn pg_admin_url() -> String {
    std::env::var("COLLAR_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Which engine a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Temporary SQLite file.
    Sqlite,
    /// Fresh Postgres database.
    Postgres,
}

/// A database that exists for one test.
pub struct TestDb {
    /// Its URL.
    pub url: String,
    engine: Engine,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestDb {
    /// Creates a fresh database.
    pub async fn new(engine: Engine) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("collar_test_{}_{n}_{nanos}", std::process::id());
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("t.db").display());
                TestDb {
                    url,
                    engine,
                    name,
                    _dir: Some(dir),
                }
            }
            Engine::Postgres => {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&pg_admin_url())
                    .await
                    .expect("Postgres on 127.0.0.1:5432 (set COLLAR_TEST_POSTGRES to override)");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .await
                    .unwrap();
                let base = pg_admin_url();
                let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
                TestDb {
                    url,
                    engine,
                    name,
                    _dir: None,
                }
            }
        }
    }

    /// Drops a Postgres database (SQLite files go with their directory).
    pub async fn drop_db(self) {
        if self.engine == Engine::Postgres {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap();
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut c)
            .await
            .unwrap();
        }
    }
}

/// The harness every test signs with (small parameters, one underlying).
pub fn harness() -> Harness {
    Harness::new(ProtocolParams::small(), 1)
}

/// Node settings for tests.
pub fn node_config(url: &str, h: &Harness, batch_size: usize, timeout_ms: u64) -> NodeConfig {
    NodeConfig {
        database_url: url.to_string(),
        bind: "127.0.0.1:0".parse().unwrap(),
        genesis: h.genesis.clone(),
        sequencer: SequencerConfig {
            batch_size,
            batch_timeout: Duration::from_millis(timeout_ms),
            max_group: 256,
            max_accounts: None,
        },
        api: ApiConfig {
            operator_token: Some(TOKEN.into()),
            max_body: 16 * 1024,
            rate_limit: None,
            client_rate_limit: None,
        },
        workers: 0,
        halo2: Halo2Config::default(),
        max_connections: 4,
        l1: L1Config::Operator,
    }
}

/// The idempotency key of the next deposit `h` accepts: its number in the deposit queue, its
/// identity on L1.
pub fn deposit_key(h: &Harness) -> String {
    format!("deposit-{}", h.state.deposit_queue().1 + 1)
}

/// Submits `d` to the operator deposit route under `key`.
pub async fn submit_deposit(c: &Client, d: &SignedTx, key: &str) -> Reply {
    c.submit_with_key("/v1/operator/deposits", d, Some(key))
        .await
        .unwrap()
}

/// Submits a deposit of `amount` into `account` (keyed by its queue number), applies it to `h`
/// and returns it with the batch its receipt names.
pub async fn deposit(
    c: &Client,
    h: &mut Harness,
    account: u64,
    amount: u64,
) -> (SignedTx, Option<u64>) {
    let d = h.deposit(account, amount);
    let r = submit_deposit(c, &d, &deposit_key(h)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    h.accept(&d);
    (d, r.body["batch"].as_u64())
}

/// Starts a node and an operator client for it.
pub async fn start(cfg: NodeConfig) -> (Node, Client) {
    let node = Node::start(cfg).await.expect("node starts");
    let c = Client::new(node.url(), Some(TOKEN.into()));
    (node, c)
}

/// A TEST DOUBLE backend for queue mechanics only (leases, retries, sharing): its "proof" is
/// SHA-256 of the public inputs, which proves nothing. Real proving is tested separately with
/// `Halo2Backend`. Optionally sleeps to hold the lease for a while.
pub struct DigestBackend {
    /// How long `prove` takes.
    pub delay: Duration,
    /// Counts `prove` calls.
    pub calls: Arc<AtomicU64>,
}

impl DigestBackend {
    fn digest(inputs: &BatchPublicInputs) -> Vec<u8> {
        Sha256::digest(serde_json::to_vec(inputs).unwrap()).to_vec()
    }
}

impl ProofBackend for DigestBackend {
    fn name(&self) -> String {
        "test-digest (not a proof)".into()
    }
    fn prove(&self, _before: &State, batch: &ExecutedBatch) -> Result<ProofBlob, ProveError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        Ok(ProofBlob {
            bytes: Self::digest(&batch.public_inputs),
            backend: self.name(),
        })
    }
    fn verify(&self, inputs: &BatchPublicInputs, proof: &[u8]) -> Result<(), ProveError> {
        if proof == Self::digest(inputs).as_slice() {
            Ok(())
        } else {
            Err(ProveError::Failed("digest mismatch".into()))
        }
    }
}
