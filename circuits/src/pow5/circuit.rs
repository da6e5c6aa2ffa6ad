//! Deferred hashing: [`Pow5Hasher`] records hashes made in halo2-base contexts, and
//! [`HashingCircuit`] lays them out in the Pow5 chip and ties them to the contexts' cells.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::circuit::{BaseCircuitParams, BaseConfig};
use halo2_base::gates::flex_gate::MultiPhaseThreadBreakPoints;
use halo2_base::halo2_proofs::circuit::{Layouter, SimpleFloorPlanner};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
use halo2_base::halo2_proofs::halo2curves::grumpkin::G1Affine;
use halo2_base::halo2_proofs::plonk::{Circuit, ConstraintSystem, Error};
use halo2_base::{AssignedValue, Context, ContextCell};
use serde::{Deserialize, Serialize};

use crate::msm::{self, MsmChip, MsmConfig, MsmInstructions, MsmWitness, SCALAR_BITS};
use crate::poseidon::{with_pow5, Hashing};

use super::chip::{
    hash_witness, kind_witness, HashKind, HashWitness, PoseidonInstructions, Pow5Chip, Pow5Config,
    RowKind, ADVICE_COLUMNS, ROWS_PER_PERMUTATION,
};

/// One hash recorded by [`Pow5Hasher::hash`] or [`Pow5Hasher::hash2`]: what it computes and
/// the virtual cells of its inputs and output.
#[derive(Clone, Debug)]
pub struct HashCall {
    /// The sponge or the Merkle node compression.
    pub kind: HashKind,
    /// The inputs, as given.
    pub inputs: Vec<AssignedValue<Fr>>,
    /// The output cell the hasher loaded.
    pub output: AssignedValue<Fr>,
}

impl HashCall {
    /// Permutations this hash takes in the chip.
    pub fn permutations(&self) -> usize {
        self.kind.permutations(self.inputs.len())
    }
}

/// One Schnorr multiplication recorded by [`Pow5Hasher::msm`]: its native witness and the
/// virtual cells tied to the chip's.
#[derive(Clone, Debug)]
pub struct MsmCall {
    /// The chip witness (computed when recorded).
    pub witness: MsmWitness,
    /// `T[1, 0] = A − PK` as `[x, y]`.
    pub table: [AssignedValue<Fr>; 2],
    /// The output accumulator `(x, y)`, loaded by the hasher.
    pub result: [AssignedValue<Fr>; 2],
    /// `e`'s high half (loaded by the hasher) and `e` itself (given).
    pub e: [AssignedValue<Fr>; 2],
    /// `s`'s high half and its integer mod `p`, both loaded by the hasher.
    pub s: [AssignedValue<Fr>; 2],
}

/// The context cells [`Pow5Hasher::msm`] returns.
#[derive(Clone, Copy, Debug)]
pub struct MsmCells {
    /// The output `(3·2^254 − 1)·A + s·G − e·PK`.
    pub result: [AssignedValue<Fr>; 2],
    /// `e`'s high half: the integer of its bits 128 to 253.
    pub e_high: AssignedValue<Fr>,
    /// `s`'s high half.
    pub s_high: AssignedValue<Fr>,
    /// `s`'s 254-bit integer, mod `p`.
    pub s: AssignedValue<Fr>,
}

/// A handle that hashes in a halo2-base [`Context`] and defers the constraints to the Pow5 chip
/// of a [`HashingCircuit`], and likewise defers Schnorr multiplications to its
/// [`MsmChip`](crate::msm::MsmChip). Clones share one record of calls.
///
/// Each hash costs one advice cell in the context (its output) plus `ROWS_PER_PERMUTATION`
/// chip rows per permutation of the circuit's capacity; each multiplication five context cells
/// plus [`msm::ROWS`] chip rows.
#[derive(Clone, Debug, Default)]
pub struct Pow5Hasher {
    calls: Arc<Mutex<Vec<HashCall>>>,
    msms: Arc<Mutex<Vec<MsmCall>>>,
    /// Whether its circuit has the multiplication chip ([`Hashing::Pow5Msm`]).
    msm: bool,
}

