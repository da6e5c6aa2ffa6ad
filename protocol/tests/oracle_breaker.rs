//! Oracle ticks (§8: quorum, lower median, report validation), circuit breakers (§9: large
//! moves, staleness, cooldown) and expiry settlement prices.

use collar_protocol::signature::SignatureError;
use collar_protocol::testkit::{oracle_key, Harness, TickPrices};
use collar_protocol::tx::{OracleReport, OracleTick, SeriesMark, UnderlyingTick};
use collar_protocol::{Effects, OptionKind, ProtocolParams, Rejection, SignedTx, Tx};

/// The chain id of the small test parameters (the default).
const CHAIN_ID: u64 = 1;

const K: u64 = 100_000;
const FUNDS: u64 = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn report(
    oracle: u32,
    underlying: u32,
    timestamp: u64,
    spot: u64,
    marks: &[(u32, u64)],
) -> OracleReport {
    OracleReport {
        oracle,
        underlying,
        timestamp,
        spot,
        marks: marks
            .iter()
            .map(|&(series, mark)| SeriesMark { series, mark })
            .collect(),
    }
}

/// Oracles 0, 1, 2 reporting the same prices.
fn quorum(underlying: u32, timestamp: u64, spot: u64, marks: &[(u32, u64)]) -> UnderlyingTick {
    UnderlyingTick {
        underlying,
        reports: (0..3)
            .map(|o| report(o, underlying, timestamp, spot, marks))
            .collect(),
    }
}

fn signed(h: &Harness, timestamp: u64, underlyings: Vec<UnderlyingTick>) -> SignedTx {
    h.sign_tick(OracleTick {
        timestamp,
        underlyings,
    })
}

fn tick(h: &mut Harness, t: u64, prices: &[TickPrices]) -> Effects {
    let stx = h.tick(t, prices);
    h.accept(&stx)
}

/// Call series 0 (K = 100_000, expiry 100_000) and put series 1 on underlying 0, and call
/// series 2 on underlying 1 (when there are two); a first tick at t = 10.
fn setup(underlyings: usize) -> Harness {
    let mut h = Harness::new(ProtocolParams::small(), underlyings);
    let r = h.register(0, K, 100_000, OptionKind::Call, 1);
    h.accept(&r);
    let r = h.register(0, K, 100_000, OptionKind::Put, 1);
    h.accept(&r);
    let mut prices = vec![(0, K, vec![(0, 5_000), (1, 4_000)])];
    if underlyings > 1 {
        let r = h.register(1, 50_000, 100_000, OptionKind::Call, 1);
        h.accept(&r);
        prices.push((1, 50_000, vec![(2, 2_000)]));
    }
    tick(&mut h, 10, &prices);
    h
}

// ---------------------------------------------------------------------------------------------
// Quorum medians
// ---------------------------------------------------------------------------------------------

#[test]
fn lower_median_of_four_reports() {
    let mut h = setup(1);
    let ts = 20;
    let spots = [100_000, 118_000, 90_000, 110_000]; // sorted: 90, 100, 110, 118 (thousands)
    let call_marks = [7_000, 5_000, 3_000, 6_000]; // sorted: 3, 5, 6, 7
    let put_marks = [1, 4, 2, 3]; // sorted: 1, 2, 3, 4
    let reports = (0..4)
        .map(|i| {
            report(
                i as u32,
                0,
                ts,
                spots[i],
                &[(0, call_marks[i]), (1, put_marks[i])],
            )
        })
        .collect();
    let stx = signed(
        &h,
        ts,
        vec![UnderlyingTick {
            underlying: 0,
            reports,
        }],
    );
    let e = h.accept(&stx);
    // Element (n-1)/2 = 1 of the sorted values: the lower median.
    assert_eq!(h.state.underlyings()[0].spot, 100_000);
    assert_eq!(h.state.underlyings()[0].last_update, ts);
    assert_eq!(h.state.series()[0].mark, 5_000);
    assert_eq!(h.state.series()[1].mark, 2);
    assert_eq!(h.state.time(), ts);
    assert_eq!(e.prices.len(), 1);
    assert_eq!(e.prices[0].spot, 100_000);
    assert_eq!(e.prices[0].marks, vec![(0, 5_000), (1, 2)]);
    assert!(!e.prices[0].tripped);
}

