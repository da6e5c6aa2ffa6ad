//! The Pow5 Poseidon chip: it computes exactly the native `collar_protocol::poseidon` (and what
//! halo2-base's `PoseidonHasher` constrains), each of its named gates fails when a cell of its
//! rows is mutated, a broken link between a recorded virtual cell and the chip fails the copy
//! constraints, and a real KZG proof of a hashing circuit verifies (and not against tampered
//! public inputs). Also measures advice cells per permutation against halo2-base's path.

use std::collections::BTreeSet;

use collar_circuits::poseidon::{flex_permutation, PoseidonChip};
use collar_circuits::pow5::{
    columns, hash_witness, node_hash_witness, row_kind, ChipMutation, HashingCircuit, RowKind,
    ADVICE_COLUMNS, CELLS_PER_PERMUTATION, GATE_ABSORB, GATE_FINAL_ROUND, GATE_FULL_ROUND,
    GATE_PARTIAL_ROUNDS, ROWS_PER_PERMUTATION,
};
use collar_circuits::testing::Failure;
use collar_protocol::poseidon;
use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_base::gates::{GateChip, GateInstructions};
use halo2_base::halo2_proofs::dev::MockProver;
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr};
use halo2_base::halo2_proofs::plonk::{keygen_pk, keygen_vk, Assigned, Circuit, ConstraintSystem};
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_base::poseidon::hasher::{spec::OptimizedPoseidonSpec, PoseidonHasher};
use halo2_base::utils::testing::{check_proof_with_instances, gen_proof_with_instances};
use halo2_base::AssignedValue;
use halo2_base::QuantumCell::Constant;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const K: u32 = 11;

fn random_fr(rng: &mut ChaCha8Rng) -> Fr {
    let two64 = Fr::from(u64::MAX) + Fr::one();
    (0..4).fold(Fr::zero(), |acc, _| {
        acc * two64 + Fr::from(rng.gen::<u64>())
    })
}

fn random_inputs(seed: u64, lengths: impl IntoIterator<Item = usize>) -> Vec<Vec<Fr>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    lengths
        .into_iter()
        .map(|len| (0..len).map(|_| random_fr(&mut rng)).collect())
        .collect()
}

fn gate(name: &str) -> Failure {
    Failure::Gate(name.to_string())
}

/// A MockProver-stage hashing circuit with each of `hashes` hashed through the Pow5 hasher.
struct Built {
    circuit: HashingCircuit,
    inputs: Vec<Vec<AssignedValue<Fr>>>,
    outputs: Vec<AssignedValue<Fr>>,
}

fn build(hashes: &[Vec<Fr>], capacity: usize) -> Built {
    let mut circuit =
        HashingCircuit::new(BaseCircuitBuilder::new(false).use_k(K as usize), capacity);
    let hasher = circuit.hasher();
    let ctx = circuit.builder.main(0);
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for h in hashes {
        let cells = ctx.assign_witnesses(h.iter().copied());
        outputs.push(hasher.hash(ctx, &cells));
        inputs.push(cells);
    }
    Built {
        circuit,
        inputs,
        outputs,
    }
}

fn failures(mut circuit: HashingCircuit) -> BTreeSet<Failure> {
    circuit.calculate_params(Some(9));
    let prover = MockProver::run(K, &circuit, vec![]).expect("mock prover runs");
    match prover.verify() {
        Ok(()) => BTreeSet::new(),
        Err(errs) => errs.iter().map(Failure::classify).collect(),
    }
}

/// The failures of `built` with the chip cell at `(row, column)` overwritten by a value no
/// honest witness holds there.
fn chip_cell_failures(mut built: Built, row: usize, column: usize) -> BTreeSet<Failure> {
    let value = Fr::from(0xc011a7u64) + Fr::from(row as u64);
    built
        .circuit
        .mutate_chip_cell(ChipMutation { row, column, value });
    failures(built.circuit)
}

fn set(fs: impl IntoIterator<Item = Failure>) -> BTreeSet<Failure> {
    fs.into_iter().collect()
}

