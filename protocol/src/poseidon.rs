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
}

fn constants() -> &'static Constants {
    static C: OnceLock<Constants> = OnceLock::new();
    C.get_or_init(|| {
        let (round_constants, mds, _) = CollarPoseidonSpec::constants();
        Constants {
            round_constants,
            mds,
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

/// The round constants of [`permute`], one `[Fr; T]` per round (`R_F + R_P` rounds, full rounds
/// first and last), as `poseidon-primitives` generates them for this spec: the standard
/// (non-optimised) constants, for circuits that lay the permutation out round by round.
pub fn round_constants() -> &'static [[Fr; T]] {
    &constants().round_constants
}

/// The MDS matrix of [`permute`] (`state = mds · state` after each S-box layer), for circuits.
pub fn mds() -> &'static [[Fr; T]; T] {
    &constants().mds
}

/// The Poseidon permutation, in place.
pub fn permute(state: &mut [Fr; T]) {
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

/// Hashes two elements: the Merkle node hash `H(left, right)` (two permutations).
pub fn hash2(left: Fr, right: Fr) -> Fr {
    hash(&[left, right])
}

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
    fn permutation_count_matches_sponge() {
        assert_eq!(permutations_for(0), 1);
        assert_eq!(permutations_for(1), 1);
        assert_eq!(permutations_for(2), 2);
        assert_eq!(permutations_for(6), 4);
    }

    #[test]
    fn hash_distinguishes_lengths_and_order() {
        let one = Fr::ONE;
        assert_ne!(hash(&[]), hash(&[Fr::ZERO]));
        assert_ne!(hash(&[Fr::ZERO]), hash(&[Fr::ZERO, Fr::ZERO]));
        assert_ne!(hash2(one, Fr::ZERO), hash2(Fr::ZERO, one));
    }
}
