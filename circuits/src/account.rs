//! Accounts in circuit (PROTOCOL.md §4.2–§4.4): range-checked account fields, the position
//! slot words, the positions hash, the account leaf, and the order-slot leaf.
//!
//! Config-free like the rest of the crate: functions take halo2-base's [`Context`], the
//! [`RangeChip`] and the [`PoseidonChip`]. Witnesses come from the native
//! [`collar_protocol::Account`]; every quantity is range-checked where it is loaded
//! (`collar_protocol::params::bounds`) and exists afterwards only as a [`Ranged`] or [`Signed`].

use collar_protocol::account::{Account, Position};
use collar_protocol::field::{fr_from_i128, fr_from_u128};
use collar_protocol::merkle::empty_root;
use collar_protocol::params::bounds::{COLLATERAL_BITS, NONCE_BITS, SIZE_BITS};
use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::QuantumCell::{Constant, Existing};
use halo2_base::{AssignedValue, Context};

use crate::poseidon::PoseidonChip;
use crate::safe::{Ranged, Signed};

/// Width of a series id: `series < max_series <= 2^16` (PROTOCOL.md §2.3).
pub const SERIES_BITS: u32 = 16;

/// One position slot (PROTOCOL.md §4.3) with its constrained word.
#[derive(Clone, Debug)]
pub struct AssignedPosition {
    /// Series id, `< 2^16`.
    pub series: Ranged,
    /// Signed size, `|size| < 2^40`.
    pub size: Signed,
    /// Boolean: `size == 0` (the slot is empty). Exposed for the placement rules of §4.3.
    pub empty: AssignedValue<Fr>,
    /// `0` if `size == 0`, else `(series + 1)·2^64 + (size + 2^63)`.
    pub word: AssignedValue<Fr>,
}

/// An account leaf's preimage, range-checked, and the leaf (PROTOCOL.md §4.2).
#[derive(Clone, Debug)]
pub struct AssignedAccount {
    /// Public key `[x, y]`; `(0, 0)` for an account that does not exist.
    pub pubkey: [AssignedValue<Fr>; 2],
    /// Nonce, `< 2^32`.
    pub nonce: Ranged,
    /// Collateral, `< 2^63`.
    pub collateral: Ranged,
    /// Exactly `max_positions` slots.
    pub positions: Vec<AssignedPosition>,
    /// `H(word_0, …, word_{P-1})`.
    pub positions_hash: AssignedValue<Fr>,
    /// Root of the order-slot subtree (bound by the leaf hash; its changes are proved by a
    /// Merkle update of the order-slot subtree).
    pub orders_root: AssignedValue<Fr>,
    /// Boolean: the account exists, `NOT(pk.x == 0 AND pk.y == 0)`.
    pub exists: AssignedValue<Fr>,
    /// `exists ? H(pk.x, pk.y, nonce, collateral, positions_hash, orders_root) : 0`.
    pub leaf: AssignedValue<Fr>,
}

/// The cells of an account, for [`account_from_cells`]: what a caller has assigned or computed
/// itself. The scalar fields are range-checked by [`account_from_cells`]; the positions must
/// come from [`position_from_cells`] or [`assign_position`], which constrain them.
#[derive(Clone, Debug)]
pub struct AccountCells {
    /// Public key `[x, y]`.
    pub pubkey: [AssignedValue<Fr>; 2],
    /// Nonce (range-checked to 32 bits by [`account_from_cells`]).
    pub nonce: AssignedValue<Fr>,
    /// Collateral (range-checked to 63 bits by [`account_from_cells`]).
    pub collateral: AssignedValue<Fr>,
    /// The position slots.
    pub positions: Vec<AssignedPosition>,
    /// Root of the order-slot subtree.
    pub orders_root: AssignedValue<Fr>,
}

