//! The account chip (PROTOCOL.md §4.2–§4.4) against the native `Account`: leaves, position words
//! and order-slot leaves equal the native values (also on accounts produced by real
//! transactions, chained through the accounts tree); every bound of §2.3 passes at its edge and
//! fails one past it; non-canonical slots and non-existent accounts holding anything fail; and
//! every advice cell of one account assignment is load-bearing (an exhaustive mutation sweep).

use collar_circuits::account::{
    account_from_cells, assign_account, assign_order_slot_leaf, assign_position,
    position_from_cells, AccountCells, AssignedAccount,
};
use collar_circuits::merkle::{update_with_cells, AssignedMerkleUpdate};
use collar_circuits::poseidon::{Hashing, PoseidonChip};
use collar_circuits::safe::Ranged;
use collar_circuits::testing::{
    Failure, MockOutcome, MockRun, Sweep, FLEX_GATE, RANGE_LOOKUP, RANGE_LOOKUP_COLUMNS,
};
use collar_protocol::account::OrderSlot;
use collar_protocol::field::{fr_from_i128, fr_from_u128};
use collar_protocol::merkle::empty_root;
use collar_protocol::testkit::{account_key, Harness};
use collar_protocol::{Account, OptionKind, Position, ProtocolParams, PublicKey};
use halo2_base::gates::{RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};

const LOOKUP_BITS: usize = 8;
/// Order-slot depth of the small test shape (`ProtocolParams::small`).
const D: usize = 2;

fn key(id: u64) -> PublicKey {
    account_key(id).public_key()
}

/// An existing account with two held slots around an empty one, two order slots, a nonce and
/// collateral.
fn busy_account(max_positions: usize) -> Account {
    let mut a = Account::new(key(7), max_positions);
    a.nonce = 12;
    a.collateral = 1_234_567;
    assert!(a.set_position(3, 17));
    assert!(a.set_position(0, -9));
    assert!(a.set_position(5, 1));
    assert!(a.set_position(0, 0)); // empties slot 1 in place
    a.orders.insert(
        1,
        OrderSlot {
            order_id: 5,
            filled: 3,
        },
    );
    a.orders.insert(
        2,
        OrderSlot {
            order_id: 6,
            filled: 0,
        },
    );
    a
}

/// Builds the account with a fresh Poseidon chip; exposes `[leaf, positions_hash]`.
fn build_account(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    acc: &Account,
    depth: usize,
) -> (AssignedAccount, Vec<AssignedValue<Fr>>) {
    let poseidon = PoseidonChip::new(ctx, range.gate());
    let a = assign_account(ctx, range, &poseidon, acc, depth);
    let public = vec![a.leaf, a.positions_hash];
    (a, public)
}

/// A run exposing the leaf and the positions hash, fixed to the native values.
fn run_account(acc: &Account, depth: usize) -> MockOutcome<(Fr, Fr, Vec<Fr>)> {
    run_account_with(acc, depth, Hashing::Pow5)
}

fn run_account_with(
    acc: &Account,
    depth: usize,
    hashing: Hashing,
) -> MockOutcome<(Fr, Fr, Vec<Fr>)> {
    MockRun::new(15, LOOKUP_BITS).with_hashing(hashing).run(
        |ctx, range| {
            let (a, public) = build_account(ctx, range, acc, depth);
            let words = a.positions.iter().map(|p| *p.word.value()).collect();
            ((*a.exists.value(), *a.orders_root.value(), words), public)
        },
        None,
        Some(vec![acc.leaf(depth), acc.positions_hash()]),
    )
}

/// Runs `acc` with no public inputs (for range edges).
fn check_account(acc: &Account) -> MockOutcome<()> {
    MockRun::new(14, LOOKUP_BITS).check(|ctx, range| {
        build_account(ctx, range, acc, D);
    })
}

fn only_permutation<R>(out: &MockOutcome<R>) -> bool {
    out.failures == [Failure::Permutation].into_iter().collect()
}

