//! The typed witness of the batch circuit, built from the native execution (`collar-protocol`)
//! and never re-derived: every value here comes from the protocol's `TxWitness` or from a replay
//! of its account writes, port by port, checked against the protocol's own replay of each
//! transaction; the account table's write-back runs on a local copy of the accounts tree and
//! must reach the batch's last accounts root.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use collar_protocol::account::OrderSlot;
use collar_protocol::batch::ExecutedBatch;
use collar_protocol::margin::ceil_bps;
use collar_protocol::merkle::SparseMerkleTree;
use collar_protocol::params::ProtocolParams;
use collar_protocol::pubdata::TickLayout;
use collar_protocol::state::{StateHeader, TxWitness};
use collar_protocol::tx::Liquidate;
use collar_protocol::tx::{OracleReport, OracleTick, SeriesMark, Signer};
use collar_protocol::{
    Account, PublicKey, Series, State, Tx, Underlying, FEE_ACCOUNT, INSURANCE_FUND,
};
use collar_protocol::{SecretKey, Signature};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

use super::BatchCircuitError;
use crate::schnorr::SignatureWitness;

/// Account ports per slot: the most accounts one transaction writes (a trade writes buyer,
/// seller and the fee account).
pub const PORTS: usize = 3;

/// The order-slot write of a port whose transaction fills an order (§4.4).
#[derive(Clone, Debug, Default)]
pub struct OrderFillWitness {
    /// The slot's stored value before the fill (`(0, 0)` for a never-used slot).
    pub stored: OrderSlot,
    /// Siblings of the slot in the account's order subtree, leaf level first.
    pub siblings: Vec<Fr>,
}

/// One account write of a slot: it reads and writes its account's entry of the batch's
/// account table ([`EntryWitness`]).
#[derive(Clone, Debug)]
pub struct PortWitness {
    /// Account id written (the fee account, unchanged, for an idle port).
    pub account: u64,
    /// The account before this write.
    pub before: Account,
    /// The account after this write.
    pub after: Account,
    /// Index of the position slot a trade moves (0 when no position moves).
    pub position_slot: usize,
    /// The order fill, for the buyer and seller ports of a trade.
    pub order: OrderFillWitness,
}

/// One slot of the batch: a transaction (or padding) and its account ports.
#[derive(Clone, Debug)]
pub struct SlotWitness {
    /// The transaction, or `None` for a padding slot.
    pub tx: Option<Tx>,
    /// Exactly [`PORTS`] writes, applied in order.
    pub ports: Vec<PortWitness>,
    /// The transaction's signatures in `Tx::signed_messages` order (§6.5), which the circuit
    /// verifies; a missing one fails the proof.
    pub signatures: Vec<SignatureWitness>,
}

/// The tick lane's witness: the batch's oracle tick laid out at fixed positions (§10) and the
/// medians the protocol accepted (§8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickWitness {
    /// The tick's reports by (underlying, oracle) and (series, oracle).
    pub layout: TickLayout,
    /// Per underlying index: the accepted median spot, 0 if the tick does not price it.
    pub spot_median: Vec<u64>,
    /// Per series index: the accepted median mark, 0 if the tick does not quote it.
    pub mark_median: Vec<u64>,
    /// Per underlying index, per oracle index: the signature of that report (§6.5), `None`
    /// where there is no report or it was not given (which then fails the proof).
    pub signatures: Vec<Vec<Option<SignatureWitness>>>,
}

impl TickWitness {
    /// The witness of an idle lane (no tick): every value 0, at the shapes of `params`.
    pub fn idle(params: &ProtocolParams) -> Self {
        Self {
            layout: TickLayout {
                timestamp: 0,
                priced: vec![false; params.max_underlyings],
                spots: vec![vec![0; params.max_oracles]; params.max_underlyings],
                quoted: vec![0; params.max_series],
                marks: vec![vec![0; params.max_oracles]; params.max_series],
            },
            spot_median: vec![0; params.max_underlyings],
            mark_median: vec![0; params.max_series],
            signatures: vec![vec![None; params.max_oracles]; params.max_underlyings],
        }
    }

