//! The batch verifier and the settlement contract in revm, with real proofs of small
//! deposit/withdraw batches (small params, capacity 2, k 18, development SRS from seed 42:
//! INSECURE, its toxic waste is public; tests only).
//!
//! The keys, the verifier contract and two consecutive batch proofs are made once per test
//! binary (`FIXTURE`); every test deploys fresh contracts on a fresh chain and asserts the
//! contracts' state afterwards. Gas and size figures are printed (`--nocapture`), not asserted,
//! except the EIP-170 size limit.

mod evm_common;

use std::sync::OnceLock;
use std::time::Instant;

use collar_circuits::batch::{keygen_circuit, prover_circuit, BatchWitness};
use collar_circuits::poseidon::Hashing;
use collar_circuits::pow5::{HashingCircuit, HashingCircuitParams};
use collar_protocol::batch::{self, BatchPublicInputs, ExecutedBatch};
use collar_protocol::state::WithdrawalRecord;
use collar_protocol::testkit::Harness;
use collar_protocol::tx::Deposit;
use collar_protocol::{Fr, ProtocolParams, State, Tx};
use collar_verifier::evm::solc::CompiledContract;
use collar_verifier::evm::verifier_sol::ProofLayout;
use collar_verifier::evm::{verifier_sol, EIP170_CODE_SIZE_LIMIT, NUM_PUBLIC_INPUTS};
use collar_verifier::{
    Element, ProofArtifact, ProofSystem, SrsId, SrsKind, VerifyError, VerifyingKeyFile,
};
use evm_common::{
    address_word, bytes_tail, call, fr_u256, fr_word, selector, word, Chain, Outcome,
};
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, G1Affine};
use halo2_base::halo2_proofs::plonk::{create_proof, keygen_pk, keygen_vk, VerifyingKey};
use halo2_base::halo2_proofs::poly::commitment::ParamsProver;
use halo2_base::halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_base::halo2_proofs::poly::kzg::multiopen::ProverSHPLONK;
use halo2_base::halo2_proofs::transcript::TranscriptWriterBuffer;
use rand::SeedableRng;
use revm::primitives::{Address, U256};
use snark_verifier::system::halo2::transcript::evm::EvmTranscript;

/// The devnet L1 (`collar_verifier::settlement`) runs bytecode committed under
/// `contracts/build/`; it must be what the pinned solc-js makes of the sources today.
#[test]
fn committed_devnet_bytecode_is_the_compiled_one() {
    let settlement = evm_common::compile(
        &["CollarPoseidon.sol", "CollarSettlement.sol"],
        "CollarSettlement.sol",
        "CollarSettlement",
    );
    let verifier = evm_common::compile(
        &["DevnetVerifier.sol"],
        "DevnetVerifier.sol",
        "DevnetVerifier",
    );
    for (name, code) in [
        ("CollarSettlement", &settlement.creation),
        ("DevnetVerifier", &verifier.creation),
    ] {
        let path = evm_common::repo_root().join(format!("contracts/build/{name}.hex"));
        let compiled = format!("{}\n", hex::encode(code));
        if std::env::var_os("COLLAR_REGENERATE").is_some() {
            std::fs::write(&path, &compiled).expect("write contracts/build");
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == compiled,
            "{} is stale: rebuild it with COLLAR_REGENERATE=1 cargo test -p collar-verifier \
             --features evm --test evm_settlement committed_devnet_bytecode",
            path.display()
        );
    }
}

/// A settlement contract pointed at an address without code would accept every proof (a call
/// to it succeeds and returns nothing): the constructor refuses it.
#[test]
fn settlement_refuses_a_verifier_without_code() {
    let settlement = evm_common::compile(
        &["CollarPoseidon.sol", "CollarSettlement.sol"],
        "CollarSettlement.sol",
        "CollarSettlement",
    );
    let mut chain = Chain::new();
    let args = [
        address_word(&Address::repeat_byte(0x77)),
        word(8),
        fr_word(&Fr::from(1u64)),
        word(0),
        word(0),
        word(0),
    ]
    .concat();
    let failed = chain
        .try_deploy(DEPLOYER, &settlement.creation, &args)
        .expect_err("a codeless verifier is refused");
    assert!(!failed.success);
    let reason = String::from_utf8_lossy(&failed.output);
    assert!(
        reason.contains("verifier has no code"),
        "revert data: {reason}"
    );
}

