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

use collar_protocol::poseidon::{self as native, RATE, R_F, R_P, T};
use halo2_base::gates::GateInstructions;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::poseidon::hasher::{spec::OptimizedPoseidonSpec, PoseidonHasher};
use halo2_base::{AssignedValue, Context, QuantumCell::Constant};
use serde::{Deserialize, Serialize};

use crate::pow5::{Pow5Hasher, CELLS_PER_PERMUTATION};

/// Which implementation constrains a circuit's Poseidon hashes, and with them its Schnorr
/// multiplications: the generic halo2-base path or the dedicated chips.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hashing {
    /// halo2-base's `PoseidonHasher` in the flex gate, and Schnorr on halo2-base's basic gate
    /// (the baseline).
    #[serde(rename = "halo2-base")]
    HaloBase,
    /// The dedicated Pow5 chip; Schnorr on halo2-base's basic gate (the production path: its EVM
    /// verifier fits EIP-170).
    #[default]
    Pow5,
    /// The dedicated Pow5 chip, and Schnorr's multiplication on the dedicated `msm` chip in the
    /// same columns: the fewest cells, but its EVM verifier is over EIP-170's size limit at the
    /// shape measured (docs/CIRCUIT.md), so it is not the default.
    #[serde(rename = "pow5-msm")]
    Pow5Msm,
}

impl Hashing {
    /// All three, baseline first.
    pub const ALL: [Hashing; 3] = [Hashing::HaloBase, Hashing::Pow5, Hashing::Pow5Msm];

    /// A short name (`halo2-base`, `pow5`, `pow5-msm`), as the CLI and reports spell it.
    pub fn name(self) -> &'static str {
        match self {
            Hashing::HaloBase => "halo2-base",
            Hashing::Pow5 => "pow5",
            Hashing::Pow5Msm => "pow5-msm",
        }
    }

    /// One-byte code in verifying-key files: 0 halo2-base, 1 Pow5, 2 Pow5 with the msm chip.
    pub fn code(self) -> u8 {
        match self {
            Hashing::HaloBase => 0,
            Hashing::Pow5 => 1,
            Hashing::Pow5Msm => 2,
        }
    }

    /// The hashing of code `c`, if any.
    pub fn from_code(c: u8) -> Option<Self> {
        Hashing::ALL.into_iter().find(|h| h.code() == c)
    }

    /// Whether the circuit hashes on the Pow5 chip (and so has the chip's columns).
    pub fn pow5(self) -> bool {
        self != Hashing::HaloBase
    }

    /// Whether Schnorr's multiplications run on the `msm` chip.
    pub fn msm(self) -> bool {
        self == Hashing::Pow5Msm
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
            .ok_or_else(|| format!("unknown hashing {s:?} (halo2-base, pow5 or pow5-msm)"))
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

    /// The deferred-chip recorder behind this chip where the circuit has the `msm` chip
    /// ([`Hashing::Pow5Msm`]; `None` otherwise): Schnorr's multiplications record there.
    pub fn msm_recorder(&self) -> Option<&Pow5Hasher> {
        match &self.backend {
            Backend::Pow5(h) if h.msm_enabled() => Some(h),
            _ => None,
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
                    let permutations = native::permutations_for(inputs.len());
                    crate::stats::charge_external((permutations * CELLS_PER_PERMUTATION) as u64);
                    h.hash(ctx, inputs)
                }
            }
        })
    }

    /// The Merkle node hash `H_node(left, right)`, equal to native
    /// `collar_protocol::poseidon::hash2` (one permutation of `[2·2^64, left, right]`, PROTOCOL
    /// §3.1); constrains the result (with Pow5, once the enclosing circuit is synthesized).
    ///
    /// halo2-base's hasher offers no single-permutation entry point, so on that path the
    /// permutation is laid out on halo2-base's gate by [`flex_permutation`].
    pub fn hash2(
        &self,
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        left: AssignedValue<Fr>,
        right: AssignedValue<Fr>,
    ) -> AssignedValue<Fr> {
        crate::stats::measure(crate::stats::Component::Hashing, ctx, |ctx| {
            match &self.backend {
                Backend::HaloBase(_) => {
                    let capacity = ctx.load_constant(native::node_capacity());
                    flex_permutation(ctx, gate, [capacity, left, right])[1]
                }
                Backend::Pow5(h) => {
                    crate::stats::charge_external(
                        (native::NODE_PERMUTATIONS * CELLS_PER_PERMUTATION) as u64,
                    );
                    h.hash2(ctx, left, right)
                }
            }
        })
    }
}

/// Constants of [`flex_permutation`], derived once from the protocol's optimised rounds: every
/// round constant moved onto the previous S-box's output, where `x·x^4 + c` costs no more cells
/// than `x·x^4`.
struct FlexConstants {
    /// Added to the state before the first S-box layer.
    first: [Fr; T],
    /// Added to the S-box outputs of each full round but the last (`M^-1 · next constants`).
    full: Vec<[Fr; T]>,
    /// Added to the S-box output of partial rounds `0..R_P-1`.
    partial: Vec<Fr>,
    /// The constant of each output of the last partial round's dense mixing.
    last: [Fr; T],
}

