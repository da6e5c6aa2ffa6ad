//! Every threshold rule: accepted exactly at the boundary, rejected one unit past it (with the
//! exact `Rejection` and no state change); and the margin formula against hand-computed numbers.

use collar_protocol::margin::{account_margin, ceil_bps, short_add_ons};
use collar_protocol::params::{BreakerParams, MarginParams, UnderlyingConfig};
use collar_protocol::testkit::Harness;
use collar_protocol::tx::Side;
use collar_protocol::{
    Account, Effects, OptionKind, ProtocolParams, PublicKey, Rejection, Series, Underlying,
};

const K: u64 = 100_000;
const EXPIRY: u64 = 100_000;
const CALL: u32 = 0;
const PUT: u32 = 1;
const FUNDS: u64 = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn tick(h: &mut Harness, t: u64, spot: u64, marks: &[(u32, u64)]) -> Effects {
    let stx = h.tick(t, &[(0, spot, marks.to_vec())]);
    h.accept(&stx)
}

/// The per-side trading fee at 30 bps, rounded up.
fn fee(premium: u128) -> u128 {
    (premium * 30).div_ceil(10_000)
}

/// A call (0) and a put (1), strike 100_000, contract size 1, on underlying 0; first tick at
/// t = 10 with spot 100_000 and marks 5_000 / 4_000; accounts 2, 3, 4 hold 1_000_000.
fn setup() -> Harness {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let r = h.register(0, K, EXPIRY, OptionKind::Call, 1);
    h.accept(&r);
    let r = h.register(0, K, EXPIRY, OptionKind::Put, 1);
    h.accept(&r);
    tick(&mut h, 10, K, &[(CALL, 5_000), (PUT, 4_000)]);
    for a in [2, 3, 4] {
        h.fund(a, FUNDS);
    }
    h
}

/// The spec's add-ons (§5.2), written independently of the library:
/// call IM = max(ceil(im·N) − OTM, ceil(mm·N)), MM = ceil(mm·N);
/// put MM = max(ceil(mm·N), ceil(pm·mark)), IM = max(ceil(im·N) − OTM, ceil(mm·N), MM).
fn spec_add_ons(
    kind: OptionKind,
    strike: u64,
    cs: u64,
    spot: u64,
    mark: u64,
    m: MarginParams,
) -> (u128, u128) {
    let up = |x: u128, bps: u64| (x * bps as u128).div_ceil(10_000);
    let n = cs as u128 * spot as u128;
    let otm = cs as u128
        * match kind {
            OptionKind::Call => strike.saturating_sub(spot),
            OptionKind::Put => spot.saturating_sub(strike),
        } as u128;
    let im_n = up(n, m.im_spot_bps);
    let mm_n = up(n, m.mm_spot_bps);
    let im_less_otm = im_n.saturating_sub(otm);
    match kind {
        OptionKind::Call => (std::cmp::max(im_less_otm, mm_n), mm_n),
        OptionKind::Put => {
            let mm = std::cmp::max(mm_n, up(mark as u128, m.put_mm_mark_bps));
            (im_less_otm.max(mm_n).max(mm), mm)
        }
    }
}

fn series(kind: OptionKind, strike: u64, cs: u64, mark: u64) -> Series {
    Series {
        underlying: 0,
        strike,
        expiry: EXPIRY,
        kind,
        contract_size: cs,
        mark,
        settlement_price: 0,
    }
}

fn underlying(spot: u64) -> Underlying {
    let mut u = Underlying::new(UnderlyingConfig {
        symbol: "U0".into(),
        margin: MarginParams::default(),
        breaker: BreakerParams::default(),
    });
    u.spot = spot;
    u.last_update = 1;
    u
}

// ---------------------------------------------------------------------------------------------
// Margin formula (§5.2)
// ---------------------------------------------------------------------------------------------

#[test]
fn ceil_bps_rounds_up() {
    assert_eq!(ceil_bps(100_000, 1_500), 15_000);
    assert_eq!(ceil_bps(100_001, 1_500), 15_001); // 15_000.15
    assert_eq!(ceil_bps(100_001, 1_000), 10_001); // 10_000.1
    assert_eq!(ceil_bps(1, 1), 1);
    assert_eq!(ceil_bps(0, 1_000), 0);
    assert_eq!(ceil_bps(9_999, 1), 1);
    assert_eq!(ceil_bps(10_000, 1), 1);
    assert_eq!(ceil_bps(10_001, 1), 2);
}

