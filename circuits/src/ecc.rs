//! Grumpkin point arithmetic in circuit (PROTOCOL.md §6.1): `y^2 = x^3 - 17` over BN254 `Fr`, so
//! coordinates are native cells and every formula is exact field arithmetic on halo2-base's
//! basic gate (`a + b·c = d`), laid out by hand so consecutive gates share cells.
//!
//! **Soundness model.** Points are affine and never the identity. Every point that enters
//! ([`EccChip::load_point`]) is constrained on the curve, which also excludes `(0, 0)`, the
//! identity's encoding (`0 ≠ -17`). From there each operation is *exact*:
//!
//! * [`EccChip::add`] witnesses `1/(x_q - x_p)` and constrains it, so `x_p ≠ x_q`: `P ≠ ±Q`, the
//!   chord slope is unique and the sum is `P + Q` on the curve, never the identity;
//! * [`EccChip::double`] constrains the tangent slope by `2y·λ = 3x^2`; Grumpkin has prime order,
//!   so no on-curve point has `y = 0` and `λ` is unique.
//!
//! A prover who hits an exceptional case (`P = ±Q`) cannot satisfy the circuit; that costs
//! completeness only, and the scalar multiplications of `schnorr` start from an offset point
//! with unknown discrete logarithm so that honest inputs hit one with negligible probability.

use halo2_base::gates::GateInstructions;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::grumpkin::G1Affine;
use halo2_base::QuantumCell;
use halo2_base::QuantumCell::{Constant, Existing, Witness};
use halo2_base::{AssignedValue, Context};

use crate::stats::{measure, Component};

/// Grumpkin's `b`: the curve is `y^2 = x^3 + B`.
pub fn curve_b() -> Fr {
    -Fr::from(17)
}

/// An affine Grumpkin point in circuit. Holds only points constrained on the curve (hence
/// never the identity), by [`EccChip::load_point`] or as the output of an exact operation.
#[derive(Clone, Copy, Debug)]
pub struct AssignedPoint {
    /// Affine x-coordinate.
    pub x: AssignedValue<Fr>,
    /// Affine y-coordinate.
    pub y: AssignedValue<Fr>,
}

/// A point table read by two bits: entry `j = b0 + 2·b1` of four, each coordinate written as
/// `c0 + b0·c1 + b1·c2 + b0·b1·c3` (its multilinear form on the bits).
#[derive(Clone, Copy, Debug)]
pub struct Table4 {
    /// Coefficients `[c0, c1, c2, c3]` of the x-coordinate (constants or existing cells).
    pub x: [QuantumCell<Fr>; 4],
    /// Coefficients of the y-coordinate.
    pub y: [QuantumCell<Fr>; 4],
}

/// Coefficients of the multilinear form through four values.
fn multilinear(v: [Fr; 4]) -> [Fr; 4] {
    [v[0], v[1] - v[0], v[2] - v[0], v[3] - v[2] - v[1] + v[0]]
}

impl Table4 {
    /// The constant table of four points (fixed cells). Precondition: none is the identity.
    pub fn constant(points: [G1Affine; 4]) -> Self {
        Self {
            x: multilinear(points.map(|p| p.x)).map(Constant),
            y: multilinear(points.map(|p| p.y)).map(Constant),
        }
    }
}

/// Grumpkin point operations on halo2-base's basic gate (module docs for the soundness model).
#[derive(Clone, Copy, Debug)]
pub struct EccChip<'a, G: GateInstructions<Fr>> {
    gate: &'a G,
}

impl<'a, G: GateInstructions<Fr>> EccChip<'a, G> {
    /// A chip over `gate`.
    pub fn new(gate: &'a G) -> Self {
        Self { gate }
    }

    /// Constrains `y^2 = x^3 - 17` (12 cells). `(0, 0)` fails it, so the identity never passes.
    pub fn assert_on_curve(
        &self,
        ctx: &mut Context<Fr>,
        x: AssignedValue<Fr>,
        y: AssignedValue<Fr>,
    ) {
        measure(Component::Signatures, ctx, |ctx| {
            let xv = *x.value();
            let xx = xv * xv;
            let yy = *y.value() * *y.value();
            // x·x = xx; B + xx·x = t; y·y = t.
            ctx.assign_region(
                [Constant(Fr::zero()), Existing(x), Existing(x), Witness(xx)],
                [0],
            );
            let xx = ctx.get(-1);
            ctx.assign_region(
                [
                    Constant(curve_b()),
                    Existing(xx),
                    Existing(x),
                    Witness(xx.value() * xv + curve_b()),
                ],
                [0],
            );
            let t = ctx.get(-1);
            ctx.assign_region(
                [Constant(Fr::zero()), Existing(y), Existing(y), Witness(yy)],
                [0],
            );
            let yy = ctx.get(-1);
            ctx.constrain_equal(&t, &yy);
        })
    }

