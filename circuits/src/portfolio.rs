//! An account's margin against the batch's market lists (PROTOCOL.md §5): each held position
//! reads its series terms and its underlying's spot and rates by id from the lists loaded once
//! per batch ([`crate::market`]) through packed tables ([`crate::table`]).

use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};

use crate::account::AssignedAccount;
use crate::margin::{
    account_margin, AssignedMargin, AssignedMarginParams, AssignedSeriesTerms, PositionTerms,
};
use crate::market::{AssignedSeries, AssignedUnderlying};
use crate::safe::Ranged;
use crate::table::PackedTable;

/// The market lists as the slots read them, with the number of used entries and each list
/// packed into a [`PackedTable`] (one cell a row) for reads by a witnessed index.
#[derive(Clone, Debug)]
pub struct MarketView<'a> {
    /// Series slots.
    pub series: &'a [AssignedSeries],
    /// Underlying slots.
    pub underlyings: &'a [AssignedUnderlying],
    /// `Σ used` over series slots.
    pub series_count: AssignedValue<Fr>,
    series_table: PackedTable,
    underlying_table: PackedTable,
}

/// The fields of one series slot read by index ([`MarketView::read_series`]); all zeros for an
/// index past the list.
#[derive(Clone, Copy, Debug)]
pub struct SeriesRow {
    /// Underlying index.
    pub underlying: Ranged,
    /// Strike per unit.
    pub strike: Ranged,
    /// Expiry.
    pub expiry: Ranged,
    /// 1 for a put (a 1-bit value).
    pub is_put: Ranged,
    /// Contract size.
    pub contract_size: Ranged,
    /// Mark per contract.
    pub mark: Ranged,
    /// Settlement price (0 until set).
    pub settlement_price: Ranged,
}

/// The fields of one underlying slot read by index ([`MarketView::read_underlying`]); all
/// zeros for an index past the list.
#[derive(Clone, Copy, Debug)]
pub struct UnderlyingRow {
    /// Latest spot.
    pub spot: Ranged,
    /// `[im_spot_bps, mm_spot_bps, put_mm_mark_bps]`.
    pub rates: [Ranged; 3],
}

impl<'a> MarketView<'a> {
    /// A view over the lists; sums the used flags and packs both lists once (about 22 advice
    /// cells a series). Assumes each series' `is_put` is boolean-constrained (as
    /// [`crate::market::assign_series`] does).
    pub fn new(
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        series: &'a [AssignedSeries],
        underlyings: &'a [AssignedUnderlying],
    ) -> Self {
        let series_count = gate.sum(ctx, series.iter().map(|s| s.used));
        let (series_table, underlying_table) =
            crate::stats::measure(crate::stats::Component::Margin, ctx, |ctx| {
                let rows: Vec<Vec<Ranged>> = series
                    .iter()
                    .map(|s| {
                        vec![
                            s.underlying,
                            s.strike,
                            s.expiry,
                            Ranged::from_bit(s.is_put),
                            s.contract_size,
                            s.mark,
                            s.settlement_price,
                        ]
                    })
                    .collect();
                let series_table = PackedTable::new(ctx, gate, &rows);
                let rows: Vec<Vec<Ranged>> = underlyings
                    .iter()
                    .map(|u| vec![u.spot, u.rates[0], u.rates[1], u.rates[2]])
                    .collect();
                (series_table, PackedTable::new(ctx, gate, &rows))
            });
        Self {
            series,
            underlyings,
            series_count,
            series_table,
            underlying_table,
        }
    }

    /// Series slot `idx` (all zeros past the list); `idx` must be range-checked to
    /// `idx.bits()`. Callers constrain `idx < series_count` themselves where an unregistered
    /// series must fail rather than read zeros.
    pub fn read_series(
        &self,
        ctx: &mut Context<Fr>,
        range: &RangeChip<Fr>,
        idx: &Ranged,
    ) -> SeriesRow {
        let f = self.series_table.read(ctx, range, idx);
        SeriesRow {
            underlying: f[0],
            strike: f[1],
            expiry: f[2],
            is_put: f[3],
            contract_size: f[4],
            mark: f[5],
            settlement_price: f[6],
        }
    }

    /// Underlying slot `idx` (all zeros past the list); `idx` must be range-checked to
    /// `idx.bits()`.
    pub fn read_underlying(
        &self,
        ctx: &mut Context<Fr>,
        range: &RangeChip<Fr>,
        idx: &Ranged,
    ) -> UnderlyingRow {
        let f = self.underlying_table.read(ctx, range, idx);
        UnderlyingRow {
            spot: f[0],
            rates: [f[1], f[2], f[3]],
        }
    }
}

/// Margin of `acc` at the view's prices. Every held position (size != 0) must name a registered
/// series (`series < series_count`), else the circuit fails; empty slots contribute zero.
pub fn account_margin_in_market(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    acc: &AssignedAccount,
    market: &MarketView<'_>,
) -> AssignedMargin {
    crate::stats::measure(crate::stats::Component::Margin, ctx, |ctx| {
        let gate = range.gate();
        let bits = (usize::BITS - market.series.len().leading_zeros()) as usize + 1;
        let mut terms = Vec::with_capacity(acc.positions.len());
        for p in &acc.positions {
            let idx = p.series.cell();
            // Held positions name a registered series: (idx < count) OR empty.
            let registered =
                crate::stats::measure(crate::stats::Component::RangeChecks, ctx, |ctx| {
                    range.is_less_than(ctx, idx, market.series_count, bits.max(17))
                });
            let ok = gate.or(ctx, registered, p.empty);
            gate.assert_is_const(ctx, &ok, &Fr::one());

            // A held position reads its registered series (< the count, so inside the list);
            // an empty one reads series 0 (§4.3 canonical empty slot), whose terms multiply
            // size 0.
            let s = market.read_series(ctx, range, &p.series);
            let u = market.read_underlying(ctx, range, &s.underlying);
            terms.push(PositionTerms {
                size: p.size,
                series: AssignedSeriesTerms {
                    strike: s.strike,
                    is_put: s.is_put.cell(),
                    contract_size: s.contract_size,
                    mark: s.mark,
                },
                spot: u.spot,
                params: AssignedMarginParams {
                    im_spot_bps: u.rates[0],
                    mm_spot_bps: u.rates[1],
                    put_mm_mark_bps: u.rates[2],
                },
            });
        }
        account_margin(ctx, range, &acc.collateral, &terms)
    })
}
