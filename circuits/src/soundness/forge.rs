//! The malicious prover's edits: seeded rewrites of everything a cheating prover controls in a
//! batch witness, for the soundness campaign (docs/CIRCUIT.md, "Soundness").
//!
//! A **structured** edit rewrites one field and then re-derives what the witness builder
//! derives from it ([`BatchWitness::reseal`]: every port's `before` value, its order-slot path,
//! the account table's entries and write-back paths), so the forged witness is consistent as
//! Merkle paths and memory, and only a missing rule constraint can let it through. Some edits
//! are also re-signed with the test keys ([`signer_key`]), which models a prover that colludes
//! with the signers: the rules, not the signatures, must then stop it. Table, tick-lane and
//! header edits are left unsealed (resealing would undo them).

use collar_protocol::account::{OrderSlot, Position};
use collar_protocol::testkit::signer_key;
use collar_protocol::tx::Side;
use collar_protocol::{Account, PublicKey, State, Tx};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::Field;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::batch::BatchWitness;

/// One forged witness and what was done to it.
#[derive(Clone, Debug)]
pub struct Forgery {
    /// The edit, in words (slot, port, field, value), enough to rebuild it by hand.
    pub what: String,
    /// The forged witness.
    pub witness: BatchWitness,
}

/// The families of edits, drawn uniformly by [`forge`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// One field of one port's written account (any slot, padding included), resealed.
    PortWrite,
    /// One field of a slot's transaction, resealed, re-signed half of the time.
    TxField,
    /// A transaction field and a port write of the same slot together, resealed and re-signed.
    TxAndPort,
    /// A slot's type: a transaction dropped to padding with its writes kept, a transaction
    /// copied into a padding slot, two slots swapped.
    SlotType,
    /// The position slot a port's move names.
    PositionSlot,
    /// The tick lane: reports, medians, timestamp, signatures.
    Tick,
    /// The account table's entries, unsealed.
    Table,
    /// The header, registry and batch number the circuit opens.
    Header,
    /// A slot's signatures.
    Signature,
}

/// Every family, in the order [`forge`] draws from.
pub const FAMILIES: [Family; 9] = [
    Family::PortWrite,
    Family::TxField,
    Family::TxAndPort,
    Family::SlotType,
    Family::PositionSlot,
    Family::Tick,
    Family::Table,
    Family::Header,
    Family::Signature,
];

/// A forged copy of `honest` (built on `before`) by one edit of `family`, or `None` when the
/// drawn edit does not apply (no such slot, a no-op, or the ports would overflow the table).
pub fn forge(
    honest: &BatchWitness,
    before: &State,
    family: Family,
    rng: &mut impl Rng,
) -> Option<Forgery> {
    let mut w = honest.clone();
    let what = match family {
        Family::PortWrite => port_write(&mut w, before, rng)?,
        Family::TxField => {
            let s = pick_tx_slot(&w, rng)?;
            let what = tx_field(&mut w, s, before, rng)?;
            if rng.gen_bool(0.5) {
                w.resign_with(signer_key);
                format!("{what}, re-signed")
            } else {
                what
            }
        }
        Family::TxAndPort => {
            let s = pick_tx_slot(&w, rng)?;
            let a = tx_field(&mut w, s, before, rng)?;
            let p = rng.gen_range(0..w.slots[s].ports.len());
            let b = account_edit(&mut w.slots[s].ports[p].after, before, rng);
            w.resign_with(signer_key);
            format!("{a}; port {p} after: {b}; re-signed")
        }
        Family::SlotType => slot_type(&mut w, rng)?,
        Family::PositionSlot => {
            let s = rng.gen_range(0..w.slots.len());
            let p = rng.gen_range(0..w.slots[s].ports.len());
            let n = w.params.max_positions;
            let port = &mut w.slots[s].ports[p];
            let old = port.position_slot;
            port.position_slot = (old + rng.gen_range(1..n.max(2))) % n.max(2);
            format!(
                "slot {s} port {p}: position_slot {old} -> {}",
                port.position_slot
            )
        }
        Family::Tick => tick(&mut w, rng)?,
        Family::Table => table(&mut w, rng)?,
        Family::Header => header(&mut w, rng)?,
        Family::Signature => signature(&mut w, rng)?,
    };
    if matches!(
        family,
        Family::PortWrite | Family::TxField | Family::TxAndPort | Family::SlotType
    ) {
        w.reseal(before).ok()?;
    }
    Some(Forgery { what, witness: w })
}