impl Pow5Hasher {
    /// A hasher with no calls recorded, for a circuit without the multiplication chip.
    pub fn new() -> Self {
        Self::default()
    }

    /// A hasher with no calls recorded, for a circuit with the multiplication chip.
    pub fn with_msm() -> Self {
        Self {
            msm: true,
            ..Self::default()
        }
    }

    /// Whether [`Pow5Hasher::msm`] may be called (its circuit has the multiplication chip).
    pub fn msm_enabled(&self) -> bool {
        self.msm
    }

    /// `collar_protocol::poseidon::hash(inputs)` (any length, including 0): computed natively,
    /// loaded as a witness in `ctx` and recorded with its inputs.
    ///
    /// Nothing constrains the returned cell until a [`HashingCircuit`] holding this hasher is
    /// synthesized: it then lays the hash out in the chip and copy-constrains the inputs and the
    /// output to the chip's cells.
    ///
    /// Preconditions: the inputs are cells of the circuit whose builder the hasher's
    /// [`HashingCircuit`] holds; calls happen in the same order at keygen and when proving (one
    /// thread, or a deterministic order), since call order is the chip layout.
    pub fn hash(&self, ctx: &mut Context<Fr>, inputs: &[AssignedValue<Fr>]) -> AssignedValue<Fr> {
        self.record(ctx, HashKind::Sponge, inputs.to_vec())
    }

    /// The Merkle node hash `collar_protocol::poseidon::hash2(left, right)` (one permutation),
    /// deferred as [`Pow5Hasher::hash`] is, under the same preconditions.
    pub fn hash2(
        &self,
        ctx: &mut Context<Fr>,
        left: AssignedValue<Fr>,
        right: AssignedValue<Fr>,
    ) -> AssignedValue<Fr> {
        self.record(ctx, HashKind::Node, vec![left, right])
    }

    /// Computes the hash of `kind` natively, loads it in `ctx` and records the call.
    fn record(
        &self,
        ctx: &mut Context<Fr>,
        kind: HashKind,
        inputs: Vec<AssignedValue<Fr>>,
    ) -> AssignedValue<Fr> {
        let values: Vec<Fr> = inputs.iter().map(|v| v.value.evaluate()).collect();
        let output = ctx.load_witness(kind.native(&values));
        self.lock().push(HashCall {
            kind,
            inputs,
            output,
        });
        output
    }

    /// The recorded calls, in call order.
    pub fn calls(&self) -> Vec<HashCall> {
        self.lock().clone()
    }

    /// `(3·2^254 − 1)·A + s·G − e·PK` ([`crate::msm`]), computed natively and deferred to the
    /// multiplication chip: loads the output and the scalars' halves in `ctx` and records the
    /// call. `table` are the cells of `A − PK`, `pk` the key's value, `e` the challenge's cell
    /// and `s_le` the response's little-endian bytes.
    ///
    /// Nothing constrains the returned cells until the [`HashingCircuit`] holding this hasher is
    /// synthesized: it then ties `table`, `e` and the returned cells to the chip's. A key or
    /// scalar the chip cannot take (the identity, a scalar of 255 or 256 bits, an exceptional
    /// step) gets a stand-in witness whose table differs from `table`, so the circuit fails
    /// rather than the prover.
    ///
    /// Preconditions: as [`Pow5Hasher::hash`]; [`Pow5Hasher::msm_enabled`]; the caller
    /// constrains `table` to the key and checks the returned halves canonical.
    pub fn msm(
        &self,
        ctx: &mut Context<Fr>,
        table: [AssignedValue<Fr>; 2],
        pk: &G1Affine,
        e: AssignedValue<Fr>,
        s_le: &[u8; 32],
    ) -> MsmCells {
        let e_bits = msm::scalar_bits(&e.value().to_repr()).expect("e < p < 2^254");
        let witness = msm::scalar_bits(s_le)
            .and_then(|s_bits| msm::msm_witness(pk, &e_bits, &s_bits))
            .unwrap_or_else(|_| stand_in_msm());
        let value = |(row, col): (usize, usize)| witness.advice[row][col];
        let mut load = |at: (usize, usize)| ctx.load_witness(value(at));
        let result = msm::cells::RESULT.map(&mut load);
        let e_high = load(msm::cells::E[0]);
        let s = msm::cells::S.map(&mut load);
        lock(&self.msms).push(MsmCall {
            witness,
            table,
            result,
            e: [e_high, e],
            s,
        });
        MsmCells {
            result,
            e_high,
            s_high: s[0],
            s: s[1],
        }
    }