    /// The report of oracle `oracle` on underlying `underlying` as laid out, or `None` where
    /// the tick has none: its spot, and its marks (the series the block quotes, ascending).
    pub fn report(&self, underlying: usize, oracle: usize) -> Option<OracleReport> {
        let l = &self.layout;
        let spot = *l.spots.get(underlying)?.get(oracle)?;
        if spot == 0 || !l.priced[underlying] {
            return None;
        }
        let marks = (0..l.quoted.len())
            .filter(|&s| l.quoted[s] == underlying as u64 + 1)
            .map(|s| SeriesMark {
                series: s as u32,
                mark: l.marks[s][oracle],
            })
            .collect();
        Some(OracleReport {
            oracle: oracle as u32,
            underlying: underlying as u32,
            timestamp: l.timestamp,
            spot,
            marks,
        })
    }

    /// Takes the tick's signatures (in `Tx::signed_messages` order) into the layout.
    fn sign_from(&mut self, tick: &OracleTick, sigs: &[Signature]) {
        let reports = tick.underlyings.iter().flat_map(|u| u.reports.iter());
        for (r, sig) in reports.zip(sigs) {
            if let Some(cell) = self
                .signatures
                .get_mut(r.underlying as usize)
                .and_then(|row| row.get_mut(r.oracle as usize))
            {
                *cell = Some(SignatureWitness::from(sig));
            }
        }
    }

    /// The witness of the tick `w` (a tick's `TxWitness`) under `params`.
    ///
    /// # Errors
    /// [`BatchCircuitError::Inconsistent`] if `w` is not an accepted tick.
    pub fn of(params: &ProtocolParams, w: &TxWitness) -> Result<Self, BatchCircuitError> {
        let Tx::OracleTick(t) = &w.tx else {
            return Err(BatchCircuitError::Inconsistent("not a tick"));
        };
        let layout = TickLayout::of(t, params)
            .map_err(|_| BatchCircuitError::Inconsistent("tick layout"))?;
        let mut out = Self {
            layout,
            ..Self::idle(params)
        };
        for p in &w.effects.prices {
            *out.spot_median
                .get_mut(p.underlying as usize)
                .ok_or(BatchCircuitError::Inconsistent("priced underlying"))? = p.spot;
            for (s, m) in &p.marks {
                *out.mark_median
                    .get_mut(*s as usize)
                    .ok_or(BatchCircuitError::Inconsistent("quoted series"))? = *m;
            }
        }
        Ok(out)
    }
}

/// One entry of the batch's account table (docs/CIRCUIT.md, "Account table"): an account
/// opened once under the old accounts root, read and written by every port of the batch that
/// names it, and written back once after the last slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryWitness {
    /// The account id; entries are strictly ascending by id.
    pub account: u64,
    /// Its leaf under the accounts root before the batch.
    pub opened: Fr,
    /// Its leaf after the batch: the last port write of `account`, or `opened` for an entry
    /// no port writes (padding).
    pub closed: Fr,
    /// Siblings of the write-back, leaf level first, in the tree where every entry before this
    /// one is already written back.
    pub siblings: Vec<Fr>,
}

/// The fewest entries an account table may have: every transaction fits it (a liquidation
/// names three accounts, and [`table_accounts`] always counts the fee account).
pub const MIN_TABLE_SIZE: usize = 4;

/// The table size [`BatchWitness::new`] uses for `capacity` slots: `min(3·capacity,
/// 2·capacity + 2)`. No batch of `capacity` transactions touches more accounts: each touches
/// at most two besides the fee account and the insurance fund, and idle ports name the fee
/// account.
pub fn default_table_size(capacity: usize) -> usize {
    (PORTS * capacity).min(2 * capacity + 2)
}

/// The table size of a circuit of `capacity` slots configured with `accounts` entries:
/// `accounts`, or [`default_table_size`]`(capacity)` where none is set.
pub fn table_size(capacity: usize, accounts: Option<usize>) -> usize {
    accounts.unwrap_or_else(|| default_table_size(capacity))
}

/// Everything the batch circuit consumes: typed witness built natively, never re-derived.
#[derive(Clone, Debug)]
pub struct BatchWitness {
    /// Shape parameters (depths, capacities) and rule constants (fee rate).
    pub params: ProtocolParams,
    /// Header before the batch.
    pub header_before: StateHeader,
    /// Series registry before the batch.
    pub series: Vec<Series>,
    /// Underlyings before the batch.
    pub underlyings: Vec<Underlying>,
    /// The oracle registry (opened against the header's `oracles_hash`).
    pub oracles: Vec<PublicKey>,
    /// The tick lane: the batch's oracle tick (its first transaction), if any.
    pub tick: Option<TickWitness>,
    /// Exactly `capacity` slots: the transactions, then padding.
    pub slots: Vec<SlotWitness>,
    /// The account table, a fixed number of entries for the circuit shape: every account a port
    /// names, then padding entries at the lowest free ids, ascending by id.
    pub accounts: Vec<EntryWitness>,
    /// Batch number (public input 7).
    pub batch_number: u64,
}

