//! The batches the soundness campaign forges: together they hold every slot type (deposit into
//! a new and an existing account, withdrawal, trade, liquidation, expiry settlement of a long
//! and a short, series registration), an oracle tick in the tick lane, and padding slots.

use collar_protocol::batch;
use collar_protocol::testkit::Harness;
use collar_protocol::tx::{OracleReport, OracleTick, SeriesMark, Side, SignedTx, UnderlyingTick};
use collar_protocol::{OptionKind, ProtocolParams, State, INSURANCE_FUND};

use super::Subject;
use crate::batch::BatchWitness;

/// The three subjects on `params` (`ProtocolParams::small()` for the small shape,
/// `ProtocolParams::default()` for the production one).
///
/// # Panics
/// If a batch is rejected natively on `params` (they are built for both shapes above).
pub fn all(params: &ProtocolParams) -> Vec<Subject> {
    vec![
        tick_trade_liquidate(params),
        deposits_withdraw_register(params),
        settlements(params),
    ]
}

/// Executes `txs` on `before` and builds the witness with `capacity` slots (the rest padding).
fn subject(name: &str, before: State, txs: &[SignedTx], capacity: usize) -> Subject {
    let mut after = before.clone();
    let exec = batch::execute_signed(&mut after, 7, txs)
        .unwrap_or_else(|e| panic!("{name}: the batch executes ({e})"));
    let witness = BatchWitness::new(&before, &exec, capacity)
        .unwrap_or_else(|e| panic!("{name}: the witness builds ({e})"));
    Subject {
        name: name.into(),
        before,
        witness,
        public: exec.public_inputs.to_fields(),
    }
}

/// An oracle tick whose reports disagree (the medians are proven by counting), a trade opening a
/// put, and the liquidation of the short-call account the tick made liquidatable; one padding
/// slot. The pinned mutation campaign (`tests/batch_mutation.rs`) runs on it too.
///
/// # Panics
/// As [`all`].
pub fn tick_trade_liquidate(params: &ProtocolParams) -> Subject {
    let mut h = Harness::new(params.clone(), 1);
    for (strike, kind) in [(100_000, OptionKind::Call), (90_000, OptionKind::Put)] {
        let r = h.register(0, strike, 10_000, kind, 1);
        h.accept(&r);
    }
    let t = h.tick(10, &[(0, 100_000, vec![(0, 5_000), (1, 2_000)])]);
    h.accept(&t);
    for (a, funds) in [(2, 1_000_000), (3, 1_000_000), (4, 1_000_000), (5, 150_150)] {
        h.fund(a, funds);
    }
    h.fill(2, 5, 0, 10, 5_000);
    let start = h.state.clone();
    let reports = [
        (110_000, 12_001, 1_000),
        (109_000, 12_500, 900),
        (111_000, 11_000, 1_100),
    ];
    let tick = h.sign_tick(OracleTick {
        timestamp: 20,
        underlyings: vec![UnderlyingTick {
            underlying: 0,
            reports: (0u32..)
                .zip(reports)
                .map(|(oracle, (spot, call, put))| OracleReport {
                    oracle,
                    underlying: 0,
                    timestamp: 20,
                    spot,
                    marks: vec![
                        SeriesMark {
                            series: 0,
                            mark: call,
                        },
                        SeriesMark {
                            series: 1,
                            mark: put,
                        },
                    ],
                })
                .collect(),
        }],
    });
    h.accept(&tick);
    let b = h.order(3, 1, Side::Buy, 1_100, 4);
    let s = h.order(4, 1, Side::Sell, 900, 4);
    let trade = h.trade(b, s, 3, 1_000);
    h.accept(&trade);
    let liquidation = h.liquidate(4, 5, 0, 2, 0);
    subject(
        "tick-trade-liquidate",
        start,
        &[tick, trade, liquidation],
        3,
    )
}

/// A deposit creating account 6, a deposit into account 2, a withdrawal by account 3 and a
/// series registration; one padding slot.
fn deposits_withdraw_register(params: &ProtocolParams) -> Subject {
    let mut h = Harness::new(params.clone(), 1);
    let r = h.register(0, 100_000, 10_000, OptionKind::Call, 1);
    h.accept(&r);
    let t = h.tick(10, &[(0, 100_000, vec![(0, 5_000)])]);
    h.accept(&t);
    h.fund(2, 1_000_000);
    h.fund(3, 1_000_000);
    h.fill(2, 3, 0, 4, 5_000);
    let start = h.state.clone();
    let txs = [
        h.deposit(6, 250_000),
        h.deposit(2, 1_234),
        h.withdraw(3, 40_000),
        h.register(0, 95_000, 12_000, OptionKind::Put, 2),
    ];
    subject("deposits-withdraw-register", start, &txs, 5)
}

/// Expiry settlements of a short call (paying in full) and of the long on the other side, at a
/// settlement price above the strike; one padding slot.
fn settlements(params: &ProtocolParams) -> Subject {
    let mut h = Harness::new(params.clone(), 1);
    let r = h.register(0, 100_000, 100, OptionKind::Call, 1);
    h.accept(&r);
    let t = h.tick(10, &[(0, 100_000, vec![(0, 5_000)])]);
    h.accept(&t);
    h.fund(INSURANCE_FUND, 500_000);
    h.fund(2, 1_000_000);
    h.fund(3, 1_000_000);
    h.fill(2, 3, 0, 3, 5_000);
    // The first tick at or after the expiry settles the series at its spot (§7.6 rule 6).
    let t = h.tick(200, &[(0, 110_000, vec![])]);
    h.accept(&t);
    let txs = [h.settle(3, 0), h.settle(2, 0)];
    subject("settlements", h.state.clone(), &txs, 3)
}