#[test]
fn chip_hash_equals_native_and_halo2_base_poseidon_on_random_inputs() {
    let hashes = random_inputs(7, 0..=7);
    let mut circuit = HashingCircuit::new(BaseCircuitBuilder::new(false).use_k(12), 24);
    let hasher = circuit.hasher();
    let gate = GateChip::<Fr>::default();
    let ctx = circuit.builder.main(0);
    let baseline = PoseidonChip::new(ctx, &gate);
    for h in &hashes {
        let cells = ctx.assign_witnesses(h.iter().copied());
        let ours = hasher.hash(ctx, &cells);
        let theirs = baseline.hash(ctx, &gate, &cells);
        assert_eq!(*ours.value(), poseidon::hash(h), "length {}", h.len());
        assert_eq!(ours.value(), theirs.value(), "length {}", h.len());
        // The proof itself says the two paths agree.
        ctx.constrain_equal(&ours, &theirs);
    }
    assert_eq!(hasher.permutations(), 20);
    circuit.calculate_params(Some(9));
    let prover = MockProver::run(12, &circuit, vec![]).expect("mock prover runs");
    prover.assert_satisfied();
}

#[test]
fn node_hash_equals_native_on_both_paths() {
    // Random pairs plus the edge values 0 and p - 1, through the chip's one-permutation node
    // hash and through the halo2-base path's flex-gate permutation, constrained equal.
    let mut pairs: Vec<[Fr; 2]> = random_inputs(17, [2; 6])
        .into_iter()
        .map(|v| [v[0], v[1]])
        .collect();
    pairs.push([Fr::zero(), Fr::zero()]);
    pairs.push([-Fr::one(), Fr::zero()]);
    let mut circuit = HashingCircuit::new(BaseCircuitBuilder::new(false).use_k(15), 8);
    let hasher = circuit.hasher();
    let gate = GateChip::<Fr>::default();
    let ctx = circuit.builder.main(0);
    let baseline = PoseidonChip::halo2_base(ctx, &gate);
    for [l, r] in &pairs {
        let cells = ctx.assign_witnesses([*l, *r]);
        let ours = hasher.hash2(ctx, cells[0], cells[1]);
        let theirs = baseline.hash2(ctx, &gate, cells[0], cells[1]);
        assert_eq!(*ours.value(), poseidon::hash2(*l, *r));
        assert_eq!(ours.value(), theirs.value());
        ctx.constrain_equal(&ours, &theirs);
        assert_eq!(
            node_hash_witness(*l, *r).output_value(),
            poseidon::hash2(*l, *r)
        );
    }
    assert_eq!(hasher.permutations(), pairs.len(), "one permutation a node");
    circuit.calculate_params(Some(9));
    let prover = MockProver::run(15, &circuit, vec![]).expect("mock prover runs");
    prover.assert_satisfied();
}

#[test]
fn flex_permutation_equals_native_permute() {
    let mut builder = BaseCircuitBuilder::<Fr>::new(false).use_k(13);
    let gate = GateChip::<Fr>::default();
    let ctx = builder.main(0);
    for state in random_inputs(29, [3; 4]) {
        let cells = ctx.assign_witnesses(state.iter().copied());
        let out = flex_permutation(ctx, &gate, [cells[0], cells[1], cells[2]]);
        let mut native = [state[0], state[1], state[2]];
        poseidon::permute(&mut native);
        assert_eq!(out.map(|c| *c.value()), native);
    }
    builder.calculate_params(Some(9));
    MockProver::run(13, &builder, vec![])
        .expect("mock prover runs")
        .assert_satisfied();
}

/// A sponge hash of two inputs between two node hashes: `[node, sponge (2 permutations), node]`
/// plus one unused capacity slot.
fn nodes_and_sponge() -> Built {
    let mut circuit = HashingCircuit::new(BaseCircuitBuilder::new(false).use_k(K as usize), 5);
    let hasher = circuit.hasher();
    let ctx = circuit.builder.main(0);
    let values = random_inputs(31, [2, 2, 2]);
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let cells = ctx.assign_witnesses(v.iter().copied());
        outputs.push(if i == 1 {
            hasher.hash(ctx, &cells)
        } else {
            hasher.hash2(ctx, cells[0], cells[1])
        });
        inputs.push(cells);
    }
    Built {
        circuit,
        inputs,
        outputs,
    }
}

