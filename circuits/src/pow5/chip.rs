//! The Pow5 chip: columns, gates, the native witness of one sponge hash and its layout in a
//! region. See the [module docs](super) for the row layout.

use collar_protocol::poseidon::{self, RATE, R_F, R_P, T};
use halo2_base::halo2_proofs::circuit::{Cell, Region, Value};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::plonk::{
    Advice, Column, ConstraintSystem, Constraints, Expression, Fixed, Selector,
};
use halo2_base::halo2_proofs::poly::Rotation;

/// Advice columns of the chip: the state `s0, s1, s2` and five work columns `w0..w4`.
pub const ADVICE_COLUMNS: usize = 8;
/// Fixed (constant) columns of the chip, `f0..f5`, besides its four selectors.
pub const FIXED_COLUMNS: usize = 6;
/// Partial rounds laid out in one row.
pub const PARTIAL_ROUNDS_PER_ROW: usize = 3;
/// Rows of partial rounds in one permutation (`R_P / 3`; 57 partial rounds leave no remainder).
pub const PARTIAL_ROWS: usize = R_P / PARTIAL_ROUNDS_PER_ROW;
/// Rows one permutation takes: one per full round (the first also absorbs) and one per three
/// partial rounds. The state after the last round lands in the first row of the next
/// permutation of the same hash; the last permutation of a hash writes only the output.
pub const ROWS_PER_PERMUTATION: usize = R_F + PARTIAL_ROWS;
/// Advice cells one permutation takes.
pub const CELLS_PER_PERMUTATION: usize = ROWS_PER_PERMUTATION * ADVICE_COLUMNS;

const _: () = assert!(
    R_P.is_multiple_of(PARTIAL_ROUNDS_PER_ROW),
    "no leftover partial round"
);
const _: () = assert!(
    T == 3 && RATE == 2,
    "the chip is written for width 3, rate 2"
);

/// Name of the gate on the first row of every permutation: the sponge absorption (the initial
/// state for a hash's first permutation, the two rate inputs or their padding) and the first
/// full round.
pub const GATE_ABSORB: &str = "poseidon absorb";
/// Name of the gate of the other full rounds (the state of the next row is the round's output).
pub const GATE_FULL_ROUND: &str = "poseidon full round";
/// Name of the gate of three partial rounds in one row.
pub const GATE_PARTIAL_ROUNDS: &str = "poseidon partial rounds";
/// Name of the gate of the last full round of a hash's last permutation: it constrains the hash
/// output (`state[1]` after the round) into `w0` of the same row.
pub const GATE_FINAL_ROUND: &str = "poseidon final round";

/// What a laid-out hash computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashKind {
    /// The sponge `collar_protocol::poseidon::hash` of any number of inputs.
    Sponge,
    /// The Merkle node compression `collar_protocol::poseidon::hash2` of exactly two inputs: one
    /// permutation from the capacity `2·2^64`.
    Node,
}

impl HashKind {
    /// Permutations a hash of this kind takes for `len` inputs.
    ///
    /// # Panics
    /// For [`HashKind::Node`] unless `len == 2`.
    pub fn permutations(self, len: usize) -> usize {
        match self {
            HashKind::Sponge => poseidon::permutations_for(len),
            HashKind::Node => {
                assert_eq!(len, 2, "a node hash has two inputs");
                poseidon::NODE_PERMUTATIONS
            }
        }
    }

    /// The native hash of this kind over `inputs` (`collar_protocol::poseidon::hash` or
    /// `hash2`).
    ///
    /// # Panics
    /// For [`HashKind::Node`] unless `inputs.len() == 2`.
    pub fn native(self, inputs: &[Fr]) -> Fr {
        match (self, inputs) {
            (HashKind::Sponge, _) => poseidon::hash(inputs),
            (HashKind::Node, [l, r]) => poseidon::hash2(*l, *r),
            (HashKind::Node, _) => panic!("a node hash has two inputs, not {}", inputs.len()),
        }
    }

    /// The capacity element of the hash's first permutation (the value of `f3` on its absorb
    /// row).
    pub fn capacity(self) -> Fr {
        match self {
            HashKind::Sponge => poseidon::initial_state()[0],
            HashKind::Node => poseidon::node_capacity(),
        }
    }
}

