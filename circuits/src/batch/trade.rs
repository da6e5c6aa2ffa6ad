//! §7.3 Trade: two signed orders filled against each other, on ports 0 (buyer), 1 (seller) and
//! 2 (the fee account).

use collar_protocol::field::domain_tag;
use collar_protocol::params::bounds;
use collar_protocol::pubdata::record;
use collar_protocol::tx::{tags, Order, Side, Trade};
use collar_protocol::Tx;
use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::utils::ScalarField;
use halo2_base::QuantumCell::{Constant, Existing};
use halo2_base::{AssignedValue, Context};

use super::gadgets::{eq_if, keep, move_position, underlying_halted, Keep, Move, SeriesRead};
use super::witness::{OrderFillWitness, SlotWitness};
use super::{AssignedPort, PortMargins, SlotEnv};
use crate::account::SERIES_BITS;
use crate::margin::{meets, AssignedMargin};
use crate::merkle::update_with_cells;
use crate::safe::Ranged;

/// The signed fields of one order, range-checked to their §7.3 bounds.
struct OrderCells {
    limit_price: Ranged,
    max_size: Ranged,
    order_id: Ranged,
    expiry: Ranged,
    max_fee_bps: Ranged,
}

impl OrderCells {
    fn load(ctx: &mut Context<Fr>, range: &RangeChip<Fr>, o: &Order) -> Self {
        let mut load = |v: u64, bits: u32| Ranged::load(ctx, range, Fr::from(v), bits);
        Self {
            limit_price: load(o.limit_price, bounds::CONTRACT_PRICE_BITS),
            max_size: load(o.max_size, bounds::SIZE_BITS),
            order_id: load(o.order_id, bounds::NONCE_BITS),
            expiry: load(o.expiry, bounds::TIME_BITS),
            max_fee_bps: load(o.max_fee_bps, bounds::BPS_BITS),
        }
    }
}

/// A zero order for slots that are not trades (every constraint on it is switched off).
fn idle_order() -> Order {
    Order {
        account: 0,
        series: 0,
        side: Side::Buy,
        limit_price: 0,
        max_size: 0,
        order_id: 0,
        expiry: 0,
        max_fee_bps: 0,
    }
}

