//! Standard option margin in circuit (PROTOCOL.md §5), equal to `collar_protocol::margin`.
//!
//! Every input is a safe type range-checked against its bound of §2.3 where it is loaded, and
//! every intermediate carries its width (§5.5): notional and OTM `< 2^64`; a per-contract add-on
//! is declared `< 2^66` (the width `ceil_bps` constrains, although its value is `< 2^64`);
//! a position's value `size·mark < 2^104` and its add-on terms `|size|·add-on < 2^106`; the four
//! account figures are summed pairwise, so over at most [`MAX_POSITIONS`] slots they stay
//! `< 2^112`. All of these are far below `safe::MAX_BITS`, so nothing wraps `p`.
//!
//! The batch circuit looks a slot's [`PositionTerms`] up by series id; an empty slot has size 0,
//! whatever series terms it carries, and contributes 0 to every figure.

use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::QuantumCell::Constant;
use halo2_base::{AssignedValue, Context};

use collar_protocol::field::{fr_from_i128, fr_from_u128};
use collar_protocol::market::{OptionKind, Series};
use collar_protocol::params::{bounds, MarginParams, BPS};

use crate::safe::{Ranged, Signed};

/// Most position slots an account may have (`ProtocolParams::validate`: `max_positions <= 64`).
pub const MAX_POSITIONS: usize = 64;

/// Declared width of a per-contract add-on: `ceil_bps` of a 64-bit notional or mark.
pub const ADD_ON_BITS: u32 = bounds::CONTRACT_PRICE_BITS + 2;

/// The terms of one option series that margin reads (PROTOCOL.md §4.5, §5.2).
#[derive(Clone, Copy, Debug)]
pub struct AssignedSeriesTerms {
    /// Strike per underlying unit, 48 bits.
    pub strike: Ranged,
    /// 1 for a put, 0 for a call; boolean-constrained by the loaders (callers building the
    /// struct themselves must constrain it).
    pub is_put: AssignedValue<Fr>,
    /// Contract size in underlying units, 16 bits.
    pub contract_size: Ranged,
    /// Mark per contract, 64 bits.
    pub mark: Ranged,
}

impl AssignedSeriesTerms {
    /// Witnesses raw series terms and constrains each to its bound: `strike < 2^48`, `is_put`
    /// boolean, `contract_size < 2^16`, `mark < 2^64`.
    pub fn load(
        ctx: &mut Context<Fr>,
        range: &RangeChip<Fr>,
        strike: Fr,
        is_put: Fr,
        contract_size: Fr,
        mark: Fr,
    ) -> Self {
        let strike = Ranged::load(ctx, range, strike, bounds::UNIT_PRICE_BITS);
        let is_put = ctx.load_witness(is_put);
        range.gate().assert_bit(ctx, is_put);
        let contract_size = Ranged::load(ctx, range, contract_size, bounds::CONTRACT_SIZE_BITS);
        let mark = Ranged::load(ctx, range, mark, bounds::CONTRACT_PRICE_BITS);
        Self {
            strike,
            is_put,
            contract_size,
            mark,
        }
    }
}

/// Witnesses the margin terms of `series` with their range checks
/// ([`AssignedSeriesTerms::load`]).
pub fn assign_series_terms(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    series: &Series,
) -> AssignedSeriesTerms {
    AssignedSeriesTerms::load(
        ctx,
        range,
        Fr::from(series.strike),
        Fr::from(u64::from(series.kind == OptionKind::Put)),
        Fr::from(series.contract_size),
        Fr::from(series.mark),
    )
}

/// The margin rates of one underlying (PROTOCOL.md §5.2), each 14 bits and `<= 10_000`.
#[derive(Clone, Copy, Debug)]
pub struct AssignedMarginParams {
    /// Initial-margin spot rate, bps.
    pub im_spot_bps: Ranged,
    /// Maintenance spot rate, bps.
    pub mm_spot_bps: Ranged,
    /// Maintenance rate on the mark for short puts, bps.
    pub put_mm_mark_bps: Ranged,
}