/// The gate that constrains a row of a permutation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    /// Row 0 of every permutation ([`GATE_ABSORB`]).
    Absorb,
    /// Full rounds 2–4 and 5–8 ([`GATE_FULL_ROUND`]), except the last round of a hash.
    FullRound,
    /// Three partial rounds ([`GATE_PARTIAL_ROUNDS`]).
    PartialRounds,
    /// The last full round of the last permutation of a hash ([`GATE_FINAL_ROUND`]).
    FinalRound,
}

/// The kind of row `row` (`< ROWS_PER_PERMUTATION`) of a permutation; `last` says whether the
/// permutation is the last of its hash.
///
/// # Panics
/// If `row >= ROWS_PER_PERMUTATION`.
pub fn row_kind(row: usize, last: bool) -> RowKind {
    let half = R_F / 2;
    match row {
        0 => RowKind::Absorb,
        r if r < half => RowKind::FullRound,
        r if r < half + PARTIAL_ROWS => RowKind::PartialRounds,
        r if r + 1 < ROWS_PER_PERMUTATION => RowKind::FullRound,
        r if r + 1 == ROWS_PER_PERMUTATION && last => RowKind::FinalRound,
        r if r + 1 == ROWS_PER_PERMUTATION => RowKind::FullRound,
        r => panic!("row {r} is outside a permutation ({ROWS_PER_PERMUTATION} rows)"),
    }
}

impl RowKind {
    /// The advice columns (`0..8`: `s0, s1, s2, w0..w4`) a row of this kind uses; the others
    /// hold 0 and no gate reads them (a full round leaves `w0, w1` free, the final round `w1`).
    pub fn used_columns(self) -> &'static [usize] {
        match self {
            RowKind::Absorb | RowKind::PartialRounds => &[0, 1, 2, 3, 4, 5, 6, 7],
            RowKind::FullRound => &[0, 1, 2, 5, 6, 7],
            RowKind::FinalRound => &[0, 1, 2, 3, 5, 6, 7],
        }
    }
}

/// Column indices (into [`Pow5Config::advice`]) with a role in the sponge.
pub mod columns {
    /// `w0`: the first absorbed element on an absorb row, the hash output on a final row.
    pub const INPUT_0: usize = 3;
    /// `w1`: the second absorbed element on an absorb row.
    pub const INPUT_1: usize = 4;
    /// `w0` on a final row.
    pub const OUTPUT: usize = 3;
    /// The first of the three squares `w2..w4` of a full-round row.
    pub const SQUARES: usize = 5;
}

/// The chip's columns and selectors. Built by [`Pow5Chip::configure`]; it never depends on a
/// witness.
#[derive(Clone, Debug)]
pub struct Pow5Config {
    /// `s0, s1, s2, w0, w1, w2, w3, w4`. `w0` and `w1` have equality enabled (inputs, output).
    pub advice: [Column<Advice>; ADVICE_COLUMNS],
    /// `f0..f5`: round constants `f0..f2` on full-round rows, the folded constants of three
    /// partial rounds on partial rows, and on absorb rows the capacity element `f3` (0 but on a
    /// hash's first permutation) and the padding flags `f4, f5`.
    pub fixed: [Column<Fixed>; FIXED_COLUMNS],
    /// Enables [`GATE_ABSORB`].
    pub q_absorb: Selector,
    /// Enables [`GATE_FULL_ROUND`].
    pub q_full: Selector,
    /// Enables [`GATE_PARTIAL_ROUNDS`].
    pub q_partial: Selector,
    /// Enables [`GATE_FINAL_ROUND`].
    pub q_final: Selector,
}

/// An affine form `Σ coeffs[v]·var[v] + constant` over the variables of a partial-round row
/// (`s1, s2` and the three S-box outputs `p1, p2, p3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Affine {
    coeffs: [Fr; 5],
    constant: Fr,
}

const VAR_S1: usize = 0;
const VAR_S2: usize = 1;
const VAR_P1: usize = 2;

impl Affine {
    const ZERO: Affine = Affine {
        coeffs: [Fr::zero(); 5],
        constant: Fr::zero(),
    };

