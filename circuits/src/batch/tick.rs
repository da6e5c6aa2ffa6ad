//! The tick lane: §7.6 oracle ticks, §8 quorum medians and §9 breaker trips, once per batch
//! before the slots. A batch carries at most one tick, as its first transaction; without one the
//! lane is constrained to change nothing and to commit nothing.
//!
//! Reports are laid out at fixed positions (`TickLayout`): a spot per (underlying, oracle) and a
//! mark per (series, oracle), 0 where absent, so that duplicates are impossible by construction
//! and "every report quotes the same series" holds by the layout. The lower median `m` of the
//! `n` present values is witnessed and constrained by counting: with `lt = #{v < m}` and
//! `le = #{v <= m}`, `2·lt < n <= 2·le`, which holds exactly for the element at index
//! `(n - 1) div 2` of the sorted values.

use collar_protocol::field::domain_tag;
use collar_protocol::params::{bounds, BPS};
use collar_protocol::pubdata::record;
use collar_protocol::tx::tags;
use collar_protocol::PublicKey;
use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::QuantumCell::Constant;
use halo2_base::{AssignedValue, Context};

use super::gadgets::eq_if;
use super::witness::TickWitness;
use crate::market::{AssignedSeries, AssignedUnderlying};
use crate::poseidon::PoseidonChip;
use crate::safe::Ranged;
use crate::schnorr::{IdleCells, Lane, SchnorrChip};

/// What the lane leaves for the rest of the batch.
pub(super) struct TickLane {
    /// The state time after the lane.
    pub(super) now: Ranged,
    /// The registry after the lane (marks and settlement prices, leaves rehashed).
    pub(super) series: Vec<AssignedSeries>,
    /// The underlyings after the lane (spot, last update, breaker, leaves rehashed).
    pub(super) underlyings: Vec<AssignedUnderlying>,
    /// The public-data chain after the lane (0 without a tick).
    pub(super) pubdata: AssignedValue<Fr>,
    /// The tick commitment (public input 3; 0 without a tick).
    pub(super) commitment: AssignedValue<Fr>,
    /// Whether the lane holds a tick, and the fixed tick form its record hashes (§10).
    pub(super) record: (AssignedValue<Fr>, Vec<AssignedValue<Fr>>),
}

/// Inputs of the lane that come from the rest of the batch circuit.
pub(super) struct LaneInputs<'a> {
    pub(super) poseidon: &'a PoseidonChip,
    pub(super) params: &'a collar_protocol::ProtocolParams,
    /// The header's oracle-registry hash (opened here).
    pub(super) oracles_hash: AssignedValue<Fr>,
    /// The state time before the batch.
    pub(super) now: Ranged,
}

/// `#{present v < m}` and `#{present v <= m}` over `values` with presence bits `present`.
fn rank(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    values: &[Ranged],
    present: &[AssignedValue<Fr>],
    m: &Ranged,
) -> (AssignedValue<Fr>, AssignedValue<Fr>) {
    let gate = range.gate();
    let mut lt = Vec::with_capacity(values.len());
    let mut le = Vec::with_capacity(values.len());
    for (v, p) in values.iter().zip(present) {
        let below = v.is_lt(ctx, range, m);
        let above = m.is_lt(ctx, range, v);
        let at_most = gate.not(ctx, above);
        lt.push(gate.mul(ctx, below, *p));
        le.push(gate.mul(ctx, at_most, *p));
    }
    (gate.sum(ctx, lt), gate.sum(ctx, le))
}

