//! Proves Collar batches: the KZG SRS ([`Srs`]), keygen with an on-disk key cache, and proof
//! artifacts that `collar-verifier` checks.
//!
//! ```text
//! BatchProver::load_or_keygen(config)   SRS → (cached | generated) pk, vk, break points
//! prover.prove(&before, &executed)      witness → proof → self-check → ProofArtifact
//! prover.vk_file().write(path)          the small file a verifier needs
//! ```
//!
//! The proof system is halo2 (halo2-axiom through halo2-base) with KZG on BN254, SHPLONK
//! multi-opening and a Blake2b transcript.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use collar_circuits::batch::{
    keygen_circuit, prover_circuit, table_size, BatchCircuitError, BatchWitness, MIN_TABLE_SIZE,
};
pub use collar_circuits::poseidon::Hashing;
use collar_circuits::pow5::{HashingCircuit, HashingCircuitParams};
use collar_protocol::batch::ExecutedBatch;
use collar_protocol::{ProtocolParams, State};
use collar_verifier::{FormatError, ProofArtifact, ProofSystem, VerifyError, VerifyingKeyFile};
use halo2_base::gates::flex_gate::MultiPhaseThreadBreakPoints;
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_base::halo2_proofs::plonk::{create_proof, keygen_pk, keygen_vk, ProvingKey};
use halo2_base::halo2_proofs::poly::kzg::commitment::KZGCommitmentScheme;
use halo2_base::halo2_proofs::poly::kzg::multiopen::ProverSHPLONK;
use halo2_base::halo2_proofs::transcript::{Blake2bWrite, Challenge255, TranscriptWriterBuffer};
use halo2_base::halo2_proofs::SerdeFormat;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

mod cache;
mod srs;

pub use srs::{Srs, DEV_SRS_SEED, MAX_SRS_K};

/// The default directory of cached keys and development SRS files:
/// `$XDG_CACHE_HOME/collar/keys`, else `$HOME/.cache/collar/keys`, else a temporary directory.
pub fn default_key_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("collar")
        .join("keys")
}

/// Version of the batch circuit's constraints. Part of the key-cache hash and of the circuit id:
/// bump it with every intended change to the circuit (the cache also fingerprints the circuit's
/// cell counts, which catches most unintended ones).
pub const CIRCUIT_VERSION: &str = "collar-batch-v5";

/// Rows kept free of witness for blinding (halo2-base's `minimum_rows`).
pub const MINIMUM_ROWS: usize = 9;

/// Where the SRS comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SrsSource {
    /// The **INSECURE DEVELOPMENT SRS** ([`Srs::dev`]), cached in the key cache directory under
    /// a file name that says so. Anyone can forge proofs under it.
    InsecureDevelopment,
    /// A ceremony's params file in halo2's format ([`Srs::load`]), downsized to `k` if larger.
    File(PathBuf),
}

/// Everything that fixes the circuit, its keys, and how the prover runs.
#[derive(Clone, Debug)]
pub struct ProverConfig {
    /// Protocol shape parameters (depths, capacities) the circuit is built for.
    pub params: ProtocolParams,
    /// Transaction slots per batch.
    pub capacity: usize,
    /// Entries of the batch's account table: the most accounts one batch may touch (see
    /// `collar_circuits::batch::table_accounts`). `None` is
    /// [`default_table_size`](collar_circuits::batch::default_table_size)`(capacity)`, which
    /// every batch fits; a smaller table is a smaller circuit, for a sequencer that seals on it.
    pub accounts: Option<usize>,
    /// The circuit has 2^k rows; the SRS must have at least that many points.
    pub k: u32,
    /// Range-check lookup table size (bits); must be below `k`.
    pub lookup_bits: usize,
    /// Where the SRS comes from.
    pub srs: SrsSource,
    /// Directory of the key cache (created if missing).
    pub cache_dir: PathBuf,
    /// rayon threads for keygen and proving; `None` uses rayon's global pool.
    pub threads: Option<usize>,
    /// Show a progress spinner on stderr when it is a terminal (always logs through `tracing`).
    pub progress: bool,
    /// The transcript proofs are made with: Blake2b (native verification) or the EVM's Keccak
    /// ([`ProofSystem::ShplonkKeccak`], needs the `evm` feature), which the settlement contract
    /// takes. The keys are the same for both.
    pub proof_system: ProofSystem,
    /// Which Poseidon implementation the circuit hashes with (different circuits, different
    /// keys): the Pow5 chip in production, halo2-base's hasher as the baseline.
    pub hashing: Hashing,
}

