//! A direct satisfiability check of a built [`HashingCircuit`], for campaigns that need tens of
//! thousands of verdicts: it evaluates the constraints on the virtual assignment instead of
//! laying the circuit out for the MockProver.
//!
//! What it evaluates, and how each maps to the real circuit:
//! * **Flex gate** (`a + b·c = out`): every virtual row whose selector is on, exactly as
//!   halo2-base lays it out (break points never split a gate).
//! * **Copy constraints**: every advice–advice and advice–constant equality the builder recorded.
//! * **Range lookups**: every cell queued for the range table lies below `2^lookup_bits`, and
//!   equals the cell it was copied from (the lookup column is copy-constrained to it).
//! * **Pow5 chip calls**: each recorded hash's output is the native Poseidon of its inputs'
//!   current values. This stands for the chip's own gates, whose soundness the chip's tests
//!   (`pow5_chip.rs`, the chip-cell campaign in `batch_mutation.rs`) establish.
//!
//! Instance cells are not checked: the campaigns that use this take the public inputs from the
//! circuit's own output cells (a malicious prover publishes whatever its witness computes).
//!
//! A circuit with the multiplication chip ([`Hashing::Pow5Msm`](crate::poseidon::Hashing)) is
//! refused ([`Unsatisfied::Unsupported`]); run those through the MockProver. `tests/soundness.rs`
//! checks that this and the MockProver agree on honest, forged and mutated batches.

use std::collections::HashMap;

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
use halo2_base::halo2_proofs::plonk::Assigned;
use halo2_base::ContextCell;

use crate::pow5::HashingCircuit;
use Unsatisfied::Unsupported;

/// The first constraint [`check`] found violated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unsatisfied {
    /// The flex gate at this virtual row (context id, offset).
    #[error("flex gate at context {0}, offset {1}")]
    FlexGate(usize, usize),
    /// A copy constraint between two advice cells (context id, offset of each).
    #[error("copy constraint between {0:?} and {1:?}")]
    Copy((usize, usize), (usize, usize)),
    /// A copy constraint of an advice cell to a constant.
    #[error("constant copy at {0:?}")]
    Constant((usize, usize)),
    /// A range lookup of this cell (context id, offset).
    #[error("range lookup at {0:?}")]
    Lookup((usize, usize)),
    /// The Pow5 chip call at this index (call order) does not hash its inputs to its output.
    #[error("hash call {0}")]
    Hash(usize),
    /// The circuit has a part this check does not evaluate (the multiplication chip, or a cell
    /// outside the builder's contexts).
    #[error("not checkable here: {0}")]
    Unsupported(&'static str),
}

/// Checks every constraint of `circuit` listed in the module docs on its current virtual
/// assignment.
///
/// Preconditions: `circuit` was built by a builder with `witness_gen_only = false` (the
/// MockProver and keygen stage), so that copy constraints and selectors were recorded, and with
/// lookup bits set.
///
/// # Errors
/// The first violated constraint, in the order gates, copies, lookups, hashes.
pub fn check(circuit: &HashingCircuit) -> Result<(), Unsatisfied> {
    if circuit.hashing().msm() {
        return Err(Unsatisfied::Unsupported("the multiplication chip"));
    }
    let builder = &circuit.builder;
    assert!(
        !builder.witness_gen_only(),
        "check needs the recorded constraints (witness_gen_only = false)"
    );
    let mut contexts: HashMap<(&'static str, usize), &[Assigned<Fr>]> = HashMap::new();
    for phase in &builder.core().phase_manager {
        for ctx in &phase.threads {
            contexts.insert(ctx.tag(), &ctx.advice);
            let a = &ctx.advice;
            for (i, on) in ctx.selector.iter().enumerate() {
                if *on {
                    let v = |j: usize| a[i + j].evaluate();
                    if v(0) + v(1) * v(2) != v(3) {
                        return Err(Unsatisfied::FlexGate(ctx.id(), i));
                    }
                }
            }
        }
    }
    let value = |c: &ContextCell| -> Result<Fr, Unsatisfied> {
        contexts
            .get(&(c.type_id, c.context_id))
            .and_then(|a| a.get(c.offset))
            .map(|v| v.evaluate())
            .ok_or(Unsatisfied::Unsupported(
                "a cell outside the builder's contexts",
            ))
    };
    let at = |c: &ContextCell| (c.context_id, c.offset);
    {
        let copies = builder
            .core()
            .copy_manager
            .lock()
            .expect("no panics while holding the copy manager");
        for (a, b) in &copies.advice_equalities {
            if value(a)? != value(b)? {
                return Err(Unsatisfied::Copy(at(a), at(b)));
            }
        }
        for (c, cell) in &copies.constant_equalities {
            if value(cell)? != *c {
                return Err(Unsatisfied::Constant(at(cell)));
            }
        }
    }
    let bits = builder
        .config_params
        .lookup_bits
        .expect("a range circuit has lookup bits");
    for manager in builder.lookup_manager() {
        let queued = manager
            .cells_to_lookup
            .lock()
            .expect("no panics while holding the lookup manager");
        for [cell] in queued.values().flatten() {
            let c = cell
                .cell
                .ok_or(Unsupported("a lookup of a cell without a position"))?;
            let now = value(&c)?;
            if now != *cell.value() || !below_pow2(&now, bits) {
                return Err(Unsatisfied::Lookup(at(&c)));
            }
        }
    }
    for (i, call) in circuit.hasher().calls().iter().enumerate() {
        let inputs = call
            .inputs
            .iter()
            .map(|c| value(&c.cell.ok_or(Unsupported("a hash of a loose cell"))?))
            .collect::<Result<Vec<_>, _>>()?;
        let output = value(&call.output.cell.ok_or(Unsupported("a loose output"))?)?;
        if call.kind.native(&inputs) != output {
            return Err(Unsatisfied::Hash(i));
        }
    }
    Ok(())
}

/// Whether `v < 2^bits` as an integer.
fn below_pow2(v: &Fr, bits: usize) -> bool {
    let repr = v.to_repr();
    let bytes = repr.as_ref();
    (0..256).all(|i| i < bits || bytes[i / 8] >> (i % 8) & 1 == 0)
}