/// An out-of-range value fails its range check, and nothing else: a limb lookup, the limb
/// recombination copy, or, for a width of `8n + 1` bits (a signed 40-bit size is checked on 41
/// bits), the flex-gate boolean check of the 1-bit top limb.
fn range_failure<R>(out: &MockOutcome<R>) -> bool {
    !out.is_satisfied()
        && out.failures.iter().all(|f| match f {
            Failure::Lookup(n) => n == RANGE_LOOKUP || n == RANGE_LOOKUP_COLUMNS,
            Failure::Gate(n) => n == FLEX_GATE,
            Failure::Permutation => true,
            _ => false,
        })
}

#[test]
fn leaves_equal_native_accounts() {
    let mut with_key_y_only = Account::new(
        PublicKey {
            x: Fr::zero(),
            y: Fr::from(5u64),
        },
        4,
    );
    with_key_y_only.collateral = 1;
    let accounts = [
        (Account::new(key(2), 4), D),
        (busy_account(4), D),
        (busy_account(4), 6),
        (busy_account(16), 6),
        (with_key_y_only, D),
    ];
    for (acc, depth) in &accounts {
        assert!(acc.exists());
        let out = run_account(acc, *depth);
        assert!(out.is_satisfied(), "{acc:?}: {:?}", out.failures);
        let (exists, orders_root, words) = out.output;
        assert_eq!(exists, Fr::one());
        assert_eq!(orders_root, acc.orders_root(*depth));
        let native: Vec<Fr> = acc.positions.iter().map(Position::word).collect();
        assert_eq!(words, native);
        assert_ne!(acc.leaf(*depth), Fr::zero());
    }
}

#[test]
fn a_non_existent_account_has_leaf_zero() {
    for positions in [1, 4, 16] {
        let acc = Account::new(PublicKey::ZERO, positions);
        assert_eq!(acc.leaf(D), Fr::zero());
        let out = run_account(&acc, D);
        assert!(out.is_satisfied(), "{:?}", out.failures);
        let (exists, orders_root, words) = out.output;
        assert_eq!(exists, Fr::zero());
        assert_eq!(orders_root, empty_root(D));
        assert!(words.iter().all(|w| *w == Fr::zero()));
    }
}

#[test]
fn a_non_existent_account_holding_anything_fails() {
    let empty = Account::new(PublicKey::ZERO, 4);
    let mut holds: Vec<(&str, Account)> = Vec::new();
    let mut a = empty.clone();
    a.collateral = 5;
    holds.push(("collateral", a));
    let mut a = empty.clone();
    a.nonce = 1;
    holds.push(("nonce", a));
    let mut a = empty.clone();
    a.set_position(2, -3);
    holds.push(("position", a));
    let mut a = empty.clone();
    a.positions[3] = Position { series: 0, size: 1 };
    holds.push(("position of series 0 in the last slot", a));
    let mut a = empty.clone();
    a.orders.insert(
        0,
        OrderSlot {
            order_id: 4,
            filled: 1,
        },
    );
    holds.push(("orders", a));
    for (what, acc) in &holds {
        // The native leaf is 0 too: without the constraints the leaf would hide the funds.
        assert_eq!(acc.leaf(D), Fr::zero());
        let out = run_account(acc, D);
        assert!(only_permutation(&out), "{what}: {:?}", out.failures);
    }
    // orders_root must be the empty subtree root E_D, not 0 (nor anything else).
    for orders_root in [Fr::zero(), empty_root(D) + Fr::one(), empty_root(D + 1)] {
        let out = MockRun::new(14, LOOKUP_BITS).check(|ctx, range| {
            let poseidon = PoseidonChip::new(ctx, range.gate());
            let zero = Fr::zero();
            let cells = AccountCells {
                pubkey: [ctx.load_witness(zero), ctx.load_witness(zero)],
                nonce: ctx.load_witness(zero),
                collateral: ctx.load_witness(zero),
                positions: empty
                    .positions
                    .iter()
                    .map(|p| assign_position(ctx, range, p))
                    .collect(),
                orders_root: ctx.load_witness(orders_root),
            };
            account_from_cells(ctx, range, &poseidon, cells, D);
        });
        assert!(
            only_permutation(&out),
            "{orders_root:?}: {:?}",
            out.failures
        );
    }
}

