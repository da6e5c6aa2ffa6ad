//! A dedicated Grumpkin chip for the Schnorr equation's two-scalar multiplication (PROTOCOL.md
//! §6.3): one joint double-and-add step per scalar bit, two rows of 8 advice columns a step.
//!
//! # What it computes
//!
//! For a key `PK`, a challenge `e` and a response `s` (each below `2^254`, given by their
//! [`SCALAR_BITS`] bits), the chip outputs
//!
//! ```text
//! acc = (3·2^254 − 1)·A + s·G − e·PK        (see result_offset)
//! ```
//!
//! where `G` is Grumpkin's generator and `A` the offset point of unknown discrete logarithm
//! ([`crate::schnorr::offset_point`]). It starts from `acc = 2A` and, from the top bit down,
//! steps `acc ← 2·acc + T[e_i, s_i]` over the four-point table
//! `T[b, c] = A − b·PK + c·G`: `T[0, 0] = A` and `T[0, 1] = A + G` are constants of the gates,
//! `T[1, 0] = A − PK` is an input and `T[1, 1] = T[1, 0] + G` is constrained by the chip; both
//! are carried down every step. A signature is valid exactly when the output equals
//! `R + (3·2^254 − 1)·A`, which the caller constrains.
//!
//! # Layout
//!
//! Step `j` (bit `253 − j`) takes rows `2j` ("row a") and `2j + 1` ("row b"); the output and the
//! recomposed scalars sit in step 254's rows, and one last row ("row c") holds the input
//! `T[1, 0]`: [`ROWS`] = 511 rows in all. On step 254, `λ1` and `inv` hold the chord from
//! `T[1, 0]` to `G` instead (the table-entry gate):
//!
//! | row | `c0` | `c1` | `c2` | `c3` | `c4` | `c5` | `c6` | `c7` |
//! |---|---|---|---|---|---|---|---|---|
//! | a | `b = e_i` | `c = s_i` | `x_T` | `x_acc` | `y_acc` | `y_T` | `λ1` | `λ2` |
//! | b | `x_T10` | `y_T10` | `inv` | `z_e` | `z_s` | `x_T11` | `y_T11` | – |
//! | c (last) | – | – | – | `x_T10` | `y_T10` | – | – | – |
//!
//! `z_e`, `z_s` are the integers of the bits above step `j` (0 at step 0); the caller reads the
//! high halves (bits 128 and up) at step 126 and the whole scalars at step 254. Every cell the
//! caller ties (`z_e`, `z_s`, the output, the input `T[1, 0]`) is in `c3` or `c4`, the two
//! columns the Pow5 chip already has equality on, so the chip adds no permutation column.
//!
//! # Gates (every one degree ≤ 4 including its selector)
//!
//! - [`GATE_START`] (row 0): `acc = 2A`, `z_e = z_s = 0`;
//! - [`GATE_BITS`] (each step): `b`, `c` are bits; `z_e' = 2·z_e + b`, `z_s' = 2·z_s + c`;
//! - [`GATE_READ`] (each step): `(x_T, y_T)` is `T[b, c]`, each coordinate the multilinear form of
//!   the four entries in `b, c`;
//! - [`GATE_DOUBLE_ADD`] (each step): the next step's `acc` is `(acc + T) + acc`, by the slopes
//!   `λ1·(x_acc − x_T) = y_acc − y_T` and `(λ1 + λ2)·(x_acc − x_R) = 2·y_acc` with
//!   `x_R = λ1² − x_acc − x_T`, then `x' = λ2² − x_R − x_acc`, `y' = λ2·(x_acc − x') − y_acc`;
//!   and `inv·(x_acc − x_T) = 1`;
//! - [`GATE_CARRY`] (each step): the next step's `T10`, `T11` equal this step's;
//! - [`GATE_TABLE_ENTRY`] (step 254): `T11 = T10 + G` by the chord slope
//!   `λ·(x_G − x_T10) = y_G − y_T10` with `inv·(x_G − x_T10) = 1`, and row c's input equals the
//!   carried `T10`.
//!
//! # Soundness
//!
//! Points are affine; the gates never meet the identity. Given `acc` and `T` on the curve:
//! `inv` makes `x_acc ≠ x_T`, so `λ1` is the chord's slope and `R = acc + T` is on the curve;
//! `(λ1 + λ2)·(x_acc − x_R) = 2·y_acc` has no solution when `x_R = x_acc`, because no Grumpkin
//! point has `y = 0` (its order is prime), so `λ2` is the slope of the chord through `R` and
//! `acc` and the output is `R + acc` on the curve. By induction every `acc` is the exact group
//! value; nothing rests on an argument that exceptional cases are hard to reach. A prover whose
//! honest `acc` meets `x_acc = x_T` cannot satisfy the gate: that costs completeness only, and
//! needs a discrete-logarithm relation between `A`, `G` and `PK` (`A`'s coefficient in `acc` is
//! `3·2^j − 1`, never 1 modulo the group order for `j ≤ 254`).
//!
//! Preconditions the caller must constrain: `T10 = A − PK` for an on-curve `PK`, and the
//! scalars' bits are canonical where that matters (`e` below `p`, `s` below `q`, checked on the
//! recomposed halves).

