//! Typed rejection reasons (PROTOCOL.md §7.8). A rejected transaction changes nothing.

use crate::signature::SignatureError;

/// Why a transaction, tick or parameter set was rejected. Each variant names its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Genesis or parameter values outside what the spec allows (§4.8).
    #[error("invalid parameters: {0}")]
    InvalidParams(&'static str),
    /// A quantity is outside its bit bound (§2.3).
    #[error("{field} = {value} is outside [0, 2^{bits})")]
    OutOfRange {
        /// Which quantity.
        field: &'static str,
        /// Its value (absolute value for signed quantities).
        value: u128,
        /// The bound in bits.
        bits: u32,
    },
    /// An amount, size or price that must be positive is zero (§7).
    #[error("{0} must be positive")]
    Zero(&'static str),
    /// The account id does not fit the accounts tree (§4.1).
    #[error("account {0} is outside the accounts tree")]
    AccountOutOfRange(u64),
    /// The account has no key: it was never created by a deposit (§4.2).
    #[error("account {0} does not exist")]
    UnknownAccount(u64),
    /// A deposit would create an account with a key that is not a valid Grumpkin point (§7.1).
    #[error("deposit to new account {0} carries an invalid public key")]
    InvalidKey(u64),
    /// A signature did not verify, or its key is not valid (§6).
    #[error("signature of {signer} rejected: {source}")]
    BadSignature {
        /// Who should have signed ("account 7", "oracle 2").
        signer: String,
        /// What failed.
        source: SignatureError,
    },
    /// The signed nonce is not the account's next nonce (§7.2, §7.4).
    #[error("nonce {got} is not the expected {expected}")]
    BadNonce {
        /// The account's current nonce.
        expected: u64,
        /// The nonce in the message.
        got: u64,
    },
    /// Collateral would go below zero, or the fund may not cover a deficit because the account
    /// still holds longs (§7.2–§7.5).
    #[error("account {account} has collateral {available}, needs {needed}")]
    InsufficientCollateral {
        /// The account.
        account: u64,
        /// Collateral it has.
        available: u128,
        /// What the transaction takes.
        needed: u128,
    },
    /// Initial margin would not hold afterwards and the exception of §5.3 does not apply.
    #[error(
        "account {account}: initial margin fails (equity {equity} < requirement {requirement})"
    )]
    InitialMarginViolated {
        /// The account.
        account: u64,
        /// Its initial-margin equity afterwards.
        equity: i128,
        /// Its initial requirement afterwards.
        requirement: i128,
    },
    /// The series id is not registered (§4.5).
    #[error("series {0} is not registered")]
    UnknownSeries(u64),
    /// Trading, liquidating or quoting a series at or after its expiry (§7.3, §7.4, §8).
    #[error("series {0} has expired")]
    SeriesExpired(u64),
    /// Settling a series that has no settlement price yet (§7.5).
    #[error("series {0} is not settled yet")]
    SeriesNotSettled(u64),
    /// The underlying id is not configured (§4.6).
    #[error("underlying {0} is not configured")]
    UnknownUnderlying(u64),
    /// The underlying has never had an oracle price (§7.3, §7.4).
    #[error("underlying {0} has no oracle price yet")]
    NoPrice(u64),
    /// Every position slot of the account is taken (§4.3).
    #[error("account {0} has no free position slot")]
    PositionLimit(u64),
    /// The account holds no position in that series (§7.4, §7.5).
    #[error("account {account} holds no position in series {series}")]
    NoPosition {
        /// The account.
        account: u64,
        /// The series.
        series: u64,
    },
    /// The two orders do not describe one trade: sides, series or accounts disagree (§7.3).
    #[error("orders do not match: {0}")]
    OrderMismatch(&'static str),
    /// The fill price is outside an order's limit (§7.3, §7.4).
    #[error("price {price} violates limit {limit}")]
    PriceLimit {
        /// The fill price.
        price: u64,
        /// The order's limit.
        limit: u64,
    },
    /// The order's expiry is before the current tick time (§7.3).
    #[error("order expired at {expiry}, time is {now}")]
    OrderExpired {
        /// Order expiry.
        expiry: u64,
        /// State time.
        now: u64,
    },
    /// A newer order occupies the slot, so this order id can never fill again (§4.4).
    #[error("order id {order_id} is older than {slot_order_id} in its slot")]
    OrderIdStale {
        /// The order's id.
        order_id: u64,
        /// The id stored in the slot.
        slot_order_id: u64,
    },
    /// The fill would exceed the order's size, or a liquidation its order's size (§7.3, §7.4).
    #[error("fill would take the order to {filled} of {max_size}")]
    Overfilled {
        /// Filled size after the fill.
        filled: u64,
        /// The order's size.
        max_size: u64,
    },
    /// The protocol fee exceeds the order's fee cap (§7.3).
    #[error("fee rate {fee_bps} bps exceeds the order's cap {cap_bps} bps")]
    FeeCapExceeded {
        /// Protocol fee rate.
        fee_bps: u64,
        /// The order's cap.
        cap_bps: u64,
    },
    /// The victim's equity is not below maintenance margin (§7.4).
    #[error(
        "account {account} is not liquidatable (equity {equity} >= maintenance {requirement})"
    )]
    NotLiquidatable {
        /// The account.
        account: u64,
        /// Its equity.
        equity: i128,
        /// Its maintenance requirement.
        requirement: i128,
    },
    /// A liquidation larger than the victim's position (§7.4).
    #[error("liquidation of {size} exceeds position {position}")]
    LiquidationTooLarge {
        /// Requested size.
        size: u64,
        /// Victim's absolute position.
        position: u64,
    },
    /// The insurance fund cannot cover the amount it must pay (§7.4, §7.5).
    #[error("insurance fund holds {available}, needs {needed}")]
    InsuranceFundExhausted {
        /// Fund collateral.
        available: u128,
        /// Amount owed.
        needed: u128,
    },
    /// The underlying's breaker is tripped or stale: liquidations are paused (§9).
    #[error("circuit breaker of underlying {0} is tripped: liquidations are paused")]
    LiquidationsPaused(u64),
    /// The underlying's breaker is tripped or stale: only risk-reducing trades, and no
    /// withdrawals from accounts holding its positions (§7.2, §9).
    #[error("circuit breaker of underlying {0} is tripped: only reducing trades are accepted")]
    BreakerTripped(u64),
    /// A tick timestamp is not after the previous one (§7.6).
    #[error("tick time {got} is not after {previous}")]
    StaleTimestamp {
        /// Previous tick time.
        previous: u64,
        /// This tick's time.
        got: u64,
    },
    /// A malformed tick: ordering, duplicates, quorum, or disagreement between reports (§8).
    #[error("oracle tick rejected: {0}")]
    BadTick(&'static str),
    /// The oracle index is not registered (§4.7, §8).
    #[error("oracle {0} is not registered")]
    UnregisteredOracle(u64),
    /// The series registry is full (§7.7).
    #[error("series registry is full ({0} series)")]
    RegistryFull(usize),
    /// A series definition breaks a rule of §7.7.
    #[error("invalid series: {0}")]
    InvalidSeries(&'static str),
    /// The two parties of a trade or liquidation are the same account (§7.3, §7.4).
    #[error("an account cannot trade with itself")]
    SelfTrade,
    /// An arithmetic result would leave its bound (§2.3); the transaction is refused instead.
    #[error("{0} would overflow its bound")]
    Overflow(&'static str),
}
