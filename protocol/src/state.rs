//! The state, its root, and the pure application of transactions (PROTOCOL.md §4, §7).
//!
//! [`State::check`] computes the [`Effects`] of a transaction without touching the state, or a
//! typed [`Rejection`]; [`State::apply`] then writes them, so a rejected transaction changes
//! nothing. Hashing is deferred: [`State::commit`] rehashes only dirty leaves (in parallel) and
//! their paths. [`State::apply_with_witness`] instead updates the tree per transaction and returns
//! the [`TxWitness`] the circuit consumes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ff::Field;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::account::{Account, OrderSlot, FEE_ACCOUNT, INSURANCE_FUND};
use crate::error::Rejection;
use crate::field::{domain_tag, Fr};
use crate::margin::{account_margin, ceil_bps, MarginSummary};
use crate::market::{list_hash, Series, Underlying};
use crate::merkle::{MerkleUpdate, SparseMerkleTree};
use crate::params::{bounds, check_bits, Genesis, ProtocolParams};
use crate::poseidon;
use crate::signature::{self, PublicKey};
use crate::tx::{
    tags, Deposit, L1Address, Liquidate, OracleTick, RegisterSeries, SettleExpiry, Side, SignedTx,
    Signer, Trade, Tx, Withdraw,
};

/// A withdrawal emitted for L1 (PROTOCOL.md §7.2, §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRecord {
    /// Debited account.
    pub account: u64,
    /// Amount.
    pub amount: u64,
    /// L1 recipient.
    pub recipient: L1Address,
}

impl WithdrawalRecord {
    /// Next withdrawals-commitment head: `H(tag, head, account, amount, recipient)` (§11).
    pub fn chain(&self, head: Fr) -> Fr {
        poseidon::hash(&[
            domain_tag(tags::WITHDRAWAL_CHAIN),
            head,
            Fr::from(self.account),
            Fr::from(self.amount),
            self.recipient.to_field(),
        ])
    }
}

/// Prices accepted for one underlying in a tick (PROTOCOL.md §8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptedPrice {
    /// Underlying index.
    pub underlying: u32,
    /// Median spot.
    pub spot: u64,
    /// Median mark per quoted series, ascending series id.
    pub marks: Vec<(u32, u64)>,
    /// Whether this tick tripped the breaker.
    pub tripped: bool,
}

/// Next tick-commitment head after a tick at `timestamp` that accepted `prices` (§11):
/// `H(tag, head, timestamp, H(p_0, spot_0, …, p_{U-1}, spot_{U-1}, q_0, mark_0, …, q_{S-1},
/// mark_{S-1}))` over the capacities `U = max_underlyings`, `S = max_series` of `params`, where
/// `p_u = 1` and `spot_u` is the median if the tick priced `u` (else both 0), and `q_s = 1` and
/// `mark_s` is the median mark if the tick quoted series `s` (else both 0). One step per tick.
///
/// Assumes every underlying and series index in `prices` is below its capacity (true of
/// accepted prices); others are left out.
pub fn tick_chain(
    params: &ProtocolParams,
    head: Fr,
    timestamp: u64,
    prices: &[AcceptedPrice],
) -> Fr {
    let mut unds = vec![Fr::ZERO; 2 * params.max_underlyings];
    let mut marks = vec![Fr::ZERO; 2 * params.max_series];
    for p in prices {
        let u = p.underlying as usize;
        if u < params.max_underlyings {
            unds[2 * u] = Fr::ONE;
            unds[2 * u + 1] = Fr::from(p.spot);
        }
        for (s, m) in &p.marks {
            let s = *s as usize;
            if s < params.max_series {
                marks[2 * s] = Fr::ONE;
                marks[2 * s + 1] = Fr::from(*m);
            }
        }
    }
    unds.extend(marks);
    poseidon::hash(&[
        domain_tag(tags::TICK_CHAIN),
        head,
        Fr::from(timestamp),
        poseidon::hash(&unds),
    ])
}

/// A margin check performed by a rule, with the figures it compared (PROTOCOL.md §5.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarginCheck {
    /// The account checked.
    pub account: u64,
    /// Its margin before the transaction.
    pub before: MarginSummary,
    /// Its margin after the transaction.
    pub after: MarginSummary,
}

/// Everything a transaction changes, computed by [`State::check`] (PROTOCOL.md §7).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Effects {
    /// New value of each touched account, each once, in first-touch order.
    pub accounts: Vec<(u64, Account)>,
    /// New or changed series.
    pub series: Vec<(u32, Series)>,
    /// Changed underlyings.
    pub underlyings: Vec<(u32, Underlying)>,
    /// New state time (oracle ticks).
    pub time: Option<u64>,
    /// New deposit-queue head and count (deposits).
    pub deposit_head: Option<(Fr, u64)>,
    /// Withdrawal emitted for L1.
    pub withdrawal: Option<WithdrawalRecord>,
    /// Prices accepted (oracle ticks).
    pub prices: Vec<AcceptedPrice>,
    /// Fees paid to the fee account.
    pub fees: u128,
    /// Margin checks made, for the circuit and for diagnostics.
    pub margin_checks: Vec<MarginCheck>,
}

/// The preimage of the state root (PROTOCOL.md §4.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateHeader {
    /// Root of the accounts tree.
    #[serde(with = "crate::field::fr_hex")]
    pub accounts_root: Fr,
    /// Hash of the series registry.
    #[serde(with = "crate::field::fr_hex")]
    pub series_hash: Fr,
    /// Hash of the underlyings list.
    #[serde(with = "crate::field::fr_hex")]
    pub underlyings_hash: Fr,
    /// Hash of the oracle registry.
    #[serde(with = "crate::field::fr_hex")]
    pub oracles_hash: Fr,
    /// Hash of the protocol parameters.
    #[serde(with = "crate::field::fr_hex")]
    pub params_hash: Fr,
    /// State time (latest tick).
    pub time: u64,
    /// Head of the consumed prefix of the deposit queue.
    #[serde(with = "crate::field::fr_hex")]
    pub deposit_head: Fr,
    /// Number of deposits consumed.
    pub deposit_count: u64,
}