impl ProverConfig {
    /// A configuration with the default account table, `k = 17`, 16 lookup bits, the insecure
    /// development SRS, rayon's default threads, progress on, the Blake2b transcript and Pow5
    /// hashing.
    pub fn new(params: ProtocolParams, capacity: usize, cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            params,
            capacity,
            accounts: None,
            k: 17,
            lookup_bits: 16,
            srs: SrsSource::InsecureDevelopment,
            cache_dir: cache_dir.into(),
            threads: None,
            progress: true,
            proof_system: ProofSystem::ShplonkBlake2b,
            hashing: Hashing::Pow5,
        }
    }

    /// Entries of the account table ([`table_size`]): `accounts`, or the default for
    /// `capacity`.
    pub fn table_size(&self) -> usize {
        table_size(self.capacity, self.accounts)
    }
}

/// Whether [`BatchProver::load_or_keygen`] found its keys in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// Read from the cache; no key generation ran.
    Cache,
    /// Generated now (cache miss or unusable entry) and written to the cache.
    Generated,
}

/// Why proving or key generation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProverError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The SRS params file is not a valid halo2 params file.
    #[error("SRS file {path}: {reason}")]
    Srs {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The SRS has fewer points than the circuit needs.
    #[error("the SRS has k = {have}, the circuit needs k = {need}")]
    SrsTooSmall {
        /// The SRS's k.
        have: u32,
        /// The configured k.
        need: u32,
    },
    /// The configuration is unusable (k, lookup bits, capacity, threads).
    #[error("invalid prover configuration: {0}")]
    Config(String),
    /// The batch cannot be turned into this circuit (too many transactions, a tick that is not
    /// first).
    #[error(transparent)]
    Circuit(#[from] BatchCircuitError),
    /// The state the batch starts from has other protocol parameters than the prover's circuit.
    #[error("the batch's protocol parameters differ from the prover's")]
    ParamsMismatch,
    /// The batch does not fit the circuit shape the keys were made for (more cells or rows).
    #[error("the batch does not fit the circuit the keys were made for: {0}")]
    Shape(String),
    /// Key generation failed.
    #[error("key generation failed: {0}")]
    Keygen(String),
    /// The circuit's public inputs differ from the natively executed batch's (a bug).
    #[error("circuit public input {index} differs from the native batch's")]
    PublicInputs {
        /// The first differing instance index.
        index: usize,
    },
    /// halo2 failed to create the proof.
    #[error("proving failed: {0}")]
    Proving(String),
    /// The fresh proof does not verify: the witness does not satisfy the circuit (a bug in the
    /// witness or the circuit), or the keys do not belong to this circuit.
    #[error("the new proof does not verify: {0}")]
    SelfCheck(VerifyError),
    /// A key or artifact could not be encoded.
    #[error(transparent)]
    Format(#[from] FormatError),
}

impl ProverError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ProverError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Proving and verifying keys for one circuit configuration, ready to prove batches.
pub struct BatchProver {
    config: ProverConfig,
    srs: Srs,
    pk: ProvingKey<G1Affine>,
    vk_file: VerifyingKeyFile,
    circuit_params: HashingCircuitParams,
    break_points: MultiPhaseThreadBreakPoints,
    circuit_id: String,
    config_hash: String,
    key_source: KeySource,
    cache_entry: PathBuf,
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl std::fmt::Debug for BatchProver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchProver")
            .field("circuit_id", &self.circuit_id)
            .field("srs", &self.srs)
            .field("config_hash", &self.config_hash)
            .field("key_source", &self.key_source)
            .field("cache_entry", &self.cache_entry)
            .finish_non_exhaustive()
    }
}

impl BatchProver {
    /// Loads the SRS, then the keys for `config` from the cache, or generates and caches them.
    ///
    /// The cache entry is keyed by a SHA-256 over the circuit version, protocol parameters,
    /// capacity, k, lookup bits, minimum rows, SRS identity and the circuit's cell counts; any
    /// change selects (or creates) another entry. An unreadable entry is regenerated.
    pub fn load_or_keygen(config: ProverConfig) -> Result<Self, ProverError> {
        Self::load(config, true).map(|p| p.expect("keygen runs on a cache miss"))
    }

    /// Like [`BatchProver::load_or_keygen`] but never generates keys: `Ok(None)` when the cache
    /// has no usable entry for `config` (missing, corrupt, or for another configuration).
    pub fn load_cached(config: ProverConfig) -> Result<Option<Self>, ProverError> {
        Self::load(config, false)
    }

    fn load(config: ProverConfig, keygen: bool) -> Result<Option<Self>, ProverError> {
        check_config(&config)?;
        let pool = match config.threads {
            None => None,
            Some(n) => Some(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| ProverError::Config(format!("thread pool: {e}")))?,
            )),
        };
        let prover = match &pool {
            Some(p) => p.install(|| Self::load_or_keygen_inner(&config, keygen)),
            None => Self::load_or_keygen_inner(&config, keygen),
        }?;
        Ok(prover.map(|mut p| {
            p.pool = pool;
            p
        }))
    }

    fn load_or_keygen_inner(
        config: &ProverConfig,
        allow_keygen: bool,
    ) -> Result<Option<Self>, ProverError> {
        let bar = progress(config.progress);
        bar.set_message("loading SRS");
        std::fs::create_dir_all(&config.cache_dir)
            .map_err(|e| ProverError::io(&config.cache_dir, e))?;
        let srs = match &config.srs {
            SrsSource::InsecureDevelopment => Srs::dev_cached(config.k, &config.cache_dir)?,
            SrsSource::File(path) => Srs::load(path, config.k)?,
        };
        if srs.is_insecure() {
            bar.println(format!("WARNING: {srs}"));
        }

        // The keygen witness: an all-padding batch on a fixed genesis. The circuit's shape
        // depends only on the parameters and capacity, never on witness values.
        let witness = keygen_witness(config)?;
        let mut keygen = build_circuit(config, &witness, None)?;
        let circuit_params = keygen.calculate_params(Some(MINIMUM_ROWS));
        let stats = keygen.builder.statistics();
        let description = serde_json::json!({
            "circuit_version": CIRCUIT_VERSION,
            "proof_system": "halo2-axiom/halo2-base 0.5, KZG BN254, SHPLONK, Blake2b",
            "protocol_params": config.params,
            "capacity": config.capacity,
            "account_table": config.table_size(),
            "k": config.k,
            "lookup_bits": config.lookup_bits,
            "minimum_rows": MINIMUM_ROWS,
            "srs": srs.id(),
            "circuit_params": circuit_params,
            "cells": {
                "pow5_permutations": circuit_params.capacity,
                "advice_per_phase": stats.gate.total_advice_per_phase,
                "constants": stats.gate.total_fixed,
                "lookup_advice_per_phase": stats.total_lookup_advice_per_phase,
            },
        });
        let config_hash = hex::encode(Sha256::digest(
            serde_json::to_vec(&description).expect("plain JSON"),
        ));
        let insecure = if srs.is_insecure() {
            "INSECURE-DEV-SRS-"
        } else {
            ""
        };
        let label = format!(
            "{insecure}batch-{}-cap{}-t{}-k{}",
            config.hashing,
            config.capacity,
            config.table_size(),
            config.k
        );
        let circuit_id = format!(
            "{CIRCUIT_VERSION}/{}/cap{}/t{}/k{}/{}",
            config.hashing,
            config.capacity,
            config.table_size(),
            config.k,
            &config_hash[..16]
        );
        let entry = cache::entry_dir(&config.cache_dir, &label, &config_hash);

        let make = |pk, vk_file, manifest: cache::Manifest, key_source| Self {
            config: config.clone(),
            srs: srs.clone(),
            pk,
            vk_file,
            circuit_params: manifest.circuit_params,
            break_points: manifest.break_points,
            circuit_id: circuit_id.clone(),
            config_hash: config_hash.clone(),
            key_source,
            cache_entry: entry.clone(),
            pool: None,
        };

        if entry.exists() {
            bar.set_message("reading cached keys");
            match read_entry(&entry, &config_hash, &circuit_params, &srs, &circuit_id) {
                Ok((pk, vk_file, manifest)) => {
                    tracing::info!(entry = %entry.display(), "key cache hit");
                    bar.finish_and_clear();
                    return Ok(Some(make(pk, vk_file, manifest, KeySource::Cache)));
                }
                Err(e) => {
                    tracing::warn!(entry = %entry.display(), error = %e, "unusable key cache entry; regenerating");
                }
            }
        }

        if !allow_keygen {
            bar.finish_and_clear();
            return Ok(None);
        }
        tracing::info!(srs = %srs, circuit_id, "generating keys");
        bar.set_message(format!("keygen: verifying key (k = {})", config.k));
        let vk = keygen_vk(srs.params(), &keygen)
            .map_err(|e| ProverError::Keygen(format!("vk: {e:?}")))?;
        bar.set_message(format!("keygen: proving key (k = {})", config.k));
        let pk = keygen_pk(srs.params(), vk, &keygen)
            .map_err(|e| ProverError::Keygen(format!("pk: {e:?}")))?;
        let break_points = keygen.builder.break_points();
        let (g0, g2, s_g2) = {
            use halo2_base::halo2_proofs::poly::commitment::ParamsProver;
            let p = srs.params();
            (p.get_g()[0], p.g2(), p.s_g2())
        };
        let vk_file = VerifyingKeyFile::new(
            circuit_id.clone(),
            srs.id(),
            circuit_params.clone(),
            g0,
            g2,
            s_g2,
            pk.get_vk(),
        )?;
        bar.set_message("writing key cache");
        let manifest = write_entry(
            &entry,
            &config_hash,
            description,
            &circuit_params,
            &break_points,
            &pk,
            &vk_file,
        )?;
        bar.finish_and_clear();
        tracing::info!(entry = %entry.display(), "keys generated and cached");
        Ok(Some(make(pk, vk_file, manifest, KeySource::Generated)))
    }

    /// Proves `batch`, executed natively from `before`, and checks the proof with
    /// `collar-verifier` before returning it.
    ///
    /// Preconditions: `batch` is what `collar_protocol::batch::execute` returned on a copy of
    /// `before`, with the prover's protocol parameters. Fails with
    /// [`ProverError::Circuit`] for transaction types this circuit version does not support.
    pub fn prove(
        &self,
        before: &State,
        batch: &ExecutedBatch,
    ) -> Result<ProofArtifact, ProverError> {
        match &self.pool {
            Some(p) => p.install(|| self.prove_inner(before, batch)),
            None => self.prove_inner(before, batch),
        }
    }

    fn prove_inner(
        &self,
        before: &State,
        batch: &ExecutedBatch,
    ) -> Result<ProofArtifact, ProverError> {
        if before.params() != &self.config.params {
            return Err(ProverError::ParamsMismatch);
        }
        let bar = progress(self.config.progress);
        bar.set_message("witness");
        let witness = BatchWitness::with_table(
            before,
            batch,
            self.config.capacity,
            self.config.table_size(),
        )?;
        witness.check_signed()?;
        let circuit = build_circuit(
            &self.config,
            &witness,
            Some((self.circuit_params.clone(), self.break_points.clone())),
        )?;
        let instances: Vec<Fr> = circuit.builder.assigned_instances[0]
            .iter()
            .map(|c| *c.value())
            .collect();
        let expected = batch.public_inputs.to_fields();
        if let Some(index) = (0..8).find(|&i| instances.get(i) != Some(&expected[i])) {
            return Err(ProverError::PublicInputs { index });
        }
        bar.set_message(format!(
            "proving batch {} ({} txs, {} slots)",
            batch.public_inputs.batch_number,
            batch.witnesses.len(),
            self.config.capacity
        ));
        tracing::info!(batch = batch.public_inputs.batch_number, "proving");
        let system = self.config.proof_system;
        let proved = catch_unwind(AssertUnwindSafe(|| match system {
            ProofSystem::ShplonkBlake2b => {
                let mut t = Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]);
                prove_with(self.srs.params(), &self.pk, circuit, &instances, &mut t)
                    .map(|()| t.finalize())
            }
            #[cfg(feature = "evm")]
            ProofSystem::ShplonkKeccak => {
                use snark_verifier::system::halo2::transcript::evm::EvmTranscript;
                let mut t = EvmTranscript::<G1Affine, _, _, _>::init(Vec::new());
                prove_with(self.srs.params(), &self.pk, circuit, &instances, &mut t)
                    .map(|()| t.finalize())
            }
            #[allow(unreachable_patterns)]
            other => Err(format!(
                "proof system {other:?} needs collar-prover's `evm` feature"
            )),
        }));
        let proof = match proved {
            Ok(Ok(proof)) => proof,
            Ok(Err(e)) => return Err(ProverError::Proving(e)),
            Err(panic) => return Err(ProverError::Shape(panic_message(&panic))),
        };
        bar.set_message("checking the proof");
        let artifact = ProofArtifact::new(
            self.circuit_id.clone(),
            self.vk_file.hash(),
            self.srs.id(),
            system,
            batch.public_inputs,
            proof,
        )?;
        collar_verifier::verify(&artifact, &self.vk_file).map_err(ProverError::SelfCheck)?;
        bar.finish_and_clear();
        tracing::info!(
            batch = batch.public_inputs.batch_number,
            bytes = artifact.proof().len(),
            "proof verified"
        );
        Ok(artifact)
    }

    /// The verifying-key file a verifier needs (with [`VerifyingKeyFile::write`] to export it).
    pub fn vk_file(&self) -> &VerifyingKeyFile {
        &self.vk_file
    }
    /// Writes the verifying-key file to `path`.
    pub fn export_vk(&self, path: &Path) -> Result<(), ProverError> {
        self.vk_file
            .write(path)
            .map_err(|e| ProverError::io(path, e))
    }
    /// The circuit id recorded in artifacts and the vk file.
    pub fn circuit_id(&self) -> &str {
        &self.circuit_id
    }
    /// Hex SHA-256 of the circuit configuration: the key cache's key.
    pub fn config_hash(&self) -> &str {
        &self.config_hash
    }
    /// Whether the keys came from the cache or were generated by this call.
    pub fn key_source(&self) -> KeySource {
        self.key_source
    }
    /// The cache directory holding this configuration's keys.
    pub fn cache_entry(&self) -> &Path {
        &self.cache_entry
    }
    /// The SRS in use.
    pub fn srs(&self) -> &Srs {
        &self.srs
    }
    /// The configuration.
    pub fn config(&self) -> &ProverConfig {
        &self.config
    }
    /// halo2-base's circuit configuration (columns, k, lookup bits).
    pub fn circuit_params(&self) -> &HashingCircuitParams {
        &self.circuit_params
    }
}