    fn var(v: usize) -> Self {
        let mut a = Self::ZERO;
        a.coeffs[v] = Fr::one();
        a
    }

    fn add_constant(mut self, c: Fr) -> Self {
        self.constant += c;
        self
    }

    fn scaled_sum(terms: [(Fr, Affine); T]) -> Self {
        let mut out = Self::ZERO;
        for (k, a) in terms {
            for (o, c) in out.coeffs.iter_mut().zip(a.coeffs) {
                *o += k * c;
            }
            out.constant += k * a.constant;
        }
        out
    }

    fn evaluate(&self, vars: &[Fr; 5]) -> Fr {
        self.coeffs
            .iter()
            .zip(vars)
            .fold(self.constant, |acc, (c, v)| acc + c * v)
    }

    fn expression(&self, vars: &[Expression<Fr>; 5], constant: Expression<Fr>) -> Expression<Fr> {
        self.coeffs
            .iter()
            .zip(vars)
            .filter(|(c, _)| **c != Fr::zero())
            .fold(constant, |acc, (c, v)| acc + v.clone() * *c)
    }
}

/// Three partial rounds as affine forms: the S-box inputs of rounds two and three and the
/// output state, over `s1, s2, p1, p2, p3`. The round-one S-box input is `s0 + rc[0][0]`.
#[derive(Clone, Copy, Debug)]
struct PartialForms {
    sbox_in: [Affine; 2],
    out: [Affine; T],
}

fn mix(state: [Affine; T]) -> [Affine; T] {
    let m = poseidon::mds();
    std::array::from_fn(|i| {
        Affine::scaled_sum([
            (m[i][0], state[0]),
            (m[i][1], state[1]),
            (m[i][2], state[2]),
        ])
    })
}

fn partial_forms(rc: &[[Fr; T]]) -> PartialForms {
    // state[0] before round one is `s0`, which only enters through `p1`.
    let mut state = [Affine::ZERO, Affine::var(VAR_S1), Affine::var(VAR_S2)];
    let mut sbox_in = [Affine::ZERO; 2];
    for (r, k) in rc.iter().enumerate().take(PARTIAL_ROUNDS_PER_ROW) {
        for (s, c) in state.iter_mut().zip(k) {
            *s = s.add_constant(*c);
        }
        if r > 0 {
            sbox_in[r - 1] = state[0];
        }
        state[0] = Affine::var(VAR_P1 + r);
        state = mix(state);
    }
    PartialForms {
        sbox_in,
        out: state,
    }
}

/// The Pow5 chip: a width-3 Poseidon permutation with sponge absorption, for the parameters of
/// [`collar_protocol::poseidon`].
#[derive(Clone, Debug)]
pub struct Pow5Chip {
    config: Pow5Config,
}

/// The witness of one sponge hash: every row of its permutations, the fixed values of those rows
/// and where its inputs and output sit. Built natively by [`PoseidonInstructions::witness`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashWitness {
    /// Advice values, one `[s0, s1, s2, w0..w4]` per row.
    pub advice: Vec<[Fr; ADVICE_COLUMNS]>,
    /// Fixed values `f0..f5`, one per row.
    pub fixed: Vec<[Fr; FIXED_COLUMNS]>,
    /// The gate of each row.
    pub kinds: Vec<RowKind>,
    /// `(row, column)` of each input, in input order.
    pub inputs: Vec<(usize, usize)>,
    /// `(row, column)` of the output.
    pub output: (usize, usize),
}

impl HashWitness {
    /// An empty witness with room for `perms` permutations, to be filled by the chip.
    fn for_permutations(perms: usize) -> Self {
        let rows = perms * ROWS_PER_PERMUTATION;
        Self {
            advice: Vec::with_capacity(rows),
            fixed: Vec::with_capacity(rows),
            kinds: Vec::with_capacity(rows),
            inputs: Vec::new(),
            output: (0, 0),
        }
    }

    /// Rows the hash takes (`ROWS_PER_PERMUTATION` per permutation).
    pub fn rows(&self) -> usize {
        self.advice.len()
    }

    /// The claimed output value.
    pub fn output_value(&self) -> Fr {
        self.advice[self.output.0][self.output.1]
    }
}

