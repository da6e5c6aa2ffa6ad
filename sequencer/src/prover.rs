//! Proving: the [`ProofBackend`] trait, the real Halo2/KZG backend on the batch circuit, and the
//! worker loop that claims jobs from the database under a lease.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use collar_circuits::batch::{table_size, BatchCircuitError, BatchWitness};
use collar_protocol::batch::{self, BatchPublicInputs, ExecutedBatch};
use collar_protocol::{Genesis, SignedTx, State};
use collar_prover::{BatchProver, ProverConfig, ProverError, SrsSource};
use collar_verifier::ProofArtifact;

use crate::db::Db;
use crate::error::{DbError, ProveError};
use crate::metrics::Metrics;
use crate::sequencer::fr_hex;

/// A proof with the backend that made it.
#[derive(Clone, Debug)]
pub struct ProofBlob {
    /// Proof bytes.
    pub bytes: Vec<u8>,
    /// Backend description (for the batch record).
    pub backend: String,
}

/// Something that proves and verifies batches.
pub trait ProofBackend: Send + Sync {
    /// Human-readable name, recorded with each proof.
    fn name(&self) -> String;
    /// Proves `batch`, which was executed on `before`.
    fn prove(&self, before: &State, batch: &ExecutedBatch) -> Result<ProofBlob, ProveError>;
    /// Verifies `proof` against the public inputs.
    fn verify(&self, inputs: &BatchPublicInputs, proof: &[u8]) -> Result<(), ProveError>;
}

/// Circuit shape of the Halo2 backend.
#[derive(Clone, Debug)]
pub struct Halo2Config {
    /// Slots per batch (the sequencer's batch size must not exceed it).
    pub capacity: usize,
    /// Entries of the account table; `None` is `default_table_size(capacity)`, which every
    /// batch fits. A smaller table needs a sequencer that seals on it
    /// (`SequencerConfig::max_accounts`).
    pub accounts: Option<usize>,
    /// Circuit size `2^k` rows.
    pub k: u32,
    /// Range-check lookup bits (`< k`).
    pub lookup_bits: usize,
    /// Where proving and verifying keys are cached, keyed by the circuit configuration.
    pub cache_dir: PathBuf,
    /// A ceremony params file in halo2's format; `None` uses the INSECURE development SRS.
    pub srs: Option<PathBuf>,
    /// Prove with the EVM (Keccak) transcript, so that stored proofs are the bytes the
    /// settlement contract takes; otherwise Blake2b (native verification only).
    pub evm_transcript: bool,
}

impl Default for Halo2Config {
    /// Capacity 2, the default account table, k 17, 16 lookup bits, keys cached under
    /// [`default_key_cache`], dev SRS, Blake2b transcript.
    fn default() -> Self {
        Self {
            capacity: 2,
            accounts: None,
            k: 17,
            lookup_bits: 16,
            cache_dir: default_key_cache(),
            srs: None,
            evm_transcript: false,
        }
    }
}

pub use collar_prover::default_key_cache;

impl Halo2Config {
    /// Entries of the account table: `accounts`, or `default_table_size(capacity)`.
    pub fn table_size(&self) -> usize {
        table_size(self.capacity, self.accounts)
    }
}

/// The real backend: `collar_prover::BatchProver` (halo2-base's `BaseCircuitBuilder` over
/// `collar_circuits::batch`, KZG with SHPLONK, keys cached on disk) producing versioned proof
/// artifacts, checked with `collar_verifier`. Keys are loaded or generated on first use.
///
/// With no `srs` file the INSECURE development SRS is used: it is derived from a public seed,
/// so anyone can forge proofs. It exists for development and demos only.
pub struct Halo2Backend {
    genesis: Genesis,
    config: Halo2Config,
    prover: OnceLock<Result<BatchProver, ProveError>>,
    keygen_lock: Mutex<()>,
}

impl Halo2Backend {
    /// A backend for `genesis` with circuit shape `config`; no work until the first proof.
    pub fn new(genesis: Genesis, config: Halo2Config) -> Self {
        Self {
            genesis,
            config,
            prover: OnceLock::new(),
            keygen_lock: Mutex::new(()),
        }
    }

