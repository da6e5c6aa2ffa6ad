//! The batch circuit on deposit batches: public inputs equal the native ones, each tampered
//! public input and sampled witness mutations are rejected, and unsupported types are refused.

use collar_circuits::batch::{build_batch, BatchCircuitError, BatchWitness};
use collar_circuits::testing::{Failure, MockOutcome, MockRun, Mutation};
use collar_protocol::batch;
use collar_protocol::testkit::signer_key;
use collar_protocol::testkit::Harness;
use collar_protocol::{ProtocolParams, State, Tx, INSURANCE_FUND};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

const K: u32 = 17;

/// A state with account 2 funded, and a batch of three deposits: a new account, an existing
/// account, and the insurance fund.
fn deposit_batch() -> (State, Vec<Tx>, Vec<Fr>) {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    h.fund(2, 500);
    let before = h.state.clone();
    let txs: Vec<Tx> = [
        h.deposit(3, 1_000),
        h.deposit(2, 7),
        h.deposit(INSURANCE_FUND, 9),
    ]
    .into_iter()
    .map(|s| s.tx)
    .collect();
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 4, &txs).unwrap();
    (before, txs, exec.public_inputs.to_fields().to_vec())
}

fn run(capacity: usize, mutation: Option<Mutation>, instances: Option<Vec<Fr>>) -> MockOutcome<()> {
    let (before, txs, _) = deposit_batch();
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 4, &txs).unwrap();
    let mut w = BatchWitness::new(&before, &exec, capacity).unwrap();
    w.resign_with(signer_key);
    MockRun::new(K, 16).run(
        |ctx, range| ((), build_batch(ctx, range, &w)),
        mutation,
        instances,
    )
}

#[test]
fn deposit_batch_proves_the_native_public_inputs() {
    let (_, _, expected) = deposit_batch();
    let out = run(3, None, Some(expected));
    assert!(out.is_satisfied(), "{:?}", out.failures);
}

#[test]
fn every_tampered_public_input_is_rejected() {
    let (_, _, expected) = deposit_batch();
    for i in 0..expected.len() {
        let mut tampered = expected.clone();
        tampered[i] += Fr::one();
        let out = run(3, None, Some(tampered));
        assert_eq!(
            out.failures,
            [Failure::Permutation].into_iter().collect(),
            "public input {i}"
        );
    }
}

#[test]
fn sampled_witness_mutations_are_rejected() {
    let (_, _, expected) = deposit_batch();
    let cells = run(3, None, Some(expected.clone())).advice_cells;
    // A few spot checks of the deposit slots; the campaign in `batch_mutation.rs` is the
    // main mutation test (each sample is a full MockProver run of three slots).
    let samples = 3;
    for i in 0..samples {
        let offset = (i * 104_729 + 7) % cells;
        let out = run(
            3,
            Some(Mutation {
                offset,
                value: Fr::from(0xbad_u64),
            }),
            Some(expected.clone()),
        );
        assert!(
            !out.is_satisfied(),
            "mutating cell {offset} of {cells} was accepted"
        );
    }
}

#[test]
fn overfull_batches_are_refused_and_a_leading_tick_takes_no_slot() {
    let (before, txs, _) = deposit_batch();
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 4, &txs).unwrap();
    assert!(matches!(
        BatchWitness::new(&before, &exec, 2),
        Err(BatchCircuitError::OverCapacity {
            txs: 3,
            capacity: 2
        })
    ));
    // A leading tick takes the tick lane, not a slot: a tick and two deposits fit 2 slots.
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let t = h.tick(10, &[(0, 100_000, vec![])]).tx;
    let d = [h.deposit(2, 5).tx, h.deposit(3, 5).tx];
    let before = h.state.clone();
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 1, &[t, d[0].clone(), d[1].clone()]).unwrap();
    let w = BatchWitness::new(&before, &exec, 2).unwrap();
    assert!(w.tick.is_some());
    assert!(w.slots.iter().all(|s| s.tx.is_some()));
}
