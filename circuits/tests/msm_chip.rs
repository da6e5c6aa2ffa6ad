//! The Grumpkin double-and-add chip (`msm`): its output is the native group value
//! `(3·2^254 − 1)·A + s·G − e·PK` and its running sums are the scalars' integers, a valid
//! signature's output is `R` plus that offset, each named gate fails (with exactly the expected
//! others) when one of its cells is mutated, every single-cell mutation of a gated cell is rejected,
//! and a real KZG proof verifies and refuses tampered public inputs.

use std::collections::BTreeSet;

use collar_circuits::msm::{
    self, columns, msm_witness, result_offset, scalar_bits, AssignedMsm, MsmChip, MsmConfig,
    MsmError, MsmWitness, GATE_BITS, GATE_CARRY, GATE_DOUBLE_ADD, GATE_READ, GATE_START,
    GATE_TABLE_ENTRY, ROWS, SCALAR_BITS,
};
use collar_circuits::schnorr::offset_point;
use collar_circuits::testing::Failure;
use collar_protocol::signature::{challenge, Scalar};
use collar_protocol::SecretKey;
use halo2_base::halo2_proofs::circuit::{Layouter, SimpleFloorPlanner};
use halo2_base::halo2_proofs::dev::MockProver;
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr};
use halo2_base::halo2_proofs::halo2curves::ff::{Field, PrimeField};
use halo2_base::halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_base::halo2_proofs::halo2curves::group::Curve;
use halo2_base::halo2_proofs::halo2curves::grumpkin::{G1Affine, G1};
use halo2_base::halo2_proofs::plonk::{
    keygen_pk, keygen_vk, Circuit, Column, ConstraintSystem, Error, Instance,
};
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_base::utils::testing::{check_proof_with_instances, gen_proof_with_instances};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const K: u32 = 10;

/// One multiplication, its [`AssignedMsm`] cells exposed as public inputs in the order
/// `table (2), result (2), e (2), s (2)`, with optional cell overwrites.
#[derive(Clone, Debug)]
struct MsmCircuit {
    witness: MsmWitness,
    mutations: Vec<(usize, usize, Fr)>,
}

impl Circuit<Fr> for MsmCircuit {
    type Config = (MsmConfig, Column<Instance>);
    type FloorPlanner = SimpleFloorPlanner;
    type Params = ();

    fn without_witnesses(&self) -> Self {
        self.clone()
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> Self::Config {
        let config = MsmChip::configure_new_columns(meta);
        let instance = meta.instance_column();
        meta.enable_equality(instance);
        (config, instance)
    }

    fn synthesize(
        &self,
        (config, instance): Self::Config,
        mut layouter: impl Layouter<Fr>,
    ) -> Result<(), Error> {
        use collar_circuits::msm::MsmInstructions;
        let chip = MsmChip::construct(config);
        let mut witness = self.witness.clone();
        for &(row, col, v) in &self.mutations {
            witness.advice[row][col] = v;
        }
        let assigned: AssignedMsm = layouter.assign_region(
            || "msm",
            |mut region| Ok(chip.assign(&mut region, 0, &witness)),
        )?;
        let public = assigned
            .table
            .iter()
            .chain(&assigned.result)
            .chain(&assigned.e)
            .chain(&assigned.s);
        for (i, cell) in public.enumerate() {
            layouter.constrain_instance(*cell, instance, i);
        }
        Ok(())
    }
}

fn xy(p: &G1Affine) -> [Fr; 2] {
    [p.x, p.y]
}

/// A scalar's integer (from its bits) reduced into `Fr`, and its high half (bits 128 and up).
fn halves(bits: &[bool; SCALAR_BITS]) -> [Fr; 2] {
    let int = |bits: &[bool]| {
        bits.iter()
            .rev()
            .fold(Fr::ZERO, |acc, b| acc.double() + Fr::from(u64::from(*b)))
    };
    [int(&bits[128..]), int(bits)]
}

/// A random multiplication: key, `e` (an `Fr`) and `s` (a `Scalar`), as the chip takes them.
struct Case {
    pk: G1Affine,
    e: [bool; SCALAR_BITS],
    s: [bool; SCALAR_BITS],
    /// `(3·2^254 − 1)·A + s·G − e·PK`, by the group law.
    expected: G1Affine,
}

fn random_case(rng: &mut ChaCha8Rng) -> Case {
    let sk = Scalar::random(&mut *rng);
    let pk = (G1::generator() * sk).to_affine();
    let e = Fr::random(&mut *rng);
    let s = Scalar::random(&mut *rng);
    let e_scalar = Scalar::from_repr(e.to_repr()).expect("p < q");
    let expected =
        (G1::from(result_offset()) + G1::generator() * s - G1::from(pk) * e_scalar).to_affine();
    Case {
        pk,
        e: scalar_bits(&e.to_repr()).expect("e < p < 2^254"),
        s: scalar_bits(&s.to_repr()).expect("s < q < 2^254"),
        expected,
    }
}

fn public_inputs(case: &Case) -> Vec<Fr> {
    let a = offset_point();
    let t10 = (G1::from(a) - G1::from(case.pk)).to_affine();
    [
        xy(&t10),
        xy(&case.expected),
        halves(&case.e),
        halves(&case.s),
    ]
    .concat()
}

/// The honest witness and public inputs of the random case of `seed`.
fn honest(seed: u64) -> (MsmWitness, Vec<Fr>) {
    let case = random_case(&mut ChaCha8Rng::seed_from_u64(seed));
    let witness = msm_witness(&case.pk, &case.e, &case.s).expect("honest witness");
    (witness, public_inputs(&case))
}

fn failures(circuit: &MsmCircuit, public: &[Fr]) -> BTreeSet<Failure> {
    let prover = MockProver::run(K, circuit, vec![public.to_vec()]).expect("mock prover runs");
    match prover.verify() {
        Ok(()) => BTreeSet::new(),
        Err(errors) => errors.iter().map(Failure::classify).collect(),
    }
}

fn gates(names: &[&str]) -> BTreeSet<Failure> {
    names.iter().map(|n| Failure::Gate(n.to_string())).collect()
}

#[test]
fn output_is_the_group_value_and_running_sums_are_the_scalars() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..4 {
        let case = random_case(&mut rng);
        let witness = msm_witness(&case.pk, &case.e, &case.s).expect("honest witness");
        assert_eq!(witness.advice.len(), ROWS);
        assert_eq!(witness.result_point(), Some(case.expected));
        let public = public_inputs(&case);
        let circuit = MsmCircuit {
            witness,
            mutations: vec![],
        };
        assert_eq!(failures(&circuit, &public), BTreeSet::new());
        // The same witness against another claimed output, or other scalars, fails only the
        // copy to the instance.
        for i in 2..8 {
            let mut forged = public.clone();
            forged[i] += Fr::ONE;
            assert_eq!(
                failures(&circuit, &forged),
                BTreeSet::from([Failure::Permutation]),
                "public input {i} tampered"
            );
        }
    }
}

