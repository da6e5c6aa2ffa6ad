//! Liquidations (§7.4) and expiry settlements (§7.5) in the batch circuit: batches with a short
//! victim, an insolvent victim whose deficit the fund covers, a long victim, settlements of
//! longs, shorts and of the fund's own position prove the native public inputs; forged
//! variants (a healthy victim, an unbumped liquidator nonce, a wrong settlement credit, a slot
//! left open) are rejected.

use collar_circuits::batch::{build_batch, BatchWitness};
use collar_circuits::testing::{MockOutcome, MockRun};
use collar_protocol::batch;
use collar_protocol::testkit::signer_key;
use collar_protocol::testkit::Harness;
use collar_protocol::{OptionKind, ProtocolParams, State, Tx, INSURANCE_FUND};

const K: u32 = 18;
const CAPACITY: usize = 3;
const CALL: u32 = 0;
const PUT: u32 = 1;
/// Expires at t = 1_000.
const SHORT_CALL: u32 = 2;

/// Calls and puts at 100_000 (expiry 10_000) and a call at 95_000 expiring at 1_000; spot
/// 100_000. Accounts 5 and 6 short 10 calls each; account 7 long 5 puts and short 10 calls;
/// 3 short 3 of the short-dated call, 2 and the fund long it.
fn setup() -> Harness {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    for (strike, expiry, kind) in [
        (100_000, 10_000, OptionKind::Call),
        (100_000, 10_000, OptionKind::Put),
        (95_000, 1_000, OptionKind::Call),
    ] {
        let r = h.register(0, strike, expiry, kind, 1);
        h.accept(&r);
    }
    let t = h.tick(
        10,
        &[(
            0,
            100_000,
            vec![(CALL, 5_000), (PUT, 4_000), (SHORT_CALL, 6_000)],
        )],
    );
    h.accept(&t);
    for a in [2, 3, 4] {
        h.fund(a, 1_000_000);
    }
    h.fund(INSURANCE_FUND, 100_000);
    h.fund(5, 150_150);
    h.fund(6, 150_150);
    h.fund(7, 200_000);
    h.fill(2, 5, CALL, 10, 5_000);
    h.fill(2, 6, CALL, 10, 5_000);
    h.fill(7, 3, PUT, 5, 4_000);
    h.fill(2, 7, CALL, 10, 5_000);
    h.fill(2, 3, SHORT_CALL, 2, 6_000);
    h.fill(INSURANCE_FUND, 3, SHORT_CALL, 1, 6_000);
    h
}

/// On top of [`setup`]: spot 119_000 (a 19% move, no trip), call mark 25_000, put mark 500:
/// 5, 6 and 7 are below maintenance, 5 and 6 underwater.
fn liquidatable() -> Harness {
    let mut h = setup();
    let t = h.tick(
        20,
        &[(
            0,
            119_000,
            vec![(CALL, 25_000), (PUT, 500), (SHORT_CALL, 25_000)],
        )],
    );
    h.accept(&t);
    for a in [5, 6, 7] {
        assert!(h.state.margin(a).unwrap().is_liquidatable(), "account {a}");
    }
    assert!(h.state.margin(6).unwrap().equity < 0);
    h
}

fn run(before: &State, txs: &[Tx], edit: impl FnOnce(&mut BatchWitness)) -> MockOutcome<()> {
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 5, txs).unwrap();
    let mut w = BatchWitness::new(before, &exec, CAPACITY).unwrap();
    w.resign_with(signer_key);
    let honest = w.clone();
    edit(&mut w);
    w.reseal(before).unwrap();
    w.resign_with(signer_key);
    // With no edit the public inputs must be the native ones.
    let instances = (format!("{:?}", w.slots) == format!("{:?}", honest.slots))
        .then(|| exec.public_inputs.to_fields().to_vec());
    MockRun::new(K, 16).run(
        |ctx, range| ((), build_batch(ctx, range, &w)),
        None,
        instances,
    )
}

fn rule_failed(out: &MockOutcome<()>) -> bool {
    out.failures
        .contains(&collar_circuits::testing::Failure::Permutation)
}