fn check_config(c: &ProverConfig) -> Result<(), ProverError> {
    if !(1..=MAX_SRS_K).contains(&c.k) {
        return Err(ProverError::Config(format!("k = {} outside 1..=28", c.k)));
    }
    if c.lookup_bits == 0 || c.lookup_bits >= c.k as usize {
        return Err(ProverError::Config(format!(
            "lookup bits {} must be in 1..k",
            c.lookup_bits
        )));
    }
    if c.capacity == 0 {
        return Err(ProverError::Config("capacity must be at least 1".into()));
    }
    if c.accounts.is_some_and(|t| t < MIN_TABLE_SIZE) {
        return Err(ProverError::Config(format!(
            "an account table needs at least {MIN_TABLE_SIZE} entries (one transaction's accounts)"
        )));
    }
    if c.threads == Some(0) {
        return Err(ProverError::Config("threads must be at least 1".into()));
    }
    Ok(())
}

/// An all-padding batch of `capacity` slots on the test-kit genesis for `config.params`.
fn keygen_witness(config: &ProverConfig) -> Result<BatchWitness, ProverError> {
    let genesis = collar_protocol::testkit::genesis(config.params.clone(), 1);
    let before = State::genesis(&genesis)
        .map_err(|e| ProverError::Config(format!("no genesis for these parameters: {e}")))?;
    let mut after = before.clone();
    let empty = collar_protocol::batch::execute(&mut after, 1, &[])
        .map_err(|e| ProverError::Keygen(format!("empty batch: {e}")))?;
    Ok(BatchWitness::with_table(
        &before,
        &empty,
        config.capacity,
        config.table_size(),
    )?)
}

