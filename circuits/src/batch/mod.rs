//! The batch circuit (PROTOCOL.md §11, docs/CIRCUIT.md): the old state root becomes the new one
//! only through the rules of §7, slot by slot.
//!
//! **Status.** This version constrains padding (`noop`) slots, deposits (§7.1), withdrawals
//! (§7.2), trades (§7.3), liquidations (§7.4), expiry settlements (§7.5) and series
//! registrations (§7.7) in full: the header preimage, the market lists (the registry as per-slot
//! state), every account write as a Merkle update chained through the accounts root (three
//! ports per slot), order-slot fills, position moves, breakers, the margin rules of §5.3, fees,
//! the deposit-queue, withdrawals and public-data chains, and the eight public inputs. Oracle
//! ticks (§7.6, §8, §9) run in a tick lane before the slots: at most one per batch, as its first
//! transaction ([`BatchCircuitError::TickNotFirst`] otherwise).

mod gadgets;
mod liquidate;
mod memory;
mod register;
mod settle;
mod tick;
mod trade;
mod witness;

pub use witness::{
    default_table_size, port_accounts, table_accounts, table_size, BatchWitness, EntryWitness,
    OrderFillWitness, PortWitness, SlotWitness, TickWitness, MIN_TABLE_SIZE, PORTS,
};

use collar_protocol::field::domain_tag;
use collar_protocol::params::bounds;
use collar_protocol::pubdata::record;
use collar_protocol::tx::tags;
use collar_protocol::Tx;
use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_base::gates::flex_gate::MultiPhaseThreadBreakPoints;
use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};

use crate::account::{assign_account, AssignedAccount};
use crate::margin::{meets, AssignedMargin};
use crate::market::{assign_series, assign_underlyings, list_hash};
use crate::portfolio::{account_margin_in_market, MarketView};
use crate::poseidon::{Hashing, PoseidonChip};
use crate::pow5::{HashingCircuit, HashingCircuitParams};
use crate::safe::Ranged;
use crate::schnorr::{IdleCells, Lane, SchnorrChip};
use crate::stats::measure_tx_type;
use gadgets::{any_position_halted, eq_if, keep, select_for_margin, Keep};

/// Why a batch witness cannot be turned into this circuit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchCircuitError {
    /// More transactions than slots.
    #[error("{txs} transactions exceed the capacity of {capacity} slots")]
    OverCapacity {
        /// Transactions in the batch.
        txs: usize,
        /// Slots in the circuit.
        capacity: usize,
    },
    /// An oracle tick that is not the batch's first transaction: the circuit has one tick lane,
    /// before the slots (the sequencer seals around ticks).
    #[error("transaction {0}: an oracle tick must be the first transaction of its batch")]
    TickNotFirst(usize),
    /// The transaction at this position of the batch carries fewer or more signatures than its
    /// signed messages (§6.5), or a tick report lacks one: the batch was executed unsigned
    /// (`collar_protocol::batch::execute_signed` keeps them).
    #[error("transaction {0}: its signatures are missing from the batch")]
    MissingSignatures(usize),
    /// The batch touches more accounts than the account table holds (a circuit built with
    /// [`BatchWitness::with_table`] smaller than [`default_table_size`]).
    #[error("the batch touches {accounts} accounts; the account table holds {entries}")]
    TableFull {
        /// Distinct accounts the batch's ports name.
        accounts: usize,
        /// Entries of the account table.
        entries: usize,
    },
    /// The witness is inconsistent with itself (a bug in the caller).
    #[error("inconsistent witness: {0}")]
    Inconsistent(&'static str),
}

/// Signature lanes per slot: lane 0 the withdrawal, buy order or liquidation order, lane 1 the
/// sell order (the tick lane adds one per (underlying, oracle) position).
pub const SIGNATURE_LANES: usize = 2;

