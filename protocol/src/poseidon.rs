//! The one native Poseidon function of Collar (PROTOCOL.md §3.1).
//!
//! Width 3, rate 2, x^5 S-box, 8 full and 57 partial rounds over BN254 `Fr`. Round constants and
//! the MDS matrix come from `poseidon-primitives` (imported as `poseidon_rs`, exactly as
//! halo2-base builds its `OptimizedPoseidonSpec`). The sponge mode is the one halo2-base's
//! `PoseidonHasher::hash_fix_len_array` constrains: capacity initialised to `2^64`, inputs absorbed
//! two at a time into the rate, padding with a single `1` then zeros, and an extra padding-only
//! permutation when the input length is a multiple of the rate. The circuits crate pins the
//! equality on random inputs.

use std::sync::OnceLock;

use crate::field::Fr;
use ff::{Field, PrimeField};
use poseidon_rs::poseidon::primitives::Spec;

/// State width.
pub const T: usize = 3;
/// Sponge rate.
pub const RATE: usize = 2;
/// Number of full rounds.
pub const R_F: usize = 8;
/// Number of partial rounds.
pub const R_P: usize = 57;

/// The parameter set, as a `poseidon-primitives` spec (the reference for constants).
#[derive(Debug, Clone, Copy)]
pub struct CollarPoseidonSpec;

impl Spec<Fr, T, RATE> for CollarPoseidonSpec {
    fn full_rounds() -> usize {
        R_F
    }
    fn partial_rounds() -> usize {
        R_P
    }
    fn sbox(val: Fr) -> Fr {
        val.pow_vartime([5])
    }
    fn secure_mds() -> usize {
        0
    }
}

struct Constants {
    round_constants: Vec<[Fr; T]>,
    mds: [[Fr; T]; T],
    fast: Fast,
}

/// The same permutation rearranged for speed (the Poseidon paper's optimised partial rounds):
/// partial-round constants folded onto the S-box input, and the MDS matrix of every partial
/// round but the last factored as `A_i · B_i`, with `A_i = diag(1, Â_i)` pushed into the next
/// round (it commutes with an S-box and a constant on element 0 only) and `B_i` sparse.
struct Fast {
    /// Constants of the full rounds, the first second-half round absorbing the folded rest.
    full: Vec<[Fr; T]>,
    /// The constant added to element 0 before each partial round's S-box.
    partial: Vec<Fr>,
    /// Sparse factors `[[b00, b01, b02], [w1, 1, 0], [w2, 0, 1]]` of partial rounds `0..R_P-1`,
    /// stored as `(b00, b01, b02, w1, w2)`.
    sparse: Vec<[Fr; 5]>,
    /// The dense matrix of the last partial round (`mds · A_{R_P-2}`).
    last: [[Fr; T]; T],
}

fn mat_mul(a: &[[Fr; T]; T], b: &[[Fr; T]; T]) -> [[Fr; T]; T] {
    let mut out = [[Fr::ZERO; T]; T];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            *x = (0..T).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    out
}

fn mat_vec(m: &[[Fr; T]; T], v: &[Fr; T]) -> [Fr; T] {
    let mut out = [Fr::ZERO; T];
    for (o, row) in out.iter_mut().zip(m.iter()) {
        *o = row[0] * v[0] + row[1] * v[1] + row[2] * v[2];
    }
    out
}

impl Fast {
    fn new(rc: &[[Fr; T]], mds: &[[Fr; T]; T]) -> Self {
        let half = R_F / 2;
        // Constant folding: a partial round's constants on elements 1, 2 pass the S-box
        // unchanged, so they move through the MDS matrix into the next round's constants.
        let mut partial = Vec::with_capacity(R_P);
        let mut carry = [Fr::ZERO; T];
        for r in &rc[half..half + R_P] {
            let c = [r[0] + carry[0], r[1] + carry[1], r[2] + carry[2]];
            partial.push(c[0]);
            carry = mat_vec(mds, &[Fr::ZERO, c[1], c[2]]);
        }
        let mut full: Vec<[Fr; T]> = rc[..half]
            .iter()
            .chain(&rc[half + R_P..])
            .copied()
            .collect();
        for (x, c) in full[half].iter_mut().zip(carry) {
            *x += c;
        }
        // Matrix factoring: N = [[n00, v], [w, N^]] = diag(1, N^) · [[n00, v], [N^⁻¹ w, I]].
        let mut sparse = Vec::with_capacity(R_P - 1);
        let mut n = *mds;
        for _ in 0..R_P - 1 {
            let det = n[1][1] * n[2][2] - n[1][2] * n[2][1];
            let inv = Option::<Fr>::from(det.invert())
                .expect("the MDS matrix's lower-right minors are invertible");
            let w1 = inv * (n[2][2] * n[1][0] - n[1][2] * n[2][0]);
            let w2 = inv * (n[1][1] * n[2][0] - n[2][1] * n[1][0]);
            sparse.push([n[0][0], n[0][1], n[0][2], w1, w2]);
            let a = [
                [Fr::ONE, Fr::ZERO, Fr::ZERO],
                [Fr::ZERO, n[1][1], n[1][2]],
                [Fr::ZERO, n[2][1], n[2][2]],
            ];
            n = mat_mul(mds, &a);
        }
        Self {
            full,
            partial,
            sparse,
            last: n,
        }
    }
}

