//! Measurement layer of the batch circuit (the backend of `collar stats` and of the batch bench):
//! circuit shape, cell counts per component and per transaction type, and real keygen, proving
//! and verification figures on a **development SRS**.
//!
//! # Component metering
//!
//! Chips wrap their bodies in [`measure`] with a [`Component`]. While a meter is active on the
//! current thread (inside [`metered`]), every advice cell pushed to the context and every cell
//! queued for the range lookup inside `f` is attributed to that component **exclusively**: cells
//! added by a nested `measure` call belong to the inner component and are subtracted from the
//! enclosing one. [`metered`] itself opens an outer [`Component::Other`] scope, so the components
//! always sum to the total. With no active meter, `measure` is one thread-local read.
//!
//! Transaction types are a second, independent dimension: [`measure_tx_type`] records the cells
//! added inside it **inclusively** (hashing, Merkle and range checks included) under a name, and
//! leaves the component attribution untouched. The batch circuit wraps each type's gadget in it,
//! for instance `stats::measure_tx_type("trade", ctx, |ctx| trade_gadget(ctx, ...))`; a slot's
//! shared work (its three account ports) can be wrapped as `"ports"`.
//!
//! Preconditions of both: `f` assigns only in the `ctx` it is given (one thread, one context),
//! as every chip of this crate does.

use std::cell::RefCell;
use std::fmt;
use std::time::Instant;

use collar_protocol::batch;
use collar_protocol::testkit::Harness;
use collar_protocol::{OptionKind, ProtocolParams, Tx, FEE_ACCOUNT};
use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::circuit::{BaseCircuitParams, CircuitBuilderStage};
use halo2_base::gates::flex_gate::MultiPhaseThreadBreakPoints;
use halo2_base::gates::RangeChip;
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_base::halo2_proofs::plonk::{
    create_proof, keygen_pk, keygen_vk, verify_proof, ProvingKey,
};
use halo2_base::halo2_proofs::poly::commitment::ParamsProver;
use halo2_base::halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_base::halo2_proofs::poly::kzg::multiopen::{ProverSHPLONK, VerifierSHPLONK};
use halo2_base::halo2_proofs::poly::kzg::strategy::SingleStrategy;
use halo2_base::halo2_proofs::transcript::{
    Blake2bRead, Blake2bWrite, Challenge255, TranscriptReadBuffer, TranscriptWriterBuffer,
};
use halo2_base::virtual_region::lookups::LookupAnyManager;
use halo2_base::Context;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::batch::{build_batch, prover_circuit, table_size, BatchCircuitError, BatchWitness};
use crate::poseidon::Hashing;
use crate::pow5::{HashingCircuit, HashingCircuitParams};

/// A part of the circuit that cells are attributed to (exclusively; see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Component {
    /// Poseidon permutations (`PoseidonChip`), wherever they are called from.
    Hashing,
    /// Merkle paths outside hashing: index bits, left/right selects, sibling witnesses.
    Merkle,
    /// Account leaf encoding outside hashing and range checks: position words, emptiness and
    /// existence constraints.
    AccountLeaf,
    /// Range checks and comparisons of `Ranged`/`Signed` (lookups and their decompositions).
    RangeChecks,
    /// Margin arithmetic outside range checks: series-term selection, add-ons, sums.
    Margin,
    /// Schnorr signature checks outside hashing: point arithmetic, scalar bits, canonicity.
    Signatures,
    /// Everything not attributed to another component (the rest of the gadgets).
    Other,
}

impl Component {
    /// Every component, in report order.
    pub const ALL: [Component; 7] = [
        Component::Hashing,
        Component::Merkle,
        Component::AccountLeaf,
        Component::RangeChecks,
        Component::Margin,
        Component::Signatures,
        Component::Other,
    ];

    /// A short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Component::Hashing => "hashing",
            Component::Merkle => "merkle",
            Component::AccountLeaf => "account-leaf",
            Component::RangeChecks => "range-checks",
            Component::Margin => "margin",
            Component::Signatures => "signatures",
            Component::Other => "other",
        }
    }

    fn index(self) -> usize {
        match self {
            Component::Hashing => 0,
            Component::Merkle => 1,
            Component::AccountLeaf => 2,
            Component::RangeChecks => 3,
            Component::Margin => 4,
            Component::Signatures => 5,
            Component::Other => 6,
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A count of advice cells and of cells queued for the range lookup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cells {
    /// Advice cells of the flex gate (the context's advice column).
    pub advice: u64,
    /// Cells copied into the lookup-enabled advice columns for the range lookup.
    pub lookup: u64,
}

impl Cells {
    fn minus(self, o: Cells) -> Cells {
        Cells {
            advice: self.advice - o.advice,
            lookup: self.lookup - o.lookup,
        }
    }

    fn plus(self, o: Cells) -> Cells {
        Cells {
            advice: self.advice + o.advice,
            lookup: self.lookup + o.lookup,
        }
    }
}

/// Per-component and per-transaction-type counts gathered by [`metered`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Breakdown {
    /// Everything added inside [`metered`].
    pub total: Cells,
    /// Exclusive counts, in [`Component::ALL`] order; they sum to `total`.
    pub components: Vec<(Component, Cells)>,
    /// Inclusive counts per transaction-type scope, in first-seen order, with the number of
    /// scopes (slots) that contributed.
    pub tx_types: Vec<TxTypeCells>,
    /// Main-context advice offsets assigned inside [`Component::Hashing`] scopes (hash
    /// internals and outputs; inputs are assigned before), in order. Not serialised.
    #[serde(skip)]
    pub hash_spans: Vec<std::ops::Range<usize>>,
}

/// The inclusive cells of one transaction type's gadget, summed over every slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxTypeCells {
    /// The name given to [`measure_tx_type`].
    pub name: String,
    /// How many scopes were measured (one per slot for a type gadget).
    pub scopes: u64,
    /// Cells added inside the scopes.
    pub cells: Cells,
}

