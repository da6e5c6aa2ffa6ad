//! Transactions, the messages their signers sign, and signed envelopes (PROTOCOL.md §6.5, §7).

use ff::Field;
use serde::{Deserialize, Serialize};

use crate::field::{domain_tag, fr_from_short_bytes, Fr};
use crate::market::OptionKind;
use crate::poseidon;
use crate::signature::{PublicKey, SecretKey, Signature};

/// A 20-byte settlement-layer (EVM) address, as `0x` + 40 hex digits in JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct L1Address(pub [u8; 20]);

impl L1Address {
    /// The address as a field element (a 160-bit big-endian integer).
    pub fn to_field(&self) -> Fr {
        fr_from_short_bytes(&self.0)
    }
}

impl Serialize for L1Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(self.0)))
    }
}

impl<'de> Deserialize<'de> for L1Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let s = String::deserialize(d)?;
        let digits = s
            .strip_prefix("0x")
            .ok_or_else(|| D::Error::custom("address must start with 0x"))?;
        let mut out = [0u8; 20];
        hex::decode_to_slice(digits, &mut out)
            .map_err(|_| D::Error::custom("address must be 0x followed by 40 hex digits"))?;
        Ok(Self(out))
    }
}

/// Order side (PROTOCOL.md §7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Buys contracts (long).
    Buy,
    /// Sells contracts (short).
    Sell,
}

impl Side {
    /// 0 for buy, 1 for sell.
    pub fn code(self) -> u64 {
        match self {
            Side::Buy => 0,
            Side::Sell => 1,
        }
    }
}

/// Domain tags of every signed message, hash chain and the state root (PROTOCOL.md §3.2);
/// the parameters hash uses `collar/params/v1` (params.rs).
pub mod tags {
    /// Trade orders.
    pub const ORDER: &str = "collar/order/v1";
    /// Withdrawals.
    pub const WITHDRAW: &str = "collar/withdraw/v1";
    /// Liquidation orders.
    pub const LIQUIDATION: &str = "collar/liquidation/v1";
    /// Oracle price reports.
    pub const ORACLE: &str = "collar/oracle/v1";
    /// The deposit-queue hash chain.
    pub const DEPOSIT: &str = "collar/deposit/v1";
    /// The withdrawals commitment chain.
    pub const WITHDRAWAL_CHAIN: &str = "collar/withdrawals/v1";
    /// The oracle-tick commitment chain.
    pub const TICK_CHAIN: &str = "collar/tick/v1";
    /// The state root.
    pub const STATE: &str = "collar/state/v1";
    /// The public-data commitment.
    pub const PUBDATA: &str = "collar/pubdata/v1";
}

/// A deposit taken from the L1 deposit queue (PROTOCOL.md §7.1). Not signed: L1 authorised it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deposit {
    /// Credited account; created bound to `pubkey` if it does not exist.
    pub account: u64,
    /// Key for a new account; ignored for an existing one.
    pub pubkey: PublicKey,
    /// Amount; `0 < amount < 2^63`.
    pub amount: u64,
}

impl Deposit {
    /// The next deposit-queue head: `H(tag, head, account, pk.x, pk.y, amount)` (§7.1).
    pub fn chain(&self, head: Fr) -> Fr {
        poseidon::hash(&[
            domain_tag(tags::DEPOSIT),
            head,
            Fr::from(self.account),
            self.pubkey.x,
            self.pubkey.y,
            Fr::from(self.amount),
        ])
    }
}

/// A signed withdrawal to an L1 address (PROTOCOL.md §7.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withdraw {
    /// Debited account (the signer).
    pub account: u64,
    /// Amount; `0 < amount < 2^63`.
    pub amount: u64,
    /// Must equal the account's nonce.
    pub nonce: u64,
    /// Who receives the funds on L1.
    pub recipient: L1Address,
}

impl Withdraw {
    /// Signed message `H(tag, chain_id, account, amount, nonce, recipient)` (§6.5).
    pub fn message(&self, chain_id: u64) -> Fr {
        poseidon::hash(&[
            domain_tag(tags::WITHDRAW),
            Fr::from(chain_id),
            Fr::from(self.account),
            Fr::from(self.amount),
            Fr::from(self.nonce),
            self.recipient.to_field(),
        ])
    }
}

/// A limit order, signed by its account (PROTOCOL.md §7.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// The signer.
    pub account: u64,
    /// Series traded.
    pub series: u32,
    /// Buy or sell.
    pub side: Side,
    /// Highest price a buy pays / lowest price a sell takes, per contract.
    pub limit_price: u64,
    /// Total size the order may fill across all trades; `< 2^40`.
    pub max_size: u64,
    /// Order id; `< 2^32`. Its slot is `order_id mod 2^order_slot_depth` (§4.4).
    pub order_id: u64,
    /// Last tick time at which it may fill.
    pub expiry: u64,
    /// Highest fee rate, in bps, the signer accepts.
    pub max_fee_bps: u64,
}

