//! Batches: execution with witnesses, the public inputs a batch proof exposes, and rebuilding
//! the state from public data (PROTOCOL.md §10, §11).

use ff::Field;
use serde::{Deserialize, Serialize};

use crate::error::Rejection;
use crate::field::Fr;
use crate::params::Genesis;
use crate::pubdata::{self, PubdataError};
use crate::signature::Signature;
use crate::state::{tick_chain, State, TxWitness, WithdrawalRecord};
use crate::tx::{SignedTx, Tx};

/// Names of the eight public inputs, in instance-column order (PROTOCOL.md §11, the order of
/// [`BatchPublicInputs::to_fields`]).
pub const PUBLIC_INPUT_NAMES: [&str; 8] = [
    "old_root",
    "new_root",
    "pubdata_commitment",
    "tick_commitment",
    "deposit_head_before",
    "deposit_head_after",
    "withdrawals_commitment",
    "batch_number",
];

/// The public inputs of a batch proof, in instance order (PROTOCOL.md §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchPublicInputs {
    /// State root before the batch.
    #[serde(with = "crate::field::fr_hex")]
    pub old_root: Fr,
    /// State root after the batch.
    #[serde(with = "crate::field::fr_hex")]
    pub new_root: Fr,
    /// [`pubdata::commitment`] of the batch's transactions (a chain over their records).
    #[serde(with = "crate::field::fr_hex")]
    pub pubdata_commitment: Fr,
    /// Tick-commitment chain over the prices accepted in the batch, from zero.
    #[serde(with = "crate::field::fr_hex")]
    pub tick_commitment: Fr,
    /// Deposit-queue head before the batch.
    #[serde(with = "crate::field::fr_hex")]
    pub deposit_head_before: Fr,
    /// Deposit-queue head after the batch.
    #[serde(with = "crate::field::fr_hex")]
    pub deposit_head_after: Fr,
    /// Withdrawals-commitment chain over the batch's withdrawals, from zero.
    #[serde(with = "crate::field::fr_hex")]
    pub withdrawals_commitment: Fr,
    /// Batch number.
    pub batch_number: u64,
}

impl BatchPublicInputs {
    /// The instance column values, in order.
    pub fn to_fields(&self) -> [Fr; 8] {
        [
            self.old_root,
            self.new_root,
            self.pubdata_commitment,
            self.tick_commitment,
            self.deposit_head_before,
            self.deposit_head_after,
            self.withdrawals_commitment,
            Fr::from(self.batch_number),
        ]
    }
}

/// A batch executed with witnesses.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutedBatch {
    /// Public inputs.
    pub public_inputs: BatchPublicInputs,
    /// Public data bytes (§10).
    pub pubdata: Vec<u8>,
    /// Per-transaction witnesses.
    pub witnesses: Vec<TxWitness>,
    /// Withdrawals emitted, in order.
    pub withdrawals: Vec<WithdrawalRecord>,
    /// Per transaction, its signatures in [`Tx::signed_messages`] order (§6.5), which the
    /// batch proof verifies. Empty when the batch was executed unsigned ([`execute`]); only
    /// [`execute_signed`] gives a batch that can be proved.
    #[serde(default)]
    pub signatures: Vec<Vec<Signature>>,
}

/// Why a batch could not be executed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// Transaction `index` was rejected; the state is unchanged.
    #[error("transaction {index} rejected: {rejection}")]
    Rejected {
        /// Position in the batch.
        index: usize,
        /// Why.
        rejection: Rejection,
    },
    /// An oracle tick that is not the batch's first transaction (§11: a batch carries at most
    /// one tick, first, in the circuit's tick lane). The sequencer seals around ticks.
    #[error("transaction {index}: an oracle tick must be the first transaction of its batch")]
    TickNotFirst {
        /// Position of the tick in the batch.
        index: usize,
    },
    /// Public data could not be encoded or decoded.
    #[error(transparent)]
    Pubdata(#[from] PubdataError),
}

