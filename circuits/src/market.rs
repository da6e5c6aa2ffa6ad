//! The series registry and underlyings as loaded once per batch (PROTOCOL.md §4.5, §4.6): every
//! entry witnessed, range-checked and hashed into the list commitments of the state header.

use collar_protocol::market::{Series, Underlying};
use collar_protocol::params::bounds;
use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::QuantumCell::Constant;
use halo2_base::{AssignedValue, Context};

use crate::poseidon::PoseidonChip;
use crate::safe::Ranged;

/// One series slot of the registry. An unused slot has every field zero and leaf 0.
#[derive(Clone, Debug)]
pub struct AssignedSeries {
    /// 1 if the slot holds a registered series.
    pub used: AssignedValue<Fr>,
    /// Underlying index (< 2^8).
    pub underlying: Ranged,
    /// Strike per unit (< 2^48).
    pub strike: Ranged,
    /// Expiry (< 2^40).
    pub expiry: Ranged,
    /// 1 for a put, 0 for a call.
    pub is_put: AssignedValue<Fr>,
    /// Contract size (< 2^16).
    pub contract_size: Ranged,
    /// Mark per contract (< 2^64).
    pub mark: Ranged,
    /// Settlement price (< 2^48), 0 until set.
    pub settlement_price: Ranged,
    /// `used ? H(fields) : 0`.
    pub leaf: AssignedValue<Fr>,
}

/// One underlying slot; an unused slot has every field zero and leaf 0.
#[derive(Clone, Debug)]
pub struct AssignedUnderlying {
    /// 1 if the slot holds a configured underlying.
    pub used: AssignedValue<Fr>,
    /// The symbol as a field element (§3.2 encoding, < 2^248).
    pub symbol: AssignedValue<Fr>,
    /// `[im_spot_bps, mm_spot_bps, put_mm_mark_bps, max_move_bps]`, each <= 10_000.
    pub rates: [Ranged; 4],
    /// `[stale_after_secs, cooldown_secs]` (< 2^40).
    pub durations: [Ranged; 2],
    /// Latest spot (< 2^48).
    pub spot: Ranged,
    /// Time of the latest spot (< 2^40).
    pub last_update: Ranged,
    /// Breaker end (< 2^40).
    pub tripped_until: Ranged,
    /// `used ? H(fields) : 0`.
    pub leaf: AssignedValue<Fr>,
}

impl AssignedSeries {
    /// The leaf of the current fields: `used ? H(underlying, strike, expiry, kind,
    /// contract_size, mark, settlement_price) : 0` (§4.5).
    pub fn rehash(
        &self,
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        poseidon: &PoseidonChip,
    ) -> AssignedValue<Fr> {
        let h = poseidon.hash(
            ctx,
            gate,
            &[
                self.underlying.cell(),
                self.strike.cell(),
                self.expiry.cell(),
                self.is_put,
                self.contract_size.cell(),
                self.mark.cell(),
                self.settlement_price.cell(),
            ],
        );
        let zero = ctx.load_zero();
        gate.select(ctx, h, zero, self.used)
    }
}

impl AssignedUnderlying {
    /// The leaf of the current fields: `used ? H(symbol, rates, durations, spot, last_update,
    /// tripped_until) : 0` (§4.6).
    pub fn rehash(
        &self,
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        poseidon: &PoseidonChip,
    ) -> AssignedValue<Fr> {
        let mut fields = vec![self.symbol];
        fields.extend(self.rates.iter().map(Ranged::cell));
        fields.extend(self.durations.iter().map(Ranged::cell));
        fields.extend([
            self.spot.cell(),
            self.last_update.cell(),
            self.tripped_until.cell(),
        ]);
        let h = poseidon.hash(ctx, gate, &fields);
        let zero = ctx.load_zero();
        gate.select(ctx, h, zero, self.used)
    }
}

fn load(ctx: &mut Context<Fr>, range: &RangeChip<Fr>, v: u64, bits: u32) -> Ranged {
    Ranged::load(ctx, range, Fr::from(v), bits)
}

/// Constrains `x == 0` unless `used` (i.e. `x·(1 - used) == 0`).
fn zero_unless(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    x: AssignedValue<Fr>,
    used: AssignedValue<Fr>,
) {
    let unused = gate.not(ctx, used);
    let p = gate.mul(ctx, x, unused);
    gate.assert_is_const(ctx, &p, &Fr::zero());
}

/// A rate in bps: 14 bits and at most 10_000.
fn load_bps(ctx: &mut Context<Fr>, range: &RangeChip<Fr>, v: u64) -> Ranged {
    let r = load(ctx, range, v, bounds::BPS_BITS);
    range.check_less_than(
        ctx,
        r.cell(),
        Constant(Fr::from(collar_protocol::params::BPS + 1)),
        14,
    );
    r
}