/// The header fields as loaded or computed in circuit.
struct HeaderCells {
    accounts_root: AssignedValue<Fr>,
    series_hash: AssignedValue<Fr>,
    underlyings_hash: AssignedValue<Fr>,
    oracles_hash: AssignedValue<Fr>,
    params_hash: AssignedValue<Fr>,
    time: AssignedValue<Fr>,
    deposit_head: AssignedValue<Fr>,
    deposit_count: AssignedValue<Fr>,
}

impl HeaderCells {
    fn root(
        &self,
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        poseidon: &PoseidonChip,
    ) -> AssignedValue<Fr> {
        let tag = ctx.load_constant(domain_tag(tags::STATE));
        poseidon.hash(
            ctx,
            gate,
            &[
                tag,
                self.accounts_root,
                self.series_hash,
                self.underlyings_hash,
                self.oracles_hash,
                self.params_hash,
                self.time,
                self.deposit_head,
                self.deposit_count,
            ],
        )
    }
}

/// A public-data record in circuit (§10): its field form and the hash the chain takes.
struct Record {
    fields: Vec<AssignedValue<Fr>>,
    hash: AssignedValue<Fr>,
}

impl Record {
    fn new(
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        poseidon: &PoseidonChip,
        fields: Vec<AssignedValue<Fr>>,
    ) -> Self {
        let hash = poseidon.hash(ctx, gate, &fields);
        Self { fields, hash }
    }
}

/// One account write in circuit: the index, both leaf preimages, and their Merkle update.
pub(crate) struct AssignedPort {
    pub(crate) index: Ranged,
    pub(crate) before: AssignedAccount,
    pub(crate) after: AssignedAccount,
}

/// The one-hot transaction type of a slot.
pub(crate) struct SlotType {
    pub(crate) noop: AssignedValue<Fr>,
    pub(crate) deposit: AssignedValue<Fr>,
    pub(crate) withdraw: AssignedValue<Fr>,
    pub(crate) trade: AssignedValue<Fr>,
    pub(crate) liquidate: AssignedValue<Fr>,
    pub(crate) settle: AssignedValue<Fr>,
    pub(crate) register: AssignedValue<Fr>,
}

impl SlotType {
    fn assign(ctx: &mut Context<Fr>, gate: &impl GateInstructions<Fr>, tx: Option<&Tx>) -> Self {
        let mut flag = |on: bool| {
            let c = ctx.load_witness(Fr::from(u64::from(on)));
            gate.assert_bit(ctx, c);
            c
        };
        let deposit = flag(matches!(tx, Some(Tx::Deposit(_))));
        let withdraw = flag(matches!(tx, Some(Tx::Withdraw(_))));
        let trade = flag(matches!(tx, Some(Tx::Trade(_))));
        let liquidate = flag(matches!(tx, Some(Tx::Liquidate(_))));
        let settle = flag(matches!(tx, Some(Tx::SettleExpiry(_))));
        let register = flag(matches!(tx, Some(Tx::RegisterSeries(_))));
        let active = gate.sum(ctx, [deposit, withdraw, trade, liquidate, settle, register]);
        // At most one type: the sum of the flags is itself a bit.
        gate.assert_bit(ctx, active);
        let noop = gate.not(ctx, active);
        Self {
            noop,
            deposit,
            withdraw,
            trade,
            liquidate,
            settle,
            register,
        }
    }
}

/// The margin of the buyer- and seller-side ports (0 and 1), before and after their writes.
pub(crate) struct PortMargins {
    pub(crate) before: [AssignedMargin; 2],
    pub(crate) after: [AssignedMargin; 2],
}

/// Values shared by every slot's gadgets.
pub(crate) struct SlotEnv<'a> {
    pub(crate) poseidon: &'a PoseidonChip,
    pub(crate) view: &'a MarketView<'a>,
    pub(crate) now: Ranged,
    pub(crate) params: &'a collar_protocol::ProtocolParams,
}