impl StateHeader {
    /// `H("collar/state/v1", accounts_root, series_hash, underlyings_hash, oracles_hash,
    /// params_hash, time, deposit_head, deposit_count)` (§4.9).
    pub fn root(&self) -> Fr {
        poseidon::hash(&[
            domain_tag(tags::STATE),
            self.accounts_root,
            self.series_hash,
            self.underlyings_hash,
            self.oracles_hash,
            self.params_hash,
            Fr::from(self.time),
            self.deposit_head,
            Fr::from(self.deposit_count),
        ])
    }
}

/// One account write with its Merkle witness (PROTOCOL.md §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountUpdateWitness {
    /// Account id (leaf index).
    pub account: u64,
    /// Leaf preimage before.
    pub before: Account,
    /// Leaf preimage after.
    pub after: Account,
    /// Old and new leaf under old and new accounts root, sharing siblings.
    pub merkle: MerkleUpdate,
    /// The order-slot write, if the transaction filled an order of this account (§4.4).
    pub order_slot: Option<MerkleUpdate>,
}

/// What the circuit consumes for one transaction (PROTOCOL.md §11).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxWitness {
    /// The transaction.
    pub tx: Tx,
    /// Root preimage before.
    pub header_before: StateHeader,
    /// Root preimage after.
    pub header_after: StateHeader,
    /// Account writes, in order; each chains `old_root -> new_root` of the accounts tree.
    pub account_updates: Vec<AccountUpdateWitness>,
    /// Series registry before, when the transaction changes it.
    pub series_before: Option<Vec<Series>>,
    /// Underlyings before, when the transaction changes them.
    pub underlyings_before: Option<Vec<Underlying>>,
    /// The effects (margin figures, fees, prices, withdrawal).
    pub effects: Effects,
}

/// The whole rollup state (PROTOCOL.md §4).
#[derive(Clone, Debug)]
pub struct State {
    params: ProtocolParams,
    accounts: HashMap<u64, Account>,
    tree: SparseMerkleTree,
    dirty: BTreeSet<u64>,
    /// Order subtrees of accounts hashed before, kept so that a commit rehashes only the slots
    /// written since (a cache: an account without an entry is rebuilt from its orders).
    order_trees: HashMap<u64, OrderTree>,
    series: Vec<Series>,
    underlyings: Vec<Underlying>,
    oracles: Vec<PublicKey>,
    time: u64,
    deposit_head: Fr,
    deposit_count: u64,
    series_hash: Option<Fr>,
    underlyings_hash: Option<Fr>,
    oracles_hash: Fr,
    params_hash: Fr,
}

/// An account's order subtree with the slots written since it was last hashed (§4.4).
#[derive(Clone, Debug)]
struct OrderTree {
    tree: SparseMerkleTree,
    stale: BTreeSet<u64>,
}

impl OrderTree {
    /// The subtree of `account`'s current orders, hashed.
    fn build(account: &Account, depth: usize) -> Self {
        Self {
            tree: account.orders_tree(depth),
            stale: BTreeSet::new(),
        }
    }

    /// Records the slots whose content differs between `old` and `new` (a merge walk; no
    /// hashing).
    fn mark_changed(&mut self, old: &BTreeMap<u64, OrderSlot>, new: &BTreeMap<u64, OrderSlot>) {
        let (mut a, mut b) = (old.iter().peekable(), new.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some((i, _)), None) => {
                    self.stale.insert(**i);
                    a.next();
                }
                (None, Some((j, _))) => {
                    self.stale.insert(**j);
                    b.next();
                }
                (Some((i, x)), Some((j, y))) => {
                    if i < j {
                        self.stale.insert(**i);
                        a.next();
                    } else if j < i {
                        self.stale.insert(**j);
                        b.next();
                    } else {
                        if x != y {
                            self.stale.insert(**i);
                        }
                        a.next();
                        b.next();
                    }
                }
            }
        }
    }

    /// Rehashes the stale slots from `account`'s orders (which the marks must cover) and
    /// returns the subtree root.
    fn refresh(&mut self, account: &Account) -> Fr {
        for slot in std::mem::take(&mut self.stale) {
            let leaf = account.orders.get(&slot).map_or(Fr::ZERO, OrderSlot::leaf);
            self.tree
                .set_leaf(slot, leaf)
                .expect("slot index is reduced mod 2^depth");
        }
        self.tree.commit()
    }
}

/// The touched-account working set of one transaction: reads fall through to the state,
/// writes stay here until the effects are applied.
struct WorkingSet<'a> {
    state: &'a State,
    touched: Vec<(u64, Account)>,
}

impl<'a> WorkingSet<'a> {
    fn new(state: &'a State) -> Self {
        Self {
            state,
            touched: Vec::new(),
        }
    }

    fn slot(&mut self, id: u64) -> Result<usize, Rejection> {
        if let Some(i) = self.touched.iter().position(|(a, _)| *a == id) {
            return Ok(i);
        }
        let acc = self
            .state
            .account(id)
            .ok_or(Rejection::UnknownAccount(id))?
            .clone();
        self.touched.push((id, acc));
        Ok(self.touched.len() - 1)
    }

    /// The current (possibly modified) account; it must exist.
    fn get(&mut self, id: u64) -> Result<&mut Account, Rejection> {
        let i = self.slot(id)?;
        Ok(&mut self.touched[i].1)
    }
}

fn add_collateral(acc: &mut Account, amount: u128, what: &'static str) -> Result<(), Rejection> {
    let v = u128::from(acc.collateral) + amount;
    if v >= bounds::limit(bounds::COLLATERAL_BITS) {
        return Err(Rejection::Overflow(what));
    }
    acc.collateral = v as u64;
    Ok(())
}

fn sub_collateral(acc: &mut Account, id: u64, amount: u128) -> Result<(), Rejection> {
    if u128::from(acc.collateral) < amount {
        return Err(Rejection::InsufficientCollateral {
            account: id,
            available: acc.collateral.into(),
            needed: amount,
        });
    }
    acc.collateral -= amount as u64;
    Ok(())
}

/// Adds `delta` to the position in `series`, checking the size bound and slot capacity (§4.3).
fn move_position(acc: &mut Account, id: u64, series: u32, delta: i128) -> Result<(), Rejection> {
    let new = i128::from(acc.position(series)) + delta;
    if new.unsigned_abs() >= bounds::limit(bounds::SIZE_BITS) {
        return Err(Rejection::Overflow("position size"));
    }
    if !acc.set_position(series, new as i64) {
        return Err(Rejection::PositionLimit(id));
    }
    Ok(())
}

