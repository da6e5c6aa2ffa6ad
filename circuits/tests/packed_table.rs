//! `table::select_two_level` and `table::PackedTable` against plain indexing: every index of
//! lists of many lengths (and indices past the end, which read 0) with outputs exposed as public
//! inputs and the native values passed as the instance; then the two constraints the reads
//! rely on, each failing by name: a forged index split (a range lookup), a forged unpacking
//! that keeps the recombination (a range lookup, or the bit gate for a 1-bit field) and one
//! that breaks it (the copy constraint); a row wider than `MAX_BITS` is refused.

use std::collections::BTreeSet;

use collar_circuits::safe::Ranged;
use collar_circuits::table::{select_two_level, split_index, PackedTable};
use collar_circuits::testing::{Failure, MockRun, FLEX_GATE};
use collar_protocol::field::fr_from_u128;
use halo2_base::gates::{RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The series row's widths at the production shape: underlying, strike, expiry, is_put,
/// contract size, mark, settlement price.
const SERIES_WIDTHS: [u32; 7] = [8, 48, 40, 1, 16, 64, 48];

fn run() -> MockRun {
    MockRun::new(12, 8)
}

fn random_rows(rng: &mut ChaCha8Rng, n: usize, widths: &[u32]) -> Vec<Vec<u128>> {
    (0..n)
        .map(|_| {
            widths
                .iter()
                .map(|&w| rng.gen::<u128>() & ((1u128 << w) - 1))
                .collect()
        })
        .collect()
}

fn load_rows(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    rows: &[Vec<u128>],
    widths: &[u32],
) -> Vec<Vec<Ranged>> {
    rows.iter()
        .map(|r| {
            r.iter()
                .zip(widths)
                .map(|(v, &w)| Ranged::load(ctx, range, fr_from_u128(*v), w))
                .collect()
        })
        .collect()
}

fn failures(out: &BTreeSet<Failure>) -> Vec<Failure> {
    out.iter().cloned().collect()
}

#[test]
fn two_level_select_equals_indexing() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for len in [1usize, 2, 3, 4, 5, 7, 8, 9, 16, 33, 64] {
        let values: Vec<u64> = (0..len).map(|_| rng.gen()).collect();
        // Index widths narrower than, equal to and wider than the list needs.
        for bits in [1u32, 3, 7, 16] {
            let reachable = 1usize << bits.min(20);
            let mut idxs: Vec<usize> = (0..(len + 3).min(reachable)).collect();
            idxs.push(reachable - 1);
            let expected: Vec<Fr> = idxs
                .iter()
                .map(|&i| values.get(i).map_or(Fr::zero(), |v| Fr::from(*v)))
                .collect();
            let reads = |claim: Vec<Fr>| {
                run().run(
                    |ctx, range| {
                        let cells: Vec<AssignedValue<Fr>> = values
                            .iter()
                            .map(|v| ctx.load_witness(Fr::from(*v)))
                            .collect();
                        let outs = idxs
                            .iter()
                            .map(|&i| {
                                let idx = Ranged::load(ctx, range, Fr::from(i as u64), bits);
                                select_two_level(ctx, range, &cells, &idx)
                            })
                            .collect();
                        ((), outs)
                    },
                    None,
                    Some(claim),
                )
            };
            let out = reads(expected.clone());
            assert!(
                out.is_satisfied(),
                "len {len}, bits {bits}: {:?}",
                out.failures
            );
            // The same reads against a wrong claim for the last in-list index fail the
            // instance copy, so the outputs really are the entries.
            let mut wrong = expected;
            let last_in = idxs
                .iter()
                .rposition(|&i| i < len)
                .expect("index 0 is in the list");
            wrong[last_in] += Fr::one();
            let out = reads(wrong);
            assert_eq!(
                failures(&out.failures),
                vec![Failure::Permutation],
                "len {len}"
            );
        }
    }
}