#[test]
fn median_of_three_reports_ignores_an_outlier() {
    let mut h = setup(1);
    let stx = signed(
        &h,
        20,
        vec![UnderlyingTick {
            underlying: 0,
            reports: vec![
                report(0, 0, 20, 110_000, &[(0, 9_000)]),
                report(1, 0, 20, 90_000, &[(0, 1_000)]),
                report(2, 0, 20, 100_000, &[(0, 5_500)]),
            ],
        }],
    );
    h.accept(&stx);
    assert_eq!(h.state.underlyings()[0].spot, 100_000);
    assert_eq!(h.state.series()[0].mark, 5_500);
    // A quoted series keeps its mark only if quoted: the put was not, so it is unchanged.
    assert_eq!(h.state.series()[1].mark, 4_000);

    // One wild report (250_000) among three: the median (101_000) is a 1% move, no trip.
    let stx = signed(
        &h,
        30,
        vec![UnderlyingTick {
            underlying: 0,
            reports: vec![
                report(1, 0, 30, 250_000, &[]),
                report(2, 0, 30, 101_000, &[]),
                report(3, 0, 30, 99_000, &[]),
            ],
        }],
    );
    let e = h.accept(&stx);
    assert_eq!(h.state.underlyings()[0].spot, 101_000);
    assert!(!e.prices[0].tripped);
    assert_eq!(h.state.underlyings()[0].tripped_until, 0);
}

#[test]
fn two_underlyings_in_one_tick() {
    let mut h = setup(2);
    let stx = signed(
        &h,
        20,
        vec![
            quorum(0, 20, 101_000, &[(1, 3_000)]),
            quorum(1, 20, 51_000, &[(2, 2_500)]),
        ],
    );
    let e = h.accept(&stx);
    assert_eq!(e.prices.len(), 2);
    assert_eq!(h.state.underlyings()[0].spot, 101_000);
    assert_eq!(h.state.underlyings()[1].spot, 51_000);
    assert_eq!(h.state.series()[1].mark, 3_000);
    assert_eq!(h.state.series()[2].mark, 2_500);
    assert_eq!(h.state.series()[0].mark, 5_000);
}

// ---------------------------------------------------------------------------------------------
// Malformed ticks
// ---------------------------------------------------------------------------------------------

#[test]
fn duplicate_signer_rejected() {
    let mut h = setup(1);
    let mut ut = quorum(0, 20, K, &[]);
    ut.reports[2].oracle = 1;
    let stx = signed(&h, 20, vec![ut]);
    assert_eq!(
        h.reject(&stx),
        Rejection::BadTick("signers must be strictly ascending (no duplicates)")
    );
    // Four reports, one of them a repeat, still do not make a quorum of distinct signers.
    let mut ut = quorum(0, 20, K, &[]);
    ut.reports.push(report(2, 0, 20, K, &[]));
    let stx = signed(&h, 20, vec![ut]);
    assert_eq!(
        h.reject(&stx),
        Rejection::BadTick("signers must be strictly ascending (no duplicates)")
    );
}

#[test]
fn unsorted_signers_rejected() {
    let mut h = setup(1);
    let mut ut = quorum(0, 20, K, &[]);
    ut.reports.reverse(); // 2, 1, 0
    let stx = signed(&h, 20, vec![ut]);
    assert_eq!(
        h.reject(&stx),
        Rejection::BadTick("signers must be strictly ascending (no duplicates)")
    );
}

#[test]
fn unregistered_oracle_rejected() {
    let mut h = setup(1);
    // small params: oracles 0..=3 are registered.
    let ut = UnderlyingTick {
        underlying: 0,
        reports: vec![
            report(1, 0, 20, K, &[]),
            report(2, 0, 20, K, &[]),
            report(4, 0, 20, K, &[]),
        ],
    };
    let stx = signed(&h, 20, vec![ut]);
    assert_eq!(h.reject(&stx), Rejection::UnregisteredOracle(4));
    // The highest registered index is fine.
    let ut = UnderlyingTick {
        underlying: 0,
        reports: vec![
            report(1, 0, 20, K, &[]),
            report(2, 0, 20, K, &[]),
            report(3, 0, 20, K, &[]),
        ],
    };
    let stx = signed(&h, 20, vec![ut]);
    h.accept(&stx);
}