#[test]
fn short_call_itm_add_ons() {
    // K = 100_000, spot 110_000: N = 110_000, OTM = 0.
    // IM = max(16_500 - 0, 11_000) = 16_500; MM = 11_000.
    let s = series(OptionKind::Call, K, 1, 12_000);
    assert_eq!(
        short_add_ons(&s, &underlying(110_000), 110_000, 12_000),
        (16_500, 11_000)
    );
    // cs = 3, spot 100_001: N = 300_003; ceil(45_000.45) = 45_001; ceil(30_000.3) = 30_001.
    let s = series(OptionKind::Call, K, 3, 5_000);
    assert_eq!(
        short_add_ons(&s, &underlying(100_001), 100_001, 5_000),
        (45_001, 30_001)
    );
    // At the money exactly.
    let s = series(OptionKind::Call, K, 1, 5_000);
    assert_eq!(
        short_add_ons(&s, &underlying(K), K, 5_000),
        (15_000, 10_000)
    );
}

#[test]
fn short_call_otm_add_ons() {
    // K = 100_000, spot 97_000: N = 97_000, OTM = 3_000.
    // IM = max(14_550 - 3_000, 9_700) = 11_550; MM = 9_700.
    let s = series(OptionKind::Call, K, 1, 1_000);
    assert_eq!(
        short_add_ons(&s, &underlying(97_000), 97_000, 1_000),
        (11_550, 9_700)
    );
    // Far OTM: spot 90_000: IM = max(13_500 - 10_000, 9_000) = 9_000 (the mm floor).
    assert_eq!(
        short_add_ons(&s, &underlying(90_000), 90_000, 1_000),
        (9_000, 9_000)
    );
    // OTM larger than the IM spot charge: spot 50_000, OTM 50_000 > 7_500: IM = mm = 5_000.
    assert_eq!(
        short_add_ons(&s, &underlying(50_000), 50_000, 1),
        (5_000, 5_000)
    );
    // The call's mark never matters.
    assert_eq!(
        short_add_ons(&s, &underlying(97_000), 97_000, u64::MAX),
        (11_550, 9_700)
    );
}

#[test]
fn short_put_add_ons() {
    // OTM put: K = 100_000, spot 110_000, mark 2_000: N = 110_000, OTM = 10_000.
    // MM = max(11_000, ceil(200)) = 11_000; IM = max(16_500 - 10_000, 11_000, 11_000) = 11_000.
    let s = series(OptionKind::Put, K, 1, 2_000);
    assert_eq!(
        short_add_ons(&s, &underlying(110_000), 110_000, 2_000),
        (11_000, 11_000)
    );
    // Slightly OTM: spot 102_000: IM = max(15_300 - 2_000, 10_200, MM) = 13_300; MM = 10_200.
    assert_eq!(
        short_add_ons(&s, &underlying(102_000), 102_000, 2_000),
        (13_300, 10_200)
    );
    // ITM put, contract size 10: K = 50_000, spot 40_000, mark 123_457: N = 400_000.
    // MM = max(40_000, ceil(12_345.7) = 12_346) = 40_000; IM = max(60_000, 40_000, 40_000).
    let s = series(OptionKind::Put, 50_000, 10, 123_457);
    assert_eq!(
        short_add_ons(&s, &underlying(40_000), 40_000, 123_457),
        (60_000, 40_000)
    );
}

#[test]
fn short_put_mark_based_maintenance_floor() {
    // Deep ITM put: K = 200_000, spot 100_000, mark 150_000: mm·N = 10_000,
    // ceil(pm·mark) = 15_000: MM = 15_000; IM = max(15_000 - 0, 10_000, 15_000) = 15_000.
    let s = series(OptionKind::Put, 200_000, 1, 150_000);
    assert_eq!(
        short_add_ons(&s, &underlying(K), K, 150_000),
        (15_000, 15_000)
    );
    // Mark 170_001: ceil(17_000.1) = 17_001 exceeds im·N, so IM is lifted to MM = 17_001.
    assert_eq!(
        short_add_ons(&s, &underlying(K), K, 170_001),
        (17_001, 17_001)
    );
    // Mark 0: the floor vanishes, the spot rates decide.
    assert_eq!(short_add_ons(&s, &underlying(K), K, 0), (15_000, 10_000));
}