/// A value near `v`: ±1, ±a random step, 0, the 63- or 40-bit edge, or random below `2^bits`.
fn nudge(v: u64, bits: u32, rng: &mut impl Rng) -> u64 {
    let top = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    match rng.gen_range(0..8) {
        0 => v.wrapping_add(1),
        1 => v.wrapping_sub(1),
        2 => v.wrapping_add(rng.gen_range(2..1_000_000)),
        3 => v.saturating_sub(rng.gen_range(2..1_000_000)),
        4 => 0,
        5 => top,
        6 => top.wrapping_add(1),
        _ => rng.gen_range(0..=top),
    }
}

fn pick_tx_slot(w: &BatchWitness, rng: &mut impl Rng) -> Option<usize> {
    let slots: Vec<usize> = (0..w.slots.len())
        .filter(|&s| w.slots[s].tx.is_some())
        .collect();
    slots.choose(rng).copied()
}

/// An account id the batch may name: an existing account, a fresh one, or the tree's last.
fn some_account(before: &State, depth: usize, rng: &mut impl Rng) -> u64 {
    let ids: Vec<u64> = before.accounts().map(|(id, _)| id).collect();
    match rng.gen_range(0..4) {
        0 => ids.iter().max().map_or(0, |m| m + 1),
        1 => (1u64 << depth) - 1,
        _ => ids.choose(rng).copied().unwrap_or(0),
    }
}

/// A valid key that is not `k`.
fn other_key(before: &State, k: &PublicKey, rng: &mut impl Rng) -> PublicKey {
    let keys: Vec<PublicKey> = before
        .accounts()
        .map(|(_, a)| a.pubkey)
        .filter(|p| p != k && *p != PublicKey::ZERO)
        .collect();
    keys.choose(rng)
        .copied()
        .unwrap_or_else(|| signer_key(&collar_protocol::tx::Signer::Account(999)).public_key())
}

/// Rewrites one field of `acc`; returns what it did.
fn account_edit(acc: &mut Account, before: &State, rng: &mut impl Rng) -> String {
    match rng.gen_range(0..8) {
        0 | 1 => {
            let old = acc.collateral;
            acc.collateral = nudge(old, 63, rng);
            format!("collateral {old} -> {}", acc.collateral)
        }
        2 => {
            let old = acc.nonce;
            acc.nonce = nudge(old, 32, rng);
            format!("nonce {old} -> {}", acc.nonce)
        }
        3 => {
            let old = acc.pubkey;
            acc.pubkey = other_key(before, &old, rng);
            "pubkey replaced by another account's".into()
        }
        4 | 5 => {
            let j = rng.gen_range(0..acc.positions.len().max(1));
            let Some(p) = acc.positions.get_mut(j) else {
                return "no position slot".into();
            };
            let old = *p;
            let series = before.series().len().max(1) as u32;
            match rng.gen_range(0..3) {
                0 => p.size = p.size.wrapping_add(if rng.gen_bool(0.5) { 1 } else { -1 }),
                1 => p.size = rng.gen_range(-1_000..1_000),
                _ => p.series = rng.gen_range(0..series),
            }
            if p.size == 0 {
                *p = Position::default();
            }
            format!("position slot {j} {old:?} -> {p:?}")
        }
        6 => {
            let slot = rng.gen_range(0..4u64);
            let e = acc.orders.entry(slot).or_default();
            let old = *e;
            *e = OrderSlot {
                order_id: old.order_id + rng.gen_range(0..2),
                filled: nudge(old.filled, 40, rng),
            };
            format!("order slot {slot} {old:?} -> {e:?}")
        }
        _ => {
            let fresh = Account::new(PublicKey::ZERO, acc.positions.len());
            if acc.pubkey == PublicKey::ZERO {
                acc.pubkey = other_key(before, &PublicKey::ZERO, rng);
                acc.collateral = rng.gen_range(1..1_000_000);
                "an absent account created with collateral".into()
            } else {
                *acc = fresh;
                "the account deleted".into()
            }
        }
    }
}

