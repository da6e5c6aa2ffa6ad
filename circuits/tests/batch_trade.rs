//! Trades in the batch circuit (§7.3): batches of trades with partial fills, new and closed
//! positions and the fee account as a party prove the native public inputs; forged trades that
//! break one rule each (limits, expiry, fee cap, fills, margin, breakers, fees, slots) are
//! rejected, while the same trade at the boundary is accepted.

use collar_circuits::batch::{build_batch, BatchWitness};
use collar_circuits::testing::{Failure, MockOutcome, MockRun};
use collar_protocol::account::OrderSlot;
use collar_protocol::batch;
use collar_protocol::margin::ceil_bps;
use collar_protocol::testkit::signer_key;
use collar_protocol::testkit::Harness;
use collar_protocol::tx::{Side, Trade};
use collar_protocol::{OptionKind, ProtocolParams, State, Tx, FEE_ACCOUNT};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

const K: u32 = 18;
const CAPACITY: usize = 3;

/// Series 0: a call; series 1: a put. Accounts 2–5 funded; 2 long 10 calls from 3.
fn setup() -> Harness {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    for (strike, kind) in [(100_000, OptionKind::Call), (90_000, OptionKind::Put)] {
        let r = h.register(0, strike, 10_000, kind, 1);
        h.accept(&r);
    }
    let t = h.tick(10, &[(0, 100_000, vec![(0, 5_000), (1, 2_000)])]);
    h.accept(&t);
    h.fund(FEE_ACCOUNT, 10_000);
    h.fund(2, 1_000_000);
    h.fund(3, 300_000);
    h.fund(4, 400_000);
    h.fund(5, 200_000);
    h.fill(2, 3, 0, 10, 5_000);
    h
}

fn run(
    before: &State,
    txs: &[Tx],
    edit: impl FnOnce(&mut BatchWitness),
) -> (MockOutcome<()>, Vec<Fr>) {
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 3, txs).unwrap();
    let mut w = BatchWitness::new(before, &exec, CAPACITY).unwrap();
    edit(&mut w);
    w.reseal(before).unwrap();
    // A forged order is signed by its account, so only the rule under test can reject it.
    w.resign_with(signer_key);
    let expected = exec.public_inputs.to_fields().to_vec();
    let out = MockRun::new(K, 16).run(|ctx, range| ((), build_batch(ctx, range, &w)), None, None);
    (out, expected)
}

fn trade_of(w: &mut BatchWitness, slot: usize) -> &mut Trade {
    match &mut w.slots[slot].tx {
        Some(Tx::Trade(t)) => t,
        _ => panic!("slot {slot} is not a trade"),
    }
}

/// Rewrites slot `slot`'s ports from its (possibly forged) trade as the §7.3 effects would be
/// computed with every check skipped: the witness an operator breaking one rule would submit.
fn apply_unchecked(w: &mut BatchWitness, slot: usize) {
    let t = trade_of(w, slot).clone();
    let bps = w.params.trade_fee_bps;
    let depth = w.params.order_slot_depth;
    let premium = u128::from(t.size) * u128::from(t.price);
    let fee = ceil_bps(premium, bps) as u64;
    let premium = premium as u64;
    let ports = &mut w.slots[slot].ports;
    for (i, (o, delta)) in [(&t.buy, t.size as i64), (&t.sell, -(t.size as i64))]
        .into_iter()
        .enumerate()
    {
        let mut acc = ports[i].before.clone();
        let s = o.order_id & ((1 << depth) - 1);
        let stored = acc.orders.get(&s).copied().unwrap_or_default();
        let already = if stored.order_id == o.order_id {
            stored.filled
        } else {
            0
        };
        acc.orders.insert(
            s,
            OrderSlot {
                order_id: o.order_id,
                filled: already + t.size,
            },
        );
        acc.collateral = if i == 0 {
            acc.collateral.wrapping_sub(premium + fee)
        } else {
            acc.collateral + premium - fee
        };
        let new = acc.position(o.series) + delta;
        assert!(
            acc.set_position(o.series, new),
            "forged trade needs a free slot"
        );
        ports[i].after = acc;
    }
    let mut fee_acc = ports[2].before.clone();
    fee_acc.collateral += 2 * fee;
    ports[2].after = fee_acc;
}

