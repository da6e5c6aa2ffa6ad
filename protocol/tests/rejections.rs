//! One test per `Rejection` variant the rules can produce, each asserting the exact variant and
//! that the rejected transaction left the state root (and the accepted log and the collateral
//! total) untouched; plus positive tests of partial fills, fees and liquidation amounts.

use collar_protocol::params::{bounds, UnderlyingConfig};
use collar_protocol::signature::SignatureError;
use collar_protocol::testkit::{self, oracle_key, Harness};
use collar_protocol::tx::{
    Deposit, L1Address, Liquidate, LiquidationOrder, OracleReport, OracleTick, SeriesMark, Side,
    UnderlyingTick, Withdraw,
};
use collar_protocol::{
    OptionKind, ProtocolParams, PublicKey, Rejection, SignedTx, State, Tx, FEE_ACCOUNT,
    INSURANCE_FUND,
};

/// The chain id of the small test parameters (the default).
const CHAIN_ID: u64 = 1;

const K: u64 = 100_000;
const EXPIRY: u64 = 1_000;
const CALL: u32 = 0;
const PUT: u32 = 1;
const FUNDS: u64 = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn ceil_div(a: u128, b: u128) -> u128 {
    a.div_ceil(b)
}

/// A call (series 0) and a put (series 1) on underlying 0, strike 100_000, expiry 1_000,
/// contract size 1; a first tick at t = 10 (spot 100_000, marks 5_000 / 4_000); accounts 2, 3
/// and 4 funded with 1_000_000 each.
fn setup() -> Harness {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let r = h.register(0, K, EXPIRY, OptionKind::Call, 1);
    h.accept(&r);
    let r = h.register(0, K, EXPIRY, OptionKind::Put, 1);
    h.accept(&r);
    let t = h.tick(10, &[(0, 100_000, vec![(CALL, 5_000), (PUT, 4_000)])]);
    h.accept(&t);
    for a in [2, 3, 4] {
        h.fund(a, FUNDS);
    }
    h
}

/// On top of [`setup`]: account 5 deposits exactly the initial margin of a 10-lot short call
/// sold at 5_000 (150_150, leaving collateral 200_000) and sells it to account 2.
fn setup_victim() -> Harness {
    let mut h = setup();
    h.fund(5, 150_150);
    h.fill(2, 5, CALL, 10, 5_000);
    assert_eq!(h.collateral(5), 200_000);
    assert_eq!(h.position(5, CALL), -10);
    h
}

/// On top of [`setup_victim`]: a tick at t = 20 (spot 110_000, call mark 12_001) puts account 5
/// below maintenance: equity 200_000 - 120_010 = 79_990 < 10·11_000.
fn setup_liquidatable() -> Harness {
    let mut h = setup_victim();
    let t = h.tick(20, &[(0, 110_000, vec![(CALL, 12_001), (PUT, 1_000)])]);
    h.accept(&t);
    let m = h.state.margin(5).unwrap();
    assert_eq!(m.equity, 79_990);
    assert_eq!(m.maintenance, 110_000);
    assert!(m.is_liquidatable());
    h
}

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

fn quorum_reports(
    underlying: u32,
    timestamp: u64,
    spot: u64,
    marks: &[(u32, u64)],
) -> Vec<OracleReport> {
    (0..3)
        .map(|o| report(o, underlying, timestamp, spot, marks))
        .collect()
}

fn tick_of(timestamp: u64, underlyings: Vec<UnderlyingTick>) -> OracleTick {
    OracleTick {
        timestamp,
        underlyings,
    }
}

fn withdraw_tx(account: u64, amount: u64, nonce: u64) -> Tx {
    Tx::Withdraw(Withdraw {
        account,
        amount,
        nonce,
        recipient: L1Address([0xab; 20]),
    })
}

fn liquidation_tx(
    liquidator: u64,
    victim: u64,
    series: u32,
    max_size: u64,
    size: u64,
    limit_price: u64,
    nonce: u64,
) -> Tx {
    Tx::Liquidate(Liquidate {
        order: LiquidationOrder {
            liquidator,
            victim,
            series,
            max_size,
            limit_price,
            nonce,
        },
        size,
    })
}

// ---------------------------------------------------------------------------------------------
// InvalidParams
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_params_at_genesis() {
    let base = testkit::genesis(ProtocolParams::small(), 1);
    assert!(State::genesis(&base).is_ok());

    let mut cases: Vec<(collar_protocol::Genesis, &str)> = Vec::new();
    let mut g = base.clone();
    g.params.account_depth = 1;
    cases.push((g, "account_depth must be in 2..=32"));
    let mut g = base.clone();
    g.params.max_positions = 0;
    cases.push((g, "max_positions must be in 1..=64"));
    let mut g = base.clone();
    g.params.order_slot_depth = 17;
    cases.push((g, "order_slot_depth must be in 1..=16"));
    let mut g = base.clone();
    g.params.oracle_quorum = 0;
    cases.push((g, "oracle_quorum must be in 1..=max_oracles"));
    let mut g = base.clone();
    g.params.trade_fee_bps = 10_001;
    cases.push((g, "fee and penalty rates must be at most 10_000 bps"));
    let mut g = base.clone();
    g.params.liquidation_penalty_bps = 10_001;
    cases.push((g, "fee and penalty rates must be at most 10_000 bps"));
    let mut g = base.clone();
    g.underlyings.clear();
    cases.push((g, "need 1..=max_underlyings underlyings"));
    let mut g = base.clone();
    g.underlyings = (0..3)
        .map(|i| UnderlyingConfig {
            symbol: format!("X{i}"),
            margin: Default::default(),
            breaker: Default::default(),
        })
        .collect();
    cases.push((g, "need 1..=max_underlyings underlyings"));
    let mut g = base.clone();
    g.oracles.truncate(2);
    cases.push((g, "need quorum..=max_oracles oracle keys"));
    let mut g = base.clone();
    g.oracles.push(oracle_key(9).public_key());
    cases.push((g, "need quorum..=max_oracles oracle keys"));
    let mut g = base.clone();
    g.underlyings[0].symbol = String::new();
    cases.push((g, "underlying symbol must be 1 to 31 ASCII bytes"));
    let mut g = base.clone();
    g.underlyings[0].margin.mm_spot_bps = 2_000;
    cases.push((g, "im_spot_bps must be at least mm_spot_bps"));
    let mut g = base.clone();
    g.underlyings[0].breaker.max_move_bps = 10_001;
    cases.push((g, "rates must be at most 10_000 bps"));
    let mut g = base.clone();
    g.fee_account_key = PublicKey::ZERO;
    cases.push((g, "genesis keys must be valid points"));
    let mut g = base.clone();
    g.oracles[2] = PublicKey::ZERO;
    cases.push((g, "genesis keys must be valid points"));
    let mut g = base.clone();
    g.params.oracle_quorum = 2;
    cases.push((g, "oracle_quorum must be more than half the oracles"));
    let mut g = base.clone();
    g.oracles[3] = g.oracles[0];
    cases.push((g, "oracle keys must be distinct"));
    let mut g = base.clone();
    g.underlyings.push(g.underlyings[0].clone());
    cases.push((g, "underlying symbols must be distinct"));

    for (g, msg) in cases {
        let err = State::genesis(&g).unwrap_err();
        assert_eq!(err, Rejection::InvalidParams(msg));
    }
}

// ---------------------------------------------------------------------------------------------
// OutOfRange, Zero, AccountOutOfRange, UnknownAccount
// ---------------------------------------------------------------------------------------------