/// Executes `txs` (signatures already verified) on `state` with witnesses. All or nothing: on
/// error `state` is unchanged.
///
/// # Errors
/// [`BatchError::TickNotFirst`] for an oracle tick after the first position (checked before
/// anything runs), [`BatchError::Rejected`] for the first transaction the rules reject.
pub fn execute(
    state: &mut State,
    batch_number: u64,
    txs: &[Tx],
) -> Result<ExecutedBatch, BatchError> {
    execute_checked(state, batch_number, txs, |_, _| Ok(()))
}

/// Executes signed transactions like [`execute`], verifying each one's signatures (§6.3,
/// `State::verify_signatures`) against the state just before it, and keeps the signatures in
/// the result for the batch proof. All or nothing.
///
/// # Errors
/// As [`execute`]; a signature that does not verify is [`BatchError::Rejected`] with the
/// `BadSignature` rejection (or `UnknownAccount` / `UnregisteredOracle` for a missing signer).
pub fn execute_signed(
    state: &mut State,
    batch_number: u64,
    stxs: &[SignedTx],
) -> Result<ExecutedBatch, BatchError> {
    let txs: Vec<Tx> = stxs.iter().map(|s| s.tx.clone()).collect();
    let mut exec = execute_checked(state, batch_number, &txs, |work, index| {
        work.verify_signatures(&stxs[index])
    })?;
    exec.signatures = stxs.iter().map(|s| s.signatures.clone()).collect();
    Ok(exec)
}

/// [`execute`] with `check(state_before_tx, index)` run before each transaction applies.
fn execute_checked(
    state: &mut State,
    batch_number: u64,
    txs: &[Tx],
    mut check: impl FnMut(&State, usize) -> Result<(), crate::error::Rejection>,
) -> Result<ExecutedBatch, BatchError> {
    if let Some(index) = txs
        .iter()
        .skip(1)
        .position(|tx| matches!(tx, Tx::OracleTick(_)))
    {
        return Err(BatchError::TickNotFirst { index: index + 1 });
    }
    let mut work = state.clone();
    let params = work.params().clone();
    let old_root = work.root();
    let (deposit_head_before, _) = work.deposit_queue();
    let mut witnesses = Vec::with_capacity(txs.len());
    let mut withdrawals = Vec::new();
    let mut tick_commitment = Fr::ZERO;
    let mut withdrawals_commitment = Fr::ZERO;
    for (index, tx) in txs.iter().enumerate() {
        check(&work, index).map_err(|rejection| BatchError::Rejected { index, rejection })?;
        let w = work
            .apply_with_witness(tx)
            .map_err(|rejection| BatchError::Rejected { index, rejection })?;
        if let Some(wd) = w.effects.withdrawal {
            withdrawals_commitment = wd.chain(withdrawals_commitment);
            withdrawals.push(wd);
        }
        if let Some(t) = w.effects.time {
            tick_commitment = tick_chain(&params, tick_commitment, t, &w.effects.prices);
        }
        witnesses.push(w);
    }
    let pubdata = pubdata::encode_all(txs)?;
    let public_inputs = BatchPublicInputs {
        old_root,
        new_root: work.root(),
        pubdata_commitment: pubdata::commitment(&params, txs)?,
        tick_commitment,
        deposit_head_before,
        deposit_head_after: work.deposit_queue().0,
        withdrawals_commitment,
        batch_number,
    };
    *state = work;
    Ok(ExecutedBatch {
        public_inputs,
        pubdata,
        witnesses,
        withdrawals,
        signatures: Vec::new(),
    })
}

/// Rebuilds the state from genesis and the public data of every batch, in order (§10).
pub fn rebuild(genesis: &Genesis, batches: &[Vec<u8>]) -> Result<State, BatchError> {
    let mut state = State::genesis(genesis).map_err(|rejection| BatchError::Rejected {
        index: 0,
        rejection,
    })?;
    let mut index = 0;
    for bytes in batches {
        for tx in pubdata::decode_all(bytes)? {
            state
                .apply(&tx)
                .map_err(|rejection| BatchError::Rejected { index, rejection })?;
            index += 1;
        }
    }
    Ok(state)
}