/// Constrains one position slot from its `series` and `size` cells (PROTOCOL.md §4.3):
/// `series < 2^16`, `|size| < 2^40`, the canonical empty slot (`size == 0 ⇒ series == 0`,
/// as `series · [size == 0] = 0`) and the word
/// `word = [size != 0] · ((series + 1)·2^64 + (size + 2^63))`.
pub fn position_from_cells(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    series: AssignedValue<Fr>,
    size: AssignedValue<Fr>,
) -> AssignedPosition {
    crate::stats::measure(crate::stats::Component::AccountLeaf, ctx, |ctx| {
        let gate = range.gate();
        let series = Ranged::check(ctx, range, series, SERIES_BITS);
        let size = Signed::check(ctx, range, size, SIZE_BITS);
        let empty = gate.is_zero(ctx, size.cell());
        // Canonical empty slot: series · empty = 0.
        let stray = gate.mul(ctx, series.cell(), empty);
        gate.assert_is_const(ctx, &stray, &Fr::zero());
        // series·2^64 + size + (2^64 + 2^63): never 0 for in-range operands, below 2^81.
        let hi = gate.mul_add(
            ctx,
            series.cell(),
            Constant(fr_from_u128(1 << 64)),
            size.cell(),
        );
        let full = gate.add(ctx, hi, Constant(fr_from_u128((1 << 64) + (1 << 63))));
        // word = (1 - empty) · full.
        let word = gate.mul_not(ctx, empty, full);
        AssignedPosition {
            series,
            size,
            empty,
            word,
        }
    })
}

/// Loads one native slot as witnesses and constrains it ([`position_from_cells`]).
pub fn assign_position(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    p: &Position,
) -> AssignedPosition {
    crate::stats::measure(crate::stats::Component::AccountLeaf, ctx, |ctx| {
        let series = ctx.load_witness(Fr::from(u64::from(p.series)));
        let size = ctx.load_witness(fr_from_i128(i128::from(p.size)));
        position_from_cells(ctx, range, series, size)
    })
}

/// Constrains an account from cells (PROTOCOL.md §4.2): range-checks the nonce (32 bits) and
/// collateral (63 bits), hashes the position words, derives `exists` from the key, and computes
/// the leaf, `0` for a non-existent account.
///
/// For a non-existent account (key `(0, 0)`) it constrains every other field to its empty value
/// so an empty leaf cannot hide state: nonce, collateral and every position word are 0 (a zero
/// word forces `size = 0`, hence `series = 0`), and `orders_root` is the root of the empty
/// order-slot subtree of depth `order_slot_depth` (`E_D`, what the native
/// `Account::new(PublicKey::ZERO, ..)` holds, which is not 0).
///
/// The position count is the circuit's `max_positions` (a shape parameter).
///
/// # Panics
/// Unless `1 <= order_slot_depth <= collar_protocol::merkle::MAX_DEPTH`.
pub fn account_from_cells(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    poseidon: &PoseidonChip,
    cells: AccountCells,
    order_slot_depth: usize,
) -> AssignedAccount {
    crate::stats::measure(crate::stats::Component::AccountLeaf, ctx, |ctx| {
        assert!(
            (1..=collar_protocol::merkle::MAX_DEPTH).contains(&order_slot_depth),
            "order_slot_depth {order_slot_depth} is outside 1..={}",
            collar_protocol::merkle::MAX_DEPTH
        );
        let gate = range.gate();
        let AccountCells {
            pubkey,
            nonce,
            collateral,
            positions,
            orders_root,
        } = cells;
        let nonce = Ranged::check(ctx, range, nonce, NONCE_BITS);
        let collateral = Ranged::check(ctx, range, collateral, COLLATERAL_BITS);

        let words: Vec<_> = positions.iter().map(|p| p.word).collect();
        let positions_hash = poseidon.hash(ctx, gate, &words);

        let x_zero = gate.is_zero(ctx, pubkey[0]);
        let y_zero = gate.is_zero(ctx, pubkey[1]);
        let absent = gate.and(ctx, x_zero, y_zero);
        let exists = gate.not(ctx, absent);

        // An absent account holds nothing: field · absent = 0 for each field, and
        // (orders_root - E_D) · absent = 0.
        let zero = Fr::zero();
        for field in [nonce.cell(), collateral.cell()]
            .into_iter()
            .chain(words.iter().copied())
        {
            let held = gate.mul(ctx, field, absent);
            gate.assert_is_const(ctx, &held, &zero);
        }
        let orders_diff = gate.sub(
            ctx,
            Existing(orders_root),
            Constant(empty_root(order_slot_depth)),
        );
        let held = gate.mul(ctx, orders_diff, absent);
        gate.assert_is_const(ctx, &held, &zero);

        let hash = poseidon.hash(
            ctx,
            gate,
            &[
                pubkey[0],
                pubkey[1],
                nonce.cell(),
                collateral.cell(),
                positions_hash,
                orders_root,
            ],
        );
        let leaf = gate.mul(ctx, hash, exists);
        AssignedAccount {
            pubkey,
            nonce,
            collateral,
            positions,
            positions_hash,
            orders_root,
            exists,
            leaf,
        }
    })
}

