//! §7.4 Liquidate: a liquidator takes over part of a liquidatable account's position at the mark
//! plus or minus the penalty, on ports 0 (the victim), 1 (the insurance fund) and 2 (the
//! liquidator).

use collar_protocol::field::domain_tag;
use collar_protocol::params::bounds;
use collar_protocol::pubdata::record;
use collar_protocol::tx::{tags, Liquidate};
use collar_protocol::{Tx, INSURANCE_FUND};
use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};

use super::gadgets::{
    abs, eq_if, keep, move_cash, move_position, pay_capped, underlying_halted, Keep, Move,
    SeriesRead,
};
use super::witness::SlotWitness;
use super::{AssignedPort, PortMargins, SlotEnv};
use crate::account::SERIES_BITS;
use crate::margin::meets;
use crate::safe::Ranged;

/// Constrains `slot` as a liquidation under `sel` and returns the field form of its public-data
/// record (§10) and the liquidation order's message (§6.5), computed whatever the type. `margins.before[0]` is the victim's margin before and
/// `margins.after[1]` the liquidator's after (the caller selects port 2 for it).
pub(super) fn constrain(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    env: &SlotEnv<'_>,
    slot: &SlotWitness,
    ports: &[AssignedPort],
    margins: &PortMargins,
    sel: AssignedValue<Fr>,
) -> (Vec<AssignedValue<Fr>>, AssignedValue<Fr>) {
    let gate = range.gate();
    let l = match &slot.tx {
        Some(Tx::Liquidate(l)) => l.clone(),
        _ => idle(),
    };
    let o = &l.order;
    let zero = ctx.load_zero();
    let one = ctx.load_constant(Fr::one());
    let mut load = |v: u64, bits: u32| Ranged::load(ctx, range, Fr::from(v), bits);
    let size = load(l.size, bounds::SIZE_BITS);
    let max_size = load(o.max_size, bounds::SIZE_BITS);
    let limit = load(o.limit_price, bounds::CONTRACT_PRICE_BITS);
    let nonce = load(o.nonce, bounds::NONCE_BITS);
    let series = load(u64::from(o.series), SERIES_BITS);
    let (victim, fund, liq) = (&ports[0], &ports[1], &ports[2]);

    // 1–2. Distinct accounts; 0 < size <= max_size.
    let same = gate.is_equal(ctx, victim.index.cell(), liq.index.cell());
    eq_if(ctx, gate, same, zero, sel);
    let size_zero = gate.is_zero(ctx, size.cell());
    eq_if(ctx, gate, size_zero, zero, sel);
    let overfilled = max_size.is_lt(ctx, range, &size);
    eq_if(ctx, gate, overfilled, zero, sel);

    // 3–4. A live series whose underlying is not halted.
    let terms = SeriesRead::new(ctx, range, env.view, &series);
    terms.require_live(ctx, range, &env.now, sel);
    let halted = underlying_halted(ctx, range, env.view, &terms.underlying, &env.now);
    eq_if(ctx, gate, halted, zero, sel);

    // 5. The liquidator exists and signs with its nonce; 11. the nonce increases.
    eq_if(ctx, gate, liq.before.exists, one, sel);
    eq_if(ctx, gate, nonce.cell(), liq.before.nonce.cell(), sel);
    let bumped = gate.add(ctx, liq.before.nonce.cell(), one);
    eq_if(ctx, gate, liq.after.nonce.cell(), bumped, sel);

    // 6. The victim exists and is liquidatable: equity < maintenance.
    eq_if(ctx, gate, victim.before.exists, one, sel);
    let vm = &margins.before[0];
    let healthy = meets(ctx, range, &vm.equity, &vm.maintenance);
    eq_if(ctx, gate, healthy, zero, sel);

    // 7. The victim's position Q != 0 shrinks by size <= |Q| towards zero: it buys back a
    // short (victim_short) or sells a long.
    let short_value = match &slot.tx {
        Some(Tx::Liquidate(_)) => slot.ports[0].before.position(o.series).is_negative(),
        _ => false,
    };
    let short = ctx.load_witness(Fr::from(u64::from(short_value)));
    gate.assert_bit(ctx, short);
    let neg_size = gate.neg(ctx, size.cell());
    let victim_delta = gate.select(ctx, size.cell(), neg_size, short);
    let mv = move_position(
        ctx,
        range,
        victim,
        &series,
        Move::By(victim_delta),
        slot.ports[0].position_slot,
        sel,
    );
    let (held, negative) = abs(ctx, range, &mv.before);
    eq_if(ctx, gate, negative, short, sel);
    let none = gate.is_zero(ctx, held.cell());
    eq_if(ctx, gate, none, zero, sel);
    let too_large = held.is_lt(ctx, range, &size);
    eq_if(ctx, gate, too_large, zero, sel);

    // 8. price = mark ± ceil_bps(mark, penalty) (penalty <= mark), below 2^64, within the limit.
    let pen_bps = Ranged::constant(ctx, u128::from(env.params.liquidation_penalty_bps));
    let penalty = terms.mark.ceil_bps(ctx, range, &pen_bps);
    let up = gate.add(ctx, terms.mark.cell(), penalty.cell());
    let down = gate.sub(ctx, terms.mark.cell(), penalty.cell());
    let price = gate.select(ctx, up, down, short);
    let gated = gate.mul(ctx, price, sel);
    range.range_check(ctx, gated, bounds::CONTRACT_PRICE_BITS as usize);
    let price = Ranged::check(ctx, range, price, terms.mark.bits() + 1);
    let below_limit = price.is_lt(ctx, range, &limit);
    let above_limit = limit.is_lt(ctx, range, &price);
    let outside = gate.select(ctx, below_limit, above_limit, short);
    eq_if(ctx, gate, outside, zero, sel);

    // 9–10. cost = size·price. Short victim: pays min(cost, collateral), the fund covers the
    // deficit only for a victim left with no long. Long victim: receives cost from the
    // liquidator (whose 63-bit collateral check rules out paying more than it holds).
    let cost = size.mul(ctx, gate, &price);
    let short_sel = gate.mul(ctx, sel, short);
    let (paid, shortfall) = pay_capped(ctx, range, &cost, &victim.before, &victim.after, short_sel);
    let deficit = gate.mul(ctx, shortfall, short);
    let neg_paid = gate.neg(ctx, paid.cell());
    let neg_cost = gate.neg(ctx, cost.cell());
    move_cash(ctx, gate, victim, neg_paid, cost.cell(), short, sel);
    let fund_id = ctx.load_constant(Fr::from(INSURANCE_FUND));
    eq_if(ctx, gate, fund.index.cell(), fund_id, sel);
    let neg_deficit = gate.neg(ctx, deficit);
    move_cash(ctx, gate, fund, neg_deficit, zero, short, sel);
    move_cash(ctx, gate, liq, cost.cell(), neg_cost, short, sel);
    let liq_delta = gate.neg(ctx, victim_delta);
    move_position(
        ctx,
        range,
        liq,
        &series,
        Move::By(liq_delta),
        slot.ports[2].position_slot,
        sel,
    );

    // 12. The liquidator meets initial margin afterwards, no exception.
    let lm = &margins.after[1];
    let initial = meets(ctx, range, &lm.im_equity, &lm.initial);
    eq_if(ctx, gate, initial, one, sel);

    // Nothing else changes.
    let cash_and_positions = Keep {
        positions: false,
        ..Keep::ALL
    };
    keep(ctx, gate, victim, cash_and_positions, sel);
    keep(ctx, gate, fund, Keep::ALL, sel);
    let nonce_too = Keep {
        nonce: false,
        ..cash_and_positions
    };
    keep(ctx, gate, liq, nonce_too, sel);

    let kind = ctx.load_constant(Fr::from(u64::from(record::LIQUIDATE)));
    let order = [
        liq.index.cell(),
        victim.index.cell(),
        series.cell(),
        max_size.cell(),
        limit.cell(),
        nonce.cell(),
    ];
    let mut fields = vec![kind, size.cell()];
    fields.extend(order);
    let mut signed = vec![
        ctx.load_constant(domain_tag(tags::LIQUIDATION)),
        ctx.load_constant(Fr::from(env.params.chain_id)),
    ];
    signed.extend(order);
    (fields, env.poseidon.hash(ctx, gate, &signed))
}

fn idle() -> Liquidate {
    Liquidate {
        order: collar_protocol::tx::LiquidationOrder {
            liquidator: 0,
            victim: 0,
            series: 0,
            max_size: 0,
            limit_price: 0,
            nonce: 0,
        },
        size: 0,
    }
}