struct Frame {
    component: Component,
    start: Cells,
    /// Main-context advice offset at the start (hash spans are context offsets).
    ctx_start: usize,
    children: Cells,
}

struct Meter {
    lookups: LookupAnyManager<Fr, 1>,
    stack: Vec<Frame>,
    components: [Cells; Component::ALL.len()],
    tx_types: Vec<TxTypeCells>,
    hash_spans: Vec<std::ops::Range<usize>>,
    /// Advice cells charged outside the context (the Pow5 and msm chips' region).
    external: u64,
}

impl Meter {
    fn now(&self, ctx: &Context<Fr>) -> Cells {
        let lookup = self
            .lookups
            .cells_to_lookup
            .lock()
            .map(|m| m.values().map(Vec::len).sum::<usize>())
            .unwrap_or(0);
        Cells {
            advice: ctx.advice.len() as u64 + self.external,
            lookup: lookup as u64,
        }
    }
}

/// Charges `cells` advice cells laid out outside the context (the chips' rows) to the
/// current scope of this thread's meter, if one is active. Adds no constraint.
pub(crate) fn charge_external(cells: u64) {
    METER.with(|m| {
        if let Some(meter) = m.borrow_mut().as_mut() {
            meter.external += cells;
        }
    });
}

thread_local! {
    static METER: RefCell<Option<Meter>> = const { RefCell::new(None) };
}

/// Runs `f(ctx)`, attributing the cells it adds (less those of nested scopes) to `component`
/// when a meter is active on this thread; otherwise just runs `f`. Adds no constraint.
///
/// Precondition: `f` assigns only in `ctx`.
pub fn measure<R>(
    component: Component,
    ctx: &mut Context<Fr>,
    f: impl FnOnce(&mut Context<Fr>) -> R,
) -> R {
    let active = METER.with(|m| match m.borrow_mut().as_mut() {
        Some(meter) => {
            let start = meter.now(ctx);
            meter.stack.push(Frame {
                component,
                start,
                ctx_start: ctx.advice.len(),
                children: Cells::default(),
            });
            true
        }
        None => false,
    });
    if !active {
        return f(ctx);
    }
    let out = f(ctx);
    METER.with(|m| {
        if let Some(meter) = m.borrow_mut().as_mut() {
            let end = meter.now(ctx);
            if let Some(frame) = meter.stack.pop() {
                let inclusive = end.minus(frame.start);
                let exclusive = inclusive.minus(frame.children);
                let slot = &mut meter.components[frame.component.index()];
                *slot = slot.plus(exclusive);
                if frame.component == Component::Hashing {
                    meter.hash_spans.push(frame.ctx_start..ctx.advice.len());
                }
                if let Some(parent) = meter.stack.last_mut() {
                    parent.children = parent.children.plus(inclusive);
                }
            }
        }
    });
    out
}

/// Runs `f(ctx)` and, when a meter is active, adds the cells it adds (inclusively, nested
/// components included) to transaction type `name`. Does not affect component attribution and
/// adds no constraint.
///
/// Precondition: `f` assigns only in `ctx`.
pub fn measure_tx_type<R>(
    name: &'static str,
    ctx: &mut Context<Fr>,
    f: impl FnOnce(&mut Context<Fr>) -> R,
) -> R {
    let start = METER.with(|m| m.borrow().as_ref().map(|meter| meter.now(ctx)));
    let Some(start) = start else {
        return f(ctx);
    };
    let out = f(ctx);
    METER.with(|m| {
        if let Some(meter) = m.borrow_mut().as_mut() {
            let cells = meter.now(ctx).minus(start);
            match meter.tx_types.iter_mut().find(|t| t.name == name) {
                Some(t) => {
                    t.scopes += 1;
                    t.cells = t.cells.plus(cells);
                }
                None => meter.tx_types.push(TxTypeCells {
                    name: name.to_string(),
                    scopes: 1,
                    cells,
                }),
            }
        }
    });
    out
}

/// Removes the thread's meter when dropped, also on unwinding.
struct MeterGuard;

impl Drop for MeterGuard {
    fn drop(&mut self) {
        METER.with(|m| m.borrow_mut().take());
    }
}

