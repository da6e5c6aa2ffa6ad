//! Deterministic keys and signed-transaction builders over a live [`State`]: used by tests,
//! benches and `collar demo`. Keys derive from public seeds, so never use them for real funds.

use std::collections::HashMap;

use crate::account::{FEE_ACCOUNT, INSURANCE_FUND};
use crate::error::Rejection;
use crate::market::OptionKind;
use crate::params::{Genesis, ProtocolParams, UnderlyingConfig};
use crate::signature::{PublicKey, SecretKey};
use crate::state::{Effects, State};
use crate::tx::{
    Deposit, L1Address, Liquidate, LiquidationOrder, OracleReport, OracleTick, Order,
    RegisterSeries, SeriesMark, SettleExpiry, Side, SignedTx, Signer, Trade, Tx, UnderlyingTick,
    Withdraw,
};

/// The deterministic key of account `id` (seed: `"acct"` ‖ id, zero padded).
pub fn account_key(id: u64) -> SecretKey {
    key_from(b"acct", id)
}

/// The deterministic key of oracle `index`.
pub fn oracle_key(index: u64) -> SecretKey {
    key_from(b"orcl", index)
}

/// The deterministic key of `signer` ([`account_key`] or [`oracle_key`]).
pub fn signer_key(signer: &Signer) -> SecretKey {
    match signer {
        Signer::Account(id) => account_key(*id),
        Signer::Oracle(index) => oracle_key(u64::from(*index)),
    }
}

/// Signs `tx` for `chain_id` with the deterministic keys of its signers ([`signer_key`]).
pub fn sign_with_test_keys(tx: Tx, chain_id: u64) -> SignedTx {
    let keys: Vec<SecretKey> = tx
        .signed_messages(chain_id)
        .iter()
        .map(|(signer, _)| signer_key(signer))
        .collect();
    let refs: Vec<&SecretKey> = keys.iter().collect();
    tx.sign(chain_id, &refs)
}

fn key_from(prefix: &[u8; 4], id: u64) -> SecretKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(prefix);
    seed[24..].copy_from_slice(&id.to_be_bytes());
    SecretKey::from_seed(&seed).expect("non-zero key")
}

/// A genesis with `underlyings` default-configured underlyings named `U0`, `U1`, …, every
/// oracle slot filled with a deterministic key, and deterministic system-account keys.
pub fn genesis(params: ProtocolParams, underlyings: usize) -> Genesis {
    Genesis {
        underlyings: (0..underlyings)
            .map(|i| UnderlyingConfig {
                symbol: format!("U{i}"),
                margin: Default::default(),
                breaker: Default::default(),
            })
            .collect(),
        oracles: (0..params.max_oracles as u64)
            .map(|i| oracle_key(i).public_key())
            .collect(),
        fee_account_key: account_key(FEE_ACCOUNT).public_key(),
        insurance_fund_key: account_key(INSURANCE_FUND).public_key(),
        params,
    }
}

/// Prices for one underlying in a test tick: `(underlying, spot, [(series, mark)])`.
pub type TickPrices = (u32, u64, Vec<(u32, u64)>);

/// A state plus the keys to sign for it: builds valid-looking transactions and applies them.
#[derive(Debug)]
pub struct Harness {
    /// The genesis configuration.
    pub genesis: Genesis,
    /// The live state.
    pub state: State,
    keys: HashMap<u64, SecretKey>,
    next_order_id: HashMap<u64, u64>,
    /// Every accepted transaction, in order.
    pub accepted: Vec<Tx>,
}

impl Harness {
    /// A harness over [`genesis`].
    pub fn new(params: ProtocolParams, underlyings: usize) -> Self {
        let genesis = genesis(params, underlyings);
        let state = State::genesis(&genesis).expect("valid test genesis");
        Self {
            genesis,
            state,
            keys: HashMap::new(),
            next_order_id: HashMap::new(),
            accepted: Vec::new(),
        }
    }