/// The physical cells of one laid-out hash.
#[derive(Clone, Debug)]
pub struct AssignedHash {
    /// The cell of each input, in input order.
    pub inputs: Vec<Cell>,
    /// The output cell.
    pub output: Cell,
}

/// What a Poseidon chip offers a gadget: the native witness of a sponge hash and its layout in a
/// region. The gadget (see [`super::Pow5Hasher`]) decides where hashes go and ties their cells to
/// the rest of the circuit.
pub trait PoseidonInstructions {
    /// The witness of a hash of `kind` over `inputs` (a sponge hash of any length, including 0,
    /// or a Merkle node of two inputs); its output equals [`HashKind::native`].
    ///
    /// # Panics
    /// For [`HashKind::Node`] unless `inputs.len() == 2`.
    fn witness(&self, kind: HashKind, inputs: &[Fr]) -> HashWitness;

    /// Assigns `witness` at rows `offset..offset + witness.rows()` of `region` and enables its
    /// gates; returns its input and output cells (in equality-enabled columns).
    ///
    /// Preconditions: those rows of the chip's columns are otherwise unused, and lie within the
    /// circuit's usable rows. Nothing here constrains the input and output cells to anything:
    /// the caller must (copy constraints), or the hash is unconstrained.
    fn assign(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        witness: &HashWitness,
    ) -> AssignedHash;
}

impl Pow5Chip {
    /// Wraps a configuration.
    pub fn construct(config: Pow5Config) -> Self {
        Self { config }
    }

    /// The configuration.
    pub fn config(&self) -> &Pow5Config {
        &self.config
    }

    /// Allocates the chip's columns (8 advice, 6 fixed) and configures it on them.
    pub fn configure_new_columns(meta: &mut ConstraintSystem<Fr>) -> Pow5Config {
        let advice = std::array::from_fn(|_| meta.advice_column());
        let fixed = std::array::from_fn(|_| meta.fixed_column());
        Self::configure(meta, advice, fixed)
    }