/// Whether moving a position from `before` to `after` only reduces it: `|after| < |before|`
/// with no sign flip (§9).
fn reduces(before: i64, after: i64) -> bool {
    after.unsigned_abs() < before.unsigned_abs() && (after == 0 || (after > 0) == (before > 0))
}

/// The lower median of `values` (§8): the element at index `(n-1)/2` after sorting.
///
/// # Panics
/// If `values` is empty.
pub fn lower_median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values[(values.len() - 1) / 2]
}

impl State {
    /// Builds the genesis state: the fee account (0) and the insurance fund (1) exist with the
    /// given keys and no collateral; underlyings have no price; the registry is empty (§4.10).
    pub fn genesis(g: &Genesis) -> Result<Self, Rejection> {
        let p = &g.params;
        p.validate()?;
        if g.underlyings.is_empty() || g.underlyings.len() > p.max_underlyings {
            return Err(Rejection::InvalidParams(
                "need 1..=max_underlyings underlyings",
            ));
        }
        if g.oracles.len() < p.oracle_quorum || g.oracles.len() > p.max_oracles {
            return Err(Rejection::InvalidParams(
                "need quorum..=max_oracles oracle keys",
            ));
        }
        if 2 * p.oracle_quorum <= g.oracles.len() {
            return Err(Rejection::InvalidParams(
                "oracle_quorum must be more than half the oracles",
            ));
        }
        for u in &g.underlyings {
            u.validate()?;
        }
        let symbols: BTreeSet<&str> = g.underlyings.iter().map(|u| u.symbol.as_str()).collect();
        if symbols.len() != g.underlyings.len() {
            return Err(Rejection::InvalidParams(
                "underlying symbols must be distinct",
            ));
        }
        let keys: BTreeSet<[u8; 32]> = g
            .oracles
            .iter()
            .map(|k| crate::field::fr_to_be_bytes(&k.x))
            .collect();
        if keys.len() != g.oracles.len() {
            return Err(Rejection::InvalidParams("oracle keys must be distinct"));
        }
        for k in g
            .oracles
            .iter()
            .chain([&g.fee_account_key, &g.insurance_fund_key])
        {
            k.to_affine()
                .map_err(|_| Rejection::InvalidParams("genesis keys must be valid points"))?;
        }
        let tree = SparseMerkleTree::new(p.account_depth)
            .map_err(|_| Rejection::InvalidParams("account depth"))?;
        let oracle_fields: Vec<Fr> = g.oracles.iter().flat_map(|k| k.to_fields()).collect();
        let mut oracles_in = vec![Fr::from(p.oracle_quorum as u64)];
        oracles_in.extend(oracle_fields);
        oracles_in.resize(1 + 2 * p.max_oracles, Fr::ZERO);
        let mut s = Self {
            params: p.clone(),
            accounts: HashMap::new(),
            tree,
            dirty: BTreeSet::new(),
            order_trees: HashMap::new(),
            series: Vec::new(),
            underlyings: g.underlyings.iter().cloned().map(Underlying::new).collect(),
            oracles: g.oracles.clone(),
            time: 0,
            deposit_head: Fr::ZERO,
            deposit_count: 0,
            series_hash: None,
            underlyings_hash: None,
            oracles_hash: poseidon::hash(&oracles_in),
            params_hash: p.hash(),
        };
        for (id, key) in [
            (FEE_ACCOUNT, g.fee_account_key),
            (INSURANCE_FUND, g.insurance_fund_key),
        ] {
            s.accounts.insert(id, Account::new(key, p.max_positions));
            s.dirty.insert(id);
        }
        s.commit();
        Ok(s)
    }

    /// The protocol parameters.
    pub fn params(&self) -> &ProtocolParams {
        &self.params
    }

    /// An existing account.
    pub fn account(&self, id: u64) -> Option<&Account> {
        self.accounts.get(&id)
    }

    /// Every existing account, in no particular order.
    pub fn accounts(&self) -> impl Iterator<Item = (u64, &Account)> {
        self.accounts.iter().map(|(k, v)| (*k, v))
    }

    /// The series registry, indexed by series id.
    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// Underlyings, indexed by underlying id.
    pub fn underlyings(&self) -> &[Underlying] {
        &self.underlyings
    }

    /// Registered oracle keys, indexed by oracle id.
    pub fn oracles(&self) -> &[PublicKey] {
        &self.oracles
    }

    /// State time: the latest tick's timestamp.
    pub fn time(&self) -> u64 {
        self.time
    }

    /// Head and count of the consumed deposit-queue prefix (§7.1).
    pub fn deposit_queue(&self) -> (Fr, u64) {
        (self.deposit_head, self.deposit_count)
    }

    /// Margin summary of an existing account at current prices (§5).
    pub fn margin(&self, id: u64) -> Option<MarginSummary> {
        self.account(id)
            .map(|a| account_margin(a, &self.series, &self.underlyings))
    }

    /// Sum of every account's collateral (the conservation invariant of §12).
    pub fn total_collateral(&self) -> u128 {
        self.accounts
            .values()
            .map(|a| u128::from(a.collateral))
            .sum()
    }

    /// Rehashes dirty account leaves (in parallel) and market lists, and returns the root.
    pub fn commit(&mut self) -> Fr {
        self.header().root()
    }

    /// The state root (commits first).
    pub fn root(&mut self) -> Fr {
        self.commit()
    }

    /// The root preimage (commits first) (§4.9).
    pub fn header(&mut self) -> StateHeader {
        if !self.dirty.is_empty() {
            let depth = self.params.order_slot_depth;
            let work: Vec<(u64, Option<OrderTree>)> = std::mem::take(&mut self.dirty)
                .into_iter()
                .map(|id| (id, self.order_trees.remove(&id)))
                .collect();
            let accounts = &self.accounts;
            let done: Vec<(u64, Fr, Option<OrderTree>)> = work
                .into_par_iter()
                .map(|(id, cached)| match accounts.get(&id) {
                    Some(a) if a.exists() => {
                        let mut t = cached.unwrap_or_else(|| OrderTree::build(a, depth));
                        let root = t.refresh(a);
                        (id, a.leaf_with(root), Some(t))
                    }
                    _ => (id, Fr::ZERO, None),
                })
                .collect();
            for (id, leaf, tree) in done {
                self.tree
                    .set_leaf(id, leaf)
                    .expect("ids are range-checked before use");
                if let Some(t) = tree {
                    self.order_trees.insert(id, t);
                }
            }
        }
        let accounts_root = self.tree.commit();
        let series_hash = *self.series_hash.get_or_insert_with(|| {
            list_hash(self.series.iter().map(Series::leaf), self.params.max_series)
        });
        let underlyings_hash = *self.underlyings_hash.get_or_insert_with(|| {
            list_hash(
                self.underlyings.iter().map(Underlying::leaf),
                self.params.max_underlyings,
            )
        });
        StateHeader {
            accounts_root,
            series_hash,
            underlyings_hash,
            oracles_hash: self.oracles_hash,
            params_hash: self.params_hash,
            time: self.time,
            deposit_head: self.deposit_head,
            deposit_count: self.deposit_count,
        }
    }