/// Builds the circuit: keygen stage (`pinned = None`) or prover stage with the keygen's
/// configuration and break points.
fn build_circuit(
    config: &ProverConfig,
    witness: &BatchWitness,
    pinned: Option<(HashingCircuitParams, MultiPhaseThreadBreakPoints)>,
) -> Result<HashingCircuit, ProverError> {
    catch_unwind(AssertUnwindSafe(|| match pinned {
        None => keygen_circuit(witness, config.k, config.lookup_bits, config.hashing),
        Some((params, breaks)) => prover_circuit(witness, params, breaks),
    }))
    .map_err(|p| ProverError::Shape(panic_message(&p)))
}

/// One SHPLONK KZG proof of `circuit` into `transcript`, whatever its hash; the error as text.
fn prove_with<E, T>(
    params: &halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG<Bn256>,
    pk: &ProvingKey<G1Affine>,
    circuit: HashingCircuit,
    instances: &[Fr],
    transcript: &mut T,
) -> Result<(), String>
where
    E: halo2_base::halo2_proofs::transcript::EncodedChallenge<G1Affine>,
    T: halo2_base::halo2_proofs::transcript::TranscriptWrite<G1Affine, E>,
{
    create_proof::<KZGCommitmentScheme<Bn256>, ProverSHPLONK<'_, Bn256>, E, _, T, _>(
        params,
        pk,
        &[circuit],
        &[&[instances]],
        rand::rngs::OsRng,
        transcript,
    )
    .map_err(|e| format!("{e:?}"))
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "circuit construction panicked".into())
}