impl AssignedMarginParams {
    /// Witnesses three raw rates and constrains each to `< 2^14` and `<= 10_000`.
    pub fn load(
        ctx: &mut Context<Fr>,
        range: &RangeChip<Fr>,
        im_spot_bps: Fr,
        mm_spot_bps: Fr,
        put_mm_mark_bps: Fr,
    ) -> Self {
        let mut rate = |v: Fr| {
            let r = Ranged::load(ctx, range, v, bounds::BPS_BITS);
            crate::stats::measure(crate::stats::Component::RangeChecks, ctx, |ctx| {
                range.check_less_than(
                    ctx,
                    r.cell(),
                    Constant(Fr::from(BPS + 1)),
                    bounds::BPS_BITS as usize,
                )
            });
            r
        };
        Self {
            im_spot_bps: rate(im_spot_bps),
            mm_spot_bps: rate(mm_spot_bps),
            put_mm_mark_bps: rate(put_mm_mark_bps),
        }
    }
}

/// Witnesses an underlying's margin rates with their range checks
/// ([`AssignedMarginParams::load`]).
pub fn assign_margin_params(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    params: &MarginParams,
) -> AssignedMarginParams {
    AssignedMarginParams::load(
        ctx,
        range,
        Fr::from(params.im_spot_bps),
        Fr::from(params.mm_spot_bps),
        Fr::from(params.put_mm_mark_bps),
    )
}

/// Witnesses a spot (a unit price) and constrains it below `2^48`.
pub fn assign_spot(ctx: &mut Context<Fr>, range: &RangeChip<Fr>, spot: u64) -> Ranged {
    Ranged::load(ctx, range, Fr::from(spot), bounds::UNIT_PRICE_BITS)
}

/// Witnesses an account's collateral and constrains it below `2^63`.
pub fn assign_collateral(ctx: &mut Context<Fr>, range: &RangeChip<Fr>, collateral: u64) -> Ranged {
    Ranged::load(
        ctx,
        range,
        fr_from_u128(collateral.into()),
        bounds::COLLATERAL_BITS,
    )
}

/// Witnesses a signed position size (embedded as `p - |size|` when short) and constrains
/// `|size| < 2^40`.
pub fn assign_size(ctx: &mut Context<Fr>, range: &RangeChip<Fr>, size: i64) -> Signed {
    let cell = ctx.load_witness(fr_from_i128(size.into()));
    Signed::check(ctx, range, cell, bounds::SIZE_BITS)
}

/// Add-ons per short contract `(initial, maintenance)` of a series at `spot` (PROTOCOL.md §5.2),
/// exactly as native `margin::short_add_ons`:
///
/// ```text
/// N = cs·spot,  OTM = cs·max(K - S, 0) (call) or cs·max(S - K, 0) (put)
/// base = max(ceil(im·N) -sat OTM, ceil(mm·N))
/// call: (base, ceil(mm·N));  put: MM = max(ceil(mm·N), ceil(pm·mark)), (max(base, MM), MM)
/// ```
///
/// Both outputs are declared [`ADD_ON_BITS`] wide. The put terms are folded in with `is_put`:
/// `MM = max(ceil(mm·N), is_put·ceil(pm·mark))` and `IM = max(base, MM)`, which for a call is
/// `(base, ceil(mm·N))` because `base >= ceil(mm·N)`.
///
/// # Panics
/// If an input is wider than its bound of §2.3 (a construction error).
pub fn short_add_ons(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    s: &AssignedSeriesTerms,
    spot: &Ranged,
    p: &AssignedMarginParams,
) -> (Ranged, Ranged) {
    crate::stats::measure(crate::stats::Component::Margin, ctx, |ctx| {
        assert!(
            s.strike.bits() <= bounds::UNIT_PRICE_BITS && spot.bits() <= bounds::UNIT_PRICE_BITS
        );
        assert!(s.contract_size.bits() <= bounds::CONTRACT_SIZE_BITS);
        assert!(s.mark.bits() <= bounds::CONTRACT_PRICE_BITS);
        for r in [p.im_spot_bps, p.mm_spot_bps, p.put_mm_mark_bps] {
            assert!(r.bits() <= bounds::BPS_BITS);
        }
        let gate = range.gate();
        let notional = s.contract_size.mul(ctx, gate, spot);
        // OTM per unit: max(K - S, 0) for a call, max(S - K, 0) for a put.
        let hi = Ranged::select(ctx, gate, spot, &s.strike, s.is_put);
        let lo = Ranged::select(ctx, gate, &s.strike, spot, s.is_put);
        let otm_unit = hi.saturating_sub(ctx, range, &lo);
        let otm = s.contract_size.mul(ctx, gate, &otm_unit);
        let im_spot = notional.ceil_bps(ctx, range, &p.im_spot_bps);
        let mm_spot = notional.ceil_bps(ctx, range, &p.mm_spot_bps);
        let base = im_spot
            .saturating_sub(ctx, range, &otm)
            .max(ctx, range, &mm_spot);
        let mark_floor = s.mark.ceil_bps(ctx, range, &p.put_mm_mark_bps);
        let zero = Ranged::constant(ctx, 0);
        let put_floor = Ranged::select(ctx, gate, &mark_floor, &zero, s.is_put);
        let mm = mm_spot.max(ctx, range, &put_floor);
        let im = base.max(ctx, range, &mm);
        debug_assert!(im.bits() == ADD_ON_BITS && mm.bits() == ADD_ON_BITS);
        (im, mm)
    })
}