/// k = 19 rather than the smallest k that fits: the verifier's bytecode grows by about 1.3 KB
/// per advice column. Since the circuit verifies signatures (two lanes a slot and one per
/// report position in the tick lane), this batch's verifier no longer fits EIP-170 at k = 18;
/// at k = 19 the same cells take half as many columns.
const K: u32 = 19;
const LOOKUP_BITS: usize = 16;
const CAPACITY: usize = 2;
const SRS_LABEL: &str =
    "DEVELOPMENT SRS, ParamsKZG::setup(19, ChaCha20Rng seed 42): INSECURE, tests only";

/// One proven batch, as the settlement contract receives it.
struct ProvenBatch {
    inputs: BatchPublicInputs,
    public: [Fr; NUM_PUBLIC_INPUTS],
    proof: Vec<u8>,
    /// The deposits it consumes, in queue order.
    deposits: Vec<Deposit>,
    withdrawals: Vec<WithdrawalRecord>,
}

struct Fixture {
    srs: ParamsKZG<Bn256>,
    vk: VerifyingKey<G1Affine>,
    /// The circuit configuration the keys were made with.
    config: HashingCircuitParams,
    /// Where the proofs keep their points and scalars.
    layout: ProofLayout,
    verifier: CompiledContract,
    settlement: CompiledContract,
    account_depth: usize,
    genesis_root: Fr,
    /// The root of a different genesis (two underlyings instead of one).
    other_genesis_root: Fr,
    /// Batch 1 from genesis: deposit to 5, withdrawal from 5. Batch 2: deposit to 6,
    /// withdrawal from 5.
    batches: [ProvenBatch; 2],
}

fn builder(
    shape: Option<(HashingCircuitParams, Vec<Vec<usize>>)>,
    w: &BatchWitness,
) -> HashingCircuit {
    match shape {
        None => keygen_circuit(w, K, LOOKUP_BITS, Hashing::Pow5),
        Some((config, breaks)) => prover_circuit(w, config, breaks),
    }
}

fn execute(state: &mut State, number: u64, txs: Vec<Tx>) -> (State, ExecutedBatch) {
    let before = state.clone();
    let exec = batch::execute(state, number, &txs).expect("batch executes");
    (before, exec)
}

/// The shared fixture. A failure while building it is recorded once and reported by every
/// test (instead of every test rebuilding the keys).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Result<Fixture, String>> = OnceLock::new();
    F.get_or_init(|| {
        std::panic::catch_unwind(build_fixture).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into())
        })
    })
    .as_ref()
    .unwrap_or_else(|e| panic!("building the EVM test fixture failed: {e}"))
}