fn progress(enabled: bool) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .expect("static template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn read_entry(
    entry: &Path,
    config_hash: &str,
    circuit_params: &HashingCircuitParams,
    srs: &Srs,
    circuit_id: &str,
) -> Result<(ProvingKey<G1Affine>, VerifyingKeyFile, cache::Manifest), String> {
    let manifest: cache::Manifest = serde_json::from_slice(
        &std::fs::read(entry.join("manifest.json")).map_err(|e| format!("manifest: {e}"))?,
    )
    .map_err(|e| format!("manifest: {e}"))?;
    if manifest.config_hash != config_hash {
        return Err("manifest is for another configuration".into());
    }
    if format!("{:?}", manifest.circuit_params) != format!("{circuit_params:?}") {
        return Err("manifest's circuit params differ from the circuit's".into());
    }
    let vk_file = VerifyingKeyFile::from_bytes(
        &std::fs::read(entry.join("vk.bin")).map_err(|e| format!("vk: {e}"))?,
    )
    .map_err(|e| format!("vk: {e}"))?;
    if vk_file.srs() != srs.id() || vk_file.circuit_id() != circuit_id {
        return Err("vk file is for another SRS or circuit".into());
    }
    let pk_bytes = std::fs::read(entry.join("pk.bin")).map_err(|e| format!("pk: {e}"))?;
    if hex::encode(Sha256::digest(&pk_bytes)) != manifest.pk_sha256 {
        return Err("pk.bin does not match its recorded digest".into());
    }
    // The digest matches what this code wrote, so the unchecked (fast) encoding is safe to read.
    let pk = catch_unwind(|| {
        ProvingKey::<G1Affine>::read::<_, HashingCircuit>(
            &mut &pk_bytes[..],
            SerdeFormat::RawBytesUnchecked,
            manifest.circuit_params.clone(),
        )
    })
    .map_err(|p| format!("pk: {}", panic_message(&p)))?
    .map_err(|e| format!("pk: {e}"))?;
    if pk.get_vk().transcript_repr() != vk_file.vk().transcript_repr() {
        return Err("pk and vk disagree".into());
    }
    Ok((pk, vk_file, manifest))
}