    /// Creates the chip's four gates on the given columns, enables equality on `advice[3]` and
    /// `advice[4]` (inputs and output), and returns the configuration. Every gate has degree 4
    /// including its selector.
    ///
    /// Precondition: the columns are used by nothing else on the rows the chip assigns (other
    /// chips may use the same columns on other rows).
    pub fn configure(
        meta: &mut ConstraintSystem<Fr>,
        advice: [Column<Advice>; ADVICE_COLUMNS],
        fixed: [Column<Fixed>; FIXED_COLUMNS],
    ) -> Pow5Config {
        meta.enable_equality(advice[columns::INPUT_0]);
        meta.enable_equality(advice[columns::INPUT_1]);
        let config = Pow5Config {
            advice,
            fixed,
            q_absorb: meta.selector(),
            q_full: meta.selector(),
            q_partial: meta.selector(),
            q_final: meta.selector(),
        };
        let m = *poseidon::mds();

        // The S-box layer of a full round over t: squares sq_i = t_i^2 witnessed in w2..w4, then
        // output_i = Σ_j m[i][j]·sq_j^2·t_j (degree 3).
        let full_round = |t: [Expression<Fr>; T], sq: [Expression<Fr>; T]| {
            let squares: Vec<Expression<Fr>> = (0..T)
                .map(|i| sq[i].clone() - t[i].clone() * t[i].clone())
                .collect();
            let sbox: [Expression<Fr>; T] =
                std::array::from_fn(|i| sq[i].clone() * sq[i].clone() * t[i].clone());
            let mixed: [Expression<Fr>; T] = std::array::from_fn(|i| {
                sbox[0].clone() * m[i][0] + sbox[1].clone() * m[i][1] + sbox[2].clone() * m[i][2]
            });
            (squares, mixed)
        };

        meta.create_gate(GATE_ABSORB, |vc| {
            let q = vc.query_selector(config.q_absorb);
            let s: [Expression<Fr>; T] =
                std::array::from_fn(|i| vc.query_advice(advice[i], Rotation::cur()));
            let next: [Expression<Fr>; T] =
                std::array::from_fn(|i| vc.query_advice(advice[i], Rotation::next()));
            let x = vc.query_advice(advice[columns::INPUT_0], Rotation::cur());
            let y = vc.query_advice(advice[columns::INPUT_1], Rotation::cur());
            let sq: [Expression<Fr>; T] = std::array::from_fn(|i| {
                vc.query_advice(advice[columns::SQUARES + i], Rotation::cur())
            });
            let f: [Expression<Fr>; FIXED_COLUMNS] =
                std::array::from_fn(|i| vc.query_fixed(fixed[i], Rotation::cur()));
            let t = [
                s[0].clone() + f[0].clone(),
                s[1].clone() + x.clone() + f[1].clone(),
                s[2].clone() + y.clone() + f[2].clone(),
            ];
            let (squares, mixed) = full_round(t, sq);
            let mut constraints = squares;
            constraints.extend((0..T).map(|i| next[i].clone() - mixed[i].clone()));
            // f3 != 0: the first permutation of a hash starts from the state (f3, 0, 0), f3 being
            // the hash's capacity element (never 0).
            let init = f[3].clone();
            constraints.push(init.clone() * (s[0].clone() - init.clone()));
            constraints.push(init.clone() * s[1].clone());
            constraints.push(init * s[2].clone());
            // f4 = 1: x is the padding 1. f5 = 1: y is padding, 1 after an input, 0 after a
            // padding x (so y = 1 - f4).
            let one = Expression::Constant(Fr::one());
            constraints.push(f[4].clone() * (x - one.clone()));
            constraints.push(f[5].clone() * (y - one + f[4].clone()));
            Constraints::with_selector(q, constraints)
        });

        for (name, selector, final_round) in [
            (GATE_FULL_ROUND, config.q_full, false),
            (GATE_FINAL_ROUND, config.q_final, true),
        ] {
            meta.create_gate(name, |vc| {
                let q = vc.query_selector(selector);
                let s: [Expression<Fr>; T] =
                    std::array::from_fn(|i| vc.query_advice(advice[i], Rotation::cur()));
                let sq: [Expression<Fr>; T] = std::array::from_fn(|i| {
                    vc.query_advice(advice[columns::SQUARES + i], Rotation::cur())
                });
                let t: [Expression<Fr>; T] = std::array::from_fn(|i| {
                    s[i].clone() + vc.query_fixed(fixed[i], Rotation::cur())
                });
                let (squares, mixed) = full_round(t, sq);
                let mut constraints = squares;
                if final_round {
                    let out = vc.query_advice(advice[columns::OUTPUT], Rotation::cur());
                    constraints.push(out - mixed[1].clone());
                } else {
                    for (i, mixed) in mixed.into_iter().enumerate() {
                        constraints.push(vc.query_advice(advice[i], Rotation::next()) - mixed);
                    }
                }
                Constraints::with_selector(q, constraints)
            });
        }

        // Linear parts of the folded partial rounds do not depend on the round constants; the
        // constants of each row live in f1..f5 (f0 is round one's constant for s0).
        let forms = partial_forms(&[[Fr::zero(); T]; PARTIAL_ROUNDS_PER_ROW]);
        meta.create_gate(GATE_PARTIAL_ROUNDS, |vc| {
            let q = vc.query_selector(config.q_partial);
            let [s0, s1, s2, a, b, c, d, e] =
                std::array::from_fn(|i| vc.query_advice(advice[i], Rotation::cur()));
            let next: [Expression<Fr>; T] =
                std::array::from_fn(|i| vc.query_advice(advice[i], Rotation::next()));
            let f: [Expression<Fr>; FIXED_COLUMNS] =
                std::array::from_fn(|i| vc.query_fixed(fixed[i], Rotation::cur()));
            let u1 = s0 + f[0].clone();
            let p1 = a.clone() * a.clone() * u1.clone();
            let p2 = c.clone() * c.clone() * b.clone();
            let p3 = e.clone() * e.clone() * d.clone();
            let vars = [s1, s2, p1, p2, p3];
            let mut constraints = vec![
                a - u1.clone() * u1,
                b.clone() - forms.sbox_in[0].expression(&vars, f[1].clone()),
                c - b.clone() * b,
                d.clone() - forms.sbox_in[1].expression(&vars, f[2].clone()),
                e - d.clone() * d,
            ];
            for (i, next) in next.into_iter().enumerate() {
                constraints.push(next - forms.out[i].expression(&vars, f[3 + i].clone()));
            }
            Constraints::with_selector(q, constraints)
        });
        config
    }