#[test]
fn out_of_range_quantities() {
    let mut h = setup();
    let d = h.deposit(2, 1 << 63);
    let err = h.reject(&d);
    assert_eq!(
        err,
        Rejection::OutOfRange {
            field: "deposit amount",
            value: 1 << 63,
            bits: 63
        }
    );

    let r = h.register(0, 1 << 48, EXPIRY, OptionKind::Call, 1);
    assert_eq!(
        h.reject(&r),
        Rejection::OutOfRange {
            field: "strike",
            value: 1 << 48,
            bits: 48
        }
    );
    let r = h.register(0, K, EXPIRY, OptionKind::Call, 1 << 16);
    assert!(matches!(
        h.reject(&r),
        Rejection::OutOfRange {
            field: "contract size",
            bits: 16,
            ..
        }
    ));
    let r = h.register(0, K, 1 << 40, OptionKind::Call, 1);
    assert!(matches!(
        h.reject(&r),
        Rejection::OutOfRange {
            field: "expiry",
            bits: 40,
            ..
        }
    ));

    // Fill size and order fields.
    let b = h.order(2, CALL, Side::Buy, 5_000, 1 << 40);
    let s = h.order(3, CALL, Side::Sell, 5_000, 1 << 40);
    let t = h.trade(b, s, 1 << 40, 5_000);
    assert_eq!(
        h.reject(&t),
        Rejection::OutOfRange {
            field: "fill size",
            value: 1 << 40,
            bits: 40
        }
    );
    let b = h.order(2, CALL, Side::Buy, 5_000, 1 << 40);
    let s = h.order(3, CALL, Side::Sell, 5_000, 1);
    let t = h.trade(b, s, 1, 5_000);
    assert!(matches!(
        h.reject(&t),
        Rejection::OutOfRange {
            field: "order max_size",
            ..
        }
    ));
    let mut b = h.order(2, CALL, Side::Buy, 5_000, 1);
    b.order_id = 1 << 32;
    let s = h.order(3, CALL, Side::Sell, 5_000, 1);
    let t = h.trade(b, s, 1, 5_000);
    assert!(matches!(
        h.reject(&t),
        Rejection::OutOfRange {
            field: "order id",
            bits: 32,
            ..
        }
    ));
    let b = h.order(2, CALL, Side::Buy, 5_000, 1);
    let mut s = h.order(3, CALL, Side::Sell, 5_000, 1);
    s.expiry = 1 << 40;
    let t = h.trade(b, s, 1, 5_000);
    assert!(matches!(
        h.reject(&t),
        Rejection::OutOfRange {
            field: "order expiry",
            ..
        }
    ));
    let b = h.order(2, CALL, Side::Buy, 5_000, 1);
    let mut s = h.order(3, CALL, Side::Sell, 5_000, 1);
    s.max_fee_bps = 1 << 14;
    let t = h.trade(b, s, 1, 5_000);
    assert!(matches!(
        h.reject(&t),
        Rejection::OutOfRange {
            field: "order max_fee_bps",
            bits: 14,
            ..
        }
    ));

    // Withdrawal amount.
    let key = h.key(2);
    let w = withdraw_tx(2, 1 << 63, 0).sign(CHAIN_ID, &[&key]);
    assert!(matches!(
        h.reject(&w),
        Rejection::OutOfRange {
            field: "withdrawal amount",
            ..
        }
    ));

    // Oracle spot and tick timestamp.
    let t = h.tick(20, &[(0, 1 << 48, vec![])]);
    assert!(matches!(
        h.reject(&t),
        Rejection::OutOfRange {
            field: "oracle spot",
            bits: 48,
            ..
        }
    ));
    let t = h.tick(1 << 40, &[(0, K, vec![])]);
    assert!(matches!(
        h.reject(&t),
        Rejection::OutOfRange {
            field: "tick timestamp",
            bits: 40,
            ..
        }
    ));
}

#[test]
fn zero_quantities() {
    let mut h = setup_liquidatable();
    let d = h.deposit(2, 0);
    assert_eq!(h.reject(&d), Rejection::Zero("deposit amount"));
    let w = h.withdraw(2, 0);
    assert_eq!(h.reject(&w), Rejection::Zero("withdrawal amount"));
    let b = h.order(2, CALL, Side::Buy, 5_000, 1);
    let s = h.order(3, CALL, Side::Sell, 5_000, 1);
    let t = h.trade(b, s, 0, 5_000);
    assert_eq!(h.reject(&t), Rejection::Zero("fill size"));
    let key = h.key(4);
    let l = liquidation_tx(4, 5, CALL, 1, 0, 0, 0).sign(CHAIN_ID, &[&key]);
    assert_eq!(h.reject(&l), Rejection::Zero("liquidation size"));
    let r = h.register(0, 0, EXPIRY, OptionKind::Call, 1);
    assert_eq!(h.reject(&r), Rejection::Zero("strike"));
    let r = h.register(0, K, EXPIRY, OptionKind::Call, 0);
    assert_eq!(h.reject(&r), Rejection::Zero("contract size"));
    let t = h.tick(30, &[(0, 0, vec![])]);
    assert_eq!(h.reject(&t), Rejection::Zero("oracle spot"));
}

#[test]
fn account_out_of_range() {
    let mut h = setup();
    // account_depth 8: ids 0..=255.
    let d = h.deposit(256, 10);
    assert_eq!(h.reject(&d), Rejection::AccountOutOfRange(256));
    let d = h.deposit(u64::MAX, 10);
    assert_eq!(h.reject(&d), Rejection::AccountOutOfRange(u64::MAX));
    let s = h.settle(256, CALL);
    assert_eq!(h.reject(&s), Rejection::AccountOutOfRange(256));
    // The last id in range is fine.
    h.fund(255, 10);
    // Signed transactions resolve the signer's key first, so an out-of-range signer is unknown;
    // the rule itself (checked without signatures) names the range.
    let err = h.state.check(&withdraw_tx(256, 1, 0)).unwrap_err();
    assert_eq!(err, Rejection::AccountOutOfRange(256));
}

#[test]
fn unknown_account() {
    let mut h = setup_liquidatable();
    // Withdrawal by an account that never deposited: its key cannot be resolved.
    let key = h.key(9);
    let w = withdraw_tx(9, 1, 0).sign(CHAIN_ID, &[&key]);
    assert_eq!(h.reject(&w), Rejection::UnknownAccount(9));
    assert_eq!(
        h.state.check(&withdraw_tx(9, 1, 0)).unwrap_err(),
        Rejection::UnknownAccount(9)
    );
    // A trade with a counterparty that does not exist.
    let t = h.simple_trade(2, 9, CALL, 1, 5_000);
    assert_eq!(h.reject(&t), Rejection::UnknownAccount(9));
    // A liquidation of a victim that does not exist (only the liquidator signs).
    let l = h.liquidate(4, 9, CALL, 1, 0);
    assert_eq!(h.reject(&l), Rejection::UnknownAccount(9));
    // Settlement of an account that does not exist (unsigned).
    let t = h.tick(EXPIRY, &[(0, 100_000, vec![])]);
    h.accept(&t);
    let s = h.settle(9, CALL);
    assert_eq!(h.reject(&s), Rejection::UnknownAccount(9));
}

// ---------------------------------------------------------------------------------------------
// BadSignature
// ---------------------------------------------------------------------------------------------

fn assert_bad_sig(err: &Rejection, who: &str, src: SignatureError) {
    match err {
        Rejection::BadSignature { signer, source } => {
            assert_eq!(signer, who);
            assert_eq!(*source, src);
        }
        other => panic!("expected BadSignature, got {other:?}"),
    }
}

#[test]
fn bad_signature_wrong_key() {
    let mut h = setup();
    let k3 = h.key(3);
    let w = withdraw_tx(2, 10, 0).sign(CHAIN_ID, &[&k3]);
    assert_bad_sig(&h.reject(&w), "account 2", SignatureError::Mismatch);

    // A trade whose sell order is signed by the buyer.
    let b = h.order(2, CALL, Side::Buy, 5_000, 1);
    let s = h.order(3, CALL, Side::Sell, 5_000, 1);
    let k2 = h.key(2);
    let t = Tx::Trade(collar_protocol::tx::Trade {
        buy: b,
        sell: s,
        size: 1,
        price: 5_000,
    })
    .sign(CHAIN_ID, &[&k2, &k2]);
    assert_bad_sig(&h.reject(&t), "account 3", SignatureError::Mismatch);

    // A liquidation signed by someone other than the liquidator.
    let l = liquidation_tx(4, 2, CALL, 1, 1, 0, 0).sign(CHAIN_ID, &[&k3]);
    assert_bad_sig(&h.reject(&l), "account 4", SignatureError::Mismatch);

    // An oracle report signed with another oracle's key.
    let tick = tick_of(
        20,
        vec![UnderlyingTick {
            underlying: 0,
            reports: quorum_reports(0, 20, K, &[]),
        }],
    );
    let (k0, k2o) = (oracle_key(0), oracle_key(2));
    let t = Tx::OracleTick(tick).sign(CHAIN_ID, &[&k0, &k2o, &k2o]);
    assert_bad_sig(&h.reject(&t), "oracle 1", SignatureError::Mismatch);
}