fn build_fixture() -> Fixture {
    {
        let start = Instant::now();
        let mut h = Harness::new(ProtocolParams::small(), 1);
        let account_depth = h.state.params().account_depth;
        let genesis_root = h.state.root();
        let other_genesis_root = Harness::new(ProtocolParams::small(), 2).state.root();
        assert_ne!(genesis_root, other_genesis_root);

        let mut state = h.state.clone();
        let d1 = h.deposit(5, 1_234).tx;
        let w1 = h.withdraw(5, 234).tx;
        let (before1, exec1) = execute(&mut state, 1, vec![d1.clone(), w1]);
        h.state = state.clone();
        let d2 = h.deposit(6, 500).tx;
        let w2 = h.withdraw(5, 100).tx;
        let (before2, exec2) = execute(&mut state, 2, vec![d2.clone(), w2]);
        let mut w1 = BatchWitness::new(&before1, &exec1, CAPACITY).expect("batch 1 witness");
        let mut w2 = BatchWitness::new(&before2, &exec2, CAPACITY).expect("batch 2 witness");
        // The withdrawals' signatures, by the harness's deterministic keys (the circuit
        // verifies them).
        w1.resign_with(collar_protocol::testkit::signer_key);
        w2.resign_with(collar_protocol::testkit::signer_key);

        // Development SRS: insecure, for tests only.
        let srs = ParamsKZG::<Bn256>::setup(K, rand_chacha::ChaCha20Rng::seed_from_u64(42));
        let mut keygen = builder(None, &w1);
        let config = keygen.calculate_params(Some(9));
        println!(
            "circuit shape: k {}, advice {:?} + Pow5 8 ({} permutations), fixed {}, lookup advice {:?}",
            config.base.k,
            config.base.num_advice_per_phase,
            config.capacity,
            config.base.num_fixed,
            config.base.num_lookup_advice_per_phase
        );
        let vk = keygen_vk(&srs, &keygen).expect("keygen vk");
        let pk = keygen_pk(&srs, vk.clone(), &keygen).expect("keygen pk");
        let breaks = keygen.builder.break_points();
        println!("setup and keygen: {:.1?}", start.elapsed());

        let prove = |w: &BatchWitness, exec: &ExecutedBatch, deposits: Vec<Deposit>| {
            let t = Instant::now();
            let public = exec.public_inputs.to_fields();
            let circuit = builder(Some((config.clone(), breaks.clone())), w);
            let cells: Vec<Fr> = circuit.builder.assigned_instances[0]
                .iter()
                .map(|c| *c.value())
                .collect();
            assert_eq!(
                cells,
                public.to_vec(),
                "circuit public inputs are the native ones"
            );
            let mut transcript = TranscriptWriterBuffer::<_, G1Affine, _>::init(Vec::new());
            create_proof::<
                KZGCommitmentScheme<Bn256>,
                ProverSHPLONK<'_, Bn256>,
                _,
                _,
                EvmTranscript<_, _, _, _>,
                _,
            >(
                &srs,
                &pk,
                &[circuit],
                &[&[&public]],
                rand_chacha::ChaCha20Rng::seed_from_u64(1),
                &mut transcript,
            )
            .expect("proof");
            let proof: Vec<u8> = transcript.finalize();
            println!(
                "EVM-transcript proof: {} bytes in {:.1?}",
                proof.len(),
                t.elapsed()
            );
            ProvenBatch {
                inputs: exec.public_inputs,
                public,
                proof,
                deposits,
                withdrawals: exec.withdrawals.clone(),
            }
        };
        let deposit_of = |tx: &Tx| match tx {
            Tx::Deposit(d) => d.clone(),
            _ => unreachable!("a deposit"),
        };
        let b1 = prove(&w1, &exec1, vec![deposit_of(&d1)]);
        let b2 = prove(&w2, &exec2, vec![deposit_of(&d2)]);

        let t = Instant::now();
        let source = verifier_sol::generate(&srs, &vk, NUM_PUBLIC_INPUTS, SRS_LABEL)
            .expect("verifier generation");
        let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("CollarBatchVerifier.sol");
        std::fs::write(&out, &source).expect("write generated verifier");
        let solc = evm_common::solc();
        println!("solc: {}", solc.version().expect("solc version"));
        let verifier = evm_common::compile_batch_verifier(&source).expect("verifier compiles");
        println!(
            "verifier: generated {} ({} bytes of Solidity) and compiled in {:.1?}",
            out.display(),
            source.len(),
            t.elapsed()
        );
        let settlement = evm_common::compile(
            &["CollarPoseidon.sol", "CollarSettlement.sol"],
            "CollarSettlement.sol",
            "CollarSettlement",
        );
        println!("fixture ready in {:.1?}", start.elapsed());
        let layout = ProofLayout::of(&srs, &vk, NUM_PUBLIC_INPUTS);
        Fixture {
            srs,
            vk,
            config,
            layout,
            verifier,
            settlement,
            account_depth,
            genesis_root,
            other_genesis_root,
            batches: [b1, b2],
        }
    }
}

use evm_common::{DEPLOYER, SUBMITTER, USER};

/// A chain with the verifier and a settlement contract from `genesis_root`.
struct World {
    chain: Chain,
    verifier: Address,
    settlement: Address,
}

impl World {
    fn new(genesis_root: Fr) -> Self {
        let f = fixture();
        let mut chain = Chain::new();
        chain.set_balance(USER, 1_000_000_000);
        let verifier = chain.deploy(DEPLOYER, &f.verifier.creation, &[]);
        let [len, from, to] = f.layout.contract_args().map(|v| word(v as u128));
        let args = [
            address_word(&verifier),
            word(f.account_depth as u128),
            fr_word(&genesis_root),
            len,
            from,
            to,
        ]
        .concat();
        let settlement = chain.deploy(DEPLOYER, &f.settlement.creation, &args);
        Self {
            chain,
            verifier,
            settlement,
        }
    }

    fn genesis() -> Self {
        Self::new(fixture().genesis_root)
    }

    fn deposit(&mut self, d: &Deposit) -> Outcome {
        let data = call(
            "deposit(uint64,uint256,uint256)",
            &[
                word(d.account.into()),
                fr_word(&d.pubkey.x),
                fr_word(&d.pubkey.y),
            ],
        );
        self.chain
            .send(USER, self.settlement, u128::from(d.amount), data)
    }

    fn queue(&mut self, b: &ProvenBatch) {
        for d in &b.deposits {
            self.deposit(d).ok();
        }
    }