#[test]
fn packed_table_reads_rows_and_zeros_past_the_end() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for len in [1usize, 4, 8, 64] {
        let rows = random_rows(&mut rng, len, &SERIES_WIDTHS);
        let idxs: Vec<usize> = (0..len + 2).collect();
        let expected: Vec<Fr> = idxs
            .iter()
            .flat_map(|&i| {
                (0..SERIES_WIDTHS.len())
                    .map(|f| rows.get(i).map_or(Fr::zero(), |r| fr_from_u128(r[f])))
                    .collect::<Vec<_>>()
            })
            .collect();
        let out = run().run(
            |ctx, range| {
                let loaded = load_rows(ctx, range, &rows, &SERIES_WIDTHS);
                let table = PackedTable::new(ctx, range.gate(), &loaded);
                assert_eq!(table.widths(), SERIES_WIDTHS);
                let mut outs = Vec::new();
                for &i in &idxs {
                    let idx = Ranged::load(ctx, range, Fr::from(i as u64), 16);
                    let row = table.read(ctx, range, &idx);
                    for (f, w) in row.iter().zip(SERIES_WIDTHS) {
                        assert_eq!(f.bits(), w, "each field keeps its width");
                    }
                    outs.extend(row.iter().map(|f| f.cell()));
                }
                ((), outs)
            },
            None,
            Some(expected),
        );
        assert!(out.is_satisfied(), "len {len}: {:?}", out.failures);
    }
}

#[test]
fn forged_index_split_fails_the_range_lookup() {
    // idx = 8·hi + lo; lo + 8 with hi - 1 keeps the sum, and only lo's 3-bit check can object.
    for idx in [8u64, 13, 63, 200] {
        let attempt = |shift: bool| {
            run().run(
                |ctx, range| {
                    let i = Ranged::load(ctx, range, Fr::from(idx), 16);
                    let lo = Fr::from(idx % 8 + if shift { 8 } else { 0 });
                    let (lo, hi) = split_index(ctx, range, &i, 3, lo);
                    ((), vec![lo.cell(), hi.cell()])
                },
                None,
                None,
            )
        };
        let honest = attempt(false);
        assert!(honest.is_satisfied(), "{:?}", honest.failures);
        let forged = attempt(true);
        let f = failures(&forged.failures);
        assert!(!f.is_empty(), "idx {idx}: forged split accepted");
        assert!(f.iter().all(Failure::is_range_lookup), "idx {idx}: {f:?}");
    }
}

#[test]
fn forged_unpacking_is_rejected_by_name() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let rows = random_rows(&mut rng, 4, &SERIES_WIDTHS);
    // Strike (field 1) and contract size (field 4) odd so that a unit can be borrowed from each.
    let row: Vec<u128> = rows[2]
        .iter()
        .enumerate()
        .map(|(i, v)| if i == 1 || i == 4 { v | 1 } else { *v })
        .collect();
    let attempt = |forge: &dyn Fn(&mut Vec<Fr>)| {
        run().run(
            |ctx, range| {
                let loaded = load_rows(ctx, range, std::slice::from_ref(&row), &SERIES_WIDTHS);
                let table = PackedTable::new(ctx, range.gate(), &loaded);
                let packed = table.packed()[0];
                let mut fields = table.fields_of(packed.value());
                assert_eq!(
                    fields,
                    row.iter().map(|v| fr_from_u128(*v)).collect::<Vec<_>>()
                );
                forge(&mut fields);
                let out = table.unpack_fields(ctx, range, packed, &fields);
                ((), out.iter().map(|f| f.cell()).collect())
            },
            None,
            None,
        )
    };
    let honest = attempt(&|_| {});
    assert!(honest.is_satisfied(), "{:?}", honest.failures);

    // Carry into a one-limb field: underlying (field 0, 8 bits) + 2^8, strike - 1. The
    // recombination holds; only the underlying's range lookup can object.
    let out = attempt(&|f| {
        f[0] += Fr::from(1 << 8);
        f[1] -= Fr::one();
    });
    let got = failures(&out.failures);
    assert!(!got.is_empty(), "carry into the underlying accepted");
    assert!(got.iter().all(Failure::is_range_lookup), "{got:?}");

    // Carry into the 1-bit field: is_put + 2, contract size - 1. The recombination holds and
    // the value passes the limb lookup, so only the bit gate can object.
    let out = attempt(&|f| {
        f[3] += Fr::from(2);
        f[4] -= Fr::one();
    });
    assert_eq!(
        failures(&out.failures),
        vec![Failure::Gate(FLEX_GATE.into())]
    );

    // Every field in range but the sum off by one: only the recombination's copy fails.
    let out = attempt(&|f| f[4] -= Fr::one());
    assert_eq!(failures(&out.failures), vec![Failure::Permutation]);
}

#[test]
#[should_panic(expected = "exceeds MAX_BITS")]
fn rows_wider_than_max_bits_are_refused() {
    run().run(
        |ctx, range| {
            let wide: Vec<Ranged> = (0..5)
                .map(|_| Ranged::load(ctx, range, Fr::one(), 64))
                .collect();
            PackedTable::new(ctx, range.gate(), &[wide]);
            ((), vec![])
        },
        None,
        None,
    );
}
