//! Oracle ticks in the batch circuit's tick lane (§7.6, §8, §9): a tick with disagreeing
//! reports, a breaker trip, staleness and settlement at expiry prove the native public inputs
//! (with trades and a settlement in the slots after it); forged tick witnesses (a median one
//! unit off, a report short of the quorum, a mark from an oracle that did not report, a mark
//! for an expired series or an unpriced underlying, a timestamp not after the state time, an
//! empty tick, a breaker end past 2^40, a spot past 2^48) fail, and so does each changed public
//! input of a tick batch.

use collar_circuits::batch::{build_batch, BatchWitness};
use collar_circuits::testing::{Failure, MockOutcome, MockRun};
use collar_protocol::batch;
use collar_protocol::state::tick_chain;
use collar_protocol::testkit::signer_key;
use collar_protocol::testkit::Harness;
use collar_protocol::tx::{OracleReport, OracleTick, SeriesMark, UnderlyingTick};
use collar_protocol::{OptionKind, ProtocolParams, State, Tx};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

const K: u32 = 18;
const STRIKE: u64 = 100_000;

/// Underlyings 0 and 1; call series 0 and put series 1 on underlying 0 expiring at 1_000, call
/// series 2 on underlying 1 expiring at 50; priced at t = 10; accounts 2 and 3 funded, and
/// account 2 long one series-2 call from account 3.
fn setup() -> Harness {
    let mut h = Harness::new(ProtocolParams::small(), 2);
    for (u, expiry, kind) in [
        (0, 1_000, OptionKind::Call),
        (0, 1_000, OptionKind::Put),
        (1, 50, OptionKind::Call),
    ] {
        let r = h.register(u, STRIKE, expiry, kind, 1);
        h.accept(&r);
    }
    let t = h.tick(
        10,
        &[
            (0, STRIKE, vec![(0, 5_000), (1, 4_000)]),
            (1, STRIKE, vec![(2, 3_000)]),
        ],
    );
    h.accept(&t);
    h.fund(2, 1_000_000);
    h.fund(3, 1_000_000);
    h.fill(2, 3, 2, 1, 3_000);
    h
}

