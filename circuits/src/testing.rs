//! MockProver harness for chip and circuit tests: builds a halo2-base circuit from a closure,
//! optionally mutates one witness cell or tampers with the public inputs, and reports which
//! *named* constraints failed, so negative tests can assert the exact failure.

use std::collections::BTreeSet;

use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::RangeChip;
use halo2_base::halo2_proofs::dev::{MockProver, VerifyFailure};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::plonk::Assigned;
use halo2_base::{AssignedValue, Context};

/// The named constraints of halo2-base that a witness can fail.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// A custom gate, by name (halo2-base's is `1 column a + b * c = out`).
    Gate(String),
    /// A lookup argument, by name (the range table is `lookup`).
    Lookup(String),
    /// A copy constraint (equality between cells, including instance cells).
    Permutation,
    /// A gate read a cell that was never assigned.
    CellNotAssigned,
    /// Any other failure, as halo2 prints it.
    Other(String),
}

/// The flex gate's name in halo2-base.
pub const FLEX_GATE: &str = "1 column a + b * c = out";
/// The range-check lookup's name in halo2-base.
pub const RANGE_LOOKUP: &str = "lookup";
/// The same range lookup's name in a circuit with more than one advice column (halo2-base
/// then looks up dedicated lookup-advice columns).
pub const RANGE_LOOKUP_COLUMNS: &str = "lookup wo selector";

impl Failure {
    /// Whether this is halo2-base's range lookup, under either of its names.
    pub fn is_range_lookup(&self) -> bool {
        matches!(self, Failure::Lookup(n) if n == RANGE_LOOKUP || n == RANGE_LOOKUP_COLUMNS)
    }
}

impl Failure {
    /// The named failure a MockProver reported (gate name from `constraint ('…') in gate g
    /// ('name')`, lookup name, copy constraint, unassigned cell).
    pub fn classify(f: &VerifyFailure) -> Self {
        match f {
            VerifyFailure::ConstraintNotSatisfied { constraint, .. }
            | VerifyFailure::ConstraintPoisoned { constraint } => {
                let s = constraint.to_string();
                let name = s
                    .rsplit_once("('")
                    .and_then(|(_, n)| n.strip_suffix("')"))
                    .unwrap_or(&s);
                Failure::Gate(name.to_string())
            }
            VerifyFailure::Lookup { name, .. } => Failure::Lookup(name.clone()),
            VerifyFailure::Permutation { .. } => Failure::Permutation,
            VerifyFailure::CellNotAssigned { .. } => Failure::CellNotAssigned,
            other => Failure::Other(format!("{other:?}")),
        }
    }
}

/// One advice cell of the main context to overwrite after witness generation.
#[derive(Clone, Copy, Debug)]
pub struct Mutation {
    /// Offset of the cell in the main context (`AssignedValue::cell.offset`).
    pub offset: usize,
    /// The value written instead.
    pub value: Fr,
}

/// What a mock run produced.
#[derive(Debug)]
pub struct MockOutcome<R> {
    /// The closure's result (witness values computed while building).
    pub output: R,
    /// Distinct named failures; empty means the circuit is satisfied.
    pub failures: BTreeSet<Failure>,
    /// Number of advice cells in the main context (the mutation space).
    pub advice_cells: usize,
}

impl<R> MockOutcome<R> {
    /// Whether every constraint held.
    pub fn is_satisfied(&self) -> bool {
        self.failures.is_empty()
    }
}

/// A MockProver run of a single-phase halo2-base circuit.
#[derive(Clone, Copy, Debug)]
pub struct MockRun {
    /// Circuit size `2^k` rows.
    pub k: u32,
    /// Range lookup table size `2^lookup_bits`.
    pub lookup_bits: usize,
}

impl MockRun {
    /// A run with `2^k` rows and an `lookup_bits`-bit range table.
    pub fn new(k: u32, lookup_bits: usize) -> Self {
        Self { k, lookup_bits }
    }

    /// Builds the circuit with `build`, which returns its output and the cells it exposes as
    /// public inputs. Then applies `mutation`, replaces the public input values with
    /// `instances` if given (to tamper with them), and runs the MockProver.
    pub fn run<R>(
        &self,
        build: impl FnOnce(&mut Context<Fr>, &RangeChip<Fr>) -> (R, Vec<AssignedValue<Fr>>),
        mutation: Option<Mutation>,
        instances: Option<Vec<Fr>>,
    ) -> MockOutcome<R> {
        let mut builder = BaseCircuitBuilder::<Fr>::new(false)
            .use_k(self.k as usize)
            .use_lookup_bits(self.lookup_bits)
            .use_instance_columns(1);
        let range = builder.range_chip();
        let (output, public) = build(builder.main(0), &range);
        let advice_cells = builder.main(0).advice.len();
        if let Some(m) = mutation {
            builder.main(0).advice[m.offset] = Assigned::Trivial(m.value);
        }
        let values: Vec<Fr> = public.iter().map(|c| *c.value()).collect();
        builder.assigned_instances[0] = public;
        builder.calculate_params(Some(9));
        let instances = instances.unwrap_or(values);
        let prover = MockProver::run(self.k, &builder, vec![instances]).expect("mock prover runs");
        let failures = match prover.verify() {
            Ok(()) => BTreeSet::new(),
            Err(errs) => errs.iter().map(Failure::classify).collect(),
        };
        MockOutcome {
            output,
            failures,
            advice_cells,
        }
    }

