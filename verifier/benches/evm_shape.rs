//! Which circuit size `k` makes the **production-shape** batch verifier fit EIP-170 (issue 4).
//!
//! For each capacity and each `k` it builds the representative batch of `collar stats
//! --production --fill trades` (`collar_circuits::stats::build`, keygen mode, lookup bits 16) laid
//! out at that `k`, runs `keygen_vk` on the INSECURE development SRS (seed 42, cached on disk by
//! `collar_prover::Srs::dev_cached`), generates the Solidity verifier
//! (`collar_verifier::evm::verifier_sol::generate`), compiles it with the pinned solc-js (optimizer
//! off, as the EVM tests do) and deploys it in revm with EIP-170 enforced. Larger `k` spreads the
//! same cells over fewer advice columns, and the verifier shrinks by about 1.3 KB a column.
//!
//! ```text
//! cargo bench -p collar-verifier --features evm --bench evm_shape
//! COLLAR_EVM_K=19,20 COLLAR_EVM_CAPACITIES=1 cargo bench -p collar-verifier --features evm --bench evm_shape -- --json
//! ```
//!
//! Environment:
//! - `COLLAR_EVM_K`: comma-separated `k` (default `18,19,20,21`), measured in increasing order;
//! - `COLLAR_EVM_CAPACITIES`: comma-separated capacities (default `1,2`);
//! - `COLLAR_EVM_HASHING`: the circuit, `pow5` (default, production), `pow5-msm` or `halo2-base`
//!   (as `collar stats --hashing`);
//! - `COLLAR_EVM_PROVE=1`: at the smallest measured `k` whose verifier deploys at capacity 1,
//!   also run `keygen_pk`, prove the batch with the EVM (Keccak) transcript, verify the proof
//!   natively and in revm, and report gas, proof bytes, times and peak memory;
//! - `COLLAR_EVM_JSON=1` (or the argument `--json`): also print the rows as JSON;
//! - `COLLAR_EVM_SRS_DIR`: where the development SRS files are cached (default: the prover's key
//!   cache, `$XDG_CACHE_HOME/collar/keys` or `~/.cache/collar/keys`).
//!
//! Every key and proof here is made with a development SRS whose toxic waste is public: the
//! figures are sizes and costs, not a deployable verifier.

#[path = "../tests/evm_common/mod.rs"]
mod evm_common;

use std::path::PathBuf;
use std::time::Instant;

use collar_circuits::batch::prover_circuit;
use collar_circuits::poseidon::Hashing;
use collar_circuits::stats::{self, Built, SlotFill, StatsShape};
use collar_prover::Srs;
use collar_verifier::evm::solc::CompiledContract;
use collar_verifier::evm::{verifier_sol, EIP170_CODE_SIZE_LIMIT, NUM_PUBLIC_INPUTS};
use evm_common::Chain;
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, G1Affine};
use halo2_base::halo2_proofs::plonk::{create_proof, keygen_pk, keygen_vk, VerifyingKey};
use halo2_base::halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_base::halo2_proofs::poly::kzg::multiopen::ProverSHPLONK;
use halo2_base::halo2_proofs::transcript::TranscriptWriterBuffer;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use revm::primitives::Address;
use serde_json::json;
use snark_verifier::system::halo2::transcript::evm::EvmTranscript;

use evm_common::{DEPLOYER, SUBMITTER};

/// One measured configuration.
struct Row {
    k: u32,
    capacity: usize,
    advice_columns: usize,
    lookup_advice_columns: usize,
    fixed_columns: usize,
    advice_cells: u64,
    rows_used: usize,
    usable_rows: usize,
    srs_s: f64,
    keygen_vk_s: f64,
    solidity_bytes: usize,
    compile_s: f64,
    deployed_bytes: usize,
    creation_bytes: usize,
    /// `None` when the deployment succeeded, otherwise why it failed.
    deploy_failure: Option<String>,
    proving: Option<Proving>,
}