/// Under `sel`: `m` is the lower median of the `count` present values (`2·lt < count <= 2·le`);
/// otherwise `m == 0`.
#[allow(clippy::too_many_arguments)]
fn lower_median(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    values: &[Ranged],
    present: &[AssignedValue<Fr>],
    count: AssignedValue<Fr>,
    m: &Ranged,
    sel: AssignedValue<Fr>,
    count_bits: usize,
) {
    let gate = range.gate();
    let (lt, le) = rank(ctx, range, values, present, m);
    let two_lt = gate.mul(ctx, lt, Constant(Fr::from(2)));
    let two_le = gate.mul(ctx, le, Constant(Fr::from(2)));
    let one = ctx.load_constant(Fr::one());
    let zero = ctx.load_zero();
    let below_half = range.is_less_than(ctx, two_lt, count, count_bits + 1);
    eq_if(ctx, gate, below_half, one, sel);
    let short = range.is_less_than(ctx, two_le, count, count_bits + 1);
    eq_if(ctx, gate, short, zero, sel);
    let off = gate.not(ctx, sel);
    eq_if(ctx, gate, m.cell(), zero, off);
}

/// `x == 0` whenever `allowed == 0`: `x·(1 - allowed) == 0`.
fn zero_unless(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    x: AssignedValue<Fr>,
    allowed: AssignedValue<Fr>,
) {
    let zero = ctx.load_zero();
    let off = gate.not(ctx, allowed);
    eq_if(ctx, gate, x, zero, off);
}