fn port_write(w: &mut BatchWitness, before: &State, rng: &mut impl Rng) -> Option<String> {
    let s = rng.gen_range(0..w.slots.len());
    let p = rng.gen_range(0..w.slots[s].ports.len());
    let kind = w.slots[s].tx.as_ref().map_or("padding", Tx::kind);
    if rng.gen_range(0..5) == 0 {
        // The port names another account, written with that account's current value plus an
        // edit (an idle port may name any account, but must leave it unchanged).
        let id = some_account(before, w.params.account_depth, rng);
        let port = &mut w.slots[s].ports[p];
        let old = port.account;
        port.account = id;
        port.after = before
            .account(id)
            .cloned()
            .unwrap_or_else(|| Account::new(PublicKey::ZERO, w.params.max_positions));
        let original = port.after.clone();
        let e = if rng.gen_bool(0.5) {
            account_edit(&mut port.after, before, rng)
        } else {
            "unchanged".into()
        };
        carry(w, s, p, &original);
        return Some(format!(
            "slot {s} ({kind}) port {p}: account {old} -> {id}, written {e}"
        ));
    }
    let original = w.slots[s].ports[p].after.clone();
    let e = account_edit(&mut w.slots[s].ports[p].after, before, rng);
    carry(w, s, p, &original);
    Some(format!("slot {s} ({kind}) port {p} after: {e}"))
}

/// Carries the forged write of port `p` of slot `s` through the ports after it that name the
/// same account and only pass its value on (`after == original`, idle writes), up to the next
/// real write: without this, the next idle port would write the honest value back and the
/// forgery would undo itself.
fn carry(w: &mut BatchWitness, s: usize, p: usize, original: &Account) {
    let (id, forged) = {
        let port = &w.slots[s].ports[p];
        (port.account, port.after.clone())
    };
    let later = w
        .slots
        .iter_mut()
        .enumerate()
        .flat_map(|(i, slot)| {
            slot.ports
                .iter_mut()
                .enumerate()
                .map(move |(j, x)| (i, j, x))
        })
        .filter(|(i, j, x)| (*i, *j) > (s, p) && x.account == id);
    for (_, _, port) in later {
        if port.after != *original {
            break;
        }
        port.after = forged.clone();
    }
}

fn tx_field(w: &mut BatchWitness, s: usize, before: &State, rng: &mut impl Rng) -> Option<String> {
    let depth = w.params.account_depth;
    let tx = w.slots[s].tx.as_mut()?;
    let kind = tx.kind();
    let series = before.series().len().max(1) as u32;
    let d = match tx {
        Tx::Deposit(d) => match rng.gen_range(0..3) {
            0 => {
                d.amount = nudge(d.amount, 63, rng);
                format!("amount -> {}", d.amount)
            }
            1 => {
                d.account = some_account(before, depth, rng);
                format!("account -> {}", d.account)
            }
            _ => {
                d.pubkey = other_key(before, &d.pubkey, rng);
                "pubkey -> another".into()
            }
        },
        Tx::Withdraw(x) => match rng.gen_range(0..4) {
            0 => {
                x.amount = nudge(x.amount, 63, rng);
                format!("amount -> {}", x.amount)
            }
            1 => {
                x.nonce = nudge(x.nonce, 32, rng);
                format!("nonce -> {}", x.nonce)
            }
            2 => {
                x.account = some_account(before, depth, rng);
                format!("account -> {}", x.account)
            }
            _ => {
                x.recipient.0[rng.gen_range(0..20)] ^= 1;
                "recipient bit".into()
            }
        },
        Tx::Trade(t) => {
            let o = if rng.gen_bool(0.5) {
                &mut t.buy
            } else {
                &mut t.sell
            };
            match rng.gen_range(0..10) {
                0 => {
                    t.size = nudge(t.size, 40, rng);
                    format!("size -> {}", t.size)
                }
                1 => {
                    t.price = nudge(t.price, 64, rng);
                    format!("price -> {}", t.price)
                }
                2 => {
                    o.account = some_account(before, depth, rng);
                    format!("order account -> {}", o.account)
                }
                3 => {
                    o.series = rng.gen_range(0..series + 1);
                    format!("order series -> {}", o.series)
                }
                4 => {
                    o.side = match o.side {
                        Side::Buy => Side::Sell,
                        Side::Sell => Side::Buy,
                    };
                    "order side flipped".into()
                }
                5 => {
                    o.limit_price = nudge(o.limit_price, 64, rng);
                    format!("limit_price -> {}", o.limit_price)
                }
                6 => {
                    o.max_size = nudge(o.max_size, 40, rng);
                    format!("max_size -> {}", o.max_size)
                }
                7 => {
                    o.order_id = nudge(o.order_id, 32, rng);
                    format!("order_id -> {}", o.order_id)
                }
                8 => {
                    o.expiry = nudge(o.expiry, 40, rng);
                    format!("expiry -> {}", o.expiry)
                }
                _ => {
                    o.max_fee_bps = nudge(o.max_fee_bps, 14, rng);
                    format!("max_fee_bps -> {}", o.max_fee_bps)
                }
            }
        }
        Tx::Liquidate(l) => match rng.gen_range(0..7) {
            0 => {
                l.size = nudge(l.size, 40, rng);
                format!("size -> {}", l.size)
            }
            1 => {
                l.order.liquidator = some_account(before, depth, rng);
                format!("liquidator -> {}", l.order.liquidator)
            }
            2 => {
                l.order.victim = some_account(before, depth, rng);
                format!("victim -> {}", l.order.victim)
            }
            3 => {
                l.order.series = rng.gen_range(0..series + 1);
                format!("series -> {}", l.order.series)
            }
            4 => {
                l.order.max_size = nudge(l.order.max_size, 40, rng);
                format!("max_size -> {}", l.order.max_size)
            }
            5 => {
                l.order.limit_price = nudge(l.order.limit_price, 64, rng);
                format!("limit_price -> {}", l.order.limit_price)
            }
            _ => {
                l.order.nonce = nudge(l.order.nonce, 32, rng);
                format!("nonce -> {}", l.order.nonce)
            }
        },
        Tx::SettleExpiry(x) => {
            if rng.gen_bool(0.5) {
                x.account = some_account(before, depth, rng);
                format!("account -> {}", x.account)
            } else {
                x.series = rng.gen_range(0..series + 1);
                format!("series -> {}", x.series)
            }
        }
        Tx::RegisterSeries(r) => match rng.gen_range(0..4) {
            0 => {
                r.strike = nudge(r.strike, 48, rng);
                format!("strike -> {}", r.strike)
            }
            1 => {
                r.expiry = nudge(r.expiry, 40, rng);
                format!("expiry -> {}", r.expiry)
            }
            2 => {
                r.contract_size = nudge(r.contract_size, 16, rng);
                format!("contract_size -> {}", r.contract_size)
            }
            _ => {
                r.underlying = rng.gen_range(0..4);
                format!("underlying -> {}", r.underlying)
            }
        },
        Tx::OracleTick(_) => return None,
    };
    Some(format!("slot {s} ({kind}): {d}"))
}