use std::sync::OnceLock;

use halo2_base::halo2_proofs::circuit::{Cell, Region, Value};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::Field;
use halo2_base::halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_base::halo2_proofs::halo2curves::group::Curve;
use halo2_base::halo2_proofs::halo2curves::grumpkin::{Fr as Scalar, G1Affine, G1};
use halo2_base::halo2_proofs::halo2curves::CurveAffine;
use halo2_base::halo2_proofs::plonk::{
    Advice, Column, ConstraintSystem, Constraints, Expression, Selector, VirtualCells,
};
use halo2_base::halo2_proofs::poly::Rotation;

use crate::schnorr::offset_point;

/// Advice columns of the chip (the Pow5 chip's count, so the two can share columns).
pub const ADVICE_COLUMNS: usize = 8;
/// Bits of each scalar: `p` and `q` are both below `2^254`.
pub const SCALAR_BITS: usize = 254;
/// Rows of one multiplication: two a step, plus the output step and the input row.
pub const ROWS: usize = 2 * (SCALAR_BITS + 1) + 1;
/// Advice cells of one multiplication, counted as the rows it takes times [`ADVICE_COLUMNS`].
pub const CELLS: usize = ROWS * ADVICE_COLUMNS;
/// The step whose `z` cells hold a scalar's high half (its bits 128 and up).
pub const HIGH_HALF_STEP: usize = SCALAR_BITS - 128;

/// Name of the gate fixing the first step's accumulator and running sums.
pub const GATE_START: &str = "msm start";
/// Name of the gate constraining the scalar bits and their running sums.
pub const GATE_BITS: &str = "msm scalar bits";
/// Name of the gate selecting the step's table point by its two bits.
pub const GATE_READ: &str = "msm table read";
/// Name of the gate constraining `acc' = 2·acc + T`.
pub const GATE_DOUBLE_ADD: &str = "msm double and add";
/// Name of the gate carrying the variable table entries to the next step.
pub const GATE_CARRY: &str = "msm table carry";
/// Name of the gate constraining `T[1, 1] = T[1, 0] + G` (on the output step).
pub const GATE_TABLE_ENTRY: &str = "msm table entry";

/// Column indices of the two rows of a step (module docs).
pub mod columns {
    /// Row a: the bit of `e`.
    pub const B: usize = 0;
    /// Row a: the bit of `s`.
    pub const C: usize = 1;
    /// Row a: the selected table point's x.
    pub const X_T: usize = 2;
    /// Row a: the accumulator's x.
    pub const X: usize = 3;
    /// Row a: the accumulator's y.
    pub const Y: usize = 4;
    /// Row a: the selected table point's y.
    pub const Y_T: usize = 5;
    /// Row a: the first chord's slope.
    pub const LAMBDA1: usize = 6;
    /// Row a: the second chord's slope.
    pub const LAMBDA2: usize = 7;
    /// Row b: the running integer of `e`'s bits above this step.
    pub const Z_E: usize = 3;
    /// Row b: the running integer of `s`'s bits above this step.
    pub const Z_S: usize = 4;
    /// Row b: `1 / (x_acc − x_T)`.
    pub const INV: usize = 2;
    /// Row b: `T[1, 0] = A − PK` (x, y), then `T[1, 1] = A − PK + G` (x, y).
    pub const TABLE: [usize; 4] = [0, 1, 5, 6];
    /// Row c: the input `T[1, 0]` (x, y).
    pub const INPUT: [usize; 2] = [3, 4];
    /// The columns with equality enabled (every tied cell is in one of them).
    pub const EQUALITY: [usize; 2] = [X, Y];
}