#[test]
fn node_hash_rows_fail_their_gates_when_mutated() {
    let built = nodes_and_sponge();
    let layout: Vec<(usize, usize)> = built
        .circuit
        .layout()
        .iter()
        .map(|l| (l.first_row, l.permutations))
        .collect();
    let p = ROWS_PER_PERMUTATION;
    assert_eq!(layout, vec![(0, 1), (p, 2), (3 * p, 1)]);
    assert_eq!(failures(built.circuit), BTreeSet::new());
    let last_node = 3 * p;
    let cases: Vec<(&str, usize, usize, BTreeSet<Failure>)> = vec![
        // The node capacity 2·2^64 and the zero rate of its initial state are fixed by f3.
        ("node capacity", 0, 0, set([gate(GATE_ABSORB)])),
        (
            "node capacity, last node",
            last_node,
            0,
            set([gate(GATE_ABSORB)]),
        ),
        ("node initial rate", last_node, 2, set([gate(GATE_ABSORB)])),
        // A node hash absorbs both inputs with no padding: each is an input cell.
        (
            "node right input",
            last_node,
            columns::INPUT_1,
            set([gate(GATE_ABSORB), Failure::Permutation]),
        ),
        (
            "node full round",
            2,
            columns::SQUARES,
            set([gate(GATE_FULL_ROUND)]),
        ),
        (
            "node partial rounds",
            10,
            4,
            set([gate(GATE_PARTIAL_ROUNDS)]),
        ),
        // Its single permutation ends in the final round that outputs the hash.
        (
            "node output",
            p - 1,
            columns::OUTPUT,
            set([gate(GATE_FINAL_ROUND), Failure::Permutation]),
        ),
        (
            "node final square",
            p - 1,
            columns::SQUARES + 1,
            set([gate(GATE_FINAL_ROUND)]),
        ),
        // The sponge between them still starts from 2^64.
        ("sponge capacity", p, 0, set([gate(GATE_ABSORB)])),
    ];
    for (what, row, column, expected) in cases {
        assert_eq!(
            chip_cell_failures(nodes_and_sponge(), row, column),
            expected,
            "{what}: row {row} column {column}"
        );
    }
    // A node's capacity set to the sponge's 2^64 (a sponge's first state) is not accepted either.
    let mut built = nodes_and_sponge();
    built.circuit.mutate_chip_cell(ChipMutation {
        row: 0,
        column: 0,
        value: poseidon::initial_state()[0],
    });
    assert_eq!(failures(built.circuit), set([gate(GATE_ABSORB)]));
    // Broken links: a node input and a node output changed in the context.
    for (hash, input) in [(0, 0), (2, 1)] {
        let mut built = nodes_and_sponge();
        let cell = built.inputs[hash][input];
        let offset = cell.cell.expect("mock cells have locations").offset;
        built.circuit.builder.main(0).advice[offset] = Assigned::Trivial(cell.value() + Fr::one());
        assert_eq!(failures(built.circuit), set([Failure::Permutation]));
    }
    let mut built = nodes_and_sponge();
    let out = built.outputs[2];
    let offset = out.cell.expect("mock cells have locations").offset;
    built.circuit.builder.main(0).advice[offset] = Assigned::Trivial(out.value() + Fr::one());
    assert_eq!(failures(built.circuit), set([Failure::Permutation]));
}

