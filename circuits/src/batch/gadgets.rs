//! Small constraint helpers shared by the slot gadgets.

use collar_protocol::params::bounds;
use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};

use crate::account::AssignedAccount;
use crate::market::AssignedUnderlying;
use crate::portfolio::MarketView;
use crate::safe::Ranged;

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

/// Constrains every field of `after` equal to `before` under `sel`, except collateral and
/// public key, which the caller handles.
pub(crate) fn unchanged_except_balance(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    before: &AssignedAccount,
    after: &AssignedAccount,
    sel: AssignedValue<Fr>,
) {
    eq_if(ctx, gate, after.nonce.cell(), before.nonce.cell(), sel);
    eq_if(ctx, gate, after.orders_root, before.orders_root, sel);
    for (a, b) in after.positions.iter().zip(&before.positions) {
        eq_if(ctx, gate, a.word, b.word, sel);
    }
}

/// Whether the underlying at index `u` halts risk at `now` (PROTOCOL.md §9):
/// `now < tripped_until` or `now - last_update > stale_after`.
///
/// Assumes `u` indexes a loaded underlying (an out-of-range index reads zeros) and every
/// underlying's `last_update <= now` (a state invariant: ticks set both).
pub(crate) fn underlying_halted(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    view: &MarketView<'_>,
    u: AssignedValue<Fr>,
    now: &Ranged,
) -> AssignedValue<Fr> {
    let gate = range.gate();
    let pick = |ctx: &mut Context<Fr>, f: &dyn Fn(&AssignedUnderlying) -> Ranged| {
        let c: Vec<Ranged> = view.underlyings.iter().map(f).collect();
        Ranged::select_from_idx(ctx, gate, &c, u)
    };
    let tripped_until = pick(ctx, &|x| x.tripped_until);
    let last_update = pick(ctx, &|x| x.last_update);
    let stale_after = pick(ctx, &|x| x.durations[0]);
    let tripped = now.is_lt(ctx, range, &tripped_until);
    let age = gate.sub(ctx, now.cell(), last_update.cell());
    let age = Ranged::check(ctx, range, age, bounds::TIME_BITS);
    let stale = stale_after.is_lt(ctx, range, &age);
    gate.or(ctx, tripped, stale)
}

/// Whether any held position of `acc` is on an underlying whose breaker halts risk at `now`
/// (PROTOCOL.md §9). Assumptions as [`underlying_halted`].
pub(crate) fn any_position_halted(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    acc: &AssignedAccount,
    view: &MarketView<'_>,
    now: &Ranged,
) -> AssignedValue<Fr> {
    let gate = range.gate();
    let mut any = ctx.load_zero();
    let underlyings: Vec<Ranged> = view.series.iter().map(|s| s.underlying).collect();
    for p in &acc.positions {
        let u = Ranged::select_from_idx(ctx, gate, &underlyings, p.series.cell());
        let halted = underlying_halted(ctx, range, view, u.cell(), now);
        let held = gate.not(ctx, p.empty);
        let counts = gate.and(ctx, halted, held);
        any = gate.or(ctx, any, counts);
    }
    any
}