    /// The root recomputed from scratch: every leaf rehashed (order subtrees rebuilt), the
    /// accounts tree rebuilt, market lists rehashed. Equals [`State::root`]; for cross-checks.
    pub fn recompute_root(&self) -> Fr {
        let depth = self.params.order_slot_depth;
        let leaves: Vec<(u64, Fr)> = self
            .accounts
            .par_iter()
            .map(|(id, a)| (*id, a.leaf(depth)))
            .collect();
        let accounts_root = SparseMerkleTree::rebuild_root(self.params.account_depth, leaves)
            .expect("ids are range-checked before use");
        StateHeader {
            accounts_root,
            series_hash: list_hash(self.series.iter().map(Series::leaf), self.params.max_series),
            underlyings_hash: list_hash(
                self.underlyings.iter().map(Underlying::leaf),
                self.params.max_underlyings,
            ),
            oracles_hash: self.oracles_hash,
            params_hash: self.params_hash,
            time: self.time,
            deposit_head: self.deposit_head,
            deposit_count: self.deposit_count,
        }
        .root()
    }

    /// A copy of the accounts tree (§4.1) with every leaf up to date, including leaves of
    /// accounts written since the last commit (rehashed here, in parallel, on the copy). Leaves
    /// `self` as it is; cheaper than rebuilding the tree from [`State::accounts`].
    pub fn accounts_tree(&self) -> SparseMerkleTree {
        let depth = self.params.order_slot_depth;
        let leaves: Vec<(u64, Fr)> = self
            .dirty
            .par_iter()
            .map(|id| {
                (
                    *id,
                    self.accounts.get(id).map_or(Fr::ZERO, |a| a.leaf(depth)),
                )
            })
            .collect();
        let mut tree = self.tree.clone();
        for (id, leaf) in leaves {
            tree.set_leaf(id, leaf)
                .expect("ids are range-checked before use");
        }
        tree.commit();
        tree
    }

    /// A Merkle proof of an account leaf against the accounts root (commits first) (§4.1).
    pub fn account_proof(&mut self, id: u64) -> Result<crate::merkle::MerkleProof, Rejection> {
        self.commit();
        self.tree
            .proof(id)
            .map_err(|_| Rejection::AccountOutOfRange(id))
    }

    /// Verifies every signature of `stx` against the keys in this state (§6.3).
    pub fn verify_signatures(&self, stx: &SignedTx) -> Result<(), Rejection> {
        let items = self.signature_items(stx)?;
        for (signer, pk, m, sig) in items {
            signature::verify(&pk, m, &sig).map_err(|source| Rejection::BadSignature {
                signer: signer.to_string(),
                source,
            })?;
        }
        Ok(())
    }

    /// The `(signer, key, message, signature)` items of `stx`, resolving keys in this state.
    pub fn signature_items(
        &self,
        stx: &SignedTx,
    ) -> Result<Vec<(Signer, PublicKey, Fr, signature::Signature)>, Rejection> {
        let msgs = stx.tx.signed_messages(self.params.chain_id);
        if msgs.len() != stx.signatures.len() {
            return Err(Rejection::BadSignature {
                signer: format!(
                    "{} signatures for {} messages",
                    stx.signatures.len(),
                    msgs.len()
                ),
                source: signature::SignatureError::Mismatch,
            });
        }
        msgs.into_iter()
            .zip(&stx.signatures)
            .map(|((signer, m), sig)| Ok((signer, self.signer_key(signer)?, m, *sig)))
            .collect()
    }

    /// The key that signs for `signer` in this state (§6.5). An account's key never changes
    /// once the account exists, and oracle keys are fixed at genesis, so a key found here is
    /// the signer's key in every later state.
    pub fn signer_key(&self, signer: Signer) -> Result<PublicKey, Rejection> {
        match signer {
            Signer::Account(a) => Ok(self.account(a).ok_or(Rejection::UnknownAccount(a))?.pubkey),
            Signer::Oracle(o) => self
                .oracles
                .get(o as usize)
                .copied()
                .ok_or(Rejection::UnregisteredOracle(o.into())),
        }
    }

    /// Verifies signatures, then applies (§6, §7).
    pub fn apply_signed(&mut self, stx: &SignedTx) -> Result<Effects, Rejection> {
        self.verify_signatures(stx)?;
        self.apply(&stx.tx)
    }

    /// Applies a transaction whose signatures were already checked (or that carries none).
    /// On rejection nothing changes.
    pub fn apply(&mut self, tx: &Tx) -> Result<Effects, Rejection> {
        let effects = self.check(tx)?;
        self.write(&effects);
        Ok(effects)
    }

    /// Applies `tx` and returns the circuit witness: the tree is updated write by write (§11).
    pub fn apply_with_witness(&mut self, tx: &Tx) -> Result<TxWitness, Rejection> {
        let header_before = self.header();
        let effects = self.check(tx)?;
        let depth = self.params.order_slot_depth;
        let mut account_updates = Vec::with_capacity(effects.accounts.len());
        for (id, after) in &effects.accounts {
            let before = self
                .accounts
                .get(id)
                .cloned()
                .unwrap_or_else(|| Account::new(PublicKey::ZERO, self.params.max_positions));
            let order_slot = before
                .orders
                .keys()
                .chain(after.orders.keys())
                .find(|slot| before.orders.get(slot) != after.orders.get(slot))
                .map(|slot| {
                    let mut t = before.orders_tree(depth);
                    let leaf = after.orders.get(slot).map_or(Fr::ZERO, |o| o.leaf());
                    t.update(*slot, leaf).expect("slot within subtree")
                });
            // The order-slot update already yields the new orders root; reuse it.
            let leaf = match &order_slot {
                Some(u) => after.leaf_with(u.new_root),
                None => after.leaf(depth),
            };
            let merkle = self.tree.update(*id, leaf).expect("range-checked id");
            account_updates.push(AccountUpdateWitness {
                account: *id,
                before,
                after: after.clone(),
                merkle,
                order_slot,
            });
            self.accounts.insert(*id, after.clone());
            // The tree was updated directly; the cached order subtree may be behind.
            self.order_trees.remove(id);
        }
        let series_before = (!effects.series.is_empty()).then(|| self.series.clone());
        let underlyings_before =
            (!effects.underlyings.is_empty()).then(|| self.underlyings.clone());
        self.write_market(&effects);
        let header_after = self.header();
        Ok(TxWitness {
            tx: tx.clone(),
            header_before,
            header_after,
            account_updates,
            series_before,
            underlyings_before,
            effects,
        })
    }