    /// The prover, loading cached keys or generating them on first use.
    pub fn prover(&self) -> Result<&BatchProver, ProveError> {
        let _g = self.keygen_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.prover
            .get_or_init(|| {
                let t = Instant::now();
                let mut cfg = ProverConfig::new(
                    self.genesis.params.clone(),
                    self.config.capacity,
                    self.config.cache_dir.clone(),
                );
                cfg.accounts = self.config.accounts;
                cfg.k = self.config.k;
                cfg.lookup_bits = self.config.lookup_bits;
                cfg.progress = false;
                if self.config.evm_transcript {
                    cfg.proof_system = collar_verifier::ProofSystem::ShplonkKeccak;
                }
                if let Some(path) = &self.config.srs {
                    cfg.srs = SrsSource::File(path.clone());
                }
                let p = BatchProver::load_or_keygen(cfg)
                    .map_err(|e| ProveError::Failed(format!("keys: {e}")))?;
                tracing::info!(
                    k = self.config.k,
                    capacity = self.config.capacity,
                    accounts = self.config.table_size(),
                    keys = ?p.key_source(),
                    srs = %p.srs().id(),
                    ms = t.elapsed().as_millis() as u64,
                    "prover keys ready"
                );
                Ok(p)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// A batch this circuit shape cannot take (the sequencer sealed it for another shape), as
/// opposed to a witness that contradicts itself.
fn unsupported(e: &BatchCircuitError) -> bool {
    matches!(
        e,
        BatchCircuitError::TickNotFirst(_)
            | BatchCircuitError::OverCapacity { .. }
            | BatchCircuitError::TableFull { .. }
    )
}

fn prover_error(e: ProverError) -> ProveError {
    match e {
        ProverError::Circuit(c) if unsupported(&c) => ProveError::Unsupported(c.to_string()),
        ProverError::Circuit(c) => ProveError::Inconsistent(c.to_string()),
        ProverError::PublicInputs { index } => ProveError::Inconsistent(format!(
            "circuit public input {index} differs from the native one"
        )),
        other => ProveError::Failed(other.to_string()),
    }
}

impl ProofBackend for Halo2Backend {
    fn name(&self) -> String {
        let srs = match &self.config.srs {
            Some(p) => format!("SRS {}", p.display()),
            None => "INSECURE-DEV-SRS".to_string(),
        };
        format!(
            "halo2-kzg-shplonk k={} capacity={} accounts={} {srs}",
            self.config.k,
            self.config.capacity,
            self.config.table_size()
        )
    }

    fn prove(&self, before: &State, batch: &ExecutedBatch) -> Result<ProofBlob, ProveError> {
        // Refuse unsupported batches before paying for keygen.
        BatchWitness::with_table(
            before,
            batch,
            self.config.capacity,
            self.config.table_size(),
        )
        .and_then(|w| w.check_signed())
        .map_err(|e| {
            if unsupported(&e) {
                ProveError::Unsupported(e.to_string())
            } else {
                ProveError::Inconsistent(e.to_string())
            }
        })?;
        let artifact = self.prover()?.prove(before, batch).map_err(prover_error)?;
        Ok(ProofBlob {
            bytes: artifact.to_bytes(),
            backend: self.name(),
        })
    }

    fn verify(&self, inputs: &BatchPublicInputs, proof: &[u8]) -> Result<(), ProveError> {
        let artifact = ProofArtifact::from_bytes(proof)
            .map_err(|e| ProveError::Failed(format!("proof artifact: {e}")))?;
        collar_verifier::verify_expecting(&artifact, self.prover()?.vk_file(), inputs)
            .map(|_| ())
            .map_err(|e| ProveError::Failed(format!("proof rejected ({}): {e}", e.check())))
    }
}

/// Worker settings.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Unique worker name (lease owner).
    pub name: String,
    /// Lease length; renewed every third of it while proving.
    pub lease: Duration,
    /// Attempts before a job is given up.
    pub max_attempts: i64,
    /// Sleep when the queue is empty.
    pub idle_poll: Duration,
}

impl WorkerConfig {
    /// Defaults with the given name: 60 s lease, 3 attempts, 200 ms poll.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            lease: Duration::from_secs(60),
            max_attempts: 3,
            idle_poll: Duration::from_millis(200),
        }
    }
}

/// What one job ended as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Proved, verified and recorded.
    Verified {
        /// Batch number.
        batch: i64,
        /// Proving time.
        prove_ms: i64,
    },
    /// Failed with a reason (permanent or requeued).
    Failed {
        /// Batch number.
        batch: i64,
        /// Why.
        reason: String,
        /// Whether it will not be retried.
        permanent: bool,
    },
    /// Another worker took the job over (our lease expired).
    LeaseLost {
        /// Batch number.
        batch: i64,
    },
}

