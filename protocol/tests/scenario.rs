//! A deterministic end-to-end flow that accepts every transaction type once or more, checking
//! balances against hand-computed figures (PROTOCOL.md §7).

use collar_protocol::batch;
use collar_protocol::testkit::Harness;
use collar_protocol::tx::Side;
use collar_protocol::{OptionKind, ProtocolParams, Tx, FEE_ACCOUNT, INSURANCE_FUND};

#[test]
fn every_transaction_type_in_one_flow() {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let call = 0;
    for (strike, kind) in [(100_000, OptionKind::Call), (90_000, OptionKind::Put)] {
        let r = h.register(0, strike, 500, kind, 1);
        h.submit(&r).unwrap();
    }
    let t = h.tick(10, &[(0, 100_000, vec![(0, 5_000), (1, 1_000)])]);
    h.submit(&t).unwrap();
    for (a, amount) in [
        (INSURANCE_FUND, 1_000_000),
        (2, 1_000_000),
        (3, 200_000),
        (4, 2_000_000),
    ] {
        let d = h.deposit(a, amount);
        h.submit(&d).unwrap();
    }

    // Account 3 sells 10 calls to account 2 in two partial fills of one sell order.
    let sell = h.order(3, call, Side::Sell, 5_000, 10);
    let buy1 = h.order(2, call, Side::Buy, 5_000, 6);
    let tr = h.trade(buy1, sell.clone(), 6, 5_000);
    h.submit(&tr).unwrap();
    let buy2 = h.order(2, call, Side::Buy, 5_000, 4);
    let tr = h.trade(buy2, sell.clone(), 4, 5_000);
    let e = h.submit(&tr).unwrap();
    // Fee: ceil(30 bps of 4·5000) = 60 per side.
    assert_eq!(e.fees, 120);
    assert_eq!(
        h.state.account(FEE_ACCOUNT).unwrap().collateral,
        2 * 90 + 120
    );
    assert_eq!(h.state.account(3).unwrap().position(call), -10);
    assert_eq!(
        h.state.account(3).unwrap().collateral,
        200_000 + 50_000 - 90 - 60
    );

    // Withdrawal by the long.
    let w = h.withdraw(2, 100_000);
    let e = h.submit(&w).unwrap();
    assert_eq!(e.withdrawal.unwrap().amount, 100_000);

    // Spot +15% (below the 20% breaker) makes the short liquidatable.
    let t = h.tick(20, &[(0, 115_000, vec![(0, 19_000), (1, 200)])]);
    h.submit(&t).unwrap();
    let m = h.state.margin(3).unwrap();
    assert!(m.is_liquidatable(), "{m:?}");
    // Account 4 takes over 5 short calls at mark + 5% = 19_950.
    let l = h.liquidate(4, 3, call, 5, 19_000);
    h.submit(&l).unwrap();
    assert_eq!(h.state.account(3).unwrap().position(call), -5);
    assert_eq!(h.state.account(4).unwrap().position(call), -5);
    assert_eq!(
        h.state.account(4).unwrap().collateral,
        2_000_000 + 5 * 19_950
    );

    // Expiry: first tick at/after t=500 sets the settlement price 110_000 (intrinsic 10_000).
    let t = h.tick(400, &[(0, 112_000, vec![])]);
    h.submit(&t).unwrap();
    let t = h.tick(500, &[(0, 110_000, vec![])]);
    h.submit(&t).unwrap();
    assert_eq!(h.state.series()[0].settlement_price, 110_000);
    assert_eq!(h.state.series()[0].mark, 10_000);
    let fund_before = h.state.account(INSURANCE_FUND).unwrap().collateral;
    for (account, expect_delta) in [(3, -50_000i128), (4, -50_000), (2, 100_000)] {
        let before = h.state.account(account).unwrap().collateral;
        let s = h.settle(account, call);
        h.submit(&s).unwrap();
        let after = h.state.account(account).unwrap().collateral;
        assert_eq!(
            i128::from(after) - i128::from(before),
            expect_delta,
            "account {account}"
        );
        assert_eq!(h.state.account(account).unwrap().position(call), 0);
    }
    assert_eq!(
        h.state.account(INSURANCE_FUND).unwrap().collateral,
        fund_before
    );

    let kinds: std::collections::BTreeSet<&str> = h.accepted.iter().map(Tx::kind).collect();
    assert_eq!(kinds.len(), 7, "{kinds:?}");

    // The whole history replays from public data to the same root.
    let bytes = collar_protocol::pubdata::encode_all(&h.accepted).unwrap();
    let mut rebuilt = batch::rebuild(&h.genesis, &[bytes]).unwrap();
    assert_eq!(rebuilt.root(), h.state.root());
}