/// The account values as the circuit's ports see them, write by write. No tree is kept per
/// write: the ports' leaves reach the accounts tree only through the account table's
/// write-back ([`PortReplay::table`]), as in the circuit.
struct PortReplay {
    /// The accounts tree before the batch.
    opened: SparseMerkleTree,
    accounts: HashMap<u64, Account>,
    /// The last leaf written to each account: the account table's closing leaves.
    written: BTreeMap<u64, Fr>,
    params: ProtocolParams,
}

impl PortReplay {
    fn new(state: &State) -> Self {
        Self {
            opened: state.accounts_tree(),
            accounts: state.accounts().map(|(id, a)| (id, a.clone())).collect(),
            written: BTreeMap::new(),
            params: state.params().clone(),
        }
    }

    fn current(&self, id: u64) -> Account {
        self.accounts.get(&id).cloned().unwrap_or_else(|| {
            Account::new(collar_protocol::PublicKey::ZERO, self.params.max_positions)
        })
    }

    /// Writes `after` to `id` and returns the port, with the order-slot witness of `order_id`
    /// when the write fills an order.
    fn write(
        &mut self,
        id: u64,
        after: Account,
        fill: Option<(u64, u32)>,
    ) -> Result<PortWitness, BatchCircuitError> {
        self.write_moving(id, after, fill.map(|f| f.0), fill.map(|f| f.1))
    }

    /// [`PortReplay::write`] with the order fill and the moved series given apart.
    fn write_moving(
        &mut self,
        id: u64,
        after: Account,
        order_id: Option<u64>,
        series: Option<u32>,
    ) -> Result<PortWitness, BatchCircuitError> {
        let before = self.current(id);
        let depth = self.params.order_slot_depth;
        self.written.insert(id, after.leaf(depth));
        let position_slot = series.map_or(0, |s| position_slot(&before, s));
        let order = match order_id {
            Some(order_id) => {
                let slot = order_id & ((1u64 << depth) - 1);
                let stored = before.orders.get(&slot).copied().unwrap_or_default();
                let new_leaf = after.orders.get(&slot).map_or(Fr::zero(), OrderSlot::leaf);
                let u = before
                    .orders_tree(depth)
                    .update(slot, new_leaf)
                    .map_err(|_| BatchCircuitError::Inconsistent("order slot"))?;
                OrderFillWitness {
                    stored,
                    siblings: u.siblings,
                }
            }
            None => idle_order(depth),
        };
        self.accounts.insert(id, after.clone());
        Ok(PortWitness {
            account: id,
            before,
            after,
            position_slot,
            order,
        })
    }

    /// An identity write of the fee account.
    fn idle(&mut self) -> Result<PortWitness, BatchCircuitError> {
        let acc = self.current(FEE_ACCOUNT);
        self.write(FEE_ACCOUNT, acc, None)
    }

    /// The accounts root before the batch.
    fn opened_root(&self) -> Fr {
        self.opened.root()
    }

    /// Whether the ports left account `id` as `native` (the protocol's state after the same
    /// transactions) has it.
    fn agrees(&self, id: u64, native: &State) -> bool {
        self.accounts.get(&id) == native.account(id)
    }

    /// The account table of the ports written so far, with `entries` entries, written back on
    /// the tree before the batch, and the accounts root the write-back reaches.
    fn table(self, entries: usize) -> Result<(Vec<EntryWitness>, Fr), BatchCircuitError> {
        account_table(self.opened, &self.params, self.written, entries)
    }
}

