//! A real KZG proof of a small deposit batch (development SRS): it verifies against the native
//! public inputs, and a flipped proof byte or any changed public input is rejected. The layout,
//! constraint degree and verifying key of that shape are pinned.

use collar_circuits::batch::{keygen_circuit, prover_circuit, BatchWitness};
use collar_circuits::poseidon::Hashing;
use collar_circuits::pow5::HashingCircuitParams;
use collar_protocol::batch;
use collar_protocol::testkit::signer_key;
use collar_protocol::testkit::Harness;
use collar_protocol::ProtocolParams;
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_base::halo2_proofs::plonk::{keygen_pk, keygen_vk, VerifyingKey};
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_base::utils::testing::{check_proof_with_instances, gen_proof_with_instances};
use rand::SeedableRng;

const K: u32 = 17;
const LOOKUP_BITS: usize = 16;
/// Constraint degree of the batch circuit (halo2-base's gate and lookup).
const PINNED_DEGREE: usize = 4;
/// `transcript_repr` of the halo2-base-hashing verifying key for this test's shape (small
/// params, 2 slots, dev SRS seed 42).
const PINNED_VK: &str = "0x09a8ad6eafea81a7c6bfb6ccf2e33c1e44cdba340685013e2ddf4aa7d289d849";
/// Layout of the same shape hashing with the Pow5 chip: k, flex-gate advice columns, fixed
/// columns, lookup advice columns, Pow5 permutations, multiplications (none: Schnorr on the
/// basic gate).
const PINNED_POW5_LAYOUT: Layout = (17, &[3], 1, &[1, 0, 0], 626, 0);
/// Its constraint degree: the chip's gates have degree 4, and with more than one flex-gate
/// advice column halo2-base range-checks through dedicated lookup columns (`lookup wo
/// selector`), of degree 4 too (a single column would use its selector lookup, of degree 5).
const PINNED_POW5_DEGREE: usize = 4;
/// `transcript_repr` of its verifying key.
const PINNED_POW5_VK: &str = "0x09cdbe11aa4bff660f4c3534d6df08913f819034bec4675e74d57dc9fc672c99";
/// Layout of the same shape with the Pow5 chip and Schnorr's multiplications on the `msm` chip
/// (`Hashing::Pow5Msm`): 12 multiplications (two lanes a slot, eight in the tick lane), and so
/// few cells left in halo2-base's columns that one column holds them.
const PINNED_POW5_MSM_LAYOUT: Layout = (17, &[1], 1, &[1, 0, 0], 626, 12);
/// Its constraint degree: the chips' gates have degree 4, but with its single flex-gate advice
/// column halo2-base range-checks through its selector lookup, of degree 5. Degree 5 keeps the
/// extended domain at `4·2^k`, as 4 does.
const PINNED_POW5_MSM_DEGREE: usize = 5;
/// `transcript_repr` of its verifying key.
const PINNED_POW5_MSM_VK: &str =
    "0x120389e0093ba31f3cb56a95823d17ad9a654fab0ca8b9d175ff405bd1558266";

/// k, flex-gate advice columns, fixed columns, lookup advice columns, Pow5 permutations,
/// multiplications.
type Layout = (
    usize,
    &'static [usize],
    usize,
    &'static [usize],
    usize,
    usize,
);

/// The pinned shape of a circuit: (k, flex-gate advice columns, fixed columns, lookup advice
/// columns, Pow5 permutations, multiplications), its constraint degree and its verifying key.
type Pin<'a> = (
    (usize, &'a [usize], usize, &'a [usize], usize, usize),
    usize,
    String,
);

fn pin<'a>(config: &'a HashingCircuitParams, vk: &VerifyingKey<G1Affine>) -> Pin<'a> {
    (
        (
            config.base.k,
            config.base.num_advice_per_phase.as_slice(),
            config.base.num_fixed,
            config.base.num_lookup_advice_per_phase.as_slice(),
            config.capacity,
            config.msms,
        ),
        vk.cs().degree(),
        format!("{:?}", vk.transcript_repr()),
    )
}