    /// Appends the rows of one permutation of `state` after absorbing `absorbed` (its rate
    /// part), and returns the state after the permutation.
    fn permutation_rows(
        witness: &mut HashWitness,
        state: [Fr; T],
        absorbed: [Fr; RATE],
        flags: [Fr; 3],
        last: bool,
    ) -> [Fr; T] {
        let rc = poseidon::round_constants();
        let m = poseidon::mds();
        let mix = |v: [Fr; T]| -> [Fr; T] {
            std::array::from_fn(|i| m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2])
        };
        let mut s = state;
        let mut round = 0;
        for row in 0..ROWS_PER_PERMUTATION {
            let kind = row_kind(row, last);
            let mut cells = [Fr::zero(); ADVICE_COLUMNS];
            let mut fixed = [Fr::zero(); FIXED_COLUMNS];
            cells[..T].copy_from_slice(&s);
            if kind == RowKind::PartialRounds {
                let k = &rc[round..round + PARTIAL_ROUNDS_PER_ROW];
                let forms = partial_forms(k);
                fixed[0] = k[0][0];
                fixed[1] = forms.sbox_in[0].constant;
                fixed[2] = forms.sbox_in[1].constant;
                for i in 0..T {
                    fixed[3 + i] = forms.out[i].constant;
                }
                let mut sbox_out = [Fr::zero(); PARTIAL_ROUNDS_PER_ROW];
                for (r, k) in k.iter().enumerate() {
                    for (x, c) in s.iter_mut().zip(k) {
                        *x += c;
                    }
                    let u = s[0];
                    let sq = u.square();
                    // w0 = a (round one's square); w1, w2 = b, c; w3, w4 = d, e.
                    if r == 0 {
                        cells[3] = sq;
                    } else {
                        cells[2 + 2 * r] = u;
                        cells[3 + 2 * r] = sq;
                    }
                    sbox_out[r] = sq.square() * u;
                    s[0] = sbox_out[r];
                    s = mix(s);
                }
                debug_assert_eq!(
                    {
                        let v = [cells[1], cells[2], sbox_out[0], sbox_out[1], sbox_out[2]];
                        forms.out.map(|f| f.evaluate(&v))
                    },
                    s
                );
                round += PARTIAL_ROUNDS_PER_ROW;
            } else {
                let mut t = s;
                if kind == RowKind::Absorb {
                    cells[columns::INPUT_0] = absorbed[0];
                    cells[columns::INPUT_1] = absorbed[1];
                    t[1] += absorbed[0];
                    t[2] += absorbed[1];
                    fixed[3..].copy_from_slice(&flags);
                }
                for i in 0..T {
                    fixed[i] = rc[round][i];
                    t[i] += rc[round][i];
                    cells[columns::SQUARES + i] = t[i].square();
                }
                s = mix(t.map(|x| x.square().square() * x));
                if kind == RowKind::FinalRound {
                    cells[columns::OUTPUT] = s[1];
                }
                round += 1;
            }
            witness.advice.push(cells);
            witness.fixed.push(fixed);
            witness.kinds.push(kind);
        }
        debug_assert_eq!(round, R_F + R_P);
        // The chip's rounds are the native permutation's (pinned here on every witness).
        let mut native = state;
        native[1] += absorbed[0];
        native[2] += absorbed[1];
        poseidon::permute(&mut native);
        assert_eq!(
            native, s,
            "Pow5 witness differs from the native permutation"
        );
        s
    }
}

impl PoseidonInstructions for Pow5Chip {
    fn witness(&self, kind: HashKind, inputs: &[Fr]) -> HashWitness {
        kind_witness(kind, inputs)
    }