impl Order {
    /// Signed message `H(tag, chain_id, account, series, side, limit, max_size, order_id, expiry,
    /// max_fee_bps)` (§6.5).
    pub fn message(&self, chain_id: u64) -> Fr {
        poseidon::hash(&[
            domain_tag(tags::ORDER),
            Fr::from(chain_id),
            Fr::from(self.account),
            Fr::from(u64::from(self.series)),
            Fr::from(self.side.code()),
            Fr::from(self.limit_price),
            Fr::from(self.max_size),
            Fr::from(self.order_id),
            Fr::from(self.expiry),
            Fr::from(self.max_fee_bps),
        ])
    }
}

/// A match of a buy and a sell order (PROTOCOL.md §7.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trade {
    /// The buy order.
    pub buy: Order,
    /// The sell order.
    pub sell: Order,
    /// Contracts filled; `0 < size < 2^40`.
    pub size: u64,
    /// Price per contract.
    pub price: u64,
}

/// A liquidator's signed order to take over part of a victim's position (PROTOCOL.md §7.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiquidationOrder {
    /// The liquidator (signer).
    pub liquidator: u64,
    /// The account being liquidated.
    pub victim: u64,
    /// Series of the position taken over.
    pub series: u32,
    /// Most contracts the liquidator takes.
    pub max_size: u64,
    /// Worst price the liquidator accepts (lowest when it sells, highest when it buys).
    pub limit_price: u64,
    /// Must equal the liquidator's nonce.
    pub nonce: u64,
}

impl LiquidationOrder {
    /// Signed message `H(tag, chain_id, liquidator, victim, series, max_size, limit, nonce)` (§6.5).
    pub fn message(&self, chain_id: u64) -> Fr {
        poseidon::hash(&[
            domain_tag(tags::LIQUIDATION),
            Fr::from(chain_id),
            Fr::from(self.liquidator),
            Fr::from(self.victim),
            Fr::from(u64::from(self.series)),
            Fr::from(self.max_size),
            Fr::from(self.limit_price),
            Fr::from(self.nonce),
        ])
    }
}

/// A liquidation: the liquidator's order and the size executed (PROTOCOL.md §7.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Liquidate {
    /// The signed order.
    pub order: LiquidationOrder,
    /// Contracts taken over; `0 < size <= max_size`.
    pub size: u64,
}

/// Settles one account's position in an expired series (PROTOCOL.md §7.5). Unsigned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleExpiry {
    /// The account.
    pub account: u64,
    /// The expired series.
    pub series: u32,
}

/// A mark quoted for one series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesMark {
    /// Series id.
    pub series: u32,
    /// Mark per contract.
    pub mark: u64,
}

/// One oracle's signed report for one underlying (PROTOCOL.md §8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OracleReport {
    /// Index of the oracle in the registry (the signer).
    pub oracle: u32,
    /// Underlying index.
    pub underlying: u32,
    /// Tick time.
    pub timestamp: u64,
    /// Spot per unit; `0 < spot < 2^48`.
    pub spot: u64,
    /// Marks, by strictly ascending series id.
    pub marks: Vec<SeriesMark>,
}

impl OracleReport {
    /// Signed message `H(tag, chain_id, oracle, underlying, timestamp, spot, marks_digest)`
    /// (§6.5).
    pub fn message(&self, chain_id: u64) -> Fr {
        poseidon::hash(&[
            domain_tag(tags::ORACLE),
            Fr::from(chain_id),
            Fr::from(u64::from(self.oracle)),
            Fr::from(u64::from(self.underlying)),
            Fr::from(self.timestamp),
            Fr::from(self.spot),
            self.marks_digest(),
        ])
    }

    /// The chain `c_0 = 0`, `c_{i+1} = H(c_i, s_i·2^64 + m_i)` over the marks in order (§6.5):
    /// one permutation a mark, so a circuit can absorb a series' mark into its report's chain
    /// without knowing the list's length. Injective for series ids and marks below `2^64`.
    pub fn marks_digest(&self) -> Fr {
        let shift = Fr::from(u64::MAX) + Fr::ONE;
        self.marks.iter().fold(Fr::ZERO, |c, m| {
            poseidon::hash(&[c, Fr::from(u64::from(m.series)) * shift + Fr::from(m.mark)])
        })
    }
}

/// The reports of a quorum of oracles for one underlying (PROTOCOL.md §8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderlyingTick {
    /// Underlying index.
    pub underlying: u32,
    /// Reports by strictly ascending oracle index.
    pub reports: Vec<OracleReport>,
}