/// A deposit batch of the small shape in 2 slots: its witness and native public inputs.
fn deposit_batch() -> (BatchWitness, Vec<Fr>) {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let before = h.state.clone();
    let tx = h.deposit(5, 1_234).tx;
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 1, &[tx]).unwrap();
    let mut w = BatchWitness::new(&before, &exec, 2).unwrap();
    w.resign_with(signer_key);
    (w, exec.public_inputs.to_fields().to_vec())
}

/// The baseline path (halo2-base's Poseidon, what `collar bench` compares against) is pinned
/// too: its layout is what the circuit had before the Pow5 chip.
#[test]
fn halo2_base_hashing_layout_and_key_are_pinned() {
    let (w, _) = deposit_batch();
    let srs = ParamsKZG::<Bn256>::setup(K, rand_chacha::ChaCha20Rng::seed_from_u64(42));
    let mut keygen = keygen_circuit(&w, K, LOOKUP_BITS, Hashing::HaloBase);
    let config = keygen.calculate_params(Some(9));
    let vk = keygen_vk(&srs, &keygen).unwrap();
    assert_eq!(
        pin(&config, &vk),
        (
            (17, &[14][..], 1, &[1, 0, 0][..], 0, 0),
            PINNED_DEGREE,
            PINNED_VK.to_string()
        ),
        "the halo2-base circuit's layout, degree or verifying key changed"
    );
}

#[test]
fn real_proof_verifies_and_tampering_is_rejected() {
    real_proof(
        Hashing::Pow5,
        (PINNED_POW5_LAYOUT, PINNED_POW5_DEGREE, PINNED_POW5_VK),
    );
}

#[test]
fn real_proof_on_the_msm_chip_verifies_and_tampering_is_rejected() {
    real_proof(
        Hashing::Pow5Msm,
        (
            PINNED_POW5_MSM_LAYOUT,
            PINNED_POW5_MSM_DEGREE,
            PINNED_POW5_MSM_VK,
        ),
    );
}

/// Keygen (checked against `pinned`), a real proof of the deposit batch that verifies, and a
/// flipped proof byte and each tampered public input rejected.
fn real_proof(hashing: Hashing, pinned: (Layout, usize, &str)) {
    let (w, expected) = deposit_batch();

    // Development SRS: insecure, for tests only.
    let srs = ParamsKZG::<Bn256>::setup(K, rand_chacha::ChaCha20Rng::seed_from_u64(42));
    let mut keygen = keygen_circuit(&w, K, LOOKUP_BITS, hashing);
    let config = keygen.calculate_params(Some(9));
    let vk = keygen_vk(&srs, &keygen).unwrap();
    // Pinning (docs/CIRCUIT.md): an accidental change to the circuit shape changes the layout,
    // the constraint degree or the verifying key, and this test says so. Update the pins only
    // for an intended change, and say why in the commit.
    assert_eq!(
        pin(&config, &vk),
        (pinned.0, pinned.1, pinned.2.to_string()),
        "{hashing}: circuit layout, constraint degree or verifying key changed"
    );
    let pk = keygen_pk(&srs, vk, &keygen).unwrap();
    let breaks = keygen.builder.break_points();

    let prover = prover_circuit(&w, config, breaks);
    let instances = prover.builder.assigned_instances[0]
        .iter()
        .map(|c| *c.value())
        .collect::<Vec<_>>();
    assert_eq!(
        instances, expected,
        "the circuit's public inputs are the native ones"
    );
    let proof = gen_proof_with_instances(&srs, &pk, prover, &[&expected]);

    check_proof_with_instances(&srs, pk.get_vk(), &proof, &[&expected], true);
    let mut bad = proof.clone();
    bad[proof.len() / 2] ^= 1;
    check_proof_with_instances(&srs, pk.get_vk(), &bad, &[&expected], false);
    for i in 0..expected.len() {
        let mut tampered = expected.clone();
        tampered[i] += Fr::one();
        check_proof_with_instances(&srs, pk.get_vk(), &proof, &[&tampered], false);
    }
}
