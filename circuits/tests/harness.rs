//! The mock harness reports failures by constraint name: a value past its range fails the
//! range check (its lookup or its recombination copy), a mutated gate cell fails the flex gate, a copy mismatch fails the permutation,
//! and a tampered public input fails the instance copy.

use collar_circuits::safe::Ranged;
use collar_circuits::testing::{Failure, MockRun, Mutation, FLEX_GATE, RANGE_LOOKUP};
use halo2_base::gates::{GateInstructions, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

#[test]
fn range_edges_pass_and_fail_by_name() {
    let run = MockRun::new(10, 8);
    for bits in [8u32, 13, 40] {
        let max = (1u128 << bits) - 1;
        for (value, ok) in [
            (Fr::zero(), true),
            (collar_protocol::field::fr_from_u128(max), true),
            (collar_protocol::field::fr_from_u128(max + 1), false),
            (-Fr::one(), false),
        ] {
            let out = run.check(|ctx, range| {
                Ranged::load(ctx, range, value, bits);
            });
            if ok {
                assert!(
                    out.is_satisfied(),
                    "bits {bits} value {value:?}: {:?}",
                    out.failures
                );
            } else {
                // The range check decomposes into lookup limbs recombined by a copy constraint:
                // an out-of-range value fails the limb lookup or the recombination copy.
                assert!(!out.is_satisfied());
                assert!(
                    out.failures
                        .iter()
                        .all(|f| matches!(f, Failure::Lookup(n) if n == RANGE_LOOKUP)
                            || *f == Failure::Permutation),
                    "{:?}",
                    out.failures
                );
            }
        }
    }
}

#[test]
fn mutations_and_tampered_instances_fail_by_name() {
    let run = MockRun::new(10, 8);
    let build = |ctx: &mut halo2_base::Context<Fr>, range: &halo2_base::gates::RangeChip<Fr>| {
        let a = ctx.load_witness(Fr::from(3u64));
        let b = ctx.load_witness(Fr::from(4u64));
        let c = range.gate().mul(ctx, a, b);
        (c.cell.unwrap().offset, vec![c])
    };
    let ok = run.run(build, None, None);
    assert!(ok.is_satisfied(), "{:?}", ok.failures);
    // The product cell is both a gate output and the public input's copy source.
    let out = run.run(
        build,
        Some(Mutation {
            offset: ok.output,
            value: Fr::from(13u64),
        }),
        None,
    );
    assert!(
        out.failures.contains(&Failure::Gate(FLEX_GATE.into())),
        "{:?}",
        out.failures
    );
    let out = run.run(build, None, Some(vec![Fr::from(13u64)]));
    assert_eq!(out.failures, [Failure::Permutation].into_iter().collect());
}
