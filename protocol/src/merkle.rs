//! Sparse Merkle trees over `Fr` with the Poseidon node hash (PROTOCOL.md §4.1).
//!
//! Collar uses one shape for both its accounts tree (production depth 24) and each account's
//! order-slot subtree (depth about 6):
//!
//! * leaves are field elements (callers hash their records into a leaf value) and the empty leaf
//!   is `Fr::ZERO`;
//! * an inner node is [`hash2`]`(left, right)`, so the empty subtree of height `i` hashes to
//!   `empty[i]` with `empty[0] = 0` and `empty[i + 1] = hash2(empty[i], empty[i])`;
//! * bit `i` (least significant first) of a leaf index picks the side at level `i`: a clear bit
//!   means the node on the path is the left child and its sibling is on the right.
//!
//! [`SparseMerkleTree`] stores only leaves and nodes that differ from the empty hash of their
//! level, so memory is proportional to the number of non-empty leaves times the depth, and
//! deleting a leaf (writing `ZERO`) gives its storage back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use ff::Field;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::field::Fr;
use crate::poseidon::hash2;

/// Largest tree depth [`SparseMerkleTree`] and the proof checks accept (indices stay below
/// `2^48`, exact in JSON numbers).
pub const MAX_DEPTH: usize = 48;

/// Largest depth [`empty_hashes`] and [`empty_root`] serve.
pub const MAX_EMPTY_DEPTH: usize = 64;

/// Above this many nodes to rehash at one level, [`SparseMerkleTree::commit`] hashes them in
/// parallel.
const PAR_THRESHOLD: usize = 256;

/// Errors of the Merkle tree and its proofs (PROTOCOL.md §4.1).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MerkleError {
    /// The depth (or a proof's sibling count) is outside `1..=MAX_DEPTH`.
    #[error("Merkle depth {depth} is outside 1..={max}", max = MAX_DEPTH)]
    DepthOutOfRange {
        /// The rejected depth.
        depth: usize,
    },
    /// The leaf index is not below `2^depth`.
    #[error("leaf index {index} does not fit a tree of depth {depth}")]
    IndexOutOfRange {
        /// The rejected index.
        index: u64,
        /// The depth of the tree or proof.
        depth: usize,
    },
    /// The path does not hash to the expected root.
    #[error("Merkle path does not hash to the expected root")]
    RootMismatch,
    /// The tree has writes not yet folded in by [`SparseMerkleTree::commit`].
    #[error("the tree has uncommitted changes; call commit() first")]
    Uncommitted,
}

/// The empty subtree hashes `empty[0..=depth]`: `empty[0] = 0` and
/// `empty[i + 1] = hash2(empty[i], empty[i])` (PROTOCOL.md §4.1). Computed once, lazily.
///
/// # Panics
/// If `depth > MAX_EMPTY_DEPTH`.
pub fn empty_hashes(depth: usize) -> &'static [Fr] {
    static EMPTY: OnceLock<Vec<Fr>> = OnceLock::new();
    assert!(
        depth <= MAX_EMPTY_DEPTH,
        "empty hashes are cached up to depth {MAX_EMPTY_DEPTH}, asked for {depth}"
    );
    let all = EMPTY.get_or_init(|| {
        let mut v = Vec::with_capacity(MAX_EMPTY_DEPTH + 1);
        v.push(Fr::ZERO);
        for i in 0..MAX_EMPTY_DEPTH {
            v.push(hash2(v[i], v[i]));
        }
        v
    });
    &all[..=depth]
}

/// Root of an all-empty tree of `depth` levels, `empty[depth]` (PROTOCOL.md §4.1).
///
/// # Panics
/// If `depth > MAX_EMPTY_DEPTH`.
pub fn empty_root(depth: usize) -> Fr {
    empty_hashes(depth)[depth]
}

fn check_depth(depth: usize) -> Result<(), MerkleError> {
    if (1..=MAX_DEPTH).contains(&depth) {
        Ok(())
    } else {
        Err(MerkleError::DepthOutOfRange { depth })
    }
}

