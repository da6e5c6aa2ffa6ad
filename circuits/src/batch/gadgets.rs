//! Small constraint helpers shared by the slot gadgets.

use collar_protocol::params::bounds;
use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};

use super::AssignedPort;
use crate::account::{AssignedAccount, AssignedPosition};
use crate::portfolio::MarketView;
use crate::safe::{Ranged, Signed};
use crate::table::select_two_level;

/// `(a - b)·sel == 0`: `a == b` whenever the selector is on.
pub(crate) fn eq_if(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    a: AssignedValue<Fr>,
    b: AssignedValue<Fr>,
    sel: AssignedValue<Fr>,
) {
    let d = gate.sub(ctx, a, b);
    let p = gate.mul(ctx, d, sel);
    gate.assert_is_const(ctx, &p, &Fr::zero());
}

/// The leaf fields a transaction leaves unchanged on a port (collateral is never listed: every
/// type that writes a port moves or checks it).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Keep {
    pub(crate) key: bool,
    pub(crate) nonce: bool,
    pub(crate) orders: bool,
    pub(crate) positions: bool,
}

impl Keep {
    /// Everything but collateral.
    pub(crate) const ALL: Keep = Keep {
        key: true,
        nonce: true,
        orders: true,
        positions: true,
    };
}

/// Constrains the fields named by `keep` of `port` unchanged under `sel`.
pub(crate) fn keep(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    port: &AssignedPort,
    keep: Keep,
    sel: AssignedValue<Fr>,
) {
    let (b, a) = (&port.before, &port.after);
    if keep.key {
        for (x, y) in a.pubkey.iter().zip(&b.pubkey) {
            eq_if(ctx, gate, *x, *y, sel);
        }
    }
    if keep.nonce {
        eq_if(ctx, gate, a.nonce.cell(), b.nonce.cell(), sel);
    }
    if keep.orders {
        eq_if(ctx, gate, a.orders_root, b.orders_root, sel);
    }
    if keep.positions {
        for (x, y) in a.positions.iter().zip(&b.positions) {
            eq_if(ctx, gate, x.word, y.word, sel);
        }
    }
}

/// Constrains `port`'s collateral to become `before + (bit ? if_set : if_clear)` under `sel`.
/// Deltas are field values (a debit is a negated cell); the new collateral's 63-bit range check
/// (its leaf) rules out a debit past zero or a credit to `2^63`.
pub(crate) fn move_cash(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    port: &AssignedPort,
    if_set: AssignedValue<Fr>,
    if_clear: AssignedValue<Fr>,
    bit: AssignedValue<Fr>,
    sel: AssignedValue<Fr>,
) {
    let delta = gate.select(ctx, if_set, if_clear, bit);
    let cash = gate.add(ctx, port.before.collateral.cell(), delta);
    eq_if(ctx, gate, port.after.collateral.cell(), cash, sel);
}

/// §7.4 rule 9 and §7.5 rule 5: `payer` pays `paid = min(amount, collateral)`; a shortfall
/// `amount - paid > 0` is allowed under `sel` only if `longs_of` holds no long. Returns
/// `(paid, shortfall)`.
pub(crate) fn pay_capped(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    amount: &Ranged,
    payer: &AssignedAccount,
    longs_of: &AssignedAccount,
    sel: AssignedValue<Fr>,
) -> (Ranged, AssignedValue<Fr>) {
    let gate = range.gate();
    let zero = ctx.load_zero();
    let paid = min(ctx, range, amount, &payer.collateral);
    let shortfall = gate.sub(ctx, amount.cell(), paid.cell());
    let covered = gate.is_zero(ctx, shortfall);
    let has_shortfall = gate.not(ctx, covered);
    let long_held = holds_long(ctx, range, longs_of);
    let blocked = gate.and(ctx, has_shortfall, long_held);
    eq_if(ctx, gate, blocked, zero, sel);
    (paid, shortfall)
}

/// For every underlying slot, whether it halts risk at `now` (PROTOCOL.md §9):
/// `now < tripped_until` or `now - last_update > stale_after`.
///
/// Assumes every underlying's `last_update <= now` (a state invariant: ticks set both, and an
/// unused slot holds zeros); otherwise the circuit is unsatisfiable.
pub(crate) fn halted_flags(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    view: &MarketView<'_>,
    now: &Ranged,
) -> Vec<AssignedValue<Fr>> {
    let gate = range.gate();
    view.underlyings
        .iter()
        .map(|x| {
            let tripped = now.is_lt(ctx, range, &x.tripped_until);
            let age = gate.sub(ctx, now.cell(), x.last_update.cell());
            let age = Ranged::check(ctx, range, age, bounds::TIME_BITS);
            let stale = x.durations[0].is_lt(ctx, range, &age);
            gate.or(ctx, tripped, stale)
        })
        .collect()
}

