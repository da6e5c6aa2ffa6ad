//! Protocol parameters, per-underlying margin and breaker settings, genesis, and the bit bound of
//! every quantity (PROTOCOL.md §2 and §4).

use serde::{Deserialize, Serialize};

use crate::error::Rejection;
use crate::field::{domain_tag, Fr};
use crate::poseidon;
use crate::signature::PublicKey;

/// Basis points in one (PROTOCOL.md §2.2): a rate of `x` bps means `x / 10_000`.
pub const BPS: u64 = 10_000;

/// Bit bounds of every quantity (PROTOCOL.md §2.3). The circuit range-checks each of them.
pub mod bounds {
    /// Collateral of an account: `0 <= c < 2^63`.
    pub const COLLATERAL_BITS: u32 = 63;
    /// Deposit and withdrawal amounts: `0 < a < 2^63`.
    pub const AMOUNT_BITS: u32 = 63;
    /// Per-underlying-unit prices (spot, strike, settlement price): `< 2^48`.
    pub const UNIT_PRICE_BITS: u32 = 48;
    /// Per-contract prices (mark, limit price, fill price): `< 2^64`.
    pub const CONTRACT_PRICE_BITS: u32 = 64;
    /// Contract size in underlying units: `1 <= cs < 2^16`.
    pub const CONTRACT_SIZE_BITS: u32 = 16;
    /// Position sizes (absolute), order sizes and fill sizes: `< 2^40`.
    pub const SIZE_BITS: u32 = 40;
    /// Timestamps (seconds) and durations: `< 2^40`.
    pub const TIME_BITS: u32 = 40;
    /// Account nonces and order ids: `< 2^32`.
    pub const NONCE_BITS: u32 = 32;
    /// Rates in basis points: `<= 10_000`, so `< 2^14`.
    pub const BPS_BITS: u32 = 14;

    /// `2^bits`, the exclusive upper bound of a quantity.
    pub const fn limit(bits: u32) -> u128 {
        1u128 << bits
    }
}

/// Checks `value < 2^bits`, naming the quantity in the rejection (PROTOCOL.md §2.3).
pub fn check_bits(field: &'static str, value: u128, bits: u32) -> Result<(), Rejection> {
    if value < bounds::limit(bits) {
        Ok(())
    } else {
        Err(Rejection::OutOfRange { field, value, bits })
    }
}

/// Shape and fee parameters fixed at genesis (PROTOCOL.md §4.8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolParams {
    /// Deployment identifier, part of every signed message so signatures cannot be replayed
    /// on another deployment (§6.5). Default 1.
    pub chain_id: u64,
    /// Depth of the accounts tree: `2^depth` account ids. Production default 24.
    pub account_depth: usize,
    /// Position slots per account. Default 16.
    pub max_positions: usize,
    /// Depth of each account's order-slot subtree. Default 6 (64 slots).
    pub order_slot_depth: usize,
    /// Capacity of the option-series registry. Default 64.
    pub max_series: usize,
    /// Capacity of the underlyings list. Default 4.
    pub max_underlyings: usize,
    /// Capacity of the oracle registry. Default 5.
    pub max_oracles: usize,
    /// Distinct oracle reports needed per underlying in a tick; more than half of the registered
    /// oracles (§8). Default 3.
    pub oracle_quorum: usize,
    /// Trading fee charged to each side, in bps of the premium `size * price`. Default 30.
    pub trade_fee_bps: u64,
    /// Liquidation penalty in bps of the mark, per contract. Default 500.
    pub liquidation_penalty_bps: u64,
}

impl Default for ProtocolParams {
    fn default() -> Self {
        Self {
            chain_id: 1,
            account_depth: 24,
            max_positions: 16,
            order_slot_depth: 6,
            max_series: 64,
            max_underlyings: 4,
            max_oracles: 5,
            oracle_quorum: 3,
            trade_fee_bps: 30,
            liquidation_penalty_bps: 500,
        }
    }
}

impl ProtocolParams {
    /// Small shapes for tests: depth 8, 4 positions, 4 order slots, 8 series, 2 underlyings,
    /// 4 oracles with a quorum of 3.
    pub fn small() -> Self {
        Self {
            account_depth: 8,
            max_positions: 4,
            order_slot_depth: 2,
            max_series: 8,
            max_underlyings: 2,
            max_oracles: 4,
            ..Self::default()
        }
    }

