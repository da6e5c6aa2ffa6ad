//! Authorisation in the batch circuit (§6.3, §6.5): the proof verifies the signature of every
//! buy and sell order, withdrawal, liquidation order and oracle report, with account keys from
//! the leaves under the old root and oracle keys from the registry. A signed field changed without its signer's signature, a signature by another account,
//! a missing signature and a replayed withdrawal are each rejected, for oracle reports too; the honest batch (the same
//! witness, signed) is accepted, so only the signature or the nonce can be what rejects. Every
//! case runs on both signature paths (basic gate and msm chip), which must agree.

use collar_circuits::batch::{build_batch, BatchCircuitError, BatchWitness};
use collar_circuits::poseidon::Hashing;
use collar_circuits::schnorr::SignatureWitness;
use collar_circuits::testing::{Failure, MockOutcome, MockRun};
use collar_protocol::batch;
use collar_protocol::testkit::{account_key, sign_with_test_keys, signer_key, Harness};
use collar_protocol::tx::{Side, Signer};
use collar_protocol::{OptionKind, ProtocolParams, SignedTx, State, Tx, FEE_ACCOUNT};

const K: u32 = 17;
const CAPACITY: usize = 2;

/// A call series priced by a tick; accounts 2–5 funded.
fn setup() -> Harness {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let r = h.register(0, 100_000, 10_000, OptionKind::Call, 1);
    h.accept(&r);
    let t = h.tick(10, &[(0, 100_000, vec![(0, 5_000)])]);
    h.accept(&t);
    h.fund(FEE_ACCOUNT, 10_000);
    for a in 2..=5 {
        h.fund(a, 500_000);
    }
    h
}

/// The witness of `stxs` on `before` (executed signed), edited by `edit`, then mock-proved.
fn run(before: &State, stxs: &[SignedTx], edit: impl FnOnce(&mut BatchWitness)) -> MockOutcome<()> {
    let mut s = before.clone();
    let exec = batch::execute_signed(&mut s, 4, stxs).unwrap();
    let mut w = BatchWitness::new(before, &exec, CAPACITY).unwrap();
    w.check_signed().unwrap();
    edit(&mut w);
    // The same witness on both signature paths: the basic gate (`Pow5`) and the msm chip
    // (`Pow5Msm`) must accept and reject alike.
    let [basic, chip] = [Hashing::Pow5, Hashing::Pow5Msm].map(|hashing| {
        MockRun::new(K, 16).with_hashing(hashing).run(
            |ctx, range| ((), build_batch(ctx, range, &w)),
            None,
            None,
        )
    });
    assert_eq!(
        basic.failures, chip.failures,
        "the two signature paths disagree"
    );
    chip
}

fn trade(h: &mut Harness) -> SignedTx {
    let b = h.order(2, 0, Side::Buy, 6_000, 5);
    let s = h.order(3, 0, Side::Sell, 5_000, 5);
    h.trade(b, s, 2, 5_500)
}

/// Failures of a signature check only: the final `s·G = R + e·PK` equality is a copy constraint.
fn signature_failed(out: &MockOutcome<()>) -> bool {
    !out.failures.is_empty() && out.failures.iter().all(|f| *f == Failure::Permutation)
}

#[test]
fn the_users_signatures_from_the_batch_verify() {
    let mut h = setup();
    let before = h.state.clone();
    let stxs = [trade(&mut h), h.withdraw(4, 1_000)];
    let out = run(&before, &stxs, |_| {});
    assert!(out.is_satisfied(), "{:?}", out.failures);
}