/// The constant points of the gates: `2A` (start), `T[0, 0] = A`, `T[0, 1] = A + G`, `G`.
#[derive(Clone, Copy, Debug)]
struct Constants {
    start: (Fr, Fr),
    t00: (Fr, Fr),
    t01: (Fr, Fr),
    g: (Fr, Fr),
}

fn xy(p: &G1Affine) -> (Fr, Fr) {
    let c = p
        .coordinates()
        .expect("no constant of the chip is the identity");
    (*c.x(), *c.y())
}

fn constants() -> &'static Constants {
    static C: OnceLock<Constants> = OnceLock::new();
    C.get_or_init(|| {
        let a = G1::from(offset_point());
        let g = G1::generator();
        Constants {
            start: xy(&(a + a).to_affine()),
            t00: xy(&a.to_affine()),
            t01: xy(&(a + g).to_affine()),
            g: xy(&g.to_affine()),
        }
    })
}

/// `(3·2^254 − 1)·A`: the output is this point plus `s·G − e·PK`.
pub fn result_offset() -> G1Affine {
    static P: OnceLock<G1Affine> = OnceLock::new();
    *P.get_or_init(|| {
        let k = Scalar::from(3) * Scalar::from(2).pow_vartime([SCALAR_BITS as u64]) - Scalar::ONE;
        (G1::from(offset_point()) * k).to_affine()
    })
}

/// The chip's columns and selectors, built by [`MsmChip::configure`] without any witness.
#[derive(Clone, Debug)]
pub struct MsmConfig {
    /// `c0..c7`; [`columns::EQUALITY`] have equality enabled.
    pub advice: [Column<Advice>; ADVICE_COLUMNS],
    /// Enables [`GATE_START`] on a multiplication's first row.
    pub q_start: Selector,
    /// Enables the step gates on each step's row a (not on the output step).
    pub q_step: Selector,
    /// Enables [`GATE_TABLE_ENTRY`] on the output step's row a.
    pub q_entry: Selector,
}

/// The native witness of one multiplication: every row's advice values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsmWitness {
    /// [`ROWS`] rows of `[c0..c7]`.
    pub advice: Vec<[Fr; ADVICE_COLUMNS]>,
}

/// The cells of a laid-out multiplication that the caller must tie to the rest of the circuit.
#[derive(Clone, Copy, Debug)]
pub struct AssignedMsm {
    /// `T[1, 0] = A − PK` as `[x, y]` (an input: the caller constrains it).
    pub table: [Cell; 2],
    /// The output accumulator `(x, y)`.
    pub result: [Cell; 2],
    /// `e`'s high half (bits 128 and up) and its whole integer (mod `p`).
    pub e: [Cell; 2],
    /// `s`'s high half and its whole integer (mod `p`).
    pub s: [Cell; 2],
}

/// Errors of the native witness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MsmError {
    /// A scalar has bit 254 or 255 set: it is at least `p` and `q`, so no valid signature has it.
    #[error("scalar does not fit in {SCALAR_BITS} bits")]
    ScalarTooLarge,
    /// The key is the identity (never the case for an on-curve key).
    #[error("the key is the identity")]
    IdentityKey,
    /// An honest step met `x_acc = x_T` or `x_acc = x_R`: a discrete-logarithm relation between
    /// `A`, `G` and the key (negligible for honest keys); the chip cannot prove it.
    #[error("exceptional addition at step {0}")]
    Exceptional(usize),
}

