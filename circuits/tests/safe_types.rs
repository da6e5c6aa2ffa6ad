//! `safe::Ranged` and `safe::Signed` against their specification (PROTOCOL.md §2.3, §5.4):
//! range edges for every width the protocol uses, comparisons, `max`, `saturating_sub` and
//! `ceil_bps` equal to the native integers (outputs exposed as public inputs, the native values
//! passed as the instance, so a wrong output would fail the instance copy), and forged
//! quotients, remainders and comparison differences rejected by name.

use std::collections::BTreeSet;

use collar_circuits::safe::{Ranged, Signed};
use collar_circuits::testing::{Failure, MockRun, Mutation, FLEX_GATE, RANGE_LOOKUP};
use collar_protocol::field::{fr_from_i128, fr_from_u128};
use halo2_base::gates::{RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::plonk::Assigned;
use halo2_base::{AssignedValue, Context};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Every width of PROTOCOL.md §2.3 plus the 16-bit contract size.
const WIDTHS: [u32; 7] = [14, 16, 32, 40, 48, 63, 64];

/// Two lookup sizes: 8 divides most widths (the range check's exact-limb path), 13 divides none
/// of them (the last-limb shift or bit path).
fn runs() -> [MockRun; 2] {
    [MockRun::new(10, 8), MockRun::new(14, 13)]
}

fn offset(c: &AssignedValue<Fr>) -> usize {
    c.cell.expect("cells are tracked in mock runs").offset
}

fn failures(names: &[Failure]) -> BTreeSet<Failure> {
    names.iter().cloned().collect()
}

/// A range violation shows as a failed limb lookup or a failed recombination copy; where the
/// checked width is one more than a multiple of the lookup size, the top limb is a bit checked
/// by the flex gate (`assert_bit`), so that gate may fail too. Nothing else may.
fn assert_range_rejection(out: &BTreeSet<Failure>, bit_limb: bool, what: &str) {
    assert!(!out.is_empty(), "{what}: accepted");
    assert!(
        out.iter().all(|f| match f {
            Failure::Lookup(n) => n == RANGE_LOOKUP,
            Failure::Permutation => true,
            Failure::Gate(n) => bit_limb && n == FLEX_GATE,
            _ => false,
        }),
        "{what}: {out:?}"
    );
}

/// Overwrites advice cells inside the build closure (the harness mutates at most one cell).
fn overwrite(ctx: &mut Context<Fr>, cells: &[(usize, Fr)]) {
    for &(off, v) in cells {
        ctx.advice[off] = Assigned::Trivial(v);
    }
}

fn cell_value(ctx: &Context<Fr>, off: usize) -> Fr {
    *ctx.get(off as isize).value()
}

#[test]
fn ranged_range_edges() {
    for run in runs() {
        for n in WIDTHS {
            let max = (1u128 << n) - 1;
            let ok = run.check(|ctx, range| {
                for v in [Fr::zero(), Fr::one(), fr_from_u128(max)] {
                    let r = Ranged::load(ctx, range, v, n);
                    assert_eq!(r.bits(), n);
                }
            });
            assert!(ok.is_satisfied(), "n {n}: {:?}", ok.failures);
            for v in [fr_from_u128(max + 1), -Fr::one(), fr_from_u128(max << 1)] {
                let out = run.check(|ctx, range| {
                    Ranged::load(ctx, range, v, n);
                });
                assert_range_rejection(
                    &out.failures,
                    n as usize % run.lookup_bits == 1,
                    &format!("lookup {} n {n} v {v:?}", run.lookup_bits),
                );
            }
        }
    }
}

#[test]
fn signed_range_edges() {
    for run in runs() {
        for n in WIDTHS {
            let max = (1i128 << n) - 1;
            let ok = run.check(|ctx, range| {
                for v in [0, 1, -1, max, -max] {
                    let cell = ctx.load_witness(fr_from_i128(v));
                    let s = Signed::check(ctx, range, cell, n);
                    assert_eq!(s.bits(), n);
                }
            });
            assert!(ok.is_satisfied(), "n {n}: {:?}", ok.failures);
            for v in [
                fr_from_i128(max + 1),
                fr_from_i128(-max - 1),
                fr_from_i128(2 * max),
                fr_from_i128(-2 * max),
                // The middle of the field: neither a small positive nor a small negative.
                fr_from_u128(u128::MAX) * fr_from_u128(1 << 100),
            ] {
                let out = run.check(|ctx, range| {
                    let cell = ctx.load_witness(v);
                    Signed::check(ctx, range, cell, n);
                });
                assert_range_rejection(
                    &out.failures,
                    (n as usize + 1) % run.lookup_bits == 1,
                    &format!("lookup {} n {n} v {v:?}", run.lookup_bits),
                );
            }
        }
    }
}

/// `(a, a_bits, b, b_bits)` cases of `a < b`, `a = b`, `a > b` for several width pairs,
/// including the edges 0 and `2^n - 1`.
fn unsigned_pairs() -> Vec<(u128, u32, u128, u32)> {
    let mut v = Vec::new();
    for (na, nb) in [(64, 64), (48, 64), (64, 48), (14, 40), (63, 16), (66, 66)] {
        let ma = (1u128 << na) - 1;
        let mb = (1u128 << nb) - 1;
        let m = ma.min(mb);
        for (a, b) in [
            (0, 0),
            (0, 1),
            (1, 0),
            (5, 7),
            (7, 5),
            (7, 7),
            (m, m),
            (m - 1, m),
            (m, m - 1),
            (0, mb),
            (ma, 0),
            (ma, mb),
        ] {
            v.push((a, na, b, nb));
        }
    }
    v
}

#[test]
fn ranged_comparisons_equal_native() {
    let cases = unsigned_pairs();
    let mut expect = Vec::new();
    for &(a, _, b, _) in &cases {
        expect.extend([
            Fr::from(u64::from(a < b)),
            fr_from_u128(a.max(b)),
            fr_from_u128(a.saturating_sub(b)),
        ]);
    }
    for run in runs() {
        let build = |ctx: &mut Context<Fr>, range: &RangeChip<Fr>| {
            let mut public = Vec::new();
            for &(a, na, b, nb) in &cases {
                let x = Ranged::load(ctx, range, fr_from_u128(a), na);
                let y = Ranged::load(ctx, range, fr_from_u128(b), nb);
                let lt = x.is_lt(ctx, range, &y);
                let mx = x.max(ctx, range, &y);
                let sat = x.saturating_sub(ctx, range, &y);
                assert_eq!(mx.bits(), na.max(nb));
                assert_eq!(sat.bits(), na);
                public.extend([lt, mx.cell(), sat.cell()]);
            }
            ((), public)
        };
        let out = run.run(build, None, Some(expect.clone()));
        assert!(out.is_satisfied(), "{:?}", out.failures);
        // Each claimed output is pinned: a wrong one fails the instance copy.
        for i in [0, 1, 2, expect.len() - 1] {
            let mut wrong = expect.clone();
            wrong[i] += Fr::one();
            let out = run.run(build, None, Some(wrong));
            assert_eq!(
                out.failures,
                failures(&[Failure::Permutation]),
                "output {i}"
            );
        }
    }
}

/// `(a, b, bits)` across signs, at equality and at the edges `±(2^n - 1)`.
fn signed_pairs() -> Vec<(i128, u32, i128, u32)> {
    let mut v = Vec::new();
    for (na, nb) in [(40, 40), (40, 104), (104, 40), (63, 111), (14, 14)] {
        let ma = (1i128 << na) - 1;
        let mb = (1i128 << nb) - 1;
        let m = ma.min(mb);
        for (a, b) in [
            (0, 0),
            (0, -1),
            (-1, 0),
            (1, -1),
            (-1, 1),
            (-5, -5),
            (-5, -4),
            (-4, -5),
            (5, 5),
            (-5, 5),
            (5, -5),
            (m, m),
            (-m, -m),
            (-m, m),
            (m, -m),
            (-m, -m + 1),
            (-m + 1, -m),
            (m - 1, m),
            (0, -m),
            (-ma, mb),
            (ma, -mb),
            (-ma, -mb),
        ] {
            v.push((a, na, b, nb));
        }
    }
    v
}

#[test]
fn signed_comparisons_equal_native() {
    let cases = signed_pairs();
    let mut expect = Vec::new();
    for &(a, _, b, _) in &cases {
        expect.extend([
            Fr::from(u64::from(a >= b)),
            Fr::from(u64::from(a < 0)),
            Fr::from(u64::from(b < 0)),
        ]);
    }
    for run in runs() {
        let build = |ctx: &mut Context<Fr>, range: &RangeChip<Fr>| {
            let mut public = Vec::new();
            for &(a, na, b, nb) in &cases {
                let x = ctx.load_witness(fr_from_i128(a));
                let x = Signed::check(ctx, range, x, na);
                let y = ctx.load_witness(fr_from_i128(b));
                let y = Signed::check(ctx, range, y, nb);
                public.push(x.is_ge(ctx, range, &y));
                public.push(x.is_negative(ctx, range));
                public.push(y.is_negative(ctx, range));
            }
            ((), public)
        };
        let out = run.run(build, None, Some(expect.clone()));
        assert!(out.is_satisfied(), "{:?}", out.failures);
        let mut wrong = expect.clone();
        wrong[0] = Fr::one() - wrong[0];
        let out = run.run(build, None, Some(wrong));
        assert_eq!(out.failures, failures(&[Failure::Permutation]));
    }
}

#[test]
fn signed_arithmetic_equals_native() {
    // (a, a_bits, b, b_bits, r, r_bits): a + b, a - b, a·r.
    let cases: [(i128, u32, i128, u32, u128, u32); 6] = [
        (-5, 40, 7, 40, 3, 64),
        (
            (1 << 40) - 1,
            40,
            -((1 << 40) - 1),
            40,
            u64::MAX as u128,
            64,
        ),
        (
            -((1 << 40) - 1),
            40,
            -((1 << 63) - 1),
            63,
            u64::MAX as u128,
            64,
        ),
        (0, 14, 0, 14, 0, 14),
        (-1, 104, 1, 104, (1 << 66) - 1, 66),
        ((1 << 63) - 1, 63, -((1 << 110) - 1), 110, 1, 1),
    ];
    let mut expect = Vec::new();
    for &(a, _, b, _, r, _) in &cases {
        expect.extend([
            fr_from_i128(a + b),
            fr_from_i128(a - b),
            fr_from_i128(a * r as i128),
        ]);
    }
    let run = MockRun::new(10, 8);
    let out = run.run(
        |ctx, range| {
            let mut public = Vec::new();
            for &(a, na, b, nb, r, nr) in &cases {
                let x = ctx.load_witness(fr_from_i128(a));
                let x = Signed::check(ctx, range, x, na);
                let y = ctx.load_witness(fr_from_i128(b));
                let y = Signed::check(ctx, range, y, nb);
                let z = Ranged::load(ctx, range, fr_from_u128(r), nr);
                let sum = x.add(ctx, range.gate(), &y);
                let diff = x.sub(ctx, range.gate(), &y);
                let prod = x.mul_ranged(ctx, range.gate(), &z);
                assert_eq!(sum.bits(), na.max(nb) + 1);
                assert_eq!(diff.bits(), na.max(nb) + 1);
                assert_eq!(prod.bits(), na + nr);
                // The declared widths hold: re-checking each result at its width passes.
                for s in [sum, diff, prod] {
                    Signed::check(ctx, range, s.cell(), s.bits());
                }
                public.extend([sum.cell(), diff.cell(), prod.cell()]);
            }
            ((), public)
        },
        None,
        Some(expect),
    );
    assert!(out.is_satisfied(), "{:?}", out.failures);
}

/// `(x, x_bits, bps)`: every edge pair of x ∈ {0, 1, 2^64 - 1} and bps ∈ {0, 1, 9_999, 10_000},
/// remainders at 0 and 9_999, wide arguments, and random pairs.
fn ceil_cases() -> Vec<(u128, u32, u64)> {
    let mut v = Vec::new();
    for x in [0, 1, u64::MAX as u128] {
        for bps in [0, 1, 9_999, 10_000] {
            v.push((x, 64, bps));
        }
    }
    // x·bps a multiple of 10_000 (no rounding) and one past it (rounds up by almost one).
    v.extend([
        (10_000, 64, 1),
        (10_001, 64, 1),
        (3, 14, 10_000),
        ((1 << 14) - 1, 14, 9_999),
    ]);
    // Wide arguments: position terms and sums (§5.5).
    v.extend([
        ((1 << 110) - 1, 110, 10_000),
        ((1 << 110) - 1, 110, 1),
        ((1 << 106) - 3, 106, 1_500),
    ]);
    let mut rng = ChaCha8Rng::seed_from_u64(0xce11);
    for _ in 0..40 {
        let x = match rng.gen_range(0..3) {
            0 => rng.gen::<u64>() as u128,
            1 => rng.gen_range(0..1u128 << 20),
            _ => rng.gen::<u64>() as u128 >> rng.gen_range(0..64),
        };
        v.push((x, 64, rng.gen_range(0..=10_000)));
    }
    v
}

#[test]
fn ceil_bps_equals_native() {
    let cases = ceil_cases();
    let expect: Vec<Fr> = cases
        .iter()
        .map(|&(x, _, bps)| fr_from_u128(collar_protocol::margin::ceil_bps(x, bps)))
        .collect();
    let build = |ctx: &mut Context<Fr>, range: &RangeChip<Fr>| {
        let mut public = Vec::new();
        for &(x, nx, bps) in &cases {
            let xv = Ranged::load(ctx, range, fr_from_u128(x), nx);
            let b = Ranged::load(ctx, range, Fr::from(bps), 14);
            let q = xv.ceil_bps(ctx, range, &b);
            assert_eq!(q.bits(), nx + 2);
            public.push(q.cell());
        }
        ((), public)
    };
    for run in [MockRun::new(12, 8), MockRun::new(14, 13)] {
        let out = run.run(build, None, Some(expect.clone()));
        assert!(out.is_satisfied(), "{:?}", out.failures);
        // Off by one either way (a floor instead of a ceiling, or one too many) is caught.
        for delta in [Fr::one(), -Fr::one()] {
            let mut wrong = expect.clone();
            wrong[cases.len() - 1] += delta;
            let out = run.run(build, None, Some(wrong));
            assert_eq!(out.failures, failures(&[Failure::Permutation]));
        }
    }
}

#[test]
fn ceil_bps_forged_quotient_and_remainder_rejected() {
    // (x, bps) with remainder 0, a middle remainder and remainder 9_999 of x·bps + 9_999.
    for (x, bps) in [
        (123_456_789u128, 1_500u64),
        (10_000, 1),
        (u64::MAX as u128, 10_000),
        (7, 3),
    ] {
        let native = collar_protocol::margin::ceil_bps(x, bps);
        let r = (x * u128::from(bps) + 9_999) % 10_000;
        for run in runs() {
            // `forge(q, r)` gives the replacement values of the quotient and remainder cells.
            let attempt = |forge: &dyn Fn(Fr, Fr) -> (Fr, Fr), claim: Fr| {
                run.run(
                    |ctx, range| {
                        let xv = Ranged::load(ctx, range, fr_from_u128(x), 64);
                        let b = Ranged::load(ctx, range, Fr::from(bps), 14);
                        let q = xv.ceil_bps(ctx, range, &b);
                        // `div_mod` assigns | r | 10_000 | q | x·bps + 9_999 |.
                        let q_off = offset(&q.cell());
                        let r_off = q_off - 2;
                        assert_eq!(cell_value(ctx, r_off), fr_from_u128(r));
                        assert_eq!(
                            cell_value(ctx, q_off + 1),
                            *q.cell().value() * Fr::from(10_000) + fr_from_u128(r)
                        );
                        let (fq, fr) = forge(*q.cell().value(), cell_value(ctx, r_off));
                        overwrite(ctx, &[(q_off, fq), (r_off, fr)]);
                        ((), vec![q.cell()])
                    },
                    None,
                    Some(vec![claim]),
                )
            };
            let q = fr_from_u128(native);
            let honest = attempt(&|q, r| (q, r), q);
            assert!(honest.is_satisfied(), "{:?}", honest.failures);
            let ten_k = Fr::from(10_000);
            // Both forgeries keep `10_000·q + r = x·bps + 9_999`, so the division gate holds and
            // only the remainder's and quotient's range checks can reject them.
            for (name, forge) in [
                (
                    "q+1, r-10000",
                    &(|q, r| (q + Fr::one(), r - ten_k)) as &dyn Fn(Fr, Fr) -> (Fr, Fr),
                ),
                ("q-1, r+10000", &|q, r| (q - Fr::one(), r + ten_k)),
            ] {
                let claim = forge(q, fr_from_u128(r)).0;
                let out = attempt(forge, claim);
                assert!(
                    !out.failures.contains(&Failure::Gate(FLEX_GATE.into())),
                    "{name}: the division gate should hold: {:?}",
                    out.failures
                );
                assert_range_rejection(&out.failures, false, name);
            }
        }
    }
}

#[test]
fn forged_comparison_difference_rejected() {
    let run = MockRun::new(10, 8);
    let two64 = fr_from_u128(1 << 64);
    for (a, b) in [(5u128, 9u128), (9, 5), (7, 7), (0, u64::MAX as u128)] {
        let build = |ctx: &mut Context<Fr>, range: &RangeChip<Fr>| {
            let x = Ranged::load(ctx, range, fr_from_u128(a), 64);
            let y = Ranged::load(ctx, range, fr_from_u128(b), 64);
            // `is_less_than` opens with | a - b + 2^padded | b | 1 | a + 2^padded | ... |, and
            // 64 bits pad to 64 with 8-bit lookups.
            let shifted_off = ctx.advice.len();
            let lt = x.is_lt(ctx, range, &y);
            let shifted = cell_value(ctx, shifted_off);
            assert_eq!(shifted, fr_from_u128(a) - fr_from_u128(b) + two64);
            ((shifted_off, shifted, offset(&lt)), vec![lt])
        };
        let expect = Fr::from(u64::from(a < b));
        let ok = run.run(build, None, Some(vec![expect]));
        assert!(ok.is_satisfied(), "{:?}", ok.failures);
        let (shifted_off, shifted, lt_off) = ok.output;
        // The difference moved by ±1, or by ±2^64 (which would flip the answer), fails the
        // gate that defines it, whichever answer is claimed.
        for delta in [Fr::one(), -Fr::one(), two64, -two64] {
            for claim in [expect, Fr::one() - expect] {
                let out = run.run(
                    build,
                    Some(Mutation {
                        offset: shifted_off,
                        value: shifted + delta,
                    }),
                    Some(vec![claim]),
                );
                assert!(
                    out.failures.contains(&Failure::Gate(FLEX_GATE.into())),
                    "a {a} b {b}: {:?}",
                    out.failures
                );
            }
        }
        // A flipped answer bit, claimed publicly, is rejected too.
        let out = run.run(
            build,
            Some(Mutation {
                offset: lt_off,
                value: Fr::one() - expect,
            }),
            Some(vec![Fr::one() - expect]),
        );
        assert!(!out.is_satisfied(), "a {a} b {b}: flipped answer accepted");
        assert!(
            out.failures
                .iter()
                .all(|f| *f == Failure::Gate(FLEX_GATE.into()) || *f == Failure::Permutation),
            "{:?}",
            out.failures
        );
    }
}