    fn submit_with(
        &mut self,
        public: &[Fr; NUM_PUBLIC_INPUTS],
        proof: &[u8],
        deposit_count_after: u64,
        withdrawals: &[WithdrawalRecord],
    ) -> Outcome {
        let mut data =
            selector("submitBatch(uint256[8],bytes,uint256,(uint64,uint64,address)[])").to_vec();
        let proof_tail = bytes_tail(proof);
        let head_len = 32 * (NUM_PUBLIC_INPUTS + 3);
        for f in public {
            data.extend_from_slice(&fr_word(f));
        }
        data.extend_from_slice(&word(head_len as u128));
        data.extend_from_slice(&word(deposit_count_after.into()));
        data.extend_from_slice(&word((head_len + proof_tail.len()) as u128));
        data.extend_from_slice(&proof_tail);
        data.extend_from_slice(&word(withdrawals.len() as u128));
        for w in withdrawals {
            data.extend_from_slice(&withdrawal_words(w).concat());
        }
        self.chain.send(SUBMITTER, self.settlement, 0, data)
    }

    /// Submits `b`, claiming the deposits up to the total queued by batches `1..=number`.
    fn submit(&mut self, b: &ProvenBatch, deposit_count_after: u64) -> Outcome {
        self.submit_with(&b.public, &b.proof, deposit_count_after, &b.withdrawals)
    }

    fn claim(&mut self, batch: u64, index: u64, w: &WithdrawalRecord) -> Outcome {
        let mut args = vec![word(batch.into()), word(index.into())];
        args.extend(withdrawal_words(w));
        self.chain.send(
            SUBMITTER,
            self.settlement,
            0,
            call(
                "claimWithdrawal(uint256,uint256,(uint64,uint64,address))",
                &args,
            ),
        )
    }

    fn get(&mut self, signature: &str, args: &[[u8; 32]]) -> U256 {
        self.chain.view_word(self.settlement, signature, args)
    }

    /// (state root, batch number, consumed deposits, queued deposits, total locked).
    fn state(&mut self) -> (U256, U256, U256, U256, U256) {
        (
            self.get("stateRoot()", &[]),
            self.get("batchNumber()", &[]),
            self.get("consumedDepositCount()", &[]),
            self.get("depositCount()", &[]),
            self.get("totalLocked()", &[]),
        )
    }
}

fn withdrawal_words(w: &WithdrawalRecord) -> Vec<[u8; 32]> {
    let recipient = Address::from(w.recipient.0);
    vec![
        word(w.account.into()),
        word(w.amount.into()),
        address_word(&recipient),
    ]
}

fn u(v: u64) -> U256 {
    U256::from(v)
}

#[test]
fn bare_verifier_fits_eip170_accepts_valid_and_rejects_tampered_proofs() {
    let f = fixture();
    let size = f.verifier.deployed.len();
    println!(
        "verifier deployed bytecode: {size} bytes (EIP-170 limit {EIP170_CODE_SIZE_LIMIT}); \
         creation code {} bytes",
        f.verifier.creation.len()
    );
    assert!(
        size <= EIP170_CODE_SIZE_LIMIT,
        "verifier is over EIP-170's limit"
    );
    let mut w = World::genesis();
    assert_eq!(
        w.chain.code_size(w.verifier),
        size,
        "revm deployed it whole"
    );

    for (i, b) in f.batches.iter().enumerate() {
        verifier_sol::verify_natively(&f.srs, &f.vk, NUM_PUBLIC_INPUTS, &b.public, &b.proof)
            .expect("the EVM proof verifies natively");
        let data = verifier_sol::calldata(&b.public, &b.proof);
        let out = w.chain.send(SUBMITTER, w.verifier, 0, data.clone()).ok();
        println!(
            "bare verifier, batch {}: {} gas for the whole transaction ({} bytes of calldata)",
            i + 1,
            out.gas_used,
            data.len()
        );
    }
    let b = &f.batches[0];
    let mut bad = b.proof.clone();
    bad[b.proof.len() / 2] ^= 1;
    assert!(
        !w.chain
            .send(
                SUBMITTER,
                w.verifier,
                0,
                verifier_sol::calldata(&b.public, &bad)
            )
            .success
    );
    assert!(
        verifier_sol::verify_natively(&f.srs, &f.vk, NUM_PUBLIC_INPUTS, &b.public, &bad).is_err()
    );
    for i in 0..NUM_PUBLIC_INPUTS {
        let mut public = b.public;
        public[i] += Fr::one();
        let out = w.chain.send(
            SUBMITTER,
            w.verifier,
            0,
            verifier_sol::calldata(&public, &b.proof),
        );
        assert!(!out.success, "public input {i} changed and still accepted");
    }
    let truncated = &b.proof[..b.proof.len() - 32];
    assert!(
        !w.chain
            .send(
                SUBMITTER,
                w.verifier,
                0,
                verifier_sol::calldata(&b.public, truncated)
            )
            .success
    );
}

