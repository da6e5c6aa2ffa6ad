//! Withdrawals in the batch circuit (§7.2): a mixed batch proves the native public inputs, and
//! forged withdrawals that break initial margin or a tripped breaker are rejected.

use collar_circuits::batch::{build_batch, BatchWitness};
use collar_circuits::testing::{MockOutcome, MockRun};
use collar_protocol::batch;
use collar_protocol::testkit::signer_key;
use collar_protocol::testkit::Harness;
use collar_protocol::{OptionKind, ProtocolParams, State, Tx};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

/// Account 3 is short 10 calls (margin-bound); account 4 holds no position.
fn setup() -> Harness {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let r = h.register(0, 100_000, 10_000, OptionKind::Call, 1);
    h.accept(&r);
    let t = h.tick(10, &[(0, 100_000, vec![(0, 5_000)])]);
    h.accept(&t);
    h.fund(2, 1_000_000);
    h.fund(3, 300_000);
    h.fund(4, 50_000);
    h.fill(2, 3, 0, 10, 5_000);
    h
}

fn prove(
    before: &State,
    txs: &[Tx],
    edit: impl FnOnce(&mut BatchWitness),
) -> (MockOutcome<()>, Vec<Fr>) {
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 9, txs).unwrap();
    let mut w = BatchWitness::new(before, &exec, 4).unwrap();
    edit(&mut w);
    w.reseal(before).unwrap();
    // A forged withdrawal is signed by its account, so only the rule under test rejects it.
    w.resign_with(signer_key);
    let out = MockRun::new(17, 16).run(|ctx, range| ((), build_batch(ctx, range, &w)), None, None);
    (out, exec.public_inputs.to_fields().to_vec())
}

#[test]
fn withdrawals_prove_the_native_public_inputs() {
    let mut h = setup();
    let before = h.state.clone();
    let txs: Vec<Tx> = [
        h.withdraw(3, 40_000),
        h.deposit(5, 77),
        h.withdraw(4, 50_000),
    ]
    .into_iter()
    .map(|s| s.tx)
    .collect();
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 9, &txs).unwrap();
    let mut w = BatchWitness::new(&before, &exec, 4).unwrap();
    w.resign_with(signer_key);
    let expected = exec.public_inputs.to_fields().to_vec();
    let out = MockRun::new(17, 16).run(
        |ctx, range| ((), build_batch(ctx, range, &w)),
        None,
        Some(expected),
    );
    assert!(out.is_satisfied(), "{:?}", out.failures);
}

/// Replaces slot 0's withdrawal amount and resulting collateral, keeping the witness otherwise
/// self-consistent; the circuit computes its own chains and roots from it.
fn forge_amount(w: &mut BatchWitness, amount: u64) {
    let slot = &mut w.slots[0];
    if let Some(Tx::Withdraw(x)) = &mut slot.tx {
        x.amount = amount;
    }
    slot.ports[0].after.collateral = slot.ports[0].before.collateral - amount;
}

#[test]
fn a_withdrawal_breaking_initial_margin_is_rejected() {
    let mut h = setup();
    let before = h.state.clone();
    let m = before.margin(3).unwrap();
    let headroom = (m.im_equity - m.initial) as u64;
    let txs = vec![h.withdraw(3, headroom).tx];
    // At the boundary the native rules accept and the circuit is satisfied.
    let (ok, _) = prove(&before, &txs, |_| {});
    assert!(ok.is_satisfied(), "{:?}", ok.failures);
    // One unit more breaks initial margin: the circuit rejects the forged witness.
    let (bad, _) = prove(&before, &txs, |w| forge_amount(w, headroom + 1));
    assert!(!bad.is_satisfied());
}

#[test]
fn a_withdrawal_while_the_breaker_is_tripped_is_rejected() {
    let mut h = setup();
    let before_trip = h.state.clone();
    let txs = vec![h.withdraw(2, 1_000).tx];
    let (ok, _) = prove(&before_trip, &txs, |_| {});
    assert!(ok.is_satisfied(), "{:?}", ok.failures);
    // A 25% move trips the breaker; natively account 2 (long calls) may not withdraw now.
    let t = h.tick(20, &[(0, 125_000, vec![(0, 26_000)])]);
    h.accept(&t);
    let w = h.withdraw(2, 1_000);
    assert!(h.state.check(&w.tx).is_err());
    // Forge it: take the witness of the same withdrawal on the untripped state and graft the
    // tripped market and header in. The circuit must refuse.
    let tripped = h.state.clone();
    let (bad, _) = prove(&before_trip, &txs, |w| {
        let mut t = tripped.clone();
        w.header_before = t.header();
        w.underlyings = tripped.underlyings().to_vec();
        w.series = tripped.series().to_vec();
    });
    assert!(!bad.is_satisfied());
}