#[test]
fn add_ons_match_the_spec_formula_on_a_grid() {
    let m = MarginParams::default();
    for kind in [OptionKind::Call, OptionKind::Put] {
        for strike in [1, 99_999, 100_000, 100_001, 250_000] {
            for cs in [1, 3, 7, 65_535] {
                for spot in [1, 50_001, 99_999, 100_000, 100_003, 199_999, (1 << 48) - 1] {
                    for mark in [0, 1, 9_999, 170_001, u64::MAX] {
                        let s = series(kind, strike, cs, mark);
                        let got = short_add_ons(&s, &underlying(spot), spot, mark);
                        let want = spec_add_ons(kind, strike, cs, spot, mark, m);
                        assert_eq!(got, want, "{kind:?} K={strike} cs={cs} S={spot} m={mark}");
                        assert!(got.0 >= got.1, "IM >= MM");
                    }
                }
            }
        }
    }
}

#[test]
fn account_margin_sums_shorts_and_marks_longs() {
    let mut acc = Account::new(PublicKey::ZERO, 4);
    acc.collateral = 1_000;
    assert!(acc.set_position(0, -7)); // short 7 calls K=100_000 cs=3
    assert!(acc.set_position(1, -2)); // short 2 deep ITM puts
    assert!(acc.set_position(2, 5)); // long 5 calls
    let reg = vec![
        series(OptionKind::Call, K, 3, 5_003),
        series(OptionKind::Put, 200_000, 1, 170_001),
        series(OptionKind::Call, 90_000, 1, 11_000),
    ];
    let us = vec![underlying(100_001)];
    let m = account_margin(&acc, &reg, &us);
    // call: IM 45_001, MM 30_001; put at spot 100_001: MM = max(10_001, 17_001) = 17_001,
    // IM = max(15_001, 10_001, 17_001) = 17_001.
    assert_eq!(m.initial, 7 * 45_001 + 2 * 17_001);
    assert_eq!(m.maintenance, 7 * 30_001 + 2 * 17_001);
    assert_eq!(m.equity, 1_000 - 7 * 5_003 - 2 * 170_001 + 5 * 11_000);
    assert_eq!(m.im_equity, 1_000 - 7 * 5_003 - 2 * 170_001);
    assert_eq!(m.positions.len(), 3);
    assert_eq!(m.positions[2].im_per_contract, 0);
    assert_eq!(m.positions[2].mm_per_contract, 0);
}

// ---------------------------------------------------------------------------------------------
// Withdrawal at the initial-margin boundary
// ---------------------------------------------------------------------------------------------

#[test]
fn withdrawal_at_initial_margin_boundary() {
    let mut h = setup();
    h.fill(2, 3, CALL, 10, 5_000);
    let m = h.state.margin(3).unwrap();
    // Requirement by hand: 10 · max(ceil(0.15·100_000) - 0, ceil(0.10·100_000)) = 150_000.
    let (im, _) = short_add_ons(&h.state.series()[0], &h.state.underlyings()[0], K, 5_000);
    assert_eq!(im, 15_000);
    assert_eq!(m.initial, 150_000);
    // Collateral 1_000_000 + 50_000 - 150; im_equity = that - 10·5_000.
    assert_eq!(m.im_equity, 999_850);
    let excess = (m.im_equity - m.initial) as u64;
    assert_eq!(excess, 849_850);

    let w = h.withdraw(3, excess + 1);
    assert_eq!(
        h.reject(&w),
        Rejection::InitialMarginViolated {
            account: 3,
            equity: 149_999,
            requirement: 150_000
        }
    );
    let w = h.withdraw(3, excess);
    h.accept(&w);
    let m = h.state.margin(3).unwrap();
    assert_eq!(m.im_equity, m.initial);
    let w = h.withdraw(3, 1);
    assert_eq!(
        h.reject(&w),
        Rejection::InitialMarginViolated {
            account: 3,
            equity: 149_999,
            requirement: 150_000
        }
    );
}