    fn write(&mut self, e: &Effects) {
        for (id, acc) in &e.accounts {
            if let (Some(t), Some(old)) = (self.order_trees.get_mut(id), self.accounts.get(id)) {
                t.mark_changed(&old.orders, &acc.orders);
            }
            self.accounts.insert(*id, acc.clone());
            self.dirty.insert(*id);
        }
        self.write_market(e);
    }

    fn write_market(&mut self, e: &Effects) {
        for (id, s) in &e.series {
            let i = *id as usize;
            if i == self.series.len() {
                self.series.push(*s);
            } else {
                self.series[i] = *s;
            }
            self.series_hash = None;
        }
        for (id, u) in &e.underlyings {
            self.underlyings[*id as usize] = u.clone();
            self.underlyings_hash = None;
        }
        if let Some(t) = e.time {
            self.time = t;
        }
        if let Some((head, count)) = e.deposit_head {
            self.deposit_head = head;
            self.deposit_count = count;
        }
    }

    /// Computes the effects of `tx` against this state, or why it is rejected. Pure.
    pub fn check(&self, tx: &Tx) -> Result<Effects, Rejection> {
        match tx {
            Tx::Deposit(d) => self.check_deposit(d),
            Tx::Withdraw(w) => self.check_withdraw(w),
            Tx::Trade(t) => self.check_trade(t),
            Tx::Liquidate(l) => self.check_liquidate(l),
            Tx::SettleExpiry(s) => self.check_settle(s),
            Tx::OracleTick(t) => self.check_tick(t),
            Tx::RegisterSeries(r) => self.check_register(r),
        }
    }

    fn check_account_id(&self, id: u64) -> Result<(), Rejection> {
        if id >= 1u64 << self.params.account_depth {
            return Err(Rejection::AccountOutOfRange(id));
        }
        Ok(())
    }

    fn live_series(&self, id: u32) -> Result<(&Series, &Underlying), Rejection> {
        let s = self
            .series
            .get(id as usize)
            .ok_or(Rejection::UnknownSeries(id.into()))?;
        if s.is_expired(self.time) {
            return Err(Rejection::SeriesExpired(id.into()));
        }
        let u = &self.underlyings[s.underlying as usize];
        if u.spot == 0 {
            return Err(Rejection::NoPrice(s.underlying.into()));
        }
        Ok((s, u))
    }

    /// The first underlying, among those of `acc`'s positions, whose breaker halts risk (§9).
    fn halted_underlying_of(&self, acc: &Account) -> Option<u32> {
        acc.positions
            .iter()
            .filter(|p| p.size != 0)
            .map(|p| self.series[p.series as usize].underlying)
            .find(|u| self.underlyings[*u as usize].is_halted(self.time))
    }

    fn margin_of(&self, acc: &Account) -> MarginSummary {
        account_margin(acc, &self.series, &self.underlyings)
    }

    /// §7.1 Deposit.
    fn check_deposit(&self, d: &Deposit) -> Result<Effects, Rejection> {
        self.check_account_id(d.account)?;
        if d.amount == 0 {
            return Err(Rejection::Zero("deposit amount"));
        }
        check_bits("deposit amount", d.amount.into(), bounds::AMOUNT_BITS)?;
        let mut acc = match self.account(d.account) {
            Some(a) => a.clone(),
            None => {
                d.pubkey
                    .to_affine()
                    .map_err(|_| Rejection::InvalidKey(d.account))?;
                Account::new(d.pubkey, self.params.max_positions)
            }
        };
        add_collateral(&mut acc, d.amount.into(), "collateral")?;
        Ok(Effects {
            accounts: vec![(d.account, acc)],
            deposit_head: Some((d.chain(self.deposit_head), self.deposit_count + 1)),
            ..Effects::default()
        })
    }

    /// §7.2 Withdraw.
    fn check_withdraw(&self, w: &Withdraw) -> Result<Effects, Rejection> {
        self.check_account_id(w.account)?;
        if w.amount == 0 {
            return Err(Rejection::Zero("withdrawal amount"));
        }
        check_bits("withdrawal amount", w.amount.into(), bounds::AMOUNT_BITS)?;
        let before = self
            .account(w.account)
            .ok_or(Rejection::UnknownAccount(w.account))?;
        if w.nonce != before.nonce {
            return Err(Rejection::BadNonce {
                expected: before.nonce,
                got: w.nonce,
            });
        }
        if let Some(u) = self.halted_underlying_of(before) {
            return Err(Rejection::BreakerTripped(u.into()));
        }
        let mut acc = before.clone();
        sub_collateral(&mut acc, w.account, w.amount.into())?;
        acc.nonce = bump_nonce(acc.nonce)?;
        let m_before = self.margin_of(before);
        let m_after = self.margin_of(&acc);
        if !m_after.meets_initial() {
            return Err(Rejection::InitialMarginViolated {
                account: w.account,
                equity: m_after.im_equity,
                requirement: m_after.initial,
            });
        }
        Ok(Effects {
            accounts: vec![(w.account, acc)],
            withdrawal: Some(WithdrawalRecord {
                account: w.account,
                amount: w.amount,
                recipient: w.recipient,
            }),
            margin_checks: vec![MarginCheck {
                account: w.account,
                before: m_before,
                after: m_after,
            }],
            ..Effects::default()
        })
    }