#[test]
fn bad_signature_field_flipped_after_signing() {
    let mut h = setup();
    let mut w = h.withdraw(2, 10);
    if let Tx::Withdraw(x) = &mut w.tx {
        x.amount = 11;
    }
    assert_bad_sig(&h.reject(&w), "account 2", SignatureError::Mismatch);

    let mut w = h.withdraw(2, 10);
    if let Tx::Withdraw(x) = &mut w.tx {
        x.recipient = L1Address([0xcd; 20]);
    }
    assert_bad_sig(&h.reject(&w), "account 2", SignatureError::Mismatch);

    // Raise the buyer's limit after signing.
    let mut t = h.simple_trade(2, 3, CALL, 1, 5_000);
    if let Tx::Trade(x) = &mut t.tx {
        x.buy.limit_price = 6_000;
        x.price = 6_000;
        x.sell.limit_price = 6_000;
    }
    assert_bad_sig(&h.reject(&t), "account 2", SignatureError::Mismatch);

    // Enlarge the liquidation order's size after signing.
    let mut l = h.liquidate(4, 2, CALL, 1, 0);
    if let Tx::Liquidate(x) = &mut l.tx {
        x.order.max_size = 2;
    }
    assert_bad_sig(&h.reject(&l), "account 4", SignatureError::Mismatch);

    // Move an oracle's spot after signing.
    let mut t = h.tick(20, &[(0, K, vec![])]);
    if let Tx::OracleTick(x) = &mut t.tx {
        x.underlyings[0].reports[2].spot = K + 1;
    }
    assert_bad_sig(&h.reject(&t), "oracle 2", SignatureError::Mismatch);

    // Corrupt the signature itself: s not canonical.
    let mut w = h.withdraw(2, 10);
    w.signatures[0].s = [0xff; 32];
    assert_bad_sig(&h.reject(&w), "account 2", SignatureError::NonCanonicalS);
}

#[test]
fn bad_signature_wrong_domain() {
    let mut h = setup();
    // Account 2 signs an order; the signature is reused as a withdrawal signature.
    let order = h.order(2, CALL, Side::Buy, 5_000, 1);
    let sig = h.key(2).sign(order.message(h.state.params().chain_id));
    let w = SignedTx {
        tx: withdraw_tx(2, 10, 0),
        signatures: vec![sig],
    };
    assert_bad_sig(&h.reject(&w), "account 2", SignatureError::Mismatch);

    // And a withdrawal signature reused as a liquidation signature.
    let wd = withdraw_tx(2, 10, 0);
    let wsig = h.key(2).sign(wd.signed_messages(CHAIN_ID)[0].1);
    let l = SignedTx {
        tx: liquidation_tx(2, 3, CALL, 1, 1, 0, 0),
        signatures: vec![wsig],
    };
    assert_bad_sig(&h.reject(&l), "account 2", SignatureError::Mismatch);
}

#[test]
fn bad_signature_wrong_count() {
    let mut h = setup();
    let mut w = h.withdraw(2, 10);
    let sig = w.signatures[0];
    w.signatures.clear();
    match h.reject(&w) {
        Rejection::BadSignature { signer, source } => {
            assert_eq!(signer, "0 signatures for 1 messages");
            assert_eq!(source, SignatureError::Mismatch);
        }
        other => panic!("{other:?}"),
    }
    w.signatures = vec![sig, sig];
    match h.reject(&w) {
        Rejection::BadSignature { signer, .. } => {
            assert_eq!(signer, "2 signatures for 1 messages")
        }
        other => panic!("{other:?}"),
    }
    // A trade with only the buyer's signature.
    let mut t = h.simple_trade(2, 3, CALL, 1, 5_000);
    t.signatures.pop();
    assert!(matches!(
        h.reject(&t),
        Rejection::BadSignature {
            source: SignatureError::Mismatch,
            ..
        }
    ));
    // With the right count it goes through.
    w.signatures = vec![sig];
    h.accept(&w);
}

#[test]
fn invalid_key_for_a_new_account() {
    let mut h = setup();
    let d = SignedTx::unsigned(Tx::Deposit(Deposit {
        account: 7,
        pubkey: PublicKey::ZERO,
        amount: 10,
    }));
    assert_eq!(h.reject(&d), Rejection::InvalidKey(7));
    // An existing account ignores the key in the deposit.
    let d = SignedTx::unsigned(Tx::Deposit(Deposit {
        account: 2,
        pubkey: PublicKey::ZERO,
        amount: 10,
    }));
    h.accept(&d);
    assert_eq!(h.collateral(2), FUNDS + 10);
}

// ---------------------------------------------------------------------------------------------
// BadNonce
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_nonce_replayed_withdrawal() {
    let mut h = setup();
    let w = h.withdraw(2, 100);
    h.accept(&w);
    assert_eq!(h.collateral(2), FUNDS - 100);
    assert_eq!(h.state.account(2).unwrap().nonce, 1);
    assert_eq!(
        h.reject(&w),
        Rejection::BadNonce {
            expected: 1,
            got: 0
        }
    );
    assert_eq!(h.collateral(2), FUNDS - 100);
}

#[test]
fn bad_nonce_gapped() {
    let mut h = setup();
    let key = h.key(2);
    let w = withdraw_tx(2, 100, 1).sign(CHAIN_ID, &[&key]);
    assert_eq!(
        h.reject(&w),
        Rejection::BadNonce {
            expected: 0,
            got: 1
        }
    );
    let w = withdraw_tx(2, 100, 0).sign(CHAIN_ID, &[&key]);
    h.accept(&w);
    // Now nonce 1 is right, nonce 0 replays and 2 gaps.
    let w0 = withdraw_tx(2, 100, 0).sign(CHAIN_ID, &[&key]);
    assert_eq!(
        h.reject(&w0),
        Rejection::BadNonce {
            expected: 1,
            got: 0
        }
    );
    let w2 = withdraw_tx(2, 100, 2).sign(CHAIN_ID, &[&key]);
    assert_eq!(
        h.reject(&w2),
        Rejection::BadNonce {
            expected: 1,
            got: 2
        }
    );
}

#[test]
fn bad_nonce_liquidation_order() {
    let mut h = setup_liquidatable();
    let key = h.key(4);
    let l = liquidation_tx(4, 5, CALL, 1, 1, 0, 3).sign(CHAIN_ID, &[&key]);
    assert_eq!(
        h.reject(&l),
        Rejection::BadNonce {
            expected: 0,
            got: 3
        }
    );
    // A replayed liquidation order fails on its nonce.
    let l = h.liquidate(4, 5, CALL, 1, 0);
    h.accept(&l);
    assert_eq!(h.state.account(4).unwrap().nonce, 1);
    assert_eq!(
        h.reject(&l),
        Rejection::BadNonce {
            expected: 1,
            got: 0
        }
    );
}

// ---------------------------------------------------------------------------------------------
// InsufficientCollateral, InitialMarginViolated
// ---------------------------------------------------------------------------------------------