/// The account table of the ports' last writes `closed` (leaf by account id) on the accounts
/// tree `tree` (the state before the batch), with `entries` entries, and the accounts root
/// after its write-back.
fn account_table(
    mut tree: SparseMerkleTree,
    params: &ProtocolParams,
    mut closed: BTreeMap<u64, Fr>,
    entries: usize,
) -> Result<(Vec<EntryWitness>, Fr), BatchCircuitError> {
    if closed.len() > entries {
        return Err(BatchCircuitError::TableFull {
            accounts: closed.len(),
            entries,
        });
    }
    // Padding entries: identity writes of the lowest ids no port names.
    let ids = 1u128 << params.account_depth;
    let mut id = 0u64;
    while closed.len() < entries {
        if u128::from(id) >= ids {
            return Err(BatchCircuitError::Inconsistent(
                "account table larger than the tree",
            ));
        }
        closed.entry(id).or_insert_with(|| tree.leaf(id));
        id += 1;
    }
    let mut table = Vec::with_capacity(entries);
    for (account, leaf) in closed {
        let opened = tree.leaf(account);
        let update = tree
            .update(account, leaf)
            .map_err(|_| BatchCircuitError::Inconsistent("account write-back"))?;
        table.push(EntryWitness {
            account,
            opened,
            closed: leaf,
            siblings: update.siblings,
        });
    }
    Ok((table, tree.root()))
}

fn idle_order(depth: usize) -> OrderFillWitness {
    OrderFillWitness {
        stored: OrderSlot::default(),
        siblings: vec![Fr::zero(); depth],
    }
}

/// The slot a position in `series` occupies or, if none, the lowest free slot (§4.3); 0 if the
/// account has neither (the transaction could not have been accepted).
fn position_slot(acc: &Account, series: u32) -> usize {
    acc.positions
        .iter()
        .position(|p| p.size != 0 && p.series == series)
        .or_else(|| acc.positions.iter().position(|p| p.size == 0))
        .unwrap_or(0)
}

impl BatchWitness {
    /// Builds the witness of `batch` executed on `before` (the state the batch started from),
    /// padded to `capacity` slots whose ports are identity writes of the fee account, with an
    /// account table of [`default_table_size`]`(capacity)` entries, which every batch fits. A
    /// leading oracle tick goes to the tick lane and takes no slot.
    ///
    /// # Errors
    /// [`BatchCircuitError::OverCapacity`] for more than `capacity` transactions besides a
    /// leading tick, [`BatchCircuitError::TickNotFirst`] for a tick elsewhere,
    /// [`BatchCircuitError::Inconsistent`] if `batch` was not executed on `before`.
    pub fn new(
        before: &State,
        batch: &ExecutedBatch,
        capacity: usize,
    ) -> Result<Self, BatchCircuitError> {
        Self::with_table(before, batch, capacity, default_table_size(capacity))
    }

    /// [`BatchWitness::new`] with an account table of `entries` entries: a smaller table than
    /// the default makes a smaller circuit, which only batches touching at most `entries`
    /// accounts (idle ports count as the fee account) fit.
    ///
    /// # Errors
    /// As [`BatchWitness::new`]; [`BatchCircuitError::TableFull`] if the batch touches more
    /// than `entries` accounts.
    pub fn with_table(
        before: &State,
        batch: &ExecutedBatch,
        capacity: usize,
        entries: usize,
    ) -> Result<Self, BatchCircuitError> {
        let params = before.params();
        let (tick, txs) = match batch.witnesses.split_first() {
            Some((w, rest)) => match &w.tx {
                Tx::OracleTick(t) => {
                    let mut tw = TickWitness::of(params, w)?;
                    tw.sign_from(t, batch.signatures.first().map_or(&[], Vec::as_slice));
                    (Some(tw), rest)
                }
                _ => (None, &batch.witnesses[..]),
            },
            None => (None, &batch.witnesses[..]),
        };
        if let Some(i) = txs.iter().position(|w| matches!(w.tx, Tx::OracleTick(_))) {
            return Err(BatchCircuitError::TickNotFirst(
                i + usize::from(tick.is_some()),
            ));
        }
        if txs.len() > capacity {
            return Err(BatchCircuitError::OverCapacity {
                txs: txs.len(),
                capacity,
            });
        }
        let mut replay = PortReplay::new(before);
        let mut state = before.clone();
        if let Some(w) = batch.witnesses.first().filter(|_| tick.is_some()) {
            state
                .apply(&w.tx)
                .map_err(|_| BatchCircuitError::Inconsistent("tick does not replay"))?;
        }
        let mut slots = Vec::with_capacity(capacity);
        let first_slot_tx = usize::from(tick.is_some());
        // The accounts root the batch's headers chain through; the table's write-back must
        // reach the last one.
        let mut root = replay.opened_root();
        for (i, w) in txs.iter().enumerate() {
            if w.header_before.accounts_root != root {
                return Err(BatchCircuitError::Inconsistent("batch does not chain"));
            }
            root = w.header_after.accounts_root;
            let mut slot = slot_of(&mut replay, &state, w)?;
            slot.signatures = batch
                .signatures
                .get(first_slot_tx + i)
                .map(|sigs| sigs.iter().map(SignatureWitness::from).collect())
                .unwrap_or_default();
            slots.push(slot);
            state
                .apply(&w.tx)
                .map_err(|_| BatchCircuitError::Inconsistent("batch does not replay"))?;
            let mut written = port_accounts(&w.tx)
                .into_iter()
                .chain(w.account_updates.iter().map(|u| u.account));
            if !written.all(|id| replay.agrees(id, &state)) {
                return Err(BatchCircuitError::Inconsistent("ports do not replay"));
            }
        }
        while slots.len() < capacity {
            let ports = (0..PORTS)
                .map(|_| replay.idle())
                .collect::<Result<_, _>>()?;
            slots.push(SlotWitness {
                tx: None,
                ports,
                signatures: Vec::new(),
            });
        }
        let (accounts, written_back) = replay.table(entries)?;
        if written_back != root {
            return Err(BatchCircuitError::Inconsistent(
                "account table does not replay",
            ));
        }
        let mut b = before.clone();
        Ok(Self {
            params: params.clone(),
            header_before: b.header(),
            series: before.series().to_vec(),
            underlyings: before.underlyings().to_vec(),
            oracles: before.oracles().to_vec(),
            tick,
            slots,
            accounts,
            batch_number: batch.public_inputs.batch_number,
        })
    }
}