    fn assign(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        witness: &HashWitness,
    ) -> AssignedHash {
        let config = &self.config;
        let mut cells: Vec<Vec<Cell>> = Vec::with_capacity(witness.rows());
        for (row, ((advice, fixed), kind)) in witness
            .advice
            .iter()
            .zip(&witness.fixed)
            .zip(&witness.kinds)
            .enumerate()
        {
            let at = offset + row;
            let selector = match kind {
                RowKind::Absorb => config.q_absorb,
                RowKind::FullRound => config.q_full,
                RowKind::PartialRounds => config.q_partial,
                RowKind::FinalRound => config.q_final,
            };
            selector
                .enable(region, at)
                .expect("selectors can be enabled in a region");
            cells.push(
                advice
                    .iter()
                    .zip(config.advice)
                    .map(|(v, col)| region.assign_advice(col, at, Value::known(*v)).cell())
                    .collect(),
            );
            for (v, col) in fixed.iter().zip(config.fixed) {
                region.assign_fixed(col, at, *v);
            }
        }
        AssignedHash {
            inputs: witness.inputs.iter().map(|(r, c)| cells[*r][*c]).collect(),
            output: cells[witness.output.0][witness.output.1],
        }
    }
}

/// The witness of `collar_protocol::poseidon::hash(inputs)` in the chip's layout (see
/// [`PoseidonInstructions::witness`]); it needs no configuration.
///
/// # Panics
/// Never for valid inputs; it asserts that every permutation equals the native one.
pub fn hash_witness(inputs: &[Fr]) -> HashWitness {
    let perms = poseidon::permutations_for(inputs.len());
    let mut witness = HashWitness::for_permutations(perms);
    let mut state = poseidon::initial_state();
    for p in 0..perms {
        let row = witness.advice.len();
        let chunk = &inputs[(p * RATE).min(inputs.len())..((p + 1) * RATE).min(inputs.len())];
        // f3 (capacity element on the first permutation), f4 (x is padding), f5 (y is padding).
        let (absorbed, flags) = match *chunk {
            [x, y] => ([x, y], [0u64, 0, 0]),
            [x] => ([x, Fr::one()], [0, 0, 1]),
            [] => ([Fr::one(), Fr::zero()], [0, 1, 1]),
            _ => unreachable!("chunks have at most RATE elements"),
        };
        let mut flags = flags.map(Fr::from);
        if p == 0 {
            flags[0] = HashKind::Sponge.capacity();
        }
        for i in 0..chunk.len() {
            witness.inputs.push((row, columns::INPUT_0 + i));
        }
        state = Pow5Chip::permutation_rows(&mut witness, state, absorbed, flags, p + 1 == perms);
    }
    witness.output = (witness.advice.len() - 1, columns::OUTPUT);
    debug_assert_eq!(witness.output_value(), poseidon::hash(inputs));
    witness
}

/// The witness of the Merkle node hash `collar_protocol::poseidon::hash2(left, right)` in the
/// chip's layout: one permutation whose absorb row starts from `(2·2^64, 0, 0)` (`f3 = 2·2^64`,
/// no padding flags) and absorbs `left, right`; its final round outputs the hash.
///
/// # Panics
/// Never; it asserts that the permutation equals the native one.
pub fn node_hash_witness(left: Fr, right: Fr) -> HashWitness {
    let mut witness = HashWitness::for_permutations(poseidon::NODE_PERMUTATIONS);
    witness.inputs = vec![(0, columns::INPUT_0), (0, columns::INPUT_1)];
    witness.output = (ROWS_PER_PERMUTATION - 1, columns::OUTPUT);
    let capacity = HashKind::Node.capacity();
    Pow5Chip::permutation_rows(
        &mut witness,
        [capacity, Fr::zero(), Fr::zero()],
        [left, right],
        [capacity, Fr::zero(), Fr::zero()],
        true,
    );
    debug_assert_eq!(witness.output_value(), poseidon::hash2(left, right));
    witness
}

/// The witness of a hash of `kind` over `inputs` ([`hash_witness`] or [`node_hash_witness`]).
///
/// # Panics
/// For [`HashKind::Node`] unless `inputs.len() == 2`.
pub fn kind_witness(kind: HashKind, inputs: &[Fr]) -> HashWitness {
    match (kind, inputs) {
        (HashKind::Sponge, _) => hash_witness(inputs),
        (HashKind::Node, [l, r]) => node_hash_witness(*l, *r),
        (HashKind::Node, _) => panic!("a node hash has two inputs, not {}", inputs.len()),
    }
}