    /// The recorded multiplications, in call order.
    pub fn msms(&self) -> Vec<MsmCall> {
        lock(&self.msms).clone()
    }

    /// Permutations the recorded calls take.
    pub fn permutations(&self) -> usize {
        self.lock().iter().map(HashCall::permutations).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<HashCall>> {
        lock(&self.calls)
    }
}

/// Shape of a [`HashingCircuit`]: halo2-base's parameters, the hashing and the chip's capacity.
#[derive(Clone, Debug, Default, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashingCircuitParams {
    /// halo2-base's circuit parameters (`k`, columns, lookup bits, instance columns).
    pub base: BaseCircuitParams,
    /// Which implementation hashes: with [`Hashing::HaloBase`] the circuit is exactly
    /// halo2-base's `BaseCircuitBuilder` (no chip columns) and the capacity is 0.
    pub hashing: Hashing,
    /// Permutations the chip region holds (`ROWS_PER_PERMUTATION` rows each, used or not).
    pub capacity: usize,
    /// Schnorr multiplications the chip region holds after the hashes ([`msm::ROWS`] rows each,
    /// used or not); 0 unless the hashing is [`Hashing::Pow5Msm`], whose circuit configures the
    /// multiplication chip whatever this capacity.
    #[serde(default)]
    pub msms: usize,
}

/// One witness cell of the chip region to overwrite after the honest witness is computed: for
/// negative tests of the chip's gates.
#[derive(Clone, Copy, Debug)]
pub struct ChipMutation {
    /// Row of the chip region (a hash's first row is in [`HashingCircuit::layout`]).
    pub row: usize,
    /// Advice column index, `0..8` (`s0, s1, s2, w0..w4`).
    pub column: usize,
    /// The value written instead.
    pub value: Fr,
}

/// Where a recorded hash lies in the chip region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashLayout {
    /// Its first row.
    pub first_row: usize,
    /// Its permutations (`ROWS_PER_PERMUTATION` rows each).
    pub permutations: usize,
}

/// A halo2-base circuit plus the Pow5 chip: the builder's columns and the chip's share the same
/// `2^k` rows. On synthesis it lays out every hash recorded by its [`Pow5Hasher`] in the chip
/// region, fills the rest of the capacity with hashes of the empty input, copy-constrains each
/// hash's chip inputs and output to the recorded virtual cells (through halo2-base's copy
/// manager, as external cells), then synthesizes the builder.
///
/// With [`Hashing::HaloBase`] it is halo2-base's `BaseCircuitBuilder` unchanged (same
/// constraint system, same keys), so both paths share one circuit type.
///
/// Works for MockProver, keygen and proving like [`BaseCircuitBuilder`]: build it from a builder
/// of the right stage, make the same calls (inside [`HashingCircuit::build`]), and give the
/// prover the keygen's [`HashingCircuitParams`] and break points.
#[derive(Debug)]
pub struct HashingCircuit {
    /// The halo2-base builder (contexts, instances, parameters).
    pub builder: BaseCircuitBuilder<Fr>,
    hashing: Hashing,
    hasher: Pow5Hasher,
    /// `None`: fitted to the recorded calls by [`HashingCircuit::calculate_params`].
    capacity: Option<usize>,
    /// Likewise for the recorded multiplications.
    msm_capacity: Option<usize>,
    mutations: Vec<ChipMutation>,
}

impl HashingCircuit {
    /// Wraps `builder` with a Pow5 chip region of `capacity` permutations.
    pub fn new(builder: BaseCircuitBuilder<Fr>, capacity: usize) -> Self {
        Self {
            builder,
            hashing: Hashing::Pow5,
            hasher: Pow5Hasher::new(),
            capacity: Some(capacity),
            msm_capacity: None,
            mutations: Vec::new(),
        }
    }