fn write_entry(
    entry: &Path,
    config_hash: &str,
    description: serde_json::Value,
    circuit_params: &HashingCircuitParams,
    break_points: &MultiPhaseThreadBreakPoints,
    pk: &ProvingKey<G1Affine>,
    vk_file: &VerifyingKeyFile,
) -> Result<cache::Manifest, ProverError> {
    let tmp = entry.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| ProverError::io(&tmp, e))?;
    let mut pk_bytes = Vec::new();
    pk.write(&mut pk_bytes, SerdeFormat::RawBytesUnchecked)
        .map_err(|e| ProverError::io(&tmp, e))?;
    let manifest = cache::Manifest {
        config_hash: config_hash.to_owned(),
        description,
        circuit_params: circuit_params.clone(),
        break_points: break_points.clone(),
        pk_sha256: hex::encode(Sha256::digest(&pk_bytes)),
    };
    let write = |name: &str, bytes: &[u8]| {
        let p = tmp.join(name);
        std::fs::write(&p, bytes).map_err(|e| ProverError::io(&p, e))
    };
    write("pk.bin", &pk_bytes)?;
    write("vk.bin", vk_file.to_bytes())?;
    write(
        "manifest.json",
        &serde_json::to_vec_pretty(&manifest).expect("plain JSON"),
    )?;
    if entry.exists() {
        std::fs::remove_dir_all(entry).map_err(|e| ProverError::io(entry, e))?;
    }
    std::fs::rename(&tmp, entry).map_err(|e| ProverError::io(entry, e))?;
    Ok(manifest)
}