fn constants() -> &'static Constants {
    static C: OnceLock<Constants> = OnceLock::new();
    C.get_or_init(|| {
        let (round_constants, mds, _) = CollarPoseidonSpec::constants();
        let fast = Fast::new(&round_constants, &mds);
        Constants {
            round_constants,
            mds,
            fast,
        }
    })
}

#[inline(always)]
fn sbox(x: Fr) -> Fr {
    let x2 = x.square();
    x2.square() * x
}

#[inline(always)]
fn mix(state: &mut [Fr; T], mds: &[[Fr; T]; T]) {
    let s = *state;
    for (out, row) in state.iter_mut().zip(mds.iter()) {
        *out = row[0] * s[0] + row[1] * s[1] + row[2] * s[2];
    }
}

/// The round constants of [`permute_reference`], one `[Fr; T]` per round (`R_F + R_P` rounds,
/// full rounds first and last), as `poseidon-primitives` generates them for this spec: the standard
/// (non-optimised) constants, for circuits that lay the permutation out round by round.
pub fn round_constants() -> &'static [[Fr; T]] {
    &constants().round_constants
}

/// The MDS matrix of [`permute_reference`] (`state = mds · state` after each S-box layer), for
/// circuits.
pub fn mds() -> &'static [[Fr; T]; T] {
    &constants().mds
}

/// The optimised rounds [`permute`] runs, for circuits that lay the permutation out on a
/// general gate: per full round the constants added before its S-boxes (`R_F` entries, the
/// partial rounds' constants on elements 1 and 2 folded into the first of the second half), per
/// partial round the constant added to element 0 before its S-box (`R_P`), the sparse factors of
/// partial rounds `0..R_P-1` as `(b00, b01, b02, w1, w2)` (a round maps `x = sbox(s0 + c)` to
/// `(b00·x + b01·s1 + b02·s2, s1 + w1·x, s2 + w2·x)`), and the dense matrix that follows the last
/// partial round's S-box. Full rounds mix with [`mds`].
#[derive(Clone, Copy, Debug)]
pub struct FastRounds {
    /// Constants added before each full round's S-boxes.
    pub full: &'static [[Fr; T]],
    /// Constant added to element 0 before each partial round's S-box.
    pub partial: &'static [Fr],
    /// Sparse factors of partial rounds `0..R_P-1`.
    pub sparse: &'static [[Fr; 5]],
    /// The matrix of the last partial round.
    pub last: &'static [[Fr; T]; T],
}

/// The optimised rounds of [`permute`] (see [`FastRounds`]).
pub fn fast_rounds() -> FastRounds {
    let f = &constants().fast;
    FastRounds {
        full: &f.full,
        partial: &f.partial,
        sparse: &f.sparse,
        last: &f.last,
    }
}

/// The Poseidon permutation, round by round as specified: the reference that [`permute`] is
/// tested against (and the layout circuits follow).
pub fn permute_reference(state: &mut [Fr; T]) {
    let c = constants();
    let half = R_F / 2;
    for (round, rc) in c.round_constants.iter().enumerate() {
        for (s, k) in state.iter_mut().zip(rc.iter()) {
            *s += k;
        }
        if round < half || round >= half + R_P {
            for s in state.iter_mut() {
                *s = sbox(*s);
            }
        } else {
            state[0] = sbox(state[0]);
        }
        mix(state, &c.mds);
    }
}

/// The Poseidon permutation, in place (equal to [`permute_reference`]; partial rounds cost 8
/// multiplications instead of 12).
pub fn permute(state: &mut [Fr; T]) {
    let f = &constants().fast;
    let mds = &constants().mds;
    let half = R_F / 2;
    let full_round = |state: &mut [Fr; T], rc: &[Fr; T]| {
        for (s, k) in state.iter_mut().zip(rc.iter()) {
            *s = sbox(*s + k);
        }
        mix(state, mds);
    };
    for rc in &f.full[..half] {
        full_round(state, rc);
    }
    for (k, b) in f.partial.iter().zip(&f.sparse) {
        let x = sbox(state[0] + k);
        state[0] = b[0] * x + b[1] * state[1] + b[2] * state[2];
        state[1] += b[3] * x;
        state[2] += b[4] * x;
    }
    state[0] = sbox(state[0] + f.partial[R_P - 1]);
    mix(state, &f.last);
    for rc in &f.full[half..] {
        full_round(state, rc);
    }
}