/// Whether the underlying at index `u` halts risk at `now` ([`halted_flags`]; an index past
/// the list reads 0). Assumptions as [`halted_flags`].
pub(crate) fn underlying_halted(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    view: &MarketView<'_>,
    u: &Ranged,
    now: &Ranged,
) -> AssignedValue<Fr> {
    let flags = halted_flags(ctx, range, view, now);
    select_two_level(ctx, range, &flags, u)
}

/// Whether any held position of `acc` is on an underlying whose breaker halts risk at `now`
/// (PROTOCOL.md §9). Assumptions as [`halted_flags`].
pub(crate) fn any_position_halted(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    acc: &AssignedAccount,
    view: &MarketView<'_>,
    now: &Ranged,
) -> AssignedValue<Fr> {
    let gate = range.gate();
    let flags = halted_flags(ctx, range, view, now);
    let mut any = ctx.load_zero();
    for p in &acc.positions {
        let u = view.read_series(ctx, range, &p.series).underlying;
        let halted = select_two_level(ctx, range, &flags, &u);
        let held = gate.not(ctx, p.empty);
        let counts = gate.and(ctx, halted, held);
        any = gate.or(ctx, any, counts);
    }
    any
}

/// How [`move_position`] changes the chosen slot.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Move {
    /// By a signed delta, `|delta| < 2^40`, non-zero under the selector.
    By(AssignedValue<Fr>),
    /// To zero: the slot must hold the series, and is emptied (expiry settlement).
    Close,
}

/// The chosen position slot before and after a [`move_position`].
pub(crate) struct PositionMove {
    /// The size held in the series before (0 if the slot was free).
    pub(crate) before: Signed,
    /// The size after.
    pub(crate) after: Signed,
}

/// §4.3: moves `port`'s position in `series` in slot `slot_index`, under `sel`.
///
/// The chosen slot either holds `series` already or, when no slot holds it, is the lowest free
/// slot; every other slot is unchanged; a position that reaches zero empties its slot (the
/// canonical-empty rule of the leaf does the rest). Assumes `series` is range-checked.
pub(crate) fn move_position(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    port: &AssignedPort,
    series: &Ranged,
    change: Move,
    slot_index: usize,
    sel: AssignedValue<Fr>,
) -> PositionMove {
    let gate = range.gate();
    let (b, a) = (&port.before.positions, &port.after.positions);
    let n = b.len();
    let j = ctx.load_witness(Fr::from(slot_index as u64));
    let ind = gate.idx_to_indicator(ctx, j, n);
    // The index names a slot (idx_to_indicator alone yields all zeros past the end).
    let hits = gate.sum(ctx, ind.iter().copied());
    gate.assert_is_const(ctx, &hits, &Fr::one());

    let at = |ctx: &mut Context<Fr>, cells: Vec<AssignedValue<Fr>>| {
        gate.select_by_indicator(ctx, cells, ind.iter().copied())
    };
    let b_series = at(ctx, b.iter().map(|p| p.series.cell()).collect());
    let b_size = at(ctx, b.iter().map(|p| p.size.cell()).collect());
    let b_empty = at(ctx, b.iter().map(|p| p.empty).collect());
    let a_series = at(ctx, a.iter().map(|p| p.series.cell()).collect());
    let a_size = at(ctx, a.iter().map(|p| p.size.cell()).collect());
    let a_empty = at(ctx, a.iter().map(|p| p.empty).collect());

    // The chosen slot: held in this series, or empty; the new size; the series kept unless
    // the slot empties.
    let b_held = gate.not(ctx, b_empty);
    let held_sel = gate.mul(ctx, sel, b_held);
    eq_if(ctx, gate, b_series, series.cell(), held_sel);
    let new_size = match change {
        Move::By(delta) => gate.add(ctx, b_size, delta),
        Move::Close => {
            let zero = ctx.load_zero();
            eq_if(ctx, gate, b_empty, zero, sel);
            zero
        }
    };
    eq_if(ctx, gate, a_size, new_size, sel);
    let a_held = gate.not(ctx, a_empty);
    let keeps_sel = gate.mul(ctx, sel, a_held);
    eq_if(ctx, gate, a_series, series.cell(), keeps_sel);

    // Every other slot is unchanged.
    for ((x, y), i) in a.iter().zip(b).zip(&ind) {
        let other = gate.not(ctx, *i);
        let other_sel = gate.mul(ctx, sel, other);
        eq_if(ctx, gate, x.word, y.word, other_sel);
    }

    // Opening a position: no slot holds the series, and every slot below the chosen one is
    // occupied (lowest free slot).
    let opening = gate.mul(ctx, sel, b_empty);
    let zero = ctx.load_zero();
    let mut below = ctx.load_zero();
    for (k, p) in b.iter().enumerate().rev() {
        let same_series = gate.is_equal(ctx, p.series.cell(), series.cell());
        let holds = gate.mul_not(ctx, p.empty, same_series);
        eq_if(ctx, gate, holds, zero, opening);
        // `below` = Σ_{m > k} ind_m: the chosen slot is above slot k.
        let free_below = gate.mul(ctx, p.empty, below);
        eq_if(ctx, gate, free_below, zero, opening);
        below = gate.add(ctx, below, ind[k]);
    }
    // Both sizes are one of their account's slot sizes, each range-checked to 40 bits by its
    // leaf; re-checking them here gives typed handles.
    PositionMove {
        before: Signed::check(ctx, range, b_size, bounds::SIZE_BITS),
        after: Signed::check(ctx, range, a_size, bounds::SIZE_BITS),
    }
}