    /// [`MockRun::run`] with no mutation, no public inputs and no tampering.
    pub fn check<R>(
        &self,
        build: impl FnOnce(&mut Context<Fr>, &RangeChip<Fr>) -> R,
    ) -> MockOutcome<R> {
        self.run(|ctx, range| (build(ctx, range), Vec::new()), None, None)
    }
}

/// Set to run mutation sweeps over every hashing cell too (see [`MockRun::sweep`]).
pub const EXHAUSTIVE_ENV: &str = "COLLAR_EXHAUSTIVE";

/// Every how many cells inside a Poseidon scope a default (non-exhaustive) sweep mutates.
pub const HASH_STRIDE: usize = 7;

/// What a mutation sweep found.
#[derive(Debug)]
pub struct Sweep<R> {
    /// Offsets whose mutation (value + 1) the MockProver accepted, ascending.
    pub accepted: Vec<usize>,
    /// The unmutated advice values of the main context.
    pub values: Vec<Fr>,
    /// The offsets mutated, ascending: every cell outside Poseidon scopes, and inside them
    /// every cell or every [`HASH_STRIDE`]-th (see [`MockRun::sweep`]).
    pub swept: Vec<usize>,
    /// The closure's output on the unmutated build.
    pub output: R,
}

impl MockRun {
    /// Mutates advice cells of the main context, one at a time (value + 1), with the public
    /// inputs fixed to `instances`, and reports which mutations were accepted. Every cell
    /// assigned outside a Poseidon scope is mutated. Inside Poseidon scopes (halo2-base's
    /// permutation internals, about 2,250 cells a permutation, and the outputs) every
    /// [`HASH_STRIDE`]-th cell is, or every one when the environment variable
    /// [`EXHAUSTIVE_ENV`] is set. The unmutated build must be satisfied. Runs on all
    /// available cores.
    ///
    /// # Panics
    /// If the unmutated build is not satisfied.
    pub fn sweep<R, B>(&self, build: B, instances: &[Fr]) -> Sweep<R>
    where
        B: Fn(&mut Context<Fr>, &RangeChip<Fr>) -> (R, Vec<AssignedValue<Fr>>) + Sync,
    {
        let base = self.run(
            |ctx, range| {
                let ((r, public), breakdown) =
                    crate::stats::metered(range, ctx, |ctx| build(ctx, range))
                        .expect("no meter is active on the sweeping thread");
                let values: Vec<Fr> = ctx.advice.iter().map(|a| a.evaluate()).collect();
                ((r, values, breakdown.hash_spans), public)
            },
            None,
            Some(instances.to_vec()),
        );
        assert!(base.is_satisfied(), "{:?}", base.failures);
        let (output, values, hash_spans) = base.output;
        let exhaustive = std::env::var_os(EXHAUSTIVE_ENV).is_some();
        let mut in_hash = vec![false; values.len()];
        for span in &hash_spans {
            in_hash[span.clone()].iter_mut().for_each(|b| *b = true);
        }
        let mut hash_seen = 0usize;
        let swept: Vec<usize> = (0..values.len())
            .filter(|o| {
                if !in_hash[*o] || exhaustive {
                    return true;
                }
                hash_seen += 1;
                hash_seen % HASH_STRIDE == 1
            })
            .collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let accepted = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..threads {
                let (values, swept, build, accepted) = (&values, &swept, &build, &accepted);
                s.spawn(move || {
                    for &offset in swept.iter().skip(t).step_by(threads) {
                        let value = values[offset] + Fr::one();
                        let out = self.run(
                            |ctx, range| ((), build(ctx, range).1),
                            Some(Mutation { offset, value }),
                            Some(instances.to_vec()),
                        );
                        if out.is_satisfied() {
                            accepted
                                .lock()
                                .expect("no panics while holding")
                                .push(offset);
                        }
                    }
                });
            }
        });
        let mut accepted = accepted.into_inner().expect("no panics while holding");
        accepted.sort_unstable();
        Sweep {
            accepted,
            values,
            swept,
            output,
        }
    }
}