    /// Wraps `builder` for `hashing`; a Pow5 region is sized to the hashes recorded by the time
    /// of [`HashingCircuit::calculate_params`] (keygen and mock runs).
    pub fn with_hashing(builder: BaseCircuitBuilder<Fr>, hashing: Hashing) -> Self {
        Self {
            builder,
            hashing,
            hasher: if hashing.msm() {
                Pow5Hasher::with_msm()
            } else {
                Pow5Hasher::new()
            },
            capacity: (!hashing.pow5()).then_some(0),
            msm_capacity: (!hashing.msm()).then_some(0),
            mutations: Vec::new(),
        }
    }

    /// The proving-stage circuit for the keygen's `params` and `break_points`.
    pub fn prover(params: HashingCircuitParams, break_points: MultiPhaseThreadBreakPoints) -> Self {
        Self {
            capacity: Some(params.capacity),
            msm_capacity: Some(params.msms),
            ..Self::with_hashing(
                BaseCircuitBuilder::prover(params.base, break_points),
                params.hashing,
            )
        }
    }

    /// Runs `f` on the builder with this circuit's hashing in scope: every
    /// [`PoseidonChip::new`](crate::poseidon::PoseidonChip::new) inside hashes through this
    /// circuit's chip (Pow5, and with [`Hashing::Pow5Msm`] its Schnorr multiplications go to the
    /// msm chip) or through halo2-base.
    pub fn build<R>(&mut self, f: impl FnOnce(&mut BaseCircuitBuilder<Fr>) -> R) -> R {
        if self.hashing.pow5() {
            let hasher = self.hasher.clone();
            with_pow5(&hasher, || f(&mut self.builder))
        } else {
            f(&mut self.builder)
        }
    }

    /// Which implementation hashes.
    pub fn hashing(&self) -> Hashing {
        self.hashing
    }

    /// The hasher whose calls this circuit constrains (a shared handle).
    pub fn hasher(&self) -> Pow5Hasher {
        self.hasher.clone()
    }

    /// Permutations the chip region holds: the fixed capacity, or (fitted) those recorded so
    /// far.
    pub fn capacity(&self) -> usize {
        self.capacity.unwrap_or_else(|| self.hasher.permutations())
    }

    /// Multiplications the chip region holds: the fixed capacity, or (fitted) those recorded so
    /// far.
    pub fn msm_capacity(&self) -> usize {
        self.msm_capacity
            .unwrap_or_else(|| lock(&self.hasher.msms).len())
    }

    /// Rows of the chip region's hashes (`capacity · ROWS_PER_PERMUTATION`), its first rows.
    pub fn hash_rows(&self) -> usize {
        self.capacity() * ROWS_PER_PERMUTATION
    }

    /// Rows of the chip region's multiplications (`msm_capacity · msm::ROWS`), after the hashes.
    pub fn msm_rows(&self) -> usize {
        self.msm_capacity() * msm::ROWS
    }

    /// Rows of the chip region: the hashes', then the multiplications'.
    pub fn chip_rows(&self) -> usize {
        self.hash_rows() + self.msm_rows()
    }

    /// Advice columns the chips add: 8 with Pow5 hashing (configured whatever the capacity;
    /// the msm chip shares them), 0 with halo2-base's.
    pub fn chip_advice_columns(&self) -> usize {
        if self.hashing.pow5() {
            ADVICE_COLUMNS
        } else {
            0
        }
    }

    /// Advice cells of the chip region (`chip_rows · 8`), whether the capacity is used or not.
    pub fn chip_advice_cells(&self) -> usize {
        self.chip_rows() * ADVICE_COLUMNS
    }

    /// Where each recorded hash lies in the chip region, in call order.
    pub fn layout(&self) -> Vec<HashLayout> {
        let mut first_row = 0;
        self.hasher
            .calls()
            .iter()
            .map(|c| {
                let l = HashLayout {
                    first_row,
                    permutations: c.permutations(),
                };
                first_row += l.permutations * ROWS_PER_PERMUTATION;
                l
            })
            .collect()
    }