/// The batch circuit of `w` at the keygen stage: `2^k` rows, a `lookup_bits`-bit range table,
/// one instance column, hashing with `hashing`. Call
/// [`HashingCircuit::calculate_params`] before keygen.
///
/// # Panics
/// As [`build_batch`] for a witness of the wrong shape.
pub fn keygen_circuit(
    w: &BatchWitness,
    k: u32,
    lookup_bits: usize,
    hashing: Hashing,
) -> HashingCircuit {
    let builder = BaseCircuitBuilder::<Fr>::from_stage(CircuitBuilderStage::Keygen)
        .use_k(k as usize)
        .use_lookup_bits(lookup_bits)
        .use_instance_columns(1);
    with_batch(HashingCircuit::with_hashing(builder, hashing), w)
}

/// The batch circuit of `w` at the proving stage, for the keygen's `params` and
/// `break_points`; its instance cells hold the public inputs it computed.
///
/// # Panics
/// As [`build_batch`] for a witness of the wrong shape.
pub fn prover_circuit(
    w: &BatchWitness,
    params: HashingCircuitParams,
    break_points: MultiPhaseThreadBreakPoints,
) -> HashingCircuit {
    with_batch(HashingCircuit::prover(params, break_points), w)
}

fn with_batch(mut circuit: HashingCircuit, w: &BatchWitness) -> HashingCircuit {
    circuit.build(|b| {
        let range = b.range_chip();
        let public = build_batch(b.main(0), &range, w);
        b.assigned_instances[0] = public;
    });
    circuit
}

/// Builds the batch circuit in `ctx` and returns the eight public inputs of §11 in order
/// ([`build_batch_traced`] without the trace).
///
/// Hashes through the enclosing circuit's Poseidon (see
/// [`PoseidonChip::new`]): call it inside [`HashingCircuit::build`], or use [`keygen_circuit`] and
/// [`prover_circuit`].
///
/// Assumes `w` was built by [`BatchWitness::new`] (exactly [`PORTS`] ports per slot); any other
/// witness either panics at construction (wrong shapes) or fails the constraints.
pub fn build_batch(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    w: &BatchWitness,
) -> Vec<AssignedValue<Fr>> {
    build_batch_traced(ctx, range, w).public
}

/// The cells of what a batch circuit commits to as public data (§10), for the soundness oracle
/// (`crate::soundness::oracle`), which replays what the circuit committed rather than what its
/// witness says.
#[derive(Clone, Debug)]
pub struct PublicDataCells {
    /// The tick lane: whether it holds a tick, and the fixed tick form its record hashes.
    pub tick: (AssignedValue<Fr>, Vec<AssignedValue<Fr>>),
    /// Per slot, per transaction type (deposit, withdraw, trade, liquidate, settle, register):
    /// the type's flag and the field form of its record; the record of the flagged type is
    /// chained, none in padding.
    pub slots: Vec<Vec<FlaggedRecord>>,
}

/// A transaction type's flag cell and the field form of its record, in one slot.
pub type FlaggedRecord = (AssignedValue<Fr>, Vec<AssignedValue<Fr>>);

/// What [`build_batch_traced`] returns.
#[derive(Clone, Debug)]
pub struct BatchCells {
    /// The eight public inputs of §11, in order.
    pub public: Vec<AssignedValue<Fr>>,
    /// The public data's cells.
    pub data: PublicDataCells,
}

