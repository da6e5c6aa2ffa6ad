//! Margin of real accounts read from the market lists equals the native margin; a position in
//! an unregistered series fails.

use collar_circuits::account::assign_account;
use collar_circuits::market::{assign_series, assign_underlyings};
use collar_circuits::portfolio::{account_margin_in_market, MarketView};
use collar_circuits::poseidon::PoseidonChip;
use collar_circuits::testing::{Failure, MockRun};
use collar_protocol::field::fr_from_i128;
use collar_protocol::testkit::Harness;
use collar_protocol::{Account, OptionKind, ProtocolParams, State};
use halo2_base::gates::RangeInstructions;

/// Accounts 2..5 holding calls and puts, long and short, after a price move.
fn market_state() -> State {
    let mut h = Harness::new(ProtocolParams::small(), 2);
    for (u, strike, kind, cs) in [
        (0, 100_000, OptionKind::Call, 1),
        (0, 95_000, OptionKind::Put, 2),
        (1, 2_000, OptionKind::Put, 10),
    ] {
        let r = h.register(u, strike, 100_000, kind, cs);
        h.accept(&r);
    }
    let t = h.tick(
        10,
        &[
            (0, 100_000, vec![(0, 5_000), (1, 3_000)]),
            (1, 2_050, vec![(2, 400)]),
        ],
    );
    h.accept(&t);
    for a in 2..6 {
        h.fund(a, 2_000_000);
    }
    h.fill(2, 3, 0, 7, 5_000);
    h.fill(4, 3, 1, 3, 3_000);
    h.fill(3, 5, 2, 11, 400);
    h.fill(5, 2, 1, 2, 3_000);
    let t = h.tick(
        20,
        &[
            (0, 108_000, vec![(0, 10_500), (1, 900)]),
            (1, 1_900, vec![(2, 650)]),
        ],
    );
    h.accept(&t);
    h.state
}

/// Loads the market lists of `state` and `acc`, and computes `acc`'s margin from the lists.
fn build_margin(
    ctx: &mut halo2_base::Context<halo2_base::halo2_proofs::halo2curves::bn256::Fr>,
    range: &halo2_base::gates::RangeChip<halo2_base::halo2_proofs::halo2curves::bn256::Fr>,
    state: &State,
    acc: &Account,
) -> collar_circuits::margin::AssignedMargin {
    let p = state.params();
    let poseidon = PoseidonChip::new(ctx, range.gate());
    let series = assign_series(ctx, range, &poseidon, state.series(), p.max_series);
    let unds = assign_underlyings(
        ctx,
        range,
        &poseidon,
        state.underlyings(),
        p.max_underlyings,
    );
    let view = MarketView::new(ctx, range.gate(), &series, &unds);
    let a = assign_account(ctx, range, &poseidon, acc, p.order_slot_depth);
    account_margin_in_market(ctx, range, &a, &view)
}

fn margin_of(state: &State, acc: &Account) -> collar_circuits::testing::MockOutcome<()> {
    let native = collar_protocol::margin::account_margin(acc, state.series(), state.underlyings());
    let expected = vec![
        fr_from_i128(native.equity),
        fr_from_i128(native.im_equity),
        fr_from_i128(native.initial),
        fr_from_i128(native.maintenance),
    ];
    MockRun::new(16, 13).run(
        |ctx, range| {
            let m = build_margin(ctx, range, state, acc);
            let public = vec![
                m.equity.cell(),
                m.im_equity.cell(),
                m.initial.cell(),
                m.maintenance.cell(),
            ];
            ((), public)
        },
        None,
        Some(expected),
    )
}

#[test]
fn margin_from_market_lists_equals_native() {
    let state = market_state();
    for id in 2..6 {
        let acc = state.account(id).unwrap();
        assert!(acc.positions.iter().any(|p| p.size != 0));
        let out = margin_of(&state, acc);
        assert!(out.is_satisfied(), "account {id}: {:?}", out.failures);
    }
}

#[test]
fn a_position_in_an_unregistered_series_fails() {
    let state = market_state();
    let run = |acc: &Account| {
        MockRun::new(16, 13).check(|ctx, range| {
            build_margin(ctx, range, &state, acc);
        })
    };
    // Control: an extra short in registered series 2 is fine.
    let mut ok = state.account(2).unwrap().clone();
    assert!(ok.set_position(2, -1));
    assert!(run(&ok).is_satisfied());
    // Series 3 is not registered (3 series exist): the registration check fails.
    let mut bad = state.account(2).unwrap().clone();
    assert!(bad.set_position(3, -1));
    assert_eq!(
        run(&bad).failures,
        [Failure::Permutation].into_iter().collect()
    );
}