    /// Loads `(x, y)` as witnesses and constrains them on the curve.
    pub fn load_point(&self, ctx: &mut Context<Fr>, x: Fr, y: Fr) -> AssignedPoint {
        let x = ctx.load_witness(x);
        let y = ctx.load_witness(y);
        self.assert_on_curve(ctx, x, y);
        AssignedPoint { x, y }
    }

    /// Loads a constant point (fixed cells). Precondition: `p` is not the identity.
    pub fn load_constant(&self, ctx: &mut Context<Fr>, p: &G1Affine) -> AssignedPoint {
        AssignedPoint {
            x: ctx.load_constant(p.x),
            y: ctx.load_constant(p.y),
        }
    }

    /// Finishes an addition or doubling from its slope `λ`: `x_r = λ^2 - x_p - x_q` and
    /// `y_r = λ·(x_p - x_r) - y_p` (`q = p` for a doubling). 17 cells.
    fn finish(
        &self,
        ctx: &mut Context<Fr>,
        lambda: AssignedValue<Fr>,
        p: &AssignedPoint,
        xq: AssignedValue<Fr>,
    ) -> AssignedPoint {
        let l = *lambda.value();
        let (xp, yp) = (*p.x.value(), *p.y.value());
        let l2 = l * l;
        let t = l2 - xp;
        let xr = t - xq.value();
        let f = xr - xp;
        let yr = l * (xp - xr) - yp;
        // 0 + λ·λ = l2; l2 - x_p = t; t - x_q = x_r; x_r - x_p = f.
        ctx.assign_region(
            [
                Constant(Fr::zero()),
                Existing(lambda),
                Existing(lambda),
                Witness(l2),
                Constant(-Fr::one()),
                Existing(p.x),
                Witness(t),
                Constant(-Fr::one()),
                Existing(xq),
                Witness(xr),
                Constant(-Fr::one()),
                Existing(p.x),
                Witness(f),
            ],
            [0, 3, 6, 9],
        );
        let xr = ctx.get(-4);
        let f = ctx.get(-1);
        // y_r + 1·y_p = u; u + λ·f = 0, i.e. y_r + y_p = λ·(x_p - x_r).
        ctx.assign_region(
            [
                Witness(yr),
                Constant(Fr::one()),
                Existing(p.y),
                Witness(yr + yp),
                Existing(lambda),
                Existing(f),
                Constant(Fr::zero()),
            ],
            [0, 3],
        );
        let yr = ctx.get(-7);
        AssignedPoint { x: xr, y: yr }
    }

    /// `p + q`, constraining `x_p ≠ x_q` (so `p ≠ ±q`; an honest prover never meets it with the
    /// offsets of `schnorr`). 32 cells.
    pub fn add(
        &self,
        ctx: &mut Context<Fr>,
        p: &AssignedPoint,
        q: &AssignedPoint,
    ) -> AssignedPoint {
        measure(Component::Signatures, ctx, |ctx| {
            let dx = *q.x.value() - p.x.value();
            let dy = *q.y.value() - p.y.value();
            let inv = Option::<Fr>::from(dx.invert()).unwrap_or(Fr::zero());
            // x_p + dx·1 = x_q; 0 + dx·inv = 1; y_p + λ·dx = y_q.
            ctx.assign_region(
                [
                    Existing(p.x),
                    Witness(dx),
                    Constant(Fr::one()),
                    Existing(q.x),
                ],
                [0],
            );
            let dx = ctx.get(-3);
            ctx.assign_region(
                [
                    Constant(Fr::zero()),
                    Existing(dx),
                    Witness(inv),
                    Constant(Fr::one()),
                ],
                [0],
            );
            ctx.assign_region(
                [
                    Existing(p.y),
                    Witness(dy * inv),
                    Existing(dx),
                    Existing(q.y),
                ],
                [0],
            );
            let lambda = ctx.get(-3);
            self.finish(ctx, lambda, p, q.x)
        })
    }