/// Requires `depth` already checked (`<= MAX_DEPTH < 64`).
fn check_index(index: u64, depth: usize) -> Result<(), MerkleError> {
    if index >> depth == 0 {
        Ok(())
    } else {
        Err(MerkleError::IndexOutOfRange { index, depth })
    }
}

/// Folds a leaf up its path; only the low `siblings.len()` bits of `index` are read.
fn fold_path(index: u64, leaf: Fr, siblings: &[Fr]) -> Fr {
    siblings
        .iter()
        .enumerate()
        .fold(leaf, |node, (level, sib)| {
            if (index >> level) & 1 == 0 {
                hash2(node, *sib)
            } else {
                hash2(*sib, node)
            }
        })
}

/// Checks the shape of a path: `1 <= siblings <= MAX_DEPTH` and `index < 2^siblings`.
fn check_path_shape(index: u64, siblings: &[Fr]) -> Result<(), MerkleError> {
    check_depth(siblings.len())?;
    check_index(index, siblings.len())
}

/// Serde for `Vec<Fr>` as a list of `0x`-hex strings (see [`crate::field::fr_hex`]).
mod fr_hex_vec {
    use super::Fr;
    use crate::field::{fr_hex, fr_to_be_bytes};
    use serde::{de::Error, ser::SerializeSeq, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Fr], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for f in v {
            seq.serialize_element(&format!("0x{}", hex::encode(fr_to_be_bytes(f))))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Fr>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| fr_hex::parse(s).map_err(D::Error::custom))
            .collect()
    }
}

/// A membership (or, with `leaf = 0`, non-membership) proof of one leaf (PROTOCOL.md §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerkleProof {
    /// Leaf index; bit `i` says whether the path node at level `i` is a right child.
    pub index: u64,
    /// The leaf value (`Fr::ZERO` for an empty leaf).
    #[serde(with = "crate::field::fr_hex")]
    pub leaf: Fr,
    /// Siblings bottom-up: `siblings[0]` is the leaf-level sibling; the length is the depth.
    #[serde(with = "fr_hex_vec")]
    pub siblings: Vec<Fr>,
}

impl MerkleProof {
    /// The root this path hashes to. Reads only the low `siblings.len()` bits of `index`; use
    /// [`MerkleProof::verify`] to also check the shape.
    pub fn compute_root(&self) -> Fr {
        fold_path(self.index, self.leaf, &self.siblings)
    }

    /// Checks that the path hashes to `root`. Errors: `DepthOutOfRange` unless
    /// `1 <= siblings.len() <= MAX_DEPTH`, `IndexOutOfRange` unless `index < 2^siblings.len()`,
    /// `RootMismatch` if the root differs.
    pub fn verify(&self, root: Fr) -> Result<(), MerkleError> {
        check_path_shape(self.index, &self.siblings)?;
        if self.compute_root() == root {
            Ok(())
        } else {
            Err(MerkleError::RootMismatch)
        }
    }
}

/// The witness of one leaf write (PROTOCOL.md §4.1): the old and new leaf share their siblings,
/// so one path proves both the old root and the new root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerkleUpdate {
    /// Leaf index.
    pub index: u64,
    /// Leaf value before the write.
    #[serde(with = "crate::field::fr_hex")]
    pub old_leaf: Fr,
    /// Leaf value after the write.
    #[serde(with = "crate::field::fr_hex")]
    pub new_leaf: Fr,
    /// Siblings bottom-up (`siblings[0]` at the leaf level), unchanged by the write.
    #[serde(with = "fr_hex_vec")]
    pub siblings: Vec<Fr>,
    /// Root before the write.
    #[serde(with = "crate::field::fr_hex")]
    pub old_root: Fr,
    /// Root after the write.
    #[serde(with = "crate::field::fr_hex")]
    pub new_root: Fr,
}

impl MerkleUpdate {
    /// Checks the old leaf under `old_root` and the new leaf under `new_root` along the same
    /// siblings. Errors as [`MerkleProof::verify`].
    pub fn verify(&self) -> Result<(), MerkleError> {
        check_path_shape(self.index, &self.siblings)?;
        if fold_path(self.index, self.old_leaf, &self.siblings) == self.old_root
            && fold_path(self.index, self.new_leaf, &self.siblings) == self.new_root
        {
            Ok(())
        } else {
            Err(MerkleError::RootMismatch)
        }
    }

