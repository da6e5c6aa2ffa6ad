//! Soundness against a malicious prover (docs/CIRCUIT.md, "Soundness"): the property as an
//! oracle ([`oracle`]), the edits a cheating prover can make ([`forge`]), a fast constraint
//! check to judge tens of thousands of them ([`check`]), and the campaign that ties them
//! together ([`campaign`]).
//!
//! Unlike the pinned mutation campaign (`tests/batch_mutation.rs`), nothing here fixes the
//! public inputs: each forged witness is built into the circuit, which computes its own eight
//! public inputs, and whatever the circuit accepts is judged against the protocol's replay of
//! its public data. A state write that no rule constrains changes `new_root` and is accepted by
//! the circuit; the replay then disagrees, and the campaign reports a forgery.

pub mod check;
pub mod forge;
pub mod oracle;
pub mod subjects;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use collar_protocol::State;
use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::Field;
use halo2_base::halo2_proofs::plonk::Assigned;
use halo2_base::AssignedValue;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::batch::{build_batch_traced, BatchWitness, PublicDataCells};
use crate::poseidon::Hashing;
use crate::pow5::HashingCircuit;
use check::Unsatisfied;
use forge::{Family, FAMILIES};
use oracle::{Committed, Verdict};

/// The circuit shape a campaign builds: `2^k` rows (only the lookup table's size matters to
/// [`check::check`]), the range table's bits and the hashing.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Circuit size `2^k` rows.
    pub k: u32,
    /// Range lookup table size `2^lookup_bits`.
    pub lookup_bits: usize,
    /// The Poseidon the circuit uses ([`Hashing::Pow5Msm`] is not checkable by [`check::check`]).
    pub hashing: Hashing,
}

/// A batch circuit built at the MockProver stage, with the cells it exposes as public inputs.
pub struct Built {
    /// The circuit, constraints recorded.
    pub circuit: HashingCircuit,
    /// The eight public-input cells, in instance order.
    pub public: Vec<AssignedValue<Fr>>,
    /// The public data's cells.
    pub data: PublicDataCells,
}

impl Built {
    /// Builds the batch circuit of `w` at `shape` (constraints recorded, for
    /// [`check::check`] or the MockProver).
    ///
    /// # Panics
    /// As [`build_batch`](crate::batch::build_batch), for a witness of the wrong shape.
    pub fn new(w: &BatchWitness, shape: Shape) -> Self {
        let builder = BaseCircuitBuilder::<Fr>::new(false)
            .use_k(shape.k as usize)
            .use_lookup_bits(shape.lookup_bits)
            .use_instance_columns(1);
        let mut circuit = HashingCircuit::with_hashing(builder, shape.hashing);
        let cells = circuit.build(|b| {
            let range = b.range_chip();
            build_batch_traced(b.main(0), &range, w)
        });
        Self {
            circuit,
            public: cells.public,
            data: cells.data,
        }
    }

    /// Advice cells of the main context.
    pub fn advice_cells(&mut self) -> usize {
        self.circuit.builder.main(0).advice.len()
    }

    /// Overwrites one advice cell of the main context.
    pub fn mutate(&mut self, offset: usize, value: Fr) {
        self.circuit.builder.main(0).advice[offset] = Assigned::Trivial(value);
    }

    /// The value the main context holds at `offset`.
    pub fn value(&mut self, offset: usize) -> Fr {
        self.circuit.builder.main(0).advice[offset].evaluate()
    }

    /// The public inputs as the circuit's cells now hold them (a malicious prover publishes
    /// these).
    pub fn outputs(&mut self) -> Vec<Fr> {
        let public = self.public.clone();
        self.values(&public)
    }

    /// The public data as the circuit's cells now hold it: the tick form if the lane's flag is
    /// set, and per slot the record of the first type whose flag is set.
    pub fn committed(&mut self) -> Committed {
        let data = self.data.clone();
        let on = |b: &mut Self, flag: &AssignedValue<Fr>| b.values(&[*flag])[0] == Fr::one();
        let tick = on(self, &data.tick.0).then(|| self.values(&data.tick.1));
        let slots = data
            .slots
            .iter()
            .map(|types| {
                let flagged = types.iter().find(|(flag, _)| on(self, flag));
                flagged.map(|(_, fields)| self.values(fields))
            })
            .collect();
        Committed { tick, slots }
    }