/// The initial sponge state of [`hash`]: capacity `2^64`, rate zero.
pub fn initial_state() -> [Fr; T] {
    [Fr::from_u128(1u128 << 64), Fr::ZERO, Fr::ZERO]
}

/// Hashes a fixed-length list of field elements (any length, including 0).
pub fn hash(inputs: &[Fr]) -> Fr {
    let mut state = initial_state();
    for chunk in inputs.chunks(RATE) {
        for (i, x) in chunk.iter().enumerate() {
            state[1 + i] += x;
        }
        if chunk.len() < RATE {
            state[1 + chunk.len()] += Fr::ONE;
        }
        permute(&mut state);
    }
    if inputs.len().is_multiple_of(RATE) {
        state[1] += Fr::ONE;
        permute(&mut state);
    }
    state[1]
}

/// The capacity element of the Merkle node compression [`hash2`]: `2·2^64`, the constant-length
/// domain of the Poseidon paper (ePrint 2019/458 §4.2: length times `2^64`, one output) for two
/// inputs. It differs from the sponge's `2^64` ([`initial_state`]), so no node state is the
/// first state of a sponge hash.
pub fn node_capacity() -> Fr {
    Fr::from_u128(2u128 << 64)
}

/// The Merkle node hash `H_node(left, right)` (PROTOCOL.md §3.1): one permutation of
/// `[2·2^64, left, right]`, output element 1. Two inputs fill the rate exactly, and the input
/// length is fixed by the capacity element, so no padding permutation is needed; it costs half
/// of the two-permutation sponge [`hash`]`(&[left, right])`.
pub fn hash2(left: Fr, right: Fr) -> Fr {
    let mut state = [node_capacity(), left, right];
    permute(&mut state);
    state[1]
}

/// Permutations [`hash2`] runs.
pub const NODE_PERMUTATIONS: usize = 1;

/// Number of permutations [`hash`] runs for `len` inputs (a cost figure for researchers).
pub const fn permutations_for(len: usize) -> usize {
    len / RATE + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use poseidon_rs::poseidon::primitives::{ConstantLength, Hash};

    #[test]
    fn permutation_matches_poseidon_primitives() {
        let reference = Hash::<Fr, CollarPoseidonSpec, ConstantLength<2>, T, RATE>::init();
        for seed in 0u64..8 {
            let mut a = [Fr::from(seed), Fr::from(seed * 7 + 1), -Fr::from(seed + 3)];
            let mut b = a;
            permute(&mut a);
            reference.permute(&mut b);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn optimised_permutation_equals_the_reference_rounds() {
        // Random-looking states from a fixed LCG over u64 words, plus the edge states.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            Fr::from(seed) * Fr::from(seed.rotate_left(17)) + Fr::from(seed >> 3)
        };
        let mut states = vec![[Fr::ZERO; T], [-Fr::ONE; T], initial_state()];
        for _ in 0..200 {
            states.push([next(), next(), next()]);
        }
        for s in states {
            let (mut a, mut b) = (s, s);
            permute(&mut a);
            permute_reference(&mut b);
            assert_eq!(a, b, "state {s:?}");
        }
    }

    #[test]
    fn permutation_count_matches_sponge() {
        assert_eq!(permutations_for(0), 1);
        assert_eq!(permutations_for(1), 1);
        assert_eq!(permutations_for(2), 2);
        assert_eq!(permutations_for(6), 4);
    }

    #[test]
    fn node_hash_is_one_reference_permutation() {
        assert_eq!(node_capacity(), Fr::from(2) * initial_state()[0]);
        for seed in 0u64..16 {
            let (l, r) = (Fr::from(seed * 31 + 5), -Fr::from(seed * 17 + 2));
            let mut state = [Fr::from_u128(1u128 << 65), l, r];
            permute_reference(&mut state);
            assert_eq!(hash2(l, r), state[1]);
            assert_ne!(
                hash2(l, r),
                hash(&[l, r]),
                "the node hash is not the sponge"
            );
        }
    }

    #[test]
    fn hash_distinguishes_lengths_and_order() {
        let one = Fr::ONE;
        assert_ne!(hash(&[]), hash(&[Fr::ZERO]));
        assert_ne!(hash(&[Fr::ZERO]), hash(&[Fr::ZERO, Fr::ZERO]));
        assert_ne!(hash2(one, Fr::ZERO), hash2(Fr::ZERO, one));
    }
}
