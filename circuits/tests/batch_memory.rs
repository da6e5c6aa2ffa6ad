//! The batch's account table (docs/CIRCUIT.md, "Account table"): accounts are opened once and
//! written back once. A market-maker batch fits a table smaller than the default; a stale read,
//! a port whose account is missing from the table and a repeated entry are each rejected by
//! the one constraint that guards them, with every other rule satisfied.

use collar_circuits::batch::{build_batch, default_table_size, BatchCircuitError, BatchWitness};
use collar_circuits::testing::{Failure, MockOutcome, MockRun, FLEX_GATE};
use collar_protocol::batch;
use collar_protocol::testkit::{signer_key, Harness};
use collar_protocol::{OptionKind, ProtocolParams, State, Tx, FEE_ACCOUNT};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

const K: u32 = 17;

fn mock(w: &BatchWitness, instances: Option<Vec<Fr>>) -> MockOutcome<()> {
    MockRun::new(K, 16).run(
        |ctx, range| ((), build_batch(ctx, range, w)),
        None,
        instances,
    )
}

/// Rewrites every entry's opened leaf and siblings for the entries as they now stand, so that
/// the write-back is a consistent chain of Merkle updates and only the rule under test can
/// reject a forged table.
fn rechain(before: &State, w: &mut BatchWitness) {
    let mut tree = before.accounts_tree();
    for e in &mut w.accounts {
        e.opened = tree.leaf(e.account);
        e.siblings = tree.update(e.account, e.closed).unwrap().siblings;
    }
}

/// A market maker (account 2) trades with four takers (3..=6), alternating sides.
fn market_maker_batch() -> (State, batch::ExecutedBatch) {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let r = h.register(0, 100_000, 10_000, OptionKind::Call, 1);
    h.accept(&r);
    let t = h.tick(10, &[(0, 100_000, vec![(0, 5_000)])]);
    h.accept(&t);
    for acc in [FEE_ACCOUNT, 2, 3, 4, 5, 6] {
        h.fund(acc, 1_000_000);
    }
    let before = h.state.clone();
    let txs: Vec<Tx> = (3..=6u64)
        .map(|taker| {
            if taker % 2 == 1 {
                h.simple_trade(2, taker, 0, 3, 5_000).tx
            } else {
                h.simple_trade(taker, 2, 0, 3, 5_000).tx
            }
        })
        .collect();
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 3, &txs).unwrap();
    (before, exec)
}

#[test]
fn a_market_maker_batch_fits_a_table_of_capacity_plus_two() {
    let (before, exec) = market_maker_batch();
    assert_eq!(default_table_size(4), 10);
    // The maker, four takers and the fee account.
    let mut w = BatchWitness::with_table(&before, &exec, 4, 6).unwrap();
    w.resign_with(signer_key);
    let ids: Vec<u64> = w.accounts.iter().map(|e| e.account).collect();
    assert_eq!(ids, [FEE_ACCOUNT, 2, 3, 4, 5, 6]);
    let expected = exec.public_inputs.to_fields().to_vec();
    let out = mock(&w, Some(expected));
    assert!(out.is_satisfied(), "{:?}", out.failures);
    // One entry fewer does not fit: a typed error, before any circuit is built.
    let err = BatchWitness::with_table(&before, &exec, 4, 5).unwrap_err();
    assert_eq!(
        err,
        BatchCircuitError::TableFull {
            accounts: 6,
            entries: 5
        }
    );
}

#[test]
fn a_stale_read_fails_the_table_read() {
    // Account 2 withdraws 600 of its 1,000, then 100. The forgery replays the first
    // withdrawal in slot 1 against the balance slot 0 started from: a double spend that every
    // per-slot rule accepts (nonce, balance, margin, signature), which only the table read
    // (the port's `before` against the entry's current leaf) rules out.
    let mut h = Harness::new(ProtocolParams::small(), 1);
    h.fund(2, 1_000);
    let before = h.state.clone();
    let first = h.withdraw(2, 600);
    h.accept(&first);
    let second = h.withdraw(2, 100);
    let txs = vec![first.tx.clone(), second.tx];
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 5, &txs).unwrap();
    let mut w = BatchWitness::new(&before, &exec, 2).unwrap();
    w.resign_with(signer_key);
    let honest = mock(&w, Some(exec.public_inputs.to_fields().to_vec()));
    assert!(honest.is_satisfied(), "{:?}", honest.failures);

    let replay = w.slots[0].clone();
    w.slots[1].tx = Some(first.tx);
    w.slots[1].ports[0].before = replay.ports[0].before.clone();
    w.slots[1].ports[0].after = replay.ports[0].after.clone();
    w.resign_with(signer_key);
    let out = mock(&w, None);
    assert_eq!(out.failures, [Failure::Permutation].into_iter().collect());
}