#[test]
fn withdrawal_of_all_collateral_without_positions() {
    let mut h = setup();
    let w = h.withdraw(4, FUNDS + 1);
    assert_eq!(
        h.reject(&w),
        Rejection::InsufficientCollateral {
            account: 4,
            available: FUNDS.into(),
            needed: u128::from(FUNDS) + 1
        }
    );
    let w = h.withdraw(4, FUNDS);
    h.accept(&w);
    assert_eq!(h.collateral(4), 0);
}

#[test]
fn longs_do_not_count_towards_initial_margin_equity() {
    let mut h = setup();
    // 2 is long 10 calls (marked at 50_000) and short 1 put: the long's value cannot be
    // withdrawn against.
    h.fill(2, 3, CALL, 10, 5_000);
    h.fill(4, 2, PUT, 1, 4_000);
    let m = h.state.margin(2).unwrap();
    let c = h.collateral(2) as i128;
    assert_eq!(m.im_equity, c - 4_000);
    assert_eq!(m.equity, c - 4_000 + 50_000);
    assert_eq!(m.initial, 15_000);
    let excess = (m.im_equity - m.initial) as u64;
    let w = h.withdraw(2, excess + 1);
    assert!(matches!(
        h.reject(&w),
        Rejection::InitialMarginViolated { account: 2, .. }
    ));
    let w = h.withdraw(2, excess);
    h.accept(&w);
}

// ---------------------------------------------------------------------------------------------
// A short trade exactly at initial margin
// ---------------------------------------------------------------------------------------------

#[test]
fn short_call_trade_at_initial_margin_boundary() {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let r = h.register(0, K, EXPIRY, OptionKind::Call, 3);
    h.accept(&r);
    let (spot, mark, size, price) = (100_001u64, 5_003u64, 7u64, 5_003u64);
    tick(&mut h, 10, spot, &[(0, mark)]);
    h.fund(2, FUNDS);
    // IM per contract: N = 300_003, ceil(45_000.45) = 45_001, OTM 0, floor ceil(30_000.3).
    let im = 45_001u128;
    let premium = u128::from(size * price);
    let fee = fee(premium);
    assert_eq!(fee, 106); // ceil(105.063)
                          // im_equity = D + premium - fee - size·mark >= size·im
    let d = (u128::from(size) * im + fee + u128::from(size * mark) - premium) as u64;
    assert_eq!(d, 315_113);

    h.fund(6, d - 1);
    let t = h.simple_trade(2, 6, 0, size, price);
    assert_eq!(
        h.reject(&t),
        Rejection::InitialMarginViolated {
            account: 6,
            equity: 315_006,
            requirement: 315_007
        }
    );
    // One more unit of collateral and the same signed trade is accepted.
    h.fund(6, 1);
    h.accept(&t);
    let m = h.state.margin(6).unwrap();
    assert_eq!(m.initial, 315_007);
    assert_eq!(m.im_equity, m.initial);
    assert_eq!(h.position(6, 0), -7);
}

#[test]
fn short_put_trade_at_initial_margin_boundary_with_mark_floor() {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let r = h.register(0, 200_000, EXPIRY, OptionKind::Put, 1);
    h.accept(&r);
    // Spot 100_001: im·N = 15_001, mm·N = 10_001, pm·mark = ceil(17_000.1) = 17_001.
    tick(&mut h, 10, 100_001, &[(0, 170_001)]);
    h.fund(2, FUNDS);
    let premium = 170_001u128;
    let fee = fee(premium);
    assert_eq!(fee, 511);
    // im_equity = D + premium - fee - mark = D - 511 >= 17_001.
    h.fund(6, 17_511);
    let t = h.simple_trade(2, 6, 0, 1, 170_001);
    assert_eq!(
        h.reject(&t),
        Rejection::InitialMarginViolated {
            account: 6,
            equity: 17_000,
            requirement: 17_001
        }
    );
    h.fund(6, 1);
    h.accept(&t);
    let m = h.state.margin(6).unwrap();
    assert_eq!(
        (m.im_equity, m.initial, m.maintenance),
        (17_001, 17_001, 17_001)
    );
}

