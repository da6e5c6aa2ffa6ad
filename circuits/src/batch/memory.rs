//! The batch's account table (docs/CIRCUIT.md, "Account table"): each account the batch touches
//! is opened once under the old accounts root, every port that names it reads and writes it in
//! place, and it is written back once after the last slot.
//!
//! Memory consistency is proved directly rather than with a sorted access log: the table is a
//! register file of `T` cells, one per account, and each port access multiplexes over all of
//! them (`O(T)` cells a port, against a Merkle update of `2·depth` permutations). At the
//! batch sizes a proof holds (`T <= 2·capacity + 2`) that is a few hundred cells a port.
//!
//! Soundness rests on three constraints:
//! * **Distinct ids.** Entry ids are range-checked below `2^depth` and strictly ascending, so
//!   no account has two entries (two entries for one account would let a port read a value
//!   that account only takes later in the batch).
//! * **Every port hits exactly one entry.** The selectors `s_j = [index == id_j]` are computed,
//!   not witnessed, and their sum is constrained to 1.
//! * **Open and close under the chained root.** Entry `j`'s write-back is a Merkle update from
//!   its opened leaf to its current leaf, chained on the accounts root from the old root. Ids are
//!   distinct, so when entry `j` is written back its leaf is still the old root's: the opened
//!   leaf is the account's leaf before the batch.
//!
//! Together these give the same new root as writing every port's leaf in turn with its own
//! Merkle update, and every port's `before` leaf is the value the previous write of its
//! account left (or the leaf under the old root for the first).

use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::QuantumCell::{Constant, Existing};
use halo2_base::{AssignedValue, Context};

use super::witness::EntryWitness;
use crate::merkle::update_with_cells;
use crate::poseidon::PoseidonChip;
use crate::safe::Ranged;
use crate::stats::{measure, Component};

/// The account table in circuit: per entry its id, the leaf it was opened with and its current
/// leaf.
pub(crate) struct AccountTable<'w> {
    entries: &'w [EntryWitness],
    ids: Vec<AssignedValue<Fr>>,
    opened: Vec<AssignedValue<Fr>>,
    current: Vec<AssignedValue<Fr>>,
    depth: usize,
}

impl<'w> AccountTable<'w> {
    /// Loads the entries: each id range-checked below `2^depth` and strictly above the one
    /// before, each opened leaf as a witness (bound by [`AccountTable::close`]).
    ///
    /// # Panics
    /// If `entries` is empty (a shape error: the table always holds at least one entry) or
    /// `depth` exceeds the range chip's bound.
    pub(crate) fn open(
        ctx: &mut Context<Fr>,
        range: &RangeChip<Fr>,
        entries: &'w [EntryWitness],
        depth: usize,
    ) -> Self {
        assert!(
            !entries.is_empty(),
            "the account table has at least one entry"
        );
        let ids: Vec<_> = entries
            .iter()
            .map(|e| Ranged::load(ctx, range, Fr::from(e.account), depth as u32).cell())
            .collect();
        measure(Component::Merkle, ctx, |ctx| {
            let gate = range.gate();
            for pair in ids.windows(2) {
                // id_j - id_{j-1} - 1 in [0, 2^depth): both ids are below 2^depth, so this
                // holds exactly when id_j > id_{j-1}.
                let gap = gate.sub(ctx, pair[1], pair[0]);
                let gap = gate.sub(ctx, gap, Constant(Fr::one()));
                Ranged::check(ctx, range, gap, depth as u32);
            }
            let opened: Vec<_> = entries.iter().map(|e| ctx.load_witness(e.opened)).collect();
            Self {
                entries,
                current: opened.clone(),
                ids,
                opened,
                depth,
            }
        })
    }

    /// One port's access: `index` must be the id of exactly one entry, `before` must be that
    /// entry's current leaf, and the entry's leaf becomes `after`.
    ///
    /// Assumes `index < 2^depth` (a `Ranged` id); `before` and `after` are whatever the caller
    /// computed (the port's leaf hashes).
    pub(crate) fn access(
        &mut self,
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        index: AssignedValue<Fr>,
        before: AssignedValue<Fr>,
        after: AssignedValue<Fr>,
    ) {
        measure(Component::Merkle, ctx, |ctx| {
            let hits: Vec<_> = self
                .ids
                .iter()
                .map(|id| gate.is_equal(ctx, index, *id))
                .collect();
            let count = gate.sum(ctx, hits.iter().copied());
            gate.assert_is_const(ctx, &count, &Fr::one());
            let read = gate.inner_product(
                ctx,
                self.current.iter().copied(),
                hits.iter().copied().map(Existing),
            );
            ctx.constrain_equal(&read, &before);
            for (cur, hit) in self.current.iter_mut().zip(&hits) {
                *cur = gate.select(ctx, after, *cur, *hit);
            }
        });
    }

    /// Writes every entry back in id order, each a Merkle update from its opened leaf to its
    /// current one chained from `root` (the accounts root before the batch); returns the root
    /// after the batch.
    pub(crate) fn close(
        self,
        ctx: &mut Context<Fr>,
        range: &RangeChip<Fr>,
        poseidon: &PoseidonChip,
        root: AssignedValue<Fr>,
    ) -> AssignedValue<Fr> {
        let mut root = root;
        for (j, entry) in self.entries.iter().enumerate() {
            assert_eq!(
                entry.siblings.len(),
                self.depth,
                "one sibling per level of the accounts tree"
            );
            let upd = update_with_cells(
                ctx,
                range,
                poseidon,
                self.ids[j],
                self.opened[j],
                self.current[j],
                &entry.siblings,
            );
            ctx.constrain_equal(&upd.old_root, &root);
            root = upd.new_root;
        }
        root
    }
}
