//! Range-checked "safe types" (PROTOCOL.md §2.3): every amount, price, size and time exists in
//! circuit code only as a [`Ranged`] or [`Signed`] cell, whose bound is constrained where it is
//! created. Arithmetic on them tracks bit widths so no result can wrap the field; widths are
//! capped at [`MAX_BITS`], far below the 254-bit modulus.

use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::utils::power_of_two;
use halo2_base::QuantumCell::{Constant, Existing};
use halo2_base::{AssignedValue, Context};

use collar_protocol::params::BPS;

/// Largest bit width any safe value may carry: products and sums stay below `2^240 < p`.
pub const MAX_BITS: u32 = 240;

fn pow2(bits: u32) -> Fr {
    power_of_two(bits as usize)
}

/// A cell constrained to `[0, 2^bits)`.
#[derive(Clone, Copy, Debug)]
pub struct Ranged {
    cell: AssignedValue<Fr>,
    bits: u32,
}

impl Ranged {
    /// Constrains `cell < 2^bits` with lookups and wraps it.
    ///
    /// # Panics
    /// If `bits > MAX_BITS` (a circuit-construction error, never a witness one).
    pub fn check(
        ctx: &mut Context<Fr>,
        range: &RangeChip<Fr>,
        cell: AssignedValue<Fr>,
        bits: u32,
    ) -> Self {
        crate::stats::measure(crate::stats::Component::RangeChecks, ctx, |ctx| {
            assert!(bits <= MAX_BITS, "bit width {bits} exceeds MAX_BITS");
            range.range_check(ctx, cell, bits as usize);
            Self { cell, bits }
        })
    }

    /// Loads a witness and constrains it below `2^bits`.
    pub fn load(ctx: &mut Context<Fr>, range: &RangeChip<Fr>, value: Fr, bits: u32) -> Self {
        crate::stats::measure(crate::stats::Component::RangeChecks, ctx, |ctx| {
            let cell = ctx.load_witness(value);
            Self::check(ctx, range, cell, bits)
        })
    }

    /// A constant; its width is its bit length (no lookup needed).
    pub fn constant(ctx: &mut Context<Fr>, value: u128) -> Self {
        let cell = ctx.load_constant(collar_protocol::field::fr_from_u128(value));
        Self {
            cell,
            bits: (128 - value.leading_zeros()).max(1),
        }
    }

    /// Wraps a boolean cell as a 1-bit value. Assumes `cell` is already constrained to
    /// `{0, 1}` (e.g. by `assert_bit` where it was loaded); nothing is added here.
    pub fn from_bit(cell: AssignedValue<Fr>) -> Self {
        Self { cell, bits: 1 }
    }

    /// The underlying cell.
    pub fn cell(&self) -> AssignedValue<Fr> {
        self.cell
    }

    /// The constrained width.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    fn widened(cell: AssignedValue<Fr>, bits: u32) -> Self {
        assert!(bits <= MAX_BITS, "bit width {bits} exceeds MAX_BITS");
        Self { cell, bits }
    }

    /// `self + other`, width `max + 1`.
    pub fn add(
        &self,
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        other: &Ranged,
    ) -> Ranged {
        let c = gate.add(ctx, self.cell, other.cell);
        Self::widened(c, self.bits.max(other.bits) + 1)
    }

    /// `self · other`, width `a + b`.
    pub fn mul(
        &self,
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        other: &Ranged,
    ) -> Ranged {
        let c = gate.mul(ctx, self.cell, other.cell);
        Self::widened(c, self.bits + other.bits)
    }

    /// Selects `a` if `bit == 1` else `b`; assumes `bit` is boolean-constrained.
    pub fn select(
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        a: &Ranged,
        b: &Ranged,
        bit: AssignedValue<Fr>,
    ) -> Ranged {
        let c = gate.select(ctx, a.cell, b.cell, bit);
        Self::widened(c, a.bits.max(b.bits))
    }

    /// `Σ indicator[i]·candidates[i]`: the entry the indicator marks, or 0. Several selects by
    /// one index share its indicator this way (halo2-base's `select_from_idx` rebuilds it per
    /// call); [`crate::table`] reads long lists more cheaply still.
    ///
    /// Assumes `indicator` came from halo2-base's `idx_to_indicator` over `candidates.len()`
    /// entries (boolean cells, at most one 1): then the result is one of the candidates or 0
    /// and carries their widest bound.
    pub fn select_by_indicator(
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        candidates: &[Ranged],
        indicator: &[AssignedValue<Fr>],
    ) -> Ranged {
        assert_eq!(
            candidates.len(),
            indicator.len(),
            "one indicator per candidate"
        );
        let bits = candidates.iter().map(|c| c.bits).max().unwrap_or(1);
        let cell = gate.select_by_indicator(
            ctx,
            candidates.iter().map(|c| c.cell),
            indicator.iter().copied(),
        );
        Self::widened(cell, bits)
    }

    /// Returns the boolean cell `self < other`.
    pub fn is_lt(
        &self,
        ctx: &mut Context<Fr>,
        range: &RangeChip<Fr>,
        other: &Ranged,
    ) -> AssignedValue<Fr> {
        crate::stats::measure(crate::stats::Component::RangeChecks, ctx, |ctx| {
            range.is_less_than(
                ctx,
                self.cell,
                other.cell,
                self.bits.max(other.bits) as usize,
            )
        })
    }

    /// `max(self, other)`.
    pub fn max(&self, ctx: &mut Context<Fr>, range: &RangeChip<Fr>, other: &Ranged) -> Ranged {
        let lt = self.is_lt(ctx, range, other);
        Self::select(ctx, range.gate(), other, self, lt)
    }

    /// `max(self - other, 0)`, width of `self`.
    pub fn saturating_sub(
        &self,
        ctx: &mut Context<Fr>,
        range: &RangeChip<Fr>,
        other: &Ranged,
    ) -> Ranged {
        let lt = self.is_lt(ctx, range, other);
        let diff = range.gate().sub(ctx, self.cell, other.cell);
        let zero = ctx.load_zero();
        let c = range.gate().select(ctx, zero, diff, lt);
        Self::widened(c, self.bits)
    }

    /// `ceil(self · bps / 10_000)` (PROTOCOL.md §5.4); `bps` must be `<= 10_000` (14 bits).
    /// Constrained by `self·bps + 9_999 = 10_000·q + r` with `r < 10_000`; the result is at most
    /// `self`, and its declared width is what the division constrains: `bits + 2`.
    pub fn ceil_bps(&self, ctx: &mut Context<Fr>, range: &RangeChip<Fr>, bps: &Ranged) -> Ranged {
        crate::stats::measure(crate::stats::Component::RangeChecks, ctx, |ctx| {
            assert!(bps.bits <= 14, "bps must be a 14-bit value");
            let gate = range.gate();
            let num = gate.mul_add(ctx, self.cell, bps.cell, Constant(Fr::from(BPS - 1)));
            let num_bits = (self.bits + 15) as usize;
            let (q, _r) = range.div_mod(ctx, num, BPS, num_bits);
            Self::widened(q, self.bits + 2)
        })
    }

    /// The value as a signed quantity of the same width.
    pub fn to_signed(&self) -> Signed {
        Signed {
            cell: self.cell,
            bits: self.bits,
        }
    }
}