/// Runs `f(ctx)` with a meter active on this thread and returns its result with the breakdown
/// of the cells it added. Lookup cells are read from `range`'s phase-0 lookup manager, so `range`
/// must be the chip `f` range-checks with (the builder's `range_chip()`).
///
/// # Errors
/// [`StatsError::MeterBusy`] if a meter is already active on this thread (no nesting).
pub fn metered<R>(
    range: &RangeChip<Fr>,
    ctx: &mut Context<Fr>,
    f: impl FnOnce(&mut Context<Fr>) -> R,
) -> Result<(R, Breakdown), StatsError> {
    let busy = METER.with(|m| m.borrow().is_some());
    if busy {
        return Err(StatsError::MeterBusy);
    }
    METER.with(|m| {
        *m.borrow_mut() = Some(Meter {
            lookups: range.lookup_manager()[0].clone(),
            stack: Vec::new(),
            components: [Cells::default(); Component::ALL.len()],
            tx_types: Vec::new(),
            hash_spans: Vec::new(),
            external: 0,
        })
    });
    let guard = MeterGuard;
    let start = METER.with(|m| m.borrow().as_ref().map(|meter| meter.now(ctx)));
    let out = measure(Component::Other, ctx, f);
    let meter = METER.with(|m| m.borrow_mut().take());
    drop(guard);
    let (Some(meter), Some(start)) = (meter, start) else {
        return Err(StatsError::MeterBusy);
    };
    let total = meter.now(ctx).minus(start);
    let breakdown = Breakdown {
        total,
        components: Component::ALL
            .iter()
            .map(|c| (*c, meter.components[c.index()]))
            .collect(),
        tx_types: meter.tx_types,
        hash_spans: meter.hash_spans,
    };
    Ok((out, breakdown))
}

/// Why statistics could not be gathered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// The requested shape gives invalid protocol parameters.
    #[error("invalid shape: {0}")]
    Shape(String),
    /// The representative batch could not be built natively.
    #[error("building the representative batch failed: {0}")]
    Batch(String),
    /// The batch witness was refused by the circuit.
    #[error(transparent)]
    Circuit(#[from] BatchCircuitError),
    /// No `k <= MAX_K` fits the circuit within the advice-column budget.
    #[error("the circuit needs {advice_cells} advice cells: no k <= {max_k} fits in {max_advice} advice columns")]
    TooLarge {
        /// Advice cells of the circuit.
        advice_cells: u64,
        /// The column budget.
        max_advice: usize,
        /// The largest k tried.
        max_k: u32,
    },
    /// A requested k is too small for the lookup table or the column budget.
    #[error("k = {k} does not fit: {reason}")]
    BadK {
        /// The requested k.
        k: u32,
        /// Why.
        reason: String,
    },
    /// Key generation, proving or verification failed in halo2.
    #[error("halo2 {stage} failed: {message}")]
    Halo2 {
        /// keygen, prove or verify.
        stage: &'static str,
        /// halo2's error.
        message: String,
    },
    /// A meter is already active on this thread.
    #[error("a cell meter is already active on this thread")]
    MeterBusy,
}

/// Which transactions fill the representative batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SlotFill {
    /// Slot `i` holds a trade if `i % 3 == 0`, a deposit if `1`, a withdrawal if `2`.
    #[default]
    Mixed,
    /// Every slot holds a trade.
    Trades,
    /// The first slot holds a trade, the rest are padding.
    OneTrade,
    /// Every slot holds a trade of one market maker (account 2, buying in even slots and
    /// selling in odd ones) against a taker of its own (account `3 + i`): `capacity + 2`
    /// accounts with the fee account.
    MarketMaker,
}

/// The shape to measure. Build with [`StatsShape::small`] or [`StatsShape::production`] and
/// override fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsShape {
    /// Batch capacity (slots), at least 1.
    pub capacity: usize,
    /// Accounts tree depth (`ProtocolParams::account_depth`, 2..=32).
    pub account_depth: usize,
    /// Position slots per account (1..=64).
    pub max_positions: usize,
    /// Order-slot subtree depth; `None` keeps the base parameters' value.
    pub order_slot_depth: Option<usize>,
    /// Series registry capacity; `None` keeps the base parameters' value.
    pub max_series: Option<usize>,
    /// Start from `ProtocolParams::small()` (true) or `ProtocolParams::default()` (false) for
    /// the fields not overridden.
    pub small_base: bool,
    /// Transactions of the representative batch.
    pub fill: SlotFill,
    /// Fixed `k`; `None` picks the smallest `k >= MIN_K` with at most `max_advice` columns.
    pub k: Option<u32>,
    /// Range-lookup table bits (default 16, as the circuit's tests use); must be `< k`.
    pub lookup_bits: usize,
    /// Advice-column budget for the automatic `k`.
    pub max_advice: usize,
    /// Run keygen, prove and verify (slow at production depth).
    pub prove: bool,
    /// Which Poseidon implementation the circuit hashes with.
    #[serde(default)]
    pub hashing: Hashing,
    /// Entries of the account table; `None` is `default_table_size(capacity)`, which every
    /// batch fits.
    #[serde(default)]
    pub accounts: Option<usize>,
}

/// Smallest `k` the automatic choice considers.
pub const MIN_K: u32 = 17;
/// Largest `k` the automatic choice considers.
pub const MAX_K: u32 = 26;
/// Rows halo2-base reserves for blinding (`calculate_params(Some(9))`).
pub const BLINDING_ROWS: usize = 9;
/// Seed of the development SRS. INSECURE: its toxic waste is derivable from this seed.
pub const DEV_SRS_SEED: u64 = 42;
/// Batch number of the representative batch.
const BATCH_NUMBER: u64 = 1;

impl StatsShape {
    /// Capacity-`capacity` batch on `ProtocolParams::small()` (depth 8, 4 positions).
    pub fn small(capacity: usize) -> Self {
        let p = ProtocolParams::small();
        Self {
            capacity,
            account_depth: p.account_depth,
            max_positions: p.max_positions,
            order_slot_depth: None,
            max_series: None,
            small_base: true,
            fill: SlotFill::Mixed,
            k: None,
            lookup_bits: 16,
            max_advice: 24,
            prove: false,
            hashing: Hashing::Pow5,
            accounts: None,
        }
    }