    /// §7.3 Trade.
    fn check_trade(&self, t: &Trade) -> Result<Effects, Rejection> {
        let (b, s) = (&t.buy, &t.sell);
        if b.side != Side::Buy || s.side != Side::Sell {
            return Err(Rejection::OrderMismatch(
                "first order must buy and second must sell",
            ));
        }
        if b.series != s.series {
            return Err(Rejection::OrderMismatch("orders are for different series"));
        }
        if b.account == s.account {
            return Err(Rejection::SelfTrade);
        }
        self.check_account_id(b.account)?;
        self.check_account_id(s.account)?;
        if t.size == 0 {
            return Err(Rejection::Zero("fill size"));
        }
        check_bits("fill size", t.size.into(), bounds::SIZE_BITS)?;
        for o in [b, s] {
            check_bits("order max_size", o.max_size.into(), bounds::SIZE_BITS)?;
            check_bits("order id", o.order_id.into(), bounds::NONCE_BITS)?;
            check_bits("order expiry", o.expiry.into(), bounds::TIME_BITS)?;
            check_bits("order max_fee_bps", o.max_fee_bps.into(), bounds::BPS_BITS)?;
        }
        let (series, underlying) = self.live_series(b.series)?;
        if t.price > b.limit_price {
            return Err(Rejection::PriceLimit {
                price: t.price,
                limit: b.limit_price,
            });
        }
        if t.price < s.limit_price {
            return Err(Rejection::PriceLimit {
                price: t.price,
                limit: s.limit_price,
            });
        }
        let fee_bps = self.params.trade_fee_bps;
        for o in [b, s] {
            if self.time > o.expiry {
                return Err(Rejection::OrderExpired {
                    expiry: o.expiry,
                    now: self.time,
                });
            }
            if fee_bps > o.max_fee_bps {
                return Err(Rejection::FeeCapExceeded {
                    fee_bps,
                    cap_bps: o.max_fee_bps,
                });
            }
        }
        let halted = underlying.is_halted(self.time);
        let premium = u128::from(t.size) * u128::from(t.price);
        let fee = ceil_bps(premium, fee_bps);
        let mut ws = WorkingSet::new(self);
        let mut checks = Vec::with_capacity(2);
        for (o, delta) in [(b, i128::from(t.size)), (s, -i128::from(t.size))] {
            let before = ws.get(o.account)?.clone();
            let acc = ws.get(o.account)?;
            fill_order(
                acc,
                o.order_id,
                o.max_size,
                t.size,
                self.params.order_slot_depth,
            )?;
            if delta > 0 {
                sub_collateral(acc, o.account, premium + fee)?;
            } else {
                add_collateral(acc, premium - fee, "collateral")?;
            }
            move_position(acc, o.account, o.series, delta)?;
            if halted && !reduces(before.position(o.series), acc.position(o.series)) {
                return Err(Rejection::BreakerTripped(series.underlying.into()));
            }
            let after = acc.clone();
            let (mb, ma) = (self.margin_of(&before), self.margin_of(&after));
            check_initial_or_reducing(o.account, &mb, &ma)?;
            checks.push(MarginCheck {
                account: o.account,
                before: mb,
                after: ma,
            });
        }
        add_collateral(ws.get(FEE_ACCOUNT)?, 2 * fee, "fee account collateral")?;
        Ok(Effects {
            accounts: ws.touched,
            fees: 2 * fee,
            margin_checks: checks,
            ..Effects::default()
        })
    }

    /// §7.4 Liquidate.
    fn check_liquidate(&self, l: &Liquidate) -> Result<Effects, Rejection> {
        let o = &l.order;
        if o.liquidator == o.victim {
            return Err(Rejection::SelfTrade);
        }
        self.check_account_id(o.liquidator)?;
        self.check_account_id(o.victim)?;
        if l.size == 0 {
            return Err(Rejection::Zero("liquidation size"));
        }
        check_bits("liquidation size", l.size.into(), bounds::SIZE_BITS)?;
        check_bits("liquidation max_size", o.max_size.into(), bounds::SIZE_BITS)?;
        check_bits("liquidation nonce", o.nonce.into(), bounds::NONCE_BITS)?;
        if l.size > o.max_size {
            return Err(Rejection::Overfilled {
                filled: l.size,
                max_size: o.max_size,
            });
        }
        let (series, underlying) = self.live_series(o.series)?;
        if underlying.is_halted(self.time) {
            return Err(Rejection::LiquidationsPaused(series.underlying.into()));
        }
        let liq = self
            .account(o.liquidator)
            .ok_or(Rejection::UnknownAccount(o.liquidator))?;
        if o.nonce != liq.nonce {
            return Err(Rejection::BadNonce {
                expected: liq.nonce,
                got: o.nonce,
            });
        }
        let victim = self
            .account(o.victim)
            .ok_or(Rejection::UnknownAccount(o.victim))?;
        let vm_before = self.margin_of(victim);
        if !vm_before.is_liquidatable() {
            return Err(Rejection::NotLiquidatable {
                account: o.victim,
                equity: vm_before.equity,
                requirement: vm_before.maintenance,
            });
        }
        let q = victim.position(o.series);
        if q == 0 {
            return Err(Rejection::NoPosition {
                account: o.victim,
                series: o.series.into(),
            });
        }
        if l.size > q.unsigned_abs() {
            return Err(Rejection::LiquidationTooLarge {
                size: l.size,
                position: q.unsigned_abs(),
            });
        }
        let mark = u128::from(series.mark);
        let penalty = ceil_bps(mark, self.params.liquidation_penalty_bps);
        let victim_short = q < 0;
        let price = if victim_short {
            mark + penalty
        } else {
            mark - penalty
        };
        check_bits("liquidation price", price, bounds::CONTRACT_PRICE_BITS)
            .map_err(|_| Rejection::Overflow("liquidation price"))?;
        let limit_ok = if victim_short {
            price >= o.limit_price.into()
        } else {
            price <= o.limit_price.into()
        };
        if !limit_ok {
            return Err(Rejection::PriceLimit {
                price: price as u64,
                limit: o.limit_price,
            });
        }
        let cost = u128::from(l.size) * price;
        let size = i128::from(l.size);
        let liq_before = liq.clone();
        let mut ws = WorkingSet::new(self);
        if victim_short {
            // The victim buys back at mark + penalty; any deficit is paid by the insurance fund.
            let v = ws.get(o.victim)?;
            move_position(v, o.victim, o.series, size)?;
            let paid = cost.min(u128::from(v.collateral));
            v.collateral -= paid as u64;
            let deficit = cost - paid;
            if deficit > 0 {
                // The fund covers only an insolvent victim: one left holding no longs, whose
                // value would otherwise pay the deficit (its longs are liquidated first).
                if v.positions.iter().any(|p| p.size > 0) {
                    return Err(Rejection::InsufficientCollateral {
                        account: o.victim,
                        available: paid,
                        needed: cost,
                    });
                }
                let fund = ws.get(INSURANCE_FUND)?;
                if u128::from(fund.collateral) < deficit {
                    return Err(Rejection::InsuranceFundExhausted {
                        available: fund.collateral.into(),
                        needed: deficit,
                    });
                }
                fund.collateral -= deficit as u64;
            }
            let lq = ws.get(o.liquidator)?;
            move_position(lq, o.liquidator, o.series, -size)?;
            add_collateral(lq, cost, "collateral")?;
        } else {
            // The victim sells at mark - penalty to the liquidator.
            let v = ws.get(o.victim)?;
            move_position(v, o.victim, o.series, -size)?;
            add_collateral(v, cost, "collateral")?;
            let lq = ws.get(o.liquidator)?;
            sub_collateral(lq, o.liquidator, cost)?;
            move_position(lq, o.liquidator, o.series, size)?;
        }
        let lq = ws.get(o.liquidator)?;
        lq.nonce = bump_nonce(lq.nonce)?;
        let lm_after = self.margin_of(lq);
        if !lm_after.meets_initial() {
            return Err(Rejection::InitialMarginViolated {
                account: o.liquidator,
                equity: lm_after.im_equity,
                requirement: lm_after.initial,
            });
        }
        let victim_after = ws.get(o.victim)?.clone();
        let checks = vec![
            MarginCheck {
                account: o.victim,
                before: vm_before,
                after: self.margin_of(&victim_after),
            },
            MarginCheck {
                account: o.liquidator,
                before: self.margin_of(&liq_before),
                after: lm_after,
            },
        ];
        Ok(Effects {
            accounts: ws.touched,
            margin_checks: checks,
            ..Effects::default()
        })
    }