/// Runs `txs` (valid natively) with slot `slot`'s trade replaced by `forge`'s edit and its
/// effects recomputed without checks; the Merkle paths are made consistent again, so only the
/// broken rule can reject it.
fn forged(
    before: &State,
    txs: &[Tx],
    slot: usize,
    forge: impl FnOnce(&mut Trade),
) -> MockOutcome<()> {
    run(before, txs, |w| {
        forge(trade_of(w, slot));
        let t = trade_of(w, slot).clone();
        w.slots[slot].ports[0].account = t.buy.account;
        w.slots[slot].ports[1].account = t.sell.account;
        w.reseal(before).unwrap();
        apply_unchecked(w, slot);
    })
    .0
}

/// Asserts that `txs` is accepted natively and by the circuit, and that the forged variant is
/// rejected natively and by the circuit.
fn boundary(h: &Harness, txs: &[Tx], forge: impl Fn(&mut Trade)) -> MockOutcome<()> {
    let (ok, _) = run(&h.state, txs, |_| {});
    assert!(ok.is_satisfied(), "boundary case: {:?}", ok.failures);
    let mut t = match &txs[0] {
        Tx::Trade(t) => t.clone(),
        _ => panic!("first tx must be a trade"),
    };
    forge(&mut t);
    assert!(
        h.state.check(&Tx::Trade(t)).is_err(),
        "the forged trade is invalid natively"
    );
    let bad = forged(&h.state, txs, 0, forge);
    assert!(!bad.is_satisfied(), "forged trade accepted");
    bad
}

/// The rule checks of the slot gadgets are `(a - b)·sel` cells copy-constrained to the constant
/// 0 (halo2-base's `assert_is_const`), so a broken rule fails the permutation argument.
fn rule_failed(out: &MockOutcome<()>) -> bool {
    out.failures.contains(&Failure::Permutation)
}

fn lookup_failed(out: &MockOutcome<()>) -> bool {
    out.failures.iter().any(|f| matches!(f, Failure::Lookup(_)))
}

#[test]
fn price_limits_are_enforced_at_the_boundary() {
    let mut h = setup();
    let b = h.order(4, 0, Side::Buy, 6_000, 5);
    let s = h.order(5, 0, Side::Sell, 5_500, 5);
    let at_buy_limit = vec![h.trade(b.clone(), s.clone(), 1, 6_000).tx];
    let bad = boundary(&h, &at_buy_limit, |t| t.price += 1);
    assert!(rule_failed(&bad), "{:?}", bad.failures);
    let at_sell_limit = vec![h.trade(b, s, 1, 5_500).tx];
    let bad = boundary(&h, &at_sell_limit, |t| t.price -= 1);
    assert!(rule_failed(&bad), "{:?}", bad.failures);
}

#[test]
fn order_expiry_and_fee_cap_are_enforced_at_the_boundary() {
    let mut h = setup();
    let now = h.state.time();
    let mut b = h.order(4, 0, Side::Buy, 6_000, 5);
    b.expiry = now;
    let mut s = h.order(5, 0, Side::Sell, 5_000, 5);
    s.max_fee_bps = h.state.params().trade_fee_bps;
    let txs = vec![h.trade(b, s, 1, 5_500).tx];
    let bad = boundary(&h, &txs, |t| t.buy.expiry -= 1);
    assert!(rule_failed(&bad), "{:?}", bad.failures);
    let bad = boundary(&h, &txs, |t| t.sell.max_fee_bps -= 1);
    assert!(rule_failed(&bad), "{:?}", bad.failures);
}

#[test]
fn fills_are_enforced_at_the_boundary() {
    let mut h = setup();
    // Max size 5: 3 then 2 fill it exactly; one more contract overfills.
    let mut s = h.order(5, 0, Side::Sell, 5_000, 5);
    s.order_id = 9;
    let b1 = h.order(4, 0, Side::Buy, 5_000, 3);
    let t1 = h.trade(b1, s.clone(), 3, 5_000);
    h.accept(&t1);
    let b2 = h.order(4, 0, Side::Buy, 5_000, 3);
    let txs = vec![h.trade(b2, s.clone(), 2, 5_000).tx];
    let bad = boundary(&h, &txs, |t| t.size += 1);
    assert!(rule_failed(&bad), "{:?}", bad.failures);
    // Id 5 shares slot 1 (id mod 4) with the stored id 9: it is stale.
    let mut stale = match &txs[0] {
        Tx::Trade(t) => t.clone(),
        _ => unreachable!(),
    };
    stale.sell.order_id = 5;
    assert!(h.state.check(&Tx::Trade(stale)).is_err());
    let bad = forged(&h.state, &txs, 0, |t| t.sell.order_id = 5);
    assert!(rule_failed(&bad), "{:?}", bad.failures);
}