/// The [`SCALAR_BITS`] bits of a little-endian 32-byte integer, least significant first.
///
/// # Errors
/// [`MsmError::ScalarTooLarge`] if bit 254 or 255 is set.
pub fn scalar_bits(le: &[u8; 32]) -> Result<[bool; SCALAR_BITS], MsmError> {
    if le[31] >> 6 != 0 {
        return Err(MsmError::ScalarTooLarge);
    }
    Ok(std::array::from_fn(|i| (le[i / 8] >> (i % 8)) & 1 == 1))
}

/// The chip (configuration only; witnesses are built by [`MsmChip::witness`]).
#[derive(Clone, Debug)]
pub struct MsmChip {
    config: MsmConfig,
}

/// What a multiplication chip offers its gadget: the native witness and its layout.
pub trait MsmInstructions {
    /// The witness of `(3·2^254 − 1)·A + s·G − e·PK` for the bits of `e` and `s` (least
    /// significant first).
    ///
    /// # Errors
    /// [`MsmError::IdentityKey`], or [`MsmError::Exceptional`] (module docs).
    fn witness(
        &self,
        pk: &G1Affine,
        e: &[bool; SCALAR_BITS],
        s: &[bool; SCALAR_BITS],
    ) -> Result<MsmWitness, MsmError>;

    /// Assigns `witness` at rows `offset..offset + ROWS` of `region`, enables its gates and
    /// returns the cells the caller must constrain.
    ///
    /// Preconditions: those rows of the chip's columns are otherwise unused and usable, and the
    /// caller constrains [`AssignedMsm::table`] (else the table is free).
    fn assign(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        witness: &MsmWitness,
    ) -> AssignedMsm;
}

impl MsmChip {
    /// Wraps a configuration.
    pub fn construct(config: MsmConfig) -> Self {
        Self { config }
    }

    /// Allocates 8 advice columns and configures the chip on them.
    pub fn configure_new_columns(meta: &mut ConstraintSystem<Fr>) -> MsmConfig {
        let advice = std::array::from_fn(|_| meta.advice_column());
        Self::configure(meta, advice)
    }

    /// Creates the chip's six gates on `advice`, enables equality on [`columns::EQUALITY`], and
    /// returns the configuration. Gates query rotations 0 to 3.
    ///
    /// Precondition: no other chip uses these columns on the rows this chip assigns.
    pub fn configure(
        meta: &mut ConstraintSystem<Fr>,
        advice: [Column<Advice>; ADVICE_COLUMNS],
    ) -> MsmConfig {
        for column in columns::EQUALITY {
            meta.enable_equality(advice[column]);
        }
        let config = MsmConfig {
            advice,
            q_start: meta.selector(),
            q_step: meta.selector(),
            q_entry: meta.selector(),
        };
        let k = constants();
        let c = |v: Fr| Expression::Constant(v);
        let at = |vc: &mut VirtualCells<'_, Fr>, col: usize, rot: i32| {
            vc.query_advice(advice[col], Rotation(rot))
        };

        meta.create_gate(GATE_START, |vc| {
            let q = vc.query_selector(config.q_start);
            Constraints::with_selector(
                q,
                [
                    ("x", at(vc, columns::X, 0) - c(k.start.0)),
                    ("y", at(vc, columns::Y, 0) - c(k.start.1)),
                    ("z_e", at(vc, columns::Z_E, 1)),
                    ("z_s", at(vc, columns::Z_S, 1)),
                ],
            )
        });