    /// The current values of main-context `cells`.
    fn values(&mut self, cells: &[AssignedValue<Fr>]) -> Vec<Fr> {
        cells
            .iter()
            .map(|c| self.value(c.cell.expect("batch cells are context cells").offset))
            .collect()
    }
}

/// What the circuit and the oracle made of one forged witness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A constraint rejects it.
    Rejected(Unsatisfied),
    /// Accepted, and its statement is the replay of its public data (the honest statement).
    Same,
    /// Accepted, and its statement is the replay of its public data, which differs from the
    /// honest batch's (another valid batch, such as a deposit of another amount).
    Valid,
    /// Accepted, but the settlement contract refuses its statement (another old root).
    RefusedOnL1(&'static str),
    /// Accepted, and the replay contradicts it.
    Forgery(String),
    /// The witness builder panicked on it: no circuit, so no verdict either way.
    Unbuildable(String),
}

/// Checks the witness `w` at `shape`, then judges an accepted one against the replay from
/// `before`. `honest` is the honest batch's public inputs, which tell [`Outcome::Same`] from
/// [`Outcome::Valid`].
pub fn try_witness(before: &State, w: &BatchWitness, shape: Shape, honest: &[Fr]) -> Outcome {
    try_built(before, w, shape, honest, None)
}

/// [`try_witness`] on `w`'s circuit with one main-context cell overwritten, the public inputs
/// read back from the cells (so a mutated output cell is published as it stands).
pub fn try_cell(
    before: &State,
    w: &BatchWitness,
    shape: Shape,
    honest: &[Fr],
    offset: usize,
    value: Fr,
) -> Outcome {
    try_built(before, w, shape, honest, Some((offset, value)))
}

fn try_built(
    before: &State,
    w: &BatchWitness,
    shape: Shape,
    honest: &[Fr],
    cell: Option<(usize, Fr)>,
) -> Outcome {
    let built = catch_unwind(AssertUnwindSafe(|| {
        let mut b = Built::new(w, shape);
        if let Some((offset, value)) = cell {
            b.mutate(offset, value);
        }
        b
    }));
    let mut built = match built {
        Ok(b) => b,
        Err(e) => {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Outcome::Unbuildable(why);
        }
    };
    if let Err(u) = check::check(&built.circuit) {
        return Outcome::Rejected(u);
    }
    let outputs = built.outputs();
    let data = built.committed();
    match oracle::judge(before, w, &data, &outputs) {
        Verdict::Faithful if outputs == honest => Outcome::Same,
        Verdict::Faithful => Outcome::Valid,
        Verdict::RefusedOnL1(why) => Outcome::RefusedOnL1(why),
        Verdict::Forgery(why) => Outcome::Forgery(why),
    }
}

/// One batch a campaign forges: the state before it and its honest witness (signed).
#[derive(Clone, Debug)]
pub struct Subject {
    /// A name for reports.
    pub name: String,
    /// The state the chain's root stands for.
    pub before: State,
    /// The honest witness.
    pub witness: BatchWitness,
    /// The batch's public inputs as the protocol executed it, in instance order.
    pub public: [Fr; 8],
}

/// A forgery the campaign found: enough to rebuild it (`seed`, the draw's index) and what the
/// oracle said.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The subject's name.
    pub subject: String,
    /// The campaign seed and the index of the draw ([`draw_seed`]).
    pub seed: u64,
    /// The index of the draw.
    pub index: usize,
    /// The edit.
    pub what: String,
    /// The oracle's reason.
    pub why: String,
}

/// Counts of one family's draws.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Edits built and checked.
    pub tried: usize,
    /// Rejected by a constraint.
    pub rejected: usize,
    /// Accepted with the honest statement.
    pub same: usize,
    /// Accepted with another valid statement.
    pub valid: usize,
    /// Accepted, refused by the settlement contract.
    pub refused: usize,
    /// Accepted forgeries.
    pub forgeries: usize,
    /// The witness builder panicked (no verdict).
    pub unbuildable: usize,
    /// Draws that did not apply or changed nothing (no edit made, or a value nudged onto
    /// itself).
    pub skipped: usize,
}