    /// §7.5 Settle expiry.
    fn check_settle(&self, st: &SettleExpiry) -> Result<Effects, Rejection> {
        self.check_account_id(st.account)?;
        let series = self
            .series
            .get(st.series as usize)
            .ok_or(Rejection::UnknownSeries(st.series.into()))?;
        if series.settlement_price == 0 {
            return Err(Rejection::SeriesNotSettled(st.series.into()));
        }
        let acc = self
            .account(st.account)
            .ok_or(Rejection::UnknownAccount(st.account))?;
        let q = acc.position(st.series);
        if q == 0 {
            return Err(Rejection::NoPosition {
                account: st.account,
                series: st.series.into(),
            });
        }
        let value = u128::from(q.unsigned_abs()) * series.intrinsic(series.settlement_price);
        let mut ws = WorkingSet::new(self);
        if q > 0 {
            let fund = ws.get(INSURANCE_FUND)?;
            if u128::from(fund.collateral) < value {
                return Err(Rejection::InsuranceFundExhausted {
                    available: fund.collateral.into(),
                    needed: value,
                });
            }
            fund.collateral -= value as u64;
            add_collateral(ws.get(st.account)?, value, "collateral")?;
        } else {
            let a = ws.get(st.account)?;
            let paid = value.min(u128::from(a.collateral));
            // A shortfall is absorbed by the fund only if the account holds no longs that could
            // pay it once sold or settled (§7.5).
            if paid < value && a.positions.iter().any(|p| p.size > 0) {
                return Err(Rejection::InsufficientCollateral {
                    account: st.account,
                    available: paid,
                    needed: value,
                });
            }
            a.collateral -= paid as u64;
            add_collateral(ws.get(INSURANCE_FUND)?, paid, "insurance fund collateral")?;
        }
        let a = ws.get(st.account)?;
        a.set_position(st.series, 0);
        Ok(Effects {
            accounts: ws.touched,
            ..Effects::default()
        })
    }

    /// §7.6 Oracle tick, with the quorum median of §8 and the breakers of §9.
    fn check_tick(&self, t: &OracleTick) -> Result<Effects, Rejection> {
        if t.timestamp <= self.time {
            return Err(Rejection::StaleTimestamp {
                previous: self.time,
                got: t.timestamp,
            });
        }
        check_bits("tick timestamp", t.timestamp.into(), bounds::TIME_BITS)?;
        if t.underlyings.is_empty() {
            return Err(Rejection::BadTick(
                "a tick must price at least one underlying",
            ));
        }
        let mut effects = Effects {
            time: Some(t.timestamp),
            ..Effects::default()
        };
        let mut series = self.series.clone();
        let mut prev_underlying: Option<u32> = None;
        for ut in &t.underlyings {
            if prev_underlying.is_some_and(|p| ut.underlying <= p) {
                return Err(Rejection::BadTick("underlyings must be strictly ascending"));
            }
            prev_underlying = Some(ut.underlying);
            let mut u = self
                .underlyings
                .get(ut.underlying as usize)
                .ok_or(Rejection::UnknownUnderlying(ut.underlying.into()))?
                .clone();
            let accepted = self.quorum_prices(t.timestamp, ut)?;
            let stale = u.spot != 0
                && t.timestamp.saturating_sub(u.last_update) > u.config.breaker.stale_after_secs;
            let tripped = u.move_trips(accepted.spot) || stale;
            if tripped {
                let until = t.timestamp + u.config.breaker.cooldown_secs;
                check_bits("breaker tripped_until", until.into(), bounds::TIME_BITS)
                    .map_err(|_| Rejection::Overflow("breaker tripped_until"))?;
                u.tripped_until = until;
            }
            u.spot = accepted.spot;
            u.last_update = t.timestamp;
            for (sid, mark) in &accepted.marks {
                series[*sid as usize].mark = *mark;
            }
            for s in series.iter_mut() {
                if s.underlying == ut.underlying
                    && s.expiry <= t.timestamp
                    && s.settlement_price == 0
                {
                    s.settlement_price = accepted.spot;
                    s.mark = s.intrinsic(accepted.spot) as u64;
                }
            }
            effects.underlyings.push((ut.underlying, u));
            effects.prices.push(AcceptedPrice {
                tripped,
                ..accepted
            });
        }
        effects.series = series
            .into_iter()
            .enumerate()
            .filter(|(i, s)| self.series[*i] != *s)
            .map(|(i, s)| (i as u32, s))
            .collect();
        Ok(effects)
    }

