//! MockProver harness for chip and circuit tests: builds a halo2-base circuit from a closure,
//! optionally mutates one witness cell or tampers with the public inputs, and reports which
//! *named* constraints failed, so negative tests can assert the exact failure.

use std::collections::BTreeSet;

use halo2_base::gates::circuit::builder::BaseCircuitBuilder;

use crate::poseidon::Hashing;
use crate::pow5::{ChipMutation, HashingCircuit, RowKind, ADVICE_COLUMNS};
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
    /// The honest chip region: each row's values and gate (empty with halo2-base hashing).
    pub chip_region: Vec<([Fr; ADVICE_COLUMNS], RowKind)>,
    /// The honest multiplication rows, which follow `chip_region`'s rows (empty unless the
    /// hashing is [`Hashing::Pow5Msm`]): a [`ChipMutation`] of row `chip_region.len() + r`
    /// overwrites row `r` of them.
    pub msm_region: Vec<[Fr; ADVICE_COLUMNS]>,
}

impl<R> MockOutcome<R> {
    /// Whether every constraint held.
    pub fn is_satisfied(&self) -> bool {
        self.failures.is_empty()
    }
}

/// A MockProver run of a single-phase halo2-base circuit, hashing through the production Pow5
/// chip unless told otherwise ([`MockRun::with_hashing`]).
#[derive(Clone, Copy, Debug)]
pub struct MockRun {
    /// Circuit size `2^k` rows.
    pub k: u32,
    /// Range lookup table size `2^lookup_bits`.
    pub lookup_bits: usize,
    /// Which Poseidon the circuit's [`PoseidonChip`](crate::poseidon::PoseidonChip)s use.
    pub hashing: Hashing,
}

impl MockRun {
    /// A run with `2^k` rows and an `lookup_bits`-bit range table, hashing with Pow5.
    pub fn new(k: u32, lookup_bits: usize) -> Self {
        Self {
            k,
            lookup_bits,
            hashing: Hashing::Pow5,
        }
    }

    /// The same run hashing with `hashing`.
    pub fn with_hashing(self, hashing: Hashing) -> Self {
        Self { hashing, ..self }
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
        self.run_mutating(build, mutation, None, instances)
    }