#[test]
fn self_trades_are_rejected() {
    let mut h = setup();
    let b = h.order(4, 0, Side::Buy, 5_000, 1);
    let s = h.order(5, 0, Side::Sell, 5_000, 1);
    let txs = vec![h.trade(b, s, 1, 5_000).tx];
    let bad = forged(&h.state, &txs, 0, |t| {
        t.sell.account = 4;
        t.sell.order_id = t.buy.order_id + 1;
    });
    assert!(rule_failed(&bad), "{:?}", bad.failures);
}

/// The largest `size` at `price` that account `seller` may sell to account 4, by the native
/// rules.
fn max_sellable(h: &mut Harness, seller: u64, price: u64) -> u64 {
    let b = h.order(4, 0, Side::Buy, price, 1 << 20);
    let s = h.order(seller, 0, Side::Sell, price, 1 << 20);
    let ok = |size: u64| {
        let t = Tx::Trade(Trade {
            buy: b.clone(),
            sell: s.clone(),
            size,
            price,
        });
        h.state.check(&t).is_ok()
    };
    largest_accepted(0, 1 << 20, ok)
}

/// The largest `x` in `[lo, hi)` with `ok(x)`, assuming `ok(lo)` and that `ok` holds on a
/// prefix of the range (bisection).
fn largest_accepted(mut lo: u64, mut hi: u64, ok: impl Fn(u64) -> bool) -> u64 {
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

#[test]
fn initial_margin_is_enforced_at_the_boundary() {
    let mut h = setup();
    let max = max_sellable(&mut h, 5, 5_000);
    assert!(max > 0);
    let b = h.order(4, 0, Side::Buy, 5_000, 1 << 20);
    let s = h.order(5, 0, Side::Sell, 5_000, 1 << 20);
    let txs = vec![h.trade(b, s, max, 5_000).tx];
    let bad = boundary(&h, &txs, |t| t.size += 1);
    assert!(rule_failed(&bad), "{:?}", bad.failures);
}

#[test]
fn the_buyer_cannot_pay_more_than_its_collateral() {
    let mut h = setup();
    // Account 6 holds exactly the premium plus fee of 10 contracts at 5,000.
    let premium = 10 * 5_000u64;
    let fee = ceil_bps(premium.into(), h.state.params().trade_fee_bps) as u64;
    h.fund(6, premium + fee);
    let b = h.order(6, 0, Side::Buy, 5_000, 20);
    let s = h.order(5, 0, Side::Sell, 5_000, 20);
    let txs = vec![h.trade(b, s, 10, 5_000).tx];
    let bad = boundary(&h, &txs, |t| t.size += 1);
    // The debit wraps past zero: the new collateral fails its 63-bit range check.
    assert!(lookup_failed(&bad), "{:?}", bad.failures);
}

#[test]
fn a_position_opens_in_the_lowest_free_slot_and_fees_are_exact() {
    let mut h = setup();
    let b = h.order(4, 1, Side::Buy, 2_000, 1);
    let s = h.order(5, 1, Side::Sell, 2_000, 1);
    let txs = vec![h.trade(b, s, 1, 2_000).tx];
    let (ok, _) = run(&h.state, &txs, |_| {});
    assert!(ok.is_satisfied(), "{:?}", ok.failures);
    // The buyer's new long placed one slot higher than the lowest free one.
    let (bad, _) = run(&h.state, &txs, |w| {
        let p = &mut w.slots[0].ports[0];
        let i = p.position_slot;
        p.after.positions.swap(i, i + 1);
        p.position_slot = i + 1;
    });
    assert!(rule_failed(&bad), "{:?}", bad.failures);
    // One unit more credited to the fee account.
    let (bad, _) = run(&h.state, &txs, |w| {
        w.slots[0].ports[2].after.collateral += 1
    });
    assert!(rule_failed(&bad), "{:?}", bad.failures);
    // The fee port writing another account than the fee account.
    let (bad, _) = run(&h.state, &txs, |w| {
        let p = &mut w.slots[0].ports[2];
        p.account = 3;
        p.after = h.state.account(3).unwrap().clone();
        p.after.collateral += 2 * ceil_bps(2_000, 30) as u64;
    });
    assert!(!bad.is_satisfied());
}

#[test]
fn breakers_allow_only_reducing_trades() {
    let mut h = setup();
    // A 25% move trips the breaker on underlying 0.
    let t = h.tick(20, &[(0, 125_000, vec![(0, 26_000), (1, 500)])]);
    h.accept(&t);
    // Account 2 sells part of its long to account 3, which is short: both reduce.
    let b = h.order(3, 0, Side::Buy, 26_000, 4);
    let s = h.order(2, 0, Side::Sell, 26_000, 4);
    let txs = vec![h.trade(b, s, 4, 26_000).tx];
    let (ok, _) = run(&h.state, &txs, |_| {});
    assert!(ok.is_satisfied(), "{:?}", ok.failures);
    // Account 4 opening a long under the trip is refused natively and in circuit.
    let b = h.order(4, 0, Side::Buy, 26_000, 4);
    let s = h.order(2, 0, Side::Sell, 26_000, 4);
    let opening = Tx::Trade(Trade {
        buy: b.clone(),
        sell: s.clone(),
        size: 1,
        price: 26_000,
    });
    assert!(h.state.check(&opening).is_err());
    let bad = forged(&h.state, &txs, 0, |t| t.buy = b);
    assert!(rule_failed(&bad), "{:?}", bad.failures);
}

/// Account 3, short 10 calls, falls below initial but not maintenance margin after a move.
/// Buying back at a price that shrinks its shortfall is accepted; one unit above the highest
/// such price is not (§5.3 trade exception).
#[test]
fn the_trade_exception_is_enforced_at_the_boundary() {
    let mut h = setup();
    let t = h.tick(20, &[(0, 119_000, vec![(0, 20_000), (1, 800)])]);
    h.accept(&t);
    let m = h.state.margin(3).unwrap();
    assert!(!m.meets_initial() && m.meets_maintenance(), "{m:?}");
    let b = h.order(3, 0, Side::Buy, 1 << 40, 10);
    let s = h.order(4, 0, Side::Sell, 0, 10);
    let ok = |price: u64| {
        let t = Tx::Trade(Trade {
            buy: b.clone(),
            sell: s.clone(),
            size: 1,
            price,
        });
        h.state.check(&t).is_ok()
    };
    assert!(ok(20_000), "buying back at the mark reduces the shortfall");
    let lo = largest_accepted(20_000, 1 << 30, ok);
    let txs = vec![h.trade(b, s, 1, lo).tx];
    let bad = boundary(&h, &txs, |t| t.price += 1);
    assert!(rule_failed(&bad), "{:?}", bad.failures);
}

#[test]
fn trades_prove_the_native_public_inputs() {
    let mut h = setup();
    let before = h.state.clone();
    // A resting sell order of 3 filled partially twice; the fee account buys; account 2 sells
    // its whole long back (the slot empties) and opens a put short.
    let sell = h.order(4, 1, Side::Sell, 1_500, 6);
    let buy_a = h.order(2, 1, Side::Buy, 1_600, 2);
    let buy_b = h.order(FEE_ACCOUNT, 1, Side::Buy, 1_500, 1);
    let close_buy = h.order(3, 0, Side::Buy, 5_100, 10);
    let close_sell = h.order(2, 0, Side::Sell, 5_000, 10);
    let txs: Vec<Tx> = vec![
        h.trade(buy_a, sell.clone(), 2, 1_550).tx,
        h.trade(buy_b, sell, 1, 1_500).tx,
        h.trade(close_buy, close_sell, 10, 5_050).tx,
    ];
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 3, &txs).unwrap();
    assert_eq!(s.account(2).unwrap().position(0), 0, "the long is closed");
    let mut w = BatchWitness::new(&before, &exec, CAPACITY).unwrap();
    w.resign_with(signer_key);
    let expected = exec.public_inputs.to_fields().to_vec();
    let out = MockRun::new(K, 16).run(
        |ctx, range| ((), build_batch(ctx, range, &w)),
        None,
        Some(expected),
    );
    assert!(out.is_satisfied(), "{:?}", out.failures);
}