#[test]
fn chip_and_halo2_base_share_rows() {
    // halo2-base's first advice column fills every usable row, and the chip region takes 30
    // permutations (810 rows) of the same 2^10 rows in its own columns.
    const SHARED_K: u32 = 10;
    let mut circuit =
        HashingCircuit::new(BaseCircuitBuilder::new(false).use_k(SHARED_K as usize), 30);
    let hasher = circuit.hasher();
    let gate = GateChip::<Fr>::default();
    let ctx = circuit.builder.main(0);
    let inputs = ctx.assign_witnesses(random_inputs(13, [4]).remove(0));
    let mut acc = hasher.hash(ctx, &inputs);
    while ctx.advice.len() < 1_500 {
        acc = gate.add(ctx, acc, Constant(Fr::one()));
    }
    let out = hasher.hash(ctx, &[acc]);
    let params = circuit.calculate_params(Some(9));
    assert_eq!(params.base.num_advice_per_phase, vec![2]);
    let usable = HashingCircuit::usable_rows(&params);
    assert!(
        circuit.chip_rows() + usable > 1 << SHARED_K,
        "rows are shared"
    );
    assert_eq!(hasher.permutations(), 3 + 1);
    assert_eq!(
        *out.value(),
        poseidon::hash(&[*acc.value()]),
        "chained through halo2-base gates"
    );
    MockProver::run(SHARED_K, &circuit, vec![])
        .expect("mock prover runs")
        .assert_satisfied();
}

#[test]
fn chip_permutations_equal_native_permute() {
    for (seed, h) in random_inputs(11, [0, 1, 2, 5, 7]).into_iter().enumerate() {
        let w = hash_witness(&h);
        let perms = poseidon::permutations_for(h.len());
        assert_eq!(w.rows(), perms * ROWS_PER_PERMUTATION);
        assert_eq!(w.output_value(), poseidon::hash(&h), "seed {seed}");
        // Row 0 of permutation p holds the state before it and the absorbed pair; row 0 of
        // permutation p + 1 holds the native permutation of their sum.
        let mut state = poseidon::initial_state();
        for p in 0..perms {
            let row = w.advice[p * ROWS_PER_PERMUTATION];
            assert_eq!(row[..3], state, "seed {seed} permutation {p}");
            state[1] += row[columns::INPUT_0];
            state[2] += row[columns::INPUT_1];
            poseidon::permute(&mut state);
            if p + 1 < perms {
                assert_eq!(w.advice[(p + 1) * ROWS_PER_PERMUTATION][..3], state);
            }
        }
        assert_eq!(state[1], w.output_value());
        assert_eq!(
            w.inputs.len(),
            h.len(),
            "every input has a cell in an absorb row"
        );
    }
}