        meta.create_gate(GATE_BITS, |vc| {
            let q = vc.query_selector(config.q_step);
            let b = at(vc, columns::B, 0);
            let s = at(vc, columns::C, 0);
            let bit = |v: Expression<Fr>| v.clone() * (c(Fr::ONE) - v);
            let sum = |z: usize, bit: Expression<Fr>, vc: &mut VirtualCells<'_, Fr>| {
                at(vc, z, 3) - at(vc, z, 1) * Fr::from(2) - bit
            };
            Constraints::with_selector(
                q,
                [
                    ("b bit", bit(b.clone())),
                    ("c bit", bit(s.clone())),
                    ("z_e", sum(columns::Z_E, b, vc)),
                    ("z_s", sum(columns::Z_S, s, vc)),
                ],
            )
        });

        meta.create_gate(GATE_READ, |vc| {
            let q = vc.query_selector(config.q_step);
            let b = at(vc, columns::B, 0);
            let s = at(vc, columns::C, 0);
            let [x10, y10, x11, y11] = columns::TABLE.map(|col| at(vc, col, 1));
            // v00 + b·(v10 − v00) + c·(v01 − v00) + b·c·(v11 − v10 − v01 + v00)
            let read = |v00: Fr, v01: Fr, v10: Expression<Fr>, v11: Expression<Fr>| {
                c(v00)
                    + b.clone() * (v10.clone() - c(v00))
                    + s.clone() * (v01 - v00)
                    + b.clone() * s.clone() * (v11 - v10 - c(v01 - v00))
            };
            Constraints::with_selector(
                q,
                [
                    (
                        "x_T",
                        at(vc, columns::X_T, 0) - read(k.t00.0, k.t01.0, x10, x11),
                    ),
                    (
                        "y_T",
                        at(vc, columns::Y_T, 0) - read(k.t00.1, k.t01.1, y10, y11),
                    ),
                ],
            )
        });

        meta.create_gate(GATE_DOUBLE_ADD, |vc| {
            let q = vc.query_selector(config.q_step);
            let (x, y) = (at(vc, columns::X, 0), at(vc, columns::Y, 0));
            let (xt, yt) = (at(vc, columns::X_T, 0), at(vc, columns::Y_T, 0));
            let (l1, l2) = (at(vc, columns::LAMBDA1, 0), at(vc, columns::LAMBDA2, 0));
            let inv = at(vc, columns::INV, 1);
            let (x_next, y_next) = (at(vc, columns::X, 2), at(vc, columns::Y, 2));
            let x_r = l1.clone() * l1.clone() - x.clone() - xt.clone();
            Constraints::with_selector(
                q,
                [
                    (
                        "first slope",
                        l1.clone() * (x.clone() - xt.clone()) - (y.clone() - yt),
                    ),
                    ("distinct x", inv * (x.clone() - xt) - c(Fr::ONE)),
                    (
                        "second slope",
                        (l1 + l2.clone()) * (x.clone() - x_r.clone()) - y.clone() * Fr::from(2),
                    ),
                    (
                        "x'",
                        x_next.clone() - (l2.clone() * l2.clone() - x_r - x.clone()),
                    ),
                    ("y'", y_next - (l2 * (x - x_next) - y)),
                ],
            )
        });

        meta.create_gate(GATE_CARRY, |vc| {
            let q = vc.query_selector(config.q_step);
            let carried: Vec<_> = columns::TABLE
                .iter()
                .map(|&col| ("table", at(vc, col, 3) - at(vc, col, 1)))
                .collect();
            Constraints::with_selector(q, carried)
        });

        meta.create_gate(GATE_TABLE_ENTRY, |vc| {
            let q = vc.query_selector(config.q_entry);
            let [x10, y10, x11, y11] = columns::TABLE.map(|col| at(vc, col, 1));
            let l = at(vc, columns::LAMBDA1, 0);
            let inv = at(vc, columns::INV, 1);
            let [x_in, y_in] = columns::INPUT.map(|col| at(vc, col, 2));
            let (xg, yg) = (c(k.g.0), c(k.g.1));
            Constraints::with_selector(
                q,
                [
                    (
                        "slope",
                        l.clone() * (xg.clone() - x10.clone()) - (yg - y10.clone()),
                    ),
                    ("distinct x", inv * (xg.clone() - x10.clone()) - c(Fr::ONE)),
                    (
                        "x11",
                        x11.clone() - (l.clone() * l.clone() - x10.clone() - xg),
                    ),
                    ("y11", y11.clone() - (l * (x10.clone() - x11) - y10.clone())),
                    ("input x", x_in - x10),
                    ("input y", y_in - y10),
                ],
            )
        });

        config
    }

    /// The configuration.
    pub fn config(&self) -> &MsmConfig {
        &self.config
    }
}