    /// [`MockRun::run`] that may also overwrite one cell of the Pow5 chip region.
    ///
    /// # Panics
    /// If `chip` is given for a halo2-base run or lies outside the chip region.
    pub fn run_mutating<R>(
        &self,
        build: impl FnOnce(&mut Context<Fr>, &RangeChip<Fr>) -> (R, Vec<AssignedValue<Fr>>),
        mutation: Option<Mutation>,
        chip: Option<ChipMutation>,
        instances: Option<Vec<Fr>>,
    ) -> MockOutcome<R> {
        let builder = BaseCircuitBuilder::<Fr>::new(false)
            .use_k(self.k as usize)
            .use_lookup_bits(self.lookup_bits)
            .use_instance_columns(1);
        let mut circuit = HashingCircuit::with_hashing(builder, self.hashing);
        let (output, public) = circuit.build(|b| {
            let range = b.range_chip();
            build(b.main(0), &range)
        });
        let builder = &mut circuit.builder;
        let advice_cells = builder.main(0).advice.len();
        if let Some(m) = mutation {
            builder.main(0).advice[m.offset] = Assigned::Trivial(m.value);
        }
        let values: Vec<Fr> = public.iter().map(|c| *c.value()).collect();
        builder.assigned_instances[0] = public;
        circuit.calculate_params(Some(9));
        if let Some(m) = chip {
            assert!(
                self.hashing.pow5() && m.row < circuit.chip_rows(),
                "chip mutation outside the chip region"
            );
            circuit.mutate_chip_cell(m);
        }
        let chip_region = circuit.chip_region();
        let msm_region = circuit.msm_region();
        let instances = instances.unwrap_or(values);
        let prover = MockProver::run(self.k, &circuit, vec![instances]).expect("mock prover runs");
        let failures = match prover.verify() {
            Ok(()) => BTreeSet::new(),
            Err(errs) => errs.iter().map(Failure::classify).collect(),
        };
        MockOutcome {
            output,
            failures,
            advice_cells,
            chip_region,
            msm_region,
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
    /// Pow5 chip cells `(row, column)` whose mutation (value + 1) was accepted.
    pub chip_accepted: Vec<(usize, usize)>,
    /// Pow5 chip cells mutated (0 with halo2-base hashing).
    pub chip_swept: usize,
    /// The closure's output on the unmutated build.
    pub output: R,
}

/// One cell a sweep mutates.
#[derive(Clone, Copy)]
enum Target {
    Context(usize),
    Chip(usize, usize),
}

impl MockRun {
    /// Mutates advice cells, one at a time (value + 1), with the public inputs fixed to
    /// `instances`, and reports which mutations were accepted.
    /// - Main context: every cell assigned outside a Poseidon scope. Inside Poseidon scopes
    ///   (halo2-base's permutation internals, about 2,250 cells a permutation, or the Pow5
    ///   output cells) every [`HASH_STRIDE`]-th.
    /// - Pow5 chip region: every [`HASH_STRIDE`]-th cell a gate uses
    ///   ([`RowKind::used_columns`]).
    ///
    /// With the environment variable [`EXHAUSTIVE_ENV`] set, every such cell. The unmutated
    /// build must be satisfied. Runs on all available cores.
    ///
    /// # Panics
    /// If the unmutated build is not satisfied.
    pub fn sweep<R, B>(&self, build: B, instances: &[Fr]) -> Sweep<R>
    where
        B: Fn(&mut Context<Fr>, &RangeChip<Fr>) -> (R, Vec<AssignedValue<Fr>>) + Sync,
    {
        let base = self.run_mutating(
            |ctx, range| {
                let ((r, public), breakdown) =
                    crate::stats::metered(range, ctx, |ctx| build(ctx, range))
                        .expect("no meter is active on the sweeping thread");
                let values: Vec<Fr> = ctx.advice.iter().map(|a| a.evaluate()).collect();
                ((r, values, breakdown.hash_spans), public)
            },
            None,
            None,
            Some(instances.to_vec()),
        );
        assert!(base.is_satisfied(), "{:?}", base.failures);
        let region = base.chip_region;
        let (output, values, hash_spans) = base.output;
        let exhaustive = std::env::var_os(EXHAUSTIVE_ENV).is_some();
        let mut in_hash = vec![false; values.len()];
        for span in &hash_spans {
            in_hash[span.clone()].iter_mut().for_each(|b| *b = true);
        }
        let mut hash_seen = 0usize;
        let mut stride = |hashing: bool| {
            if !hashing || exhaustive {
                return true;
            }
            hash_seen += 1;
            hash_seen % HASH_STRIDE == 1
        };
        let swept: Vec<usize> = (0..values.len()).filter(|o| stride(in_hash[*o])).collect();
        let chip: Vec<(usize, usize)> = region
            .iter()
            .enumerate()
            .flat_map(|(row, (_, kind))| kind.used_columns().iter().map(move |c| (row, *c)))
            .filter(|_| stride(true))
            .collect();
        let targets: Vec<Target> = swept
            .iter()
            .map(|o| Target::Context(*o))
            .chain(chip.iter().map(|(r, c)| Target::Chip(*r, *c)))
            .collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let accepted = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..threads {
                let (values, region, targets, build, accepted) =
                    (&values, &region, &targets, &build, &accepted);
                s.spawn(move || {
                    for &target in targets.iter().skip(t).step_by(threads) {
                        let (mutation, chip) = match target {
                            Target::Context(offset) => (
                                Some(Mutation {
                                    offset,
                                    value: values[offset] + Fr::one(),
                                }),
                                None,
                            ),
                            Target::Chip(row, column) => (
                                None,
                                Some(ChipMutation {
                                    row,
                                    column,
                                    value: region[row].0[column] + Fr::one(),
                                }),
                            ),
                        };
                        let out = self.run_mutating(
                            |ctx, range| ((), build(ctx, range).1),
                            mutation,
                            chip,
                            Some(instances.to_vec()),
                        );
                        if out.is_satisfied() {
                            accepted
                                .lock()
                                .expect("no panics while holding")
                                .push(target);
                        }
                    }
                });
            }
        });
        let found = accepted.into_inner().expect("no panics while holding");
        let mut accepted: Vec<usize> = Vec::new();
        let mut chip_accepted: Vec<(usize, usize)> = Vec::new();
        for t in found {
            match t {
                Target::Context(o) => accepted.push(o),
                Target::Chip(r, c) => chip_accepted.push((r, c)),
            }
        }
        accepted.sort_unstable();
        chip_accepted.sort_unstable();
        Sweep {
            accepted,
            values,
            swept,
            chip_accepted,
            chip_swept: chip.len(),
            output,
        }
    }
}