#[test]
fn every_gate_has_degree_at_most_four() {
    let mut builder = BaseCircuitBuilder::<Fr>::new(false).use_k(K as usize);
    builder.main(0).load_witness(Fr::one());
    let mut circuit = HashingCircuit::new(builder, 1);
    let params = circuit.calculate_params(Some(9));
    let mut cs = ConstraintSystem::<Fr>::default();
    let _ = HashingCircuit::configure_with_params(&mut cs, params);
    let names: BTreeSet<&str> = cs.gates().iter().map(|g| g.name()).collect();
    for name in [
        GATE_ABSORB,
        GATE_FULL_ROUND,
        GATE_PARTIAL_ROUNDS,
        GATE_FINAL_ROUND,
    ] {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    for g in cs.gates() {
        for p in g.polynomials() {
            assert!(p.degree() <= 4, "{}: degree {}", g.name(), p.degree());
        }
    }
    assert_eq!(cs.degree(), 4, "the circuit keeps halo2-base's degree");
}

/// Hashes of lengths 3 (permutations: absorb x0,x1; absorb x2 and the padding 1) and 2
/// (absorb x0,x1; the padding-only permutation), plus two unused capacity slots.
fn two_hashes() -> Built {
    build(&random_inputs(3, [3, 2]), 6)
}

#[test]
fn honest_two_hash_circuit_is_satisfied_and_laid_out_as_documented() {
    let built = two_hashes();
    let layout = built.circuit.layout();
    assert_eq!(
        layout
            .iter()
            .map(|l| (l.first_row, l.permutations))
            .collect::<Vec<_>>(),
        vec![(0, 2), (2 * ROWS_PER_PERMUTATION, 2)]
    );
    assert_eq!(built.circuit.chip_rows(), 6 * ROWS_PER_PERMUTATION);
    assert_eq!(failures(built.circuit), BTreeSet::new());
}

#[test]
fn mutating_each_gates_cells_fails_exactly_that_gate() {
    let last = ROWS_PER_PERMUTATION - 1;
    let second_hash = 2 * ROWS_PER_PERMUTATION;
    let unused_slot = 4 * ROWS_PER_PERMUTATION;
    assert_eq!(row_kind(0, false), RowKind::Absorb);
    assert_eq!(row_kind(1, false), RowKind::FullRound);
    assert_eq!(row_kind(4, false), RowKind::PartialRounds);
    assert_eq!(row_kind(22, false), RowKind::PartialRounds);
    assert_eq!(row_kind(23, false), RowKind::FullRound);
    assert_eq!(row_kind(last, false), RowKind::FullRound);
    assert_eq!(row_kind(last, true), RowKind::FinalRound);
    let sq = columns::SQUARES;
    let cases: Vec<(&str, usize, usize, BTreeSet<Failure>)> = vec![
        // Absorb rows: a square, the initial state, a padding cell (y = 1 after one input;
        // x = 1 and y = 0 on the padding-only permutation), and an unused capacity slot.
        ("absorb square", 0, sq + 1, set([gate(GATE_ABSORB)])),
        ("initial capacity", 0, 0, set([gate(GATE_ABSORB)])),
        ("initial rate", second_hash, 2, set([gate(GATE_ABSORB)])),
        (
            "padding y = 1",
            ROWS_PER_PERMUTATION,
            columns::INPUT_1,
            set([gate(GATE_ABSORB)]),
        ),
        (
            "padding x = 1",
            second_hash + ROWS_PER_PERMUTATION,
            columns::INPUT_0,
            set([gate(GATE_ABSORB)]),
        ),
        (
            "padding y = 0",
            second_hash + ROWS_PER_PERMUTATION,
            columns::INPUT_1,
            set([gate(GATE_ABSORB)]),
        ),
        ("unused slot", unused_slot, sq, set([gate(GATE_ABSORB)])),
        // Full rounds before and after the partial rounds, in the first permutation (its last
        // round feeds the next permutation) and in the second.
        ("full round 2", 1, sq, set([gate(GATE_FULL_ROUND)])),
        ("full round 4", 3, sq + 2, set([gate(GATE_FULL_ROUND)])),
        ("full round 5", 23, sq + 1, set([gate(GATE_FULL_ROUND)])),
        ("full round 8", last, sq, set([gate(GATE_FULL_ROUND)])),
        (
            "full round 3 of permutation 2",
            ROWS_PER_PERMUTATION + 2,
            sq,
            set([gate(GATE_FULL_ROUND)]),
        ),
        // A full round's output state is read by the next row's gate too.
        (
            "state after full round 2",
            2,
            1,
            set([gate(GATE_FULL_ROUND)]),
        ),
        (
            "state after the partial rounds",
            23,
            0,
            set([gate(GATE_PARTIAL_ROUNDS), gate(GATE_FULL_ROUND)]),
        ),
        // Partial rounds: each of a, b, c, d, e, in the first and last partial row.
        ("partial a", 4, 3, set([gate(GATE_PARTIAL_ROUNDS)])),
        ("partial b", 4, 4, set([gate(GATE_PARTIAL_ROUNDS)])),
        ("partial c", 12, 5, set([gate(GATE_PARTIAL_ROUNDS)])),
        ("partial d", 22, 6, set([gate(GATE_PARTIAL_ROUNDS)])),
        ("partial e", 22, 7, set([gate(GATE_PARTIAL_ROUNDS)])),
        ("partial state", 13, 2, set([gate(GATE_PARTIAL_ROUNDS)])),
        // The final round of each hash: a square, and the output (also copy-constrained).
        (
            "final square",
            ROWS_PER_PERMUTATION + last,
            sq + 2,
            set([gate(GATE_FINAL_ROUND)]),
        ),
        (
            "final output",
            second_hash + ROWS_PER_PERMUTATION + last,
            columns::OUTPUT,
            set([gate(GATE_FINAL_ROUND), Failure::Permutation]),
        ),
        // An input cell of the chip: its absorb gate and its copy constraint.
        (
            "chip input",
            0,
            columns::INPUT_0,
            set([gate(GATE_ABSORB), Failure::Permutation]),
        ),
    ];
    let mut covered = BTreeSet::new();
    for (what, row, column, expected) in cases {
        let got = chip_cell_failures(two_hashes(), row, column);
        assert_eq!(got, expected, "{what}: row {row} column {column}");
        covered.extend(got);
    }
    for name in [
        GATE_ABSORB,
        GATE_FULL_ROUND,
        GATE_PARTIAL_ROUNDS,
        GATE_FINAL_ROUND,
    ] {
        assert!(covered.contains(&gate(name)), "{name} never failed");
    }
}

#[test]
fn a_broken_input_link_fails_the_copy_constraints() {
    // The chip hashes the recorded input values; changing the virtual input cell afterwards
    // leaves every gate satisfied and breaks only the copy constraint to the chip.
    for (hash, input) in [(0, 0), (0, 2), (1, 1)] {
        let mut built = two_hashes();
        let cell = built.inputs[hash][input];
        let offset = cell.cell.expect("mock cells have locations").offset;
        built.circuit.builder.main(0).advice[offset] = Assigned::Trivial(cell.value() + Fr::one());
        assert_eq!(
            failures(built.circuit),
            set([Failure::Permutation]),
            "hash {hash} input {input}"
        );
    }
}

#[test]
fn a_forged_output_is_rejected() {
    for hash in 0..2 {
        let mut built = two_hashes();
        let out = built.outputs[hash];
        let offset = out.cell.expect("mock cells have locations").offset;
        built.circuit.builder.main(0).advice[offset] = Assigned::Trivial(out.value() + Fr::one());
        assert_eq!(
            failures(built.circuit),
            set([Failure::Permutation]),
            "hash {hash}"
        );
    }
}

#[test]
fn capacity_overflow_is_refused() {
    let built = build(&random_inputs(5, [4]), 2);
    let mut circuit = built.circuit;
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        circuit.calculate_params(Some(9));
    }));
    assert!(err.is_err(), "3 permutations do not fit a capacity of 2");
}

