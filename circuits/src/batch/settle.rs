//! §7.5 Settle expiry: an expired position closes at intrinsic value against the insurance fund,
//! on ports 0 (the account) and 1 (the fund).

use collar_protocol::pubdata::record;
use collar_protocol::{Tx, INSURANCE_FUND};
use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};

use super::gadgets::{
    abs, eq_if, keep, move_cash, move_position, pay_capped, Keep, Move, SeriesRead,
};
use super::witness::SlotWitness;
use super::{AssignedPort, SlotEnv};
use crate::account::SERIES_BITS;
use crate::safe::Ranged;

/// Constrains `slot` as an expiry settlement under `sel` and returns the field form of its
/// public-data record (§10), computed whatever the type.
pub(super) fn constrain(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    env: &SlotEnv<'_>,
    slot: &SlotWitness,
    ports: &[AssignedPort],
    sel: AssignedValue<Fr>,
) -> Vec<AssignedValue<Fr>> {
    let gate = range.gate();
    let series_id = match &slot.tx {
        Some(Tx::SettleExpiry(s)) => s.series,
        _ => 0,
    };
    let zero = ctx.load_zero();
    let one = ctx.load_constant(Fr::one());
    let series = Ranged::load(ctx, range, Fr::from(u64::from(series_id)), SERIES_BITS);
    let (acc, fund) = (&ports[0], &ports[1]);

    // 1. A registered series with a settlement price; the fund is the counterparty.
    let terms = SeriesRead::new(ctx, range, env.view, &series);
    eq_if(ctx, gate, terms.registered, one, sel);
    let unsettled = gate.is_zero(ctx, terms.settlement_price.cell());
    eq_if(ctx, gate, unsettled, zero, sel);
    let fund_id = ctx.load_constant(Fr::from(INSURANCE_FUND));
    eq_if(ctx, gate, fund.index.cell(), fund_id, sel);

    // 2. The account exists and holds Q != 0 in the series; 6. the slot empties.
    eq_if(ctx, gate, acc.before.exists, one, sel);
    let mv = move_position(
        ctx,
        range,
        acc,
        &series,
        Move::Close,
        slot.ports[0].position_slot,
        sel,
    );
    let (size, short) = abs(ctx, range, &mv.before);

    // 3. value = |Q|·cs·max(S-K, 0) for a call, |Q|·cs·max(K-S, 0) for a put; exact.
    let above = terms
        .settlement_price
        .saturating_sub(ctx, range, &terms.strike);
    let below = terms
        .strike
        .saturating_sub(ctx, range, &terms.settlement_price);
    let per_unit = Ranged::select(ctx, gate, &below, &above, terms.is_put);
    let intrinsic = terms.contract_size.mul(ctx, gate, &per_unit);
    let value = size.mul(ctx, gate, &intrinsic);

    // 4. Long: the fund pays in full (its new collateral's 63-bit range check rules out
    // paying more than it holds). 5. Short: the account pays min(value, collateral); a
    // shortfall only for an account holding no long.
    let short_sel = gate.mul(ctx, sel, short);
    let (paid, _) = pay_capped(ctx, range, &value, &acc.before, &acc.before, short_sel);
    let neg_paid = gate.neg(ctx, paid.cell());
    let neg_value = gate.neg(ctx, value.cell());
    move_cash(ctx, gate, acc, neg_paid, value.cell(), short, sel);
    move_cash(ctx, gate, fund, paid.cell(), neg_value, short, sel);

    // Nothing else changes.
    let untouched = Keep {
        positions: false,
        ..Keep::ALL
    };
    keep(ctx, gate, acc, untouched, sel);
    keep(ctx, gate, fund, Keep::ALL, sel);

    let kind = ctx.load_constant(Fr::from(u64::from(record::SETTLE)));
    vec![kind, acc.index.cell(), series.cell()]
}