#[test]
fn a_signed_field_changed_without_its_signer_is_rejected() {
    let mut h = setup();
    let before = h.state.clone();
    let stxs = [trade(&mut h)];
    // Raise the buy order's size cap: every rule still holds (the fill stays below both caps),
    // but the buyer never signed it.
    let forge = |w: &mut BatchWitness| {
        if let Some(Tx::Trade(t)) = &mut w.slots[0].tx {
            t.buy.max_size += 1;
        }
    };
    let unsigned = run(&before, &stxs, forge);
    assert!(signature_failed(&unsigned), "{:?}", unsigned.failures);
    // The same forged order, signed by the buyer, is accepted: the signature was the only
    // thing rejecting it.
    let signed = run(&before, &stxs, |w| {
        forge(w);
        w.resign_with(signer_key);
    });
    assert!(signed.is_satisfied(), "{:?}", signed.failures);
}

#[test]
fn a_signature_by_another_account_is_rejected() {
    let mut h = setup();
    let before = h.state.clone();
    let stxs = [trade(&mut h), h.withdraw(4, 1_000)];
    let chain_id = before.params().chain_id;
    // Account 5 signs the buy order's exact message; then the withdrawal's.
    for (slot, lane) in [(0usize, 0usize), (0, 1), (1, 0)] {
        let out = run(&before, &stxs, |w| {
            let tx = w.slots[slot].tx.clone().unwrap();
            let m = tx.signed_messages(chain_id)[lane].1;
            w.slots[slot].signatures[lane] = SignatureWitness::from(&account_key(5).sign(m));
        });
        assert!(
            signature_failed(&out),
            "slot {slot} lane {lane}: {:?}",
            out.failures
        );
    }
}

#[test]
fn a_liquidation_order_is_signed_by_the_liquidator() {
    // The liquidation batches of `batch_liquidate` prove with the liquidator's signature; here
    // the victim's signature on the same order is refused.
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let r = h.register(0, 100_000, 10_000, OptionKind::Call, 1);
    h.accept(&r);
    let t = h.tick(10, &[(0, 100_000, vec![(0, 5_000)])]);
    h.accept(&t);
    h.fund(2, 1_000_000);
    h.fund(4, 1_000_000);
    h.fund(5, 150_150);
    h.fill(2, 5, 0, 10, 5_000);
    // Spot +19% (no breaker trip), call mark 25_000: account 5 is below maintenance.
    let t = h.tick(20, &[(0, 119_000, vec![(0, 25_000)])]);
    h.accept(&t);
    assert!(h.state.margin(5).unwrap().is_liquidatable());
    let before = h.state.clone();
    let liq = h.liquidate(4, 5, 0, 4, 0);
    let ok = run(&before, std::slice::from_ref(&liq), |_| {});
    assert!(ok.is_satisfied(), "{:?}", ok.failures);
    let chain_id = before.params().chain_id;
    let out = run(&before, &[liq], |w| {
        let m = w.slots[0].tx.as_ref().unwrap().signed_messages(chain_id)[0].1;
        w.slots[0].signatures[0] = SignatureWitness::from(&account_key(5).sign(m));
    });
    assert!(signature_failed(&out), "{:?}", out.failures);
}

#[test]
fn a_batch_executed_unsigned_is_a_typed_error() {
    let mut h = setup();
    let before = h.state.clone();
    let tx = trade(&mut h).tx;
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 4, std::slice::from_ref(&tx)).unwrap();
    let w = BatchWitness::new(&before, &exec, CAPACITY).unwrap();
    assert_eq!(
        w.check_signed(),
        Err(BatchCircuitError::MissingSignatures(0))
    );
    // Proving it anyway fails the circuit: an empty lane verifies the idle stand-in against
    // the buyer's key.
    let out = MockRun::new(K, 16).run(|ctx, range| ((), build_batch(ctx, range, &w)), None, None);
    assert!(signature_failed(&out), "{:?}", out.failures);
    // Executed signed, the signatures travel with the batch.
    let stx = sign_with_test_keys(tx, before.params().chain_id);
    let mut s = before.clone();
    let exec = batch::execute_signed(&mut s, 4, &[stx]).unwrap();
    assert_eq!(exec.signatures[0].len(), 2);
    BatchWitness::new(&before, &exec, CAPACITY)
        .unwrap()
        .check_signed()
        .unwrap();
}