impl BatchWitness {
    /// Recomputes every port's `before` value and order-slot witness, and the account table
    /// (opening leaves, closing leaves, write-back siblings), by replaying the ports' `after`
    /// values in order on `before` (the state the batch started from). Tests use it to forge a
    /// witness (edit some `after` or transaction field) that is still consistent as Merkle
    /// paths, so that only the rule under test can reject it.
    ///
    /// # Errors
    /// [`BatchCircuitError::Inconsistent`] if an account id is outside the tree,
    /// [`BatchCircuitError::TableFull`] if the ports now name more accounts than the table has
    /// entries.
    pub fn reseal(&mut self, before: &State) -> Result<(), BatchCircuitError> {
        let mut replay = PortReplay::new(before);
        for slot in &mut self.slots {
            let plan = slot.tx.as_ref().map(port_moves).unwrap_or_default();
            for (i, port) in slot.ports.iter_mut().enumerate() {
                let (order_id, series) = plan.get(i).copied().unwrap_or_default();
                let position_slot = port.position_slot;
                *port = replay.write_moving(port.account, port.after.clone(), order_id, series)?;
                port.position_slot = position_slot;
            }
        }
        self.accounts = replay.table(self.accounts.len())?.0;
        Ok(())
    }

    /// Checks that every slot carries one signature per signed message of its transaction
    /// (the circuit would otherwise reject the proof, with no reason given).
    ///
    /// # Errors
    /// [`BatchCircuitError::MissingSignatures`] with the transaction's index in the batch.
    pub fn check_signed(&self) -> Result<(), BatchCircuitError> {
        if let Some(t) = &self.tick {
            for u in 0..t.signatures.len() {
                for o in 0..t.signatures[u].len() {
                    if t.report(u, o).is_some() && t.signatures[u][o].is_none() {
                        return Err(BatchCircuitError::MissingSignatures(0));
                    }
                }
            }
        }
        let first = usize::from(self.tick.is_some());
        for (i, slot) in self.slots.iter().enumerate() {
            if let Some(tx) = &slot.tx {
                if tx.signed_messages(self.params.chain_id).len() != slot.signatures.len() {
                    return Err(BatchCircuitError::MissingSignatures(first + i));
                }
            }
        }
        Ok(())
    }

    /// Re-signs every slot's transaction, as it now stands, with `key(signer)`. Tests, benches
    /// and `collar stats` hold their users' keys and use it after building or forging a
    /// witness; a prover takes the users' signatures from `ExecutedBatch::signatures` instead.
    pub fn resign_with(&mut self, key: impl Fn(&Signer) -> SecretKey) {
        let chain_id = self.params.chain_id;
        if let Some(t) = &mut self.tick {
            for u in 0..t.signatures.len() {
                for o in 0..t.signatures[u].len() {
                    t.signatures[u][o] = t.report(u, o).map(|r| {
                        let sk = key(&Signer::Oracle(r.oracle));
                        SignatureWitness::from(&sk.sign(r.message(chain_id)))
                    });
                }
            }
        }
        for slot in &mut self.slots {
            slot.signatures = slot
                .tx
                .as_ref()
                .map(|tx| {
                    tx.signed_messages(chain_id)
                        .iter()
                        .map(|(signer, m)| SignatureWitness::from(&key(signer).sign(*m)))
                        .collect()
                })
                .unwrap_or_default();
        }
    }
}