/// Constrains slot `slot` as a trade under `sel` and returns the field form of its public-data
/// record (§10) and the messages of its buy and sell orders (§6.5), computed whatever the type (the
/// caller selects them).
pub(super) fn constrain(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    env: &SlotEnv<'_>,
    slot: &SlotWitness,
    ports: &[AssignedPort],
    margins: &PortMargins,
    sel: AssignedValue<Fr>,
) -> (Vec<AssignedValue<Fr>>, [AssignedValue<Fr>; 2]) {
    let gate = range.gate();
    let idle = Trade {
        buy: idle_order(),
        sell: idle_order(),
        size: 0,
        price: 0,
    };
    let t = match &slot.tx {
        Some(Tx::Trade(t)) => t,
        _ => &idle,
    };
    let zero = ctx.load_zero();
    let one = ctx.load_constant(Fr::one());
    let size = Ranged::load(ctx, range, Fr::from(t.size), bounds::SIZE_BITS);
    let price = Ranged::load(ctx, range, Fr::from(t.price), bounds::CONTRACT_PRICE_BITS);
    // One series cell for both orders: the record carries it twice, so differing series cannot
    // be expressed.
    let series = Ranged::load(ctx, range, Fr::from(u64::from(t.buy.series)), SERIES_BITS);
    let orders = [
        OrderCells::load(ctx, range, &t.buy),
        OrderCells::load(ctx, range, &t.sell),
    ];
    let [buyer, seller, fee_port] = [&ports[0], &ports[1], &ports[2]];

    // 1–3. Different accounts; a positive size.
    let same = gate.is_equal(ctx, buyer.index.cell(), seller.index.cell());
    eq_if(ctx, gate, same, zero, sel);
    let size_zero = gate.is_zero(ctx, size.cell());
    eq_if(ctx, gate, size_zero, zero, sel);

    // 5. The series is registered, live, and its underlying has a price.
    let view = env.view;
    let terms = SeriesRead::new(ctx, range, view, &series);
    terms.require_live(ctx, range, &env.now, sel);
    let underlying = terms.underlying;

    // 6. Price within both limits.
    let above_buy = orders[0].limit_price.is_lt(ctx, range, &price);
    eq_if(ctx, gate, above_buy, zero, sel);
    let below_sell = price.is_lt(ctx, range, &orders[1].limit_price);
    eq_if(ctx, gate, below_sell, zero, sel);

    // 7. Orders not expired at the state time; the fee rate within each order's cap.
    let fee_bps = Ranged::constant(ctx, u128::from(env.params.trade_fee_bps));
    for o in &orders {
        let expired = o.expiry.is_lt(ctx, range, &env.now);
        eq_if(ctx, gate, expired, zero, sel);
        let over_cap = o.max_fee_bps.is_lt(ctx, range, &fee_bps);
        eq_if(ctx, gate, over_cap, zero, sel);
    }

    // Cash: premium = size·price exactly, fee = ceil_bps(premium, rate) (§5.4).
    let premium = size.mul(ctx, gate, &price);
    let fee = premium.ceil_bps(ctx, range, &fee_bps);
    let halted = underlying_halted(ctx, range, view, &underlying, &env.now);
    let neg_size = gate.neg(ctx, size.cell());
    let sides = [(buyer, size.cell(), 0usize), (seller, neg_size, 1usize)];
    for (port, delta, i) in sides {
        let (b, a) = (&port.before, &port.after);
        // 8. The account exists; key and nonce do not change.
        eq_if(ctx, gate, b.exists, one, sel);
        let key_and_nonce = Keep {
            key: true,
            nonce: true,
            ..Keep::default()
        };
        keep(ctx, gate, port, key_and_nonce, sel);
        // 9. The fill.
        let fill_w = &slot.ports[i].order;
        fill_order(ctx, range, env, port, &orders[i], &size, fill_w, sel);
        // 10. Cash. The new collateral is range-checked to 63 bits by its leaf, so a debit past
        // zero or a credit to 2^63 cannot be expressed.
        let cash = if i == 0 {
            let paid = gate.add(ctx, premium.cell(), fee.cell());
            gate.sub(ctx, b.collateral.cell(), paid)
        } else {
            let got = gate.sub(ctx, premium.cell(), fee.cell());
            gate.add(ctx, b.collateral.cell(), got)
        };
        eq_if(ctx, gate, a.collateral.cell(), cash, sel);
        // 11–12. The position moves by ±size, and only towards zero under a halt.
        let new_size = move_position(
            ctx,
            range,
            port,
            &series,
            Move::By(delta),
            slot.ports[i].position_slot,
            sel,
        )
        .after;
        let zero_signed = Ranged::constant(ctx, 0).to_signed();
        let reduces = if i == 0 {
            zero_signed.is_ge(ctx, range, &new_size)
        } else {
            new_size.is_ge(ctx, range, &zero_signed)
        };
        let halt_sel = gate.mul(ctx, halted, sel);
        eq_if(ctx, gate, reduces, one, halt_sel);
        // 13. Initial margin, or the trade exception (§5.3).
        let ok = initial_or_reducing(ctx, range, &margins.before[i], &margins.after[i]);
        eq_if(ctx, gate, ok, one, sel);
    }

    // The fee account receives both fees; nothing else of it changes.
    let fee_id = ctx.load_constant(Fr::from(collar_protocol::FEE_ACCOUNT));
    eq_if(ctx, gate, fee_port.index.cell(), fee_id, sel);
    let credited = gate.mul_add(
        ctx,
        fee.cell(),
        Constant(Fr::from(2u64)),
        fee_port.before.collateral.cell(),
    );
    eq_if(ctx, gate, fee_port.after.collateral.cell(), credited, sel);
    keep(ctx, gate, fee_port, Keep::ALL, sel);

    // The record (§10): type, size, price, then each order with its account taken from its
    // port, the shared series and the side fixed by its position. The same eight fields of an
    // order, after its tag and the chain id, are the message its account signed (§6.5).
    let mut fields = vec![
        ctx.load_constant(Fr::from(u64::from(record::TRADE))),
        size.cell(),
        price.cell(),
    ];
    let order_tag = ctx.load_constant(domain_tag(tags::ORDER));
    let chain_id = ctx.load_constant(Fr::from(env.params.chain_id));
    let mut messages = Vec::with_capacity(2);
    for (port, (o, side)) in [buyer, seller]
        .into_iter()
        .zip(orders.iter().zip([Side::Buy, Side::Sell]))
    {
        let order = [
            port.index.cell(),
            series.cell(),
            ctx.load_constant(Fr::from(side.code())),
            o.limit_price.cell(),
            o.max_size.cell(),
            o.order_id.cell(),
            o.expiry.cell(),
            o.max_fee_bps.cell(),
        ];
        fields.extend(order);
        let mut signed = vec![order_tag, chain_id];
        signed.extend(order);
        messages.push(env.poseidon.hash(ctx, gate, &signed));
    }
    (fields, [messages[0], messages[1]])
}

