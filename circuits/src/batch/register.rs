//! §7.7 Register series: the operator appends a series to the registry. The only slot type that
//! writes no account: it rewrites the registry slot at index `series_count`.

use collar_protocol::params::bounds;
use collar_protocol::pubdata::record;
use collar_protocol::Tx;
use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::QuantumCell::Constant;
use halo2_base::{AssignedValue, Context};

use super::gadgets::eq_if;
use super::witness::SlotWitness;
use super::SlotEnv;
use crate::market::AssignedSeries;
use crate::safe::Ranged;

/// Constrains `slot` as a registration under `sel`; returns the field form of its public-data
/// record (§10) and the registry after the slot (unchanged unless `sel`).
pub(super) fn constrain(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    env: &SlotEnv<'_>,
    slot: &SlotWitness,
    sel: AssignedValue<Fr>,
) -> (Vec<AssignedValue<Fr>>, Vec<AssignedSeries>) {
    let gate = range.gate();
    let (u, strike, expiry, kind, cs) = match &slot.tx {
        Some(Tx::RegisterSeries(r)) => (
            u64::from(r.underlying),
            r.strike,
            r.expiry,
            r.kind.code(),
            r.contract_size,
        ),
        _ => (0, 0, 0, 0, 0),
    };
    let zero = ctx.load_zero();
    let one = ctx.load_constant(Fr::one());
    let mut load = |v: u64, bits: u32| Ranged::load(ctx, range, Fr::from(v), bits);
    let underlying = load(u, 8);
    let strike = load(strike, bounds::UNIT_PRICE_BITS);
    let expiry = load(expiry, bounds::TIME_BITS);
    let contract_size = load(cs, bounds::CONTRACT_SIZE_BITS);
    let is_put = ctx.load_witness(Fr::from(kind));
    gate.assert_bit(ctx, is_put);
    let view = env.view;
    let capacity = view.series.len();

    // 1. Room in the registry: series_count != capacity.
    let full = gate.is_equal(ctx, view.series_count, Constant(Fr::from(capacity as u64)));
    eq_if(ctx, gate, full, zero, sel);
    // 2. A configured underlying.
    let underlyings = gate.sum(ctx, view.underlyings.iter().map(|x| x.used));
    let known = range.is_less_than(ctx, underlying.cell(), underlyings, 9);
    eq_if(ctx, gate, known, one, sel);
    // 3–5. Positive strike and contract size; expiry after the current time.
    for v in [&strike, &contract_size] {
        let z = gate.is_zero(ctx, v.cell());
        eq_if(ctx, gate, z, zero, sel);
    }
    let future = env.now.is_lt(ctx, range, &expiry);
    eq_if(ctx, gate, future, one, sel);
    // 6. No registered series with the same terms.
    let mut duplicates = Vec::with_capacity(capacity);
    for s in view.series {
        let pairs = [
            (s.underlying.cell(), underlying.cell()),
            (s.strike.cell(), strike.cell()),
            (s.expiry.cell(), expiry.cell()),
            (s.is_put, is_put),
            (s.contract_size.cell(), contract_size.cell()),
        ];
        let mut same = s.used;
        for (a, b) in pairs {
            let e = gate.is_equal(ctx, a, b);
            same = gate.and(ctx, same, e);
        }
        duplicates.push(same);
    }
    let duplicates = gate.sum(ctx, duplicates);
    eq_if(ctx, gate, duplicates, zero, sel);

    // The new entry: mark and settlement price 0, at index series_count.
    let fields = [
        underlying.cell(),
        strike.cell(),
        expiry.cell(),
        is_put,
        contract_size.cell(),
        zero,
        zero,
    ];
    let leaf = env.poseidon.hash(ctx, gate, &fields);
    let ind = gate.idx_to_indicator(ctx, view.series_count, capacity);
    let zero_price = Ranged::constant(ctx, 0);
    let next = view
        .series
        .iter()
        .zip(ind)
        .map(|(s, i)| {
            let w = gate.mul(ctx, i, sel);
            let pick = |ctx: &mut Context<Fr>, new: &Ranged, old: &Ranged| {
                Ranged::select(ctx, gate, new, old, w)
            };
            AssignedSeries {
                used: gate.select(ctx, one, s.used, w),
                underlying: pick(ctx, &underlying, &s.underlying),
                strike: pick(ctx, &strike, &s.strike),
                expiry: pick(ctx, &expiry, &s.expiry),
                is_put: gate.select(ctx, is_put, s.is_put, w),
                contract_size: pick(ctx, &contract_size, &s.contract_size),
                mark: pick(ctx, &zero_price, &s.mark),
                settlement_price: pick(ctx, &zero_price, &s.settlement_price),
                leaf: gate.select(ctx, leaf, s.leaf, w),
            }
        })
        .collect();

    let kind_tag = ctx.load_constant(Fr::from(u64::from(record::REGISTER)));
    let record = vec![
        kind_tag,
        underlying.cell(),
        strike.cell(),
        expiry.cell(),
        is_put,
        contract_size.cell(),
    ];
    (record, next)
}