#[test]
fn a_replayed_withdrawal_is_rejected_by_its_nonce() {
    let mut h = setup();
    let before = h.state.clone();
    let wd = h.withdraw(4, 1_000);
    // Natively the replay is refused.
    let mut s = before.clone();
    assert!(batch::execute_signed(&mut s, 4, &[wd.clone(), wd.clone()]).is_err());
    // The operator replays the signed withdrawal in the padding slot, with a consistent write.
    let out = run(&before, std::slice::from_ref(&wd), |w| {
        let mut again = w.slots[0].clone();
        let mut after = again.ports[0].after.clone();
        after.collateral -= 1_000;
        after.nonce += 1;
        again.ports[0].after = after;
        w.slots[1].tx = again.tx.clone();
        w.slots[1].signatures = again.signatures.clone();
        w.slots[1].ports[0].account = again.ports[0].account;
        w.slots[1].ports[0].after = again.ports[0].after.clone();
        w.reseal(&before).unwrap();
    });
    assert!(!out.is_satisfied());
    assert!(
        out.failures.contains(&Failure::Permutation),
        "{:?}",
        out.failures
    );
    // The signature is the account's own: the same second withdrawal with the next nonce,
    // signed, is accepted, so the nonce rule is what rejected the replay.
    let fresh = run(&before, std::slice::from_ref(&wd), |w| {
        let mut again = w.slots[0].clone();
        if let Some(Tx::Withdraw(x)) = &mut again.tx {
            x.nonce += 1;
        }
        let mut after = again.ports[0].after.clone();
        after.collateral -= 1_000;
        after.nonce += 1;
        w.slots[1].tx = again.tx.clone();
        w.slots[1].ports[0].account = again.ports[0].account;
        w.slots[1].ports[0].after = after;
        w.reseal(&before).unwrap();
        w.resign_with(signer_key);
    });
    assert!(fresh.is_satisfied(), "{:?}", fresh.failures);
}

#[test]
fn an_oracle_report_is_signed_by_its_oracle() {
    let h = setup();
    let before = h.state.clone();
    let tick = h.tick(20, &[(0, 100_000, vec![(0, 5_100)])]);
    let ok = run(&before, std::slice::from_ref(&tick), |_| {});
    assert!(ok.is_satisfied(), "{:?}", ok.failures);
    let chain_id = before.params().chain_id;
    // Oracle 1's spot moved by one unit: the median (all others agree) and every rule still
    // hold, but oracle 1 never signed it.
    let forge = |w: &mut BatchWitness| {
        w.tick.as_mut().unwrap().layout.spots[0][1] += 1;
    };
    let unsigned = run(&before, std::slice::from_ref(&tick), forge);
    assert!(signature_failed(&unsigned), "{:?}", unsigned.failures);
    let signed = run(&before, std::slice::from_ref(&tick), |w| {
        forge(w);
        w.resign_with(signer_key);
    });
    assert!(signed.is_satisfied(), "{:?}", signed.failures);
    // Oracle 2 signs oracle 1's exact report.
    let out = run(&before, std::slice::from_ref(&tick), |w| {
        let t = w.tick.as_mut().unwrap();
        let m = t.report(0, 1).unwrap().message(chain_id);
        t.signatures[0][1] = Some(SignatureWitness::from(
            &signer_key(&Signer::Oracle(2)).sign(m),
        ));
    });
    assert!(signature_failed(&out), "{:?}", out.failures);
    // A report without its signature is a typed error before proving.
    let mut s = before.clone();
    let exec = batch::execute_signed(&mut s, 4, std::slice::from_ref(&tick)).unwrap();
    let mut w = BatchWitness::new(&before, &exec, CAPACITY).unwrap();
    w.check_signed().unwrap();
    w.tick.as_mut().unwrap().signatures[0][1] = None;
    assert_eq!(
        w.check_signed(),
        Err(BatchCircuitError::MissingSignatures(0))
    );
}
