//! A real KZG proof of a small deposit batch (development SRS): it verifies against the native
//! public inputs, and a flipped proof byte or any changed public input is rejected. The layout,
//! constraint degree and verifying key of that shape are pinned.

use collar_circuits::batch::{build_batch, BatchWitness};
use collar_protocol::batch;
use collar_protocol::testkit::Harness;
use collar_protocol::ProtocolParams;
use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr};
use halo2_base::halo2_proofs::plonk::{keygen_pk, keygen_vk};
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_base::utils::testing::{check_proof_with_instances, gen_proof_with_instances};
use rand::SeedableRng;

const K: u32 = 17;
const LOOKUP_BITS: usize = 16;
/// Constraint degree of the batch circuit (halo2-base's gate and lookup).
const PINNED_DEGREE: usize = 4;
/// `transcript_repr` of the verifying key for this test's shape (small params, 2 slots, dev SRS
/// seed 42).
const PINNED_VK: &str = "0x207680858af6ab6461ad25f31f1b9104cd11e4f69fe8d04720d0b19a1bcad1db";

#[test]
fn real_proof_verifies_and_tampering_is_rejected() {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let before = h.state.clone();
    let tx = h.deposit(5, 1_234).tx;
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 1, &[tx]).unwrap();
    let w = BatchWitness::new(&before, &exec, 2).unwrap();
    let expected = exec.public_inputs.to_fields().to_vec();

    let build = |stage: CircuitBuilderStage, params: Option<(_, _)>| {
        let mut b = match params {
            None => BaseCircuitBuilder::<Fr>::from_stage(stage)
                .use_k(K as usize)
                .use_lookup_bits(LOOKUP_BITS),
            Some((config, breaks)) => BaseCircuitBuilder::prover(config, breaks),
        }
        .use_instance_columns(1);
        let range = b.range_chip();
        let public = build_batch(b.main(0), &range, &w);
        b.assigned_instances[0] = public;
        b
    };

    // Development SRS: insecure, for tests only.
    let srs = ParamsKZG::<Bn256>::setup(K, rand_chacha::ChaCha20Rng::seed_from_u64(42));
    let mut keygen = build(CircuitBuilderStage::Keygen, None);
    let config = keygen.calculate_params(Some(9));
    let vk = keygen_vk(&srs, &keygen).unwrap();
    // Pinning (docs/CIRCUIT.md): an accidental change to the circuit shape changes the layout,
    // the constraint degree or the verifying key, and this test says so. Update the pins only
    // for an intended change, and say why in the commit.
    assert_eq!(
        (
            (
                config.k,
                config.num_advice_per_phase.clone(),
                config.num_fixed,
                config.num_lookup_advice_per_phase.clone()
            ),
            vk.cs().degree(),
            format!("{:?}", vk.transcript_repr()),
        ),
        (
            (17, vec![11], 1, vec![1, 0, 0]),
            PINNED_DEGREE,
            PINNED_VK.to_string()
        ),
        "circuit layout, constraint degree or verifying key changed"
    );
    let pk = keygen_pk(&srs, vk, &keygen).unwrap();
    let breaks = keygen.break_points();

    let prover = build(CircuitBuilderStage::Prover, Some((config, breaks)));
    let instances = prover.assigned_instances[0]
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