    /// The honest hash rows of the chip region, row by row: the advice values
    /// `[s0, s1, s2, w0..w4]` and the row's gate (for mutation sweeps; the multiplication rows
    /// that follow are [`Self::msm_region`]).
    pub fn chip_region(&self) -> Vec<([Fr; ADVICE_COLUMNS], RowKind)> {
        honest_witnesses(&self.hasher.calls(), self.capacity())
            .into_iter()
            .flat_map(|w| w.advice.into_iter().zip(w.kinds))
            .collect()
    }

    /// The honest multiplication rows of the chip region, which follow the hash rows of
    /// [`Self::chip_region`]: each row's advice values (for mutation sweeps; a multiplication's
    /// cells that some gate reads are [`msm::gated_cells`]). Empty unless the hashing is
    /// [`Hashing::Pow5Msm`].
    pub fn msm_region(&self) -> Vec<[Fr; ADVICE_COLUMNS]> {
        self.honest_msm_witnesses(&self.hasher.msms())
            .into_iter()
            .flat_map(|w| w.advice)
            .collect()
    }

    /// Overwrites one chip witness cell at synthesis, in the hash rows or the multiplication
    /// rows after them (negative tests only: an honest prover never does this). Precondition:
    /// `mutation.row < chip_rows()`.
    pub fn mutate_chip_cell(&mut self, mutation: ChipMutation) {
        self.mutations.push(mutation);
    }

    /// Calculates halo2-base's parameters (see [`BaseCircuitBuilder::calculate_params`]) and
    /// returns them with the hashing and the capacity (a fitted capacity is fixed from here on).
    ///
    /// # Panics
    /// If the recorded hashes need more than the capacity, or the chip region does not fit in
    /// the usable rows of `2^k`.
    pub fn calculate_params(&mut self, minimum_rows: Option<usize>) -> HashingCircuitParams {
        let base = self.builder.calculate_params(minimum_rows);
        self.set_base_params(base)
    }

    /// Sets halo2-base's parameters (a layout chosen elsewhere, as `collar stats` does) and
    /// returns the circuit's; a fitted capacity is fixed from here on.
    ///
    /// # Panics
    /// As [`HashingCircuit::calculate_params`].
    pub fn set_base_params(&mut self, base: BaseCircuitParams) -> HashingCircuitParams {
        self.builder.set_params(base.clone());
        self.capacity = Some(self.capacity());
        self.msm_capacity = Some(self.msm_capacity());
        let params = self.params();
        let used = self.hasher.permutations();
        assert!(
            used <= params.capacity,
            "{used} permutations recorded, capacity {}",
            params.capacity
        );
        let msms = lock(&self.hasher.msms).len();
        assert!(
            msms <= params.msms,
            "{msms} multiplications recorded, capacity {}",
            params.msms
        );
        let usable = Self::usable_rows(&params);
        assert!(
            self.chip_rows() <= usable,
            "the chip region ({} rows) does not fit in the {usable} usable rows of 2^{}",
            self.chip_rows(),
            params.base.k
        );
        params
    }

    /// Usable rows (`2^k` minus halo2's blinding rows) of a circuit with `params`.
    pub fn usable_rows(params: &HashingCircuitParams) -> usize {
        let mut cs = ConstraintSystem::<Fr>::default();
        let _ = Self::configure_with_params(&mut cs, params.clone());
        (1usize << params.base.k) - cs.minimum_rows()
    }

    /// The chip witness of every slot: the recorded hashes in order, then hashes of the empty
    /// input up to the capacity, with the test mutations of the hash rows applied.
    fn chip_witnesses(&self, calls: &[HashCall]) -> Vec<HashWitness> {
        let mut witnesses = honest_witnesses(calls, self.capacity());
        let hash_rows = self.hash_rows();
        for m in self.mutations.iter().filter(|m| m.row < hash_rows) {
            let mut offset = 0;
            let w = witnesses
                .iter_mut()
                .find(|w| {
                    offset += w.rows();
                    m.row < offset
                })
                .expect("mutation row inside the hash rows");
            let local = m.row + w.rows() - offset;
            w.advice[local][m.column] = m.value;
        }
        witnesses
    }

