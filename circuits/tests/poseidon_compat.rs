//! Pins in-circuit Poseidon to the native `collar_protocol::poseidon::hash` on random inputs of
//! every length from 0 to 13, and shows a wrong claimed output fails the copy constraint.

use collar_circuits::poseidon::PoseidonChip;
use halo2_base::gates::RangeInstructions;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::utils::testing::base_test;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_fr(rng: &mut ChaCha8Rng) -> Fr {
    let mut limbs = [0u64; 4];
    for l in &mut limbs {
        *l = rng.gen();
    }
    // Reduce a 256-bit integer into the field by a multiply-add chain.
    let two64 = Fr::from(u64::MAX) + Fr::one();
    limbs
        .iter()
        .rev()
        .fold(Fr::zero(), |acc, l| acc * two64 + Fr::from(*l))
}

#[test]
fn circuit_poseidon_equals_native_on_random_inputs() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let inputs: Vec<Vec<Fr>> = (0..14)
        .map(|len| (0..len).map(|_| random_fr(&mut rng)).collect())
        .collect();
    base_test().k(14).lookup_bits(8).run(|ctx, range| {
        let chip = PoseidonChip::new(ctx, range.gate());
        for v in &inputs {
            let cells = ctx.assign_witnesses(v.iter().copied());
            let out = chip.hash(ctx, range.gate(), &cells);
            assert_eq!(
                *out.value(),
                collar_protocol::poseidon::hash(v),
                "length {}",
                v.len()
            );
        }
    });
}

#[test]
fn a_wrong_claimed_hash_is_rejected() {
    let v = [Fr::from(1u64), Fr::from(2u64)];
    let native = collar_protocol::poseidon::hash(&v);
    for (claimed, satisfied) in [(native, true), (native + Fr::one(), false)] {
        base_test()
            .k(12)
            .lookup_bits(8)
            .expect_satisfied(satisfied)
            .run(|ctx, range| {
                let chip = PoseidonChip::new(ctx, range.gate());
                let cells = ctx.assign_witnesses(v);
                let out = chip.hash(ctx, range.gate(), &cells);
                let claim = ctx.load_witness(claimed);
                ctx.constrain_equal(&out, &claim);
            });
    }
}