#[test]
fn fewer_than_quorum_rejected() {
    let mut h = setup(1);
    let mut ut = quorum(0, 20, K, &[]);
    ut.reports.pop();
    let stx = signed(&h, 20, vec![ut]);
    assert_eq!(
        h.reject(&stx),
        Rejection::BadTick("fewer reports than the quorum")
    );
    let stx = signed(
        &h,
        20,
        vec![UnderlyingTick {
            underlying: 0,
            reports: vec![],
        }],
    );
    assert_eq!(
        h.reject(&stx),
        Rejection::BadTick("fewer reports than the quorum")
    );
}

#[test]
fn report_with_other_timestamp_or_underlying_rejected() {
    let mut h = setup(2);
    let msg = Rejection::BadTick("report underlying or time differs from the tick");
    let mut ut = quorum(0, 20, K, &[]);
    ut.reports[1].timestamp = 19;
    let stx = signed(&h, 20, vec![ut]);
    assert_eq!(h.reject(&stx), msg);
    // Every report at another time than the tick.
    let ut = quorum(0, 21, K, &[]);
    let stx = signed(&h, 20, vec![ut]);
    assert_eq!(h.reject(&stx), msg);
    let mut ut = quorum(0, 20, K, &[]);
    ut.reports[0].underlying = 1;
    let stx = signed(&h, 20, vec![ut]);
    assert_eq!(h.reject(&stx), msg);
    // Underlying 1's reports filed under underlying 0.
    let mut ut = quorum(1, 20, 50_000, &[]);
    ut.underlying = 0;
    let stx = signed(&h, 20, vec![ut]);
    assert_eq!(h.reject(&stx), msg);
}

#[test]
fn reports_quoting_different_series_rejected() {
    let mut h = setup(1);
    let msg = Rejection::BadTick("reports must quote the same series");
    let mut ut = quorum(0, 20, K, &[(0, 5_000)]);
    ut.reports[2].marks[0].series = 1;
    let stx = signed(&h, 20, vec![ut]);
    assert_eq!(h.reject(&stx), msg);
    let mut ut = quorum(0, 20, K, &[(0, 5_000), (1, 4_000)]);
    ut.reports[1].marks.pop();
    let stx = signed(&h, 20, vec![ut]);
    assert_eq!(h.reject(&stx), msg);
    let mut ut = quorum(0, 20, K, &[]);
    ut.reports[1].marks.push(SeriesMark { series: 0, mark: 1 });
    let stx = signed(&h, 20, vec![ut]);
    assert_eq!(h.reject(&stx), msg);
}

#[test]
fn marks_out_of_order_rejected() {
    let mut h = setup(1);
    let stx = signed(&h, 20, vec![quorum(0, 20, K, &[(1, 1), (0, 1)])]);
    assert_eq!(
        h.reject(&stx),
        Rejection::BadTick("marks must be by strictly ascending series")
    );
}

#[test]
fn mark_for_expired_series_rejected() {
    let mut h = setup(1);
    let r = h.register(0, K, 500, OptionKind::Call, 2); // series 2, expiry 500
    h.accept(&r);
    tick(&mut h, 499, &[(0, K, vec![(2, 7_000)])]);
    assert_eq!(h.state.series()[2].mark, 7_000);
    // At the expiry time the series no longer takes marks.
    let stx = h.tick(500, &[(0, K, vec![(2, 7_000)])]);
    assert_eq!(h.reject(&stx), Rejection::SeriesExpired(2));
    let stx = h.tick(600, &[(0, K, vec![(0, 5_000), (2, 7_000)])]);
    assert_eq!(h.reject(&stx), Rejection::SeriesExpired(2));
    // Without that mark the tick settles it.
    tick(&mut h, 500, &[(0, K, vec![(0, 5_000)])]);
    assert_eq!(h.state.series()[2].settlement_price, K);
}

