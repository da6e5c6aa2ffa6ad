//! In-circuit Poseidon equal, bit for bit, to `collar_protocol::poseidon::hash` (PROTOCOL.md §3.1).

use collar_protocol::poseidon::{RATE, R_F, R_P, T};
use halo2_base::gates::GateInstructions;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::poseidon::hasher::{spec::OptimizedPoseidonSpec, PoseidonHasher};
use halo2_base::{AssignedValue, Context};

/// The Poseidon hash of Collar, in circuit: halo2-base's `PoseidonHasher` with the protocol's
/// parameters (width 3, rate 2, 8 full and 57 partial rounds, standard MDS).
#[derive(Clone, Debug)]
pub struct PoseidonChip {
    hasher: PoseidonHasher<Fr, T, RATE>,
}

impl PoseidonChip {
    /// Builds the chip and assigns its constants (the initial state and the empty-input hash)
    /// in `ctx`.
    pub fn new(ctx: &mut Context<Fr>, gate: &impl GateInstructions<Fr>) -> Self {
        crate::stats::measure(crate::stats::Component::Hashing, ctx, |ctx| {
            let spec = OptimizedPoseidonSpec::<Fr, T, RATE>::new::<R_F, R_P, 0>();
            let mut hasher = PoseidonHasher::new(spec);
            hasher.initialize_consts(ctx, gate);
            Self { hasher }
        })
    }

    /// `H(inputs)` for a fixed-length input; constrains the result.
    pub fn hash(
        &self,
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        inputs: &[AssignedValue<Fr>],
    ) -> AssignedValue<Fr> {
        crate::stats::measure(crate::stats::Component::Hashing, ctx, |ctx| {
            self.hasher.hash_fix_len_array(ctx, gate, inputs)
        })
    }
}