fn flex_constants() -> &'static FlexConstants {
    static C: std::sync::OnceLock<FlexConstants> = std::sync::OnceLock::new();
    C.get_or_init(|| {
        let f = native::fast_rounds();
        let m = native::mds();
        let half = R_F / 2;
        // M^-1 by the adjugate.
        let minor = |i: usize, j: usize| {
            let (r0, r1) = ((i + 1) % T, (i + 2) % T);
            let (c0, c1) = ((j + 1) % T, (j + 2) % T);
            m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]
        };
        let det: Fr = (0..T).map(|j| m[0][j] * minor(0, j)).sum();
        let det_inv = det.invert().expect("the MDS matrix is invertible");
        let inv: [[Fr; T]; T] =
            std::array::from_fn(|i| std::array::from_fn(|j| minor(j, i) * det_inv));
        let pull_back = |v: [Fr; T]| -> [Fr; T] {
            std::array::from_fn(|i| (0..T).map(|j| inv[i][j] * v[j]).sum())
        };
        // Full round `r` is followed by the constants of round `r + 1`, the first partial
        // round's constant on element 0 after the first half, nothing after the last round.
        let full = (0..R_F)
            .map(|r| {
                if r + 1 == half {
                    pull_back([f.partial[0], Fr::zero(), Fr::zero()])
                } else if r + 1 == R_F {
                    [Fr::zero(); T]
                } else {
                    pull_back(f.full[r + 1])
                }
            })
            .collect();
        // Partial rounds: `s1, s2` are held as cells plus known offsets `o1, o2`; the constant
        // `c` on the S-box output makes the next S-box input exact, and shifts the offsets.
        let (mut o1, mut o2) = (Fr::zero(), Fr::zero());
        let mut partial = Vec::with_capacity(R_P - 1);
        for (k, b) in f.sparse.iter().enumerate() {
            let b00_inv = b[0].invert().expect("sparse factors have b00 != 0");
            let c = (f.partial[k + 1] + b[1] * o1 + b[2] * o2) * b00_inv;
            o1 -= b[3] * c;
            o2 -= b[4] * c;
            partial.push(c);
        }
        let last = std::array::from_fn(|i| f.full[half][i] + f.last[i][1] * o1 + f.last[i][2] * o2);
        FlexConstants {
            first: f.full[0],
            full,
            partial,
            last,
        }
    })
}

/// The Poseidon permutation of `state` on halo2-base's gate, equal to native
/// `collar_protocol::poseidon::permute`: the optimised rounds of
/// [`collar_protocol::poseidon::fast_rounds`], each S-box as three multiplications, and every
/// round constant moved onto the previous S-box's output (`x·x^4 + c`, free), as halo2-base's
/// own hasher does: about 2,270 advice cells, within 1 % of what halo2-base's `PoseidonHasher` takes
/// a permutation (`tests/pow5_chip.rs` measures both).
///
/// Every output cell is constrained from the inputs; nothing is assumed of them.
pub fn flex_permutation(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    state: [AssignedValue<Fr>; T],
) -> [AssignedValue<Fr>; T] {
    let f = native::fast_rounds();
    let c = flex_constants();
    let mds = native::mds();
    let half = R_F / 2;
    // `x^5 + k`.
    let pow5 = |ctx: &mut Context<Fr>, x: AssignedValue<Fr>, k: Fr| {
        let x2 = gate.mul(ctx, x, x);
        let x4 = gate.mul(ctx, x2, x2);
        gate.mul_add(ctx, x, x4, Constant(k))
    };
    let mix = |ctx: &mut Context<Fr>, xs: [AssignedValue<Fr>; T], row: &[Fr; T]| {
        gate.inner_product(ctx, xs, row.iter().map(|m| Constant(*m)))
    };
    let full_round = |ctx: &mut Context<Fr>, u: [AssignedValue<Fr>; T], k: &[Fr; T]| {
        let x: [AssignedValue<Fr>; T] = std::array::from_fn(|i| pow5(ctx, u[i], k[i]));
        std::array::from_fn(|i| mix(ctx, x, &mds[i]))
    };
    // `u` is the input of the next S-box layer (its constants included); in the partial rounds
    // `u[1], u[2]` differ from the true state by offsets that `flex_constants` accounts for.
    let mut u: [AssignedValue<Fr>; T] =
        std::array::from_fn(|i| gate.add(ctx, state[i], Constant(c.first[i])));
    for k in &c.full[..half] {
        u = full_round(ctx, u, k);
    }
    for (k, b) in c.partial.iter().zip(f.sparse) {
        let x = pow5(ctx, u[0], *k);
        let s0 = mix(ctx, [x, u[1], u[2]], &[b[0], b[1], b[2]]);
        let s1 = gate.mul_add(ctx, x, Constant(b[3]), u[1]);
        let s2 = gate.mul_add(ctx, x, Constant(b[4]), u[2]);
        u = [s0, s1, s2];
    }
    let x = pow5(ctx, u[0], Fr::zero());
    let xs = [x, u[1], u[2]];
    u = std::array::from_fn(|i| {
        gate.inner_product(
            ctx,
            xs.into_iter()
                .map(halo2_base::QuantumCell::Existing)
                .chain([Constant(c.last[i])]),
            f.last[i]
                .iter()
                .map(|m| Constant(*m))
                .chain([Constant(Fr::one())]),
        )
    });
    for k in &c.full[half..] {
        u = full_round(ctx, u, k);
    }
    u
}