fn slot_type(w: &mut BatchWitness, rng: &mut impl Rng) -> Option<String> {
    let s = rng.gen_range(0..w.slots.len());
    match rng.gen_range(0..3) {
        0 => {
            let tx = w.slots[s].tx.take()?;
            w.slots[s].signatures.clear();
            Some(format!(
                "slot {s}: the {} dropped to padding, its writes kept",
                tx.kind()
            ))
        }
        1 => {
            let from = pick_tx_slot(w, rng)?;
            let pad = (0..w.slots.len()).find(|&p| w.slots[p].tx.is_none())?;
            w.slots[pad].tx = w.slots[from].tx.clone();
            w.slots[pad].signatures = w.slots[from].signatures.clone();
            Some(format!(
                "padding slot {pad} carries slot {from}'s transaction, ports idle"
            ))
        }
        _ => {
            let t = rng.gen_range(0..w.slots.len());
            if t == s {
                return None;
            }
            w.slots.swap(s, t);
            Some(format!("slots {s} and {t} swapped"))
        }
    }
}

fn tick(w: &mut BatchWitness, rng: &mut impl Rng) -> Option<String> {
    w.tick.as_ref()?;
    if rng.gen_range(0..12) == 0 {
        w.tick = None;
        return Some("the tick lane emptied".into());
    }
    let t = w.tick.as_mut()?;
    let l = &mut t.layout;
    let u = rng.gen_range(0..l.priced.len());
    let o = rng.gen_range(0..l.spots[u].len());
    let s = rng.gen_range(0..l.quoted.len());
    Some(match rng.gen_range(0..9) {
        0 => {
            let old = l.spots[u][o];
            l.spots[u][o] = nudge(old, 48, rng);
            format!("spot ({u}, {o}) {old} -> {}", l.spots[u][o])
        }
        1 => {
            let old = t.spot_median[u];
            t.spot_median[u] = nudge(old, 48, rng);
            format!("median spot {u} {old} -> {}", t.spot_median[u])
        }
        2 => {
            let old = t.mark_median[s];
            t.mark_median[s] = nudge(old, 64, rng);
            format!("median mark {s} {old} -> {}", t.mark_median[s])
        }
        3 => {
            let old = l.marks[s][o];
            l.marks[s][o] = nudge(old, 64, rng);
            format!("mark ({s}, {o}) {old} -> {}", l.marks[s][o])
        }
        4 => {
            let old = l.timestamp;
            l.timestamp = nudge(old, 40, rng);
            format!("timestamp {old} -> {}", l.timestamp)
        }
        5 => {
            l.priced[u] = !l.priced[u];
            format!("priced {u} flipped")
        }
        6 => {
            let old = l.quoted[s];
            l.quoted[s] = rng.gen_range(0..l.priced.len() as u64 + 1);
            format!("quoted {s} {old} -> {}", l.quoted[s])
        }
        7 => {
            let old = t.signatures[u][o].take();
            let other = t.signatures.iter().flatten().flatten().next().cloned();
            t.signatures[u][o] = if old.is_some() { other } else { None };
            format!("signature ({u}, {o}) replaced")
        }
        _ => {
            let p = rng.gen_range(0..t.signatures.len());
            let q = rng.gen_range(0..t.signatures[p].len());
            let sig = t.signatures[p][q].as_mut()?;
            sig.s[31] ^= 1;
            format!("signature ({p}, {q}) s flipped")
        }
    })
}