// ---------------------------------------------------------------------------------------------
// Liquidation at the maintenance boundary
// ---------------------------------------------------------------------------------------------

/// Account 5 is short 1 call (K = 100_000) with collateral 20_000 (it deposited exactly the
/// initial margin, 15_015, and received 5_000 - 15).
fn setup_single_short() -> Harness {
    let mut h = setup();
    h.fund(5, 15_015);
    h.fill(2, 5, CALL, 1, 5_000);
    let m = h.state.margin(5).unwrap();
    assert_eq!((m.im_equity, m.initial), (15_000, 15_000));
    assert_eq!(h.collateral(5), 20_000);
    h
}

#[test]
fn liquidation_boundary_by_mark() {
    let mut h = setup_single_short();
    // Spot 110_000: MM = ceil(0.10·110_000) = 11_000. Mark 9_000: equity 11_000 == MM.
    tick(&mut h, 20, 110_000, &[(CALL, 9_000)]);
    let l = h.liquidate(4, 5, CALL, 1, 0);
    assert_eq!(
        h.reject(&l),
        Rejection::NotLiquidatable {
            account: 5,
            equity: 11_000,
            requirement: 11_000
        }
    );
    // Mark 9_001: equity 10_999 == MM - 1.
    tick(&mut h, 30, 110_000, &[(CALL, 9_001)]);
    let m = h.state.margin(5).unwrap();
    assert_eq!((m.equity, m.maintenance), (10_999, 11_000));
    let l = h.liquidate(4, 5, CALL, 1, 0);
    h.accept(&l);
    // Price 9_001 + ceil(450.05) = 9_452.
    assert_eq!(h.collateral(5), 20_000 - 9_452);
    assert_eq!(h.collateral(4), FUNDS + 9_452);
    assert_eq!(h.position(5, CALL), 0);
    assert_eq!(h.position(4, CALL), -1);
}

#[test]
fn liquidation_boundary_by_spot() {
    let mut h = setup_single_short();
    // Equity fixed at 20_000 - 9_000 = 11_000; spot 110_000 gives MM 11_000: not liquidatable.
    tick(&mut h, 20, 110_000, &[(CALL, 9_000)]);
    let l = h.liquidate(4, 5, CALL, 1, 0);
    assert!(matches!(
        h.reject(&l),
        Rejection::NotLiquidatable {
            equity: 11_000,
            requirement: 11_000,
            ..
        }
    ));
    // Spot 110_001: MM = ceil(11_000.1) = 11_001 = equity + 1.
    tick(&mut h, 30, 110_001, &[]);
    let m = h.state.margin(5).unwrap();
    assert_eq!((m.equity, m.maintenance), (11_000, 11_001));
    let l = h.liquidate(4, 5, CALL, 1, 0);
    h.accept(&l);
    assert_eq!(h.position(5, CALL), 0);
}

// ---------------------------------------------------------------------------------------------
// Order size, price limit, expiry
// ---------------------------------------------------------------------------------------------

#[test]
fn fill_at_order_max_size() {
    let mut h = setup();
    let b = h.order(2, CALL, Side::Buy, 5_000, 5);
    let s = h.order(3, CALL, Side::Sell, 5_000, 6);
    let t = h.trade(b.clone(), s.clone(), 6, 5_000);
    assert_eq!(
        h.reject(&t),
        Rejection::Overfilled {
            filled: 6,
            max_size: 5
        }
    );
    let t = h.trade(b, s, 5, 5_000);
    h.accept(&t);
    assert_eq!(h.position(2, CALL), 5);
    // The sell side's bound likewise.
    let b = h.order(2, CALL, Side::Buy, 5_000, 6);
    let s = h.order(4, CALL, Side::Sell, 5_000, 5);
    let t = h.trade(b.clone(), s.clone(), 6, 5_000);
    assert_eq!(
        h.reject(&t),
        Rejection::Overfilled {
            filled: 6,
            max_size: 5
        }
    );
    let t = h.trade(b, s, 5, 5_000);
    h.accept(&t);
}