    /// The honest multiplication witness of every slot: the recorded ones in order, then
    /// stand-ins up to the capacity.
    fn honest_msm_witnesses(&self, msms: &[MsmCall]) -> Vec<MsmWitness> {
        let mut witnesses: Vec<MsmWitness> = msms.iter().map(|c| c.witness.clone()).collect();
        witnesses.resize(self.msm_capacity(), stand_in_msm());
        witnesses
    }

    /// The multiplication witness of every slot ([`Self::honest_msm_witnesses`]) with the test
    /// mutations of the multiplication rows applied.
    fn msm_witnesses(&self, msms: &[MsmCall]) -> Vec<MsmWitness> {
        let mut witnesses = self.honest_msm_witnesses(msms);
        let hash_rows = self.hash_rows();
        for m in self.mutations.iter().filter(|m| m.row >= hash_rows) {
            let row = m.row - hash_rows;
            witnesses[row / msm::ROWS].advice[row % msm::ROWS][m.column] = m.value;
        }
        witnesses
    }
}

impl Circuit<Fr> for HashingCircuit {
    type Config = (BaseConfig<Fr>, Option<Pow5Config>, Option<MsmConfig>);
    type FloorPlanner = SimpleFloorPlanner;
    type Params = HashingCircuitParams;

    fn params(&self) -> Self::Params {
        HashingCircuitParams {
            base: self.builder.config_params.clone(),
            hashing: self.hashing,
            capacity: self.capacity(),
            msms: self.msm_capacity(),
        }
    }

    /// Not supported, as for [`BaseCircuitBuilder`].
    fn without_witnesses(&self) -> Self {
        unimplemented!("build the circuit for the keygen stage instead")
    }

    fn configure_with_params(
        meta: &mut ConstraintSystem<Fr>,
        params: Self::Params,
    ) -> Self::Config {
        let mut base = BaseConfig::configure(meta, params.base.clone());
        if !params.hashing.pow5() {
            return (base, None, None);
        }
        let pow5 = Pow5Chip::configure_new_columns(meta);
        // The multiplication chip shares the Pow5 chip's columns, on the rows after the hashes.
        let msm = params
            .hashing
            .msm()
            .then(|| MsmChip::configure(meta, pow5.advice));
        // The multiplication chip queries four rotations per column, which can raise halo2's
        // blinding rows: refresh the usable rows halo2-base computed.
        base.set_usable_rows((1usize << params.base.k) - meta.minimum_rows());
        (base, Some(pow5), msm)
    }

    fn configure(_: &mut ConstraintSystem<Fr>) -> Self::Config {
        unreachable!("HashingCircuit is configured with parameters")
    }

