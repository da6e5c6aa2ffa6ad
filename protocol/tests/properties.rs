//! Property tests over random transaction streams (PROTOCOL.md §12 and §4.9–§11):
//! conservation, health preservation, incremental vs scratch roots, witness chaining, and
//! rebuilding the state from public data.

use collar_protocol::batch::{self, ExecutedBatch};
use collar_protocol::state::TxWitness;
use collar_protocol::testkit::Harness;
use collar_protocol::tx::{Order, Side, SignedTx, Tx};
use collar_protocol::{OptionKind, ProtocolParams, Rejection, State};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Action {
    Deposit {
        account: u64,
        amount: u64,
    },
    Withdraw {
        account: u64,
        amount: u64,
    },
    Trade {
        buyer: u64,
        seller: u64,
        series: u32,
        size: u64,
        price_offset: i64,
        slack: u64,
    },
    Refill {
        size: u64,
    },
    Leverage {
        short: u64,
        long: u64,
        series: u32,
    },
    Tick {
        dt: u64,
        move_bps: i64,
        time_values: [u64; 4],
    },
    Liquidate {
        liquidator: u64,
        victim: u64,
        series: u32,
        size: u64,
    },
    Settle {
        account: u64,
        series: u32,
    },
}

fn account() -> impl Strategy<Value = u64> {
    0u64..8
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => (account(), 1u64..3_000_000).prop_map(|(account, amount)| Action::Deposit { account, amount }),
        1 => (account(), 1u64..400_000).prop_map(|(account, amount)| Action::Withdraw { account, amount }),
        8 => (account(), account(), 0u32..4, 1u64..12, -800i64..800, 0u64..10)
            .prop_map(|(buyer, seller, series, size, price_offset, slack)| {
                Action::Trade { buyer, seller, series, size, price_offset, slack }
            }),
        2 => (1u64..10).prop_map(|size| Action::Refill { size }),
        2 => (2u64..5, 5u64..8, 0u32..4).prop_map(|(short, long, series)| Action::Leverage { short, long, series }),
        3 => (1u64..300, -2_200i64..2_200, prop::array::uniform4(0u64..4_000))
            .prop_map(|(dt, move_bps, time_values)| Action::Tick { dt, move_bps, time_values }),
        4 => (account(), account(), 0u32..4, 1u64..20)
            .prop_map(|(liquidator, victim, series, size)| Action::Liquidate { liquidator, victim, series, size }),
        2 => (account(), 0u32..4).prop_map(|(account, series)| Action::Settle { account, series }),
    ]
}

/// Initial collateral of accounts 0..8: some accounts are thinly funded so that price moves
/// make them liquidatable; account 1 is the insurance fund.
const FUNDING: [u64; 8] = [
    0, 2_000_000, 200_000, 150_000, 400_000, 3_000_000, 3_000_000, 1_000_000,
];

/// A harness with one underlying, four series (call/put at two strikes; two expire at t=600)
/// a first tick and funded accounts 1..8; also returns those setup transactions (they are public data too).
fn setup() -> (Harness, Vec<Tx>) {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    for (strike, expiry, kind) in [
        (100_000, 600, OptionKind::Call),
        (100_000, 600, OptionKind::Put),
        (120_000, 1 << 30, OptionKind::Call),
        (90_000, 1 << 30, OptionKind::Put),
    ] {
        let r = h.register(0, strike, expiry, kind, 1);
        h.submit(&r).unwrap();
    }
    let t = h.tick(
        10,
        &[(
            0,
            100_000,
            vec![(0, 6_000), (1, 5_000), (2, 1_500), (3, 1_200)],
        )],
    );
    h.submit(&t).unwrap();
    for account in 1..8 {
        let d = h.deposit(account, FUNDING[account as usize]);
        h.submit(&d).unwrap();
    }
    let setup_txs = std::mem::take(&mut h.accepted);
    (h, setup_txs)
}

struct Run {
    h: Harness,
    deposited: u128,
    withdrawn: u128,
    last_orders: Option<(Order, Order)>,
    /// Transactions built from the actions (submitted, accepted or not).
    built: usize,
    accepted: usize,
    rejected: usize,
}