#[test]
fn trade_price_at_limits() {
    let mut h = setup();
    let b = h.order(2, CALL, Side::Buy, 5_000, 1);
    let s = h.order(3, CALL, Side::Sell, 4_000, 1);
    let t = h.trade(b.clone(), s.clone(), 1, 5_001);
    assert_eq!(
        h.reject(&t),
        Rejection::PriceLimit {
            price: 5_001,
            limit: 5_000
        }
    );
    let t = h.trade(b, s, 1, 5_000);
    h.accept(&t);

    let b = h.order(2, CALL, Side::Buy, 6_000, 1);
    let s = h.order(3, CALL, Side::Sell, 5_000, 1);
    let t = h.trade(b.clone(), s.clone(), 1, 4_999);
    assert_eq!(
        h.reject(&t),
        Rejection::PriceLimit {
            price: 4_999,
            limit: 5_000
        }
    );
    let t = h.trade(b, s, 1, 5_000);
    h.accept(&t);
}

#[test]
fn liquidation_price_at_limit_short_victim() {
    let mut h = setup_single_short();
    tick(&mut h, 20, 110_000, &[(CALL, 12_001)]);
    // The liquidator sells at 12_001 + ceil(600.05) = 12_602; its limit is a floor.
    let l = h.liquidate(4, 5, CALL, 1, 12_603);
    assert_eq!(
        h.reject(&l),
        Rejection::PriceLimit {
            price: 12_602,
            limit: 12_603
        }
    );
    let l = h.liquidate(4, 5, CALL, 1, 12_602);
    h.accept(&l);
    assert_eq!(h.collateral(4), FUNDS + 12_602);
}

#[test]
fn liquidation_price_at_limit_long_victim() {
    let mut h = setup();
    // 7: long 1 put, short 1 call; the call rallies and 7 falls below maintenance.
    h.fund(7, 20_000);
    h.fill(7, 3, PUT, 1, 4_000);
    h.fill(4, 7, CALL, 1, 5_000);
    tick(&mut h, 20, 110_000, &[(CALL, 40_000), (PUT, 2_001)]);
    assert!(h.state.margin(7).unwrap().is_liquidatable());
    let c7 = h.collateral(7);
    // The liquidator buys the long at 2_001 - ceil(100.05) = 1_900; its limit is a ceiling.
    let l = h.liquidate(4, 7, PUT, 1, 1_899);
    assert_eq!(
        h.reject(&l),
        Rejection::PriceLimit {
            price: 1_900,
            limit: 1_899
        }
    );
    let c4 = h.collateral(4);
    let l = h.liquidate(4, 7, PUT, 1, 1_900);
    h.accept(&l);
    assert_eq!(h.collateral(7), c7 + 1_900);
    assert_eq!(h.collateral(4), c4 - 1_900);
    assert_eq!(h.position(7, PUT), 0);
    assert_eq!(h.position(4, PUT), 1);
}

#[test]
fn order_expiry_at_now() {
    let mut h = setup();
    // Time is 10.
    let mut b = h.order(2, CALL, Side::Buy, 5_000, 2);
    b.expiry = 10;
    let mut s = h.order(3, CALL, Side::Sell, 5_000, 2);
    s.expiry = 10;
    let t = h.trade(b.clone(), s.clone(), 1, 5_000);
    h.accept(&t);
    // Once time passes the expiry, the rest of the same orders can no longer fill.
    tick(&mut h, 11, K, &[]);
    let t = h.trade(b, s, 1, 5_000);
    assert_eq!(
        h.reject(&t),
        Rejection::OrderExpired {
            expiry: 10,
            now: 11
        }
    );
    let mut b = h.order(2, CALL, Side::Buy, 5_000, 1);
    b.expiry = 11;
    let mut s = h.order(3, CALL, Side::Sell, 5_000, 1);
    s.expiry = 10;
    let t = h.trade(b, s, 1, 5_000);
    assert_eq!(
        h.reject(&t),
        Rejection::OrderExpired {
            expiry: 10,
            now: 11
        }
    );
}