/// Affine sum of two points with distinct x and the chord's slope, natively; `None` if
/// `x_p = x_q`.
fn chord(p: (Fr, Fr), q: (Fr, Fr)) -> Option<(Fr, (Fr, Fr))> {
    let inv = Option::<Fr>::from((p.0 - q.0).invert())?;
    let l = (p.1 - q.1) * inv;
    let x = l.square() - p.0 - q.0;
    Some((l, (x, l * (p.0 - x) - p.1)))
}

/// The witness of one multiplication ([`MsmInstructions::witness`]); it needs no configuration.
///
/// # Errors
/// As [`MsmInstructions::witness`].
pub fn msm_witness(
    pk: &G1Affine,
    e: &[bool; SCALAR_BITS],
    s: &[bool; SCALAR_BITS],
) -> Result<MsmWitness, MsmError> {
    if bool::from(pk.is_identity()) {
        return Err(MsmError::IdentityKey);
    }
    let k = constants();
    let a = G1::from(offset_point());
    let t10 = (a - G1::from(*pk)).to_affine();
    if bool::from(t10.is_identity()) {
        return Err(MsmError::Exceptional(0));
    }
    let t10 = xy(&t10);
    // T11 = T10 + G by the chord the table-entry gate checks (x_T10 ≠ x_G).
    let (entry_slope, t11) = chord(k.g, t10).ok_or(MsmError::Exceptional(SCALAR_BITS))?;
    let table = [t10.0, t10.1, t11.0, t11.1];
    let mut advice = Vec::with_capacity(ROWS);
    let (mut acc, mut z_e, mut z_s) = (k.start, Fr::ZERO, Fr::ZERO);
    for j in 0..=SCALAR_BITS {
        let mut a_row = [Fr::ZERO; ADVICE_COLUMNS];
        let mut b_row = [Fr::ZERO; ADVICE_COLUMNS];
        a_row[columns::X] = acc.0;
        a_row[columns::Y] = acc.1;
        b_row[columns::Z_E] = z_e;
        b_row[columns::Z_S] = z_s;
        for (col, v) in columns::TABLE.iter().zip(table) {
            b_row[*col] = v;
        }
        if j < SCALAR_BITS {
            let i = SCALAR_BITS - 1 - j;
            let (b, c) = (e[i], s[i]);
            let t = match (b, c) {
                (false, false) => k.t00,
                (false, true) => k.t01,
                (true, false) => t10,
                (true, true) => t11,
            };
            let (l1, r) = chord(acc, t).ok_or(MsmError::Exceptional(j))?;
            let (l2, out) = chord(r, acc).ok_or(MsmError::Exceptional(j))?;
            let inv = (acc.0 - t.0)
                .invert()
                .expect("x_acc ≠ x_T: chord succeeded");
            a_row[columns::B] = Fr::from(u64::from(b));
            a_row[columns::C] = Fr::from(u64::from(c));
            a_row[columns::X_T] = t.0;
            a_row[columns::Y_T] = t.1;
            a_row[columns::LAMBDA1] = l1;
            a_row[columns::LAMBDA2] = l2;
            b_row[columns::INV] = inv;
            acc = out;
            z_e = z_e.double() + a_row[columns::B];
            z_s = z_s.double() + a_row[columns::C];
        } else {
            a_row[columns::LAMBDA1] = entry_slope;
            b_row[columns::INV] = (k.g.0 - t10.0)
                .invert()
                .expect("x_G ≠ x_T10: chord succeeded");
        }
        advice.push(a_row);
        advice.push(b_row);
    }
    let mut c_row = [Fr::ZERO; ADVICE_COLUMNS];
    c_row[columns::INPUT[0]] = t10.0;
    c_row[columns::INPUT[1]] = t10.1;
    advice.push(c_row);
    Ok(MsmWitness { advice })
}

impl MsmWitness {
    /// The output accumulator `(x, y)`.
    pub fn result(&self) -> (Fr, Fr) {
        let row = &self.advice[ROWS - 3];
        (row[columns::X], row[columns::Y])
    }