    /// Entries of the account table this shape builds.
    pub fn table_size(&self) -> usize {
        table_size(self.capacity, self.accounts)
    }

    /// Capacity-`capacity` batch on the production `ProtocolParams::default()` (depth 24,
    /// 16 positions, order depth 6, 64 series).
    pub fn production(capacity: usize) -> Self {
        let p = ProtocolParams::default();
        Self {
            account_depth: p.account_depth,
            max_positions: p.max_positions,
            small_base: false,
            ..Self::small(capacity)
        }
    }

    /// The protocol parameters of this shape, validated.
    ///
    /// # Errors
    /// [`StatsError::Shape`] if the capacity is 0 or the parameters are invalid.
    pub fn params(&self) -> Result<ProtocolParams, StatsError> {
        if self.capacity == 0 {
            return Err(StatsError::Shape("capacity must be at least 1".into()));
        }
        let mut p = if self.small_base {
            ProtocolParams::small()
        } else {
            ProtocolParams::default()
        };
        p.account_depth = self.account_depth;
        p.max_positions = self.max_positions;
        if let Some(d) = self.order_slot_depth {
            p.order_slot_depth = d;
        }
        if let Some(s) = self.max_series {
            p.max_series = s;
        }
        p.validate().map_err(|e| StatsError::Shape(e.to_string()))?;
        if self.table_size() == 0 {
            return Err(StatsError::Shape(
                "the account table needs at least 1 entry".into(),
            ));
        }
        // Two distinct accounts per slot, after the fee account and the insurance fund.
        let needed = (2 + 2 * self.capacity as u128).max(self.table_size() as u128);
        if needed > 1u128 << p.account_depth {
            return Err(StatsError::Shape(format!(
                "capacity {} needs {needed} accounts; depth {} holds {}",
                self.capacity,
                p.account_depth,
                1u128 << p.account_depth
            )));
        }
        Ok(p)
    }
}

/// How many slots of each kind the representative batch holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchMix {
    /// Trade slots.
    pub trades: usize,
    /// Deposit slots.
    pub deposits: usize,
    /// Withdrawal slots.
    pub withdrawals: usize,
    /// Padding slots.
    pub padding: usize,
}

/// Builds the representative batch of `shape` natively with the test kit: one registered call,
/// a tick, funded accounts, then the slots of `shape.fill` (slot `i` uses accounts `2 + 2i` and
/// `3 + 2i`, or the market maker 2 and `3 + i`), with an account table of
/// `shape.table_size()` entries. Returns the witness, the native public inputs and the mix.
///
/// # Errors
/// [`StatsError::Shape`] for an invalid shape, [`StatsError::Batch`] if the native batch is
/// rejected, [`StatsError::Circuit`] if the circuit refuses the witness.
pub fn representative_batch(
    shape: &StatsShape,
) -> Result<(BatchWitness, Vec<Fr>, BatchMix), StatsError> {
    let params = shape.params()?;
    let mut h = Harness::new(params, 1);
    let reg = h.register(0, 100_000, 10_000, OptionKind::Call, 1);
    h.submit(&reg)
        .map_err(|e| StatsError::Batch(format!("series registration: {e}")))?;
    let tick = h.tick(10, &[(0, 100_000, vec![(0, 5_000)])]);
    h.submit(&tick)
        .map_err(|e| StatsError::Batch(format!("tick: {e}")))?;
    let fund = |h: &mut Harness, account: u64| {
        let d = h.deposit(account, 1_000_000);
        h.submit(&d)
            .map(|_| ())
            .map_err(|e| StatsError::Batch(format!("funding account {account}: {e}")))
    };
    fund(&mut h, FEE_ACCOUNT)?;
    let mut mix = BatchMix::default();
    let kinds: Vec<u8> = (0..shape.capacity)
        .map(|i| match shape.fill {
            SlotFill::Mixed => (i % 3) as u8,
            SlotFill::Trades | SlotFill::MarketMaker => 0,
            SlotFill::OneTrade => {
                if i == 0 {
                    0
                } else {
                    3
                }
            }
        })
        .collect();
    let maker = shape.fill == SlotFill::MarketMaker;
    // The two accounts of slot `i`, buyer first.
    let pair = |i: usize| {
        let i = i as u64;
        match (maker, i % 2) {
            (false, _) => (2 + 2 * i, 3 + 2 * i),
            (true, 0) => (2, 3 + i),
            (true, _) => (3 + i, 2),
        }
    };
    let mut funded = std::collections::BTreeSet::new();
    for (i, kind) in kinds.iter().enumerate() {
        let (a, b) = pair(i);
        if *kind != 1 && *kind != 3 {
            for acc in [a, b] {
                if funded.insert(acc) {
                    fund(&mut h, acc)?;
                }
            }
        }
    }
    let before = h.state.clone();
    let mut txs: Vec<Tx> = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        let (a, b) = pair(i);
        match kind {
            0 => {
                txs.push(h.simple_trade(a, b, 0, 3, 5_000).tx);
                mix.trades += 1;
            }
            1 => {
                txs.push(h.deposit(a, 50_000).tx);
                mix.deposits += 1;
            }
            2 => {
                txs.push(h.withdraw(a, 20_000).tx);
                mix.withdrawals += 1;
            }
            _ => mix.padding += 1,
        }
    }
    let mut after = before.clone();
    let exec = batch::execute(&mut after, BATCH_NUMBER, &txs)
        .map_err(|e| StatsError::Batch(e.to_string()))?;
    let mut witness = BatchWitness::with_table(&before, &exec, shape.capacity, shape.table_size())?;
    // The harness signed with its deterministic keys; the witness takes the same signatures.
    witness.resign_with(collar_protocol::testkit::signer_key);
    let instances = exec.public_inputs.to_fields().to_vec();
    Ok((witness, instances, mix))
}

