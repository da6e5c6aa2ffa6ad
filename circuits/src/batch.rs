//! The batch circuit (PROTOCOL.md §11, docs/CIRCUIT.md): the old state root becomes the new one
//! only through the rules of §7, slot by slot.
//!
//! **Status.** This version constrains padding (`noop`) slots, deposits (§7.1) and withdrawals
//! (§7.2) in full: the header preimage, the market lists, every account write as a Merkle update
//! chained through the accounts root, breakers and initial margin for withdrawals, the
//! deposit-queue, withdrawals and public-data chains, and the eight public inputs.
//! The other transaction types are refused at construction ([`BatchCircuitError::Unsupported`])
//! until their gadgets land, so no batch containing them can be proven by this version.

use collar_protocol::batch::ExecutedBatch;
use collar_protocol::field::domain_tag;
use collar_protocol::params::{bounds, ProtocolParams};
use collar_protocol::pubdata::record;
use collar_protocol::state::{StateHeader, TxWitness};
use collar_protocol::tx::tags;
use collar_protocol::{Account, Series, State, Tx, Underlying};
use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};

use crate::account::{assign_account, AssignedAccount};
use crate::margin::meets;
use crate::market::{assign_series, assign_underlyings, list_hash};
use crate::merkle::update_with_cells;
use crate::portfolio::{account_margin_in_market, MarketView};
use crate::poseidon::PoseidonChip;
use crate::safe::Ranged;

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
    /// A transaction type whose gadget is not part of this circuit version yet.
    #[error("{0} transactions are not supported by this circuit version yet")]
    Unsupported(&'static str),
    /// The witness is inconsistent with itself (a bug in the caller).
    #[error("inconsistent witness: {0}")]
    Inconsistent(&'static str),
}

/// One slot of the batch: the account write and, for a deposit, the transaction.
#[derive(Clone, Debug)]
pub struct SlotWitness {
    /// The deposit or withdrawal, or `None` for a padding slot.
    pub tx: Option<Tx>,
    /// Account id written (the fee account, unchanged, for padding).
    pub account: u64,
    /// The account before.
    pub before: Account,
    /// The account after.
    pub after: Account,
    /// Merkle siblings of the write, leaf level first.
    pub siblings: Vec<Fr>,
}

/// Everything the batch circuit consumes: typed witness built natively, never re-derived.
#[derive(Clone, Debug)]
pub struct BatchWitness {
    /// Shape parameters (depths, capacities).
    pub params: ProtocolParams,
    /// Header before the batch.
    pub header_before: StateHeader,
    /// Series registry before the batch.
    pub series: Vec<Series>,
    /// Underlyings before the batch.
    pub underlyings: Vec<Underlying>,
    /// Exactly `capacity` slots: the transactions, then padding.
    pub slots: Vec<SlotWitness>,
    /// Batch number (public input 7).
    pub batch_number: u64,
}

impl BatchWitness {
    /// Builds the witness of `batch` executed on `before` (the state the batch started from),
    /// padded to `capacity` slots with identity writes of the fee account.
    pub fn new(
        before: &State,
        batch: &ExecutedBatch,
        capacity: usize,
    ) -> Result<Self, BatchCircuitError> {
        if batch.witnesses.len() > capacity {
            return Err(BatchCircuitError::OverCapacity {
                txs: batch.witnesses.len(),
                capacity,
            });
        }
        let mut after = before.clone();
        let mut slots = Vec::with_capacity(capacity);
        for w in &batch.witnesses {
            slots.push(slot_of(w)?);
            after
                .apply(&w.tx)
                .map_err(|_| BatchCircuitError::Inconsistent("batch does not replay"))?;
        }
        let fee = collar_protocol::FEE_ACCOUNT;
        let proof = after
            .account_proof(fee)
            .map_err(|_| BatchCircuitError::Inconsistent("fee account"))?;
        let fee_account = after
            .account(fee)
            .cloned()
            .ok_or(BatchCircuitError::Inconsistent("fee account"))?;
        while slots.len() < capacity {
            slots.push(SlotWitness {
                tx: None,
                account: fee,
                before: fee_account.clone(),
                after: fee_account.clone(),
                siblings: proof.siblings.clone(),
            });
        }
        let mut b = before.clone();
        Ok(Self {
            params: before.params().clone(),
            header_before: b.header(),
            series: before.series().to_vec(),
            underlyings: before.underlyings().to_vec(),
            slots,
            batch_number: batch.public_inputs.batch_number,
        })
    }
}

fn slot_of(w: &TxWitness) -> Result<SlotWitness, BatchCircuitError> {
    match &w.tx {
        Tx::Deposit(_) | Tx::Withdraw(_) => {
            let u = w
                .account_updates
                .first()
                .ok_or(BatchCircuitError::Inconsistent(
                    "deposits and withdrawals write one account",
                ))?;
            Ok(SlotWitness {
                tx: Some(w.tx.clone()),
                account: u.account,
                before: u.before.clone(),
                after: u.after.clone(),
                siblings: u.merkle.siblings.clone(),
            })
        }
        other => Err(BatchCircuitError::Unsupported(other.kind())),
    }
}

/// `(a - b)·sel == 0`: `a == b` whenever the selector is on.
fn eq_if(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    a: AssignedValue<Fr>,
    b: AssignedValue<Fr>,
    sel: AssignedValue<Fr>,
) {
    let d = gate.sub(ctx, a, b);
    let p = gate.mul(ctx, d, sel);
    gate.assert_is_const(ctx, &p, &Fr::zero());
}

/// Constrains every field of `after` equal to `before` under `sel`, except collateral and
/// public key, which the caller handles.
fn unchanged_except_balance(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    before: &AssignedAccount,
    after: &AssignedAccount,
    sel: AssignedValue<Fr>,
) {
    eq_if(ctx, gate, after.nonce.cell(), before.nonce.cell(), sel);
    eq_if(ctx, gate, after.orders_root, before.orders_root, sel);
    for (a, b) in after.positions.iter().zip(&before.positions) {
        eq_if(ctx, gate, a.word, b.word, sel);
    }
}

/// Whether any held position of `acc` is on an underlying whose breaker halts risk at `now`:
/// `now < tripped_until` or `now - last_update > stale_after` (PROTOCOL.md §9).
///
/// Assumes every underlying's `last_update <= now` (a state invariant: ticks set both).
fn any_position_halted(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    acc: &AssignedAccount,
    view: &MarketView<'_>,
    now: &Ranged,
) -> AssignedValue<Fr> {
    let gate = range.gate();
    let mut any = ctx.load_zero();
    let underlyings: Vec<Ranged> = view.series.iter().map(|s| s.underlying).collect();
    for p in &acc.positions {
        let u = Ranged::select_from_idx(ctx, gate, &underlyings, p.series.cell());
        let pick = |ctx: &mut Context<Fr>,
                    f: &dyn Fn(&crate::market::AssignedUnderlying) -> Ranged| {
            let c: Vec<Ranged> = view.underlyings.iter().map(f).collect();
            Ranged::select_from_idx(ctx, gate, &c, u.cell())
        };
        let tripped_until = pick(ctx, &|x| x.tripped_until);
        let last_update = pick(ctx, &|x| x.last_update);
        let stale_after = pick(ctx, &|x| x.durations[0]);
        let tripped = now.is_lt(ctx, range, &tripped_until);
        let age = gate.sub(ctx, now.cell(), last_update.cell());
        let age = Ranged::check(ctx, range, age, bounds::TIME_BITS);
        let stale = stale_after.is_lt(ctx, range, &age);
        let halted = gate.or(ctx, tripped, stale);
        let held = gate.not(ctx, p.empty);
        let counts = gate.and(ctx, halted, held);
        any = gate.or(ctx, any, counts);
    }
    any
}

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

/// Builds the batch circuit in `ctx` and returns the eight public inputs of §11 in order.
pub fn build_batch(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    w: &BatchWitness,
) -> Vec<AssignedValue<Fr>> {
    let gate = range.gate();
    let p = &w.params;
    let poseidon = PoseidonChip::new(ctx, gate);

    // Header in: the market lists are hashed from their entries, the rest is witnessed and bound
    // by the old root.
    let series = assign_series(ctx, range, &poseidon, &w.series, p.max_series);
    let unds = assign_underlyings(ctx, range, &poseidon, &w.underlyings, p.max_underlyings);
    let h = &w.header_before;
    let before = HeaderCells {
        accounts_root: ctx.load_witness(h.accounts_root),
        series_hash: list_hash(ctx, gate, &poseidon, series.iter().map(|s| s.leaf)),
        underlyings_hash: list_hash(ctx, gate, &poseidon, unds.iter().map(|u| u.leaf)),
        oracles_hash: ctx.load_witness(h.oracles_hash),
        params_hash: ctx.load_witness(h.params_hash),
        time: Ranged::load(ctx, range, Fr::from(h.time), bounds::TIME_BITS).cell(),
        deposit_head: ctx.load_witness(h.deposit_head),
        deposit_count: Ranged::load(ctx, range, Fr::from(h.deposit_count), 64).cell(),
    };
    let old_root = before.root(ctx, gate, &poseidon);

    let mut accounts_root = before.accounts_root;
    let mut deposit_head = before.deposit_head;
    let mut deposit_count = before.deposit_count;
    let mut pubdata = ctx.load_zero();
    let mut withdrawals = ctx.load_zero();
    let zero = ctx.load_zero();
    let one = ctx.load_constant(Fr::one());
    let now = Ranged::check(ctx, range, before.time, bounds::TIME_BITS);
    let view = MarketView::new(ctx, gate, &series, &unds);
    let withdrawal_tag = ctx.load_constant(domain_tag(tags::WITHDRAWAL_CHAIN));
    let withdraw_type = ctx.load_constant(Fr::from(u64::from(record::WITHDRAW)));
    let deposit_tag = ctx.load_constant(domain_tag(tags::DEPOSIT));
    let pubdata_tag = ctx.load_constant(domain_tag(tags::PUBDATA));
    let deposit_type = ctx.load_constant(Fr::from(u64::from(record::DEPOSIT)));
    let curve_b = ctx.load_constant(Fr::from(17u64));

    for slot in &w.slots {
        let is_deposit =
            ctx.load_witness(Fr::from(u64::from(matches!(slot.tx, Some(Tx::Deposit(_))))));
        let is_withdraw = ctx.load_witness(Fr::from(u64::from(matches!(
            slot.tx,
            Some(Tx::Withdraw(_))
        ))));
        gate.assert_bit(ctx, is_deposit);
        gate.assert_bit(ctx, is_withdraw);
        let active = gate.add(ctx, is_deposit, is_withdraw);
        gate.assert_bit(ctx, active);
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

        // The write: both leaves from their preimages, one Merkle update chained on the root.
        let index = Ranged::load(ctx, range, Fr::from(slot.account), p.account_depth as u32);
        let b = assign_account(ctx, range, &poseidon, &slot.before, p.order_slot_depth);
        let a = assign_account(ctx, range, &poseidon, &slot.after, p.order_slot_depth);
        let upd = update_with_cells(
            ctx,
            range,
            &poseidon,
            index.cell(),
            b.leaf,
            a.leaf,
            &slot.siblings,
        );
        ctx.constrain_equal(&upd.old_root, &accounts_root);
        accounts_root = upd.new_root;

        // Padding: the write is the identity.
        let is_noop = gate.not(ctx, active);
        eq_if(ctx, gate, a.leaf, b.leaf, is_noop);

        // §7.1 Deposit (the amount is shared with §7.2: positive, below 2^63).
        let amount = Ranged::load(ctx, range, Fr::from(amount_value), bounds::AMOUNT_BITS);
        let amount_zero = gate.is_zero(ctx, amount.cell());
        eq_if(ctx, gate, amount_zero, zero, active);
        let pk = [ctx.load_witness(dep_pk.x), ctx.load_witness(dep_pk.y)];
        // New account: bound to the deposit's key, which must be on y^2 = x^3 - 17; existing
        // account: key unchanged.
        for ((after_key, before_key), dep_key) in a.pubkey.iter().zip(&b.pubkey).zip(&pk) {
            let key = gate.select(ctx, *before_key, *dep_key, b.exists);
            eq_if(ctx, gate, *after_key, key, is_deposit);
        }
        let y2 = gate.mul(ctx, pk[1], pk[1]);
        let x2 = gate.mul(ctx, pk[0], pk[0]);
        let x3 = gate.mul(ctx, x2, pk[0]);
        let lhs = gate.add(ctx, y2, curve_b);
        let creates = gate.sub(ctx, is_deposit, b.exists);
        let creates = gate.mul(ctx, creates, is_deposit);
        eq_if(ctx, gate, lhs, x3, creates);
        let credited = gate.add(ctx, b.collateral.cell(), amount.cell());
        eq_if(ctx, gate, a.collateral.cell(), credited, is_deposit);
        unchanged_except_balance(ctx, gate, &b, &a, is_deposit);

        // Deposit-queue chain and public-data chain advance only for a deposit.
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
        deposit_head = gate.select(ctx, next, deposit_head, is_deposit);
        deposit_count = gate.add(ctx, deposit_count, is_deposit);
        let rec = poseidon.hash(
            ctx,
            gate,
            &[deposit_type, index.cell(), pk[0], pk[1], amount.cell()],
        );
        let next = poseidon.hash(ctx, gate, &[pubdata_tag, pubdata, rec]);
        pubdata = gate.select(ctx, next, pubdata, is_deposit);

        // §7.2 Withdraw: an existing account, its nonce, no halted underlying among its
        // positions, the debit (the 63-bit range check of the new collateral rules out going
        // below zero), and initial margin afterwards.
        let nonce = Ranged::load(ctx, range, Fr::from(wd_nonce), bounds::NONCE_BITS);
        let recipient = Ranged::load(ctx, range, wd_recipient, 160);
        eq_if(ctx, gate, b.exists, one, is_withdraw);
        eq_if(ctx, gate, nonce.cell(), b.nonce.cell(), is_withdraw);
        let bumped = gate.add(ctx, b.nonce.cell(), one);
        eq_if(ctx, gate, a.nonce.cell(), bumped, is_withdraw);
        let debited = gate.sub(ctx, b.collateral.cell(), amount.cell());
        eq_if(ctx, gate, a.collateral.cell(), debited, is_withdraw);
        for (x, y) in a.pubkey.iter().zip(&b.pubkey) {
            eq_if(ctx, gate, *x, *y, is_withdraw);
        }
        eq_if(ctx, gate, a.orders_root, b.orders_root, is_withdraw);
        for (x, y) in a.positions.iter().zip(&b.positions) {
            eq_if(ctx, gate, x.word, y.word, is_withdraw);
        }
        let halted = any_position_halted(ctx, range, &b, &view, &now);
        eq_if(ctx, gate, halted, zero, is_withdraw);
        let m = account_margin_in_market(ctx, range, &a, &view);
        let meets_initial = meets(ctx, range, &m.im_equity, &m.initial);
        eq_if(ctx, gate, meets_initial, one, is_withdraw);
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
        withdrawals = gate.select(ctx, next, withdrawals, is_withdraw);
        let rec = poseidon.hash(
            ctx,
            gate,
            &[
                withdraw_type,
                index.cell(),
                amount.cell(),
                nonce.cell(),
                recipient.cell(),
            ],
        );
        let next = poseidon.hash(ctx, gate, &[pubdata_tag, pubdata, rec]);
        pubdata = gate.select(ctx, next, pubdata, is_withdraw);
    }
    // The count stays a 64-bit value (§7.1).
    range.range_check(ctx, deposit_count, 64);

    let after = HeaderCells {
        accounts_root,
        deposit_head,
        deposit_count,
        ..before
    };
    let new_root = after.root(ctx, gate, &poseidon);
    let batch_number = ctx.load_witness(Fr::from(w.batch_number));
    range.range_check(ctx, batch_number, 64);
    vec![
        old_root,
        new_root,
        pubdata,
        zero,
        before.deposit_head,
        deposit_head,
        withdrawals,
        batch_number,
    ]
}