    /// The proof of the old leaf against `old_root`.
    pub fn old_proof(&self) -> MerkleProof {
        MerkleProof {
            index: self.index,
            leaf: self.old_leaf,
            siblings: self.siblings.clone(),
        }
    }

    /// The proof of the new leaf against `new_root`.
    pub fn new_proof(&self) -> MerkleProof {
        MerkleProof {
            index: self.index,
            leaf: self.new_leaf,
            siblings: self.siblings.clone(),
        }
    }
}

/// A sparse Merkle tree of configurable depth (PROTOCOL.md §4.1).
///
/// Writes go either through [`set_leaf`](Self::set_leaf) (batched; folded in by
/// [`commit`](Self::commit)) or through [`update`](Self::update) (immediate, returning the
/// circuit witness). Only non-empty leaves and nodes that differ from the empty hash of their
/// level are stored.
#[derive(Clone, Debug)]
pub struct SparseMerkleTree {
    depth: usize,
    /// Non-zero leaves.
    leaves: HashMap<u64, Fr>,
    /// Inner nodes at levels `1..=depth` (level `depth` is the root) that differ from
    /// `empty[level]`, keyed by `(level, index at that level)`.
    nodes: HashMap<(u8, u64), Fr>,
    /// Leaf indices written by `set_leaf` since the last commit.
    dirty: BTreeSet<u64>,
    /// The root as of the last commit (or `update`).
    committed_root: Fr,
}

impl SparseMerkleTree {
    /// An empty tree of `depth` levels (`2^depth` leaves). Errors with `DepthOutOfRange` unless
    /// `1 <= depth <= MAX_DEPTH`.
    pub fn new(depth: usize) -> Result<Self, MerkleError> {
        check_depth(depth)?;
        Ok(Self {
            depth,
            leaves: HashMap::new(),
            nodes: HashMap::new(),
            dirty: BTreeSet::new(),
            committed_root: empty_root(depth),
        })
    }

    /// The number of levels (leaves are `2^depth`).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The current value of a leaf, including uncommitted writes; `Fr::ZERO` if empty or if
    /// `index >= 2^depth`.
    pub fn leaf(&self, index: u64) -> Fr {
        self.leaves.get(&index).copied().unwrap_or(Fr::ZERO)
    }

    /// Number of non-empty leaves (including uncommitted writes).
    pub fn leaf_count(&self) -> usize {
        self.leaves.len()
    }