impl Row {
    fn fits(&self) -> bool {
        self.deployed_bytes <= EIP170_CODE_SIZE_LIMIT
    }

    fn deploys(&self) -> bool {
        self.deploy_failure.is_none()
    }
}

/// Proving figures at one configuration (EVM transcript).
struct Proving {
    keygen_pk_s: f64,
    prove_s: f64,
    proof_bytes: usize,
    calldata_bytes: usize,
    verify_gas: u64,
    tampered_rejected: bool,
    peak_memory_bytes: Option<u64>,
}

fn list<T: std::str::FromStr + Clone>(var: &str, default: &[T]) -> Vec<T> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{var}: comma-separated integers, got {v:?}"))
            })
            .collect(),
        _ => default.to_vec(),
    }
}

fn flag(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

/// The prover's default key cache, where `Srs::dev_cached` keeps the development SRS files.
fn srs_dir() -> PathBuf {
    std::env::var_os("COLLAR_EVM_SRS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(collar_prover::default_key_cache)
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0))
}

/// The production shape of `collar stats --production --depth 24 --positions 16 --fill trades`
/// at a fixed `k`, with no column budget (the point is to see how many columns it takes).
fn shape(capacity: usize, k: u32, hashing: Hashing) -> StatsShape {
    let mut s = StatsShape::production(capacity);
    s.hashing = hashing;
    s.fill = SlotFill::Trades;
    s.k = Some(k);
    s.max_advice = usize::MAX;
    s
}

/// Deploys `verifier` on a fresh chain; the address, or why revm refused it.
fn deploy(verifier: &CompiledContract) -> Result<(Chain, Address), String> {
    let mut chain = Chain::new();
    // `Chain::deploy` panics on a failed deployment (a revert, or code over EIP-170's limit);
    // catch it so that an oversized verifier is a row of the table, not the end of the run.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let address = chain.deploy(DEPLOYER, &verifier.creation, &[]);
        (chain, address)
    }));
    std::panic::set_hook(hook);
    result.map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
    })
}

/// Proves the representative batch of `built` with the EVM transcript and runs the proof
/// through `verifier` in revm.
fn prove(
    built: &Built,
    srs: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    chain: &mut Chain,
    verifier: Address,
) -> Proving {
    let t = Instant::now();
    let pk = keygen_pk(srs, vk.clone(), &built.circuit).expect("keygen_pk");
    let keygen_pk_s = secs(t);
    let breaks = built.circuit.builder.break_points();
    eprintln!("  keygen_pk {keygen_pk_s:.1} s; proving (EVM transcript)");

    let t = Instant::now();
    let circuit = prover_circuit(&built.witness, built.config.clone(), breaks);
    let mut transcript = TranscriptWriterBuffer::<_, G1Affine, _>::init(Vec::new());
    create_proof::<
        KZGCommitmentScheme<Bn256>,
        ProverSHPLONK<'_, Bn256>,
        _,
        _,
        EvmTranscript<_, _, _, _>,
        _,
    >(
        srs,
        &pk,
        &[circuit],
        &[&[&built.instances]],
        ChaCha20Rng::seed_from_u64(1),
        &mut transcript,
    )
    .expect("create_proof");
    let proof: Vec<u8> = transcript.finalize();
    let prove_s = secs(t);
    eprintln!("  proved in {prove_s:.1} s, {} bytes", proof.len());
    drop(pk);

    verifier_sol::verify_natively(srs, vk, NUM_PUBLIC_INPUTS, &built.instances, &proof)
        .expect("the EVM-transcript proof verifies natively");
    let data = verifier_sol::calldata(&built.instances, &proof);
    let out = chain.send(SUBMITTER, verifier, 0, data.clone());
    assert!(
        out.success,
        "the verifier contract rejected a valid proof: 0x{}",
        hex::encode(&out.output)
    );
    let mut bad = proof.clone();
    bad[proof.len() / 2] ^= 1;
    let tampered_rejected = !chain
        .send(
            SUBMITTER,
            verifier,
            0,
            verifier_sol::calldata(&built.instances, &bad),
        )
        .success;
    Proving {
        keygen_pk_s,
        prove_s,
        proof_bytes: proof.len(),
        calldata_bytes: data.len(),
        verify_gas: out.gas_used,
        tampered_rejected,
        peak_memory_bytes: stats::peak_memory_bytes(),
    }
}