/// The accounts the ports of `tx` name, in port order (docs/CIRCUIT.md, "Batch layout"): a
/// deposit or withdrawal its account; a trade the buyer, the seller and the fee account; an
/// expiry settlement the account and the insurance fund; a liquidation the victim, the fund and
/// the liquidator. A series registration and an oracle tick (the tick lane) name none. A slot's
/// remaining ports are idle writes of [`FEE_ACCOUNT`].
pub fn port_accounts(tx: &Tx) -> Vec<u64> {
    match tx {
        Tx::Deposit(d) => vec![d.account],
        Tx::Withdraw(w) => vec![w.account],
        Tx::Trade(t) => vec![t.buy.account, t.sell.account, FEE_ACCOUNT],
        Tx::SettleExpiry(s) => vec![s.account, INSURANCE_FUND],
        Tx::Liquidate(l) => vec![l.order.victim, INSURANCE_FUND, l.order.liquidator],
        Tx::RegisterSeries(_) | Tx::OracleTick(_) => Vec::new(),
    }
}

/// The accounts a batch of `txs` names, as its account table counts them, with the fee account
/// always counted (idle ports name it). A batch fits a table of `entries` entries
/// ([`BatchWitness::with_table`]) when this set has at most `entries` members; any single
/// transaction fits [`MIN_TABLE_SIZE`].
pub fn table_accounts<'a>(txs: impl IntoIterator<Item = &'a Tx>) -> BTreeSet<u64> {
    let mut set = BTreeSet::from([FEE_ACCOUNT]);
    for tx in txs {
        set.extend(port_accounts(tx));
    }
    set
}

/// Per port of `tx`: the order id it fills and the series whose position it moves.
fn port_moves(tx: &Tx) -> Vec<(Option<u64>, Option<u32>)> {
    match tx {
        Tx::Trade(t) => vec![
            (Some(t.buy.order_id), Some(t.buy.series)),
            (Some(t.sell.order_id), Some(t.sell.series)),
        ],
        Tx::Liquidate(l) => vec![
            (None, Some(l.order.series)),
            (None, None),
            (None, Some(l.order.series)),
        ],
        Tx::SettleExpiry(s) => vec![(None, Some(s.series))],
        _ => Vec::new(),
    }
}

/// The insurance fund's payment for a short victim's deficit in `l` on `state` (§7.4 rule 9).
fn liquidation_deficit(state: &State, l: &Liquidate) -> Result<u64, BatchCircuitError> {
    let o = &l.order;
    let victim = state
        .account(o.victim)
        .ok_or(BatchCircuitError::Inconsistent("victim"))?;
    if victim.position(o.series) >= 0 {
        return Ok(0);
    }
    let mark = u128::from(
        state
            .series()
            .get(o.series as usize)
            .ok_or(BatchCircuitError::Inconsistent("series"))?
            .mark,
    );
    let price = mark + ceil_bps(mark, state.params().liquidation_penalty_bps);
    let cost = u128::from(l.size) * price;
    u64::try_from(cost.saturating_sub(u128::from(victim.collateral)))
        .map_err(|_| BatchCircuitError::Inconsistent("deficit"))
}

fn final_of(w: &TxWitness, id: u64) -> Result<Account, BatchCircuitError> {
    w.account_updates
        .iter()
        .rev()
        .find(|u| u.account == id)
        .map(|u| u.after.clone())
        .ok_or(BatchCircuitError::Inconsistent("account not written"))
}

