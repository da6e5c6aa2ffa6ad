//! The market lists in circuit equal the native header commitments, and malformed lists fail.

use collar_circuits::market::{assign_series, assign_underlyings, list_hash, select_used};
use collar_circuits::poseidon::PoseidonChip;
use collar_circuits::testing::{Failure, MockRun, Mutation};
use collar_protocol::testkit::Harness;
use collar_protocol::{OptionKind, ProtocolParams, State};
use halo2_base::gates::{GateInstructions, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

fn market() -> State {
    let mut h = Harness::new(ProtocolParams::small(), 2);
    for (u, strike, kind) in [
        (0, 100_000, OptionKind::Call),
        (1, 2_000, OptionKind::Put),
        (0, 90_000, OptionKind::Put),
    ] {
        let r = h.register(u, strike, 5_000, kind, 3);
        h.accept(&r);
    }
    let t = h.tick(
        10,
        &[
            (0, 100_000, vec![(0, 5_000), (2, 700)]),
            (1, 2_100, vec![(1, 40)]),
        ],
    );
    h.accept(&t);
    h.state
}

/// Builds both lists and exposes `[series_hash, underlyings_hash, selected strike]`.
fn run(
    state: &State,
    select: u64,
    mutation: Option<Mutation>,
) -> (Vec<Fr>, collar_circuits::testing::MockOutcome<usize>) {
    let p = state.params().clone();
    let mut s = state.clone();
    let header = s.header();
    let expected = vec![
        header.series_hash,
        header.underlyings_hash,
        Fr::from(state.series().get(select as usize).map_or(0, |x| x.strike)),
    ];
    let out = MockRun::new(15, 8).run(
        |ctx, range| {
            let poseidon = PoseidonChip::new(ctx, range.gate());
            let series = assign_series(ctx, range, &poseidon, state.series(), p.max_series);
            let unds = assign_underlyings(
                ctx,
                range,
                &poseidon,
                state.underlyings(),
                p.max_underlyings,
            );
            let sh = list_hash(ctx, range.gate(), &poseidon, series.iter().map(|x| x.leaf));
            let uh = list_hash(ctx, range.gate(), &poseidon, unds.iter().map(|x| x.leaf));
            let count = range.gate().sum(ctx, series.iter().map(|x| x.used));
            let idx = ctx.load_witness(Fr::from(select));
            range.range_check(ctx, idx, 8);
            let strikes: Vec<_> = series.iter().map(|x| x.strike.cell()).collect();
            let strike = select_used(ctx, range, &strikes, idx, count);
            (series[1].is_put.cell.unwrap().offset, vec![sh, uh, strike])
        },
        mutation,
        Some(expected.clone()),
    );
    (expected, out)
}

#[test]
fn lists_hash_to_the_native_header() {
    let state = market();
    let (_, out) = run(&state, 2, None);
    assert!(out.is_satisfied(), "{:?}", out.failures);
}

#[test]
fn selecting_an_unregistered_series_fails() {
    let state = market();
    // Series 3 is an unused slot: its strike would read as 0, but the index check fails.
    let (_, out) = run(&state, 3, None);
    assert!(!out.is_satisfied());
}

#[test]
fn a_flipped_option_kind_breaks_the_commitment() {
    let state = market();
    let (_, ok) = run(&state, 0, None);
    let (_, out) = run(
        &state,
        0,
        Some(Mutation {
            offset: ok.output,
            value: Fr::zero(),
        }),
    );
    assert!(
        out.failures.contains(&Failure::Permutation),
        "{:?}",
        out.failures
    );
}

#[test]
fn sampled_cell_mutations_are_all_rejected() {
    let state = market();
    let (_, ok) = run(&state, 2, None);
    // A deterministic sample across the whole main context (constants included).
    let n = ok.advice_cells;
    let mut rejected = 0;
    for i in 0..40 {
        let offset = (i * 7919 + 13) % n;
        let (_, out) = run(
            &state,
            2,
            Some(Mutation {
                offset,
                value: Fr::from(0xdead_u64),
            }),
        );
        assert!(
            !out.is_satisfied(),
            "mutating cell {offset} of {n} was accepted"
        );
        rejected += 1;
    }
    assert_eq!(rejected, 40);
}
