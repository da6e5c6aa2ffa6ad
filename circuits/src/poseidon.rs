//! In-circuit Poseidon equal, bit for bit, to `collar_protocol::poseidon::hash` (PROTOCOL.md §3.1).
//!
//! Two implementations compute the same function:
//! - **halo2-base** ([`Hashing::HaloBase`]): halo2-base's `PoseidonHasher`, about 2,250 advice
//!   cells of the flex gate a permutation. The baseline, and what circuits built outside a
//!   [`HashingCircuit`](crate::pow5::HashingCircuit) get.
//! - **Pow5** ([`Hashing::Pow5`]): the dedicated chip of [`crate::pow5`], 216 advice cells a
//!   permutation plus one context cell a hash. [`PoseidonChip::new`] picks it inside
//!   [`HashingCircuit::build`](crate::pow5::HashingCircuit::build) of a Pow5 circuit.

use std::cell::RefCell;

use collar_protocol::poseidon::{RATE, R_F, R_P, T};
use halo2_base::gates::GateInstructions;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::poseidon::hasher::{spec::OptimizedPoseidonSpec, PoseidonHasher};
use halo2_base::{AssignedValue, Context};
use serde::{Deserialize, Serialize};

use crate::pow5::{Pow5Hasher, CELLS_PER_PERMUTATION};

/// Which implementation constrains a circuit's Poseidon hashes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hashing {
    /// halo2-base's `PoseidonHasher` in the flex gate (the baseline).
    #[serde(rename = "halo2-base")]
    HaloBase,
    /// The dedicated Pow5 chip (the production path).
    #[default]
    Pow5,
}

impl Hashing {
    /// Both, baseline first.
    pub const ALL: [Hashing; 2] = [Hashing::HaloBase, Hashing::Pow5];

    /// A short name (`halo2-base`, `pow5`), as the CLI and reports spell it.
    pub fn name(self) -> &'static str {
        match self {
            Hashing::HaloBase => "halo2-base",
            Hashing::Pow5 => "pow5",
        }
    }

    /// One-byte code in verifying-key files: 0 halo2-base, 1 Pow5.
    pub fn code(self) -> u8 {
        match self {
            Hashing::HaloBase => 0,
            Hashing::Pow5 => 1,
        }
    }

    /// The hashing of code `c`, if any.
    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(Hashing::HaloBase),
            1 => Some(Hashing::Pow5),
            _ => None,
        }
    }
}

impl std::fmt::Display for Hashing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Hashing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hashing::ALL
            .into_iter()
            .find(|h| h.name() == s)
            .ok_or_else(|| format!("unknown hashing {s:?} (halo2-base or pow5)"))
    }
}

thread_local! {
    static SCOPE: RefCell<Option<Pow5Hasher>> = const { RefCell::new(None) };
}

/// Runs `f` with `hasher` as this thread's Pow5 scope: every [`PoseidonChip::new`] inside
/// records its hashes there. Restores the previous scope afterwards, also on unwinding.
pub(crate) fn with_pow5<R>(hasher: &Pow5Hasher, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Pow5Hasher>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            SCOPE.with(|s| *s.borrow_mut() = previous);
        }
    }
    let previous = SCOPE.with(|s| s.borrow_mut().replace(hasher.clone()));
    let _restore = Restore(previous);
    f()
}

#[derive(Clone, Debug)]
enum Backend {
    HaloBase(Box<PoseidonHasher<Fr, T, RATE>>),
    Pow5(Pow5Hasher),
}

/// The Poseidon hash of Collar, in circuit (width 3, rate 2, 8 full and 57 partial rounds,
/// standard MDS), through the implementation of the enclosing circuit (module docs).
#[derive(Clone, Debug)]
pub struct PoseidonChip {
    backend: Backend,
}

impl PoseidonChip {
    /// The chip of the circuit being built on this thread: Pow5 inside the `build` of a Pow5
    /// [`HashingCircuit`](crate::pow5::HashingCircuit), halo2-base otherwise (then it assigns
    /// its constants, the initial state and the empty-input hash, in `ctx`).
    pub fn new(ctx: &mut Context<Fr>, gate: &impl GateInstructions<Fr>) -> Self {
        match SCOPE.with(|s| s.borrow().clone()) {
            Some(hasher) => Self {
                backend: Backend::Pow5(hasher),
            },
            None => Self::halo2_base(ctx, gate),
        }
    }

    /// halo2-base's hasher, whatever the enclosing circuit (for baselines and comparisons).
    pub fn halo2_base(ctx: &mut Context<Fr>, gate: &impl GateInstructions<Fr>) -> Self {
        crate::stats::measure(crate::stats::Component::Hashing, ctx, |ctx| {
            let spec = OptimizedPoseidonSpec::<Fr, T, RATE>::new::<R_F, R_P, 0>();
            let mut hasher = PoseidonHasher::new(spec);
            hasher.initialize_consts(ctx, gate);
            Self {
                backend: Backend::HaloBase(Box::new(hasher)),
            }
        })
    }

    /// `H(inputs)` for a fixed-length input; constrains the result (with Pow5, once the
    /// enclosing [`HashingCircuit`](crate::pow5::HashingCircuit) is synthesized).
    pub fn hash(
        &self,
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        inputs: &[AssignedValue<Fr>],
    ) -> AssignedValue<Fr> {
        crate::stats::measure(crate::stats::Component::Hashing, ctx, |ctx| {
            match &self.backend {
                Backend::HaloBase(h) => h.hash_fix_len_array(ctx, gate, inputs),
                Backend::Pow5(h) => {
                    let permutations = collar_protocol::poseidon::permutations_for(inputs.len());
                    crate::stats::charge_external((permutations * CELLS_PER_PERMUTATION) as u64);
                    h.hash(ctx, inputs)
                }
            }
        })
    }
}