    /// Number of stored inner nodes (those differing from the empty hash of their level), as of
    /// the last commit.
    pub fn stored_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The non-empty leaves as `(index, value)`, in no particular order.
    pub fn iter_leaves(&self) -> impl Iterator<Item = (u64, Fr)> + '_ {
        self.leaves.iter().map(|(i, v)| (*i, *v))
    }

    /// Writes a leaf without rehashing; [`commit`](Self::commit) folds it in. Writing
    /// `Fr::ZERO` deletes the leaf. Errors with `IndexOutOfRange` unless `index < 2^depth`.
    pub fn set_leaf(&mut self, index: u64, value: Fr) -> Result<(), MerkleError> {
        check_index(index, self.depth)?;
        self.put_leaf(index, value);
        self.dirty.insert(index);
        Ok(())
    }

    /// Whether there are writes since the last commit.
    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Rehashes the paths of all leaves written since the last commit, level by level (each
    /// parent once; in parallel at levels with many dirty nodes), and returns the new root.
    pub fn commit(&mut self) -> Fr {
        self.commit_with_threshold(PAR_THRESHOLD)
    }

    fn commit_with_threshold(&mut self, par_threshold: usize) -> Fr {
        if self.dirty.is_empty() {
            return self.committed_root;
        }
        // Sorted (BTreeSet), so parents come out sorted and `dedup` removes all duplicates.
        let mut current: Vec<u64> = std::mem::take(&mut self.dirty).into_iter().collect();
        for level in 0..self.depth {
            let mut parents: Vec<u64> = current.iter().map(|i| i >> 1).collect();
            parents.dedup();
            let hashes = self.hash_children(level, &parents, par_threshold);
            for (p, h) in parents.iter().zip(hashes) {
                self.put_node(level + 1, *p, h);
            }
            current = parents;
        }
        self.committed_root = self.node(self.depth, 0);
        self.committed_root
    }

    /// `hash2` of the two children at `level` of each parent in `parents` (parents at
    /// `level + 1`).
    fn hash_children(&self, level: usize, parents: &[u64], par_threshold: usize) -> Vec<Fr> {
        let h = |p: &u64| hash2(self.node(level, p << 1), self.node(level, (p << 1) | 1));
        if parents.len() > par_threshold {
            parents.par_iter().map(h).collect()
        } else {
            parents.iter().map(h).collect()
        }
    }

    /// The root as of the last [`commit`](Self::commit) or [`update`](Self::update); writes made
    /// with [`set_leaf`](Self::set_leaf) since are not reflected (see [`is_dirty`](Self::is_dirty)).
    pub fn root(&self) -> Fr {
        self.committed_root
    }

    /// Writes a leaf and rehashes its path at once, returning the witness: old and new leaf,
    /// the shared siblings, old and new root. Errors: `IndexOutOfRange` unless
    /// `index < 2^depth`; `Uncommitted` if `set_leaf` writes are pending (commit them first, so
    /// that `old_root` is unambiguous).
    pub fn update(&mut self, index: u64, value: Fr) -> Result<MerkleUpdate, MerkleError> {
        check_index(index, self.depth)?;
        if self.is_dirty() {
            return Err(MerkleError::Uncommitted);
        }
        let old_leaf = self.leaf(index);
        let old_root = self.committed_root;
        self.put_leaf(index, value);
        let mut siblings = Vec::with_capacity(self.depth);
        let mut node = value;
        let mut idx = index;
        for level in 0..self.depth {
            let sib = self.node(level, idx ^ 1);
            siblings.push(sib);
            node = if idx & 1 == 0 {
                hash2(node, sib)
            } else {
                hash2(sib, node)
            };
            idx >>= 1;
            self.put_node(level + 1, idx, node);
        }
        self.committed_root = node;
        Ok(MerkleUpdate {
            index,
            old_leaf,
            new_leaf: value,
            siblings,
            old_root,
            new_root: node,
        })
    }

    /// The proof of leaf `index` (empty leaves included) against [`root`](Self::root). Errors:
    /// `IndexOutOfRange` unless `index < 2^depth`; `Uncommitted` if `set_leaf` writes are
    /// pending.
    pub fn proof(&self, index: u64) -> Result<MerkleProof, MerkleError> {
        check_index(index, self.depth)?;
        if self.is_dirty() {
            return Err(MerkleError::Uncommitted);
        }
        let siblings = (0..self.depth)
            .map(|level| self.node(level, (index >> level) ^ 1))
            .collect();
        Ok(MerkleProof {
            index,
            leaf: self.leaf(index),
            siblings,
        })
    }

    /// The root of a `depth`-level tree holding `leaves`, computed from scratch (for
    /// cross-checks). A later entry for an index replaces an earlier one; `Fr::ZERO` entries are
    /// empty. Errors: `DepthOutOfRange` unless `1 <= depth <= MAX_DEPTH`; `IndexOutOfRange` for
    /// an index not below `2^depth`.
    pub fn rebuild_root(
        depth: usize,
        leaves: impl IntoIterator<Item = (u64, Fr)>,
    ) -> Result<Fr, MerkleError> {
        check_depth(depth)?;
        let empty = empty_hashes(depth);
        let mut layer: BTreeMap<u64, Fr> = BTreeMap::new();
        for (index, value) in leaves {
            check_index(index, depth)?;
            if value == Fr::ZERO {
                layer.remove(&index);
            } else {
                layer.insert(index, value);
            }
        }
        for e in &empty[..depth] {
            let mut next = BTreeMap::new();
            let mut it = layer.into_iter().peekable();
            while let Some((i, v)) = it.next() {
                let (left, right) = if i & 1 == 0 {
                    let right = match it.peek() {
                        Some(&(j, w)) if j == i + 1 => {
                            it.next();
                            w
                        }
                        _ => *e,
                    };
                    (v, right)
                } else {
                    (*e, v)
                };
                next.insert(i >> 1, hash2(left, right));
            }
            layer = next;
        }
        Ok(layer.get(&0).copied().unwrap_or(empty[depth]))
    }

    /// The stored node at `(level, index)`, or the empty hash of that level.
    fn node(&self, level: usize, index: u64) -> Fr {
        let stored = if level == 0 {
            self.leaves.get(&index)
        } else {
            self.nodes.get(&(level as u8, index))
        };
        stored
            .copied()
            .unwrap_or_else(|| empty_hashes(self.depth)[level])
    }

    fn put_leaf(&mut self, index: u64, value: Fr) {
        if value == Fr::ZERO {
            self.leaves.remove(&index);
        } else {
            self.leaves.insert(index, value);
        }
    }

    /// Stores an inner node (`level >= 1`), dropping it if it equals the empty hash.
    fn put_node(&mut self, level: usize, index: u64, value: Fr) {
        if value == empty_hashes(self.depth)[level] {
            self.nodes.remove(&(level as u8, index));
        } else {
            self.nodes.insert((level as u8, index), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn fr(v: u64) -> Fr {
        Fr::from(v)
    }

    /// A tree of `depth` with the given leaves written through `set_leaf` and committed.
    fn tree_with(depth: usize, leaves: &[(u64, Fr)]) -> SparseMerkleTree {
        let mut t = SparseMerkleTree::new(depth).unwrap();
        for (i, v) in leaves {
            t.set_leaf(*i, *v).unwrap();
        }
        t.commit();
        t
    }

    #[test]
    fn empty_tree_root_and_empty_hash_recurrence() {
        let e = empty_hashes(MAX_EMPTY_DEPTH);
        assert_eq!(e.len(), MAX_EMPTY_DEPTH + 1);
        assert_eq!(e[0], Fr::ZERO);
        for i in 0..MAX_EMPTY_DEPTH {
            assert_eq!(e[i + 1], hash2(e[i], e[i]));
            assert_ne!(e[i + 1], e[i]);
        }
        for depth in [1, 6, 8, 24, MAX_DEPTH] {
            let mut t = SparseMerkleTree::new(depth).unwrap();
            assert_eq!(t.root(), empty_root(depth));
            assert_eq!(t.commit(), empty_root(depth));
            assert_eq!(empty_hashes(depth), &e[..=depth]);
            assert_eq!(
                SparseMerkleTree::rebuild_root(depth, []).unwrap(),
                empty_root(depth)
            );
            // An empty proof of the last leaf is all empty hashes.
            let last = (1u64 << depth) - 1;
            let p = t.proof(last).unwrap();
            assert_eq!(p.siblings, e[..depth].to_vec());
            p.verify(t.root()).unwrap();
        }
        // Depth 1 by hand.
        let t = tree_with(1, &[(0, fr(3)), (1, fr(4))]);
        assert_eq!(t.root(), hash2(fr(3), fr(4)));
    }

    #[test]
    fn index_bits_select_sides() {
        // Depth 2, leaf 2 = 0b10: left child at level 0, right child at level 1.
        let t = tree_with(2, &[(2, fr(7))]);
        let e = empty_hashes(2);
        assert_eq!(t.root(), hash2(e[1], hash2(fr(7), Fr::ZERO)));
        let p = t.proof(2).unwrap();
        assert_eq!(p.siblings, vec![Fr::ZERO, e[1]]);
    }

    #[test]
    fn proofs_verify_and_tampering_is_rejected() {
        let leaves: Vec<(u64, Fr)> = (0..20u64).map(|i| (i * 3, fr(100 + i))).collect();
        let t = tree_with(8, &leaves);
        let root = t.root();
        // Set leaves and empty leaves alike.
        for i in [0u64, 3, 57, 1, 2, 200, 255] {
            let p = t.proof(i).unwrap();
            assert_eq!(p.leaf, t.leaf(i));
            assert_eq!(p.compute_root(), root);
            p.verify(root).unwrap();
        }
        assert_eq!(t.leaf(1), Fr::ZERO);

        let good = t.proof(3).unwrap();
        // Leaves 2 (empty) and 3 are siblings: a wrong index swaps the sides.
        let mut wrong_index = good.clone();
        wrong_index.index = 2;
        assert_eq!(wrong_index.verify(root), Err(MerkleError::RootMismatch));
        let mut wrong_high_bit = good.clone();
        wrong_high_bit.index = 3 | (1 << 7);
        assert_eq!(wrong_high_bit.verify(root), Err(MerkleError::RootMismatch));
        for level in [0, 4, 7] {
            let mut wrong_sibling = good.clone();
            wrong_sibling.siblings[level] += Fr::ONE;
            assert_eq!(wrong_sibling.verify(root), Err(MerkleError::RootMismatch));
        }
        let mut wrong_leaf = good.clone();
        wrong_leaf.leaf = fr(999);
        assert_eq!(wrong_leaf.verify(root), Err(MerkleError::RootMismatch));
        // A claim that an occupied leaf is empty.
        let mut claims_empty = good.clone();
        claims_empty.leaf = Fr::ZERO;
        assert_eq!(claims_empty.verify(root), Err(MerkleError::RootMismatch));
        // Shape errors.
        let mut too_big = good.clone();
        too_big.index = 1 << 8;
        assert_eq!(
            too_big.verify(root),
            Err(MerkleError::IndexOutOfRange {
                index: 1 << 8,
                depth: 8
            })
        );
        let mut no_siblings = good.clone();
        no_siblings.siblings.clear();
        assert_eq!(
            no_siblings.verify(root),
            Err(MerkleError::DepthOutOfRange { depth: 0 })
        );
        assert_eq!(good.verify(root), Ok(()));
    }

    #[test]
    fn proof_against_old_root_is_rejected_after_update() {
        let mut t = tree_with(8, &[(5, fr(1)), (9, fr(2))]);
        let old_root = t.root();
        let old_proof = t.proof(5).unwrap();
        t.update(5, fr(3)).unwrap();
        assert_eq!(old_proof.verify(old_root), Ok(()));
        assert_eq!(old_proof.verify(t.root()), Err(MerkleError::RootMismatch));
        // Another leaf's stale proof fails too: its sibling path changed.
        let mut t2 = tree_with(8, &[(5, fr(1)), (9, fr(2))]);
        let stale = t2.proof(9).unwrap();
        t2.set_leaf(5, fr(3)).unwrap();
        t2.commit();
        assert_eq!(stale.verify(t2.root()), Err(MerkleError::RootMismatch));
        t2.proof(9).unwrap().verify(t2.root()).unwrap();
    }

    #[test]
    fn update_witness_verifies_and_tampering_is_rejected() {
        let mut t = tree_with(10, &[(17, fr(5)), (16, fr(6)), (700, fr(7))]);
        for (index, value) in [(17, fr(8)), (18, fr(9)), (700, Fr::ZERO), (1023, fr(1))] {
            let before = t.root();
            let old_leaf = t.leaf(index);
            let w = t.update(index, value).unwrap();
            assert_eq!(w.verify(), Ok(()));
            assert_eq!(w.index, index);
            assert_eq!(w.old_leaf, old_leaf);
            assert_eq!(w.new_leaf, value);
            assert_eq!(w.old_root, before);
            assert_eq!(w.new_root, t.root());
            assert_eq!(w.siblings.len(), 10);
            assert!(!t.is_dirty());
            assert_eq!(w.new_proof(), t.proof(index).unwrap());
            w.old_proof().verify(before).unwrap();

            let mut bad = w.clone();
            bad.old_leaf += Fr::ONE;
            assert_eq!(bad.verify(), Err(MerkleError::RootMismatch));
            let mut bad = w.clone();
            bad.new_leaf += Fr::ONE;
            assert_eq!(bad.verify(), Err(MerkleError::RootMismatch));
            let mut bad = w.clone();
            bad.siblings[3] += Fr::ONE;
            assert_eq!(bad.verify(), Err(MerkleError::RootMismatch));
            let mut bad = w.clone();
            bad.new_root = bad.old_root;
            if w.new_root != w.old_root {
                assert_eq!(bad.verify(), Err(MerkleError::RootMismatch));
            }
        }
        // The witness root agrees with a from-scratch build.
        let leaves: Vec<_> = t.iter_leaves().collect();
        assert_eq!(
            SparseMerkleTree::rebuild_root(10, leaves).unwrap(),
            t.root()
        );
    }

    #[test]
    fn out_of_range_and_uncommitted_are_typed_errors() {
        for depth in [0, MAX_DEPTH + 1, 64, usize::MAX] {
            assert_eq!(
                SparseMerkleTree::new(depth).unwrap_err(),
                MerkleError::DepthOutOfRange { depth }
            );
            assert_eq!(
                SparseMerkleTree::rebuild_root(depth, []),
                Err(MerkleError::DepthOutOfRange { depth })
            );
        }
        assert!(SparseMerkleTree::new(MAX_DEPTH).is_ok());
        let mut t = SparseMerkleTree::new(6).unwrap();
        let oob = MerkleError::IndexOutOfRange {
            index: 64,
            depth: 6,
        };
        assert_eq!(t.set_leaf(64, fr(1)), Err(oob.clone()));
        assert_eq!(t.update(64, fr(1)).unwrap_err(), oob);
        assert_eq!(t.proof(64).unwrap_err(), oob);
        assert_eq!(
            SparseMerkleTree::rebuild_root(6, [(64, fr(1))]),
            Err(oob.clone())
        );
        assert_eq!(
            t.set_leaf(u64::MAX, fr(1)),
            Err(MerkleError::IndexOutOfRange {
                index: u64::MAX,
                depth: 6
            })
        );
        assert_eq!(t.leaf(64), Fr::ZERO);
        assert!(!t.is_dirty());
        assert_eq!(
            oob.to_string(),
            "leaf index 64 does not fit a tree of depth 6"
        );

        let root = t.root();
        t.set_leaf(63, fr(1)).unwrap();
        assert!(t.is_dirty());
        assert_eq!(t.root(), root, "root() reflects the last commit only");
        assert_eq!(t.proof(0).unwrap_err(), MerkleError::Uncommitted);
        assert_eq!(t.update(0, fr(2)).unwrap_err(), MerkleError::Uncommitted);
        assert_eq!(t.leaf(0), Fr::ZERO, "rejected update wrote nothing");
        let new_root = t.commit();
        assert!(!t.is_dirty());
        assert_ne!(new_root, root);
        t.proof(63).unwrap().verify(new_root).unwrap();
    }

    #[test]
    fn parallel_batch_commit_equals_sequential() {
        let depth = 24;
        let mut rng = ChaCha8Rng::seed_from_u64(0xC011A2);
        let mut writes: Vec<(u64, Fr)> = (0..600)
            .map(|_| (rng.gen_range(0..1u64 << depth), fr(rng.gen())))
            .collect();
        // A dense run too, so some parents have both children dirty.
        writes.extend((0..300u64).map(|i| (1000 + i, fr(i + 1))));
        let mut par = SparseMerkleTree::new(depth).unwrap();
        let mut seq = SparseMerkleTree::new(depth).unwrap();
        for (i, v) in &writes {
            par.set_leaf(*i, *v).unwrap();
            seq.set_leaf(*i, *v).unwrap();
        }
        assert!(par.dirty.len() > PAR_THRESHOLD);
        let par_root = par.commit();
        let seq_root = seq.commit_with_threshold(usize::MAX);
        assert_eq!(par_root, seq_root);
        assert_eq!(par.nodes, seq.nodes);
        assert_eq!(
            SparseMerkleTree::rebuild_root(depth, writes.iter().copied()).unwrap(),
            par_root
        );
        // A second parallel batch on top of a populated tree, deleting half.
        for (i, _) in writes.iter().step_by(2) {
            par.set_leaf(*i, Fr::ZERO).unwrap();
            seq.set_leaf(*i, Fr::ZERO).unwrap();
        }
        assert_eq!(par.commit(), seq.commit_with_threshold(usize::MAX));
        assert_eq!(par.nodes, seq.nodes);
        let leaves: Vec<_> = par.iter_leaves().collect();
        assert_eq!(
            SparseMerkleTree::rebuild_root(depth, leaves).unwrap(),
            par.root()
        );
    }

    #[test]
    fn json_round_trip_of_proof_and_update() {
        let mut t = tree_with(6, &[(3, -Fr::ONE), (2, fr(0x1234))]);
        let p = t.proof(3).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        let back: MerkleProof = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        back.verify(t.root()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["index"], 3);
        assert_eq!(v["siblings"].as_array().unwrap().len(), 6);
        assert_eq!(v["siblings"][0], format!("0x{:0>64}", "1234"));
        assert!(v["leaf"].as_str().unwrap().starts_with("0x30644e72"));
        // Non-canonical siblings are rejected.
        let bad = json.replace(
            &format!("0x{:0>64}", "1234"),
            &format!("0x{}", "f".repeat(64)),
        );
        assert!(serde_json::from_str::<MerkleProof>(&bad).is_err());

        let w = t.update(2, fr(9)).unwrap();
        let back: MerkleUpdate = serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
        assert_eq!(back, w);
        back.verify().unwrap();
    }

    /// Writes biased towards a few indices so that overwrites and deletions are common.
    fn writes(depth: usize) -> impl Strategy<Value = Vec<(u64, u64)>> {
        let index = prop_oneof![
            0..16u64,
            (1u64 << depth) - 16..1u64 << depth,
            0..1u64 << depth
        ];
        let value = prop_oneof![Just(0u64), 1..4u64, any::<u64>()];
        prop::collection::vec((index, value), 0..48)
    }

    fn check_incremental_matches_scratch(depth: usize, writes: &[(u64, u64)]) {
        let mut batched = SparseMerkleTree::new(depth).unwrap();
        let mut stepped = SparseMerkleTree::new(depth).unwrap();
        let mut final_leaves = BTreeMap::new();
        // Commit in a few batches so commits also land on populated trees.
        for chunk in writes.chunks(7) {
            for (i, v) in chunk {
                batched.set_leaf(*i, fr(*v)).unwrap();
                let w = stepped.update(*i, fr(*v)).unwrap();
                w.verify().unwrap();
                final_leaves.insert(*i, fr(*v));
            }
            assert_eq!(batched.commit(), stepped.root());
        }
        let scratch =
            SparseMerkleTree::rebuild_root(depth, final_leaves.iter().map(|(i, v)| (*i, *v)))
                .unwrap();
        assert_eq!(batched.root(), scratch);
        assert_eq!(stepped.root(), scratch);
        assert_eq!(batched.nodes, stepped.nodes);
        for (i, v) in &final_leaves {
            assert_eq!(batched.leaf(*i), *v);
            batched.proof(*i).unwrap().verify(scratch).unwrap();
        }
        // Deleting every leaf returns to the empty tree with nothing stored.
        for i in final_leaves.keys() {
            batched.set_leaf(*i, Fr::ZERO).unwrap();
            stepped.update(*i, Fr::ZERO).unwrap();
        }
        assert_eq!(batched.commit(), empty_root(depth));
        assert_eq!(stepped.root(), empty_root(depth));
        assert!(batched.nodes.is_empty() && batched.leaves.is_empty());
        assert!(stepped.nodes.is_empty() && stepped.leaves.is_empty());
        assert_eq!(batched.stored_nodes() + batched.leaf_count(), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn incremental_matches_scratch_depth_8(w in writes(8)) {
            check_incremental_matches_scratch(8, &w);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn incremental_matches_scratch_depth_24(w in writes(24)) {
            check_incremental_matches_scratch(24, &w);
        }
    }
}