/// A signed cell `v` with `|v| < 2^bits`, embedded as `p - |v|` when negative (§2.3) and
/// constrained by `(2^bits - 1) ± v ∈ [0, 2^(bits+1))`.
#[derive(Clone, Copy, Debug)]
pub struct Signed {
    cell: AssignedValue<Fr>,
    bits: u32,
}

impl Signed {
    /// Constrains `|cell| < 2^bits` and wraps it.
    ///
    /// A single check of `v + 2^bits ∈ [0, 2^(bits+1))` would also admit `v = -2^bits`, so both
    /// `(2^bits - 1) + v` and `(2^bits - 1) - v` are range-checked to `bits + 1` bits: together
    /// they pin `-(2^bits - 1) <= v <= 2^bits - 1`.
    pub fn check(
        ctx: &mut Context<Fr>,
        range: &RangeChip<Fr>,
        cell: AssignedValue<Fr>,
        bits: u32,
    ) -> Self {
        crate::stats::measure(crate::stats::Component::RangeChecks, ctx, |ctx| {
            assert!(bits < MAX_BITS, "bit width {bits} exceeds MAX_BITS");
            let max = pow2(bits) - Fr::one();
            let gate = range.gate();
            let above_min = gate.add(ctx, cell, Constant(max));
            range.range_check(ctx, above_min, bits as usize + 1);
            let below_max = gate.sub(ctx, Constant(max), cell);
            range.range_check(ctx, below_max, bits as usize + 1);
            Self { cell, bits }
        })
    }

    /// The underlying cell.
    pub fn cell(&self) -> AssignedValue<Fr> {
        self.cell
    }

    /// The constrained width of `|v|`.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    fn widened(cell: AssignedValue<Fr>, bits: u32) -> Self {
        assert!(bits < MAX_BITS, "bit width {bits} exceeds MAX_BITS");
        Self { cell, bits }
    }

    /// `self + other`, width `max + 1`.
    pub fn add(
        &self,
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        other: &Signed,
    ) -> Signed {
        let c = gate.add(ctx, self.cell, other.cell);
        Self::widened(c, self.bits.max(other.bits) + 1)
    }

    /// `self - other`, width `max + 1`.
    pub fn sub(
        &self,
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        other: &Signed,
    ) -> Signed {
        let c = gate.sub(ctx, self.cell, other.cell);
        Self::widened(c, self.bits.max(other.bits) + 1)
    }

    /// `self · other` for an unsigned `other`, width `a + b`.
    pub fn mul_ranged(
        &self,
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        other: &Ranged,
    ) -> Signed {
        let c = gate.mul(ctx, self.cell, other.cell);
        Self::widened(c, self.bits + other.bits)
    }

    /// Returns the boolean cell `self >= other`, comparing `v + 2^w` for the common width `w`.
    pub fn is_ge(
        &self,
        ctx: &mut Context<Fr>,
        range: &RangeChip<Fr>,
        other: &Signed,
    ) -> AssignedValue<Fr> {
        crate::stats::measure(crate::stats::Component::RangeChecks, ctx, |ctx| {
            let w = self.bits.max(other.bits);
            let gate = range.gate();
            let a = gate.add(ctx, self.cell, Constant(pow2(w)));
            let b = gate.add(ctx, other.cell, Constant(pow2(w)));
            let lt = range.is_less_than(ctx, a, b, w as usize + 1);
            gate.not(ctx, Existing(lt))
        })
    }

    /// Returns the boolean cell `self < 0`.
    pub fn is_negative(&self, ctx: &mut Context<Fr>, range: &RangeChip<Fr>) -> AssignedValue<Fr> {
        crate::stats::measure(crate::stats::Component::RangeChecks, ctx, |ctx| {
            let gate = range.gate();
            let a = gate.add(ctx, self.cell, Constant(pow2(self.bits)));
            range.is_less_than(ctx, a, Constant(pow2(self.bits)), self.bits as usize + 1)
        })
    }
}