fn builder(stage: CircuitBuilderStage, lookup_bits: usize) -> BaseCircuitBuilder<Fr> {
    BaseCircuitBuilder::<Fr>::from_stage(stage)
        .use_k(MIN_K as usize)
        .use_lookup_bits(lookup_bits)
        .use_instance_columns(1)
}

/// The layout of a built circuit at `k`, as halo2-base's `calculate_params(Some(9))` computes it
/// (done here without its console output).
fn layout(b: &BaseCircuitBuilder<Fr>, k: u32, lookup_bits: usize) -> BaseCircuitParams {
    let stats = b.statistics();
    let max_rows = (1usize << k) - BLINDING_ROWS;
    BaseCircuitParams {
        k: k as usize,
        num_advice_per_phase: stats
            .gate
            .total_advice_per_phase
            .iter()
            .map(|c| c.div_ceil(max_rows))
            .collect(),
        num_fixed: stats.gate.total_fixed.div_ceil(1 << k),
        num_lookup_advice_per_phase: stats
            .total_lookup_advice_per_phase
            .iter()
            .map(|c| c.div_ceil(max_rows))
            .collect(),
        lookup_bits: Some(lookup_bits),
        num_instance_columns: 1,
    }
}

/// A keygen-mode build of the batch circuit at its chosen `k`, with its cell breakdown; the
/// starting point of [`Prepared`] and [`circuit_stats`].
pub struct Built {
    /// The shape.
    pub shape: StatsShape,
    /// The witness (kept for the prover build).
    pub witness: BatchWitness,
    /// The native public inputs.
    pub instances: Vec<Fr>,
    /// The batch's transactions.
    pub mix: BatchMix,
    /// The keygen-stage circuit, configured.
    pub circuit: HashingCircuit,
    /// The layout.
    pub config: HashingCircuitParams,
    /// Cells per component and per transaction type.
    pub breakdown: Breakdown,
    /// Total advice cells according to halo2-base.
    pub advice_cells: u64,
    /// Total lookup cells according to halo2-base.
    pub lookup_cells: u64,
    /// Distinct constants (fixed cells).
    pub fixed_cells: u64,
}

impl fmt::Debug for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Built")
            .field("shape", &self.shape)
            .field("config", &self.config)
            .field("advice_cells", &self.advice_cells)
            .finish_non_exhaustive()
    }
}

/// Builds the representative batch of `shape` in keygen mode with the meter on and picks `k`.
///
/// # Errors
/// As [`representative_batch`]; [`StatsError::BadK`] for a requested `k` that is not above the
/// lookup bits or needs more than `max_advice` columns; [`StatsError::TooLarge`] if no
/// `k <= MAX_K` fits.
pub fn build(shape: &StatsShape) -> Result<Built, StatsError> {
    let (witness, instances, mix) = representative_batch(shape)?;
    let mut circuit = HashingCircuit::with_hashing(
        builder(CircuitBuilderStage::Keygen, shape.lookup_bits),
        shape.hashing,
    );
    let (public, breakdown) = circuit.build(|b| {
        let range = b.range_chip();
        metered(&range, b.main(0), |ctx| build_batch(ctx, &range, &witness))
    })?;
    circuit.builder.assigned_instances[0] = public;
    let b = &circuit.builder;
    let stats = b.statistics();
    let chip_cells = circuit.chip_advice_cells() as u64;
    let advice_cells = stats.gate.total_advice_per_phase.iter().sum::<usize>() as u64 + chip_cells;
    let lookup_cells = stats.total_lookup_advice_per_phase.iter().sum::<usize>() as u64;
    let fixed_cells = stats.gate.total_fixed as u64;
    let chip_columns = circuit.chip_advice_columns();
    let chip_rows = circuit.chip_rows();
    let columns = |c: &BaseCircuitParams| c.num_advice_per_phase[0] + chip_columns;
    let fits = |c: &BaseCircuitParams| {
        columns(c) <= shape.max_advice && chip_rows <= (1usize << c.k) - BLINDING_ROWS
    };
    let min_k = (shape.lookup_bits as u32 + 1).max(MIN_K);
    let config = match shape.k {
        Some(k) => {
            if (k as usize) <= shape.lookup_bits {
                return Err(StatsError::BadK {
                    k,
                    reason: format!("k must exceed the lookup bits ({})", shape.lookup_bits),
                });
            }
            let c = layout(b, k, shape.lookup_bits);
            if !fits(&c) {
                return Err(StatsError::BadK {
                    k,
                    reason: format!(
                        "{} advice columns ({chip_columns} of them the chips', {chip_rows} \
                         rows) exceed the budget of {} or the rows",
                        columns(&c),
                        shape.max_advice
                    ),
                });
            }
            c
        }
        None => (min_k..=MAX_K)
            .map(|k| layout(b, k, shape.lookup_bits))
            .find(fits)
            .ok_or(StatsError::TooLarge {
                advice_cells,
                max_advice: shape.max_advice,
                max_k: MAX_K,
            })?,
    };
    let config = circuit.set_base_params(config);
    Ok(Built {
        shape: shape.clone(),
        witness,
        instances,
        mix,
        circuit,
        config,
        breakdown,
        advice_cells,
        lookup_cells,
        fixed_cells,
    })
}