#[test]
fn a_valid_signature_gives_r_plus_the_offset_and_a_forged_one_does_not() {
    let sk = SecretKey::from_seed(&[9u8; 32]).expect("nonzero key");
    let pk = sk.public_key();
    let m = Fr::from(424_242u64);
    let sig = sk.sign(m);
    let e = challenge(sig.rx, sig.ry, &pk, m);
    let mut s_le = sig.s;
    s_le.reverse();
    let pk_point = pk.to_affine().expect("on the curve");
    let r = sig.r_affine().expect("on the curve");
    let target = (G1::from(r) + G1::from(result_offset())).to_affine();

    let e_bits = scalar_bits(&e.to_repr()).expect("e < 2^254");
    let s_bits = scalar_bits(&s_le).expect("s < 2^254");
    let witness = msm_witness(&pk_point, &e_bits, &s_bits).expect("honest witness");
    assert_eq!(witness.result_point(), Some(target), "s·G = R + e·PK");

    // Another message's challenge does not reach R.
    let other = challenge(sig.rx, sig.ry, &pk, m + Fr::ONE);
    let other_bits = scalar_bits(&other.to_repr()).expect("e < 2^254");
    let forged = msm_witness(&pk_point, &other_bits, &s_bits).expect("honest witness");
    assert_ne!(forged.result_point(), Some(target));
}

#[test]
fn scalars_beyond_254_bits_and_the_identity_key_are_refused() {
    let mut too_large = [0u8; 32];
    too_large[31] = 0x40;
    assert_eq!(scalar_bits(&too_large), Err(MsmError::ScalarTooLarge));
    too_large[31] = 0x3f;
    assert!(scalar_bits(&too_large).is_ok());
    let bits = [false; SCALAR_BITS];
    assert_eq!(
        msm_witness(&G1Affine::identity(), &bits, &bits),
        Err(MsmError::IdentityKey)
    );
}

/// Row a and row b of step `j`.
fn row_a(j: usize) -> usize {
    2 * j
}
fn row_b(j: usize) -> usize {
    2 * j + 1
}