#[test]
fn real_proof_verifies_and_tampered_public_inputs_are_rejected() {
    const PROOF_K: u32 = 10;
    const CAPACITY: usize = 8;
    let hashes = random_inputs(21, [0, 1, 2, 5]);
    let build = |mut circuit: HashingCircuit| {
        let hasher = circuit.hasher();
        let ctx = circuit.builder.main(0);
        let mut public = Vec::new();
        for h in &hashes {
            let cells = ctx.assign_witnesses(h.iter().copied());
            public.push(hasher.hash(ctx, &cells));
        }
        circuit.builder.assigned_instances[0] = public;
        circuit
    };
    let expected: Vec<Fr> = hashes.iter().map(|h| poseidon::hash(h)).collect();

    // Development SRS: insecure, for tests only.
    let srs = ParamsKZG::<Bn256>::setup(PROOF_K, rand_chacha::ChaCha20Rng::seed_from_u64(42));
    let mut keygen = build(HashingCircuit::new(
        BaseCircuitBuilder::from_stage(CircuitBuilderStage::Keygen)
            .use_k(PROOF_K as usize)
            .use_instance_columns(1),
        CAPACITY,
    ));
    let params = keygen.calculate_params(Some(9));
    let vk = keygen_vk(&srs, &keygen).expect("keygen_vk");
    assert_eq!(vk.cs().degree(), 4, "the chip keeps the circuit's degree");
    let pk = keygen_pk(&srs, vk, &keygen).expect("keygen_pk");
    let breaks = keygen.builder.break_points();

    let prover = build(HashingCircuit::prover(params, breaks));
    let instances: Vec<Fr> = prover.builder.assigned_instances[0]
        .iter()
        .map(|c| *c.value())
        .collect();
    assert_eq!(instances, expected, "public outputs are the native hashes");
    let proof = gen_proof_with_instances(&srs, &pk, prover, &[&expected]);
    check_proof_with_instances(&srs, pk.get_vk(), &proof, &[&expected], true);
    for i in 0..expected.len() {
        let mut tampered = expected.clone();
        tampered[i] += Fr::one();
        check_proof_with_instances(&srs, pk.get_vk(), &proof, &[&tampered], false);
    }
}