#[test]
fn a_non_canonical_empty_slot_fails() {
    let mut acc = busy_account(4);
    assert_eq!(acc.positions[1], Position::default());
    // The native word ignores the series of an empty slot; the circuit rejects the slot.
    acc.positions[1] = Position { series: 3, size: 0 };
    assert_eq!(acc.positions[1].word(), Fr::zero());
    let out = run_account(&acc, D);
    assert!(only_permutation(&out), "{:?}", out.failures);
    // The same through the slot loader alone.
    let out = MockRun::new(10, LOOKUP_BITS).check(|ctx, range| {
        assign_position(ctx, range, &Position { series: 1, size: 0 });
    });
    assert!(only_permutation(&out), "{:?}", out.failures);
}

#[test]
fn field_bounds_pass_at_the_edge_and_fail_past_it() {
    let base = busy_account(4);
    let with = |f: &dyn Fn(&mut Account)| {
        let mut a = base.clone();
        f(&mut a);
        a
    };
    let cases: Vec<(&str, Account, bool)> = vec![
        ("collateral 0", with(&|a| a.collateral = 0), true),
        (
            "collateral 2^63-1",
            with(&|a| a.collateral = (1 << 63) - 1),
            true,
        ),
        ("collateral 2^63", with(&|a| a.collateral = 1 << 63), false),
        (
            "collateral 2^64-1",
            with(&|a| a.collateral = u64::MAX),
            false,
        ),
        ("nonce 2^32-1", with(&|a| a.nonce = (1 << 32) - 1), true),
        ("nonce 2^32", with(&|a| a.nonce = 1 << 32), false),
        (
            "size 2^40-1",
            with(&|a| a.positions[0].size = (1 << 40) - 1),
            true,
        ),
        (
            "size -(2^40-1)",
            with(&|a| a.positions[0].size = 1 - (1 << 40)),
            true,
        ),
        ("size 2^40", with(&|a| a.positions[0].size = 1 << 40), false),
        (
            "size -2^40",
            with(&|a| a.positions[0].size = -(1 << 40)),
            false,
        ),
        (
            "series 2^16-1",
            with(&|a| a.positions[0].series = (1 << 16) - 1),
            true,
        ),
        (
            "series 2^16",
            with(&|a| a.positions[0].series = 1 << 16),
            false,
        ),
    ];
    for (what, acc, ok) in &cases {
        let out = check_account(acc);
        if *ok {
            assert!(out.is_satisfied(), "{what}: {:?}", out.failures);
            // In range, the leaf is the native one.
            assert!(run_account(acc, D).is_satisfied(), "{what}");
        } else {
            assert!(range_failure(&out), "{what}: {:?}", out.failures);
        }
    }
}

#[test]
fn field_bounds_reject_wrapped_field_elements() {
    // Values no native integer type holds: p - 1 as collateral or nonce or series, and the
    // signed sizes just past the bound on either side (p - 1 is the size -1, which is valid).
    let minus = |v: u128| -fr_from_u128(v);
    let run = MockRun::new(14, LOOKUP_BITS);
    for (what, collateral, nonce, ok) in [
        ("collateral p-1", minus(1), Fr::zero(), false),
        (
            "collateral 2^63-1",
            fr_from_u128((1 << 63) - 1),
            Fr::zero(),
            true,
        ),
        ("nonce p-1", Fr::zero(), minus(1), false),
    ] {
        let out = run.check(|ctx, range| {
            let poseidon = PoseidonChip::new(ctx, range.gate());
            let acc = busy_account(4);
            let positions = acc
                .positions
                .iter()
                .map(|p| assign_position(ctx, range, p))
                .collect();
            let cells = AccountCells {
                pubkey: [
                    ctx.load_witness(acc.pubkey.x),
                    ctx.load_witness(acc.pubkey.y),
                ],
                nonce: ctx.load_witness(nonce),
                collateral: ctx.load_witness(collateral),
                positions,
                orders_root: ctx.load_witness(acc.orders_root(D)),
            };
            account_from_cells(ctx, range, &poseidon, cells, D);
        });
        if ok {
            assert!(out.is_satisfied(), "{what}: {:?}", out.failures);
        } else {
            assert!(range_failure(&out), "{what}: {:?}", out.failures);
        }
    }
    for (what, series, size, ok) in [
        ("size p-1 (= -1)", Fr::zero(), minus(1), true),
        ("size p-(2^40-1)", Fr::zero(), minus((1 << 40) - 1), true),
        ("size p-2^40", Fr::zero(), minus(1 << 40), false),
        ("size 2^40", Fr::zero(), fr_from_u128(1 << 40), false),
        ("size p-2^63", Fr::zero(), minus(1 << 63), false),
        ("series p-1", minus(1), Fr::one(), false),
    ] {
        let out = MockRun::new(10, LOOKUP_BITS).check(|ctx, range| {
            let series = ctx.load_witness(series);
            let size = ctx.load_witness(size);
            *position_from_cells(ctx, range, series, size).word.value()
        });
        if ok {
            assert!(out.is_satisfied(), "{what}: {:?}", out.failures);
            let native = Position {
                series: 0,
                size: if what.contains("2^40") {
                    1 - (1 << 40)
                } else {
                    -1
                },
            };
            assert_eq!(out.output, native.word(), "{what}");
        } else {
            assert!(range_failure(&out), "{what}: {:?}", out.failures);
        }
    }
}