#[test]
fn deposits_extend_the_protocol_chain_and_check_the_l1_preconditions() {
    let f = fixture();
    let mut w = World::genesis();
    let d = &f.batches[0].deposits[0];
    let out = w.deposit(d).ok();
    println!("deposit: {} gas", out.gas_used);
    let expected = d.chain(Fr::zero());
    assert_eq!(
        w.get("depositHeadAt(uint256)", &[word(1)]),
        fr_u256(&expected)
    );
    assert_eq!(w.get("depositCount()", &[]), u(1));
    assert_eq!(w.get("totalLocked()", &[]), u(d.amount));
    assert_eq!(w.chain.balance(w.settlement), u(d.amount));
    let d2 = &f.batches[1].deposits[0];
    let out = w.deposit(d2).ok();
    println!("deposit (second in queue): {} gas", out.gas_used);
    assert_eq!(
        w.get("depositHeadAt(uint256)", &[word(2)]),
        fr_u256(&d2.chain(expected))
    );

    // The preconditions of §7.1: each rejected, nothing queued.
    let mut bad = d.clone();
    bad.account = 1 << f.account_depth;
    w.deposit(&bad).reverted_with("AccountOutOfRange()");
    let mut bad = d.clone();
    bad.amount = 0;
    w.deposit(&bad).reverted_with("ZeroAmount()");
    let mut bad = d.clone();
    bad.pubkey.y += Fr::one();
    w.deposit(&bad).reverted_with("InvalidPubkey()");
    let mut bad = d.clone();
    bad.pubkey.x = Fr::zero();
    bad.pubkey.y = Fr::zero();
    w.deposit(&bad).reverted_with("InvalidPubkey()");
    assert_eq!(w.get("depositCount()", &[]), u(2));
    assert_eq!(w.get("totalLocked()", &[]), u(d.amount + d2.amount));
}

#[test]
fn valid_batches_advance_the_root_and_the_batch_number() {
    let f = fixture();
    let mut w = World::genesis();
    let [b1, b2] = &f.batches;
    w.queue(b1);
    let out = w.submit(b1, 1).ok();
    println!(
        "submitBatch (1 deposit, {} withdrawal): {} gas",
        b1.withdrawals.len(),
        out.gas_used
    );
    let (root, number, consumed, queued, _) = w.state();
    assert_eq!(root, fr_u256(&b1.public[1]));
    assert_eq!((number, consumed, queued), (u(1), u(1), u(1)));
    assert_eq!(
        w.get("pubdataCommitmentOf(uint256)", &[word(1)]),
        fr_u256(&b1.public[2])
    );
    assert_eq!(
        w.get("tickCommitmentOf(uint256)", &[word(1)]),
        fr_u256(&b1.public[3])
    );

    w.queue(b2);
    let out = w.submit(b2, 2).ok();
    println!("submitBatch, second batch: {} gas", out.gas_used);
    let (root, number, consumed, queued, _) = w.state();
    assert_eq!(root, fr_u256(&b2.public[1]));
    assert_eq!((number, consumed, queued), (u(2), u(2), u(2)));
}

#[test]
fn a_batch_from_the_wrong_old_root_is_rejected() {
    let f = fixture();
    let mut w = World::new(f.other_genesis_root);
    let b1 = &f.batches[0];
    w.queue(b1);
    w.submit(b1, 1)
        .reverted_with("WrongOldRoot(uint256,uint256)");
    let (root, number, consumed, queued, _) = w.state();
    assert_eq!(root, fr_u256(&f.other_genesis_root));
    assert_eq!((number, consumed, queued), (u(0), u(0), u(1)));
    assert_eq!(
        w.get("pubdataCommitmentOf(uint256)", &[word(1)]),
        U256::ZERO
    );
}

#[test]
fn replaying_a_batch_is_rejected() {
    let f = fixture();
    let mut w = World::genesis();
    let b1 = &f.batches[0];
    w.queue(b1);
    w.submit(b1, 1).ok();
    w.submit(b1, 1)
        .reverted_with("WrongBatchNumber(uint256,uint256)");
    // Renumbering the replay breaks the proof instead (and the old root no longer matches).
    let mut renumbered = b1.public;
    renumbered[7] = Fr::from(2u64);
    w.submit_with(&renumbered, &b1.proof, 1, &b1.withdrawals)
        .reverted_with("WrongOldRoot(uint256,uint256)");
    let (root, number, consumed, _, _) = w.state();
    assert_eq!(root, fr_u256(&b1.public[1]));
    assert_eq!((number, consumed), (u(1), u(1)));
    // Batch 1's withdrawal was registered once: one claim succeeds, the second fails.
    w.claim(1, 0, &b1.withdrawals[0]).ok();
    w.claim(1, 0, &b1.withdrawals[0])
        .reverted_with("NotClaimable()");
}