/// Measures one configuration; proves when `want_proof`.
fn measure(capacity: usize, k: u32, hashing: Hashing, want_proof: bool) -> Result<Row, String> {
    let shape = shape(capacity, k, hashing);
    let params = shape.params().map_err(|e| e.to_string())?;
    let t = Instant::now();
    let built = stats::build(&shape).map_err(|e| e.to_string())?;
    let table = stats::stats_of(&built, params);
    eprintln!(
        "  built in {:.1} s: {} advice columns, {} lookup advice, {} fixed, rows {} / {}",
        secs(t),
        table.advice_columns,
        table.lookup_advice_columns,
        table.fixed_columns,
        table.rows_used,
        table.usable_rows
    );

    let t = Instant::now();
    let srs = Srs::dev_cached(k, &srs_dir()).map_err(|e| e.to_string())?;
    let srs_s = secs(t);
    let t = Instant::now();
    let vk = keygen_vk(srs.params(), &built.circuit).map_err(|e| format!("keygen_vk: {e:?}"))?;
    let keygen_vk_s = secs(t);
    eprintln!("  SRS {srs_s:.1} s ({srs}), keygen_vk {keygen_vk_s:.1} s");

    let t = Instant::now();
    let label = format!(
        "INSECURE DEVELOPMENT SRS (ParamsKZG::setup({k}), seed {}): sizes only, never deploy",
        collar_prover::DEV_SRS_SEED
    );
    let source = verifier_sol::generate(srs.params(), &vk, NUM_PUBLIC_INPUTS, &label)
        .map_err(|e| e.to_string())?;
    let verifier = evm_common::compile_batch_verifier(&source).map_err(|e| e.to_string())?;
    let compile_s = secs(t);
    eprintln!(
        "  verifier: {} bytes of Solidity, {} bytes deployed, generated and compiled in {compile_s:.1} s",
        source.len(),
        verifier.deployed.len()
    );

    let mut deployed = deploy(&verifier);
    let proving = match &mut deployed {
        Ok((chain, address)) if want_proof => {
            Some(prove(&built, srs.params(), &vk, chain, *address))
        }
        _ => None,
    };
    Ok(Row {
        k,
        capacity,
        advice_columns: table.advice_columns,
        lookup_advice_columns: table.lookup_advice_columns,
        fixed_columns: table.fixed_columns,
        advice_cells: table.advice_cells,
        rows_used: table.rows_used,
        usable_rows: table.usable_rows,
        srs_s,
        keygen_vk_s,
        solidity_bytes: source.len(),
        compile_s,
        deployed_bytes: verifier.deployed.len(),
        creation_bytes: verifier.creation.len(),
        deploy_failure: deployed.err(),
        proving,
    })
}

