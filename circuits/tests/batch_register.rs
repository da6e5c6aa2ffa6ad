//! Series registration (§7.7) in the batch circuit: a registration followed by a trade in the
//! new series proves the native public inputs; forged registrations (a duplicate, an expiry in
//! the past, a full registry, a zero strike) are rejected.

use collar_circuits::batch::{build_batch, BatchWitness};
use collar_circuits::testing::{Failure, MockOutcome, MockRun};
use collar_protocol::batch;
use collar_protocol::market::Series;
use collar_protocol::testkit::signer_key;
use collar_protocol::testkit::Harness;
use collar_protocol::tx::RegisterSeries;
use collar_protocol::{OptionKind, ProtocolParams, State, Tx};

const K: u32 = 18;

/// One call registered and priced; accounts 2 and 3 funded.
fn setup() -> Harness {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let r = h.register(0, 100_000, 10_000, OptionKind::Call, 1);
    h.accept(&r);
    let t = h.tick(10, &[(0, 100_000, vec![(0, 5_000)])]);
    h.accept(&t);
    h.fund(2, 1_000_000);
    h.fund(3, 1_000_000);
    h
}

fn run(before: &State, txs: &[Tx], edit: impl FnOnce(&mut BatchWitness)) -> MockOutcome<()> {
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 2, txs).unwrap();
    let mut w = BatchWitness::new(before, &exec, 2).unwrap();
    w.resign_with(signer_key);
    let honest = format!("{:?}", w.slots);
    edit(&mut w);
    let instances =
        (format!("{:?}", w.slots) == honest).then(|| exec.public_inputs.to_fields().to_vec());
    MockRun::new(K, 16).run(
        |ctx, range| ((), build_batch(ctx, range, &w)),
        None,
        instances,
    )
}

fn registration(w: &mut BatchWitness) -> &mut RegisterSeries {
    match &mut w.slots[0].tx {
        Some(Tx::RegisterSeries(r)) => r,
        _ => panic!("slot 0 is not a registration"),
    }
}

#[test]
fn a_registration_and_a_trade_in_the_new_series_prove_the_native_public_inputs() {
    let mut h = setup();
    let before = h.state.clone();
    let r = h.register(0, 90_000, 8_000, OptionKind::Put, 2).tx;
    h.state.apply(&r).unwrap();
    // The new series (id 1) has no mark yet; it trades at any price within the limits.
    let t = h.simple_trade(2, 3, 1, 3, 1_500).tx;
    let out = run(&before, &[r, t], |_| {});
    assert!(out.is_satisfied(), "{:?}", out.failures);
}

#[test]
fn forged_registrations_are_rejected() {
    let h = setup();
    let r = h.register(0, 90_000, 8_000, OptionKind::Put, 2).tx;
    let txs = [r];
    let permutation = |o: &MockOutcome<()>| o.failures.contains(&Failure::Permutation);
    // The same terms as series 0.
    let bad = run(&h.state, &txs, |w| {
        let s0 = w.series[0];
        let r = registration(w);
        (r.underlying, r.strike, r.expiry, r.kind, r.contract_size) = (
            s0.underlying,
            s0.strike,
            s0.expiry,
            s0.kind,
            s0.contract_size,
        );
    });
    assert!(permutation(&bad), "{:?}", bad.failures);
    // An expiry at the current time.
    let now = h.state.time();
    let bad = run(&h.state, &txs, |w| registration(w).expiry = now);
    assert!(permutation(&bad), "{:?}", bad.failures);
    // A zero strike.
    let bad = run(&h.state, &txs, |w| registration(w).strike = 0);
    assert!(permutation(&bad), "{:?}", bad.failures);
    // A full registry (8 series in the small shape).
    let bad = run(&h.state, &txs, |w| {
        let s0: Series = w.series[0];
        w.series = (0..8)
            .map(|i| Series {
                strike: s0.strike + i,
                ..s0
            })
            .collect();
    });
    assert!(permutation(&bad), "{:?}", bad.failures);
}
