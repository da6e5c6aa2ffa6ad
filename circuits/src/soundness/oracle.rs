//! The soundness property as an executable oracle (docs/CIRCUIT.md, "Soundness").
//!
//! A malicious prover picks any witness and publishes the public inputs its circuit computes.
//! For every witness the circuit accepts, the protocol's replay of the batch's public data
//! from the old state must accept every transaction and reproduce all eight public inputs.
//! [`judge`] decides that for one accepted witness.
//!
//! The public data is read from the circuit's own cells ([`Committed`]: the records it hashed
//! into the commitment, the tick's fixed form included), not from the witness's transactions,
//! which the circuit reads only in part: a transaction field the circuit ignores cannot change
//! what the proof states. The signatures are the witness's, which the circuit verified.

use collar_protocol::batch::{self, BatchError, BatchPublicInputs, PUBLIC_INPUT_NAMES};
use collar_protocol::pubdata::{tx_of_fields, TickLayout};
use collar_protocol::tx::{OracleTick, SignedTx, UnderlyingTick};
use collar_protocol::{Signature, State, Tx};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

use crate::batch::{BatchWitness, TickWitness};
use crate::schnorr::SignatureWitness;

/// What an accepted witness proves, against the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The public inputs are exactly the protocol's replay of the public data: the proof states
    /// nothing the rules do not allow (whatever private cells differ from the honest witness).
    Faithful,
    /// The settlement contract refuses the statement whatever its proof: it does not start
    /// from the chain's state (`old_root` or `deposit_head_before` differ).
    RefusedOnL1(&'static str),
    /// A forgery: the statement disagrees with the replay, which rejects a transaction, cannot
    /// read the public data, or computes another public input (named).
    Forgery(String),
}

/// The public data a circuit committed, as its cells hold it
/// ([`PublicDataCells`](crate::batch::PublicDataCells)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// The tick lane's fixed tick form, if the lane holds a tick.
    pub tick: Option<Vec<Fr>>,
    /// Per slot: the field form of its record, `None` for padding.
    pub slots: Vec<Option<Vec<Fr>>>,
}

/// Judges the public inputs `outputs` (the eight cells the circuit computed from `w`, in
/// [`PUBLIC_INPUT_NAMES`] order) against the protocol's replay, from `before`, of the public data
/// `data` the circuit committed, with `w`'s signatures.
///
/// Preconditions: `before` is the state the chain's root stands for; `w` is a witness the
/// circuit accepted (judging a rejected one means nothing), and `data` and `outputs` are its
/// circuit's cells.
///
/// # Panics
/// If `outputs` does not hold eight values.
pub fn judge(before: &State, w: &BatchWitness, data: &Committed, outputs: &[Fr]) -> Verdict {
    assert_eq!(
        outputs.len(),
        PUBLIC_INPUT_NAMES.len(),
        "eight public inputs"
    );
    let mut chain = before.clone();
    if outputs[0] != chain.root() {
        return Verdict::RefusedOnL1("old_root is not the chain's root");
    }
    if outputs[4] != chain.deposit_queue().0 {
        return Verdict::RefusedOnL1("deposit_head_before is not the chain's consumed head");
    }
    let txs = match public_data(w, data) {
        Ok(txs) => txs,
        Err(why) => return Verdict::Forgery(format!("the public data cannot be read: {why}")),
    };
    match batch::execute_signed(&mut chain, w.batch_number, &txs) {
        Ok(exec) => compare(&exec.public_inputs, outputs),
        Err(BatchError::Rejected { index, rejection }) => Verdict::Forgery(format!(
            "the replay rejects transaction {index} ({}): {rejection}",
            txs[index].tx.kind()
        )),
        Err(e) => Verdict::Forgery(format!("the replay fails: {e}")),
    }
}

fn compare(replay: &BatchPublicInputs, outputs: &[Fr]) -> Verdict {
    let fields = replay.to_fields();
    match (0..fields.len()).find(|&i| fields[i] != outputs[i]) {
        None => Verdict::Faithful,
        Some(i) => Verdict::Forgery(format!(
            "{} differs from the replay's",
            PUBLIC_INPUT_NAMES[i]
        )),
    }
}

/// The transactions of the public data `data`, in batch order (the tick first, then the slots'
/// records), each with the signatures `w` gives for it.
///
/// # Errors
/// A record or tick form that is no transaction's (it would commit to no bytes), or a signed
/// message without a signature.
pub fn public_data(w: &BatchWitness, data: &Committed) -> Result<Vec<SignedTx>, String> {
    let mut txs = Vec::with_capacity(w.slots.len() + 1);
    if let Some(form) = &data.tick {
        let layout = TickLayout::from_fields(form, &w.params).map_err(|e| e.to_string())?;
        let t = w.tick.as_ref().ok_or("a tick without a tick witness")?;
        let t = TickWitness {
            layout,
            ..t.clone()
        };
        txs.push(tick_of(w, &t)?);
    }
    for (i, record) in data.slots.iter().enumerate() {
        if let Some(fields) = record {
            let tx = tx_of_fields(fields).map_err(|e| format!("slot {i}: {e}"))?;
            let signatures = w.slots.get(i).map_or(&[][..], |s| &s.signatures[..]);
            txs.push(SignedTx {
                tx,
                signatures: signatures.iter().map(signature).collect(),
            });
        }
    }
    Ok(txs)
}

/// The tick a lane's layout stands for, with its reports' signatures.
fn tick_of(w: &BatchWitness, t: &TickWitness) -> Result<SignedTx, String> {
    let l = &t.layout;
    let mut underlyings = Vec::new();
    let mut signatures = Vec::new();
    for u in (0..l.priced.len()).filter(|&u| l.priced[u]) {
        let mut reports = Vec::new();
        for o in 0..l.spots[u].len() {
            if let Some(r) = t.report(u, o) {
                let sig = t.signatures[u][o]
                    .as_ref()
                    .ok_or_else(|| format!("report ({u}, {o}) has no signature"))?;
                signatures.push(signature(sig));
                reports.push(r);
            }
        }
        underlyings.push(UnderlyingTick {
            underlying: u as u32,
            reports,
        });
    }
    let tick = OracleTick {
        timestamp: l.timestamp,
        underlyings,
    };
    match TickLayout::of(&tick, &w.params) {
        Ok(back) if back == *l => Ok(SignedTx {
            tx: Tx::OracleTick(tick),
            signatures,
        }),
        _ => Err("the tick lane's layout is no tick's layout".into()),
    }
}

fn signature(s: &SignatureWitness) -> Signature {
    Signature {
        rx: s.r[0],
        ry: s.r[1],
        s: s.s,
    }
}
