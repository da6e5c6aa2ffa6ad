//! Sparse Merkle paths in circuit (PROTOCOL.md §4.1): constrained index bits, the root a path
//! folds to, and the shared-path update that proves an old and a new root at once.
//!
//! The chip is config-free: every function takes halo2-base's [`Context`] and a gate or range
//! chip. The witness (the path) is built natively by
//! [`collar_protocol::merkle::SparseMerkleTree::update`]; this module only constrains it.
//!
//! The tree shape matches the native one exactly: the node hash is
//! [`PoseidonChip::hash2`]`(left, right)` (equal to native `hash2`, one permutation), and bit `i`
//! of the index (least significant first) is clear when the path node at level `i` is the left
//! child.

use collar_protocol::merkle::{MerkleUpdate, MAX_DEPTH};
use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};

use crate::poseidon::PoseidonChip;

/// Constrains the little-endian bit decomposition of `index` over `depth` bits and returns the
/// bits, least significant first.
///
/// Every returned cell is constrained boolean and `index = Σ bits[i]·2^i` holds in the field.
/// Because `depth <= MAX_DEPTH` (48) the sum is below `2^48 < p`, so the recomposition cannot
/// wrap: the constraint also enforces `index < 2^depth` (an index that does not fit fails the
/// recomposition copy constraint, a `Permutation` failure).
///
/// # Panics
/// Unless `1 <= depth <= MAX_DEPTH` (a circuit-shape error, never a witness one).
pub fn index_bits(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    index: AssignedValue<Fr>,
    depth: usize,
) -> Vec<AssignedValue<Fr>> {
    crate::stats::measure(crate::stats::Component::Merkle, ctx, |ctx| {
        assert!(
            (1..=MAX_DEPTH).contains(&depth),
            "Merkle depth {depth} is outside 1..={MAX_DEPTH}"
        );
        // `num_to_bits` witnesses the low `depth` bits, constrains each boolean and copy-constrains
        // their weighted sum to `index`.
        range.gate().num_to_bits(ctx, index, depth)
    })
}

/// The root that `leaf` folds to along `siblings` (bottom-up, `siblings[0]` at the leaf level),
/// taking the side at level `i` from `bits[i]`: a clear bit hashes `H(node, sibling)`, a set bit
/// `H(sibling, node)`.
///
/// Preconditions (not constrained here): every cell of `bits` is boolean-constrained, as those
/// returned by [`index_bits`]; `leaf` and `siblings` are whatever the caller binds them to.
///
/// # Panics
/// If `bits` and `siblings` differ in length or are empty.
pub fn root_from_path(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    poseidon: &PoseidonChip,
    leaf: AssignedValue<Fr>,
    bits: &[AssignedValue<Fr>],
    siblings: &[AssignedValue<Fr>],
) -> AssignedValue<Fr> {
    crate::stats::measure(crate::stats::Component::Merkle, ctx, |ctx| {
        assert_eq!(
            bits.len(),
            siblings.len(),
            "one index bit per sibling is required"
        );
        assert!(!siblings.is_empty(), "a Merkle path has at least one level");
        bits.iter()
            .zip(siblings)
            .fold(leaf, |node, (bit, sibling)| {
                // `select(a, b, s) = s ? a : b`.
                let left = gate.select(ctx, *sibling, node, *bit);
                let right = gate.select(ctx, node, *sibling, *bit);
                poseidon.hash2(ctx, gate, left, right)
            })
    })
}

/// The cells of one constrained leaf write (PROTOCOL.md §4.1): the old and the new leaf fold up
/// the same index bits and siblings.
///
/// `old_root` and `new_root` are *computed* cells, never free witnesses: a caller must bind them
/// (`ctx.constrain_equal`) to its running root before and after the write, and chain writes by
/// binding one update's `new_root` to the next one's `old_root`.
#[derive(Clone, Debug)]
pub struct AssignedMerkleUpdate {
    /// The leaf index.
    pub index: AssignedValue<Fr>,
    /// The index bits, least significant first; constrained boolean and recomposing to `index`,
    /// so `index < 2^depth`.
    pub bits: Vec<AssignedValue<Fr>>,
    /// The leaf before the write.
    pub old_leaf: AssignedValue<Fr>,
    /// The leaf after the write.
    pub new_leaf: AssignedValue<Fr>,
    /// The shared siblings, bottom-up.
    pub siblings: Vec<AssignedValue<Fr>>,
    /// The root `old_leaf` folds to.
    pub old_root: AssignedValue<Fr>,
    /// The root `new_leaf` folds to.
    pub new_root: AssignedValue<Fr>,
}

/// Loads the witness of one leaf write (`index`, both leaves, the siblings) and constrains both
/// roots along the shared path. `w.old_root` and `w.new_root` are **not** loaded: the returned
/// roots are the computed cells, which the caller binds (see [`AssignedMerkleUpdate`]).
///
/// The depth is `w.siblings.len()`; the circuit shape depends on it, so it must be the same for
/// every witness of one circuit.
///
/// # Panics
/// Unless `1 <= w.siblings.len() <= MAX_DEPTH`.
pub fn assign_update(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    poseidon: &PoseidonChip,
    w: &MerkleUpdate,
) -> AssignedMerkleUpdate {
    crate::stats::measure(crate::stats::Component::Merkle, ctx, |ctx| {
        let index = ctx.load_witness(Fr::from(w.index));
        let old_leaf = ctx.load_witness(w.old_leaf);
        let new_leaf = ctx.load_witness(w.new_leaf);
        update_with_cells(ctx, range, poseidon, index, old_leaf, new_leaf, &w.siblings)
    })
}

/// [`assign_update`] for an index and leaves the caller has already assigned (for instance leaf
/// hashes it computed in circuit); only the siblings are loaded as witnesses here.
///
/// Constrains `index < 2^depth` (through [`index_bits`]) and both roots; the leaves are used as
/// given.
///
/// # Panics
/// Unless `1 <= siblings.len() <= MAX_DEPTH`.
pub fn update_with_cells(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    poseidon: &PoseidonChip,
    index: AssignedValue<Fr>,
    old_leaf: AssignedValue<Fr>,
    new_leaf: AssignedValue<Fr>,
    siblings: &[Fr],
) -> AssignedMerkleUpdate {
    crate::stats::measure(crate::stats::Component::Merkle, ctx, |ctx| {
        let bits = index_bits(ctx, range, index, siblings.len());
        let siblings = ctx.assign_witnesses(siblings.iter().copied());
        let gate = range.gate();
        let old_root = root_from_path(ctx, gate, poseidon, old_leaf, &bits, &siblings);
        let new_root = root_from_path(ctx, gate, poseidon, new_leaf, &bits, &siblings);
        AssignedMerkleUpdate {
            index,
            bits,
            old_leaf,
            new_leaf,
            siblings,
            old_root,
            new_root,
        }
    })
}
