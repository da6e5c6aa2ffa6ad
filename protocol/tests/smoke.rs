use collar_protocol::{testkit::Harness, OptionKind, ProtocolParams};

#[test]
fn a_short_call_trade_settles() {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let reg = h.register(0, 100_000, 1000, OptionKind::Call, 1);
    h.submit(&reg).unwrap();
    let t = h.tick(10, &[(0, 100_000, vec![(0, 5_000)])]);
    h.submit(&t).unwrap();
    for a in [2, 3] {
        let d = h.deposit(a, 1_000_000);
        h.submit(&d).unwrap();
    }
    let tr = h.simple_trade(2, 3, 0, 10, 5_000);
    let e = h.submit(&tr).unwrap();
    println!("{:?}", e.margin_checks[1].after);
    assert_eq!(h.state.account(2).unwrap().position(0), 10);
    assert_eq!(h.state.account(3).unwrap().position(0), -10);
    let t = h.tick(1000, &[(0, 110_000, vec![])]);
    h.submit(&t).unwrap();
    assert_eq!(h.state.series()[0].settlement_price, 110_000);
    let s3 = h.settle(3, 0);
    h.submit(&s3).unwrap();
    let s2 = h.settle(2, 0);
    h.submit(&s2).unwrap();
    assert_eq!(h.state.total_collateral(), 2_000_000);
}