/// A campaign's result, by family name (the edit families and `cell`, single main-context
/// cells).
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Counts per family.
    pub families: BTreeMap<String, Counts>,
    /// Every forgery found.
    pub findings: Vec<Finding>,
    /// The accepted edits that are not forgeries, by kind (the outcome and the edit's words
    /// with its numbers elided), with how often each occurred: what a reader checks to see why
    /// each was harmless.
    pub accepted: BTreeMap<String, usize>,
}

impl Tally {
    /// The counts summed over families.
    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for c in self.families.values() {
            t.tried += c.tried;
            t.rejected += c.rejected;
            t.same += c.same;
            t.valid += c.valid;
            t.refused += c.refused;
            t.forgeries += c.forgeries;
            t.unbuildable += c.unbuildable;
            t.skipped += c.skipped;
        }
        t
    }

    /// One line per family and a total, for test output and docs.
    pub fn report(&self) -> String {
        let mut out = String::from(
            "family        tried rejected same valid refused forgeries unbuildable skipped\n",
        );
        let line = |name: &str, c: &Counts| {
            format!(
                "{name:<13} {:>5} {:>8} {:>4} {:>5} {:>7} {:>9} {:>11} {:>7}\n",
                c.tried,
                c.rejected,
                c.same,
                c.valid,
                c.refused,
                c.forgeries,
                c.unbuildable,
                c.skipped
            )
        };
        for (name, c) in &self.families {
            out.push_str(&line(name, c));
        }
        out.push_str(&line("total", &self.total()));
        for (kind, n) in &self.accepted {
            out.push_str(&format!("accepted {n:>5} x {kind}\n"));
        }
        for f in &self.findings {
            out.push_str(&format!(
                "FORGERY {} seed {:#x} draw {}: {} => {}\n",
                f.subject, f.seed, f.index, f.what, f.why
            ));
        }
        out
    }
}