/// §4.4: records a fill of `size` on `order` in its slot of `port`'s order subtree, under `sel`.
///
/// The slot is `order_id mod 2^D`; its stored `(id, filled)` is empty (leaf 0) or `H(id,
/// filled)`; `id > order_id` is stale; the count continues for `id == order_id` and restarts
/// otherwise; the new count must not exceed `max_size`.
#[allow(clippy::too_many_arguments)]
fn fill_order(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    env: &SlotEnv<'_>,
    port: &AssignedPort,
    order: &OrderCells,
    size: &Ranged,
    w: &OrderFillWitness,
    sel: AssignedValue<Fr>,
) {
    let gate = range.gate();
    let depth = env.params.order_slot_depth;
    let zero = ctx.load_zero();
    // order_id = hi·2^D + slot, with hi < 2^(32-D) and slot < 2^D (the latter by the Merkle
    // index decomposition below).
    let id_value = order.order_id.cell().value().get_lower_64();
    let hi = Ranged::load(
        ctx,
        range,
        Fr::from(id_value >> depth),
        bounds::NONCE_BITS.saturating_sub(depth as u32).max(1),
    );
    let slot = ctx.load_witness(Fr::from(id_value & ((1u64 << depth) - 1)));
    let recomposed = gate.mul_add(
        ctx,
        hi.cell(),
        Constant(Fr::from(1u64 << depth)),
        Existing(slot),
    );
    ctx.constrain_equal(&recomposed, &order.order_id.cell());

    let stored_id = Ranged::load(ctx, range, Fr::from(w.stored.order_id), bounds::NONCE_BITS);
    let stored_filled = Ranged::load(ctx, range, Fr::from(w.stored.filled), bounds::SIZE_BITS);
    // A never-used slot reads (0, 0) with leaf 0; a written slot has filled > 0.
    let empty = gate.is_zero(ctx, stored_filled.cell());
    let stray = gate.mul(ctx, stored_id.cell(), empty);
    gate.assert_is_const(ctx, &stray, &Fr::zero());
    let stored_hash = env
        .poseidon
        .hash(ctx, gate, &[stored_id.cell(), stored_filled.cell()]);
    let old_leaf = gate.mul_not(ctx, empty, stored_hash);

    let stale = order.order_id.is_lt(ctx, range, &stored_id);
    eq_if(ctx, gate, stale, zero, sel);
    let same = gate.is_equal(ctx, stored_id.cell(), order.order_id.cell());
    let already = gate.mul(ctx, same, stored_filled.cell());
    let already = Ranged::check(ctx, range, already, bounds::SIZE_BITS);
    let filled = already.add(ctx, gate, size);
    let over = order.max_size.is_lt(ctx, range, &filled);
    eq_if(ctx, gate, over, zero, sel);
    let new_leaf = env
        .poseidon
        .hash(ctx, gate, &[order.order_id.cell(), filled.cell()]);

    let upd = update_with_cells(
        ctx,
        range,
        env.poseidon,
        slot,
        old_leaf,
        new_leaf,
        &w.siblings,
    );
    eq_if(ctx, gate, upd.old_root, port.before.orders_root, sel);
    eq_if(ctx, gate, upd.new_root, port.after.orders_root, sel);
}

/// §5.3 for a trade side: initial margin after, or all of (a) below initial before, (b)
/// `initial` does not rise, (c) the shortfall `initial - im_equity` strictly falls, (d)
/// maintenance after or already failed before. Returns the boolean cell.
fn initial_or_reducing(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    before: &AssignedMargin,
    after: &AssignedMargin,
) -> AssignedValue<Fr> {
    let gate = range.gate();
    let initial_after = meets(ctx, range, &after.im_equity, &after.initial);
    let initial_before = meets(ctx, range, &before.im_equity, &before.initial);
    let mm_after = meets(ctx, range, &after.equity, &after.maintenance);
    let mm_before = meets(ctx, range, &before.equity, &before.maintenance);
    let rises = before.initial.is_lt(ctx, range, &after.initial);
    let shortfall_before = before.initial.to_signed().sub(ctx, gate, &before.im_equity);
    let shortfall_after = after.initial.to_signed().sub(ctx, gate, &after.im_equity);
    let not_falling = shortfall_after.is_ge(ctx, range, &shortfall_before);
    let a = gate.not(ctx, initial_before);
    let b = gate.not(ctx, rises);
    let c = gate.not(ctx, not_falling);
    let mm_failed_before = gate.not(ctx, mm_before);
    let d = gate.or(ctx, mm_after, mm_failed_before);
    let ab = gate.and(ctx, a, b);
    let cd = gate.and(ctx, c, d);
    let reducing = gate.and(ctx, ab, cd);
    gate.or(ctx, initial_after, reducing)
}