#[test]
fn position_words_equal_native_words() {
    let slots = [
        Position::default(),
        Position { series: 0, size: 1 },
        Position {
            series: 0,
            size: -1,
        },
        Position {
            series: 65_535,
            size: (1 << 40) - 1,
        },
        Position {
            series: 65_535,
            size: 1 - (1 << 40),
        },
        Position {
            series: 9,
            size: -123_456,
        },
    ];
    let out = MockRun::new(11, LOOKUP_BITS).check(|ctx, range| {
        slots
            .iter()
            .map(|p| {
                let a = assign_position(ctx, range, p);
                (*a.word.value(), *a.empty.value(), *a.size.cell().value())
            })
            .collect::<Vec<_>>()
    });
    assert!(out.is_satisfied(), "{:?}", out.failures);
    for (p, (word, empty, size)) in slots.iter().zip(&out.output) {
        assert_eq!(*word, p.word(), "{p:?}");
        assert_eq!(*empty, Fr::from(u64::from(p.size == 0)), "{p:?}");
        assert_eq!(*size, fr_from_i128(i128::from(p.size)), "{p:?}");
    }
}

#[test]
fn order_slot_leaves_equal_native_leaves() {
    let slots = [
        OrderSlot {
            order_id: 0,
            filled: 0,
        },
        OrderSlot {
            order_id: 77,
            filled: 12,
        },
        OrderSlot {
            order_id: (1 << 32) - 1,
            filled: (1 << 40) - 1,
        },
    ];
    let out = MockRun::new(13, LOOKUP_BITS).run(
        |ctx, range| {
            let poseidon = PoseidonChip::new(ctx, range.gate());
            let leaves = slots
                .iter()
                .map(|o| {
                    let id = Ranged::load(ctx, range, Fr::from(o.order_id), 32);
                    let filled = Ranged::load(ctx, range, Fr::from(o.filled), 40);
                    assign_order_slot_leaf(ctx, range.gate(), &poseidon, &id, &filled)
                })
                .collect();
            ((), leaves)
        },
        None,
        Some(slots.iter().map(OrderSlot::leaf).collect()),
    );
    assert!(out.is_satisfied(), "{:?}", out.failures);
}

#[test]
#[should_panic(expected = "filled is 41 bits wide")]
fn an_order_slot_leaf_refuses_an_unchecked_sum() {
    MockRun::new(10, LOOKUP_BITS).check(|ctx, range| {
        let poseidon = PoseidonChip::new(ctx, range.gate());
        let id = Ranged::load(ctx, range, Fr::from(1u64), 32);
        let a = Ranged::load(ctx, range, Fr::from(1u64), 40);
        let sum = a.add(ctx, range.gate(), &a);
        assign_order_slot_leaf(ctx, range.gate(), &poseidon, &id, &sum);
    });
}