/// Keys and SRS for proving one shape repeatedly (the bench's setup).
pub struct Prepared {
    /// The development SRS (INSECURE, seed [`DEV_SRS_SEED`]).
    pub srs: ParamsKZG<Bn256>,
    /// The proving key.
    pub pk: ProvingKey<G1Affine>,
    /// The layout.
    pub config: HashingCircuitParams,
    /// The keygen break points, for prover builds.
    pub break_points: MultiPhaseThreadBreakPoints,
    /// The witness.
    pub witness: BatchWitness,
    /// The native public inputs.
    pub instances: Vec<Fr>,
    /// Milliseconds to generate the SRS.
    pub srs_ms: f64,
    /// Milliseconds of `keygen_vk` plus `keygen_pk`.
    pub keygen_ms: f64,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("config", &self.config)
            .field("keygen_ms", &self.keygen_ms)
            .finish_non_exhaustive()
    }
}

fn halo2(stage: &'static str) -> impl Fn(halo2_base::halo2_proofs::plonk::Error) -> StatsError {
    move |e| StatsError::Halo2 {
        stage,
        message: format!("{e:?}"),
    }
}

impl Prepared {
    /// Generates the development SRS and the keys for `built`.
    ///
    /// # Errors
    /// [`StatsError::Halo2`] if key generation fails.
    pub fn new(built: Built) -> Result<Self, StatsError> {
        let k = built.config.base.k as u32;
        let t = Instant::now();
        let srs = ParamsKZG::<Bn256>::setup(k, ChaCha20Rng::seed_from_u64(DEV_SRS_SEED));
        let srs_ms = ms(t);
        let t = Instant::now();
        let vk = keygen_vk(&srs, &built.circuit).map_err(halo2("keygen"))?;
        let pk = keygen_pk(&srs, vk, &built.circuit).map_err(halo2("keygen"))?;
        let keygen_ms = ms(t);
        let break_points = built.circuit.builder.break_points();
        Ok(Self {
            srs,
            pk,
            config: built.config,
            break_points,
            witness: built.witness,
            instances: built.instances,
            srs_ms,
            keygen_ms,
        })
    }

    /// Builds the witness in prover mode and creates a proof (SHPLONK, Blake2b transcript).
    ///
    /// # Errors
    /// [`StatsError::Halo2`] if proving fails.
    pub fn prove(&self) -> Result<Vec<u8>, StatsError> {
        let circuit = prover_circuit(
            &self.witness,
            self.config.clone(),
            self.break_points.clone(),
        );
        let mut transcript = Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]);
        create_proof::<
            KZGCommitmentScheme<Bn256>,
            ProverSHPLONK<'_, Bn256>,
            Challenge255<G1Affine>,
            _,
            Blake2bWrite<Vec<u8>, G1Affine, Challenge255<G1Affine>>,
            _,
        >(
            &self.srs,
            &self.pk,
            &[circuit],
            &[&[&self.instances]],
            ChaCha20Rng::seed_from_u64(0),
            &mut transcript,
        )
        .map_err(halo2("prove"))?;
        Ok(transcript.finalize())
    }

    /// Verifies `proof` against the native public inputs.
    ///
    /// # Errors
    /// [`StatsError::Halo2`] if the proof does not verify.
    pub fn verify(&self, proof: &[u8]) -> Result<(), StatsError> {
        let mut transcript = Blake2bRead::<_, G1Affine, Challenge255<_>>::init(proof);
        verify_proof::<
            KZGCommitmentScheme<Bn256>,
            VerifierSHPLONK<'_, Bn256>,
            Challenge255<G1Affine>,
            Blake2bRead<&[u8], G1Affine, Challenge255<G1Affine>>,
            SingleStrategy<'_, Bn256>,
        >(
            self.srs.verifier_params(),
            self.pk.get_vk(),
            SingleStrategy::new(&self.srs),
            &[&[&self.instances]],
            &mut transcript,
        )
        .map_err(halo2("verify"))
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The whole process's peak resident memory so far (`VmHWM` of `/proc/self/status`), in bytes;
/// `None` where that file is unavailable (non-Linux).
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// One row of the component table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentStats {
    /// The component's name ([`Component::name`]).
    pub name: String,
    /// Exclusive advice cells.
    pub advice_cells: u64,
    /// Exclusive lookup cells.
    pub lookup_cells: u64,
    /// Share of all advice cells, in percent.
    pub advice_percent: f64,
}

/// Real keygen, proving and verification figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvingStats {
    /// Always states that the SRS is an insecure development one.
    pub srs: String,
    /// Milliseconds to generate the SRS.
    pub srs_ms: f64,
    /// Milliseconds of `keygen_vk` plus `keygen_pk`.
    pub keygen_ms: f64,
    /// Milliseconds to build the witness and create the proof.
    pub prove_ms: f64,
    /// Proof size in bytes.
    pub proof_bytes: usize,
    /// Milliseconds to verify.
    pub verify_ms: f64,
    /// Peak resident memory of the whole process (`VmHWM`) after verification, in bytes.
    pub peak_memory_bytes: Option<u64>,
}