#[test]
fn liquidations_prove_the_native_public_inputs() {
    let mut h = liquidatable();
    let before = h.state.clone();
    let short_victim = h.liquidate(4, 5, CALL, 4, 0);
    // 6 is insolvent and holds no long: the fund pays its deficit.
    let insolvent = h.liquidate(3, 6, CALL, 10, 0);
    // 7's long puts are sold to the liquidator at mark - penalty.
    let long_victim = h.liquidate(2, 7, PUT, 5, 1_000);
    let txs: Vec<Tx> = [short_victim, insolvent, long_victim]
        .into_iter()
        .map(|s| s.tx)
        .collect();
    let mut s = before.clone();
    batch::execute(&mut s, 5, &txs).unwrap();
    assert!(
        s.account(INSURANCE_FUND).unwrap().collateral
            < before.account(INSURANCE_FUND).unwrap().collateral
    );
    assert_eq!(s.account(7).unwrap().position(PUT), 0);
    let out = run(&before, &txs, |_| {});
    assert!(out.is_satisfied(), "{:?}", out.failures);
}

#[test]
fn settlements_prove_the_native_public_inputs() {
    let mut h = setup();
    // The first tick at or after expiry fixes the settlement price (spot 100_000: intrinsic
    // 5_000 per contract of the 95_000 call).
    let t = h.tick(1_000, &[(0, 100_000, vec![(CALL, 5_000), (PUT, 4_000)])]);
    h.accept(&t);
    assert_eq!(
        h.state.series()[SHORT_CALL as usize].settlement_price,
        100_000
    );
    let before = h.state.clone();
    // The short pays in first, then the long and the fund's own long settle.
    let txs: Vec<Tx> = [
        h.settle(3, SHORT_CALL),
        h.settle(2, SHORT_CALL),
        h.settle(INSURANCE_FUND, SHORT_CALL),
    ]
    .into_iter()
    .map(|s| s.tx)
    .collect();
    let out = run(&before, &txs, |_| {});
    assert!(out.is_satisfied(), "{:?}", out.failures);
}

#[test]
fn forged_liquidations_are_rejected() {
    let mut h = liquidatable();
    let txs = vec![h.liquidate(4, 5, CALL, 4, 0).tx];
    // The liquidator's nonce left unchanged.
    let bad = run(&h.state, &txs, |w| w.slots[0].ports[2].after.nonce -= 1);
    assert!(rule_failed(&bad), "{:?}", bad.failures);
    // The victim keeping one more contract of its short than the liquidation leaves.
    let bad = run(&h.state, &txs, |w| {
        let p = &mut w.slots[0].ports[0];
        let i = p.position_slot;
        p.after.positions[i].size -= 1;
    });
    assert!(rule_failed(&bad), "{:?}", bad.failures);
    // The same liquidation proven against the market before the price move, when account 5
    // was healthy (maintenance met): not liquidatable.
    let healthy = setup();
    assert!(!healthy.state.margin(5).unwrap().is_liquidatable());
    let bad = run(&h.state, &txs, |w| {
        let mut s = healthy.state.clone();
        w.header_before = s.header();
        w.series = healthy.state.series().to_vec();
        w.underlyings = healthy.state.underlyings().to_vec();
    });
    assert!(rule_failed(&bad), "{:?}", bad.failures);
}

#[test]
fn forged_settlements_are_rejected() {
    let mut h = setup();
    let t = h.tick(1_000, &[(0, 100_000, vec![(CALL, 5_000), (PUT, 4_000)])]);
    h.accept(&t);
    let txs = vec![h.settle(3, SHORT_CALL).tx, h.settle(2, SHORT_CALL).tx];
    let ok = run(&h.state, &txs, |_| {});
    assert!(ok.is_satisfied(), "{:?}", ok.failures);
    // The long credited one unit more than its intrinsic value.
    let bad = run(&h.state, &txs, |w| {
        w.slots[1].ports[0].after.collateral += 1
    });
    assert!(rule_failed(&bad), "{:?}", bad.failures);
    // The short's slot left open after it paid.
    let bad = run(&h.state, &txs, |w| {
        let p = &mut w.slots[0].ports[0];
        let i = p.position_slot;
        p.after.positions[i] = p.before.positions[i];
    });
    assert!(rule_failed(&bad), "{:?}", bad.failures);
    // Settling before the settlement price exists: the same witness on the pre-expiry market.
    let early = setup();
    let bad = run(&h.state, &txs, |w| {
        let mut s = early.state.clone();
        w.header_before = s.header();
        w.series = early.state.series().to_vec();
        w.underlyings = early.state.underlyings().to_vec();
    });
    assert!(rule_failed(&bad), "{:?}", bad.failures);
}