impl Run {
    fn build(&mut self, a: &Action) -> Option<SignedTx> {
        let h = &mut self.h;
        Some(match *a {
            Action::Deposit { account, amount } => h.deposit(account, amount),
            Action::Withdraw { account, amount } => h.withdraw(account, amount),
            Action::Trade {
                buyer,
                seller,
                series,
                size,
                price_offset,
                slack,
            } => {
                let mark = h.state.series()[series as usize].mark as i64;
                let price = (mark + price_offset).max(0) as u64;
                let b = h.order(buyer, series, Side::Buy, price + slack * 100, size + slack);
                let s = h.order(
                    seller,
                    series,
                    Side::Sell,
                    price.saturating_sub(slack * 100),
                    size + slack,
                );
                self.last_orders = Some((b.clone(), s.clone()));
                h.trade(b, s, size, price)
            }
            Action::Refill { size } => {
                let (b, s) = self.last_orders.clone()?;
                let price = b
                    .limit_price
                    .min(s.limit_price.max(b.limit_price / 2 + s.limit_price / 2));
                h.trade(b, s, size, price)
            }
            Action::Leverage {
                short,
                long,
                series,
            } => {
                // The largest short the account's margin allows, so that later moves can make it
                // liquidatable.
                let price = h.state.series()[series as usize].mark;
                let mut size = 64;
                loop {
                    let t = h.simple_trade(long, short, series, size, price);
                    if size == 1 || h.state.check(&t.tx).is_ok() {
                        break t;
                    }
                    size /= 2;
                }
            }
            Action::Tick {
                dt,
                move_bps,
                time_values,
            } => {
                let u = &h.state.underlyings()[0];
                let spot = ((u.spot as i128) * (10_000 + move_bps as i128) / 10_000).max(1) as u64;
                let now = h.state.time() + dt;
                let live: Vec<(u32, u64)> = (0..4u32)
                    .filter(|s| h.state.series()[*s as usize].expiry > now)
                    .map(|s| {
                        (
                            s,
                            h.state.series()[s as usize].intrinsic(spot) as u64
                                + time_values[s as usize],
                        )
                    })
                    .collect();
                h.tick(now, &[(0, spot, live)])
            }
            Action::Liquidate {
                liquidator,
                victim,
                series,
                size,
            } => {
                // Prefer a liquidatable victim with a position, so liquidations actually happen.
                let (victim, series) = (0..8u64)
                    .map(|i| (victim + i) % 8)
                    .filter(|v| h.state.margin(*v).is_some_and(|m| m.is_liquidatable()))
                    .find_map(|v| {
                        let a = h.state.account(v)?;
                        a.positions
                            .iter()
                            .find(|p| p.size != 0)
                            .map(|p| (v, p.series))
                    })
                    .unwrap_or((victim, series));
                let mark = h.state.series()[series as usize].mark;
                let q = h.state.account(victim).map_or(0, |a| a.position(series));
                let limit = if q < 0 { 0 } else { mark };
                h.liquidate(
                    liquidator,
                    victim,
                    series,
                    size.min(q.unsigned_abs().max(1)),
                    limit,
                )
            }
            Action::Settle { account, series } => {
                // Prefer a position in a settled series; shorts first so the fund can pay longs.
                let settled: Vec<u32> = (0..4u32)
                    .filter(|s| h.state.series()[*s as usize].settlement_price != 0)
                    .collect();
                let mut candidates: Vec<(i64, u64, u32)> = h
                    .state
                    .accounts()
                    .flat_map(|(id, a)| settled.iter().map(move |s| (a.position(*s), id, *s)))
                    .filter(|(q, _, _)| *q != 0)
                    .collect();
                candidates.sort();
                match candidates.first() {
                    Some((_, id, s)) => h.settle(*id, *s),
                    None => h.settle(account, series),
                }
            }
        })
    }

    /// Applies one action and checks the per-transaction invariants.
    fn step(&mut self, a: &Action) -> Result<(), TestCaseError> {
        // Some actions build nothing (a refill before any trade).
        let Some(stx) = self.build(a) else {
            return Ok(());
        };
        self.built += 1;
        let before = self.h.state.clone();
        match self.h.submit(&stx) {
            Ok(effects) => {
                self.accepted += 1;
                match &stx.tx {
                    Tx::Deposit(d) => self.deposited += u128::from(d.amount),
                    Tx::Withdraw(w) => self.withdrawn += u128::from(w.amount),
                    _ => {}
                }
                // §12: collateral is conserved exactly.
                prop_assert_eq!(
                    self.h.state.total_collateral(),
                    self.deposited - self.withdrawn
                );
                // §5.3: no accepted transaction (other than a price tick) leaves an account that
                // was healthy below maintenance margin.
                if !matches!(stx.tx, Tx::OracleTick(_)) {
                    for (id, _) in &effects.accounts {
                        let was = before.margin(*id).is_none_or(|m| m.meets_maintenance());
                        let now = self.h.state.margin(*id).unwrap();
                        prop_assert!(
                            !was || now.meets_maintenance(),
                            "account {} fell below maintenance after {:?}: {:?}",
                            id,
                            stx.tx,
                            now
                        );
                    }
                }
            }
            Err(rejection) => {
                self.rejected += 1;
                // A rejected transaction changes nothing.
                let mut after = self.h.state.clone();
                prop_assert_eq!(
                    before.clone().root(),
                    after.root(),
                    "{:?} changed state",
                    rejection
                );
                prop_assert!(
                    !matches!(rejection, Rejection::Overflow(_)),
                    "unexpected overflow"
                );
            }
        }
        Ok(())
    }
}