    /// `2·p` (on the curve because `p` is; exact because `y_p ≠ 0`). 31 cells.
    pub fn double(&self, ctx: &mut Context<Fr>, p: &AssignedPoint) -> AssignedPoint {
        measure(Component::Signatures, ctx, |ctx| {
            let (x, y) = (*p.x.value(), *p.y.value());
            let xx = x * x;
            let three_halves = Fr::from(3) * Fr::from(2).invert().unwrap();
            let lambda = Option::<Fr>::from((y + y).invert())
                .map(|i| Fr::from(3) * xx * i)
                .unwrap_or(Fr::zero());
            // 0 + x·x = xx; 0 + λ·y = h; h + (-3/2)·xx = 0, i.e. 2y·λ = 3x^2.
            ctx.assign_region(
                [
                    Constant(Fr::zero()),
                    Existing(p.x),
                    Existing(p.x),
                    Witness(xx),
                ],
                [0],
            );
            let xx_cell = ctx.get(-1);
            ctx.assign_region(
                [
                    Constant(Fr::zero()),
                    Witness(lambda),
                    Existing(p.y),
                    Witness(lambda * y),
                    Constant(-three_halves),
                    Existing(xx_cell),
                    Constant(Fr::zero()),
                ],
                [0, 3],
            );
            let lambda = ctx.get(-6);
            self.finish(ctx, lambda, p, p.x)
        })
    }

    /// `b0·b1` for a two-bit read. Precondition: both are constrained bits.
    pub fn bit_product(
        &self,
        ctx: &mut Context<Fr>,
        b0: AssignedValue<Fr>,
        b1: AssignedValue<Fr>,
    ) -> AssignedValue<Fr> {
        measure(Component::Signatures, ctx, |ctx| self.gate.mul(ctx, b0, b1))
    }

    /// One coordinate `c0 + b0·c1 + b1·c2 + b01·c3` (10 cells).
    fn read_coordinate(
        ctx: &mut Context<Fr>,
        c: [QuantumCell<Fr>; 4],
        bits: [AssignedValue<Fr>; 3],
    ) -> AssignedValue<Fr> {
        let cv: [Fr; 4] = c.map(|q| *q.value());
        let [b0, b1, b01] = bits.map(|b| *b.value());
        let a1 = cv[0] + b0 * cv[1];
        let a2 = a1 + b1 * cv[2];
        let v = a2 + b01 * cv[3];
        ctx.assign_region_last(
            [
                c[0],
                Existing(bits[0]),
                c[1],
                Witness(a1),
                Existing(bits[1]),
                c[2],
                Witness(a2),
                Existing(bits[2]),
                c[3],
                Witness(v),
            ],
            [0, 3, 6],
        )
    }

    /// Entry `b0 + 2·b1` of `table` (20 cells), where `b01 = b0·b1` ([`EccChip::bit_product`]).
    /// Preconditions: `b0`, `b1` are constrained bits; `table` holds on-curve points (a
    /// constant table by construction, a variable one because its entries are [`AssignedPoint`]s).
    pub fn read_table(
        &self,
        ctx: &mut Context<Fr>,
        table: &Table4,
        b0: AssignedValue<Fr>,
        b1: AssignedValue<Fr>,
        b01: AssignedValue<Fr>,
    ) -> AssignedPoint {
        measure(Component::Signatures, ctx, |ctx| AssignedPoint {
            x: Self::read_coordinate(ctx, table.x, [b0, b1, b01]),
            y: Self::read_coordinate(ctx, table.y, [b0, b1, b01]),
        })
    }

    /// The multilinear coefficients of four assigned points, for [`EccChip::read_table`].
    pub fn variable_table(&self, ctx: &mut Context<Fr>, points: [AssignedPoint; 4]) -> Table4 {
        measure(Component::Signatures, ctx, |ctx| {
            let gate = self.gate;
            let mut coefficients = |v: [AssignedValue<Fr>; 4]| {
                let c1 = gate.sub(ctx, v[1], v[0]);
                let c2 = gate.sub(ctx, v[2], v[0]);
                let d = gate.sub(ctx, v[3], v[2]);
                let c3 = gate.sub(ctx, d, c1);
                [v[0], c1, c2, c3].map(Existing)
            };
            Table4 {
                x: coefficients(points.map(|p| p.x)),
                y: coefficients(points.map(|p| p.y)),
            }
        })
    }

    /// Constrains `p == q` coordinate by coordinate.
    pub fn assert_equal(&self, ctx: &mut Context<Fr>, p: &AssignedPoint, q: &AssignedPoint) {
        ctx.constrain_equal(&p.x, &q.x);
        ctx.constrain_equal(&p.y, &q.y);
    }
}