    /// The key of account `id` (cached).
    pub fn key(&mut self, id: u64) -> SecretKey {
        self.keys
            .entry(id)
            .or_insert_with(|| account_key(id))
            .clone()
    }

    /// The public key of account `id`.
    pub fn pubkey(&mut self, id: u64) -> PublicKey {
        self.key(id).public_key()
    }

    /// Verifies signatures and applies; accepted transactions are recorded.
    pub fn submit(&mut self, stx: &SignedTx) -> Result<Effects, Rejection> {
        let e = self.state.apply_signed(stx)?;
        self.accepted.push(stx.tx.clone());
        Ok(e)
    }

    /// Submits `stx` and returns its effects.
    ///
    /// # Panics
    /// If it is rejected (a test expectation).
    pub fn accept(&mut self, stx: &SignedTx) -> Effects {
        self.submit(stx)
            .unwrap_or_else(|e| panic!("expected acceptance of {}, got {e}", stx.tx.kind()))
    }

    /// Submits `stx`, expects a rejection, and checks that nothing changed: root, header,
    /// market lists, time, total collateral and the accepted log.
    ///
    /// # Panics
    /// If it is accepted or the rejection changed anything (a test expectation).
    pub fn reject(&mut self, stx: &SignedTx) -> Rejection {
        let header = self.state.header();
        let accepted = self.accepted.len();
        let total = self.state.total_collateral();
        let series = self.state.series().to_vec();
        let underlyings = self.state.underlyings().to_vec();
        let err = match self.submit(stx) {
            Ok(e) => panic!("expected a rejection of {}, got {e:?}", stx.tx.kind()),
            Err(e) => e,
        };
        assert_eq!(
            self.state.header(),
            header,
            "rejected tx changed the state ({err})"
        );
        assert_eq!(self.accepted.len(), accepted);
        assert_eq!(self.state.total_collateral(), total);
        assert_eq!(self.state.series(), &series[..]);
        assert_eq!(self.state.underlyings(), &underlyings[..]);
        err
    }

    /// Deposits `amount` to `account` and expects acceptance.
    pub fn fund(&mut self, account: u64, amount: u64) {
        let d = self.deposit(account, amount);
        self.accept(&d);
    }

    /// [`Harness::simple_trade`], expecting acceptance.
    pub fn fill(&mut self, buyer: u64, seller: u64, series: u32, size: u64, price: u64) -> Effects {
        let t = self.simple_trade(buyer, seller, series, size, price);
        self.accept(&t)
    }

    /// Collateral of an existing account.
    ///
    /// # Panics
    /// If the account does not exist.
    pub fn collateral(&self, id: u64) -> u64 {
        self.state.account(id).expect("account exists").collateral
    }

    /// Position of an existing account in `series`.
    ///
    /// # Panics
    /// If the account does not exist.
    pub fn position(&self, id: u64, series: u32) -> i64 {
        self.state
            .account(id)
            .expect("account exists")
            .position(series)
    }

    /// A deposit from the L1 queue to `account` (bound to its deterministic key).
    pub fn deposit(&mut self, account: u64, amount: u64) -> SignedTx {
        let pubkey = self.pubkey(account);
        SignedTx::unsigned(Tx::Deposit(Deposit {
            account,
            pubkey,
            amount,
        }))
    }

    /// A withdrawal signed with the account's current nonce.
    pub fn withdraw(&mut self, account: u64, amount: u64) -> SignedTx {
        let nonce = self.state.account(account).map_or(0, |a| a.nonce);
        let key = self.key(account);
        Tx::Withdraw(Withdraw {
            account,
            amount,
            nonce,
            recipient: L1Address([0xab; 20]),
        })
        .sign(self.state.params().chain_id, &[&key])
    }

    /// A fresh order id for `account`.
    pub fn next_order_id(&mut self, account: u64) -> u64 {
        let id = self.next_order_id.entry(account).or_insert(0);
        *id += 1;
        *id
    }