fn table(w: &mut BatchWitness, rng: &mut impl Rng) -> Option<String> {
    let n = w.accounts.len();
    let j = rng.gen_range(0..n);
    let e = &mut w.accounts[j];
    Some(match rng.gen_range(0..6) {
        0 => {
            let old = e.account;
            e.account = nudge(old, w.params.account_depth as u32, rng);
            format!("entry {j} id {old} -> {}", e.account)
        }
        1 => {
            e.opened += Fr::one();
            format!("entry {j} opened leaf + 1")
        }
        2 => {
            e.closed = Fr::random(&mut *rng);
            format!("entry {j} closed leaf random")
        }
        3 => {
            let i = rng.gen_range(0..e.siblings.len());
            e.siblings[i] += Fr::one();
            format!("entry {j} sibling {i} + 1")
        }
        4 => {
            let k = rng.gen_range(0..n);
            if k == j {
                return None;
            }
            w.accounts.swap(j, k);
            format!("entries {j} and {k} swapped")
        }
        _ => {
            let k = rng.gen_range(0..n);
            if k == j {
                return None;
            }
            w.accounts[k] = w.accounts[j].clone();
            format!("entry {k} duplicates entry {j}")
        }
    })
}

fn header(w: &mut BatchWitness, rng: &mut impl Rng) -> Option<String> {
    Some(match rng.gen_range(0..6) {
        0 => {
            let old = w.header_before.time;
            w.header_before.time = nudge(old, 40, rng);
            format!("header time {old} -> {}", w.header_before.time)
        }
        1 => {
            w.header_before.deposit_count += 1;
            "header deposit_count + 1".into()
        }
        2 => {
            let s = w.series.choose_mut(rng)?;
            let old = s.mark;
            s.mark = nudge(old, 64, rng);
            format!("series mark {old} -> {}", s.mark)
        }
        3 => {
            let u = w.underlyings.choose_mut(rng)?;
            let old = u.spot;
            u.spot = nudge(old, 48, rng);
            format!("underlying spot {old} -> {}", u.spot)
        }
        4 => {
            w.header_before.accounts_root = Fr::random(&mut *rng);
            "header accounts_root random".into()
        }
        _ => {
            let old = w.batch_number;
            w.batch_number = nudge(old, 64, rng);
            format!("batch_number {old} -> {}", w.batch_number)
        }
    })
}

fn signature(w: &mut BatchWitness, rng: &mut impl Rng) -> Option<String> {
    let s = pick_tx_slot(w, rng)?;
    let slot = &mut w.slots[s];
    let i = (0..slot.signatures.len()).collect::<Vec<_>>();
    let i = *i.choose(rng)?;
    let sig = &mut slot.signatures[i];
    Some(match rng.gen_range(0..3) {
        0 => {
            sig.s[rng.gen_range(0..32)] ^= 1 << rng.gen_range(0..8);
            format!("slot {s} signature {i}: s bit flipped")
        }
        1 => {
            sig.r = [sig.r[0], -sig.r[1]];
            format!("slot {s} signature {i}: R negated")
        }
        _ => {
            let other = w
                .slots
                .iter()
                .flat_map(|x| x.signatures.iter())
                .find(|x| **x != w.slots[s].signatures[i])
                .cloned()?;
            w.slots[s].signatures[i] = other;
            format!("slot {s} signature {i}: another slot's")
        }
    })
}