/// Builds the tick lane on the lists loaded at the start of the batch. `tick` is the batch's
/// tick (`None`: the lane is idle). Assumes `series` and `underlyings` come from
/// `assign_series` / `assign_underlyings` (range-checked, hashed into the old header) and
/// `oracles` is the registry of the state before the batch (at most `max_oracles` keys).
pub(super) fn constrain(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    inp: &LaneInputs<'_>,
    tick: Option<&TickWitness>,
    oracles: &[PublicKey],
    series: &[AssignedSeries],
    underlyings: &[AssignedUnderlying],
) -> TickLane {
    let gate = range.gate();
    let p = inp.params;
    let (nu, no, ns) = (p.max_underlyings, p.max_oracles, p.max_series);
    assert!(oracles.len() <= no, "more oracles than the registry holds");
    let idle = TickWitness::idle(p);
    let w = tick.unwrap_or(&idle);
    let zero = ctx.load_zero();
    let one = ctx.load_constant(Fr::one());
    // Counts of reports are at most max_oracles (<= 256): 9 bits.
    let count_bits = (usize::BITS - no.leading_zeros()) as usize;

    let active = ctx.load_witness(Fr::from(u64::from(tick.is_some())));
    gate.assert_bit(ctx, active);
    let inactive = gate.not(ctx, active);

    // §7.6 rule 1: strictly after the state time, below 2^40. Idle: timestamp 0.
    let ts = Ranged::load(ctx, range, Fr::from(w.layout.timestamp), bounds::TIME_BITS);
    let later = inp.now.is_lt(ctx, range, &ts);
    eq_if(ctx, gate, later, one, active);
    eq_if(ctx, gate, ts.cell(), zero, inactive);

    // The oracle registry, opened against the header: a slot is registered iff its key is not
    // (0, 0) (registered keys are curve points; the list is zero-padded).
    let mut preimage = vec![ctx.load_constant(Fr::from(p.oracle_quorum as u64))];
    let mut registered = Vec::with_capacity(no);
    let mut keys = Vec::with_capacity(no);
    for j in 0..no {
        let k = oracles.get(j).copied().unwrap_or(PublicKey::ZERO);
        let x = ctx.load_witness(k.x);
        let y = ctx.load_witness(k.y);
        keys.push([x, y]);
        let zx = gate.is_zero(ctx, x);
        let zy = gate.is_zero(ctx, y);
        let none = gate.and(ctx, zx, zy);
        registered.push(gate.not(ctx, none));
        preimage.extend([x, y]);
    }
    let opened = inp.poseidon.hash(ctx, gate, &preimage);
    ctx.constrain_equal(&opened, &inp.oracles_hash);
    let quorum = Constant(Fr::from(p.oracle_quorum as u64));

    // Per underlying: the block's presence, its reports' spots (§8 rule 3), the quorum (rule 1)
    // and the median spot.
    let mut priced = Vec::with_capacity(nu);
    let mut present = Vec::with_capacity(nu);
    let mut counts = Vec::with_capacity(nu);
    let mut medians = Vec::with_capacity(nu);
    let mut spot_rows = Vec::with_capacity(nu);
    for (u, und) in underlyings.iter().enumerate() {
        let pu = ctx.load_witness(Fr::from(u64::from(w.layout.priced[u])));
        gate.assert_bit(ctx, pu);
        zero_unless(ctx, gate, pu, active);
        zero_unless(ctx, gate, pu, und.used);
        let spots: Vec<Ranged> = (0..no)
            .map(|j| {
                let v = Fr::from(w.layout.spots[u][j]);
                Ranged::load(ctx, range, v, bounds::UNIT_PRICE_BITS)
            })
            .collect();
        let here: Vec<AssignedValue<Fr>> = spots
            .iter()
            .zip(&registered)
            .map(|(s, reg)| {
                let z = gate.is_zero(ctx, s.cell());
                let is = gate.not(ctx, z);
                // A report only in a priced block, only from a registered oracle.
                zero_unless(ctx, gate, is, pu);
                zero_unless(ctx, gate, is, *reg);
                is
            })
            .collect();
        let count = gate.sum(ctx, here.iter().copied());
        let short = range.is_less_than(ctx, count, quorum, count_bits + 1);
        eq_if(ctx, gate, short, zero, pu);
        let m = Ranged::load(
            ctx,
            range,
            Fr::from(w.spot_median[u]),
            bounds::UNIT_PRICE_BITS,
        );
        lower_median(ctx, range, &spots, &here, count, &m, pu, count_bits);
        priced.push(pu);
        spot_rows.push(spots);
        present.push(here);
        counts.push(count);
        medians.push(m);
    }
    // §7.6 rule 2: at least one underlying.
    let blocks = gate.sum(ctx, priced.iter().copied());
    let none = gate.is_zero(ctx, blocks);
    eq_if(ctx, gate, none, zero, active);

    // §9 breaker and §7.6 rules 4–5 on each underlying.
    let bps = Ranged::constant(ctx, u128::from(BPS));
    let mut new_unds = Vec::with_capacity(nu);
    for (u, und) in underlyings.iter().enumerate() {
        let (pu, m) = (priced[u], &medians[u]);
        let old = &und.spot;
        let had = gate.is_zero(ctx, old.cell());
        let had = gate.not(ctx, had);
        let down = m.is_lt(ctx, range, old);
        let up_diff = gate.sub(ctx, m.cell(), old.cell());
        let down_diff = gate.sub(ctx, old.cell(), m.cell());
        let diff = gate.select(ctx, down_diff, up_diff, down);
        let diff = Ranged::check(ctx, range, diff, bounds::UNIT_PRICE_BITS);
        let moved = diff.mul(ctx, gate, &bps);
        let allowed = und.rates[3].mul(ctx, gate, old);
        let too_far = allowed.is_lt(ctx, range, &moved);
        let elapsed = ts.saturating_sub(ctx, range, &und.last_update);
        let stale = und.durations[0].is_lt(ctx, range, &elapsed);
        let either = gate.or(ctx, too_far, stale);
        let tripped = gate.and(ctx, had, either);
        let trips = gate.and(ctx, tripped, pu);
        // tripped_until = timestamp + cooldown must stay below 2^40 (else the tick is refused).
        let until = ts.add(ctx, gate, &und.durations[1]);
        let until = gate.mul(ctx, until.cell(), trips);
        let until = Ranged::check(ctx, range, until, bounds::TIME_BITS);
        let mut n = und.clone();
        n.tripped_until = Ranged::select(ctx, gate, &until, &und.tripped_until, trips);
        n.spot = Ranged::select(ctx, gate, m, &und.spot, pu);
        n.last_update = Ranged::select(ctx, gate, &ts, &und.last_update, pu);
        n.leaf = n.rehash(ctx, gate, inp.poseidon);
        new_unds.push(n);
    }

    // Per series: quoted marks (§8 rule 2), their medians, and settlement at expiry (§7.6
    // rule 6).
    // §6.5: each report's marks chain `c ← H(c, s·2^64 + m)`, absorbed series by series into
    // the chain of the report (underlying of s, oracle j) when that report quotes s.
    let mut chains = vec![vec![zero; no]; nu];
    let shift = Fr::from(u64::MAX) + Fr::one();
    let mut quoted = Vec::with_capacity(ns);
    let mut mark_medians = Vec::with_capacity(ns);
    let mut marks_all = Vec::with_capacity(ns);
    let mut new_series = Vec::with_capacity(ns);
    for (s, entry) in series.iter().enumerate() {
        let q = ctx.load_witness(Fr::from(u64::from(w.layout.quoted[s] != 0)));
        gate.assert_bit(ctx, q);
        let su = entry.underlying.cell();
        // Quoted only if registered, of a priced underlying, and not expired at the tick.
        zero_unless(ctx, gate, q, entry.used);
        // One indicator over the underlyings serves every per-underlying value this series
        // reads (`select_from_idx` would rebuild it per value).
        let und_ind = gate.idx_to_indicator(ctx, su, priced.len());
        let by_und = |ctx: &mut Context<Fr>,
                      values: &mut dyn Iterator<Item = AssignedValue<Fr>>| {
            gate.select_by_indicator(ctx, values, und_ind.iter().copied())
        };
        let block = by_und(ctx, &mut priced.iter().copied());
        zero_unless(ctx, gate, q, block);
        let live = ts.is_lt(ctx, range, &entry.expiry);
        zero_unless(ctx, gate, q, live);
        let count = by_und(ctx, &mut counts.iter().copied());
        let mut marks = Vec::with_capacity(no);
        let mut here = Vec::with_capacity(no);
        for j in 0..no {
            let v = Fr::from(w.layout.marks[s][j]);
            let mk = Ranged::load(ctx, range, v, bounds::CONTRACT_PRICE_BITS);
            let reported = by_und(ctx, &mut present.iter().map(|row: &Vec<_>| row[j]));
            let is = gate.mul(ctx, q, reported);
            zero_unless(ctx, gate, mk.cell(), is);
            let current = gate.select_by_indicator(
                ctx,
                chains.iter().map(|row: &Vec<AssignedValue<Fr>>| row[j]),
                und_ind.iter().copied(),
            );
            let link = gate.add(ctx, mk.cell(), Constant(Fr::from(s as u64) * shift));
            let next = inp.poseidon.hash(ctx, gate, &[current, link]);
            for (u, row) in chains.iter_mut().enumerate() {
                let takes = gate.mul(ctx, und_ind[u], is);
                row[j] = gate.select(ctx, next, row[j], takes);
            }
            marks.push(mk);
            here.push(is);
        }
        let mm = Ranged::load(
            ctx,
            range,
            Fr::from(w.mark_median[s]),
            bounds::CONTRACT_PRICE_BITS,
        );
        lower_median(ctx, range, &marks, &here, count, &mm, q, count_bits);

        // Settlement: a registered series of a priced underlying, expired at the tick, not yet
        // settled, takes the median spot as settlement price and its intrinsic value as mark.
        let spot = Ranged::select_by_indicator(ctx, gate, &medians, &und_ind);
        let expired = gate.not(ctx, live);
        let unsettled = gate.is_zero(ctx, entry.settlement_price.cell());
        let settles = gate.and(ctx, entry.used, block);
        let settles = gate.and(ctx, settles, expired);
        let settles = gate.and(ctx, settles, unsettled);
        let call = spot.saturating_sub(ctx, range, &entry.strike);
        let put = entry.strike.saturating_sub(ctx, range, &spot);
        let per_unit = Ranged::select(ctx, gate, &put, &call, entry.is_put);
        let intrinsic = entry.contract_size.mul(ctx, gate, &per_unit);
        let quoted_mark = Ranged::select(ctx, gate, &mm, &entry.mark, q);
        let mut n = entry.clone();
        n.mark = Ranged::select(ctx, gate, &intrinsic, &quoted_mark, settles);
        n.settlement_price = Ranged::select(ctx, gate, &spot, &entry.settlement_price, settles);
        n.leaf = n.rehash(ctx, gate, inp.poseidon);
        new_series.push(n);
        // The layout code of the series: `u + 1` when quoted.
        let su1 = gate.add(ctx, su, Constant(Fr::one()));
        quoted.push((q, gate.mul(ctx, q, su1)));
        mark_medians.push(mm);
        marks_all.push(marks);
    }

    // §6.3, §6.5: every report's signature, by its oracle's registered key, on the message
    // `H(T_oracle, chain_id, oracle, underlying, timestamp, spot, marks chain)`; a slot with no
    // report verifies the idle stand-in.
    let schnorr = SchnorrChip::new(range);
    let idle = IdleCells::load(ctx);
    let oracle_tag = ctx.load_constant(domain_tag(tags::ORACLE));
    let chain_id = ctx.load_constant(Fr::from(p.chain_id));
    for u in 0..nu {
        let und = ctx.load_constant(Fr::from(u as u64));
        for j in 0..no {
            let oracle = ctx.load_constant(Fr::from(j as u64));
            let m = inp.poseidon.hash(
                ctx,
                gate,
                &[
                    oracle_tag,
                    chain_id,
                    oracle,
                    und,
                    ts.cell(),
                    spot_rows[u][j].cell(),
                    chains[u][j],
                ],
            );
            let lane = Lane {
                active: present[u][j],
                key: keys[j],
                m,
            };
            schnorr.verify_lane(ctx, inp.poseidon, &idle, lane, w.signatures[u][j].as_ref());
        }
    }

    // The record hash over the fixed tick form (§10) and the tick commitment (§11).
    let mut form = vec![
        ctx.load_constant(Fr::from(u64::from(record::TICK))),
        ts.cell(),
    ];
    for (pu, spots) in priced.iter().zip(&spot_rows) {
        form.push(*pu);
        form.extend(spots.iter().map(Ranged::cell));
    }
    for ((_, code), marks) in quoted.iter().zip(&marks_all) {
        form.push(*code);
        form.extend(marks.iter().map(Ranged::cell));
    }
    let record = inp.poseidon.hash(ctx, gate, &form);
    let pubdata_tag = ctx.load_constant(domain_tag(tags::PUBDATA));
    let chained = inp.poseidon.hash(ctx, gate, &[pubdata_tag, zero, record]);
    let pubdata = gate.mul(ctx, chained, active);

    let mut prices = Vec::with_capacity(2 * (nu + ns));
    for (pu, m) in priced.iter().zip(&medians) {
        prices.extend([*pu, m.cell()]);
    }
    for ((q, _), mm) in quoted.iter().zip(&mark_medians) {
        prices.extend([*q, mm.cell()]);
    }
    let prices = inp.poseidon.hash(ctx, gate, &prices);
    let tick_tag = ctx.load_constant(domain_tag(tags::TICK_CHAIN));
    let step = inp
        .poseidon
        .hash(ctx, gate, &[tick_tag, zero, ts.cell(), prices]);
    let commitment = gate.mul(ctx, step, active);

    // The state time: the tick's timestamp, or unchanged.
    let now = Ranged::select(ctx, gate, &ts, &inp.now, active);
    TickLane {
        now,
        series: new_series,
        underlyings: new_unds,
        pubdata,
        commitment,
        record: (active, form),
    }
}