/// The ports of one transaction. `state` is the native state the transaction applies to; it
/// gives the prices that split a write of an account appearing on two ports (a system account
/// that is also a party) into its two legs.
fn slot_of(
    replay: &mut PortReplay,
    state: &State,
    w: &TxWitness,
) -> Result<SlotWitness, BatchCircuitError> {
    let mut ports = Vec::with_capacity(PORTS);
    let moves = port_moves(&w.tx);
    match &w.tx {
        Tx::Deposit(d) => ports.push(replay.write(d.account, final_of(w, d.account)?, None)?),
        Tx::Withdraw(x) => ports.push(replay.write(x.account, final_of(w, x.account)?, None)?),
        Tx::Trade(t) => {
            let fees = u64::try_from(w.effects.fees)
                .map_err(|_| BatchCircuitError::Inconsistent("fees"))?;
            // The fee credit comes last (§7.3): a party that is the fee account first gets its
            // trade-side value, and the fee port adds the fees on top.
            for o in [&t.buy, &t.sell] {
                let mut after = final_of(w, o.account)?;
                if o.account == FEE_ACCOUNT {
                    after.collateral = after
                        .collateral
                        .checked_sub(fees)
                        .ok_or(BatchCircuitError::Inconsistent("fee account credit"))?;
                }
                ports.push(replay.write(o.account, after, Some((o.order_id, o.series)))?);
            }
            ports.push(replay.write(FEE_ACCOUNT, final_of(w, FEE_ACCOUNT)?, None)?);
        }
        Tx::SettleExpiry(st) => {
            // Ports: the account, then the fund. When the account is the fund, its first leg is
            // the account's cash movement and the fund's leg undoes it.
            let mut after = final_of(w, st.account)?;
            if st.account == INSURANCE_FUND {
                let acc = state
                    .account(st.account)
                    .ok_or(BatchCircuitError::Inconsistent("settled account"))?;
                let series = state
                    .series()
                    .get(st.series as usize)
                    .ok_or(BatchCircuitError::Inconsistent("settled series"))?;
                let q = acc.position(st.series);
                let value =
                    u128::from(q.unsigned_abs()) * series.intrinsic(series.settlement_price);
                let leg = if q > 0 {
                    value
                } else {
                    value.min(u128::from(acc.collateral))
                };
                let leg =
                    u64::try_from(leg).map_err(|_| BatchCircuitError::Inconsistent("value"))?;
                after.collateral = if q > 0 {
                    after.collateral.checked_add(leg)
                } else {
                    after.collateral.checked_sub(leg)
                }
                .ok_or(BatchCircuitError::Inconsistent("settlement legs"))?;
            }
            ports.push(replay.write_moving(st.account, after, None, moves[0].1)?);
            let fund = final_of(w, INSURANCE_FUND)?;
            ports.push(replay.write(INSURANCE_FUND, fund, None)?);
        }
        Tx::Liquidate(l) => {
            // Ports: the victim, the fund, the liquidator. A victim that is the fund has no
            // deficit (it would pay itself from nothing); a liquidator that is the fund first
            // pays the deficit on the fund's port, then takes its liquidator leg.
            let o = &l.order;
            ports.push(replay.write_moving(o.victim, final_of(w, o.victim)?, None, moves[0].1)?);
            let fund_after = if o.liquidator == INSURANCE_FUND {
                let mut fund = replay.current(INSURANCE_FUND);
                fund.collateral = fund
                    .collateral
                    .checked_sub(liquidation_deficit(state, l)?)
                    .ok_or(BatchCircuitError::Inconsistent("deficit"))?;
                fund
            } else if o.victim == INSURANCE_FUND {
                replay.current(INSURANCE_FUND)
            } else {
                final_of(w, INSURANCE_FUND).unwrap_or_else(|_| replay.current(INSURANCE_FUND))
            };
            ports.push(replay.write(INSURANCE_FUND, fund_after, None)?);
            let liq = final_of(w, o.liquidator)?;
            ports.push(replay.write_moving(o.liquidator, liq, None, moves[2].1)?);
        }
        Tx::RegisterSeries(_) => {}
        Tx::OracleTick(_) => return Err(BatchCircuitError::Inconsistent("tick in a slot")),
    }
    while ports.len() < PORTS {
        ports.push(replay.idle()?);
    }
    // The sequencer seals on `table_accounts`, which counts accounts by `port_accounts`.
    let named = port_accounts(&w.tx);
    let idle = std::iter::repeat(FEE_ACCOUNT);
    if !ports
        .iter()
        .map(|p| p.account)
        .eq(named.into_iter().chain(idle).take(PORTS))
    {
        return Err(BatchCircuitError::Inconsistent(
            "ports differ from port_accounts",
        ));
    }
    Ok(SlotWitness {
        tx: Some(w.tx.clone()),
        ports,
        signatures: Vec::new(),
    })
}