#[test]
fn series_tradable_until_expiry() {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let r = h.register(0, K, 100, OptionKind::Call, 1);
    h.accept(&r);
    tick(&mut h, 99, K, &[(0, 5_000)]);
    h.fund(2, FUNDS);
    h.fund(3, FUNDS);
    h.fill(2, 3, 0, 1, 5_000);
    tick(&mut h, 100, K, &[]);
    let t = h.simple_trade(2, 3, 0, 1, 5_000);
    assert_eq!(h.reject(&t), Rejection::SeriesExpired(0));
}

// ---------------------------------------------------------------------------------------------
// Breaker thresholds
// ---------------------------------------------------------------------------------------------

/// Whether a second tick at t = 20 moving spot from `old` to `new` trips the breaker; checks
/// that the effects, the stored flag and `tripped_until` agree.
fn move_trips(old: u64, new: u64) -> bool {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    tick(&mut h, 10, old, &[]);
    let e = tick(&mut h, 20, new, &[]);
    let tripped = e.prices[0].tripped;
    let u = &h.state.underlyings()[0];
    assert_eq!(u.spot, new);
    assert_eq!(u.tripped_until, if tripped { 20 + 300 } else { 0 });
    assert_eq!(u.is_halted(20), tripped);
    tripped
}

#[test]
fn breaker_move_boundary() {
    // max_move_bps = 2_000: trips when |new - old|·10_000 > 2_000·old.
    assert!(!move_trips(100_000, 120_000));
    assert!(move_trips(100_000, 120_001));
    assert!(!move_trips(100_000, 80_000));
    assert!(move_trips(100_000, 79_999));
    // A non-integral bound: 20% of 100_003 is 20_000.6.
    assert!(!move_trips(100_003, 120_003));
    assert!(move_trips(100_003, 120_004));
    assert!(!move_trips(100_003, 80_003));
    assert!(move_trips(100_003, 80_002));
    // No move.
    assert!(!move_trips(1, 1));
    // The first price never trips.
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let e = tick(&mut h, 10, (1 << 48) - 1, &[]);
    assert!(!e.prices[0].tripped);
}

#[test]
fn staleness_at_tick_boundary() {
    // stale_after_secs = 600: a tick exactly 600 s after the last one does not trip.
    let mut h = Harness::new(ProtocolParams::small(), 1);
    tick(&mut h, 10, K, &[]);
    let e = tick(&mut h, 610, K, &[]);
    assert!(!e.prices[0].tripped);
    assert_eq!(h.state.underlyings()[0].tripped_until, 0);
    // 601 s later it does, even without a price move.
    let e = tick(&mut h, 1_211, K, &[]);
    assert!(e.prices[0].tripped);
    assert_eq!(h.state.underlyings()[0].tripped_until, 1_211 + 300);
}

#[test]
fn staleness_halt_boundary_between_ticks() {
    let mut h = Harness::new(ProtocolParams::small(), 2);
    let r = h.register(0, K, EXPIRY, OptionKind::Call, 1);
    h.accept(&r);
    let t = h.tick(10, &[(0, K, vec![(0, 5_000)]), (1, 50_000, vec![])]);
    h.accept(&t);
    for a in [2, 3] {
        h.fund(a, FUNDS);
    }
    // Only underlying 1 ticks; underlying 0's age is time - 10.
    let t = h.tick(300, &[(1, 50_000, vec![])]);
    h.accept(&t);
    let t = h.tick(610, &[(1, 50_000, vec![])]);
    h.accept(&t);
    assert!(!h.state.underlyings()[0].is_halted(h.state.time()));
    h.fill(2, 3, 0, 1, 5_000); // risk-increasing, accepted at age 600
    let t = h.tick(611, &[(1, 50_000, vec![])]);
    h.accept(&t);
    assert!(h.state.underlyings()[0].is_halted(h.state.time()));
    let t = h.simple_trade(2, 3, 0, 1, 5_000);
    assert_eq!(h.reject(&t), Rejection::BreakerTripped(0));
    // Underlying 1, which ticked, is not halted.
    assert!(!h.state.underlyings()[1].is_halted(h.state.time()));
}