    /// The output as a point, if it is on the curve (always for a witness of [`msm_witness`]).
    pub fn result_point(&self) -> Option<G1Affine> {
        let (x, y) = self.result();
        Option::from(G1Affine::from_xy(x, y))
    }
}

/// `(row, column)` of the cells of [`AssignedMsm`], relative to the multiplication's first row.
pub mod cells {
    use super::{columns, HIGH_HALF_STEP, ROWS};

    /// `[x10, y10]` on row c.
    pub const TABLE: [(usize, usize); 2] =
        [(ROWS - 1, columns::INPUT[0]), (ROWS - 1, columns::INPUT[1])];
    /// The output `(x, y)` on the output step's row a.
    pub const RESULT: [(usize, usize); 2] = [(ROWS - 3, columns::X), (ROWS - 3, columns::Y)];
    /// `e`'s high half and whole integer.
    pub const E: [(usize, usize); 2] = [
        (2 * HIGH_HALF_STEP + 1, columns::Z_E),
        (ROWS - 2, columns::Z_E),
    ];
    /// `s`'s high half and whole integer.
    pub const S: [(usize, usize); 2] = [
        (2 * HIGH_HALF_STEP + 1, columns::Z_S),
        (ROWS - 2, columns::Z_S),
    ];
}

/// `(row, column)` of every cell of a multiplication that a gate reads, relative to its first
/// row: every cell of steps 0 to 253 but row b's spare column; on the output step the
/// accumulator, running sums, table and the table entry's slope and inverse (its bits, table
/// point and second slope are never read: no step gate is enabled there); and the input row's
/// `T[1, 0]`. The other cells are padding no constraint reads, for mutation sweeps to skip.
pub fn gated_cells() -> Vec<(usize, usize)> {
    let (row_a, row_b) = (|j: usize| 2 * j, |j: usize| 2 * j + 1);
    let mut out = Vec::new();
    for j in 0..SCALAR_BITS {
        out.extend((0..ADVICE_COLUMNS).map(|c| (row_a(j), c)));
        out.extend((0..ADVICE_COLUMNS - 1).map(|c| (row_b(j), c)));
    }
    let last = SCALAR_BITS;
    out.extend([columns::X, columns::Y].map(|c| (row_a(last), c)));
    out.extend([columns::Z_E, columns::Z_S].map(|c| (row_b(last), c)));
    out.extend(columns::TABLE.map(|c| (row_b(last), c)));
    out.extend([(row_a(last), columns::LAMBDA1), (row_b(last), columns::INV)]);
    out.extend(columns::INPUT.map(|c| (ROWS - 1, c)));
    out
}

impl MsmInstructions for MsmChip {
    fn witness(
        &self,
        pk: &G1Affine,
        e: &[bool; SCALAR_BITS],
        s: &[bool; SCALAR_BITS],
    ) -> Result<MsmWitness, MsmError> {
        msm_witness(pk, e, s)
    }

    fn assign(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        witness: &MsmWitness,
    ) -> AssignedMsm {
        let config = &self.config;
        let enable = |s: Selector, region: &mut Region<'_, Fr>, row: usize| {
            s.enable(region, row)
                .expect("selectors can be enabled in a region");
        };
        enable(config.q_start, region, offset);
        enable(config.q_entry, region, offset + ROWS - 3);
        let cells: Vec<Vec<Cell>> = witness
            .advice
            .iter()
            .enumerate()
            .map(|(row, values)| {
                if row % 2 == 0 && row < ROWS - 3 {
                    enable(config.q_step, region, offset + row);
                }
                values
                    .iter()
                    .zip(config.advice)
                    .map(|(v, col)| {
                        region
                            .assign_advice(col, offset + row, Value::known(*v))
                            .cell()
                    })
                    .collect()
            })
            .collect();
        let cell = |(r, c): (usize, usize)| cells[r][c];
        AssignedMsm {
            table: cells::TABLE.map(cell),
            result: cells::RESULT.map(cell),
            e: cells::E.map(cell),
            s: cells::S.map(cell),
        }
    }
}
