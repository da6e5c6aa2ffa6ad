//! The typed witness of the batch circuit, built from the native execution (`collar-protocol`)
//! and never re-derived: every value here comes from the protocol's `TxWitness` or from a replay
//! of its account writes on a local copy of the accounts tree.

use std::collections::HashMap;

use collar_protocol::account::OrderSlot;
use collar_protocol::batch::ExecutedBatch;
use collar_protocol::merkle::SparseMerkleTree;
use collar_protocol::params::ProtocolParams;
use collar_protocol::state::{StateHeader, TxWitness};
use collar_protocol::{Account, Series, State, Tx, Underlying, FEE_ACCOUNT};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

use super::BatchCircuitError;

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

/// One account write of a slot, chained on the accounts root.
#[derive(Clone, Debug)]
pub struct PortWitness {
    /// Account id written (the fee account, unchanged, for an idle port).
    pub account: u64,
    /// The account before this write.
    pub before: Account,
    /// The account after this write.
    pub after: Account,
    /// Merkle siblings of the write, leaf level first.
    pub siblings: Vec<Fr>,
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
    /// Exactly `capacity` slots: the transactions, then padding.
    pub slots: Vec<SlotWitness>,
    /// Batch number (public input 7).
    pub batch_number: u64,
}

/// The accounts tree and values as the circuit's ports see them, write by write.
struct PortReplay {
    tree: SparseMerkleTree,
    accounts: HashMap<u64, Account>,
    params: ProtocolParams,
}

impl PortReplay {
    fn new(state: &State) -> Result<Self, BatchCircuitError> {
        let params = state.params().clone();
        let mut tree = SparseMerkleTree::new(params.account_depth)
            .map_err(|_| BatchCircuitError::Inconsistent("account depth"))?;
        let mut accounts = HashMap::new();
        for (id, acc) in state.accounts() {
            tree.set_leaf(id, acc.leaf(params.order_slot_depth))
                .map_err(|_| BatchCircuitError::Inconsistent("account id out of range"))?;
            accounts.insert(id, acc.clone());
        }
        tree.commit();
        Ok(Self {
            tree,
            accounts,
            params,
        })
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
        let before = self.current(id);
        let depth = self.params.order_slot_depth;
        let update = self
            .tree
            .update(id, after.leaf(depth))
            .map_err(|_| BatchCircuitError::Inconsistent("account write"))?;
        let (order, position_slot) = match fill {
            Some((order_id, series)) => {
                let slot = order_id & ((1u64 << depth) - 1);
                let stored = before.orders.get(&slot).copied().unwrap_or_default();
                let new_leaf = after.orders.get(&slot).map_or(Fr::zero(), OrderSlot::leaf);
                let u = before
                    .orders_tree(depth)
                    .update(slot, new_leaf)
                    .map_err(|_| BatchCircuitError::Inconsistent("order slot"))?;
                let order = OrderFillWitness {
                    stored,
                    siblings: u.siblings,
                };
                (order, position_slot(&before, series))
            }
            None => (idle_order(depth), 0),
        };
        self.accounts.insert(id, after.clone());
        Ok(PortWitness {
            account: id,
            before,
            after,
            siblings: update.siblings,
            position_slot,
            order,
        })
    }

    /// An identity write of the fee account.
    fn idle(&mut self) -> Result<PortWitness, BatchCircuitError> {
        let acc = self.current(FEE_ACCOUNT);
        self.write(FEE_ACCOUNT, acc, None)
    }

    fn root(&self) -> Fr {
        self.tree.root()
    }
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
    /// padded to `capacity` slots whose ports are identity writes of the fee account.
    ///
    /// # Errors
    /// [`BatchCircuitError::OverCapacity`], [`BatchCircuitError::Unsupported`] for a type this
    /// circuit version has no gadget for, [`BatchCircuitError::Inconsistent`] if `batch` was not
    /// executed on `before`.
    pub fn new(
        before: &State,
        batch: &ExecutedBatch,
        capacity: usize,
    ) -> Result<Self, BatchCircuitError> {
        if batch.witnesses.len() > capacity {
            return Err(BatchCircuitError::OverCapacity {
                txs: batch.witnesses.len(),
                capacity,
            });
        }
        let mut replay = PortReplay::new(before)?;
        let mut slots = Vec::with_capacity(capacity);
        for w in &batch.witnesses {
            if w.header_before.accounts_root != replay.root() {
                return Err(BatchCircuitError::Inconsistent("batch does not chain"));
            }
            slots.push(slot_of(&mut replay, w)?);
            if w.header_after.accounts_root != replay.root() {
                return Err(BatchCircuitError::Inconsistent("ports do not replay"));
            }
        }
        while slots.len() < capacity {
            let ports = (0..PORTS)
                .map(|_| replay.idle())
                .collect::<Result<_, _>>()?;
            slots.push(SlotWitness { tx: None, ports });
        }
        let mut b = before.clone();
        Ok(Self {
            params: before.params().clone(),
            header_before: b.header(),
            series: before.series().to_vec(),
            underlyings: before.underlyings().to_vec(),
            slots,
            batch_number: batch.public_inputs.batch_number,
        })
    }
}

impl BatchWitness {
    /// Recomputes every port's `before` value, Merkle siblings and order-slot witness by
    /// replaying the ports' `after` values in order on `before` (the state the batch started
    /// from). Tests use it to forge a witness (edit some `after` or transaction field) that is
    /// still consistent as Merkle paths, so that only the rule under test can reject it.
    ///
    /// # Errors
    /// [`BatchCircuitError::Inconsistent`] if an account id is outside the tree.
    pub fn reseal(&mut self, before: &State) -> Result<(), BatchCircuitError> {
        let mut replay = PortReplay::new(before)?;
        for slot in &mut self.slots {
            let fills: Vec<Option<(u64, u32)>> = match &slot.tx {
                Some(Tx::Trade(t)) => vec![
                    Some((t.buy.order_id, t.buy.series)),
                    Some((t.sell.order_id, t.sell.series)),
                ],
                _ => Vec::new(),
            };
            for (i, port) in slot.ports.iter_mut().enumerate() {
                let fill = fills.get(i).copied().flatten();
                let position_slot = port.position_slot;
                *port = replay.write(port.account, port.after.clone(), fill)?;
                port.position_slot = position_slot;
            }
        }
        Ok(())
    }
}

fn final_of(w: &TxWitness, id: u64) -> Result<Account, BatchCircuitError> {
    w.account_updates
        .iter()
        .rev()
        .find(|u| u.account == id)
        .map(|u| u.after.clone())
        .ok_or(BatchCircuitError::Inconsistent("account not written"))
}

fn slot_of(replay: &mut PortReplay, w: &TxWitness) -> Result<SlotWitness, BatchCircuitError> {
    let mut ports = Vec::with_capacity(PORTS);
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
        other => return Err(BatchCircuitError::Unsupported(other.kind())),
    }
    while ports.len() < PORTS {
        ports.push(replay.idle()?);
    }
    Ok(SlotWitness {
        tx: Some(w.tx.clone()),
        ports,
    })
}