/// Loads `capacity` series slots (`series` first, then unused ones) with range checks, and
/// constrains `used` to be boolean and a prefix (used slots come first).
///
/// # Panics
/// If `series.len() > capacity`.
pub fn assign_series(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    poseidon: &PoseidonChip,
    series: &[Series],
    capacity: usize,
) -> Vec<AssignedSeries> {
    assert!(
        series.len() <= capacity,
        "more series than the registry holds"
    );
    let gate = range.gate();
    let mut out: Vec<AssignedSeries> = Vec::with_capacity(capacity);
    for i in 0..capacity {
        let s = series.get(i);
        let used = ctx.load_witness(Fr::from(u64::from(s.is_some())));
        gate.assert_bit(ctx, used);
        if let Some(prev) = out.last() {
            // used_i <= used_{i-1}: a used slot never follows an unused one.
            let p = gate.mul(ctx, used, prev.used);
            ctx.constrain_equal(&p, &used);
        }
        let d = s.copied().unwrap_or(Series {
            underlying: 0,
            strike: 0,
            expiry: 0,
            kind: collar_protocol::OptionKind::Call,
            contract_size: 0,
            mark: 0,
            settlement_price: 0,
        });
        let underlying = load(ctx, range, d.underlying.into(), 8);
        let strike = load(ctx, range, d.strike, bounds::UNIT_PRICE_BITS);
        let expiry = load(ctx, range, d.expiry, bounds::TIME_BITS);
        let is_put = ctx.load_witness(Fr::from(d.kind.code()));
        gate.assert_bit(ctx, is_put);
        let contract_size = load(ctx, range, d.contract_size, bounds::CONTRACT_SIZE_BITS);
        let mark = load(ctx, range, d.mark, bounds::CONTRACT_PRICE_BITS);
        let settlement_price = load(ctx, range, d.settlement_price, bounds::UNIT_PRICE_BITS);
        let fields = [
            underlying.cell(),
            strike.cell(),
            expiry.cell(),
            is_put,
            contract_size.cell(),
            mark.cell(),
            settlement_price.cell(),
        ];
        for f in fields {
            zero_unless(ctx, gate, f, used);
        }
        let mut entry = AssignedSeries {
            used,
            underlying,
            strike,
            expiry,
            is_put,
            contract_size,
            mark,
            settlement_price,
            leaf: used,
        };
        entry.leaf = entry.rehash(ctx, gate, poseidon);
        out.push(entry);
    }
    out
}

/// Loads `capacity` underlying slots, like [`assign_series`].
///
/// # Panics
/// If `underlyings.len() > capacity`.
pub fn assign_underlyings(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    poseidon: &PoseidonChip,
    underlyings: &[Underlying],
    capacity: usize,
) -> Vec<AssignedUnderlying> {
    assert!(
        underlyings.len() <= capacity,
        "more underlyings than the list holds"
    );
    let gate = range.gate();
    let mut out: Vec<AssignedUnderlying> = Vec::with_capacity(capacity);
    for i in 0..capacity {
        let u = underlyings.get(i);
        let used = ctx.load_witness(Fr::from(u64::from(u.is_some())));
        gate.assert_bit(ctx, used);
        if let Some(prev) = out.last() {
            let p = gate.mul(ctx, used, prev.used);
            ctx.constrain_equal(&p, &used);
        }
        let (symbol, m, b, spot, last, until) = match u {
            Some(u) => (
                collar_protocol::field::domain_tag(&u.config.symbol),
                u.config.margin,
                u.config.breaker,
                u.spot,
                u.last_update,
                u.tripped_until,
            ),
            None => (
                Fr::zero(),
                collar_protocol::params::MarginParams {
                    im_spot_bps: 0,
                    mm_spot_bps: 0,
                    put_mm_mark_bps: 0,
                },
                collar_protocol::params::BreakerParams {
                    max_move_bps: 0,
                    stale_after_secs: 0,
                    cooldown_secs: 0,
                },
                0,
                0,
                0,
            ),
        };
        let symbol = ctx.load_witness(symbol);
        range.range_check(ctx, symbol, 248);
        let rates = [
            m.im_spot_bps,
            m.mm_spot_bps,
            m.put_mm_mark_bps,
            b.max_move_bps,
        ]
        .map(|v| load_bps(ctx, range, v));
        let durations =
            [b.stale_after_secs, b.cooldown_secs].map(|v| load(ctx, range, v, bounds::TIME_BITS));
        let spot = load(ctx, range, spot, bounds::UNIT_PRICE_BITS);
        let last_update = load(ctx, range, last, bounds::TIME_BITS);
        let tripped_until = load(ctx, range, until, bounds::TIME_BITS);
        let fields = [
            symbol,
            rates[0].cell(),
            rates[1].cell(),
            rates[2].cell(),
            rates[3].cell(),
            durations[0].cell(),
            durations[1].cell(),
            spot.cell(),
            last_update.cell(),
            tripped_until.cell(),
        ];
        for f in fields {
            zero_unless(ctx, gate, f, used);
        }
        let mut entry = AssignedUnderlying {
            used,
            symbol,
            rates,
            durations,
            spot,
            last_update,
            tripped_until,
            leaf: used,
        };
        entry.leaf = entry.rehash(ctx, gate, poseidon);
        out.push(entry);
    }
    out
}

/// `H(leaves)` over the whole capacity: the list commitment of §4.5/§4.6.
pub fn list_hash(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    poseidon: &PoseidonChip,
    leaves: impl IntoIterator<Item = AssignedValue<Fr>>,
) -> AssignedValue<Fr> {
    let leaves: Vec<AssignedValue<Fr>> = leaves.into_iter().collect();
    poseidon.hash(ctx, gate, &leaves)
}

/// Selects entry `idx` of `cells` and constrains `idx < used_count` so an unregistered index
/// cannot read an empty slot as zeros. `used_count` is the number of used slots.
///
/// Assumes `idx` is range-checked by the caller to fewer than `bit_length(cells.len()) + 1` bits.
pub fn select_used(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    cells: &[AssignedValue<Fr>],
    idx: AssignedValue<Fr>,
    used_count: AssignedValue<Fr>,
) -> AssignedValue<Fr> {
    let bits = (usize::BITS - cells.len().leading_zeros()) as usize + 1;
    range.check_less_than(ctx, idx, used_count, bits);
    range
        .gate()
        .select_from_idx(ctx, cells.iter().copied(), idx)
}