    /// An order with a fresh id, expiring far in the future and accepting the protocol fee.
    pub fn order(
        &mut self,
        account: u64,
        series: u32,
        side: Side,
        limit_price: u64,
        max_size: u64,
    ) -> Order {
        Order {
            account,
            series,
            side,
            limit_price,
            max_size,
            order_id: self.next_order_id(account),
            expiry: (1 << 39) - 1,
            max_fee_bps: self.state.params().trade_fee_bps,
        }
    }

    /// A trade of two orders, signed by both accounts.
    pub fn trade(&mut self, buy: Order, sell: Order, size: u64, price: u64) -> SignedTx {
        let (kb, ks) = (self.key(buy.account), self.key(sell.account));
        Tx::Trade(Trade {
            buy,
            sell,
            size,
            price,
        })
        .sign(self.state.params().chain_id, &[&kb, &ks])
    }

    /// Convenience: `buyer` buys `size` of `series` from `seller` at `price`, with fresh orders
    /// whose limits equal the price and sizes equal the fill.
    pub fn simple_trade(
        &mut self,
        buyer: u64,
        seller: u64,
        series: u32,
        size: u64,
        price: u64,
    ) -> SignedTx {
        let b = self.order(buyer, series, Side::Buy, price, size);
        let s = self.order(seller, series, Side::Sell, price, size);
        self.trade(b, s, size, price)
    }

    /// A liquidation order signed by the liquidator with its current nonce.
    pub fn liquidate(
        &mut self,
        liquidator: u64,
        victim: u64,
        series: u32,
        size: u64,
        limit_price: u64,
    ) -> SignedTx {
        let nonce = self.state.account(liquidator).map_or(0, |a| a.nonce);
        let key = self.key(liquidator);
        let order = LiquidationOrder {
            liquidator,
            victim,
            series,
            max_size: size,
            limit_price,
            nonce,
        };
        Tx::Liquidate(Liquidate { order, size }).sign(self.state.params().chain_id, &[&key])
    }

    /// Settlement of `account`'s position in `series`.
    pub fn settle(&self, account: u64, series: u32) -> SignedTx {
        SignedTx::unsigned(Tx::SettleExpiry(SettleExpiry { account, series }))
    }

    /// Registration of a series.
    pub fn register(
        &self,
        underlying: u32,
        strike: u64,
        expiry: u64,
        kind: OptionKind,
        contract_size: u64,
    ) -> SignedTx {
        SignedTx::unsigned(Tx::RegisterSeries(RegisterSeries {
            underlying,
            strike,
            expiry,
            kind,
            contract_size,
        }))
    }

    /// A tick at `timestamp` in which the first `quorum` oracles all report the same `spot`
    /// and marks for each listed underlying.
    pub fn tick(&self, timestamp: u64, prices: &[TickPrices]) -> SignedTx {
        let quorum = self.state.params().oracle_quorum as u32;
        let reports = |u: u32, spot: u64, marks: &[(u32, u64)]| -> Vec<OracleReport> {
            (0..quorum)
                .map(|oracle| OracleReport {
                    oracle,
                    underlying: u,
                    timestamp,
                    spot,
                    marks: marks
                        .iter()
                        .map(|(series, mark)| SeriesMark {
                            series: *series,
                            mark: *mark,
                        })
                        .collect(),
                })
                .collect()
        };
        let underlyings = prices
            .iter()
            .map(|(u, spot, marks)| UnderlyingTick {
                underlying: *u,
                reports: reports(*u, *spot, marks),
            })
            .collect();
        self.sign_tick(OracleTick {
            timestamp,
            underlyings,
        })
    }

    /// Signs every report of a tick with its oracle's deterministic key.
    pub fn sign_tick(&self, tick: OracleTick) -> SignedTx {
        let keys: Vec<SecretKey> = tick
            .underlyings
            .iter()
            .flat_map(|u| u.reports.iter().map(|r| oracle_key(r.oracle.into())))
            .collect();
        let refs: Vec<&SecretKey> = keys.iter().collect();
        Tx::OracleTick(tick).sign(self.state.params().chain_id, &refs)
    }
}