/// What `collar stats` reports about one shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitStats {
    /// The measured shape.
    pub shape: StatsShape,
    /// The protocol parameters it gives.
    pub params: ProtocolParams,
    /// The representative batch.
    pub batch: BatchMix,
    /// `log2` of the number of rows.
    pub k: u32,
    /// Range-lookup table bits.
    pub lookup_bits: usize,
    /// Which Poseidon implementation hashes.
    pub hashing: Hashing,
    /// Advice columns in all: the flex gate's plus the chips' (Pow5 and msm share theirs).
    pub advice_columns: usize,
    /// Advice columns of the Pow5 and msm chips (0 with halo2-base hashing).
    pub chip_advice_columns: usize,
    /// Rows of the chip region (Pow5 hashes, then msm multiplications).
    pub chip_rows: usize,
    /// Fixed columns (constants), not counting the lookup table's.
    pub fixed_columns: usize,
    /// Lookup-enabled advice columns.
    pub lookup_advice_columns: usize,
    /// Instance columns.
    pub instance_columns: usize,
    /// Rows available for assignments: `2^k - 9` blinding rows.
    pub usable_rows: usize,
    /// The most rows any column uses (advice, lookup advice, fixed or the lookup table).
    pub rows_used: usize,
    /// Advice cells over advice capacity (`advice_columns · usable_rows`), in percent.
    pub advice_utilisation_percent: f64,
    /// Advice cells in total.
    pub advice_cells: u64,
    /// Cells range-checked through the lookup in total.
    pub lookup_cells: u64,
    /// Distinct constants.
    pub fixed_cells: u64,
    /// `advice_cells / capacity`.
    pub advice_cells_per_slot: f64,
    /// `lookup_cells / capacity`.
    pub lookup_cells_per_slot: f64,
    /// Exclusive split by component; sums to the totals.
    pub components: Vec<ComponentStats>,
    /// Signature lanes the circuit verifies (two a slot, one per (underlying, oracle) position
    /// of the tick lane), whether or not the batch fills them.
    pub signature_lanes: usize,
    /// The signatures component's advice cells per lane (point arithmetic, scalar bits and
    /// canonicity; the challenge's Poseidon is under hashing).
    pub advice_cells_per_signature: f64,
    /// Inclusive cells per transaction-type gadget (empty until the batch circuit wraps its
    /// gadgets in [`measure_tx_type`]).
    pub tx_types: Vec<TxTypeCells>,
    /// Real proving figures when `shape.prove`.
    pub proving: Option<ProvingStats>,
    /// Peak resident memory of the whole process (`VmHWM`) at the end, in bytes.
    pub peak_memory_bytes: Option<u64>,
}

/// Measures `shape`: builds its representative batch, lays the circuit out (automatic or given
/// `k`), splits the cells by component and transaction type and, when `shape.prove`, runs keygen,
/// proving and verification on a development SRS.
///
/// # Errors
/// See [`build`], [`Prepared::new`], [`Prepared::prove`] and [`Prepared::verify`].
pub fn circuit_stats(shape: &StatsShape) -> Result<CircuitStats, StatsError> {
    let params = shape.params()?;
    let built = build(shape)?;
    let mut stats = stats_of(&built, params);
    if shape.prove {
        let prepared = Prepared::new(built)?;
        let t = Instant::now();
        let proof = prepared.prove()?;
        let prove_ms = ms(t);
        let t = Instant::now();
        prepared.verify(&proof)?;
        let verify_ms = ms(t);
        stats.proving = Some(ProvingStats {
            srs: format!("INSECURE development SRS (ParamsKZG::setup, seed {DEV_SRS_SEED})"),
            srs_ms: prepared.srs_ms,
            keygen_ms: prepared.keygen_ms,
            prove_ms,
            proof_bytes: proof.len(),
            verify_ms,
            peak_memory_bytes: peak_memory_bytes(),
        });
    }
    stats.peak_memory_bytes = peak_memory_bytes();
    Ok(stats)
}