#[test]
fn insufficient_collateral() {
    let mut h = setup();
    let w = h.withdraw(2, FUNDS + 1);
    assert_eq!(
        h.reject(&w),
        Rejection::InsufficientCollateral {
            account: 2,
            available: FUNDS as u128,
            needed: FUNDS as u128 + 1
        }
    );
    // A buyer who cannot pay premium + fee (5_000 + 15).
    h.fund(6, 5_014);
    let t = h.simple_trade(6, 3, CALL, 1, 5_000);
    assert_eq!(
        h.reject(&t),
        Rejection::InsufficientCollateral {
            account: 6,
            available: 5_014,
            needed: 5_015
        }
    );
    // A liquidator buying a long victim's position without the cash.
    let mut h = setup();
    h.fund(6, 100);
    // Account 2 goes long 1 put and short 1 call; then the call rallies so 2 is liquidatable.
    h.fund(7, 20_000);
    h.fill(7, 3, PUT, 1, 4_000); // 7 long put
    h.fill(4, 7, CALL, 1, 5_000); // 7 short call
    let t = h.tick(20, &[(0, 110_000, vec![(CALL, 40_000), (PUT, 2_000)])]);
    h.accept(&t);
    assert!(h.state.margin(7).unwrap().is_liquidatable());
    // 6 buys 7's long put at 2_000 - 100 = 1_900 but holds 100.
    let l = h.liquidate(6, 7, PUT, 1, 1_900);
    assert_eq!(
        h.reject(&l),
        Rejection::InsufficientCollateral {
            account: 6,
            available: 100,
            needed: 1_900
        }
    );
}

#[test]
fn initial_margin_violated_by_trade() {
    let mut h = setup();
    // Short 10 calls at 5_000 needs im_equity >= 10·15_000: deposit + 50_000 - 150 - 50_000.
    h.fund(6, 150_149);
    let t = h.simple_trade(2, 6, CALL, 10, 5_000);
    assert_eq!(
        h.reject(&t),
        Rejection::InitialMarginViolated {
            account: 6,
            equity: 149_999,
            requirement: 150_000
        }
    );
    assert_eq!(h.position(6, CALL), 0);
    assert_eq!(h.position(2, CALL), 0);
}

#[test]
fn initial_margin_violated_by_withdrawal() {
    let mut h = setup();
    h.fill(2, 3, CALL, 10, 5_000);
    // Account 3: collateral 1_049_850, im_equity 999_850, requirement 150_000.
    let m = h.state.margin(3).unwrap();
    assert_eq!((m.im_equity, m.initial), (999_850, 150_000));
    let w = h.withdraw(3, 849_851);
    assert_eq!(
        h.reject(&w),
        Rejection::InitialMarginViolated {
            account: 3,
            equity: 149_999,
            requirement: 150_000
        }
    );
    assert_eq!(h.state.account(3).unwrap().nonce, 0);
}

// ---------------------------------------------------------------------------------------------
// Series and underlyings
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_series() {
    let mut h = setup();
    let t = h.simple_trade(2, 3, 7, 1, 5_000);
    assert_eq!(h.reject(&t), Rejection::UnknownSeries(7));
    let s = h.settle(2, 7);
    assert_eq!(h.reject(&s), Rejection::UnknownSeries(7));
    let l = h.liquidate(4, 2, 7, 1, 0);
    assert_eq!(h.reject(&l), Rejection::UnknownSeries(7));
    let t = h.tick(20, &[(0, K, vec![(2, 1_000)])]);
    assert_eq!(h.reject(&t), Rejection::UnknownSeries(2));
}

#[test]
fn series_expired_after_expiry_tick() {
    let mut h = setup_liquidatable();
    // One second before expiry the series still trades (an intermediate tick keeps the
    // underlying fresh: stale_after_secs is 600).
    let t = h.tick(500, &[(0, 110_000, vec![(CALL, 12_001)])]);
    h.accept(&t);
    let t = h.tick(EXPIRY - 1, &[(0, 110_000, vec![(CALL, 12_001)])]);
    h.accept(&t);
    h.fill(2, 3, CALL, 1, 12_000);
    let t = h.tick(EXPIRY, &[(0, 110_000, vec![])]);
    h.accept(&t);
    let t = h.simple_trade(2, 3, CALL, 1, 5_000);
    assert_eq!(h.reject(&t), Rejection::SeriesExpired(CALL.into()));
    let l = h.liquidate(4, 5, CALL, 1, 0);
    assert_eq!(h.reject(&l), Rejection::SeriesExpired(CALL.into()));
}

#[test]
fn series_not_settled() {
    let mut h = setup();
    h.fill(2, 3, CALL, 1, 5_000);
    let s = h.settle(2, CALL);
    assert_eq!(h.reject(&s), Rejection::SeriesNotSettled(CALL.into()));
    let t = h.tick(EXPIRY - 1, &[(0, 110_000, vec![])]);
    h.accept(&t);
    assert_eq!(h.reject(&s), Rejection::SeriesNotSettled(CALL.into()));
}

#[test]
fn unknown_underlying() {
    let mut h = setup();
    let r = h.register(1, K, EXPIRY, OptionKind::Call, 1);
    assert_eq!(h.reject(&r), Rejection::UnknownUnderlying(1));
    let t = h.tick(20, &[(1, K, vec![])]);
    assert_eq!(h.reject(&t), Rejection::UnknownUnderlying(1));
}

#[test]
fn no_price() {
    let mut h = Harness::new(ProtocolParams::small(), 2);
    let r = h.register(0, K, EXPIRY, OptionKind::Call, 1);
    h.accept(&r);
    let r = h.register(1, K, EXPIRY, OptionKind::Call, 1);
    h.accept(&r);
    h.fund(2, FUNDS);
    h.fund(3, FUNDS);
    let t = h.simple_trade(2, 3, 0, 1, 5_000);
    assert_eq!(h.reject(&t), Rejection::NoPrice(0));
    let t = h.tick(10, &[(0, K, vec![(0, 5_000)])]);
    h.accept(&t);
    let t = h.simple_trade(2, 3, 1, 1, 5_000);
    assert_eq!(h.reject(&t), Rejection::NoPrice(1));
    let l = h.liquidate(2, 3, 1, 1, 0);
    assert_eq!(h.reject(&l), Rejection::NoPrice(1));
    h.fill(2, 3, 0, 1, 5_000);
}

#[test]
fn position_limit() {
    let mut h = setup();
    for strike in [90_000, 110_000, 120_000] {
        let r = h.register(0, strike, EXPIRY, OptionKind::Call, 1);
        h.accept(&r);
    }
    for series in 0..4 {
        h.fill(2, 3, series, 1, 100);
    }
    // Buyer 2 has all 4 slots taken; a fifth series does not fit.
    let t = h.simple_trade(2, 4, 4, 1, 100);
    assert_eq!(h.reject(&t), Rejection::PositionLimit(2));
    // Seller 3 likewise.
    let t = h.simple_trade(4, 3, 4, 1, 100);
    assert_eq!(h.reject(&t), Rejection::PositionLimit(3));
    // Adding to an existing position needs no new slot.
    h.fill(2, 4, 3, 1, 100);
    assert_eq!(h.position(2, 3), 2);
}