#[test]
fn mark_for_series_of_another_underlying_rejected() {
    let mut h = setup(2);
    // Series 2 is on underlying 1.
    let stx = signed(&h, 20, vec![quorum(0, 20, K, &[(2, 1_000)])]);
    assert_eq!(
        h.reject(&stx),
        Rejection::BadTick("mark quoted for a series of another underlying")
    );
    let stx = signed(&h, 20, vec![quorum(1, 20, 50_000, &[(0, 1_000)])]);
    assert_eq!(
        h.reject(&stx),
        Rejection::BadTick("mark quoted for a series of another underlying")
    );
}

#[test]
fn bad_oracle_signature_rejected() {
    let mut h = setup(1);
    // Tampered after signing.
    let mut stx = h.tick(20, &[(0, K, vec![(0, 5_000)])]);
    if let Tx::OracleTick(t) = &mut stx.tx {
        t.underlyings[0].reports[1].marks[0].mark = 50_000;
    }
    match h.reject(&stx) {
        Rejection::BadSignature { signer, source } => {
            assert_eq!(signer, "oracle 1");
            assert_eq!(source, SignatureError::Mismatch);
        }
        other => panic!("expected BadSignature, got {other:?}"),
    }
    // Signed by the wrong oracle.
    let t = OracleTick {
        timestamp: 20,
        underlyings: vec![quorum(0, 20, K, &[])],
    };
    let (k0, k1, k3) = (oracle_key(0), oracle_key(1), oracle_key(3));
    let stx = Tx::OracleTick(t.clone()).sign(CHAIN_ID, &[&k0, &k1, &k3]);
    assert!(matches!(
        h.reject(&stx),
        Rejection::BadSignature {
            source: SignatureError::Mismatch,
            ..
        }
    ));
    // Signatures in the wrong order.
    let k2 = oracle_key(2);
    let stx = Tx::OracleTick(t.clone()).sign(CHAIN_ID, &[&k1, &k0, &k2]);
    assert!(matches!(h.reject(&stx), Rejection::BadSignature { .. }));
    // A missing signature.
    let mut stx = Tx::OracleTick(t).sign(CHAIN_ID, &[&k0, &k1, &k2]);
    stx.signatures.pop();
    assert!(matches!(h.reject(&stx), Rejection::BadSignature { .. }));
}