/// One position slot's inputs, looked up by the batch circuit from the slot's series id.
#[derive(Clone, Copy, Debug)]
pub struct PositionTerms {
    /// Signed size, `|size| < 2^40`; 0 for an empty slot.
    pub size: Signed,
    /// The series' terms.
    pub series: AssignedSeriesTerms,
    /// Spot of the series' underlying, 48 bits.
    pub spot: Ranged,
    /// Margin rates of the series' underlying.
    pub params: AssignedMarginParams,
}

/// One position's margin figures (native `margin::PositionMargin`, with the longs' add-ons
/// computed too and zeroed by `is_short`).
#[derive(Clone, Copy, Debug)]
pub struct AssignedPositionMargin {
    /// `size < 0`.
    pub is_short: AssignedValue<Fr>,
    /// `|size| = select(is_short, -size, size)`, 40 bits.
    pub abs_size: Ranged,
    /// Initial add-on per short contract (computed for every slot).
    pub im_per_contract: Ranged,
    /// Maintenance add-on per short contract (computed for every slot).
    pub mm_per_contract: Ranged,
    /// `size·mark`, 104 bits.
    pub value: Signed,
    /// `is_short·|size|·mark = -(is_short ? value : 0)`, 104 bits.
    pub short_value: Ranged,
    /// `is_short·|size|·IM`, 106 bits.
    pub initial: Ranged,
    /// `is_short·|size|·MM`, 106 bits.
    pub maintenance: Ranged,
}

/// An account's margin figures (PROTOCOL.md §5.1, §5.2; native `margin::MarginSummary`).
#[derive(Clone, Copy, Debug)]
pub struct AssignedMargin {
    /// `collateral + Σ size·mark`.
    pub equity: Signed,
    /// `collateral + Σ_{size<0} size·mark`.
    pub im_equity: Signed,
    /// `Σ_{size<0} |size|·IM`.
    pub initial: Ranged,
    /// `Σ_{size<0} |size|·MM`.
    pub maintenance: Ranged,
}

/// The margin figures of one slot (PROTOCOL.md §5.1, §5.2).
///
/// `|size|` is `select(is_short, -size, size)`; it is range-checked to 40 bits again, which
/// holds for every honest witness (`|size| < 2^40` already) and costs one 40-bit check.
///
/// # Panics
/// If `size` is wider than 40 bits or a series term is wider than its bound.
pub fn position_margin(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    p: &PositionTerms,
) -> AssignedPositionMargin {
    crate::stats::measure(crate::stats::Component::Margin, ctx, |ctx| {
        assert!(p.size.bits() <= bounds::SIZE_BITS);
        let gate = range.gate();
        let (im_per_contract, mm_per_contract) =
            short_add_ons(ctx, range, &p.series, &p.spot, &p.params);
        let is_short = p.size.is_negative(ctx, range);
        let neg = gate.neg(ctx, p.size.cell());
        let abs = gate.select(ctx, neg, p.size.cell(), is_short);
        let abs_size = Ranged::check(ctx, range, abs, bounds::SIZE_BITS);
        let zero = Ranged::constant(ctx, 0);
        let short_size = Ranged::select(ctx, gate, &abs_size, &zero, is_short);
        let value = p.size.mul_ranged(ctx, gate, &p.series.mark);
        let short_value = short_size.mul(ctx, gate, &p.series.mark);
        let initial = short_size.mul(ctx, gate, &im_per_contract);
        let maintenance = short_size.mul(ctx, gate, &mm_per_contract);
        AssignedPositionMargin {
            is_short,
            abs_size,
            im_per_contract,
            mm_per_contract,
            value,
            short_value,
            initial,
            maintenance,
        }
    })
}