fn main() {
    let json_out = flag("COLLAR_EVM_JSON") || std::env::args().any(|a| a == "--json");
    let want_proof = flag("COLLAR_EVM_PROVE");
    let mut ks: Vec<u32> = list("COLLAR_EVM_K", &[18, 19, 20, 21]);
    ks.sort_unstable();
    ks.dedup();
    let capacities: Vec<usize> = list("COLLAR_EVM_CAPACITIES", &[1, 2]);
    let hashing: Hashing = std::env::var("COLLAR_EVM_HASHING").map_or(Hashing::Pow5, |v| {
        v.parse()
            .unwrap_or_else(|e| panic!("COLLAR_EVM_HASHING: {e}"))
    });
    println!(
        "Production-shape batch verifier of the {} circuit (depth 24, 16 positions, 64 series, \
         all-trade batch), INSECURE development SRS; EIP-170 limit {EIP170_CODE_SIZE_LIMIT} bytes.",
        hashing.name()
    );
    let mut rows = Vec::new();
    let mut proved = false;
    for &capacity in &capacities {
        for &k in &ks {
            eprintln!("capacity {capacity}, k = {k}:");
            let prove_here = want_proof && capacity == 1 && !proved;
            match measure(capacity, k, hashing, prove_here) {
                Ok(row) => {
                    proved |= row.proving.is_some();
                    rows.push(row);
                }
                Err(e) => eprintln!("  skipped: {e}"),
            }
        }
    }
    if want_proof && !proved {
        eprintln!("COLLAR_EVM_PROVE=1, but no measured k deployed at capacity 1: nothing proved");
    }

    println!();
    println!(
        "| k | capacity | advice columns | lookup advice | fixed | rows used / usable | \
         deployed bytes | fits EIP-170 | deploys in revm | keygen_vk s | verify gas | proof bytes | keygen_pk s | prove s | peak memory |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let p = r.proving.as_ref();
        let opt = |f: &dyn Fn(&Proving) -> String| p.map_or("".to_string(), f);
        println!(
            "| {} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} |",
            r.k,
            r.capacity,
            r.advice_columns,
            r.lookup_advice_columns,
            r.fixed_columns,
            r.rows_used,
            r.usable_rows,
            r.deployed_bytes,
            if r.fits() { "yes" } else { "no" },
            if r.deploys() { "yes" } else { "no" },
            r.keygen_vk_s,
            opt(&|p| p.verify_gas.to_string()),
            opt(&|p| p.proof_bytes.to_string()),
            opt(&|p| format!("{:.1}", p.keygen_pk_s)),
            opt(&|p| format!("{:.1}", p.prove_s)),
            opt(&|p| mib(p.peak_memory_bytes)),
        );
    }
    for r in rows.iter().filter(|r| !r.deploys()) {
        println!(
            "\nk = {}, capacity {}: revm refused the deployment: {}",
            r.k,
            r.capacity,
            r.deploy_failure.as_deref().unwrap_or("")
        );
    }
    println!(
        "\npeak memory of the whole run (VmHWM): {}",
        mib(stats::peak_memory_bytes())
    );

    if json_out {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "k": r.k,
                    "capacity": r.capacity,
                    "advice_columns": r.advice_columns,
                    "lookup_advice_columns": r.lookup_advice_columns,
                    "fixed_columns": r.fixed_columns,
                    "advice_cells": r.advice_cells,
                    "rows_used": r.rows_used,
                    "usable_rows": r.usable_rows,
                    "srs_s": r.srs_s,
                    "keygen_vk_s": r.keygen_vk_s,
                    "solidity_bytes": r.solidity_bytes,
                    "generate_and_compile_s": r.compile_s,
                    "deployed_bytes": r.deployed_bytes,
                    "creation_bytes": r.creation_bytes,
                    "eip170_limit": EIP170_CODE_SIZE_LIMIT,
                    "fits_eip170": r.fits(),
                    "deploys": r.deploys(),
                    "deploy_failure": r.deploy_failure,
                    "proving": r.proving.as_ref().map(|p| json!({
                        "transcript": "evm-keccak",
                        "keygen_pk_s": p.keygen_pk_s,
                        "prove_s": p.prove_s,
                        "proof_bytes": p.proof_bytes,
                        "calldata_bytes": p.calldata_bytes,
                        "verify_gas": p.verify_gas,
                        "tampered_proof_rejected": p.tampered_rejected,
                        "peak_memory_bytes": p.peak_memory_bytes,
                    })),
                })
            })
            .collect();
        let doc = json!({
            "srs": "INSECURE_DEVELOPMENT_SRS",
            "hashing": hashing.name(),
            "shape": "production (depth 24, 16 positions, order depth 6, 64 series), all trades, lookup bits 16",
            "rows": rows,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON of plain values")
        );
    }
}