#[test]
fn advice_cells_per_permutation_against_halo2_base_poseidon() {
    let gate = GateChip::<Fr>::default();
    let mut builder = BaseCircuitBuilder::<Fr>::new(false).use_k(K as usize);
    let ctx = builder.main(0);
    let spec = OptimizedPoseidonSpec::<Fr, { poseidon::T }, { poseidon::RATE }>::new::<
        { poseidon::R_F },
        { poseidon::R_P },
        0,
    >();
    let mut hasher = PoseidonHasher::<Fr, { poseidon::T }, { poseidon::RATE }>::new(spec);
    hasher.initialize_consts(ctx, &gate);
    let mut baseline = Vec::new();
    for len in [0usize, 1, 2, 4] {
        let inputs = ctx.assign_witnesses((0..len).map(|i| Fr::from(i as u64 + 1)));
        let before = ctx.advice.len();
        hasher.hash_fix_len_array(ctx, &gate, &inputs);
        let cells = ctx.advice.len() - before;
        baseline.push((len, poseidon::permutations_for(len), cells));
    }
    // The node hash on the halo2-base path: one permutation laid out by `flex_permutation`.
    let (l, r) = (
        ctx.load_witness(Fr::from(3u64)),
        ctx.load_witness(Fr::from(4u64)),
    );
    let halo2_base = PoseidonChip::halo2_base(ctx, &gate);
    let before = ctx.advice.len();
    halo2_base.hash2(ctx, &gate, l, r);
    let node_cells = ctx.advice.len() - before;
    let per_permutation = baseline[2].2 / baseline[2].1;
    println!(
        "node hash: {node_cells} advice cells on halo2-base's gate (one permutation, {:.2}x \
         PoseidonHasher's {per_permutation} a permutation); Pow5: {} cells",
        node_cells as f64 / per_permutation as f64,
        CELLS_PER_PERMUTATION + 1
    );
    assert!(
        node_cells > per_permutation * 19 / 20 && node_cells < per_permutation * 21 / 20,
        "within 5% of halo2-base's own permutation"
    );
    // The Pow5 chip: 27 rows of 8 advice columns per permutation, plus the output cell the
    // hasher loads in the context, once per hash.
    let built = build(&[vec![Fr::one(), Fr::from(2u64)]], 2);
    assert_eq!(built.circuit.chip_advice_cells(), 2 * CELLS_PER_PERMUTATION);
    assert_eq!(CELLS_PER_PERMUTATION, ROWS_PER_PERMUTATION * ADVICE_COLUMNS);
    assert_eq!(CELLS_PER_PERMUTATION, 216);
    println!("Pow5 chip: {CELLS_PER_PERMUTATION} advice cells per permutation ({ROWS_PER_PERMUTATION} rows x {ADVICE_COLUMNS} columns) + 1 context cell per hash");
    for (len, perms, cells) in &baseline {
        println!(
            "halo2-base PoseidonHasher::hash_fix_len_array, {len} inputs: {cells} advice cells, \
             {perms} permutations, {} per permutation; Pow5: {} cells ({:.1}x fewer)",
            cells / perms,
            perms * CELLS_PER_PERMUTATION + 1,
            *cells as f64 / (perms * CELLS_PER_PERMUTATION + 1) as f64
        );
        assert!(
            cells / perms > 10 * CELLS_PER_PERMUTATION,
            "the chip is over 10x cheaper per permutation"
        );
    }
}