/// A deposit into a new account 5 at capacity 2: the table holds 0, 1, 2, 3, 4 and 5 (the fee
/// account for the idle ports, account 5, and padding at the lowest free ids).
fn deposit_batch() -> (State, BatchWitness) {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    h.fund(3, 10);
    let before = h.state.clone();
    let txs = vec![h.deposit(5, 1_000).tx];
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 2, &txs).unwrap();
    let mut w = BatchWitness::new(&before, &exec, 2).unwrap();
    w.resign_with(signer_key);
    let ids: Vec<u64> = w.accounts.iter().map(|e| e.account).collect();
    assert_eq!(ids, [0, 1, 2, 3, 4, 5]);
    (before, w)
}

#[test]
fn a_port_whose_account_is_not_in_the_table_fails_the_hit_count() {
    // Entry 5 becomes an identity write of the empty account 6: the deposit's port (account
    // 5) then matches no entry, and its write would never reach the new root.
    let (before, mut w) = deposit_batch();
    rechain(&before, &mut w);
    assert!(
        mock(&w, None).is_satisfied(),
        "rechaining alone keeps the witness valid"
    );
    let e = &mut w.accounts[5];
    e.account = 6;
    e.closed = Fr::zero();
    rechain(&before, &mut w);
    let out = mock(&w, None);
    assert_eq!(out.failures, [Failure::Permutation].into_iter().collect());
}

/// `w` is rejected, and only by the ascending-id range check (its lookup or the flex-gate rows
/// of its decomposition).
fn assert_fails_the_id_order(w: &BatchWitness) {
    let out = mock(w, None);
    assert!(!out.is_satisfied());
    assert!(
        out.failures
            .iter()
            .all(|f| f.is_range_lookup() || *f == Failure::Gate(FLEX_GATE.into())),
        "{:?}",
        out.failures
    );
}

#[test]
fn a_repeated_entry_fails_the_ascending_id_check() {
    // Entries 2 and 3 both become identity writes of account 2, each a valid Merkle update and
    // named by no port: only the strict order of the ids rejects the table.
    let (before, mut w) = deposit_batch();
    w.accounts[3].account = 2;
    w.accounts[3].closed = w.accounts[2].closed;
    rechain(&before, &mut w);
    assert_fails_the_id_order(&w);
    // Descending ids fail the same check.
    let (before, mut w) = deposit_batch();
    w.accounts.swap(2, 3);
    rechain(&before, &mut w);
    assert_fails_the_id_order(&w);
}

#[test]
fn a_batch_that_does_not_replay_on_its_state_is_a_typed_error() {
    let (before, exec) = market_maker_batch();
    let built = |exec: &batch::ExecutedBatch| BatchWitness::with_table(&before, exec, 4, 6);
    assert!(built(&exec).is_ok());

    // A header that does not start from the state's accounts root.
    let mut e = exec.clone();
    e.witnesses[0].header_before.accounts_root += Fr::one();
    let err = built(&e).unwrap_err();
    assert_eq!(err, BatchCircuitError::Inconsistent("batch does not chain"));

    // A port value the protocol's own replay of the transaction does not give: the maker's
    // collateral after the second trade, one unit more.
    let mut e = exec.clone();
    let maker = e.witnesses[1]
        .account_updates
        .iter_mut()
        .rev()
        .find(|u| u.account == 2)
        .expect("the maker trades in every transaction");
    maker.after.collateral += 1;
    let err = built(&e).unwrap_err();
    assert_eq!(err, BatchCircuitError::Inconsistent("ports do not replay"));

    // A final accounts root the table's write-back does not reach.
    let mut e = exec.clone();
    e.witnesses.last_mut().unwrap().header_after.accounts_root += Fr::one();
    let err = built(&e).unwrap_err();
    assert_eq!(
        err,
        BatchCircuitError::Inconsistent("account table does not replay")
    );
}