/// A state with two series, a tick and funded accounts 2 and 3.
fn harness() -> Harness {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    for kind in [OptionKind::Call, OptionKind::Put] {
        let r = h.register(0, 100_000, 100_000, kind, 1);
        h.accept(&r);
    }
    let t = h.tick(10, &[(0, 100_000, vec![(0, 5_000), (1, 4_000)])]);
    h.accept(&t);
    for a in [2, 3] {
        h.fund(a, 1_000_000);
    }
    h
}

/// Constrains every account write of a transaction witness as the batch circuit will: the
/// before and after accounts from `assign_account`, their leaves through the shared-path update
/// of the accounts tree (chained root to root), and the order-slot write bound to the before and
/// after `orders_root`. Exposes the accounts root before and after.
fn constrain_tx(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    w: &collar_protocol::TxWitness,
    depth: usize,
) -> Vec<AssignedValue<Fr>> {
    let poseidon = PoseidonChip::new(ctx, range.gate());
    let gate = range.gate();
    let mut prev: Option<AssignedMerkleUpdate> = None;
    let mut first = None;
    for u in &w.account_updates {
        let before = assign_account(ctx, range, &poseidon, &u.before, depth);
        let after = assign_account(ctx, range, &poseidon, &u.after, depth);
        let index = ctx.load_witness(Fr::from(u.account));
        let m = update_with_cells(
            ctx,
            range,
            &poseidon,
            index,
            before.leaf,
            after.leaf,
            &u.merkle.siblings,
        );
        match &prev {
            Some(p) => ctx.constrain_equal(&p.new_root, &m.old_root),
            None => first = Some(m.old_root),
        }
        prev = Some(m);
        match &u.order_slot {
            Some(o) => {
                let slot_leaf =
                    |ctx: &mut Context<Fr>, acc: &Account| match acc.orders.get(&o.index) {
                        Some(s) => {
                            let id = Ranged::load(ctx, range, Fr::from(s.order_id), 32);
                            let filled = Ranged::load(ctx, range, Fr::from(s.filled), 40);
                            assign_order_slot_leaf(ctx, gate, &poseidon, &id, &filled)
                        }
                        None => ctx.load_zero(),
                    };
                let old_leaf = slot_leaf(ctx, &u.before);
                let new_leaf = slot_leaf(ctx, &u.after);
                let slot = ctx.load_witness(Fr::from(o.index));
                let s =
                    update_with_cells(ctx, range, &poseidon, slot, old_leaf, new_leaf, &o.siblings);
                ctx.constrain_equal(&s.old_root, &before.orders_root);
                ctx.constrain_equal(&s.new_root, &after.orders_root);
            }
            None => ctx.constrain_equal(&before.orders_root, &after.orders_root),
        }
    }
    vec![first.unwrap(), prev.unwrap().new_root]
}

#[test]
fn accounts_of_real_transactions_chain_through_the_tree() {
    let mut h = harness();
    let params = h.state.params().clone();
    // A trade (two filled orders, the fee account credited), then a deposit creating account 5
    // (a non-existent account before).
    let trade = h.simple_trade(2, 3, 0, 10, 5_000);
    let deposit = h.deposit(5, 777);
    for stx in [trade, deposit] {
        let w = h.state.apply_with_witness(&stx.tx).unwrap();
        assert!(!w.account_updates.is_empty());
        for u in &w.account_updates {
            assert_eq!(u.merkle.old_leaf, u.before.leaf(params.order_slot_depth));
            assert_eq!(u.merkle.new_leaf, u.after.leaf(params.order_slot_depth));
        }
        let instances = vec![w.header_before.accounts_root, w.header_after.accounts_root];
        let out = MockRun::new(18, LOOKUP_BITS).run(
            |ctx, range| ((), constrain_tx(ctx, range, &w, params.order_slot_depth)),
            None,
            Some(instances.clone()),
        );
        assert!(out.is_satisfied(), "{:?}", out.failures);
        // A prover claiming a different collateral for the first account fails at the roots.
        let mut bad = w.clone();
        bad.account_updates[0].after.collateral += 1;
        let out = MockRun::new(18, LOOKUP_BITS).run(
            |ctx, range| ((), constrain_tx(ctx, range, &bad, params.order_slot_depth)),
            None,
            Some(instances),
        );
        assert!(only_permutation(&out), "{:?}", out.failures);
    }
}