#[test]
fn each_gate_fails_when_its_cells_are_mutated() {
    let (witness, public) = honest(11);
    let value = |row: usize, col: usize| witness.advice[row][col];
    // A step whose e-bit is 0 (its variable table entries have coefficient 0 in the read).
    let zero_b = (1..SCALAR_BITS - 1)
        .find(|&j| value(row_a(j), columns::B) == Fr::ZERO)
        .expect("a random scalar has a zero bit");
    // (what, row, column, value written, the gates that must fail); most cases add one.
    let plus_one = |what, row, col, failing: &[&str]| {
        (what, row, col, value(row, col) + Fr::ONE, gates(failing))
    };
    let cases: Vec<(&str, usize, usize, Fr, BTreeSet<Failure>)> = vec![
        plus_one(
            "start x",
            row_a(0),
            columns::X,
            &[GATE_START, GATE_DOUBLE_ADD],
        ),
        (
            "start z_e",
            row_b(0),
            columns::Z_E,
            Fr::ONE,
            gates(&[GATE_START, GATE_BITS]),
        ),
        (
            "b not a bit",
            row_a(5),
            columns::B,
            Fr::from(2),
            gates(&[GATE_BITS, GATE_READ]),
        ),
        (
            "c not a bit",
            row_a(5),
            columns::C,
            Fr::from(2),
            gates(&[GATE_BITS, GATE_READ]),
        ),
        plus_one("running sum of e", row_b(20), columns::Z_E, &[GATE_BITS]),
        plus_one("running sum of s", row_b(20), columns::Z_S, &[GATE_BITS]),
        plus_one(
            "table point x",
            row_a(9),
            columns::X_T,
            &[GATE_READ, GATE_DOUBLE_ADD],
        ),
        plus_one(
            "table point y",
            row_a(9),
            columns::Y_T,
            &[GATE_READ, GATE_DOUBLE_ADD],
        ),
        plus_one(
            "first slope",
            row_a(30),
            columns::LAMBDA1,
            &[GATE_DOUBLE_ADD],
        ),
        plus_one(
            "second slope",
            row_a(30),
            columns::LAMBDA2,
            &[GATE_DOUBLE_ADD],
        ),
        plus_one("inverse", row_b(30), columns::INV, &[GATE_DOUBLE_ADD]),
        plus_one("accumulator y", row_a(100), columns::Y, &[GATE_DOUBLE_ADD]),
        plus_one(
            "carried table entry",
            row_b(zero_b),
            columns::TABLE[2],
            &[GATE_CARRY],
        ),
        plus_one(
            "second table entry",
            row_b(SCALAR_BITS),
            columns::TABLE[3],
            &[GATE_CARRY, GATE_TABLE_ENTRY],
        ),
        plus_one(
            "table entry slope",
            row_a(SCALAR_BITS),
            columns::LAMBDA1,
            &[GATE_TABLE_ENTRY],
        ),
        plus_one(
            "table entry inverse",
            row_b(SCALAR_BITS),
            columns::INV,
            &[GATE_TABLE_ENTRY],
        ),
        {
            // The input is also the public input here.
            let (what, row, col, v, mut failing) = plus_one(
                "input row",
                ROWS - 1,
                columns::INPUT[0],
                &[GATE_TABLE_ENTRY],
            );
            failing.insert(Failure::Permutation);
            (what, row, col, v, failing)
        },
    ];
    for (what, row, col, v, expected) in cases {
        assert_ne!(
            witness.advice[row][col], v,
            "{what}: the mutation changes the cell"
        );
        let circuit = MsmCircuit {
            witness: witness.clone(),
            mutations: vec![(row, col, v)],
        };
        assert_eq!(failures(&circuit, &public), expected, "{what}");
    }
}

#[test]
fn every_single_cell_mutation_is_rejected() {
    let (witness, public) = honest(5);
    let cells = msm::gated_cells();
    assert_eq!(cells.len(), SCALAR_BITS * 15 + 12);
    let mut accepted = Vec::new();
    let mut runs = 0;
    for &(row, col) in &cells {
        let circuit = MsmCircuit {
            mutations: vec![(row, col, witness.advice[row][col] + Fr::ONE)],
            witness: witness.clone(),
        };
        runs += 1;
        if failures(&circuit, &public).is_empty() {
            accepted.push((row, col));
        }
    }
    println!(
        "msm mutation sweep: {runs} runs, {} accepted",
        accepted.len()
    );
    assert_eq!(runs, cells.len());
    assert_eq!(accepted, vec![], "mutations accepted");
}

#[test]
fn real_proof_verifies_and_refuses_tampered_public_inputs() {
    let (witness, public) = honest(3);
    let circuit = MsmCircuit {
        witness,
        mutations: vec![],
    };
    // Development SRS: insecure, for tests only.
    let srs = ParamsKZG::<Bn256>::setup(K, rand_chacha::ChaCha20Rng::seed_from_u64(42));
    let vk = keygen_vk(&srs, &circuit).expect("keygen_vk");
    assert_eq!(vk.cs().degree(), 4, "every msm gate has degree 4 or less");
    let pk = keygen_pk(&srs, vk, &circuit).expect("keygen_pk");
    let proof = gen_proof_with_instances(&srs, &pk, circuit, &[&public]);
    check_proof_with_instances(&srs, pk.get_vk(), &proof, &[&public], true);
    for i in [0, 3, 5, 7] {
        let mut tampered = public.clone();
        tampered[i] += Fr::ONE;
        check_proof_with_instances(&srs, pk.get_vk(), &proof, &[&tampered], false);
    }
}