    /// Lays out the chip region, links its cells to the recorded virtual cells and synthesizes
    /// the builder.
    ///
    /// # Errors
    /// `Error::Synthesis` if the recorded hashes need more than the capacity;
    /// `Error::NotEnoughRowsAvailable` if the chip region does not fit in the usable rows.
    fn synthesize(
        &self,
        (base_config, pow5_config, msm_config): Self::Config,
        mut layouter: impl Layouter<Fr>,
    ) -> Result<(), Error> {
        let Some(pow5_config) = pow5_config else {
            return self.builder.synthesize(base_config, layouter);
        };
        let calls = self.hasher.calls();
        let used: usize = calls.iter().map(HashCall::permutations).sum();
        let msms = self.hasher.msms();
        if used > self.capacity() || msms.len() > self.msm_capacity() {
            return Err(Error::Synthesis);
        }
        if self.chip_rows() > base_config.gate().max_rows {
            return Err(Error::NotEnoughRowsAvailable {
                current_k: self.builder.config_params.k as u32,
            });
        }
        let chip = Pow5Chip::construct(pow5_config);
        let witnesses = self.chip_witnesses(&calls);
        let assigned = layouter.assign_region(
            || "poseidon pow5",
            |mut region| {
                let mut offset = 0;
                Ok(witnesses
                    .iter()
                    .map(|w| {
                        let cells = chip.assign(&mut region, offset, w);
                        offset += w.rows();
                        cells
                    })
                    .collect::<Vec<_>>())
            },
        )?;
        let msm_assigned = match &msm_config {
            Some(config) => {
                let chip = MsmChip::construct(config.clone());
                let witnesses = self.msm_witnesses(&msms);
                // halo2-axiom's floor planner starts every region at row 0: place the
                // multiplications below the hashes explicitly.
                let first = self.hash_rows();
                layouter.assign_region(
                    || "grumpkin msm",
                    |mut region| {
                        Ok(witnesses
                            .iter()
                            .enumerate()
                            .map(|(i, w)| chip.assign(&mut region, first + i * msm::ROWS, w))
                            .collect::<Vec<_>>())
                    },
                )?
            }
            None if msms.is_empty() => Vec::new(),
            None => return Err(Error::Synthesis),
        };

        // Tie the chip's inputs and outputs to the virtual cells: each chip cell becomes an
        // external cell of the copy manager, and the builder's copy pass below constrains it
        // equal to the virtual cell (whose physical cell it will know by then).
        let mut links: HashSet<ContextCell> = HashSet::new();
        if !self.builder.witness_gen_only() {
            let mut manager = lock(&self.builder.core().copy_manager);
            for (call, cells) in calls.iter().zip(&assigned) {
                let pairs = call
                    .inputs
                    .iter()
                    .zip(&cells.inputs)
                    .chain(std::iter::once((&call.output, &cells.output)));
                for (virtual_cell, chip_cell) in pairs {
                    links.insert(link(&mut manager, virtual_cell, *chip_cell));
                }
            }
            for (call, cells) in msms.iter().zip(&msm_assigned) {
                let pairs = call
                    .table
                    .iter()
                    .zip(&cells.table)
                    .chain(call.result.iter().zip(&cells.result))
                    .chain(call.e.iter().zip(&cells.e))
                    .chain(call.s.iter().zip(&cells.s));
                for (virtual_cell, chip_cell) in pairs {
                    links.insert(link(&mut manager, virtual_cell, *chip_cell));
                }
            }
        }
        let result = self
            .builder
            .synthesize(base_config, layouter.namespace(|| "halo2-base"));
        // keygen_vk and keygen_pk synthesize the same circuit twice: leave the copy manager as
        // we found it, so the second pass adds the same links once.
        if !links.is_empty() {
            let mut manager = lock(&self.builder.core().copy_manager);
            manager
                .advice_equalities
                .retain(|(a, b)| !links.contains(a) && !links.contains(b));
        }
        result
    }
}

/// The honest chip witness: `calls` in order, then hashes of the empty input up to `capacity`
/// permutations.
fn honest_witnesses(calls: &[HashCall], capacity: usize) -> Vec<HashWitness> {
    let used: usize = calls.iter().map(HashCall::permutations).sum();
    let mut witnesses: Vec<HashWitness> = calls
        .iter()
        .map(|c| {
            let inputs: Vec<Fr> = c.inputs.iter().map(|v| v.value.evaluate()).collect();
            kind_witness(c.kind, &inputs)
        })
        .collect();
    witnesses.extend(std::iter::repeat_n(
        hash_witness(&[]),
        capacity.saturating_sub(used),
    ));
    witnesses
}

/// Makes `chip_cell` an external cell of the copy manager and records its equality with
/// `virtual_cell`; returns the external cell.
fn link(
    manager: &mut halo2_base::virtual_region::copy_constraints::CopyConstraintManager<Fr>,
    virtual_cell: &AssignedValue<Fr>,
    chip_cell: halo2_base::halo2_proofs::circuit::Cell,
) -> ContextCell {
    let virtual_cell = virtual_cell
        .cell
        .expect("virtual cells carry their location outside witness generation");
    let external = manager.load_external_cell(chip_cell);
    manager.advice_equalities.push((virtual_cell, external));
    external
}

/// The witness laid out where a multiplication cannot be proven, and in unused capacity: the
/// key `G` with zero scalars. Its table is `A − G`, so it satisfies a call only whose table is.
fn stand_in_msm() -> MsmWitness {
    let zero = [false; SCALAR_BITS];
    msm::msm_witness(&G1Affine::generator(), &zero, &zero)
        .expect("the stand-in meets no exceptional step")
}

/// Locks `m`, recovering its data if a panic elsewhere poisoned it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