/// The series registry entry at `series` with its underlying's spot and breaker state.
pub(crate) struct SeriesRead {
    pub(crate) registered: AssignedValue<Fr>,
    pub(crate) expiry: Ranged,
    pub(crate) underlying: Ranged,
    pub(crate) strike: Ranged,
    pub(crate) is_put: AssignedValue<Fr>,
    pub(crate) contract_size: Ranged,
    pub(crate) mark: Ranged,
    pub(crate) settlement_price: Ranged,
    pub(crate) spot: Ranged,
}

impl SeriesRead {
    /// Reads entry `series` (assumed range-checked to 16 bits); an unregistered index reads
    /// zeros and `registered = 0`.
    pub(crate) fn new(
        ctx: &mut Context<Fr>,
        range: &RangeChip<Fr>,
        view: &MarketView<'_>,
        series: &Ranged,
    ) -> Self {
        let registered = range.is_less_than(ctx, series.cell(), view.series_count, 17);
        let row = view.read_series(ctx, range, series);
        let spot = view.read_underlying(ctx, range, &row.underlying).spot;
        Self {
            registered,
            expiry: row.expiry,
            underlying: row.underlying,
            strike: row.strike,
            is_put: row.is_put.cell(),
            contract_size: row.contract_size,
            mark: row.mark,
            settlement_price: row.settlement_price,
            spot,
        }
    }

    /// Constrains §7.3 rule 5 under `sel`: registered, not expired at `now`, priced.
    pub(crate) fn require_live(
        &self,
        ctx: &mut Context<Fr>,
        range: &RangeChip<Fr>,
        now: &Ranged,
        sel: AssignedValue<Fr>,
    ) {
        let gate = range.gate();
        let one = ctx.load_constant(Fr::one());
        let zero = ctx.load_zero();
        eq_if(ctx, gate, self.registered, one, sel);
        let live = now.is_lt(ctx, range, &self.expiry);
        eq_if(ctx, gate, live, one, sel);
        let no_price = gate.is_zero(ctx, self.spot.cell());
        eq_if(ctx, gate, no_price, zero, sel);
    }
}

/// Whether any slot of `acc` holds a long (`size > 0`).
pub(crate) fn holds_long(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    acc: &AssignedAccount,
) -> AssignedValue<Fr> {
    let gate = range.gate();
    let zero = Ranged::constant(ctx, 0).to_signed();
    let mut any = ctx.load_zero();
    for p in &acc.positions {
        let non_positive = zero.is_ge(ctx, range, &p.size);
        let long = gate.not(ctx, non_positive);
        any = gate.or(ctx, any, long);
    }
    any
}

/// `|v|` of a signed value, with `v < 0` as a boolean cell.
pub(crate) fn abs(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    v: &Signed,
) -> (Ranged, AssignedValue<Fr>) {
    let gate = range.gate();
    let negative = v.is_negative(ctx, range);
    let neg = gate.neg(ctx, v.cell());
    let a = gate.select(ctx, neg, v.cell(), negative);
    (Ranged::check(ctx, range, a, v.bits()), negative)
}

/// `min(a, b)`.
pub(crate) fn min(ctx: &mut Context<Fr>, range: &RangeChip<Fr>, a: &Ranged, b: &Ranged) -> Ranged {
    let lt = a.is_lt(ctx, range, b);
    Ranged::select(ctx, range.gate(), a, b, lt)
}

/// `bit ? a : b` over the fields the margin reads (collateral and positions); the other fields
/// are `b`'s. Both accounts are assumed built by `account_from_cells` (range-checked).
pub(crate) fn select_for_margin(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    bit: AssignedValue<Fr>,
    a: &AssignedAccount,
    b: &AssignedAccount,
) -> AssignedAccount {
    let gate = range.gate();
    let positions = a
        .positions
        .iter()
        .zip(&b.positions)
        .map(|(x, y)| {
            let size = gate.select(ctx, x.size.cell(), y.size.cell(), bit);
            AssignedPosition {
                series: Ranged::select(ctx, gate, &x.series, &y.series, bit),
                size: Signed::check(ctx, range, size, x.size.bits().max(y.size.bits())),
                empty: gate.select(ctx, x.empty, y.empty, bit),
                word: gate.select(ctx, x.word, y.word, bit),
            }
        })
        .collect();
    AssignedAccount {
        collateral: Ranged::select(ctx, gate, &a.collateral, &b.collateral, bit),
        positions,
        ..b.clone()
    }
}