/// The seed of draw `index` of a campaign seeded `seed`: each draw has its own generator, so a
/// finding replays alone ([`draw`]).
pub fn draw_seed(seed: u64, index: usize) -> u64 {
    seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// What draw `index` of a campaign seeded `seed` does to `subject`: a family (the nine edit
/// families and single cells, in turn) and its forged witness, or a cell and its new value.
pub enum Draw {
    /// A forged witness.
    Edit(Family, Option<Box<forge::Forgery>>),
    /// One main-context cell overwritten.
    Cell {
        /// The cell's offset.
        offset: usize,
        /// The value written.
        value: Fr,
    },
}

/// Draw `index` of a campaign seeded `seed` on `subject`, whose circuit has `cells` main-context
/// cells holding `values`.
pub fn draw(subject: &Subject, seed: u64, index: usize, values: &[Fr]) -> Draw {
    let mut rng = ChaCha20Rng::seed_from_u64(draw_seed(seed, index));
    let families = FAMILIES.len() + 1;
    match FAMILIES.get(index % families) {
        Some(&family) => Draw::Edit(
            family,
            forge::forge(&subject.witness, &subject.before, family, &mut rng).map(Box::new),
        ),
        None => {
            let offset = rng.gen_range(0..values.len());
            let v = values[offset];
            let value = match rng.gen_range(0..6) {
                0 => v + Fr::one(),
                1 => v - Fr::one(),
                2 => -Fr::one(),
                3 => Fr::from(2).pow_vartime([rng.gen_range(1..254u64)]),
                4 => Fr::zero(),
                _ => Fr::random(&mut rng),
            };
            Draw::Cell { offset, value }
        }
    }
}

/// Runs `draws` draws on each subject at `shape` on all cores, and tallies them. Every honest
/// witness must itself be accepted and judged the same statement.
///
/// # Panics
/// If an honest witness is rejected or judged otherwise (the harness would be meaningless).
pub fn campaign(subjects: &[Subject], shape: Shape, draws: usize, seed: u64) -> Tally {
    let tally = Mutex::new(Tally::default());
    for subject in subjects {
        let mut honest = Built::new(&subject.witness, shape);
        if let Err(u) = check::check(&honest.circuit) {
            panic!("{}: the honest witness is rejected: {u}", subject.name);
        }
        let outputs = honest.outputs();
        let data = honest.committed();
        let verdict = oracle::judge(&subject.before, &subject.witness, &data, &outputs);
        assert_eq!(verdict, Verdict::Faithful, "{}: honest", subject.name);
        let cells = honest.advice_cells();
        let values: Vec<Fr> = (0..cells).map(|o| honest.value(o)).collect();
        drop(honest);
        // A draw that changes nothing (a value nudged onto itself) is skipped, not tried.
        let unchanged = format!("{:?}", subject.witness);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::thread::scope(|scope| {
            for t in 0..threads {
                let (tally, values, outputs, unchanged) = (&tally, &values, &outputs, &unchanged);
                scope.spawn(move || {
                    for index in (t..draws).step_by(threads) {
                        let drawn = match draw(subject, seed, index, values) {
                            Draw::Edit(family, Some(f))
                                if format!("{:?}", f.witness) == *unchanged =>
                            {
                                Draw::Edit(family, None)
                            }
                            Draw::Cell { offset, value } if values[offset] == value => {
                                let mut t = tally.lock().expect("no panics while holding");
                                t.families.entry("Cell".into()).or_default().skipped += 1;
                                continue;
                            }
                            d => d,
                        };
                        let (family, what, outcome) = match drawn {
                            Draw::Edit(family, None) => {
                                let mut t = tally.lock().expect("no panics while holding");
                                let name = format!("{family:?}");
                                t.families.entry(name).or_default().skipped += 1;
                                continue;
                            }
                            Draw::Edit(family, Some(f)) => (
                                format!("{family:?}"),
                                f.what,
                                try_witness(&subject.before, &f.witness, shape, outputs),
                            ),
                            Draw::Cell { offset, value } => (
                                "Cell".to_string(),
                                format!(
                                    "cell {offset}{} := {value:?}",
                                    if is_zero_inverse(values, offset) {
                                        " (an is_zero inverse at input 0)"
                                    } else {
                                        ""
                                    }
                                ),
                                try_cell(
                                    &subject.before,
                                    &subject.witness,
                                    shape,
                                    outputs,
                                    offset,
                                    value,
                                ),
                            ),
                        };
                        let mut t = tally.lock().expect("no panics while holding");
                        let label = match &outcome {
                            Outcome::Same => Some("same"),
                            Outcome::Valid => Some("valid"),
                            Outcome::RefusedOnL1(why) => Some(*why),
                            _ => None,
                        };
                        if let Some(label) = label {
                            let kind = format!("{label}: {}", elide_numbers(&what));
                            *t.accepted.entry(kind).or_default() += 1;
                        }
                        let c = t.families.entry(family).or_default();
                        c.tried += 1;
                        match outcome {
                            Outcome::Rejected(_) => c.rejected += 1,
                            Outcome::Same => c.same += 1,
                            Outcome::Valid => c.valid += 1,
                            Outcome::RefusedOnL1(_) => c.refused += 1,
                            Outcome::Unbuildable(_) => c.unbuildable += 1,
                            Outcome::Forgery(why) => {
                                c.forgeries += 1;
                                t.findings.push(Finding {
                                    subject: subject.name.clone(),
                                    seed,
                                    index,
                                    what,
                                    why,
                                });
                            }
                        }
                    }
                });
            }
        });
    }
    tally.into_inner().expect("no panics while holding")
}

/// `what` with every run of digits (and hex or debug field values) replaced by `#`, so that
/// edits of one kind group together.
fn elide_numbers(what: &str) -> String {
    let mut out = String::with_capacity(what.len());
    let mut in_number = false;
    for c in what.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else if in_number && (c.is_ascii_hexdigit() || c == 'x') {
            // 0x… values stay one number.
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

/// Whether the cell at `offset` looks like the inverse witness of halo2-base's `is_zero` at a
/// zero input (`[.., x = 0, inv = 1, ..]`): any value there satisfies the gate and leaves the
/// output unchanged, so its mutations are free.
fn is_zero_inverse(values: &[Fr], offset: usize) -> bool {
    offset > 0 && values[offset - 1] == Fr::zero() && values[offset] == Fr::one()
}