#[test]
fn batch_numbers_are_checked_on_l1_only() {
    // The circuit only range-checks batch_number (public input 7): it is not in the state
    // header, so the proof holds for any number. The contract is what orders batches: only
    // `batchNumber + 1` is accepted, checked before the proof.
    let f = fixture();
    let mut w = World::genesis();
    let (b1, b2) = (&f.batches[0], &f.batches[1]);
    w.queue(b1);
    w.queue(b2);
    w.submit(b2, 2)
        .reverted_with("WrongBatchNumber(uint256,uint256)");
    for number in [0u64, 2, u64::MAX] {
        let mut renumbered = b1.public;
        renumbered[7] = Fr::from(number);
        w.submit_with(&renumbered, &b1.proof, 1, &b1.withdrawals)
            .reverted_with("WrongBatchNumber(uint256,uint256)");
    }
    let (_, number, consumed, _, _) = w.state();
    assert_eq!((number, consumed), (u(0), u(0)));
    w.submit(b1, 1).ok();
    w.submit(b2, 2).ok();
    let (root, number, _, _, _) = w.state();
    assert_eq!(root, fr_u256(&b2.public[1]));
    assert_eq!(number, u(2));
}

#[test]
fn a_tampered_proof_is_rejected() {
    let f = fixture();
    let mut w = World::genesis();
    let b1 = &f.batches[0];
    w.queue(b1);
    for at in [0, b1.proof.len() / 2, b1.proof.len() - 1] {
        let mut bad = b1.proof.clone();
        bad[at] ^= 1;
        w.submit_with(&b1.public, &bad, 1, &b1.withdrawals)
            .reverted_with("InvalidProof()");
    }
    // A changed new root (the one input the contract cannot check itself) breaks the proof.
    let mut forged = b1.public;
    forged[1] += Fr::one();
    w.submit_with(&forged, &b1.proof, 1, &b1.withdrawals)
        .reverted_with("InvalidProof()");
    let (root, number, consumed, queued, _) = w.state();
    assert_eq!(root, fr_u256(&f.genesis_root));
    assert_eq!((number, consumed, queued), (u(0), u(0), u(1)));
}

#[test]
fn a_batch_claiming_deposits_never_queued_is_rejected() {
    let f = fixture();
    let b1 = &f.batches[0];
    // Nothing queued at all.
    let mut w = World::genesis();
    w.submit(b1, 1)
        .reverted_with("UnknownDepositHead(uint256,uint256)");
    w.submit(b1, 0)
        .reverted_with("UnknownDepositHead(uint256,uint256)");
    let (root, number, consumed, queued, _) = w.state();
    assert_eq!(root, fr_u256(&f.genesis_root));
    assert_eq!((number, consumed, queued), (u(0), u(0), u(0)));

    // A different deposit queued (one wei less): the batch's head is not the queue's.
    let mut other = b1.deposits[0].clone();
    other.amount -= 1;
    w.deposit(&other).ok();
    w.submit(b1, 1)
        .reverted_with("UnknownDepositHead(uint256,uint256)");
    let (root, number, consumed, queued, _) = w.state();
    assert_eq!(root, fr_u256(&f.genesis_root));
    assert_eq!((number, consumed, queued), (u(0), u(0), u(1)));

    // Batch 2 claims its deposit, but batch 1's was never consumed: wrong head before.
    let mut w = World::genesis();
    let b2 = &f.batches[1];
    w.queue(b1);
    w.queue(b2);
    w.submit(b1, 1).ok();
    // Submitting batch 2 while claiming only batch 1's deposits count is rejected too.
    w.submit(b2, 1)
        .reverted_with("UnknownDepositHead(uint256,uint256)");
    w.submit(b2, 2).ok();
    assert_eq!(w.state().2, u(2));
}

#[test]
fn the_withdrawal_list_must_match_the_commitment() {
    let f = fixture();
    let mut w = World::genesis();
    let b1 = &f.batches[0];
    w.queue(b1);
    let mut forged = b1.withdrawals.clone();
    forged[0].amount += 1;
    w.submit_with(&b1.public, &b1.proof, 1, &forged)
        .reverted_with("WithdrawalsMismatch(uint256,uint256)");
    w.submit_with(&b1.public, &b1.proof, 1, &[])
        .reverted_with("WithdrawalsMismatch(uint256,uint256)");
    let mut redirected = b1.withdrawals.clone();
    redirected[0].recipient.0[0] ^= 1;
    w.submit_with(&b1.public, &b1.proof, 1, &redirected)
        .reverted_with("WithdrawalsMismatch(uint256,uint256)");
    let (root, number, _, _, _) = w.state();
    assert_eq!((root, number), (fr_u256(&f.genesis_root), u(0)));
}