/// The fund liquidates an insolvent victim itself: it pays the deficit on its fund port and
/// takes the liquidator's leg on port 2 (the same account written twice).
#[test]
fn the_fund_as_liquidator_pays_the_deficit_then_takes_the_position() {
    let mut h = liquidatable();
    h.fund(INSURANCE_FUND, 2_000_000);
    let before = h.state.clone();
    let txs = vec![h.liquidate(INSURANCE_FUND, 6, CALL, 10, 0).tx];
    let mut s = before.clone();
    batch::execute(&mut s, 5, &txs).unwrap();
    assert_eq!(
        s.account(6).unwrap().collateral,
        0,
        "the victim paid all it had"
    );
    let out = run(&before, &txs, |_| {});
    assert!(out.is_satisfied(), "{:?}", out.failures);
}

/// The signed witness of `txs` executed on `before`.
fn witness_of(before: &State, txs: &[Tx]) -> BatchWitness {
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 5, txs).unwrap();
    let mut w = BatchWitness::new(before, &exec, CAPACITY).unwrap();
    w.resign_with(signer_key);
    w
}

/// The MockProver's failures on `w` with the public inputs the circuit computes itself (the
/// malicious prover's view: nothing pinned).
fn unpinned(w: &BatchWitness) -> MockOutcome<()> {
    MockRun::new(K, 16).run(|ctx, range| ((), build_batch(ctx, range, w)), None, None)
}

#[test]
fn a_liquidator_below_initial_margin_afterwards_is_rejected() {
    // Account 9 holds 1_000: taking 4 short calls from victim 5 leaves it far below initial
    // margin, so the protocol rejects the liquidation.
    let mut h = liquidatable();
    h.fund(9, 1_000);
    let poor = h.state.clone();
    let liq = h.liquidate(9, 5, CALL, 4, 0).tx;
    let mut native = poor.clone();
    assert!(matches!(
        native.apply(&liq),
        Err(collar_protocol::Rejection::InitialMarginViolated { .. })
    ));
    // The same liquidation by 9 after a deposit of 999_000 is accepted; its witness, moved back
    // onto the state without the deposit (every port of 9 carries 999_000 less), satisfies every
    // rule but rule 12.
    h.fund(9, 999_000);
    let mut w = witness_of(&h.state, std::slice::from_ref(&liq));
    assert!(unpinned(&w).is_satisfied(), "the funded liquidation proves");
    let mut poor_header = poor.clone();
    w.header_before = poor_header.header();
    for port in w.slots.iter_mut().flat_map(|s| s.ports.iter_mut()) {
        if port.account == 9 {
            port.after.collateral -= 999_000;
        }
    }
    w.reseal(&poor).unwrap();
    let bad = unpinned(&w);
    assert!(rule_failed(&bad), "{:?}", bad.failures);
}

#[test]
fn a_liquidation_while_the_breaker_pauses_liquidations_is_rejected() {
    let mut h = liquidatable();
    let liq = h.liquidate(4, 5, CALL, 4, 0).tx;
    let mut w = witness_of(&h.state, std::slice::from_ref(&liq));
    assert!(unpinned(&w).is_satisfied(), "the liquidation proves");
    // The underlying's breaker tripped until after the batch's time (§9): liquidations pause
    // (§7.4 rule 4); everything else about the witness is unchanged.
    let now = w.header_before.time;
    w.underlyings[0].tripped_until = now + 1_000;
    let bad = unpinned(&w);
    assert!(rule_failed(&bad), "{:?}", bad.failures);
    // The protocol agrees: the same state with the breaker tripped rejects the liquidation.
    let t = h.tick(
        now + 1,
        &[(
            0,
            200_000,
            vec![(CALL, 100_000), (PUT, 500), (SHORT_CALL, 100_000)],
        )],
    );
    h.accept(&t);
    let paused = h.liquidate(4, 5, CALL, 4, 0).tx;
    assert!(matches!(
        h.state.apply(&paused),
        Err(collar_protocol::Rejection::LiquidationsPaused(_))
    ));
}