/// One block: oracle `i` of `oracles` reports `spots[i]` and, for each series, `marks[k][i]`.
fn block(
    underlying: u32,
    timestamp: u64,
    oracles: &[u32],
    spots: &[u64],
    marks: &[(u32, Vec<u64>)],
) -> UnderlyingTick {
    UnderlyingTick {
        underlying,
        reports: oracles
            .iter()
            .zip(spots)
            .enumerate()
            .map(|(i, (&oracle, &spot))| OracleReport {
                oracle,
                underlying,
                timestamp,
                spot,
                marks: marks
                    .iter()
                    .map(|(series, v)| SeriesMark {
                        series: *series,
                        mark: v[i],
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn tick(h: &Harness, timestamp: u64, blocks: Vec<UnderlyingTick>) -> Tx {
    h.sign_tick(OracleTick {
        timestamp,
        underlyings: blocks,
    })
    .tx
}

/// Four oracles disagree on underlying 0 (lower median spot 101_000, marks 5_200 and 3_800);
/// underlying 1 is priced by three (median 130_000: a 30% move that trips its breaker, and
/// series 2 expired at 50 settles at 130_000).
fn disagreeing_tick(h: &Harness, timestamp: u64) -> Tx {
    tick(
        h,
        timestamp,
        vec![
            block(
                0,
                timestamp,
                &[0, 1, 2, 3],
                &[103_000, 99_000, 101_000, 140_000],
                &[
                    (0, vec![5_200, 5_100, 9_000, 5_300]),
                    (1, vec![3_900, 0, 4_100, 3_800]),
                ],
            ),
            block(1, timestamp, &[0, 2, 3], &[131_000, 129_000, 130_000], &[]),
        ],
    )
}

/// Executes `txs` on `before` into a witness with `capacity` slots, applies `edit`, and runs the
/// circuit against the native public inputs (or, when `edit` changed the witness, against the
/// circuit's own outputs, so that only constraint failures count).
fn run(
    before: &State,
    txs: &[Tx],
    capacity: usize,
    edit: impl FnOnce(&mut BatchWitness),
) -> MockOutcome<Vec<Fr>> {
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 3, txs).unwrap();
    let mut w = BatchWitness::new(before, &exec, capacity).unwrap();
    w.resign_with(signer_key);
    let honest = format!("{:?}", (&w.tick, &w.slots));
    edit(&mut w);
    // Forged reports are signed by their oracles, so only the rule under test can reject them.
    w.resign_with(signer_key);
    let instances = (format!("{:?}", (&w.tick, &w.slots)) == honest)
        .then(|| exec.public_inputs.to_fields().to_vec());
    MockRun::new(K, 16).run(
        |ctx, range| {
            let public = build_batch(ctx, range, &w);
            (public.iter().map(|c| *c.value()).collect(), public)
        },
        None,
        instances,
    )
}

/// A named forgery of a tick witness.
type Edit = Box<dyn Fn(&mut BatchWitness)>;

fn lane(w: &mut BatchWitness) -> &mut collar_circuits::batch::TickWitness {
    w.tick.as_mut().expect("the batch opens with a tick")
}

#[test]
fn a_tick_with_disagreeing_oracles_then_a_settlement_prove_the_native_public_inputs() {
    let mut h = setup();
    let before = h.state.clone();
    let t = disagreeing_tick(&h, 60);
    // Native reference: medians, the trip of underlying 1 and the settlement of series 2.
    let effects = h.state.apply(&t).unwrap();
    assert_eq!(effects.prices[0].spot, 101_000);
    assert_eq!(effects.prices[0].marks, vec![(0, 5_200), (1, 3_800)]);
    assert!(effects.prices[1].tripped && !effects.prices[0].tripped);
    assert_eq!(h.state.series()[2].settlement_price, 130_000);
    // After the tick, account 3 settles its expired short call in the same batch.
    let settle = h.settle(3, 2).tx;
    let out = run(&before, &[t.clone(), settle], 1, |_| {});
    assert!(out.is_satisfied(), "{:?}", out.failures);
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 3, std::slice::from_ref(&t)).unwrap();
    let expected = tick_chain(
        s.params(),
        Fr::zero(),
        60,
        &exec.witnesses[0].effects.prices,
    );
    assert_eq!(
        out.output[3], expected,
        "the tick commitment is public input 3"
    );
}

#[test]
fn a_stale_underlying_trips_and_a_tick_then_a_trade_prove_the_native_public_inputs() {
    let mut h = setup();
    // Underlying 0 is priced again at 400; underlying 1 last at 10.
    let t = h.tick(400, &[(0, STRIKE, vec![(0, 5_000), (1, 4_000)])]);
    h.accept(&t);
    let before = h.state.clone();
    // At 700 underlying 1 is 690 s old (stale_after 600): a 0.4% move still trips it, while
    // underlying 0 (300 s old) does not trip and trades on.
    let t = tick(
        &h,
        700,
        vec![
            block(0, 700, &[0, 1, 2], &[100_100, 100_000, 99_900], &[]),
            block(1, 700, &[1, 2, 3], &[100_500, 100_400, 100_600], &[]),
        ],
    );
    let trade = h.simple_trade(2, 3, 0, 1, 5_000).tx;
    let mut after = before.clone();
    let effects = after.apply(&t).unwrap();
    assert!(!effects.prices[0].tripped && effects.prices[1].tripped);
    let out = run(&before, &[t, trade], 1, |_| {});
    assert!(out.is_satisfied(), "{:?}", out.failures);
}

#[test]
fn breaker_boundaries_match_the_native_model() {
    let mut h = setup();
    // Underlying 0 priced again at 300 (underlying 1 last at 10); both at 100_000.
    let t = h.tick(300, &[(0, STRIKE, vec![])]);
    h.accept(&t);
    let before = h.state.clone();
    // At 610: a move of exactly max_move (20%) and an age of exactly stale_after (600) do not
    // trip; at 611, one unit more of each does.
    for (ts, spot0, trips) in [(610, 120_000, false), (611, 120_001, true)] {
        let t = tick(
            &h,
            ts,
            vec![
                block(0, ts, &[0, 1, 2], &[spot0; 3], &[]),
                block(1, ts, &[0, 1, 2], &[STRIKE; 3], &[]),
            ],
        );
        let effects = before.clone().apply(&t).unwrap();
        assert_eq!(
            effects.prices.iter().map(|p| p.tripped).collect::<Vec<_>>(),
            vec![trips, trips],
            "native trips at {ts}"
        );
        let out = run(&before, &[t], 1, |_| {});
        assert!(out.is_satisfied(), "{ts}: {:?}", out.failures);
    }
}

#[test]
fn every_public_input_of_a_tick_batch_is_bound() {
    let h = setup();
    let before = h.state.clone();
    let t = disagreeing_tick(&h, 60);
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 3, std::slice::from_ref(&t)).unwrap();
    let mut w = BatchWitness::new(&before, &exec, 1).unwrap();
    w.resign_with(signer_key);
    let honest = exec.public_inputs.to_fields().to_vec();
    for i in [1, 2, 3] {
        let mut tampered = honest.clone();
        tampered[i] += Fr::one();
        let out = MockRun::new(K, 16).run(
            |ctx, range| ((), build_batch(ctx, range, &w)),
            None,
            Some(tampered),
        );
        assert!(
            out.failures.contains(&Failure::Permutation),
            "input {i}: {:?}",
            out.failures
        );
    }
}

/// The forged tick fails a rule check: `(a - b)·sel` copy-constrained to 0, a permutation
/// failure.
fn rejected(o: &MockOutcome<Vec<Fr>>) -> bool {
    o.failures.contains(&Failure::Permutation)
}

/// The forged tick fails a range lookup.
fn out_of_range(o: &MockOutcome<Vec<Fr>>) -> bool {
    o.failures.iter().any(Failure::is_range_lookup)
}

#[test]
fn forged_medians_and_reports_are_rejected() {
    let h = setup();
    let before = h.state.clone();
    let txs = [disagreeing_tick(&h, 60)];
    let cases: Vec<(&str, Edit)> = vec![
        ("spot median + 1", Box::new(|w| lane(w).spot_median[0] += 1)),
        ("spot median - 1", Box::new(|w| lane(w).spot_median[0] -= 1)),
        (
            "spot median = the next report",
            Box::new(|w| lane(w).spot_median[0] = 103_000),
        ),
        ("mark median + 1", Box::new(|w| lane(w).mark_median[1] += 1)),
        (
            "a median for an unquoted series",
            Box::new(|w| lane(w).mark_median[3] = 1),
        ),
        (
            "a mark from an oracle that did not report",
            Box::new(|w| lane(w).layout.marks[2][1] = 7),
        ),
        (
            "a quote for an unregistered series",
            Box::new(|w| {
                let l = lane(w);
                l.layout.quoted[4] = 1;
                l.mark_median[4] = 0;
            }),
        ),
        (
            "a report short of the quorum (two oracles on underlying 1)",
            Box::new(|w| {
                let l = lane(w);
                l.layout.spots[1][3] = 0;
                l.spot_median[1] = 129_000;
            }),
        ),
        (
            "a timestamp not after the state time",
            Box::new(|w| lane(w).layout.timestamp = 10),
        ),
        (
            "an empty tick",
            Box::new(|w| {
                let idle = collar_circuits::batch::TickWitness::idle(&w.params);
                let l = lane(w);
                *l = idle;
                l.layout.timestamp = 60;
            }),
        ),
    ];
    for (name, edit) in cases {
        let out = run(&before, &txs, 1, |w| edit(w));
        assert!(rejected(&out), "{name}: {:?}", out.failures);
    }
    // Wrap-around: a spot of 2^48 fails the 48-bit range check; 2^48 - 1 is in range and, in
    // place of the highest report, leaves the median: a valid tick (for other public data).
    // (48 bits are three whole 16-bit limbs: the limbs of 2^48 do not recompose it, a copy
    // failure; widths that are not a multiple of the limb fail the lookup of the top limb).
    let out = run(&before, &txs, 1, |w| lane(w).layout.spots[0][3] = 1 << 48);
    assert!(
        rejected(&out) || out_of_range(&out),
        "spot 2^48: {:?}",
        out.failures
    );
    let out = run(&before, &txs, 1, |w| {
        lane(w).layout.spots[0][3] = (1 << 48) - 1
    });
    assert!(
        !out_of_range(&out) && out.is_satisfied(),
        "spot 2^48 - 1 above the median changes nothing: {:?}",
        out.failures
    );
}

#[test]
fn a_mark_for_an_expired_series_or_an_unpriced_underlying_is_rejected() {
    let h = setup();
    let before = h.state.clone();
    // A tick pricing only underlying 0.
    let t = tick(
        &h,
        60,
        vec![block(
            0,
            60,
            &[0, 1, 2],
            &[100_000; 3],
            &[(0, vec![5_000; 3])],
        )],
    );
    let txs = [t];
    // Series 2 (underlying 1, unpriced) gets a quote.
    let out = run(&before, &txs, 1, |w| {
        let l = lane(w);
        l.layout.quoted[2] = 2;
        l.mark_median[2] = 0;
    });
    assert!(rejected(&out), "unpriced: {:?}", out.failures);
    // Series 0 quoted at its expiry (1_000) is rejected; one second before, accepted.
    let out = run(&before, &txs, 1, |w| lane(w).layout.timestamp = 1_000);
    assert!(rejected(&out), "expired: {:?}", out.failures);
    let out = run(&before, &txs, 1, |w| lane(w).layout.timestamp = 999);
    assert!(out.is_satisfied(), "live at 999: {:?}", out.failures);
    // One second after the state time (10) is accepted; the state time itself is rejected
    // (`forged_medians_and_reports_are_rejected`).
    let out = run(&before, &txs, 1, |w| lane(w).layout.timestamp = 11);
    assert!(out.is_satisfied(), "timestamp 11: {:?}", out.failures);
}

#[test]
fn a_breaker_end_past_2_pow_40_is_rejected() {
    let h = setup();
    let before = h.state.clone();
    // Stale by far: trips, and timestamp + cooldown (300) passes 2^40.
    let t = tick(&h, 60, vec![block(0, 60, &[0, 1, 2], &[100_000; 3], &[])]);
    let out = run(&before, std::slice::from_ref(&t), 1, |w| {
        lane(w).layout.timestamp = (1 << 40) - 100;
    });
    assert!(out_of_range(&out), "{:?}", out.failures);
    // The largest end that fits: timestamp + 300 = 2^40 - 1.
    let out = run(&before, std::slice::from_ref(&t), 1, |w| {
        lane(w).layout.timestamp = (1 << 40) - 301;
    });
    assert!(out.is_satisfied(), "end 2^40 - 1: {:?}", out.failures);
}