#[test]
fn a_withdrawal_is_claimable_once_and_only_after_its_batch() {
    let f = fixture();
    let mut w = World::genesis();
    let [b1, b2] = &f.batches;
    let wd = &b1.withdrawals[0];
    let recipient = Address::from(wd.recipient.0);
    w.queue(b1);
    w.claim(1, 0, wd).reverted_with("NotClaimable()");
    assert_eq!(w.chain.balance(recipient), U256::ZERO);

    w.submit(b1, 1).ok();
    let id = [
        word(1),
        word(0),
        word(wd.account.into()),
        word(wd.amount.into()),
        address_word(&recipient),
    ];
    let id = w.chain.view(
        w.settlement,
        call("withdrawalId(uint256,uint256,uint64,uint64,address)", &id),
    );
    assert_eq!(
        w.get("claimable(bytes32)", &[id[..32].try_into().unwrap()]),
        u(1)
    );
    // Wrong index, batch or amount: not claimable.
    w.claim(1, 1, wd).reverted_with("NotClaimable()");
    w.claim(2, 0, wd).reverted_with("NotClaimable()");
    let mut more = *wd;
    more.amount += 1;
    w.claim(1, 0, &more).reverted_with("NotClaimable()");

    let locked = w.get("totalLocked()", &[]);
    let out = w.claim(1, 0, wd).ok();
    println!("claimWithdrawal: {} gas", out.gas_used);
    assert_eq!(w.chain.balance(recipient), u(wd.amount));
    assert_eq!(w.get("totalLocked()", &[]), locked - u(wd.amount));
    assert_eq!(
        w.get("claimable(bytes32)", &[id[..32].try_into().unwrap()]),
        U256::ZERO
    );
    w.claim(1, 0, wd).reverted_with("NotClaimable()");
    assert_eq!(w.chain.balance(recipient), u(wd.amount));

    // Batch 2's withdrawal (same recipient) becomes claimable with batch 2 only.
    let wd2 = &b2.withdrawals[0];
    w.queue(b2);
    w.claim(2, 0, wd2).reverted_with("NotClaimable()");
    w.submit(b2, 2).ok();
    w.claim(2, 0, wd2).ok();
    assert_eq!(w.chain.balance(recipient), u(wd.amount + wd2.amount));
    assert_eq!(
        w.chain.balance(w.settlement),
        u(b1.deposits[0].amount + b2.deposits[0].amount - wd.amount - wd2.amount)
    );
}

#[test]
fn settlement_contract_fits_eip170_and_deploys() {
    let settlement = evm_common::compile(
        &["CollarPoseidon.sol", "CollarSettlement.sol"],
        "CollarSettlement.sol",
        "CollarSettlement",
    );
    println!(
        "CollarSettlement deployed bytecode: {} bytes (EIP-170 limit {EIP170_CODE_SIZE_LIMIT})",
        settlement.deployed.len()
    );
    assert!(settlement.deployed.len() <= EIP170_CODE_SIZE_LIMIT);
    let mut chain = Chain::new();
    // Any contract will do as the verifier here (the constructor only needs code there).
    let stand_in = evm_common::compile(
        &["DevnetVerifier.sol"],
        "DevnetVerifier.sol",
        "DevnetVerifier",
    );
    let verifier = chain.deploy(DEPLOYER, &stand_in.creation, &[]);
    let root = Fr::from(7u64);
    let args = [
        address_word(&verifier),
        word(8),
        fr_word(&root),
        word(1024),
        word(64),
        word(96),
    ]
    .concat();
    let at = chain.deploy(DEPLOYER, &settlement.creation, &args);
    assert_eq!(chain.code_size(at), settlement.deployed.len());
    assert_eq!(chain.view_word(at, "stateRoot()", &[]), fr_u256(&root));
    assert_eq!(chain.view_word(at, "batchNumber()", &[]), U256::ZERO);
    assert_eq!(chain.view_word(at, "accountDepth()", &[]), U256::from(8u64));
    assert_eq!(
        chain.view_word(at, "proofLength()", &[]),
        U256::from(1024u64)
    );
    // A scalar range that is not whole words, or runs past the proof, is refused.
    for (len, from, to) in [(1024, 64, 80), (1024, 96, 64), (64, 32, 96)] {
        let args = [
            address_word(&verifier),
            word(8),
            fr_word(&root),
            word(len),
            word(from),
            word(to),
        ]
        .concat();
        let failed = chain
            .try_deploy(DEPLOYER, &settlement.creation, &args)
            .expect_err("a bad proof layout is refused");
        assert!(String::from_utf8_lossy(&failed.output).contains("proof layout"));
    }
}

