//! An account's margin against the batch's market lists (PROTOCOL.md §5): each held position
//! reads its series terms and its underlying's spot and rates by id from the lists loaded once
//! per batch ([`crate::market`]).

use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};

use crate::account::AssignedAccount;
use crate::margin::{
    account_margin, AssignedMargin, AssignedMarginParams, AssignedSeriesTerms, PositionTerms,
};
use crate::market::{AssignedSeries, AssignedUnderlying};
use crate::safe::Ranged;

/// The market lists as the margin reads them, with the number of used entries.
#[derive(Clone, Debug)]
pub struct MarketView<'a> {
    /// Series slots.
    pub series: &'a [AssignedSeries],
    /// Underlying slots.
    pub underlyings: &'a [AssignedUnderlying],
    /// `Σ used` over series slots.
    pub series_count: AssignedValue<Fr>,
}

impl<'a> MarketView<'a> {
    /// A view over the lists; sums the used flags once.
    pub fn new(
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        series: &'a [AssignedSeries],
        underlyings: &'a [AssignedUnderlying],
    ) -> Self {
        let series_count = gate.sum(ctx, series.iter().map(|s| s.used));
        Self {
            series,
            underlyings,
            series_count,
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
        // One indicator per position serves every field it reads (halo2-base's
        // `select_from_idx` would rebuild it per field).
        let pick = |ctx: &mut Context<Fr>,
                    f: &dyn Fn(&AssignedSeries) -> Ranged,
                    indicator: &[AssignedValue<Fr>]| {
            let c: Vec<Ranged> = market.series.iter().map(f).collect();
            Ranged::select_by_indicator(ctx, gate, &c, indicator)
        };
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

            // Exactly one 1, at `idx` (< the series count, so inside the list) for a held
            // position; all zeros only for an empty one, whose terms multiply size 0.
            let indicator = gate.idx_to_indicator(ctx, idx, market.series.len());
            let strike = pick(ctx, &|s| s.strike, &indicator);
            let contract_size = pick(ctx, &|s| s.contract_size, &indicator);
            let mark = pick(ctx, &|s| s.mark, &indicator);
            let underlying = pick(ctx, &|s| s.underlying, &indicator);
            let is_put = gate.select_by_indicator(
                ctx,
                market.series.iter().map(|s| s.is_put),
                indicator.iter().copied(),
            );
            let und = |ctx: &mut Context<Fr>, f: &dyn Fn(&AssignedUnderlying) -> Ranged| {
                let c: Vec<Ranged> = market.underlyings.iter().map(f).collect();
                Ranged::select_from_idx(ctx, gate, &c, underlying.cell())
            };
            let spot = und(ctx, &|u| u.spot);
            let params = AssignedMarginParams {
                im_spot_bps: und(ctx, &|u| u.rates[0]),
                mm_spot_bps: und(ctx, &|u| u.rates[1]),
                put_mm_mark_bps: und(ctx, &|u| u.rates[2]),
            };
            terms.push(PositionTerms {
                size: p.size,
                series: AssignedSeriesTerms {
                    strike,
                    is_put,
                    contract_size,
                    mark,
                },
                spot,
                params,
            });
        }
        account_margin(ctx, range, &acc.collateral, &terms)
    })
}
