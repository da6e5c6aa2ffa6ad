//! The option-series registry, underlyings with their latest oracle prices and breakers, and
//! their commitments (PROTOCOL.md §4.5–§4.7, §9).

use ff::Field;
use serde::{Deserialize, Serialize};

use crate::field::{domain_tag, Fr};
use crate::params::{UnderlyingConfig, BPS};
use crate::poseidon;

/// Call or put (PROTOCOL.md §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptionKind {
    /// Pays `max(S - K, 0)` per underlying unit.
    Call,
    /// Pays `max(K - S, 0)` per underlying unit.
    Put,
}

impl OptionKind {
    /// 0 for a call, 1 for a put.
    pub fn code(self) -> u64 {
        match self {
            OptionKind::Call => 0,
            OptionKind::Put => 1,
        }
    }
}

/// One registered option series (PROTOCOL.md §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// Index of the underlying.
    pub underlying: u32,
    /// Strike per underlying unit; `< 2^48`.
    pub strike: u64,
    /// Expiry time (seconds); `< 2^40`.
    pub expiry: u64,
    /// Call or put.
    pub kind: OptionKind,
    /// Underlying units per contract; `1 <= cs < 2^16`.
    pub contract_size: u64,
    /// Latest mark per contract; `< 2^64`. At settlement it becomes the intrinsic value.
    pub mark: u64,
    /// Spot of the first tick at or after expiry that prices this series' underlying; 0 until
    /// then (§7.6).
    pub settlement_price: u64,
}

impl Series {
    /// Intrinsic value per contract at unit price `s`: `cs·max(s-K,0)` or `cs·max(K-s,0)` (§5.2).
    pub fn intrinsic(&self, s: u64) -> u128 {
        let per_unit = match self.kind {
            OptionKind::Call => s.saturating_sub(self.strike),
            OptionKind::Put => self.strike.saturating_sub(s),
        };
        u128::from(self.contract_size) * u128::from(per_unit)
    }

    /// Out-of-the-money amount per contract at unit price `s` (§5.2).
    pub fn otm(&self, s: u64) -> u128 {
        let per_unit = match self.kind {
            OptionKind::Call => self.strike.saturating_sub(s),
            OptionKind::Put => s.saturating_sub(self.strike),
        };
        u128::from(self.contract_size) * u128::from(per_unit)
    }

    /// Whether the series has expired at time `now` (`now >= expiry`).
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expiry
    }

    /// Leaf `H(underlying, strike, expiry, kind, contract_size, mark, settlement_price)` (§4.5).
    pub fn leaf(&self) -> Fr {
        poseidon::hash(&[
            Fr::from(u64::from(self.underlying)),
            Fr::from(self.strike),
            Fr::from(self.expiry),
            Fr::from(self.kind.code()),
            Fr::from(self.contract_size),
            Fr::from(self.mark),
            Fr::from(self.settlement_price),
        ])
    }
}

/// An underlying: its configuration, latest accepted spot, and breaker state (§4.6, §9).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Underlying {
    /// Symbol, margin and breaker parameters.
    pub config: UnderlyingConfig,
    /// Latest accepted spot per unit; 0 before the first tick.
    pub spot: u64,
    /// Time of the latest accepted spot.
    pub last_update: u64,
    /// The breaker is tripped while `now < tripped_until`.
    pub tripped_until: u64,
}

impl Underlying {
    /// A configured underlying with no price yet.
    pub fn new(config: UnderlyingConfig) -> Self {
        Self {
            config,
            spot: 0,
            last_update: 0,
            tripped_until: 0,
        }
    }

    /// Whether the breaker halts risk at `now`: tripped, or stale past `stale_after_secs` (§9).
    pub fn is_halted(&self, now: u64) -> bool {
        now < self.tripped_until
            || now.saturating_sub(self.last_update) > self.config.breaker.stale_after_secs
    }

    /// Whether moving from the current spot to `new_spot` trips the breaker:
    /// `|new - old|·10_000 > max_move_bps·old` (§9). Never trips on the first price.
    pub fn move_trips(&self, new_spot: u64) -> bool {
        if self.spot == 0 {
            return false;
        }
        let diff = u128::from(new_spot.abs_diff(self.spot));
        diff * u128::from(BPS)
            > u128::from(self.config.breaker.max_move_bps) * u128::from(self.spot)
    }

    /// Leaf `H(symbol, im, mm, put_mm, max_move, stale_after, cooldown, spot, last_update,
    /// tripped_until)` (§4.6).
    pub fn leaf(&self) -> Fr {
        let c = &self.config;
        poseidon::hash(&[
            domain_tag(&c.symbol),
            Fr::from(c.margin.im_spot_bps),
            Fr::from(c.margin.mm_spot_bps),
            Fr::from(c.margin.put_mm_mark_bps),
            Fr::from(c.breaker.max_move_bps),
            Fr::from(c.breaker.stale_after_secs),
            Fr::from(c.breaker.cooldown_secs),
            Fr::from(self.spot),
            Fr::from(self.last_update),
            Fr::from(self.tripped_until),
        ])
    }
}

/// Hash of a fixed-capacity list of leaves, padded with zeros: `H(l_0, …, l_{cap-1})` (§4.5).
pub fn list_hash(leaves: impl IntoIterator<Item = Fr>, capacity: usize) -> Fr {
    let mut v: Vec<Fr> = leaves.into_iter().collect();
    debug_assert!(v.len() <= capacity);
    v.resize(capacity, Fr::ZERO);
    poseidon::hash(&v)
}