/// The statistics of a [`Built`] circuit without proving.
pub fn stats_of(built: &Built, params: ProtocolParams) -> CircuitStats {
    let c = &built.config.base;
    let k = c.k as u32;
    let usable_rows = (1usize << k) - BLINDING_ROWS;
    let chip_rows = built.circuit.chip_rows();
    let chip_advice_columns = built.circuit.chip_advice_columns();
    let flex_columns = c.num_advice_per_phase.iter().sum::<usize>();
    let advice_columns = flex_columns + chip_advice_columns;
    let lookup_advice_columns = c.num_lookup_advice_per_phase.iter().sum::<usize>();
    let column_rows = |cells: u64, cols: usize| -> usize {
        if cols == 0 {
            0
        } else {
            (cells as usize).div_ceil(cols).min(usable_rows)
        }
    };
    let flex_cells = built.advice_cells - built.circuit.chip_advice_cells() as u64;
    let rows_used = [
        column_rows(flex_cells, flex_columns),
        chip_rows,
        column_rows(built.lookup_cells, lookup_advice_columns),
        (built.fixed_cells as usize).div_ceil(c.num_fixed.max(1)),
        1usize << built.shape.lookup_bits,
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    let total = built.advice_cells.max(1) as f64;
    let cap = built.shape.capacity as f64;
    let signature_lanes = 2 * built.shape.capacity + params.max_underlyings * params.max_oracles;
    let signature_cells = built
        .breakdown
        .components
        .iter()
        .find(|(comp, _)| *comp == Component::Signatures)
        .map_or(0, |(_, cells)| cells.advice);
    CircuitStats {
        shape: built.shape.clone(),
        params,
        batch: built.mix,
        k,
        lookup_bits: built.shape.lookup_bits,
        hashing: built.config.hashing,
        advice_columns,
        chip_advice_columns,
        chip_rows,
        fixed_columns: c.num_fixed,
        lookup_advice_columns,
        instance_columns: c.num_instance_columns,
        usable_rows,
        rows_used,
        advice_utilisation_percent: 100.0 * built.advice_cells as f64
            / (advice_columns.max(1) * usable_rows) as f64,
        advice_cells: built.advice_cells,
        lookup_cells: built.lookup_cells,
        fixed_cells: built.fixed_cells,
        advice_cells_per_slot: built.advice_cells as f64 / cap,
        lookup_cells_per_slot: built.lookup_cells as f64 / cap,
        components: built
            .breakdown
            .components
            .iter()
            .map(|(comp, cells)| ComponentStats {
                name: comp.name().to_string(),
                advice_cells: cells.advice,
                lookup_cells: cells.lookup,
                advice_percent: 100.0 * cells.advice as f64 / total,
            })
            .collect(),
        tx_types: built.breakdown.tx_types.clone(),
        signature_lanes,
        advice_cells_per_signature: signature_cells as f64 / signature_lanes.max(1) as f64,
        proving: None,
        peak_memory_bytes: peak_memory_bytes(),
    }
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), |b| {
        format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
    })
}

impl fmt::Display for CircuitStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.params;
        writeln!(
            f,
            "shape: capacity {}, depth {}, positions {}, order depth {}, series {}, account table {}",
            self.shape.capacity,
            p.account_depth,
            p.max_positions,
            p.order_slot_depth,
            p.max_series,
            self.shape.table_size()
        )?;
        writeln!(
            f,
            "batch: {} trades, {} deposits, {} withdrawals, {} padding",
            self.batch.trades, self.batch.deposits, self.batch.withdrawals, self.batch.padding
        )?;
        let rows: [(&str, String); 15] = [
            ("hashing", self.hashing.to_string()),
            ("k", self.k.to_string()),
            ("lookup bits", self.lookup_bits.to_string()),
            ("advice columns", self.advice_columns.to_string()),
            (
                "of them Pow5 + msm chips (rows)",
                format!("{} ({})", self.chip_advice_columns, self.chip_rows),
            ),
            (
                "lookup advice columns",
                self.lookup_advice_columns.to_string(),
            ),
            ("fixed columns", self.fixed_columns.to_string()),
            ("instance columns", self.instance_columns.to_string()),
            (
                "rows used / usable",
                format!("{} / {}", self.rows_used, self.usable_rows),
            ),
            (
                "advice utilisation",
                format!("{:.1} %", self.advice_utilisation_percent),
            ),
            ("advice cells", self.advice_cells.to_string()),
            ("lookup cells", self.lookup_cells.to_string()),
            (
                "advice / lookup cells per slot",
                format!(
                    "{:.0} / {:.0}",
                    self.advice_cells_per_slot, self.lookup_cells_per_slot
                ),
            ),
            ("fixed cells (constants)", self.fixed_cells.to_string()),
            (
                "signature lanes / cells each",
                format!(
                    "{} / {:.0}",
                    self.signature_lanes, self.advice_cells_per_signature
                ),
            ),
        ];
        for (name, value) in rows {
            writeln!(f, "  {name:<32}{value:>24}")?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "  {:<16}{:>14}{:>9}{:>14}",
            "component", "advice", "%", "lookup"
        )?;
        for c in &self.components {
            writeln!(
                f,
                "  {:<16}{:>14}{:>8.1}%{:>14}",
                c.name, c.advice_cells, c.advice_percent, c.lookup_cells
            )?;
        }
        if !self.tx_types.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "  {:<16}{:>8}{:>14}{:>14}  (inclusive)",
                "tx type", "slots", "advice", "lookup"
            )?;
            for t in &self.tx_types {
                writeln!(
                    f,
                    "  {:<16}{:>8}{:>14}{:>14}",
                    t.name, t.scopes, t.cells.advice, t.cells.lookup
                )?;
            }
        }
        if let Some(pr) = &self.proving {
            writeln!(f)?;
            writeln!(f, "  SRS: {}", pr.srs)?;
            let rows: [(&str, String); 5] = [
                ("srs generation", format!("{:.0} ms", pr.srs_ms)),
                ("keygen (vk + pk)", format!("{:.0} ms", pr.keygen_ms)),
                ("prove", format!("{:.0} ms", pr.prove_ms)),
                ("proof bytes", pr.proof_bytes.to_string()),
                ("verify", format!("{:.1} ms", pr.verify_ms)),
            ];
            for (name, value) in rows {
                writeln!(f, "  {name:<32}{value:>24}")?;
            }
        }
        write!(
            f,
            "  {:<32}{:>24}",
            "peak memory (process VmHWM)",
            mib(self.peak_memory_bytes)
        )
    }
}