#[test]
fn stale_or_repeated_timestamp_rejected() {
    let mut h = setup(1);
    let stx = h.tick(10, &[(0, K, vec![])]);
    assert_eq!(
        h.reject(&stx),
        Rejection::StaleTimestamp {
            previous: 10,
            got: 10
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Breaker: a big move
// ---------------------------------------------------------------------------------------------

/// On [`setup`]`(n)`: accounts 2, 3, 4, 6 hold 1_000_000; 5 holds exactly the initial margin
/// of its 10-lot short call sold to 2 (collateral 200_000); 3 is short 10 calls to 2 as well, so
/// 2 is long 20.
fn setup_positions(n: usize) -> Harness {
    let mut h = setup(n);
    for a in [2, 3, 4, 6] {
        h.fund(a, FUNDS);
    }
    h.fund(5, 150_150);
    h.fill(2, 5, 0, 10, 5_000);
    h.fill(2, 3, 0, 10, 5_000);
    h
}

#[test]
fn breaker_trips_pauses_and_recovers_after_cooldown() {
    let mut h = setup_positions(1);
    // A 30% move trips the breaker for cooldown_secs = 300.
    let e = tick(&mut h, 100, &[(0, 130_000, vec![(0, 30_000)])]);
    assert!(e.prices[0].tripped);
    assert_eq!(h.state.underlyings()[0].tripped_until, 400);
    assert_eq!(h.state.underlyings()[0].spot, 130_000);
    assert_eq!(h.state.series()[0].mark, 30_000);
    assert!(h.state.margin(5).unwrap().is_liquidatable());

    // Liquidations paused.
    let l = h.liquidate(4, 5, 0, 1, 0);
    assert_eq!(h.reject(&l), Rejection::LiquidationsPaused(0));
    // Risk-increasing trades refused: both sides new...
    let t = h.simple_trade(6, 4, 0, 1, 30_000);
    assert_eq!(h.reject(&t), Rejection::BreakerTripped(0));
    // ...buyer reduces but seller opens a short...
    let t = h.simple_trade(3, 4, 0, 1, 30_000);
    assert_eq!(h.reject(&t), Rejection::BreakerTripped(0));
    // ...seller reduces a long but buyer opens one.
    let t = h.simple_trade(6, 2, 0, 1, 30_000);
    assert_eq!(h.reject(&t), Rejection::BreakerTripped(0));
    // The put on the same underlying is halted as well.
    let t = h.simple_trade(6, 4, 1, 1, 100);
    assert_eq!(h.reject(&t), Rejection::BreakerTripped(0));
    // A trade where both sides reduce is accepted.
    h.fill(3, 2, 0, 5, 30_000);
    assert_eq!(h.state.account(3).unwrap().position(0), -5);
    assert_eq!(h.state.account(2).unwrap().position(0), 15);
    // A buy that flips a short into a long is not a reduction.
    let t = h.simple_trade(3, 2, 0, 6, 30_000);
    assert_eq!(h.reject(&t), Rejection::BreakerTripped(0));
    // Closing to exactly zero is.
    h.fill(3, 2, 0, 5, 30_000);
    assert_eq!(h.state.account(3).unwrap().position(0), 0);

    // Deposits and withdrawals are not gated by the breaker (§9).
    h.fund(6, 10);
    let w = h.withdraw(6, 10);
    h.accept(&w);

    // A small-move tick inside the cooldown: no new trip, still halted.
    let e = tick(&mut h, 399, &[(0, 131_000, vec![(0, 30_000)])]);
    assert!(!e.prices[0].tripped);
    assert_eq!(h.state.underlyings()[0].tripped_until, 400);
    let l = h.liquidate(4, 5, 0, 1, 0);
    assert_eq!(h.reject(&l), Rejection::LiquidationsPaused(0));
    let t = h.simple_trade(6, 4, 0, 1, 30_000);
    assert_eq!(h.reject(&t), Rejection::BreakerTripped(0));

    // At tripped_until the cooldown is over.
    let e = tick(&mut h, 400, &[(0, 131_000, vec![(0, 30_000)])]);
    assert!(!e.prices[0].tripped);
    assert!(!h.state.underlyings()[0].is_halted(400));
    let l = h.liquidate(4, 5, 0, 1, 0);
    h.accept(&l);
    assert_eq!(h.state.account(5).unwrap().position(0), -9);
    h.fill(6, 4, 0, 1, 30_000);
    assert_eq!(h.state.account(6).unwrap().position(0), 1);
}

#[test]
fn a_new_big_move_during_cooldown_extends_it() {
    let mut h = setup_positions(1);
    tick(&mut h, 100, &[(0, 130_000, vec![])]);
    assert_eq!(h.state.underlyings()[0].tripped_until, 400);
    let e = tick(&mut h, 350, &[(0, 100_000, vec![])]); // -23%
    assert!(e.prices[0].tripped);
    assert_eq!(h.state.underlyings()[0].tripped_until, 650);
    tick(&mut h, 400, &[(0, 100_000, vec![])]);
    let t = h.simple_trade(6, 4, 0, 1, 5_000);
    assert_eq!(h.reject(&t), Rejection::BreakerTripped(0));
}

#[test]
fn breaker_is_per_underlying() {
    let mut h = setup_positions(2);
    let stx = signed(
        &h,
        100,
        vec![quorum(0, 100, 50_000, &[]), quorum(1, 100, 50_500, &[])],
    );
    let e = h.accept(&stx);
    assert!(e.prices[0].tripped);
    assert!(!e.prices[1].tripped);
    assert_eq!(h.state.underlyings()[1].tripped_until, 0);
    let t = h.simple_trade(6, 4, 0, 1, 100);
    assert_eq!(h.reject(&t), Rejection::BreakerTripped(0));
    // Series 2 lives on underlying 1, which trades normally.
    h.fill(6, 4, 2, 1, 2_000);
}

// ---------------------------------------------------------------------------------------------
// Breaker: staleness
// ---------------------------------------------------------------------------------------------

#[test]
fn staleness_halts_between_ticks_and_trips_on_the_next() {
    let mut h = setup_positions(2);
    // Underlying 0 at t = 20: spot 110_000, call mark 12_001: account 5 is liquidatable.
    tick(&mut h, 20, &[(0, 110_000, vec![(0, 12_001)])]);
    assert!(h.state.margin(5).unwrap().is_liquidatable());
    // Only underlying 1 ticks from now on.
    tick(&mut h, 300, &[(1, 50_000, vec![])]);
    tick(&mut h, 620, &[(1, 50_000, vec![])]);
    // Age 600 == stale_after_secs: not stale (the pure check accepts both).
    assert!(!h.state.underlyings()[0].is_halted(h.state.time()));
    let l = h.liquidate(4, 5, 0, 1, 0);
    assert!(h.state.check(&l.tx).is_ok());
    let t = h.simple_trade(6, 4, 0, 1, 12_001);
    assert!(h.state.check(&t.tx).is_ok());

    // Age 601: stale, so halted, though no tick of underlying 0 has tripped anything.
    tick(&mut h, 621, &[(1, 50_000, vec![])]);
    assert_eq!(h.state.underlyings()[0].tripped_until, 0);
    assert!(h.state.underlyings()[0].is_halted(621));
    assert_eq!(h.reject(&l), Rejection::LiquidationsPaused(0));
    assert_eq!(h.reject(&t), Rejection::BreakerTripped(0));
    // Underlying 1 is fresh and unaffected.
    assert!(!h.state.underlyings()[1].is_halted(621));

    // The next tick of underlying 0 trips the breaker on staleness alone (no price move).
    let e = tick(&mut h, 622, &[(0, 110_000, vec![(0, 12_001)])]);
    assert!(e.prices[0].tripped);
    assert_eq!(h.state.underlyings()[0].tripped_until, 922);
    assert_eq!(h.state.underlyings()[0].last_update, 622);
    assert_eq!(h.reject(&l), Rejection::LiquidationsPaused(0));

    // After the cooldown, with a fresh tick, everything works again.
    tick(
        &mut h,
        922,
        &[(0, 110_000, vec![(0, 12_001)]), (1, 50_000, vec![])],
    );
    assert!(!h.state.underlyings()[0].is_halted(922));
    h.accept(&l);
    h.accept(&t);
}

// ---------------------------------------------------------------------------------------------
// Expiry settlement prices
// ---------------------------------------------------------------------------------------------

#[test]
fn settlement_price_from_first_tick_at_or_after_expiry() {
    let mut h = Harness::new(ProtocolParams::small(), 2);
    let specs = [
        (0, K, 1_000, OptionKind::Call, 1), // 0: ITM call at settlement
        (0, K, 1_000, OptionKind::Put, 1),  // 1: OTM put
        (0, 120_000, 1_000, OptionKind::Put, 2), // 2: ITM put, cs 2
        (0, K, 5_000, OptionKind::Call, 1), // 3: not expired
        (1, 50_000, 1_000, OptionKind::Call, 1), // 4: on underlying 1
        (0, 90_000, 1_006, OptionKind::Call, 3), // 5: expires exactly at the settling tick
    ];
    for (u, k, exp, kind, cs) in specs {
        let r = h.register(u, k, exp, kind, cs);
        h.accept(&r);
    }
    tick(
        &mut h,
        10,
        &[
            (
                0,
                K,
                vec![(0, 5_000), (1, 4_000), (2, 25_000), (3, 7_000), (5, 30_000)],
            ),
            (1, 50_000, vec![(4, 3_000)]),
        ],
    );
    for a in [2, 3] {
        h.fund(a, FUNDS);
    }
    h.fill(2, 3, 2, 3, 25_000); // 3 is short 3 of series 2
    tick(&mut h, 500, &[(0, K, vec![]), (1, 50_000, vec![])]);

    // Just before expiry: nothing settles.
    tick(&mut h, 999, &[(0, K, vec![(0, 6_000)])]);
    assert!(h.state.series().iter().all(|s| s.settlement_price == 0));
    assert_eq!(h.state.series()[0].mark, 6_000);

    // A tick of underlying 1 only settles underlying 1's series.
    let e = tick(&mut h, 1_005, &[(1, 60_000, vec![])]);
    assert_eq!(h.state.series()[4].settlement_price, 60_000);
    assert_eq!(h.state.series()[4].mark, 10_000);
    assert_eq!(e.series.len(), 1);
    assert_eq!(h.state.series()[0].settlement_price, 0);

    // The first tick of underlying 0 at/after expiry settles its expired series.
    let e = tick(&mut h, 1_006, &[(0, 110_000, vec![(3, 15_000)])]);
    let s = h.state.series();
    assert_eq!(s[0].settlement_price, 110_000);
    assert_eq!(s[0].mark, 10_000); // call: 110_000 - 100_000
    assert_eq!(s[1].settlement_price, 110_000);
    assert_eq!(s[1].mark, 0); // OTM put
    assert_eq!(s[2].settlement_price, 110_000);
    assert_eq!(s[2].mark, 2 * 10_000); // cs 2 · (120_000 - 110_000)
    assert_eq!(s[3].settlement_price, 0);
    assert_eq!(s[3].mark, 15_000);
    assert_eq!(s[5].settlement_price, 110_000); // expiry == tick time
    assert_eq!(s[5].mark, 3 * 20_000);
    let changed: Vec<u32> = e.series.iter().map(|(i, _)| *i).collect();
    assert_eq!(changed, vec![0, 1, 2, 3, 5]);

    // Later ticks do not move a settlement price or an expired series' mark.
    tick(&mut h, 1_010, &[(0, 120_000, vec![]), (1, 55_000, vec![])]);
    let s = h.state.series();
    assert_eq!(s[0].settlement_price, 110_000);
    assert_eq!(s[0].mark, 10_000);
    assert_eq!(s[2].mark, 20_000);
    assert_eq!(s[4].settlement_price, 60_000);

    // Settlement pays the intrinsic value: the short pays in, then the long is paid.
    let (c2, c3) = (
        h.state.account(2).unwrap().collateral,
        h.state.account(3).unwrap().collateral,
    );
    let st = h.settle(3, 2);
    h.accept(&st);
    let st = h.settle(2, 2);
    h.accept(&st);
    assert_eq!(h.state.account(3).unwrap().collateral, c3 - 60_000);
    assert_eq!(h.state.account(2).unwrap().collateral, c2 + 60_000);
    assert_eq!(h.state.account(1).unwrap().collateral, 0);
}

// ---------------------------------------------------------------------------------------------
// Ticks in batches
// ---------------------------------------------------------------------------------------------

#[test]
fn a_tick_may_only_open_a_batch_and_commits_once() {
    use collar_protocol::batch::{self, BatchError};
    let mut h = setup(1);
    let t1 = h.tick(20, &[(0, K, vec![(0, 5_100)])]).tx;
    let dep = h.deposit(2, FUNDS).tx;
    // A tick after another transaction is refused before anything runs.
    let mut s = h.state.clone();
    let root = s.root();
    assert_eq!(
        batch::execute(&mut s, 1, &[dep.clone(), t1.clone()]).unwrap_err(),
        BatchError::TickNotFirst { index: 1 }
    );
    assert_eq!(s.root(), root, "the state is untouched");
    // First in the batch it runs, and the tick commitment is one chain step over its medians.
    let exec = batch::execute(&mut s, 1, &[t1, dep]).unwrap();
    let w = &exec.witnesses[0];
    let expected = collar_protocol::state::tick_chain(
        s.params(),
        collar_protocol::field::Fr::from(0u64),
        20,
        &w.effects.prices,
    );
    assert_eq!(exec.public_inputs.tick_commitment, expected);
    assert_ne!(expected, collar_protocol::field::Fr::from(0u64));
}