#[test]
fn mutation_sweep_of_an_account_leaf() {
    // Two slots, one held and one empty; an order in the subtree; the leaf is public.
    let mut acc = Account::new(key(9), 2);
    acc.nonce = 3;
    acc.collateral = 50_000;
    assert!(acc.set_position(4, -6));
    acc.orders.insert(
        1,
        OrderSlot {
            order_id: 9,
            filled: 2,
        },
    );
    // Pow5Msm hashes as Pow5 does (its msm chip only verifies signatures).
    for hashing in [Hashing::HaloBase, Hashing::Pow5] {
        sweep_account_leaf(&acc, hashing);
    }
}

fn sweep_account_leaf(acc: &Account, hashing: Hashing) {
    let Sweep {
        accepted,
        values,
        swept: mutated,
        chip_accepted,
        chip_swept,
        output: empty_flags,
    } = MockRun::new(12, LOOKUP_BITS).with_hashing(hashing).sweep(
        |ctx, range| {
            let poseidon = PoseidonChip::new(ctx, range.gate());
            let a = assign_account(ctx, range, &poseidon, acc, D);
            let empties: Vec<usize> = a
                .positions
                .iter()
                .filter(|p| *p.empty.value() == Fr::one())
                .map(|p| p.empty.cell.unwrap().offset)
                .collect();
            (empties, vec![a.leaf])
        },
        &[acc.leaf(D)],
    );
    let swept = values.len();
    eprintln!(
        "account leaf (2 slots, {hashing}): {} of {swept} context cells and {chip_swept} Pow5 \
         chip cells mutated, {} and {} accepted",
        mutated.len(),
        accepted.len(),
        chip_accepted.len()
    );
    match hashing {
        Hashing::HaloBase => assert!(swept > 10_000, "{swept}"),
        Hashing::Pow5 | Hashing::Pow5Msm => {
            assert!(swept > 200 && chip_swept > 100, "{swept} {chip_swept}")
        }
    }
    assert!(chip_accepted.is_empty(), "{chip_accepted:?}");
    // Every cell outside Poseidon scopes is mutated, so the free cells below always are.
    // The only accepted mutations are genuinely free cells: the inverse witness of
    // halo2-base's `is_zero(size)` when the size is 0. `is_zero` lays out
    // `| out | a | inv | 1 | 0 | a | out | 0 |` with the gates `out + a·inv = 1` and
    // `a·out = 0`, and returns the second `out`, so `inv` sits 4 cells before the returned
    // `empty` flag; with `a = 0` both gates hold for any `inv` (its witness is 1). The flag
    // itself is fully determined (a mutation of it fails), so this is not a soundness gap.
    let free: Vec<usize> = empty_flags.iter().map(|o| o - 4).collect();
    assert_eq!(free.len(), 1, "one empty slot");
    for o in &free {
        assert_eq!(values[*o - 1], Fr::zero(), "is_zero input (the size) is 0");
        assert_eq!(values[*o], Fr::one(), "the inverse witness of a zero input");
    }
    assert_eq!(
        accepted, free,
        "accepted mutations beyond the free is_zero inverses"
    );
}

#[test]
fn cell_counts_per_account_leaf() {
    // Counted with halo2-base's hasher: the baseline figures of docs/CIRCUIT.md.
    let chip_only = MockRun::new(12, LOOKUP_BITS)
        .with_hashing(Hashing::HaloBase)
        .check(|ctx, range| {
            PoseidonChip::new(ctx, range.gate());
        });
    for (positions, depth) in [(4usize, D), (16, 6)] {
        let acc = busy_account(positions);
        let out = run_account_with(&acc, depth, Hashing::HaloBase);
        assert!(out.is_satisfied());
        let cells = out.advice_cells - chip_only.advice_cells;
        eprintln!("account leaf with {positions} slots: {cells} advice cells");
        assert!(cells > 0);
    }
}