/// The fixture's first batch as a Keccak-transcript proof artifact, with its key file.
fn evm_artifact() -> (ProofArtifact, VerifyingKeyFile) {
    let f = fixture();
    let g0 = f.srs.get_g()[0];
    let (g2, s_g2) = (f.srs.g2(), f.srs.s_g2());
    let srs = SrsId::new(SrsKind::InsecureDevelopment, &g0, &g2, &s_g2);
    let vk = VerifyingKeyFile::new(
        "collar-test/evm-settlement".into(),
        srs,
        f.config.clone(),
        g0,
        g2,
        s_g2,
        &f.vk,
    )
    .expect("key file");
    let b = &f.batches[0];
    let artifact = ProofArtifact::new(
        vk.circuit_id().into(),
        vk.hash(),
        srs,
        ProofSystem::ShplonkKeccak,
        b.inputs,
        b.proof.clone(),
    )
    .expect("artifact");
    (artifact, vk)
}

/// The native verifier reads an EVM-transcript proof canonically, element by element, and
/// finds exactly the layout the settlement contract is deployed with.
#[test]
fn evm_proofs_have_the_layout_the_contract_checks() {
    let f = fixture();
    let (artifact, vk) = evm_artifact();
    let verified = collar_verifier::verify(&artifact, &vk).expect("the EVM proof verifies");
    let l = f.layout;
    let scalars = l.scalar_bytes();
    let expected: Vec<(usize, Element)> = (0..l.points_before)
        .map(|i| (64 * i, Element::Point))
        .chain((0..l.scalars).map(|i| (scalars.start + 32 * i, Element::Scalar)))
        .chain((0..l.points_after).map(|i| (scalars.end + 64 * i, Element::Point)))
        .collect();
    assert_eq!(verified.proof_layout, expected);
    assert_eq!(l.len(), f.batches[0].proof.len());
    println!("EVM proof layout: {l:?}, {} bytes", l.len());
}

/// The generated verifier checks its points but reduces each scalar modulo p and ignores
/// calldata after the proof, so one proof has other byte strings that it accepts. The
/// settlement contract refuses them, and so does the native verifier.
#[test]
fn non_canonical_proof_encodings_are_refused_by_the_contract() {
    let f = fixture();
    let b = &f.batches[0];
    let p = fr_u256(&-Fr::one()) + U256::from(1u64);
    let (offset, moved) = f
        .layout
        .scalar_bytes()
        .step_by(32)
        .find_map(|o| {
            let v = U256::from_be_slice(&b.proof[o..o + 32]);
            v.checked_add(p).map(|m| (o, m))
        })
        .expect("a scalar word with room for + p");
    let mut malleated = b.proof.clone();
    malleated[offset..offset + 32].copy_from_slice(&moved.to_be_bytes::<32>());
    let mut longer = b.proof.clone();
    longer.extend_from_slice(&[0; 32]);

    let mut w = World::genesis();
    for (what, proof) in [("scalar + p", &malleated), ("32 bytes appended", &longer)] {
        let bare = w.chain.send(
            SUBMITTER,
            w.verifier,
            0,
            verifier_sol::calldata(&b.public, proof),
        );
        assert!(
            bare.success,
            "the bare verifier accepts the proof with {what}"
        );
    }
    w.queue(b);
    w.submit_with(&b.public, &malleated, 1, &b.withdrawals)
        .reverted_with("NonCanonicalProofScalar(uint256)");
    w.submit_with(&b.public, &longer, 1, &b.withdrawals)
        .reverted_with("WrongProofLength(uint256,uint256)");
    w.submit_with(&b.public, &b.proof[..b.proof.len() - 1], 1, &b.withdrawals)
        .reverted_with("WrongProofLength(uint256,uint256)");
    assert_eq!(w.state().1, u(0), "nothing was accepted");

    let (artifact, vk) = evm_artifact();
    for proof in [&malleated, &longer] {
        let mut bad = artifact.clone();
        *bad.proof_mut() = proof.clone();
        let e = collar_verifier::verify(&bad, &vk).expect_err("refused natively");
        assert!(matches!(e, VerifyError::InvalidProof(_)), "{e}");
    }
    w.submit(b, 1).ok();
    assert_eq!(w.state().1, u(1));
}