/// [`build_batch`], also returning the cells of the public data it commits to.
///
/// Preconditions and panics as [`build_batch`].
pub fn build_batch_traced(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    w: &BatchWitness,
) -> BatchCells {
    let gate = range.gate();
    let p = &w.params;
    let poseidon = PoseidonChip::new(ctx, gate);

    // Header in: the market lists are hashed from their entries, the parameters hash is the
    // circuit's own constant (so a verifying key is bound to its rule constants), the rest is
    // witnessed and bound by the old root.
    let series = assign_series(ctx, range, &poseidon, &w.series, p.max_series);
    let unds = assign_underlyings(ctx, range, &poseidon, &w.underlyings, p.max_underlyings);
    let h = &w.header_before;
    let before = HeaderCells {
        accounts_root: ctx.load_witness(h.accounts_root),
        series_hash: list_hash(ctx, gate, &poseidon, series.iter().map(|s| s.leaf)),
        underlyings_hash: list_hash(ctx, gate, &poseidon, unds.iter().map(|u| u.leaf)),
        oracles_hash: ctx.load_witness(h.oracles_hash),
        params_hash: ctx.load_constant(p.hash()),
        time: Ranged::load(ctx, range, Fr::from(h.time), bounds::TIME_BITS).cell(),
        deposit_head: ctx.load_witness(h.deposit_head),
        deposit_count: Ranged::load(ctx, range, Fr::from(h.deposit_count), 64).cell(),
    };
    let old_root = before.root(ctx, gate, &poseidon);

    // The tick lane (§7.6): the batch's tick, if any, prices the market before every slot.
    let lane = measure_tx_type("oracle_tick", ctx, |ctx| {
        let inputs = tick::LaneInputs {
            poseidon: &poseidon,
            params: p,
            oracles_hash: before.oracles_hash,
            now: Ranged::check(ctx, range, before.time, bounds::TIME_BITS),
        };
        tick::constrain(
            ctx,
            range,
            &inputs,
            w.tick.as_ref(),
            &w.oracles,
            &series,
            &unds,
        )
    });
    let mut series = lane.series;
    let unds = lane.underlyings;
    let now = lane.now;
    let mut data = PublicDataCells {
        tick: lane.record.clone(),
        slots: Vec::with_capacity(w.slots.len()),
    };

    // The account table (docs/CIRCUIT.md): every account the ports name, opened once.
    let mut table = memory::AccountTable::open(ctx, range, &w.accounts, p.account_depth);
    let mut deposit_head = before.deposit_head;
    let mut deposit_count = before.deposit_count;
    let mut pubdata = lane.pubdata;
    let mut withdrawals = ctx.load_zero();
    let zero = ctx.load_zero();
    let one = ctx.load_constant(Fr::one());
    let withdrawal_tag = ctx.load_constant(domain_tag(tags::WITHDRAWAL_CHAIN));
    let withdraw_type = ctx.load_constant(Fr::from(u64::from(record::WITHDRAW)));
    let deposit_tag = ctx.load_constant(domain_tag(tags::DEPOSIT));
    let pubdata_tag = ctx.load_constant(domain_tag(tags::PUBDATA));
    let deposit_type = ctx.load_constant(Fr::from(u64::from(record::DEPOSIT)));
    let curve_b = ctx.load_constant(Fr::from(17u64));
    let chain_id = ctx.load_constant(Fr::from(p.chain_id));
    let withdraw_msg_tag = ctx.load_constant(domain_tag(tags::WITHDRAW));
    let schnorr = SchnorrChip::new(range);
    let idle = IdleCells::load(ctx);

    for slot in &w.slots {
        assert_eq!(slot.ports.len(), PORTS, "every slot has {PORTS} ports");
        let ty = SlotType::assign(ctx, gate, slot.tx.as_ref());
        // The registry as this slot sees it (registrations earlier in the batch included).
        let view = MarketView::new(ctx, gate, &series, &unds);
        let env = SlotEnv {
            poseidon: &poseidon,
            view: &view,
            now,
            params: p,
        };

        // The writes: both leaves from their preimages, each read from and written to its
        // account's table entry, in port order.
        let mut ports = Vec::with_capacity(PORTS);
        for port in &slot.ports {
            let index = Ranged::load(ctx, range, Fr::from(port.account), p.account_depth as u32);
            let b = assign_account(ctx, range, &poseidon, &port.before, p.order_slot_depth);
            let a = assign_account(ctx, range, &poseidon, &port.after, p.order_slot_depth);
            table.access(ctx, gate, index.cell(), b.leaf, a.leaf);
            ports.push(AssignedPort {
                index,
                before: b,
                after: a,
            });
        }
        // Idle ports are identity writes: port 0 in padding and registrations, port 1 outside trades,
        // liquidations and settlements, port 2 outside trades and liquidations.
        let idle0 = gate.add(ctx, ty.noop, ty.register);
        eq_if(ctx, gate, ports[0].after.leaf, ports[0].before.leaf, idle0);
        let two = gate.add(ctx, ty.trade, ty.liquidate);
        let uses_two = gate.not(ctx, two);
        let three = gate.add(ctx, two, ty.settle);
        let uses_one = gate.not(ctx, three);
        eq_if(
            ctx,
            gate,
            ports[1].after.leaf,
            ports[1].before.leaf,
            uses_one,
        );
        eq_if(
            ctx,
            gate,
            ports[2].after.leaf,
            ports[2].before.leaf,
            uses_two,
        );
        // Margins: ports 0 and 1 before and after, except that a liquidation checks its
        // liquidator, on port 2, afterwards.
        let checked = select_for_margin(ctx, range, ty.liquidate, &ports[2].after, &ports[1].after);
        let margins = PortMargins {
            before: [0, 1].map(|i| account_margin_in_market(ctx, range, &ports[i].before, &view)),
            after: [
                account_margin_in_market(ctx, range, &ports[0].after, &view),
                account_margin_in_market(ctx, range, &checked, &view),
            ],
        };

        let (dep_pk, amount_value, wd_nonce, wd_recipient) = match &slot.tx {
            Some(Tx::Deposit(d)) => (d.pubkey, d.amount, 0, Fr::zero()),
            Some(Tx::Withdraw(x)) => (
                collar_protocol::PublicKey::ZERO,
                x.amount,
                x.nonce,
                x.recipient.to_field(),
            ),
            _ => (collar_protocol::PublicKey::ZERO, 0, 0, Fr::zero()),
        };
        let (b, a, index) = (&ports[0].before, &ports[0].after, &ports[0].index);

        let (deposit_record, withdraw_record, withdraw_msg) =
            measure_tx_type("deposit/withdraw", ctx, |ctx| {
                // §7.1 Deposit and §7.2 Withdraw share port 0 and the amount (positive, below 2^63).
                let single = gate.add(ctx, ty.deposit, ty.withdraw);
                let amount = Ranged::load(ctx, range, Fr::from(amount_value), bounds::AMOUNT_BITS);
                let amount_zero = gate.is_zero(ctx, amount.cell());
                eq_if(ctx, gate, amount_zero, zero, single);
                let pk = [ctx.load_witness(dep_pk.x), ctx.load_witness(dep_pk.y)];
                // New account: bound to the deposit's key, which must be on y^2 = x^3 - 17; existing
                // account: key unchanged.
                for ((after_key, before_key), dep_key) in a.pubkey.iter().zip(&b.pubkey).zip(&pk) {
                    let key = gate.select(ctx, *before_key, *dep_key, b.exists);
                    eq_if(ctx, gate, *after_key, key, ty.deposit);
                }
                let y2 = gate.mul(ctx, pk[1], pk[1]);
                let x2 = gate.mul(ctx, pk[0], pk[0]);
                let x3 = gate.mul(ctx, x2, pk[0]);
                let lhs = gate.add(ctx, y2, curve_b);
                let creates = gate.sub(ctx, ty.deposit, b.exists);
                let creates = gate.mul(ctx, creates, ty.deposit);
                eq_if(ctx, gate, lhs, x3, creates);
                let credited = gate.add(ctx, b.collateral.cell(), amount.cell());
                eq_if(ctx, gate, a.collateral.cell(), credited, ty.deposit);
                let balance_only = Keep {
                    key: false,
                    ..Keep::ALL
                };
                keep(ctx, gate, &ports[0], balance_only, ty.deposit);

                // The deposit-queue chain advances only for a deposit.
                let next = poseidon.hash(
                    ctx,
                    gate,
                    &[
                        deposit_tag,
                        deposit_head,
                        index.cell(),
                        pk[0],
                        pk[1],
                        amount.cell(),
                    ],
                );
                deposit_head = gate.select(ctx, next, deposit_head, ty.deposit);
                deposit_count = gate.add(ctx, deposit_count, ty.deposit);
                let deposit_record = Record::new(
                    ctx,
                    gate,
                    &poseidon,
                    vec![deposit_type, index.cell(), pk[0], pk[1], amount.cell()],
                );

                // §7.2 Withdraw: an existing account, its nonce, no halted underlying among its
                // positions, the debit (the 63-bit range check of the new collateral rules out going
                // below zero), and initial margin afterwards.
                let nonce = Ranged::load(ctx, range, Fr::from(wd_nonce), bounds::NONCE_BITS);
                let recipient = Ranged::load(ctx, range, wd_recipient, 160);
                eq_if(ctx, gate, b.exists, one, ty.withdraw);
                eq_if(ctx, gate, nonce.cell(), b.nonce.cell(), ty.withdraw);
                let bumped = gate.add(ctx, b.nonce.cell(), one);
                eq_if(ctx, gate, a.nonce.cell(), bumped, ty.withdraw);
                let debited = gate.sub(ctx, b.collateral.cell(), amount.cell());
                eq_if(ctx, gate, a.collateral.cell(), debited, ty.withdraw);
                let cash_and_nonce = Keep {
                    nonce: false,
                    ..Keep::ALL
                };
                keep(ctx, gate, &ports[0], cash_and_nonce, ty.withdraw);
                let halted = any_position_halted(ctx, range, b, &view, &now);
                eq_if(ctx, gate, halted, zero, ty.withdraw);
                let m = &margins.after[0];
                let meets_initial = meets(ctx, range, &m.im_equity, &m.initial);
                eq_if(ctx, gate, meets_initial, one, ty.withdraw);
                let next = poseidon.hash(
                    ctx,
                    gate,
                    &[
                        withdrawal_tag,
                        withdrawals,
                        index.cell(),
                        amount.cell(),
                        recipient.cell(),
                    ],
                );
                withdrawals = gate.select(ctx, next, withdrawals, ty.withdraw);
                let withdraw_record = Record::new(
                    ctx,
                    gate,
                    &poseidon,
                    vec![
                        withdraw_type,
                        index.cell(),
                        amount.cell(),
                        nonce.cell(),
                        recipient.cell(),
                    ],
                );

                // §6.5: the withdrawal message the account signed.
                let withdraw_msg = poseidon.hash(
                    ctx,
                    gate,
                    &[
                        withdraw_msg_tag,
                        chain_id,
                        index.cell(),
                        amount.cell(),
                        nonce.cell(),
                        recipient.cell(),
                    ],
                );
                (deposit_record, withdraw_record, withdraw_msg)
            });
        // §7.3 Trade: ports 0 (buyer), 1 (seller), 2 (fee account).
        let (trade_record, order_msgs) = measure_tx_type("trade", ctx, |ctx| {
            let (fields, msgs) =
                trade::constrain(ctx, range, &env, slot, &ports, &margins, ty.trade);
            (Record::new(ctx, gate, &poseidon, fields), msgs)
        });
        // §7.4 Liquidate: ports 0 (victim), 1 (fund), 2 (liquidator).
        let (liquidation_record, liquidation_msg) = measure_tx_type("liquidate", ctx, |ctx| {
            let (fields, msg) =
                liquidate::constrain(ctx, range, &env, slot, &ports, &margins, ty.liquidate);
            (Record::new(ctx, gate, &poseidon, fields), msg)
        });
        // §7.5 Settle expiry: ports 0 (account), 1 (fund).
        let settle_record = measure_tx_type("settle", ctx, |ctx| {
            let fields = settle::constrain(ctx, range, &env, slot, &ports, ty.settle);
            Record::new(ctx, gate, &poseidon, fields)
        });
        // §7.7 Register series: no account port; the registry entry at series_count.
        let (register_record, registry) = measure_tx_type("register", ctx, |ctx| {
            let (fields, registry) = register::constrain(ctx, range, &env, slot, ty.register);
            (Record::new(ctx, gate, &poseidon, fields), registry)
        });

        // §6.3, §6.5: the signatures, in two lanes. Lane 0 checks the withdrawal (port 0's
        // key), the buy order (port 0) or the liquidation order (the liquidator, port 2); lane 1
        // the sell order (port 1). Keys come from the leaves before the write, under the old
        // root. A lane with nothing to check verifies the idle stand-in instead.
        measure_tx_type("signatures", ctx, |ctx| {
            let lane0 = gate.sum(ctx, [ty.withdraw, ty.trade, ty.liquidate]);
            let m0 = gate.inner_product(
                ctx,
                [withdraw_msg, order_msgs[0], liquidation_msg],
                [ty.withdraw, ty.trade, ty.liquidate].map(halo2_base::QuantumCell::Existing),
            );
            let key0 = [0, 1].map(|c| {
                gate.select(
                    ctx,
                    ports[2].before.pubkey[c],
                    ports[0].before.pubkey[c],
                    ty.liquidate,
                )
            });
            let lanes: [_; SIGNATURE_LANES] = [
                (lane0, key0, m0),
                (ty.trade, ports[1].before.pubkey, order_msgs[1]),
            ];
            for (i, (active, key, m)) in lanes.into_iter().enumerate() {
                let lane = Lane { active, key, m };
                let sig = slot.signatures.get(i);
                schnorr.verify_lane(ctx, &poseidon, &idle, lane, sig);
            }
        });

        // Public data (§10): one chain step per non-padding slot over the record of its type.
        let records = [
            deposit_record,
            withdraw_record,
            trade_record,
            liquidation_record,
            settle_record,
            register_record,
        ];
        let flags = [
            ty.deposit,
            ty.withdraw,
            ty.trade,
            ty.liquidate,
            ty.settle,
            ty.register,
        ];
        let record = gate.inner_product(
            ctx,
            records.iter().map(|r| r.hash),
            flags.map(halo2_base::QuantumCell::Existing),
        );
        let next = poseidon.hash(ctx, gate, &[pubdata_tag, pubdata, record]);
        pubdata = gate.select(ctx, pubdata, next, ty.noop);
        series = registry;
        data.slots
            .push(flags.into_iter().zip(records.map(|r| r.fields)).collect());
    }
    // Every table entry written back once, chained from the old accounts root.
    let accounts_root = table.close(ctx, range, &poseidon, before.accounts_root);
    // The count stays a 64-bit value (§7.1).
    range.range_check(ctx, deposit_count, 64);

    let after = HeaderCells {
        accounts_root,
        series_hash: list_hash(ctx, gate, &poseidon, series.iter().map(|s| s.leaf)),
        underlyings_hash: list_hash(ctx, gate, &poseidon, unds.iter().map(|u| u.leaf)),
        time: now.cell(),
        deposit_head,
        deposit_count,
        ..before
    };
    let new_root = after.root(ctx, gate, &poseidon);
    let batch_number = ctx.load_witness(Fr::from(w.batch_number));
    range.range_check(ctx, batch_number, 64);
    let public = vec![
        old_root,
        new_root,
        pubdata,
        lane.commitment,
        before.deposit_head,
        deposit_head,
        withdrawals,
        batch_number,
    ];
    BatchCells { public, data }
}