#[test]
fn no_position() {
    let mut h = setup_liquidatable();
    // Account 5 is liquidatable but holds no put.
    let l = h.liquidate(4, 5, PUT, 1, 0);
    assert_eq!(
        h.reject(&l),
        Rejection::NoPosition {
            account: 5,
            series: PUT.into()
        }
    );
    let t = h.tick(EXPIRY, &[(0, 110_000, vec![])]);
    h.accept(&t);
    let s = h.settle(4, CALL);
    assert_eq!(
        h.reject(&s),
        Rejection::NoPosition {
            account: 4,
            series: CALL.into()
        }
    );
    let s = h.settle(2, PUT);
    assert_eq!(
        h.reject(&s),
        Rejection::NoPosition {
            account: 2,
            series: PUT.into()
        }
    );
    // Settling twice: the second finds no position.
    let s = h.settle(5, CALL);
    h.accept(&s);
    assert_eq!(
        h.reject(&s),
        Rejection::NoPosition {
            account: 5,
            series: CALL.into()
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

#[test]
fn order_mismatch_sides_and_series() {
    let mut h = setup();
    let msg_sides = Rejection::OrderMismatch("first order must buy and second must sell");
    // Both sell.
    let a = h.order(2, CALL, Side::Sell, 5_000, 1);
    let b = h.order(3, CALL, Side::Sell, 5_000, 1);
    let t = h.trade(a, b, 1, 5_000);
    assert_eq!(h.reject(&t), msg_sides);
    // Both buy.
    let a = h.order(2, CALL, Side::Buy, 5_000, 1);
    let b = h.order(3, CALL, Side::Buy, 5_000, 1);
    let t = h.trade(a, b, 1, 5_000);
    assert_eq!(h.reject(&t), msg_sides);
    // Swapped.
    let a = h.order(2, CALL, Side::Sell, 5_000, 1);
    let b = h.order(3, CALL, Side::Buy, 5_000, 1);
    let t = h.trade(a, b, 1, 5_000);
    assert_eq!(h.reject(&t), msg_sides);
    // Series mismatch.
    let a = h.order(2, CALL, Side::Buy, 5_000, 1);
    let b = h.order(3, PUT, Side::Sell, 4_000, 1);
    let t = h.trade(a, b, 1, 5_000);
    assert_eq!(
        h.reject(&t),
        Rejection::OrderMismatch("orders are for different series")
    );
}

#[test]
fn price_limit_buy_and_sell() {
    let mut h = setup();
    let b = h.order(2, CALL, Side::Buy, 6_000, 1);
    let s = h.order(3, CALL, Side::Sell, 5_000, 1);
    let t = h.trade(b.clone(), s.clone(), 1, 6_001);
    assert_eq!(
        h.reject(&t),
        Rejection::PriceLimit {
            price: 6_001,
            limit: 6_000
        }
    );
    let t = h.trade(b.clone(), s.clone(), 1, 4_999);
    assert_eq!(
        h.reject(&t),
        Rejection::PriceLimit {
            price: 4_999,
            limit: 5_000
        }
    );
    // Crossed orders: no price satisfies both.
    let b2 = h.order(2, CALL, Side::Buy, 4_000, 1);
    let t = h.trade(b2.clone(), s.clone(), 1, 4_500);
    assert_eq!(
        h.reject(&t),
        Rejection::PriceLimit {
            price: 4_500,
            limit: 4_000
        }
    );
    let t = h.trade(b2, s.clone(), 1, 4_000);
    assert_eq!(
        h.reject(&t),
        Rejection::PriceLimit {
            price: 4_000,
            limit: 5_000
        }
    );
    let t = h.trade(b, s, 1, 5_500);
    h.accept(&t);
}

#[test]
fn price_limit_liquidation() {
    let mut h = setup_liquidatable();
    // Short victim: the liquidator sells at mark + 5% = 12_001 + 601 = 12_602; its limit is the
    // lowest it takes.
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
}

#[test]
fn order_expired() {
    let mut h = setup();
    // Time is 10.
    let mut b = h.order(2, CALL, Side::Buy, 5_000, 1);
    b.expiry = 9;
    let s = h.order(3, CALL, Side::Sell, 5_000, 1);
    let t = h.trade(b, s, 1, 5_000);
    assert_eq!(h.reject(&t), Rejection::OrderExpired { expiry: 9, now: 10 });
    let b = h.order(2, CALL, Side::Buy, 5_000, 1);
    let mut s = h.order(3, CALL, Side::Sell, 5_000, 1);
    s.expiry = 0;
    let t = h.trade(b, s, 1, 5_000);
    assert_eq!(h.reject(&t), Rejection::OrderExpired { expiry: 0, now: 10 });
}

#[test]
fn order_id_stale() {
    let mut h = setup();
    // small params: order_slot_depth 2, so slot = id mod 4; ids 5 and 1 share slot 1.
    let mut b = h.order(2, CALL, Side::Buy, 5_000, 1);
    b.order_id = 5;
    let s = h.order(3, CALL, Side::Sell, 5_000, 1);
    let t = h.trade(b, s, 1, 5_000);
    h.accept(&t);
    assert_eq!(h.state.account(2).unwrap().orders[&1].order_id, 5);
    let mut b = h.order(2, CALL, Side::Buy, 5_000, 1);
    b.order_id = 1;
    let s = h.order(3, CALL, Side::Sell, 5_000, 1);
    let t = h.trade(b, s, 1, 5_000);
    assert_eq!(
        h.reject(&t),
        Rejection::OrderIdStale {
            order_id: 1,
            slot_order_id: 5
        }
    );
    // On the sell side too.
    let b = h.order(4, CALL, Side::Buy, 5_000, 1);
    let mut s = h.order(2, CALL, Side::Sell, 5_000, 1);
    s.order_id = 1;
    let t = h.trade(b, s, 1, 5_000);
    assert_eq!(
        h.reject(&t),
        Rejection::OrderIdStale {
            order_id: 1,
            slot_order_id: 5
        }
    );
    // A newer id in the same slot replaces it: id 9.
    let mut b = h.order(2, CALL, Side::Buy, 5_000, 1);
    b.order_id = 9;
    let s = h.order(3, CALL, Side::Sell, 5_000, 1);
    let t = h.trade(b, s, 1, 5_000);
    h.accept(&t);
    let slot = h.state.account(2).unwrap().orders[&1];
    assert_eq!((slot.order_id, slot.filled), (9, 1));
}

#[test]
fn overfilled_partial_fills_across_counterparties() {
    let mut h = setup();
    h.fund(6, FUNDS);
    let b = h.order(2, CALL, Side::Buy, 5_000, 5);
    let slot = b.order_id & 3;
    let s1 = h.order(3, CALL, Side::Sell, 5_000, 3);
    let first = h.trade(b.clone(), s1, 3, 5_000);
    h.accept(&first);
    let o = h.state.account(2).unwrap().orders[&slot];
    assert_eq!((o.order_id, o.filled), (b.order_id, 3));

    // The same signed buy order, matched with a new counterparty.
    let s2 = h.order(4, CALL, Side::Sell, 5_000, 2);
    let mut second = h.trade(b.clone(), s2, 2, 5_000);
    second.signatures[0] = first.signatures[0];
    h.accept(&second);
    let o = h.state.account(2).unwrap().orders[&slot];
    assert_eq!((o.order_id, o.filled), (b.order_id, 5));
    assert_eq!(h.position(2, CALL), 5);

    let s3 = h.order(6, CALL, Side::Sell, 5_000, 1);
    let mut third = h.trade(b, s3, 1, 5_000);
    third.signatures[0] = first.signatures[0];
    assert_eq!(
        h.reject(&third),
        Rejection::Overfilled {
            filled: 6,
            max_size: 5
        }
    );
    assert_eq!(h.position(6, CALL), 0);
}

#[test]
fn overfilled_replayed_trade() {
    let mut h = setup();
    let t = h.simple_trade(2, 3, CALL, 10, 5_000);
    h.accept(&t);
    let (c2, c3) = (h.collateral(2), h.collateral(3));
    assert_eq!(
        h.reject(&t),
        Rejection::Overfilled {
            filled: 20,
            max_size: 10
        }
    );
    assert_eq!((h.collateral(2), h.collateral(3)), (c2, c3));
    assert_eq!(h.position(2, CALL), 10);
}

#[test]
fn overfilled_liquidation_beyond_its_max_size() {
    let mut h = setup_liquidatable();
    let key = h.key(4);
    let l = liquidation_tx(4, 5, CALL, 2, 3, 0, 0).sign(CHAIN_ID, &[&key]);
    assert_eq!(
        h.reject(&l),
        Rejection::Overfilled {
            filled: 3,
            max_size: 2
        }
    );
}

#[test]
fn fee_cap_exceeded() {
    let mut h = setup();
    let mut b = h.order(2, CALL, Side::Buy, 5_000, 1);
    b.max_fee_bps = 29;
    let s = h.order(3, CALL, Side::Sell, 5_000, 1);
    let t = h.trade(b, s, 1, 5_000);
    assert_eq!(
        h.reject(&t),
        Rejection::FeeCapExceeded {
            fee_bps: 30,
            cap_bps: 29
        }
    );
    let b = h.order(2, CALL, Side::Buy, 5_000, 1);
    let mut s = h.order(3, CALL, Side::Sell, 5_000, 1);
    s.max_fee_bps = 0;
    let t = h.trade(b, s, 1, 5_000);
    assert_eq!(
        h.reject(&t),
        Rejection::FeeCapExceeded {
            fee_bps: 30,
            cap_bps: 0
        }
    );
}

#[test]
fn self_trade() {
    let mut h = setup_liquidatable();
    let t = h.simple_trade(2, 2, CALL, 1, 5_000);
    assert_eq!(h.reject(&t), Rejection::SelfTrade);
    let l = h.liquidate(5, 5, CALL, 1, 0);
    assert_eq!(h.reject(&l), Rejection::SelfTrade);
}

// ---------------------------------------------------------------------------------------------
// Liquidation
// ---------------------------------------------------------------------------------------------

#[test]
fn not_liquidatable() {
    let mut h = setup_victim();
    // Exactly at initial margin, well above maintenance: equity 150_000 >= 100_000.
    let l = h.liquidate(4, 5, CALL, 1, 0);
    assert_eq!(
        h.reject(&l),
        Rejection::NotLiquidatable {
            account: 5,
            equity: 150_000,
            requirement: 100_000
        }
    );
    // An account with no short at all.
    let l = h.liquidate(4, 2, CALL, 1, u64::MAX);
    assert!(matches!(
        h.reject(&l),
        Rejection::NotLiquidatable { account: 2, .. }
    ));
}

#[test]
fn liquidation_too_large() {
    let mut h = setup_liquidatable();
    let l = h.liquidate(4, 5, CALL, 11, 0);
    assert_eq!(
        h.reject(&l),
        Rejection::LiquidationTooLarge {
            size: 11,
            position: 10
        }
    );
}

#[test]
fn liquidation_of_a_short_moves_exact_amounts() {
    let mut h = setup_liquidatable();
    let total = h.state.total_collateral();
    let (fee0, fund0) = (h.collateral(FEE_ACCOUNT), h.collateral(INSURANCE_FUND));
    // price = mark + ceil(5% · mark) = 12_001 + ceil(600.05) = 12_602.
    let price = 12_001 + ceil_div(12_001 * 500, 10_000) as u64;
    assert_eq!(price, 12_602);
    let l = h.liquidate(4, 5, CALL, 4, price);
    h.accept(&l);
    assert_eq!(h.collateral(5), 200_000 - 4 * price);
    assert_eq!(h.position(5, CALL), -6);
    assert_eq!(h.collateral(4), FUNDS + 4 * price);
    assert_eq!(h.position(4, CALL), -4);
    assert_eq!(h.state.account(4).unwrap().nonce, 1);
    assert_eq!(h.collateral(FEE_ACCOUNT), fee0);
    assert_eq!(h.collateral(INSURANCE_FUND), fund0);
    assert_eq!(h.state.total_collateral(), total);
    // Victim: equity 149_592 - 72_006 = 77_586 >= 6·11_000, no longer liquidatable.
    let m = h.state.margin(5).unwrap();
    assert_eq!(m.equity, 77_586);
    assert_eq!(m.maintenance, 66_000);
    let l = h.liquidate(4, 5, CALL, 1, 0);
    assert!(matches!(
        h.reject(&l),
        Rejection::NotLiquidatable { account: 5, .. }
    ));
    assert_eq!(h.position(5, CALL), -6);
}

#[test]
fn victim_position_only_shrinks() {
    let mut h = setup_victim();
    // Deeply underwater: equity 200_000 - 10·40_000 < 0.
    let t = h.tick(20, &[(0, 110_000, vec![(CALL, 40_000)])]);
    h.accept(&t);
    h.fund(INSURANCE_FUND, 10_000_000);
    let mut prev = h.position(5, CALL);
    for size in [3, 3, 3, 1] {
        let l = h.liquidate(4, 5, CALL, size, 0);
        h.accept(&l);
        let now = h.position(5, CALL);
        assert!(now <= 0 && now.unsigned_abs() < prev.unsigned_abs());
        assert_eq!(prev - now, -(size as i64));
        prev = now;
    }
    assert_eq!(h.position(5, CALL), 0);
    // Nothing left: not liquidatable any more (no requirement) or no position.
    let l = h.liquidate(4, 5, CALL, 1, 0);
    let err = h.reject(&l);
    assert!(matches!(
        err,
        Rejection::NotLiquidatable { .. } | Rejection::NoPosition { .. }
    ));
}

/// Account 5 underwater: spot 119_000 (a 19% move, no trip), mark 25_000; equity -50_000.
fn setup_underwater() -> Harness {
    let mut h = setup_victim();
    let t = h.tick(20, &[(0, 119_000, vec![(CALL, 25_000)])]);
    h.accept(&t);
    assert_eq!(h.state.margin(5).unwrap().equity, -50_000);
    h
}

#[test]
fn insurance_fund_exhausted_by_liquidation() {
    let mut h = setup_underwater();
    // price 25_000 + 1_250; cost 10·26_250 = 262_500; victim has 200_000; deficit 62_500.
    let l = h.liquidate(4, 5, CALL, 10, 0);
    assert_eq!(
        h.reject(&l),
        Rejection::InsuranceFundExhausted {
            available: 0,
            needed: 62_500
        }
    );
    h.fund(INSURANCE_FUND, 62_499);
    assert_eq!(
        h.reject(&l),
        Rejection::InsuranceFundExhausted {
            available: 62_499,
            needed: 62_500
        }
    );
}

#[test]
fn insurance_fund_covers_deficit_when_funded() {
    let mut h = setup_underwater();
    h.fund(INSURANCE_FUND, 100_000);
    let total = h.state.total_collateral();
    let l = h.liquidate(4, 5, CALL, 10, 26_250);
    h.accept(&l);
    assert_eq!(h.collateral(5), 0);
    assert_eq!(h.position(5, CALL), 0);
    assert_eq!(h.collateral(INSURANCE_FUND), 100_000 - 62_500);
    assert_eq!(h.collateral(4), FUNDS + 262_500);
    assert_eq!(h.position(4, CALL), -10);
    assert_eq!(h.state.total_collateral(), total);
}

#[test]
fn insurance_fund_exhausted_by_settling_a_long_first() {
    let mut h = setup();
    h.fill(2, 3, CALL, 10, 5_000);
    let t = h.tick(EXPIRY, &[(0, 110_000, vec![])]);
    h.accept(&t);
    assert_eq!(h.state.series()[CALL as usize].settlement_price, 110_000);
    let c2 = h.collateral(2);
    let s2 = h.settle(2, CALL);
    assert_eq!(
        h.reject(&s2),
        Rejection::InsuranceFundExhausted {
            available: 0,
            needed: 100_000
        }
    );
    // Once the short pays in, the long can be paid.
    let c3 = h.collateral(3);
    let s3 = h.settle(3, CALL);
    h.accept(&s3);
    assert_eq!(h.collateral(3), c3 - 100_000);
    assert_eq!(h.collateral(INSURANCE_FUND), 100_000);
    h.accept(&s2);
    assert_eq!(h.collateral(2), c2 + 100_000);
    assert_eq!(h.collateral(INSURANCE_FUND), 0);
    assert_eq!(h.position(2, CALL), 0);
    assert_eq!(h.position(3, CALL), 0);
}

// ---------------------------------------------------------------------------------------------
// Breaker
// ---------------------------------------------------------------------------------------------

#[test]
fn liquidations_paused_and_breaker_tripped() {
    let mut h = setup_victim();
    // A 25% move trips the breaker until 20 + 300.
    let t = h.tick(20, &[(0, 125_000, vec![(CALL, 30_000)])]);
    let e = h.accept(&t);
    assert!(e.prices[0].tripped);
    assert_eq!(h.state.underlyings()[0].tripped_until, 320);
    assert!(h.state.margin(5).unwrap().is_liquidatable());
    let l = h.liquidate(4, 5, CALL, 1, 0);
    assert_eq!(h.reject(&l), Rejection::LiquidationsPaused(0));
    // 4 opens a new long, 3 a new short: risk-increasing.
    let t = h.simple_trade(4, 3, CALL, 1, 30_000);
    assert_eq!(h.reject(&t), Rejection::BreakerTripped(0));
}

// ---------------------------------------------------------------------------------------------
// Ticks and registration
// ---------------------------------------------------------------------------------------------

#[test]
fn stale_timestamp() {
    let mut h = setup();
    let t = h.tick(10, &[(0, K, vec![])]);
    assert_eq!(
        h.reject(&t),
        Rejection::StaleTimestamp {
            previous: 10,
            got: 10
        }
    );
    let t = h.tick(9, &[(0, K, vec![])]);
    assert_eq!(
        h.reject(&t),
        Rejection::StaleTimestamp {
            previous: 10,
            got: 9
        }
    );
    let t = h.tick(11, &[(0, K, vec![])]);
    h.accept(&t);
}

#[test]
fn bad_tick_each_message() {
    let mut h = Harness::new(ProtocolParams::small(), 2);
    let r = h.register(0, K, EXPIRY, OptionKind::Call, 1); // series 0 on U0
    h.accept(&r);
    let r = h.register(0, K, EXPIRY, OptionKind::Put, 1); // series 1 on U0
    h.accept(&r);
    let r = h.register(1, K, EXPIRY, OptionKind::Call, 1); // series 2 on U1
    h.accept(&r);
    let ts = 10;
    let ok = |u: u32, marks: &[(u32, u64)]| UnderlyingTick {
        underlying: u,
        reports: quorum_reports(u, ts, K, marks),
    };
    let mut cases: Vec<(OracleTick, &str)> = vec![
        (
            tick_of(ts, vec![]),
            "a tick must price at least one underlying",
        ),
        (
            tick_of(ts, vec![ok(1, &[]), ok(0, &[])]),
            "underlyings must be strictly ascending",
        ),
        (
            tick_of(ts, vec![ok(0, &[]), ok(0, &[])]),
            "underlyings must be strictly ascending",
        ),
        (
            tick_of(ts, vec![ok(0, &[(1, 5), (0, 5)])]),
            "marks must be by strictly ascending series",
        ),
        (
            tick_of(ts, vec![ok(0, &[(0, 5), (0, 5)])]),
            "marks must be by strictly ascending series",
        ),
        (
            tick_of(ts, vec![ok(0, &[(2, 5)])]),
            "mark quoted for a series of another underlying",
        ),
    ];
    let mut few = ok(0, &[]);
    few.reports.pop();
    cases.push((tick_of(ts, vec![few]), "fewer reports than the quorum"));
    let mut dup = ok(0, &[]);
    dup.reports[1].oracle = 0;
    cases.push((
        tick_of(ts, vec![dup]),
        "signers must be strictly ascending (no duplicates)",
    ));
    let mut unsorted = ok(0, &[]);
    unsorted.reports.swap(0, 1);
    cases.push((
        tick_of(ts, vec![unsorted]),
        "signers must be strictly ascending (no duplicates)",
    ));
    let mut wrong_time = ok(0, &[]);
    wrong_time.reports[2].timestamp = ts + 1;
    cases.push((
        tick_of(ts, vec![wrong_time]),
        "report underlying or time differs from the tick",
    ));
    let mut wrong_u = ok(0, &[]);
    wrong_u.reports[1].underlying = 1;
    cases.push((
        tick_of(ts, vec![wrong_u]),
        "report underlying or time differs from the tick",
    ));
    let mut other_series = ok(0, &[(0, 5)]);
    other_series.reports[1].marks[0].series = 1;
    cases.push((
        tick_of(ts, vec![other_series]),
        "reports must quote the same series",
    ));
    let mut fewer_marks = ok(0, &[(0, 5), (1, 5)]);
    fewer_marks.reports[2].marks.pop();
    cases.push((
        tick_of(ts, vec![fewer_marks]),
        "reports must quote the same series",
    ));
    // A bad second underlying rejects the whole tick, including the good first one.
    let mut few_u1 = ok(1, &[]);
    few_u1.reports.truncate(1);
    cases.push((
        tick_of(ts, vec![ok(0, &[]), few_u1]),
        "fewer reports than the quorum",
    ));

    for (tick, msg) in cases {
        let stx = h.sign_tick(tick);
        assert_eq!(h.reject(&stx), Rejection::BadTick(msg), "{msg}");
    }
    assert_eq!(h.state.time(), 0);
    assert_eq!(h.state.underlyings()[0].spot, 0);
    let stx = h.sign_tick(tick_of(
        ts,
        vec![ok(0, &[(0, 5), (1, 5)]), ok(1, &[(2, 5)])],
    ));
    h.accept(&stx);
}

#[test]
fn unregistered_oracle() {
    let mut h = setup();
    let mut ut = UnderlyingTick {
        underlying: 0,
        reports: quorum_reports(0, 20, K, &[]),
    };
    ut.reports[2].oracle = 4; // small params register oracles 0..=3
    let stx = h.sign_tick(tick_of(20, vec![ut.clone()]));
    assert_eq!(h.reject(&stx), Rejection::UnregisteredOracle(4));
    ut.reports[2].oracle = u32::MAX;
    let stx = h.sign_tick(tick_of(20, vec![ut.clone()]));
    assert_eq!(
        h.reject(&stx),
        Rejection::UnregisteredOracle(u32::MAX.into())
    );
    // The rule itself (without signature resolution) names it too.
    ut.reports[2].oracle = 4;
    assert_eq!(
        h.state
            .check(&Tx::OracleTick(tick_of(20, vec![ut])))
            .unwrap_err(),
        Rejection::UnregisteredOracle(4)
    );
}

#[test]
fn registry_full() {
    let mut h = setup();
    for i in 0..6 {
        let r = h.register(0, K + 1_000 * (i + 1), EXPIRY, OptionKind::Call, 1);
        h.accept(&r);
    }
    assert_eq!(h.state.series().len(), 8);
    let r = h.register(0, 1, EXPIRY, OptionKind::Put, 1);
    assert_eq!(h.reject(&r), Rejection::RegistryFull(8));
}

#[test]
fn invalid_series() {
    let mut h = setup();
    let r = h.register(0, K, EXPIRY, OptionKind::Call, 1);
    assert_eq!(
        h.reject(&r),
        Rejection::InvalidSeries("an identical series is already registered")
    );
    // Time is 10: expiry at or before it is refused.
    let r = h.register(0, K, 10, OptionKind::Call, 1);
    assert_eq!(
        h.reject(&r),
        Rejection::InvalidSeries("expiry must be after the current time")
    );
    let r = h.register(0, K, 3, OptionKind::Call, 1);
    assert_eq!(
        h.reject(&r),
        Rejection::InvalidSeries("expiry must be after the current time")
    );
    // Differing in any field is a new series.
    for (strike, expiry, kind, cs) in [
        (K, 11, OptionKind::Call, 1),
        (K, EXPIRY, OptionKind::Call, 2),
        (K + 1, EXPIRY, OptionKind::Call, 1),
    ] {
        let r = h.register(0, strike, expiry, kind, cs);
        h.accept(&r);
    }
}

// ---------------------------------------------------------------------------------------------
// Overflow
// ---------------------------------------------------------------------------------------------

#[test]
fn overflow_collateral_from_deposits() {
    let mut h = setup();
    let half = 1u64 << 62;
    h.fund(6, half);
    h.fund(6, half - 1); // 2^63 - 1: the largest collateral
    assert_eq!(h.collateral(6), (1 << 63) - 1);
    let d = h.deposit(6, 1);
    assert_eq!(h.reject(&d), Rejection::Overflow("collateral"));
    let mut h = setup();
    h.fund(6, half);
    let d = h.deposit(6, half);
    assert_eq!(h.reject(&d), Rejection::Overflow("collateral"));
}

#[test]
fn overflow_fee_account() {
    let mut h = setup();
    h.fund(FEE_ACCOUNT, (1 << 63) - 1);
    let t = h.simple_trade(2, 3, CALL, 1, 5_000);
    assert_eq!(h.reject(&t), Rejection::Overflow("fee account collateral"));
}

#[test]
fn overflow_insurance_fund_at_settlement() {
    let mut h = setup();
    h.fill(2, 3, CALL, 1, 5_000);
    let t = h.tick(EXPIRY, &[(0, 110_000, vec![])]);
    h.accept(&t);
    h.fund(INSURANCE_FUND, (1 << 63) - 1);
    let s = h.settle(3, CALL);
    assert_eq!(
        h.reject(&s),
        Rejection::Overflow("insurance fund collateral")
    );
}

#[test]
fn overflow_position_size() {
    let mut h = setup();
    let max = (1u64 << bounds::SIZE_BITS) - 1;
    h.fund(6, 1 << 62);
    h.fund(7, 1 << 62);
    // 7 buys 2^40 - 1 contracts at price 1 from 6: the largest position either side.
    h.fill(7, 6, CALL, max, 1);
    assert_eq!(h.position(7, CALL), max as i64);
    assert_eq!(h.position(6, CALL), -(max as i64));
    // One more contract on the long side...
    let t = h.simple_trade(7, 2, CALL, 1, 1);
    assert_eq!(h.reject(&t), Rejection::Overflow("position size"));
    // ...or on the short side leaves the size bound.
    let t = h.simple_trade(3, 6, CALL, 1, 1);
    assert_eq!(h.reject(&t), Rejection::Overflow("position size"));
}

#[test]
fn overflow_liquidation_price() {
    let mut h = setup_victim();
    // A mark of 2^64 - 1: mark + 5% leaves the contract-price bound.
    let t = h.tick(20, &[(0, 100_000, vec![(CALL, u64::MAX)])]);
    h.accept(&t);
    let l = h.liquidate(4, 5, CALL, 1, 0);
    assert_eq!(h.reject(&l), Rejection::Overflow("liquidation price"));
}

#[test]
fn overflow_breaker_tripped_until() {
    let mut h = setup();
    // A trip at the last representable time would end past 2^40.
    let t = h.tick((1 << 40) - 1, &[(0, 200_000, vec![])]);
    assert_eq!(h.reject(&t), Rejection::Overflow("breaker tripped_until"));
}

// ---------------------------------------------------------------------------------------------
// Positive: fees
// ---------------------------------------------------------------------------------------------

#[test]
fn fees_credited_to_fee_account() {
    let mut h = setup();
    let (size, price) = (3u64, 5_001u64);
    let premium = u128::from(size * price);
    let fee = ceil_div(premium * 30, 10_000);
    assert_eq!(fee, 46); // 45.009 rounded up
    let e = h.fill(2, 3, CALL, size, price);
    assert_eq!(e.fees, 2 * fee);
    assert_eq!(u128::from(h.collateral(FEE_ACCOUNT)), 2 * fee);
    assert_eq!(
        u128::from(h.collateral(2)),
        u128::from(FUNDS) - premium - fee
    );
    assert_eq!(
        u128::from(h.collateral(3)),
        u128::from(FUNDS) + premium - fee
    );
    assert_eq!(h.state.total_collateral(), 3 * u128::from(FUNDS));
    // A second trade adds its own fees.
    let e = h.fill(4, 3, PUT, 1, 1);
    assert_eq!(e.fees, 2); // ceil(0.003) = 1 per side
    assert_eq!(u128::from(h.collateral(FEE_ACCOUNT)), 2 * fee + 2);
}

#[test]
fn overflow_liquidator_and_settled_long_collateral() {
    // A liquidator already at the collateral bound cannot receive the liquidation price.
    let mut h = setup_liquidatable();
    h.fund(6, (1 << 63) - 1);
    let l = h.liquidate(6, 5, CALL, 1, 0);
    assert_eq!(h.reject(&l), Rejection::Overflow("collateral"));
    // A long at the bound cannot be paid its settlement value.
    let mut h = setup();
    h.fund(6, (1 << 63) - 1 - 5_015);
    h.fill(6, 3, CALL, 1, 5_000);
    assert_eq!(h.collateral(6), (1 << 63) - 1 - 2 * 5_015);
    let t = h.tick(EXPIRY, &[(0, 200_000, vec![])]);
    h.accept(&t);
    let s = h.settle(3, CALL);
    h.accept(&s);
    assert_eq!(h.collateral(INSURANCE_FUND), 100_000);
    let s = h.settle(6, CALL);
    assert_eq!(h.reject(&s), Rejection::Overflow("collateral"));
}

/// PROTOCOL §2.3 bounds every "order `max_size`" by `2^40` and says an input outside its bound
/// is rejected with `OutOfRange`; `check_trade` does so for both trade orders, but
/// `check_liquidate` (and the rule list of §7.4) never range-checks the liquidation order's
/// `max_size`, so a signed liquidation order with `max_size = 2^40` or `u64::MAX` is accepted.
/// A circuit that range-checks every §2.3 quantity would reject what the reference accepts.
#[test]
fn liquidation_order_max_size_out_of_range() {
    let mut h = setup_liquidatable();
    let key = h.key(4);
    for max_size in [1u64 << 40, u64::MAX] {
        let l = liquidation_tx(4, 5, CALL, max_size, 1, 0, 0).sign(CHAIN_ID, &[&key]);
        let err = h.reject(&l);
        assert!(
            matches!(err, Rejection::OutOfRange { bits: 40, .. }),
            "{err:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Insurance fund covers only insolvent accounts; withdrawals respect breakers
// ---------------------------------------------------------------------------------------------

#[test]
fn insurance_fund_does_not_cover_a_victim_holding_longs() {
    let mut h = setup();
    h.fund(INSURANCE_FUND, 100_000);
    h.fund(5, 160_000);
    h.fill(2, 5, CALL, 10, 5_000);
    h.fill(5, 3, PUT, 1, 4_000);
    let t = h.tick(20, &[(0, 119_000, vec![(CALL, 25_000), (PUT, 1)])]);
    h.accept(&t);
    let m = h.state.margin(5).unwrap();
    assert!(m.is_liquidatable() && m.equity < 0, "{m:?}");
    let c5 = u128::from(h.collateral(5));
    // Taking over the shorts would leave a deficit while the victim still holds a long put.
    let l = h.liquidate(4, 5, CALL, 10, 0);
    assert_eq!(
        h.reject(&l),
        Rejection::InsufficientCollateral {
            account: 5,
            available: c5,
            needed: 10 * 26_250
        }
    );
    // Liquidating the long first (at mark 1 - penalty 1 = 0), then the shorts, is accepted.
    let l = h.liquidate(4, 5, PUT, 1, 0);
    h.accept(&l);
    assert_eq!(h.position(5, PUT), 0);
    let l = h.liquidate(4, 5, CALL, 10, 0);
    h.accept(&l);
    assert_eq!(h.collateral(5), 0);
    assert_eq!(
        u128::from(h.collateral(INSURANCE_FUND)),
        100_000 - (10 * 26_250 - c5)
    );
}

#[test]
fn settlement_shortfall_is_not_absorbed_while_the_account_holds_longs() {
    let mut h = setup();
    h.fund(5, 160_000);
    h.fill(2, 5, CALL, 10, 5_000);
    h.fill(5, 3, PUT, 1, 4_000);
    // Settles at 130_000: the short owes 10·30_000 = 300_000, more than its collateral.
    let t = h.tick(EXPIRY, &[(0, 130_000, vec![])]);
    h.accept(&t);
    let c5 = u128::from(h.collateral(5));
    let s = h.settle(5, CALL);
    assert_eq!(
        h.reject(&s),
        Rejection::InsufficientCollateral {
            account: 5,
            available: c5,
            needed: 300_000
        }
    );
    // Settling the (worthless) long put first lets the fund absorb the shortfall.
    let p = h.settle(5, PUT);
    h.accept(&p);
    let fund = h.collateral(INSURANCE_FUND);
    h.accept(&s);
    assert_eq!(h.collateral(5), 0);
    assert_eq!(
        u128::from(h.collateral(INSURANCE_FUND)),
        u128::from(fund) + c5
    );
}

#[test]
fn withdrawals_wait_for_a_tripped_breaker_when_holding_positions() {
    let mut h = setup();
    h.fill(2, 3, CALL, 1, 5_000);
    // A 25% move trips the breaker of underlying 0.
    let t = h.tick(20, &[(0, 125_000, vec![])]);
    h.accept(&t);
    let w = h.withdraw(2, 1_000);
    assert_eq!(h.reject(&w), Rejection::BreakerTripped(0));
    // An account without positions may still withdraw.
    let w = h.withdraw(4, 1_000);
    h.accept(&w);
}