    /// Checks the parameters are within the ranges the spec allows (PROTOCOL.md §4.8).
    pub fn validate(&self) -> Result<(), Rejection> {
        let bad = |what: &'static str| Err(Rejection::InvalidParams(what));
        if !(2..=32).contains(&self.account_depth) {
            return bad("account_depth must be in 2..=32");
        }
        if !(1..=64).contains(&self.max_positions) {
            return bad("max_positions must be in 1..=64");
        }
        if !(1..=16).contains(&self.order_slot_depth) {
            return bad("order_slot_depth must be in 1..=16");
        }
        if !(1..=1 << 16).contains(&self.max_series) {
            return bad("max_series must be in 1..=65536");
        }
        if !(1..=256).contains(&self.max_underlyings) {
            return bad("max_underlyings must be in 1..=256");
        }
        if !(1..=256).contains(&self.max_oracles) {
            return bad("max_oracles must be in 1..=256");
        }
        if self.oracle_quorum == 0 || self.oracle_quorum > self.max_oracles {
            return bad("oracle_quorum must be in 1..=max_oracles");
        }
        if self.trade_fee_bps > BPS || self.liquidation_penalty_bps > BPS {
            return bad("fee and penalty rates must be at most 10_000 bps");
        }
        Ok(())
    }

    /// The parameters as field elements, in the order hashed into the state root (§4.9).
    pub fn to_fields(&self) -> Vec<Fr> {
        [
            self.chain_id,
            self.account_depth as u64,
            self.max_positions as u64,
            self.order_slot_depth as u64,
            self.max_series as u64,
            self.max_underlyings as u64,
            self.max_oracles as u64,
            self.oracle_quorum as u64,
            self.trade_fee_bps,
            self.liquidation_penalty_bps,
        ]
        .into_iter()
        .map(Fr::from)
        .collect()
    }

    /// `H("collar/params/v1", fields...)` (PROTOCOL.md §4.9).
    pub fn hash(&self) -> Fr {
        let mut v = vec![domain_tag("collar/params/v1")];
        v.extend(self.to_fields());
        poseidon::hash(&v)
    }
}

/// Standard-margin rates of one underlying, in bps (PROTOCOL.md §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarginParams {
    /// Initial-margin spot rate for shorts (default 1500 = 15%).
    pub im_spot_bps: u64,
    /// Maintenance spot rate for shorts, also the floor of the initial add-on (default 1000).
    pub mm_spot_bps: u64,
    /// Maintenance rate on the mark for short puts (default 1000).
    pub put_mm_mark_bps: u64,
}

impl Default for MarginParams {
    fn default() -> Self {
        Self {
            im_spot_bps: 1500,
            mm_spot_bps: 1000,
            put_mm_mark_bps: 1000,
        }
    }
}

/// Circuit-breaker settings of one underlying (PROTOCOL.md §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerParams {
    /// Trips when one tick moves spot by more than this many bps of the previous spot.
    pub max_move_bps: u64,
    /// The underlying is stale (treated as tripped) when its last update is older than this.
    pub stale_after_secs: u64,
    /// How long a trip lasts, in tick time.
    pub cooldown_secs: u64,
}

impl Default for BreakerParams {
    fn default() -> Self {
        Self {
            max_move_bps: 2000,
            stale_after_secs: 600,
            cooldown_secs: 300,
        }
    }
}

/// Genesis configuration of one underlying.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderlyingConfig {
    /// Symbol, at most 31 ASCII bytes (hashed as a domain-tag-style field element).
    pub symbol: String,
    /// Margin rates.
    pub margin: MarginParams,
    /// Breaker settings.
    pub breaker: BreakerParams,
}

impl UnderlyingConfig {
    /// Checks the rates and durations against their bounds (PROTOCOL.md §2.3, §5.2, §9).
    pub fn validate(&self) -> Result<(), Rejection> {
        if self.symbol.is_empty() || self.symbol.len() > 31 || !self.symbol.is_ascii() {
            return Err(Rejection::InvalidParams(
                "underlying symbol must be 1 to 31 ASCII bytes",
            ));
        }
        let m = &self.margin;
        for v in [
            m.im_spot_bps,
            m.mm_spot_bps,
            m.put_mm_mark_bps,
            self.breaker.max_move_bps,
        ] {
            if v > BPS {
                return Err(Rejection::InvalidParams("rates must be at most 10_000 bps"));
            }
        }
        if m.im_spot_bps < m.mm_spot_bps {
            return Err(Rejection::InvalidParams(
                "im_spot_bps must be at least mm_spot_bps",
            ));
        }
        check_bits(
            "stale_after_secs",
            self.breaker.stale_after_secs.into(),
            bounds::TIME_BITS,
        )?;
        check_bits(
            "cooldown_secs",
            self.breaker.cooldown_secs.into(),
            bounds::TIME_BITS,
        )?;
        Ok(())
    }
}

/// Everything needed to build the genesis state (PROTOCOL.md §4.10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Shape and fee parameters.
    pub params: ProtocolParams,
    /// Underlyings, indexed by position.
    pub underlyings: Vec<UnderlyingConfig>,
    /// Oracle public keys, indexed by position (the oracle index).
    pub oracles: Vec<PublicKey>,
    /// Key of the fee account (account 0).
    pub fee_account_key: PublicKey,
    /// Key of the insurance-fund account (account 1).
    pub insurance_fund_key: PublicKey,
}