// ---------------------------------------------------------------------------------------------
// Below initial margin: strictly reducing trades only (§5.3)
// ---------------------------------------------------------------------------------------------

#[test]
fn below_initial_margin_only_reducing_trades() {
    let mut h = setup();
    // 5 sells 10 calls at 5_000 holding exactly initial margin: collateral 200_000.
    h.fund(5, 150_150);
    h.fill(2, 5, CALL, 10, 5_000);
    assert_eq!(h.collateral(5), 200_000);
    // Spot 105_000 (IM 15_750, MM 10_500 per contract), mark 8_000:
    // im_equity = equity = 200_000 - 80_000 = 120_000 < IM 157_500, >= MM 105_000.
    tick(&mut h, 20, 105_000, &[(CALL, 8_000)]);
    let m = h.state.margin(5).unwrap();
    assert_eq!((m.im_equity, m.initial), (120_000, 157_500));
    assert_eq!((m.equity, m.maintenance), (120_000, 105_000));

    // Selling more is refused: 200_000 + 8_000 - 24 - 11·8_000 = 119_976 < 11·15_750.
    let t = h.simple_trade(2, 5, CALL, 1, 8_000);
    assert_eq!(
        h.reject(&t),
        Rejection::InitialMarginViolated {
            account: 5,
            equity: 119_976,
            requirement: 173_250
        }
    );
    // Buying back one is accepted although still below IM afterwards.
    h.fill(5, 2, CALL, 1, 8_000);
    let m = h.state.margin(5).unwrap();
    assert_eq!(h.collateral(5), 191_976);
    assert_eq!((m.im_equity, m.initial), (119_976, 141_750));
    assert!(!m.meets_initial());
    assert_eq!(m.maintenance, 94_500);

    // Buying back must strictly shrink the initial shortfall (initial - im_equity), so that a
    // colluding counterparty cannot be paid far above the mark. Before: 141_750 - 119_976 =
    // 21_774. After one more at price P: 126_000 - (191_976 - P - ceil(0.003·P) - 8·8_000), which
    // is below 21_774 iff P + fee < 23_750.
    let t = h.simple_trade(5, 2, CALL, 1, 23_678); // fee 72: shortfall 21_774, not smaller
    assert_eq!(
        h.reject(&t),
        Rejection::InitialMarginViolated {
            account: 5,
            equity: 191_976 - 23_678 - 72 - 64_000,
            requirement: 126_000
        }
    );
    let t = h.simple_trade(5, 2, CALL, 1, 23_677); // fee 72: shortfall 21_773
    h.accept(&t);
    let m = h.state.margin(5).unwrap();
    assert_eq!(m.initial - m.im_equity, 21_773);
    assert_eq!(h.position(5, CALL), -8);

    // A buy of a different series (no reduction of the requirement) is refused.
    let t = h.simple_trade(5, 3, PUT, 1, 1);
    assert!(matches!(
        h.reject(&t),
        Rejection::InitialMarginViolated { account: 5, .. }
    ));
}

#[test]
fn below_initial_margin_selling_a_long_is_accepted() {
    let mut h = setup();
    h.fund(5, 200_000);
    h.fill(5, 4, PUT, 2, 4_000);
    h.fill(2, 5, CALL, 10, 5_000);
    tick(&mut h, 20, 105_000, &[(CALL, 12_000), (PUT, 2_000)]);
    let before = h.state.margin(5).unwrap();
    assert!(
        !before.meets_initial() && before.meets_maintenance(),
        "{before:?}"
    );
    // Selling one long put raises cash without raising the requirement: the shortfall shrinks.
    h.fill(4, 5, PUT, 1, 2_000);
    let after = h.state.margin(5).unwrap();
    assert_eq!(after.initial, before.initial);
    assert_eq!(
        after.initial - after.im_equity,
        before.initial - before.im_equity - (2_000 - 6)
    );
    // Buying a long while below initial margin only widens the shortfall: refused.
    let t = h.simple_trade(5, 4, PUT, 1, 2_000);
    assert!(matches!(
        h.reject(&t),
        Rejection::InitialMarginViolated { account: 5, .. }
    ));
}