/// Loads a native account as witnesses and constrains it ([`account_from_cells`]); the
/// `orders_root` witness is computed natively with `acc.orders_root(order_slot_depth)`.
///
/// Preconditions: `acc.positions.len()` is the circuit's `max_positions`; `acc.orders` slot
/// indices are below `2^order_slot_depth` (as the native account keeps them).
///
/// # Panics
/// Unless `1 <= order_slot_depth <= collar_protocol::merkle::MAX_DEPTH`.
pub fn assign_account(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    poseidon: &PoseidonChip,
    acc: &Account,
    order_slot_depth: usize,
) -> AssignedAccount {
    crate::stats::measure(crate::stats::Component::AccountLeaf, ctx, |ctx| {
        let pubkey = [
            ctx.load_witness(acc.pubkey.x),
            ctx.load_witness(acc.pubkey.y),
        ];
        let nonce = ctx.load_witness(Fr::from(acc.nonce));
        let collateral = ctx.load_witness(Fr::from(acc.collateral));
        let positions = acc
            .positions
            .iter()
            .map(|p| assign_position(ctx, range, p))
            .collect();
        let orders_root = ctx.load_witness(acc.orders_root(order_slot_depth));
        account_from_cells(
            ctx,
            range,
            poseidon,
            AccountCells {
                pubkey,
                nonce,
                collateral,
                positions,
                orders_root,
            },
            order_slot_depth,
        )
    })
}

/// The leaf of an order slot, `H(order_id, filled)` (PROTOCOL.md §4.4, native `OrderSlot::leaf`).
///
/// This is the leaf of a slot that holds an order. A never-used slot is the empty leaf `0` (and
/// reads as `(order_id 0, filled 0)`), not `H(0, 0)`: the caller selects `0` for it.
///
/// # Panics
/// Unless `order_id` is at most 32 bits wide and `filled` at most 40 bits (their §2.3 bounds;
/// re-check a computed `filled` with [`Ranged::check`] first).
pub fn assign_order_slot_leaf(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    poseidon: &PoseidonChip,
    order_id: &Ranged,
    filled: &Ranged,
) -> AssignedValue<Fr> {
    crate::stats::measure(crate::stats::Component::AccountLeaf, ctx, |ctx| {
        assert!(
            order_id.bits() <= NONCE_BITS,
            "order id is {} bits wide, over {NONCE_BITS}",
            order_id.bits()
        );
        assert!(
            filled.bits() <= SIZE_BITS,
            "filled is {} bits wide, over {SIZE_BITS}",
            filled.bits()
        );
        poseidon.hash(ctx, gate, &[order_id.cell(), filled.cell()])
    })
}