/// Checks that a witness chains: header roots, account updates linking the accounts roots, and
/// every Merkle update verifying.
fn check_witness(w: &TxWitness, depth: usize) -> Result<(), TestCaseError> {
    let mut root = w.header_before.accounts_root;
    for u in &w.account_updates {
        prop_assert_eq!(u.merkle.old_root, root);
        prop_assert!(u.merkle.verify().is_ok());
        prop_assert_eq!(u.merkle.old_leaf, u.before.leaf(depth));
        prop_assert_eq!(u.merkle.new_leaf, u.after.leaf(depth));
        if let Some(o) = &u.order_slot {
            prop_assert!(o.verify().is_ok());
            prop_assert_eq!(o.old_root, u.before.orders_root(depth));
            prop_assert_eq!(o.new_root, u.after.orders_root(depth));
        }
        root = u.merkle.new_root;
    }
    prop_assert_eq!(root, w.header_after.accounts_root);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_streams_keep_every_invariant(actions in prop::collection::vec(action(), 1..80)) {
        let (h, setup_txs) = setup();
        let deposited: u128 = FUNDING.iter().map(|f| u128::from(*f)).sum();
        let mut run = Run { h, deposited, withdrawn: 0, last_orders: None, built: 0, accepted: 0, rejected: 0 };
        let genesis_state = run.h.state.clone();
        for (i, a) in actions.iter().enumerate() {
            run.step(a)?;
            // Commits between transactions: the cached order subtrees must follow every write.
            if i % 3 == 2 {
                let root = run.h.state.root();
                if i % 12 == 11 {
                    prop_assert_eq!(root, run.h.state.recompute_root());
                }
            }
        }
        let accepted = run.h.accepted.clone();

        // §4.9: incremental (dirty-only) root equals the root rebuilt from scratch.
        let root = run.h.state.root();
        prop_assert_eq!(root, run.h.state.recompute_root());

        // §11: the same transactions executed in batches with witnesses reach the same root,
        // every witness chains, and consecutive batches link old and new roots.
        let mut prover_state: State = genesis_state;
        let mut pubdata = vec![collar_protocol::pubdata::encode_all(&setup_txs).unwrap()];
        let mut prev_new_root = prover_state.root();
        let depth = prover_state.params().order_slot_depth;
        // Batches of up to 7 transactions, each tick opening a new batch (§11).
        let mut chunks: Vec<&[Tx]> = Vec::new();
        let mut start = 0;
        for (i, tx) in accepted.iter().enumerate() {
            if i > start && (i - start == 7 || matches!(tx, Tx::OracleTick(_))) {
                chunks.push(&accepted[start..i]);
                start = i;
            }
        }
        chunks.push(&accepted[start..]);
        for (n, chunk) in chunks.into_iter().enumerate() {
            let ExecutedBatch { public_inputs, pubdata: bytes, witnesses, .. } =
                batch::execute(&mut prover_state, n as u64, chunk).expect("accepted transactions replay");
            prop_assert_eq!(public_inputs.old_root, prev_new_root);
            prev_new_root = public_inputs.new_root;
            for w in &witnesses {
                check_witness(w, depth)?;
            }
            pubdata.push(bytes);
        }
        prop_assert_eq!(prover_state.root(), root);

        // §10: a state rebuilt from genesis plus all public data has the same root.
        let mut rebuilt = batch::rebuild(&run.h.genesis, &pubdata).expect("public data replays");
        prop_assert_eq!(rebuilt.root(), root);
        // Every transaction built was decided, one way or the other.
        prop_assert_eq!(run.accepted + run.rejected, run.built);
    }
}
