//! A dedicated Poseidon chip (the Pow5 design: width 3, x^5 S-box) computing exactly
//! `collar_protocol::poseidon::hash` (PROTOCOL.md §3.1), and its integration with halo2-base.
//!
//! The batch circuit hashes through it: [`crate::poseidon::PoseidonChip::new`] returns a chip
//! backed by the [`Pow5Hasher`] of the [`HashingCircuit`] being built (see
//! [`HashingCircuit::build`]), and [`crate::batch::keygen_circuit`] /
//! [`crate::batch::prover_circuit`] build the batch circuit that way.
//!
//! # Chip ([`Pow5Chip`], [`Pow5Config`], [`PoseidonInstructions`])
//!
//! Columns: 8 advice `s0, s1, s2, w0..w4` (equality on `w0`, `w1`), 6 fixed `f0..f5`, and one
//! selector per gate. Constants are the protocol's standard (non-optimised) round constants and
//! MDS matrix `M` ([`collar_protocol::poseidon::round_constants`], [`collar_protocol::poseidon::mds`]).
//! A row's `s` cells always hold the true Poseidon state before the row's rounds. One
//! permutation takes [`ROWS_PER_PERMUTATION`] = 27 rows, i.e. [`CELLS_PER_PERMUTATION`] = 216
//! advice cells:
//!
//! | row | gate | cells |
//! |---|---|---|
//! | 0 | [`GATE_ABSORB`] | `w0, w1` = the absorbed pair `x, y`; `w2..w4` = squares of `t = s + (0, x, y) + rc` |
//! | 1–3, 23–26 | [`GATE_FULL_ROUND`] | `w2..w4` = squares of `t = s + rc` |
//! | 4–22 | [`GATE_PARTIAL_ROUNDS`] | three partial rounds: `w0 = a, w1 = b, w2 = c, w3 = d, w4 = e` |
//! | 26 of a hash's last permutation | [`GATE_FINAL_ROUND`] | as a full round, `w0` = the hash output |
//!
//! Gates (every one has degree 4 including its selector `q`):
//! - full round: `q·(sq_i − t_i²)` (3) and `q·(s_i(next) − Σ_j M_ij·sq_j²·t_j)` (4);
//! - absorb: the full round with `t = s + (0, x, y) + rc`, plus the initial state: `f3·(s0 − f3)`,
//!   `f3·s1`, `f3·s2`, where `f3` is 0 except on a hash's first permutation, where it is the
//!   hash's capacity element (`2^64` for the sponge, `2·2^64` for a Merkle node), `f4·(x − 1)` and
//!   `f5·(y − 1 + f4)` (padding: `x = 1` on the padding-only permutation, `y = 1` after one
//!   input, `y = 0` after a padding `x`); the flags are fixed per row, so a padding cell is not
//!   a free witness (3);
//! - partial rounds: `u = s0 + f0`, `a = u²`, `b` = round two's S-box input (an affine form of
//!   `s1, s2, a²·u` plus `f1`, degree 3), `c = b²`, `d` = round three's S-box input (affine in
//!   `s1, s2, a²·u, c²·b` plus `f2`), `e = d²`, and the next row's state affine in
//!   `s1, s2, a²·u, c²·b, e²·d` plus `f3..f5`. The round constants of the three rounds are
//!   folded into `f0..f5`; the linear coefficients come from `M` alone;
//! - final round: the full round's squares and `q·(w0 − Σ_j M_1j·sq_j²·t_j)` (4); it constrains
//!   no next row, so the next hash can start right below.
//!
//! 57 partial rounds are exactly 19 rows of three, so no leftover partial round exists.
//!
//! # Deferred hashing ([`Pow5Hasher`], [`HashingCircuit`])
//!
//! [`Pow5Hasher::hash`] computes the hash natively, loads the output in the halo2-base
//! [`Context`](halo2_base::Context) (one advice cell) and records the call. [`HashingCircuit`]
//! (config: halo2-base's `BaseConfig` and [`Pow5Config`]) lays the recorded hashes out in the
//! chip region, padded to a fixed capacity with hashes of the empty input, so the region's shape
//! depends only on the capacity and the calls' input lengths, which keygen and proving share.
//! It then ties each chip input and output to its virtual cell through halo2-base's copy
//! manager ([`CopyConstraintManager::load_external_cell`] plus an advice equality), and the
//! builder's own copy pass enforces those equalities.
//!
//! [`CopyConstraintManager::load_external_cell`]: halo2_base::virtual_region::copy_constraints::CopyConstraintManager::load_external_cell

mod chip;
mod circuit;

pub use chip::{
    columns, hash_witness, kind_witness, node_hash_witness, row_kind, AssignedHash, HashKind,
    HashWitness, PoseidonInstructions, Pow5Chip, Pow5Config, RowKind, ADVICE_COLUMNS,
    CELLS_PER_PERMUTATION, FIXED_COLUMNS, GATE_ABSORB, GATE_FINAL_ROUND, GATE_FULL_ROUND,
    GATE_PARTIAL_ROUNDS, PARTIAL_ROUNDS_PER_ROW, PARTIAL_ROWS, ROWS_PER_PERMUTATION,
};
pub use circuit::{
    ChipMutation, HashCall, HashLayout, HashingCircuit, HashingCircuitParams, MsmCall, MsmCells,
    Pow5Hasher,
};