/// An oracle tick: new prices for one or more underlyings at one time (PROTOCOL.md §7.6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OracleTick {
    /// Tick time; strictly after the previous tick.
    pub timestamp: u64,
    /// Per underlying, by strictly ascending underlying index; at least one.
    pub underlyings: Vec<UnderlyingTick>,
}

/// Operator registration of a new option series (PROTOCOL.md §7.7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterSeries {
    /// Underlying index.
    pub underlying: u32,
    /// Strike per unit; `0 < strike < 2^48`.
    pub strike: u64,
    /// Expiry; after the current time, `< 2^40`.
    pub expiry: u64,
    /// Call or put.
    pub kind: OptionKind,
    /// Units per contract; `1 <= cs < 2^16`.
    pub contract_size: u64,
}

/// Every transaction type (PROTOCOL.md §7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Tx {
    /// §7.1
    Deposit(Deposit),
    /// §7.2
    Withdraw(Withdraw),
    /// §7.3
    Trade(Trade),
    /// §7.4
    Liquidate(Liquidate),
    /// §7.5
    SettleExpiry(SettleExpiry),
    /// §7.6
    OracleTick(OracleTick),
    /// §7.7
    RegisterSeries(RegisterSeries),
}

/// Who must sign a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signer {
    /// The key of this account.
    Account(u64),
    /// The key of this registered oracle.
    Oracle(u32),
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signer::Account(a) => write!(f, "account {a}"),
            Signer::Oracle(o) => write!(f, "oracle {o}"),
        }
    }
}

impl Tx {
    /// The messages this transaction needs signed, in signature order (§6.5): a trade's buy
    /// then sell order, a withdrawal, a liquidation order, and every oracle report in tick order.
    pub fn signed_messages(&self, chain_id: u64) -> Vec<(Signer, Fr)> {
        match self {
            Tx::Withdraw(w) => vec![(Signer::Account(w.account), w.message(chain_id))],
            Tx::Trade(t) => vec![
                (Signer::Account(t.buy.account), t.buy.message(chain_id)),
                (Signer::Account(t.sell.account), t.sell.message(chain_id)),
            ],
            Tx::Liquidate(l) => vec![(
                Signer::Account(l.order.liquidator),
                l.order.message(chain_id),
            )],
            Tx::OracleTick(t) => t
                .underlyings
                .iter()
                .flat_map(|u| u.reports.iter())
                .map(|r| (Signer::Oracle(r.oracle), r.message(chain_id)))
                .collect(),
            Tx::Deposit(_) | Tx::SettleExpiry(_) | Tx::RegisterSeries(_) => Vec::new(),
        }
    }

    /// The signers of [`Tx::signed_messages`], in the same order, without hashing the messages
    /// (one per signature; none for the unsigned kinds).
    pub fn signers(&self) -> Vec<Signer> {
        match self {
            Tx::Withdraw(w) => vec![Signer::Account(w.account)],
            Tx::Trade(t) => vec![
                Signer::Account(t.buy.account),
                Signer::Account(t.sell.account),
            ],
            Tx::Liquidate(l) => vec![Signer::Account(l.order.liquidator)],
            Tx::OracleTick(t) => t
                .underlyings
                .iter()
                .flat_map(|u| u.reports.iter())
                .map(|r| Signer::Oracle(r.oracle))
                .collect(),
            Tx::Deposit(_) | Tx::SettleExpiry(_) | Tx::RegisterSeries(_) => Vec::new(),
        }
    }

    /// Short name of the type, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Tx::Deposit(_) => "deposit",
            Tx::Withdraw(_) => "withdraw",
            Tx::Trade(_) => "trade",
            Tx::Liquidate(_) => "liquidate",
            Tx::SettleExpiry(_) => "settle_expiry",
            Tx::OracleTick(_) => "oracle_tick",
            Tx::RegisterSeries(_) => "register_series",
        }
    }

    /// Signs every message for deployment `chain_id` with the keys given in signature order.
    ///
    /// # Panics
    /// If `keys.len()` differs from the number of messages.
    pub fn sign(self, chain_id: u64, keys: &[&SecretKey]) -> SignedTx {
        let msgs = self.signed_messages(chain_id);
        assert_eq!(msgs.len(), keys.len(), "one key per signed message");
        let signatures = msgs
            .iter()
            .zip(keys)
            .map(|((_, m), k)| k.sign(*m))
            .collect();
        SignedTx {
            tx: self,
            signatures,
        }
    }
}

/// A transaction with the signatures over [`Tx::signed_messages`], in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTx {
    /// The transaction.
    pub tx: Tx,
    /// One signature per signed message.
    pub signatures: Vec<Signature>,
}

impl SignedTx {
    /// An unsigned transaction (deposit, settlement, series registration).
    pub fn unsigned(tx: Tx) -> Self {
        Self {
            tx,
            signatures: Vec::new(),
        }
    }
}