    /// §8: checks one underlying's reports and returns the medians.
    fn quorum_prices(
        &self,
        timestamp: u64,
        ut: &crate::tx::UnderlyingTick,
    ) -> Result<AcceptedPrice, Rejection> {
        if ut.reports.len() < self.params.oracle_quorum {
            return Err(Rejection::BadTick("fewer reports than the quorum"));
        }
        let first = &ut.reports[0];
        let mut prev_series: Option<u32> = None;
        for m in &first.marks {
            if prev_series.is_some_and(|p| m.series <= p) {
                return Err(Rejection::BadTick(
                    "marks must be by strictly ascending series",
                ));
            }
            prev_series = Some(m.series);
            let s = self
                .series
                .get(m.series as usize)
                .ok_or(Rejection::UnknownSeries(m.series.into()))?;
            if s.underlying != ut.underlying {
                return Err(Rejection::BadTick(
                    "mark quoted for a series of another underlying",
                ));
            }
            if s.expiry <= timestamp {
                return Err(Rejection::SeriesExpired(m.series.into()));
            }
        }
        let mut prev_oracle: Option<u32> = None;
        for r in &ut.reports {
            if prev_oracle.is_some_and(|p| r.oracle <= p) {
                return Err(Rejection::BadTick(
                    "signers must be strictly ascending (no duplicates)",
                ));
            }
            prev_oracle = Some(r.oracle);
            if r.oracle as usize >= self.oracles.len() {
                return Err(Rejection::UnregisteredOracle(r.oracle.into()));
            }
            if r.underlying != ut.underlying || r.timestamp != timestamp {
                return Err(Rejection::BadTick(
                    "report underlying or time differs from the tick",
                ));
            }
            if r.spot == 0 {
                return Err(Rejection::Zero("oracle spot"));
            }
            check_bits("oracle spot", r.spot.into(), bounds::UNIT_PRICE_BITS)?;
            if r.marks.len() != first.marks.len()
                || r.marks
                    .iter()
                    .zip(&first.marks)
                    .any(|(a, b)| a.series != b.series)
            {
                return Err(Rejection::BadTick("reports must quote the same series"));
            }
        }
        let mut spots: Vec<u64> = ut.reports.iter().map(|r| r.spot).collect();
        let spot = lower_median(&mut spots);
        let marks = (0..first.marks.len())
            .map(|i| {
                let mut v: Vec<u64> = ut.reports.iter().map(|r| r.marks[i].mark).collect();
                (first.marks[i].series, lower_median(&mut v))
            })
            .collect();
        Ok(AcceptedPrice {
            underlying: ut.underlying,
            spot,
            marks,
            tripped: false,
        })
    }

    /// §7.7 Register series.
    fn check_register(&self, r: &RegisterSeries) -> Result<Effects, Rejection> {
        if self.series.len() >= self.params.max_series {
            return Err(Rejection::RegistryFull(self.params.max_series));
        }
        if r.underlying as usize >= self.underlyings.len() {
            return Err(Rejection::UnknownUnderlying(r.underlying.into()));
        }
        if r.strike == 0 {
            return Err(Rejection::Zero("strike"));
        }
        check_bits("strike", r.strike.into(), bounds::UNIT_PRICE_BITS)?;
        if r.contract_size == 0 {
            return Err(Rejection::Zero("contract size"));
        }
        check_bits(
            "contract size",
            r.contract_size.into(),
            bounds::CONTRACT_SIZE_BITS,
        )?;
        check_bits("expiry", r.expiry.into(), bounds::TIME_BITS)?;
        if r.expiry <= self.time {
            return Err(Rejection::InvalidSeries(
                "expiry must be after the current time",
            ));
        }
        let s = Series {
            underlying: r.underlying,
            strike: r.strike,
            expiry: r.expiry,
            kind: r.kind,
            contract_size: r.contract_size,
            mark: 0,
            settlement_price: 0,
        };
        if self.series.iter().any(|x| {
            (x.underlying, x.strike, x.expiry, x.kind, x.contract_size)
                == (s.underlying, s.strike, s.expiry, s.kind, s.contract_size)
        }) {
            return Err(Rejection::InvalidSeries(
                "an identical series is already registered",
            ));
        }
        Ok(Effects {
            series: vec![(self.series.len() as u32, s)],
            ..Effects::default()
        })
    }
}

fn bump_nonce(nonce: u64) -> Result<u64, Rejection> {
    let n = nonce + 1;
    if u128::from(n) >= bounds::limit(bounds::NONCE_BITS) {
        return Err(Rejection::Overflow("nonce"));
    }
    Ok(n)
}

/// Records a fill of `size` on order `order_id` in its slot (§4.4).
fn fill_order(
    acc: &mut Account,
    order_id: u64,
    max_size: u64,
    size: u64,
    depth: usize,
) -> Result<(), Rejection> {
    let slot = order_id & ((1u64 << depth) - 1);
    let stored = acc.orders.get(&slot).copied().unwrap_or_default();
    let already = match stored.order_id.cmp(&order_id) {
        std::cmp::Ordering::Greater => {
            return Err(Rejection::OrderIdStale {
                order_id,
                slot_order_id: stored.order_id,
            })
        }
        std::cmp::Ordering::Equal => stored.filled,
        std::cmp::Ordering::Less => 0,
    };
    let filled = already + size;
    if filled > max_size {
        return Err(Rejection::Overfilled { filled, max_size });
    }
    acc.orders
        .insert(slot, crate::account::OrderSlot { order_id, filled });
    Ok(())
}

/// §5.3: after a trade an account meets initial margin, or it was below initial margin and the
/// trade reduces its risk: the initial requirement does not rise, the initial shortfall
/// (`initial - im_equity`) strictly falls, and it does not newly fall below maintenance.
fn check_initial_or_reducing(
    account: u64,
    before: &MarginSummary,
    after: &MarginSummary,
) -> Result<(), Rejection> {
    let shortfall = |m: &MarginSummary| m.initial - m.im_equity;
    let reducing = !before.meets_initial()
        && after.initial <= before.initial
        && shortfall(after) < shortfall(before)
        && (after.meets_maintenance() || !before.meets_maintenance());
    if after.meets_initial() || reducing {
        Ok(())
    } else {
        Err(Rejection::InitialMarginViolated {
            account,
            equity: after.im_equity,
            requirement: after.initial,
        })
    }
}
