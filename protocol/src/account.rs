//! Accounts: key, nonce, collateral, position slots and order slots, and their leaf hash
//! (PROTOCOL.md §4.2–§4.4).

use std::collections::BTreeMap;

use ff::Field;
use serde::{Deserialize, Serialize};

use crate::field::Fr;
use crate::merkle::SparseMerkleTree;
use crate::poseidon;
use crate::signature::PublicKey;

/// Account id of the fee account (PROTOCOL.md §4.10).
pub const FEE_ACCOUNT: u64 = 0;
/// Account id of the insurance fund (PROTOCOL.md §4.10).
pub const INSURANCE_FUND: u64 = 1;

/// One position slot: a series and a signed size in contracts (short < 0). A slot with
/// `size == 0` is empty and must hold `series == 0` (PROTOCOL.md §4.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Series id.
    pub series: u32,
    /// Signed size; assumes `|size| < 2^40`.
    pub size: i64,
}

impl Position {
    /// The slot's field word: `0` if empty, else `(series + 1)·2^64 + (size + 2^63)` (§4.3).
    pub fn word(&self) -> Fr {
        if self.size == 0 {
            return Fr::ZERO;
        }
        let hi = (u128::from(self.series) + 1) << 64;
        let lo = (i128::from(self.size) + (1i128 << 63)) as u128;
        crate::field::fr_from_u128(hi + lo)
    }
}

/// An order slot: the id of the order occupying it and how much of it has filled (§4.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSlot {
    /// Order id; the slot index is `order_id mod 2^order_slot_depth`.
    pub order_id: u64,
    /// Filled size so far.
    pub filled: u64,
}

impl OrderSlot {
    /// Leaf value of the slot in the order subtree: `H(order_id, filled)`. A slot that was never
    /// written has no `OrderSlot` and the empty leaf 0 (§4.4).
    pub fn leaf(&self) -> Fr {
        poseidon::hash(&[Fr::from(self.order_id), Fr::from(self.filled)])
    }
}

/// One account (PROTOCOL.md §4.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Grumpkin public key; zero for an account that does not exist.
    pub pubkey: PublicKey,
    /// Next nonce for withdrawals and liquidation orders.
    pub nonce: u64,
    /// Collateral in the quote currency's smallest unit; `< 2^63`.
    pub collateral: u64,
    /// Exactly `max_positions` slots.
    pub positions: Vec<Position>,
    /// Occupied order slots by slot index (absent = never used).
    pub orders: BTreeMap<u64, OrderSlot>,
}

impl Account {
    /// A new account bound to `pubkey` with `max_positions` empty slots.
    pub fn new(pubkey: PublicKey, max_positions: usize) -> Self {
        Self {
            pubkey,
            nonce: 0,
            collateral: 0,
            positions: vec![Position::default(); max_positions],
            orders: BTreeMap::new(),
        }
    }

    /// Whether the account exists (has a key).
    pub fn exists(&self) -> bool {
        !self.pubkey.is_zero()
    }

    /// The position held in `series`, or 0.
    pub fn position(&self, series: u32) -> i64 {
        self.positions
            .iter()
            .find(|p| p.size != 0 && p.series == series)
            .map_or(0, |p| p.size)
    }

    /// Sets the size held in `series`, keeping slots canonical: an existing slot is updated in
    /// place (and emptied at zero); a new position takes the lowest free slot (§4.3).
    /// Returns `false` if a new position finds no free slot.
    pub fn set_position(&mut self, series: u32, size: i64) -> bool {
        if let Some(p) = self
            .positions
            .iter_mut()
            .find(|p| p.size != 0 && p.series == series)
        {
            *p = if size == 0 {
                Position::default()
            } else {
                Position { series, size }
            };
            return true;
        }
        if size == 0 {
            return true;
        }
        match self.positions.iter_mut().find(|p| p.size == 0) {
            Some(p) => {
                *p = Position { series, size };
                true
            }
            None => false,
        }
    }

    /// `H(words of all position slots)` (§4.3).
    pub fn positions_hash(&self) -> Fr {
        let words: Vec<Fr> = self.positions.iter().map(Position::word).collect();
        poseidon::hash(&words)
    }

    /// Root of the order-slot subtree of depth `order_slot_depth` (§4.4).
    pub fn orders_root(&self, order_slot_depth: usize) -> Fr {
        SparseMerkleTree::rebuild_root(
            order_slot_depth,
            self.orders.iter().map(|(slot, o)| (*slot, o.leaf())),
        )
        .expect("validated depth and slot indices reduced mod 2^depth")
    }

    /// The order subtree as a tree, for Merkle witnesses (§4.4).
    pub fn orders_tree(&self, order_slot_depth: usize) -> SparseMerkleTree {
        let mut t = SparseMerkleTree::new(order_slot_depth).expect("validated depth");
        for (slot, o) in &self.orders {
            t.set_leaf(*slot, o.leaf())
                .expect("slot index is reduced mod 2^depth");
        }
        t.commit();
        t
    }

    /// The leaf preimage: `[pk.x, pk.y, nonce, collateral, positions_hash, orders_root]` (§4.2).
    pub fn leaf_fields(&self, order_slot_depth: usize) -> [Fr; 6] {
        self.leaf_fields_with(self.orders_root(order_slot_depth))
    }

    /// [`Account::leaf_fields`] with an `orders_root` the caller already has; assumes it is the
    /// root of `self.orders` (for instance the new root of an order-slot update witness).
    pub fn leaf_fields_with(&self, orders_root: Fr) -> [Fr; 6] {
        [
            self.pubkey.x,
            self.pubkey.y,
            Fr::from(self.nonce),
            Fr::from(self.collateral),
            self.positions_hash(),
            orders_root,
        ]
    }

    /// Leaf value in the accounts tree: 0 for a non-existent account, else `H(leaf_fields)`.
    pub fn leaf(&self, order_slot_depth: usize) -> Fr {
        if !self.exists() {
            return Fr::ZERO;
        }
        self.leaf_with(self.orders_root(order_slot_depth))
    }

    /// [`Account::leaf`] with an `orders_root` the caller already has; assumes it is the root of
    /// `self.orders`.
    pub fn leaf_with(&self, orders_root: Fr) -> Fr {
        if !self.exists() {
            return Fr::ZERO;
        }
        poseidon::hash(&self.leaf_fields_with(orders_root))
    }
}
