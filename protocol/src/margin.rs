//! Standard option margin, in integers (PROTOCOL.md §5).
//!
//! Every quantity is bounded so that no intermediate leaves `i128`, and every rounding is up
//! for requirements (the exchange's side). With `|size| < 2^40`, `cs < 2^16`, unit prices
//! `< 2^48` and marks `< 2^64`: notional `< 2^64`, an add-on per contract `< 2^64`, a position
//! add-on or value `< 2^104`, and a sum over at most 64 slots `< 2^110` (§5.5).

use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::market::{OptionKind, Series, Underlying};
use crate::params::BPS;

/// `ceil(x·bps / 10_000)`; assumes `x < 2^110` and `bps <= 10_000`.
pub fn ceil_bps(x: u128, bps: u64) -> u128 {
    (x * u128::from(bps)).div_ceil(u128::from(BPS))
}

/// Margin figures of one position (the intermediate values the circuit recomputes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionMargin {
    /// Series id.
    pub series: u32,
    /// Signed size.
    pub size: i64,
    /// Spot per unit used.
    pub spot: u64,
    /// Mark per contract used.
    pub mark: u64,
    /// `cs·spot` (§5.2).
    pub notional: u128,
    /// Out-of-the-money amount per contract (§5.2).
    pub otm: u128,
    /// Initial add-on per short contract (0 for longs).
    pub im_per_contract: u128,
    /// Maintenance add-on per short contract (0 for longs).
    pub mm_per_contract: u128,
    /// `size·mark`.
    pub value: i128,
}

/// An account's margin state (PROTOCOL.md §5.1, §5.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarginSummary {
    /// Collateral.
    pub collateral: u64,
    /// `collateral + Σ size·mark` (mark-to-market equity).
    pub equity: i128,
    /// `collateral + Σ_{size<0} size·mark`: equity with longs counted at zero.
    pub im_equity: i128,
    /// `Σ |size|·im_per_contract` over shorts.
    pub initial: i128,
    /// `Σ |size|·mm_per_contract` over shorts.
    pub maintenance: i128,
    /// Per-position figures, in slot order (empty slots skipped).
    pub positions: Vec<PositionMargin>,
}

impl MarginSummary {
    /// Initial margin holds: `im_equity >= initial` (§5.3).
    pub fn meets_initial(&self) -> bool {
        self.im_equity >= self.initial
    }

    /// Maintenance margin holds: `equity >= maintenance` (§5.3).
    pub fn meets_maintenance(&self) -> bool {
        self.equity >= self.maintenance
    }

    /// `equity < maintenance` (§7.4).
    pub fn is_liquidatable(&self) -> bool {
        !self.meets_maintenance()
    }
}

/// Add-ons per short contract `(initial, maintenance)` of `series` at `spot` and `mark` (§5.2):
/// call: `IM = max(ceil(im·N) - OTM, ceil(mm·N))`, `MM = ceil(mm·N)`;
/// put: `MM = max(ceil(mm·N), ceil(pm·mark))`, `IM = max(ceil(im·N) - OTM, ceil(mm·N), MM)`.
pub fn short_add_ons(series: &Series, u: &Underlying, spot: u64, mark: u64) -> (u128, u128) {
    let m = &u.config.margin;
    let notional = u128::from(series.contract_size) * u128::from(spot);
    let otm = series.otm(spot);
    let im_spot = ceil_bps(notional, m.im_spot_bps);
    let mm_spot = ceil_bps(notional, m.mm_spot_bps);
    let im_base = im_spot.saturating_sub(otm).max(mm_spot);
    match series.kind {
        OptionKind::Call => (im_base, mm_spot),
        OptionKind::Put => {
            let mm = mm_spot.max(ceil_bps(u128::from(mark), m.put_mm_mark_bps));
            (im_base.max(mm), mm)
        }
    }
}

/// Computes the margin summary of `account` against the registry and prices (§5).
///
/// Assumes every position's series exists in `series` and its underlying in `underlyings`
/// (an invariant of the state: positions only open in registered series).
pub fn account_margin(
    account: &Account,
    series: &[Series],
    underlyings: &[Underlying],
) -> MarginSummary {
    let mut sum = MarginSummary {
        collateral: account.collateral,
        equity: i128::from(account.collateral),
        im_equity: i128::from(account.collateral),
        initial: 0,
        maintenance: 0,
        positions: Vec::new(),
    };
    for p in account.positions.iter().filter(|p| p.size != 0) {
        let s = &series[p.series as usize];
        let u = &underlyings[s.underlying as usize];
        let value = i128::from(p.size) * i128::from(s.mark);
        let (im, mm) = if p.size < 0 {
            short_add_ons(s, u, u.spot, s.mark)
        } else {
            (0, 0)
        };
        let n = i128::from(p.size.unsigned_abs());
        sum.equity += value;
        if p.size < 0 {
            sum.im_equity += value;
            sum.initial += n * im as i128;
            sum.maintenance += n * mm as i128;
        }
        sum.positions.push(PositionMargin {
            series: p.series,
            size: p.size,
            spot: u.spot,
            mark: s.mark,
            notional: u128::from(s.contract_size) * u128::from(u.spot),
            otm: s.otm(u.spot),
            im_per_contract: im,
            mm_per_contract: mm,
            value,
        });
    }
    sum
}