/// A prover worker: claims jobs, rebuilds the state before the batch (cached between
/// consecutive batches, else replayed from genesis), proves, verifies, records.
pub struct Worker {
    db: Db,
    genesis: Genesis,
    backend: Arc<dyn ProofBackend>,
    config: WorkerConfig,
    /// State after batch `.0` (cache for consecutive batches).
    cache: Option<(i64, State)>,
    metrics: Option<Arc<Metrics>>,
}

impl Worker {
    /// A worker over `db`.
    pub fn new(
        db: Db,
        genesis: Genesis,
        backend: Arc<dyn ProofBackend>,
        config: WorkerConfig,
    ) -> Self {
        Self {
            db,
            genesis,
            backend,
            config,
            cache: None,
            metrics: None,
        }
    }

    /// Counts outcomes into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs forever (until the task is dropped), logging outcomes.
    pub async fn run(mut self) {
        loop {
            match self.run_once().await {
                Ok(Some(o)) => tracing::info!(worker = %self.config.name, outcome = ?o, "job"),
                Ok(None) => tokio::time::sleep(self.config.idle_poll).await,
                Err(e) => {
                    tracing::warn!(worker = %self.config.name, error = %e, "worker database error");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Claims and processes at most one job; `None` if the queue had nothing claimable.
    pub async fn run_once(&mut self) -> Result<Option<JobOutcome>, DbError> {
        let lease_ms = self.config.lease.as_millis() as i64;
        let Some(claim) = self
            .db
            .claim_job(&self.config.name, lease_ms, self.config.max_attempts)
            .await?
        else {
            return Ok(None);
        };
        let b = claim.batch;
        tracing::info!(worker = %self.config.name, batch = b, attempt = claim.attempts, "claimed");
        let prepared = self.prepare(b).await;
        let (before, exec, after) = match prepared {
            Ok(x) => x,
            Err(e) => return self.fail(b, e).await,
        };
        // Prove on a blocking thread while renewing the lease.
        let backend = self.backend.clone();
        let before_c = before.clone();
        let exec_c = exec.clone();
        let t = Instant::now();
        let mut handle = tokio::task::spawn_blocking(move || -> Result<ProofBlob, ProveError> {
            let proof = backend.prove(&before_c, &exec_c)?;
            // A proof is verified before the batch is marked proved.
            backend.verify(&exec_c.public_inputs, &proof.bytes)?;
            Ok(proof)
        });
        let renew_every = self.config.lease / 3;
        let result = loop {
            tokio::select! {
                r = &mut handle => break r,
                _ = tokio::time::sleep(renew_every) => {
                    if !self.db.renew_lease(b, &self.config.name, lease_ms).await.unwrap_or(false) {
                        tracing::warn!(batch = b, "lease lost while proving");
                    }
                }
            }
        };
        let prove_ms = t.elapsed().as_millis() as i64;
        let proof = match result {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return self.fail(b, e).await,
            Err(join) => {
                return self
                    .fail(b, ProveError::Failed(format!("prover panicked: {join}")))
                    .await
            }
        };
        let inputs_json = serde_json::to_string(&exec.public_inputs).expect("public inputs JSON");
        if !self
            .db
            .complete_job(
                b,
                &self.config.name,
                &inputs_json,
                &proof.bytes,
                &proof.backend,
                prove_ms,
            )
            .await?
        {
            return Ok(Some(JobOutcome::LeaseLost { batch: b }));
        }
        // Re-check the proof as stored, then mark the batch verified.
        let stored = self
            .db
            .batch(b)
            .await?
            .and_then(|r| r.proof)
            .ok_or_else(|| DbError::Corrupt(format!("batch {b} lost its proof")))?;
        let backend = self.backend.clone();
        let inputs = exec.public_inputs;
        let ok = tokio::task::spawn_blocking(move || backend.verify(&inputs, &stored))
            .await
            .map_err(|e| DbError::Corrupt(e.to_string()))?;
        match ok {
            Ok(()) => {
                self.db.mark_verified(b).await?;
                if let Some(m) = &self.metrics {
                    m.proofs_verified.inc();
                }
                drop(before);
                self.cache = Some((b, after));
                Ok(Some(JobOutcome::Verified { batch: b, prove_ms }))
            }
            Err(e) => Err(DbError::Corrupt(format!(
                "stored proof of batch {b} does not verify: {e}"
            ))),
        }
    }

    async fn fail(&mut self, b: i64, e: ProveError) -> Result<Option<JobOutcome>, DbError> {
        let permanent = e.is_permanent();
        let reason = e.to_string();
        if let Some(m) = &self.metrics {
            m.proofs_failed.inc();
        }
        tracing::warn!(batch = b, reason = %reason, permanent, "proving failed");
        if !self
            .db
            .fail_job(b, &self.config.name, &reason, permanent)
            .await?
        {
            return Ok(Some(JobOutcome::LeaseLost { batch: b }));
        }
        Ok(Some(JobOutcome::Failed {
            batch: b,
            reason,
            permanent,
        }))
    }

    /// The state before batch `b` and the batch executed on it, checked against its seal.
    async fn prepare(&mut self, b: i64) -> Result<(State, ExecutedBatch, State), ProveError> {
        let db_err = |e: DbError| ProveError::Failed(e.to_string());
        let row = self
            .db
            .batch(b)
            .await
            .map_err(db_err)?
            .ok_or_else(|| ProveError::Inconsistent(format!("batch {b} has no record")))?;
        let before = match self.cache.take() {
            Some((n, s)) if n == b - 1 => s,
            _ => {
                let mut s = State::genesis(&self.genesis)
                    .map_err(|e| ProveError::Failed(format!("genesis: {e}")))?;
                let mut after = 0;
                loop {
                    let rows = self.db.txs_after(after, 5_000).await.map_err(db_err)?;
                    let mut done = rows.is_empty();
                    for r in rows {
                        if r.seq >= row.first_seq {
                            done = true;
                            break;
                        }
                        after = r.seq;
                        let stx = parse(&r.payload)?;
                        s.apply(&stx.tx).map_err(|e| {
                            ProveError::Inconsistent(format!("replay of tx {}: {e}", r.seq))
                        })?;
                    }
                    if done {
                        break;
                    }
                }
                s
            }
        };
        let payloads = self
            .db
            .payloads(row.first_seq, row.last_seq)
            .await
            .map_err(db_err)?;
        if payloads.len() as i64 != row.tx_count {
            return Err(ProveError::Inconsistent(format!(
                "batch {b} lists {} transactions, the log has {}",
                row.tx_count,
                payloads.len()
            )));
        }
        let stxs = payloads
            .iter()
            .map(|p| parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut work = before.clone();
        let exec = batch::execute_signed(&mut work, b as u64, &stxs)
            .map_err(|e| ProveError::Inconsistent(e.to_string()))?;
        if fr_hex(&exec.public_inputs.old_root) != row.old_root
            || fr_hex(&exec.public_inputs.new_root) != row.new_root
        {
            return Err(ProveError::Inconsistent(format!(
                "batch {b}: execution roots differ from the sealed roots"
            )));
        }
        Ok((before, exec, work))
    }
}

fn parse(payload: &str) -> Result<SignedTx, ProveError> {
    serde_json::from_str(payload).map_err(|e| ProveError::Inconsistent(format!("stored tx: {e}")))
}