/// Sums `items` pairwise (a balanced tree), so the width grows by `ceil(log2(len))`.
fn tree_sum<T: Copy>(
    ctx: &mut Context<Fr>,
    items: Vec<T>,
    add: impl Fn(&mut Context<Fr>, &T, &T) -> T,
) -> Option<T> {
    let mut level = items;
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => add(ctx, a, b),
                [a] => *a,
                _ => unreachable!("chunks of two"),
            })
            .collect();
    }
    level.pop()
}

/// Sums per-position figures into the account's (PROTOCOL.md §5.1, §5.2):
/// `equity = c + Σ value`, `im_equity = c - Σ short_value`, `initial = Σ initial`,
/// `maintenance = Σ maintenance`.
///
/// # Panics
/// If there are more than [`MAX_POSITIONS`] positions.
pub fn sum_margin(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    collateral: &Ranged,
    positions: &[AssignedPositionMargin],
) -> AssignedMargin {
    crate::stats::measure(crate::stats::Component::Margin, ctx, |ctx| {
        assert!(
            positions.len() <= MAX_POSITIONS,
            "at most {MAX_POSITIONS} positions"
        );
        assert!(collateral.bits() <= bounds::COLLATERAL_BITS);
        let c = collateral.to_signed();
        let sum_ranged = |ctx: &mut Context<Fr>, f: fn(&AssignedPositionMargin) -> Ranged| {
            tree_sum(ctx, positions.iter().map(f).collect(), |ctx, a, b| {
                a.add(ctx, gate, b)
            })
        };
        let values = tree_sum(
            ctx,
            positions.iter().map(|p| p.value).collect(),
            |ctx, a, b| a.add(ctx, gate, b),
        );
        let equity = match values {
            Some(v) => c.add(ctx, gate, &v),
            None => c,
        };
        let im_equity = match sum_ranged(ctx, |p| p.short_value) {
            Some(v) => c.sub(ctx, gate, &v.to_signed()),
            None => c,
        };
        let initial = sum_ranged(ctx, |p| p.initial).unwrap_or_else(|| Ranged::constant(ctx, 0));
        let maintenance =
            sum_ranged(ctx, |p| p.maintenance).unwrap_or_else(|| Ranged::constant(ctx, 0));
        AssignedMargin {
            equity,
            im_equity,
            initial,
            maintenance,
        }
    })
}

/// The margin figures of an account with `collateral` (63 bits) and position slots
/// `positions` (PROTOCOL.md §5.1, §5.2; native `margin::account_margin`): each slot through
/// [`position_margin`], then [`sum_margin`]. Empty slots (size 0) contribute 0.
///
/// # Panics
/// If there are more than [`MAX_POSITIONS`] slots or an input is wider than its bound.
pub fn account_margin(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    collateral: &Ranged,
    positions: &[PositionTerms],
) -> AssignedMargin {
    crate::stats::measure(crate::stats::Component::Margin, ctx, |ctx| {
        assert!(
            positions.len() <= MAX_POSITIONS,
            "at most {MAX_POSITIONS} positions"
        );
        let per: Vec<AssignedPositionMargin> = positions
            .iter()
            .map(|p| position_margin(ctx, range, p))
            .collect();
        sum_margin(ctx, range.gate(), collateral, &per)
    })
}

/// The boolean cell `equity >= requirement` (PROTOCOL.md §5.3): initial margin with
/// `(im_equity, initial)`, maintenance with `(equity, maintenance)`.
pub fn meets(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    equity: &Signed,
    requirement: &Ranged,
) -> AssignedValue<Fr> {
    crate::stats::measure(crate::stats::Component::Margin, ctx, |ctx| {
        equity.is_ge(ctx, range, &requirement.to_signed())
    })
}
