//! The fixed byte layout of a batch's public data (PROTOCOL.md §10): enough to rebuild the whole
//! state from genesis. Signatures are not part of it: the proof binds the signed fields.

use crate::field::{fr_from_be_bytes, fr_from_short_bytes, fr_to_be_bytes, Fr};
use crate::market::OptionKind;
use crate::params::ProtocolParams;
use crate::poseidon;
use crate::signature::PublicKey;
use crate::tx::{
    tags, Deposit, L1Address, Liquidate, LiquidationOrder, OracleReport, OracleTick, Order,
    RegisterSeries, SeriesMark, SettleExpiry, Side, Trade, Tx, UnderlyingTick, Withdraw,
};

/// Why bytes could not be encoded or decoded as public data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PubdataError {
    /// The bytes end inside a record.
    #[error("public data truncated at byte {0}")]
    Truncated(usize),
    /// The record type byte is unknown.
    #[error("unknown record type {0:#04x} at byte {1}")]
    UnknownType(u8, usize),
    /// An enum byte (side, option kind) is out of range.
    #[error("invalid {0} byte {1}")]
    BadEnum(&'static str, u8),
    /// A 32-byte field element is not below the modulus.
    #[error("non-canonical field element in {0}")]
    NonCanonical(&'static str),
    /// The reports of one underlying quote different numbers of marks.
    #[error("tick reports of one underlying must quote the same series")]
    InconsistentTick,
    /// A tick does not fit the fixed tick shape of the parameters (an index past a capacity, a
    /// zero spot, or an underlying, oracle or series listed twice); accepted ticks always fit.
    #[error("tick does not fit the fixed tick shape: {0}")]
    TickShape(&'static str),
    /// A value does not fit its fixed width (only accepted transactions can be encoded).
    #[error("{field} = {value} does not fit {bytes} bytes")]
    TooWide {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The width.
        bytes: usize,
    },
}

/// Record type bytes (§10).
pub mod record {
    /// Deposit.
    pub const DEPOSIT: u8 = 0x01;
    /// Withdrawal.
    pub const WITHDRAW: u8 = 0x02;
    /// Trade.
    pub const TRADE: u8 = 0x03;
    /// Liquidation.
    pub const LIQUIDATE: u8 = 0x04;
    /// Expiry settlement.
    pub const SETTLE: u8 = 0x05;
    /// Oracle tick.
    pub const TICK: u8 = 0x06;
    /// Series registration.
    pub const REGISTER: u8 = 0x07;
}

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn uint(&mut self, field: &'static str, v: u64, bytes: usize) -> Result<(), PubdataError> {
        if bytes < 8 && v >> (8 * bytes) != 0 {
            return Err(PubdataError::TooWide {
                field,
                value: v,
                bytes,
            });
        }
        self.0.extend_from_slice(&v.to_be_bytes()[8 - bytes..]);
        Ok(())
    }
    fn fr(&mut self, f: &Fr) {
        self.0.extend_from_slice(&fr_to_be_bytes(f));
    }
    fn order(&mut self, o: &Order) -> Result<(), PubdataError> {
        self.uint("order account", o.account, 4)?;
        self.uint("order series", o.series.into(), 2)?;
        self.uint("order side", o.side.code(), 1)?;
        self.uint("order limit_price", o.limit_price, 8)?;
        self.uint("order max_size", o.max_size, 5)?;
        self.uint("order id", o.order_id, 4)?;
        self.uint("order expiry", o.expiry, 5)?;
        self.uint("order max_fee_bps", o.max_fee_bps, 2)
    }
}

/// Appends the record of `tx` to `out` (§10).
pub fn encode_into(tx: &Tx, out: &mut Vec<u8>) -> Result<(), PubdataError> {
    let start = out.len();
    let mut w = Writer(out);
    let r = encode_record(tx, &mut w);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn encode_record(tx: &Tx, w: &mut Writer<'_>) -> Result<(), PubdataError> {
    match tx {
        Tx::Deposit(d) => {
            w.uint("type", record::DEPOSIT.into(), 1)?;
            w.uint("account", d.account, 4)?;
            w.fr(&d.pubkey.x);
            w.fr(&d.pubkey.y);
            w.uint("amount", d.amount, 8)
        }
        Tx::Withdraw(x) => {
            w.uint("type", record::WITHDRAW.into(), 1)?;
            w.uint("account", x.account, 4)?;
            w.uint("amount", x.amount, 8)?;
            w.uint("nonce", x.nonce, 4)?;
            w.0.extend_from_slice(&x.recipient.0);
            Ok(())
        }
        Tx::Trade(t) => {
            w.uint("type", record::TRADE.into(), 1)?;
            w.uint("size", t.size, 5)?;
            w.uint("price", t.price, 8)?;
            w.order(&t.buy)?;
            w.order(&t.sell)
        }
        Tx::Liquidate(l) => {
            w.uint("type", record::LIQUIDATE.into(), 1)?;
            w.uint("size", l.size, 5)?;
            let o = &l.order;
            w.uint("liquidator", o.liquidator, 4)?;
            w.uint("victim", o.victim, 4)?;
            w.uint("series", o.series.into(), 2)?;
            w.uint("max_size", o.max_size, 5)?;
            w.uint("limit_price", o.limit_price, 8)?;
            w.uint("nonce", o.nonce, 4)
        }
        Tx::SettleExpiry(s) => {
            w.uint("type", record::SETTLE.into(), 1)?;
            w.uint("account", s.account, 4)?;
            w.uint("series", s.series.into(), 2)
        }
        Tx::OracleTick(t) => {
            w.uint("type", record::TICK.into(), 1)?;
            w.uint("timestamp", t.timestamp, 5)?;
            w.uint("underlying count", t.underlyings.len() as u64, 2)?;
            for u in &t.underlyings {
                w.uint("underlying", u.underlying.into(), 1)?;
                w.uint("report count", u.reports.len() as u64, 2)?;
                let series: Vec<u32> = u
                    .reports
                    .first()
                    .map(|r| r.marks.iter().map(|m| m.series).collect())
                    .unwrap_or_default();
                w.uint("mark count", series.len() as u64, 2)?;
                for s in &series {
                    w.uint("mark series", (*s).into(), 2)?;
                }
                for r in &u.reports {
                    w.uint("oracle", r.oracle.into(), 1)?;
                    w.uint("spot", r.spot, 6)?;
                    if r.marks.len() != series.len()
                        || r.marks.iter().zip(&series).any(|(m, s)| m.series != *s)
                    {
                        return Err(PubdataError::InconsistentTick);
                    }
                    for m in &r.marks {
                        w.uint("mark", m.mark, 8)?;
                    }
                }
            }
            Ok(())
        }
        Tx::RegisterSeries(r) => {
            w.uint("type", record::REGISTER.into(), 1)?;
            w.uint("underlying", r.underlying.into(), 1)?;
            w.uint("strike", r.strike, 6)?;
            w.uint("expiry", r.expiry, 5)?;
            w.uint("kind", r.kind.code(), 1)?;
            w.uint("contract_size", r.contract_size, 2)
        }
    }
}

/// The public data of a sequence of transactions.
pub fn encode_all<'a>(txs: impl IntoIterator<Item = &'a Tx>) -> Result<Vec<u8>, PubdataError> {
    let mut out = Vec::new();
    for tx in txs {
        encode_into(tx, &mut out)?;
    }
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PubdataError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or(PubdataError::Truncated(self.pos))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn uint(&mut self, n: usize) -> Result<u64, PubdataError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }
    fn u32(&mut self, n: usize) -> Result<u32, PubdataError> {
        Ok(self.uint(n)? as u32)
    }
    fn fr(&mut self, what: &'static str) -> Result<Fr, PubdataError> {
        let mut b = [0u8; 32];
        b.copy_from_slice(self.take(32)?);
        fr_from_be_bytes(&b).ok_or(PubdataError::NonCanonical(what))
    }
    fn side(&mut self) -> Result<Side, PubdataError> {
        match self.uint(1)? as u8 {
            0 => Ok(Side::Buy),
            1 => Ok(Side::Sell),
            b => Err(PubdataError::BadEnum("side", b)),
        }
    }
    fn order(&mut self) -> Result<Order, PubdataError> {
        Ok(Order {
            account: self.uint(4)?,
            series: self.u32(2)?,
            side: self.side()?,
            limit_price: self.uint(8)?,
            max_size: self.uint(5)?,
            order_id: self.uint(4)?,
            expiry: self.uint(5)?,
            max_fee_bps: self.uint(2)?,
        })
    }
}

/// Decodes public data back into transactions (§10).
pub fn decode_all(bytes: &[u8]) -> Result<Vec<Tx>, PubdataError> {
    let mut r = Reader { bytes, pos: 0 };
    let mut out = Vec::new();
    while r.pos < bytes.len() {
        let at = r.pos;
        let tx = match r.uint(1)? as u8 {
            record::DEPOSIT => Tx::Deposit(Deposit {
                account: r.uint(4)?,
                pubkey: PublicKey {
                    x: r.fr("pubkey.x")?,
                    y: r.fr("pubkey.y")?,
                },
                amount: r.uint(8)?,
            }),
            record::WITHDRAW => Tx::Withdraw(Withdraw {
                account: r.uint(4)?,
                amount: r.uint(8)?,
                nonce: r.uint(4)?,
                recipient: L1Address(r.take(20)?.try_into().expect("20 bytes")),
            }),
            record::TRADE => {
                let size = r.uint(5)?;
                let price = r.uint(8)?;
                Tx::Trade(Trade {
                    size,
                    price,
                    buy: r.order()?,
                    sell: r.order()?,
                })
            }
            record::LIQUIDATE => {
                let size = r.uint(5)?;
                Tx::Liquidate(Liquidate {
                    size,
                    order: LiquidationOrder {
                        liquidator: r.uint(4)?,
                        victim: r.uint(4)?,
                        series: r.u32(2)?,
                        max_size: r.uint(5)?,
                        limit_price: r.uint(8)?,
                        nonce: r.uint(4)?,
                    },
                })
            }
            record::SETTLE => Tx::SettleExpiry(SettleExpiry {
                account: r.uint(4)?,
                series: r.u32(2)?,
            }),
            record::TICK => {
                let timestamp = r.uint(5)?;
                let n = r.uint(2)?;
                let mut underlyings = Vec::new();
                for _ in 0..n {
                    let underlying = r.u32(1)?;
                    let n_reports = r.uint(2)?;
                    let n_marks = r.uint(2)?;
                    let series: Vec<u32> =
                        (0..n_marks).map(|_| r.u32(2)).collect::<Result<_, _>>()?;
                    let mut reports = Vec::new();
                    for _ in 0..n_reports {
                        let oracle = r.u32(1)?;
                        let spot = r.uint(6)?;
                        let marks = series
                            .iter()
                            .map(|s| {
                                Ok(SeriesMark {
                                    series: *s,
                                    mark: r.uint(8)?,
                                })
                            })
                            .collect::<Result<_, PubdataError>>()?;
                        reports.push(OracleReport {
                            oracle,
                            underlying,
                            timestamp,
                            spot,
                            marks,
                        });
                    }
                    underlyings.push(UnderlyingTick {
                        underlying,
                        reports,
                    });
                }
                Tx::OracleTick(OracleTick {
                    timestamp,
                    underlyings,
                })
            }
            record::REGISTER => Tx::RegisterSeries(RegisterSeries {
                underlying: r.u32(1)?,
                strike: r.uint(6)?,
                expiry: r.uint(5)?,
                kind: match r.uint(1)? as u8 {
                    0 => OptionKind::Call,
                    1 => OptionKind::Put,
                    b => return Err(PubdataError::BadEnum("option kind", b)),
                },
                contract_size: r.uint(2)?,
            }),
            t => return Err(PubdataError::UnknownType(t, at)),
        };
        out.push(tx);
    }
    Ok(out)
}

/// The field form of one record (§10): every fixed-width field of the byte layout as one `Fr`,
/// in layout order (a 32-byte field element as itself, the address as a 160-bit integer, the
/// type byte first). It is in one-to-one correspondence with the record's bytes.
///
/// # Errors
/// As [`encode_into`]: a value that does not fit its width.
pub fn record_fields(tx: &Tx) -> Result<Vec<Fr>, PubdataError> {
    let mut bytes = Vec::new();
    encode_into(tx, &mut bytes)?;
    let mut out = Vec::new();
    let mut r = Reader {
        bytes: &bytes,
        pos: 0,
    };
    let int = |r: &mut Reader<'_>, n: usize, out: &mut Vec<Fr>| -> Result<(), PubdataError> {
        out.push(Fr::from(r.uint(n)?));
        Ok(())
    };
    int(&mut r, 1, &mut out)?;
    let order = |r: &mut Reader<'_>, out: &mut Vec<Fr>| -> Result<(), PubdataError> {
        for n in [4, 2, 1, 8, 5, 4, 5, 2] {
            out.push(Fr::from(r.uint(n)?));
        }
        Ok(())
    };
    match tx {
        Tx::Deposit(_) => {
            int(&mut r, 4, &mut out)?;
            out.push(r.fr("pubkey.x")?);
            out.push(r.fr("pubkey.y")?);
            int(&mut r, 8, &mut out)?;
        }
        Tx::Withdraw(_) => {
            for n in [4, 8, 4] {
                int(&mut r, n, &mut out)?;
            }
            out.push(fr_from_short_bytes(r.take(20)?));
        }
        Tx::Trade(_) => {
            int(&mut r, 5, &mut out)?;
            int(&mut r, 8, &mut out)?;
            order(&mut r, &mut out)?;
            order(&mut r, &mut out)?;
        }
        Tx::Liquidate(_) => {
            for n in [5, 4, 4, 2, 5, 8, 4] {
                int(&mut r, n, &mut out)?;
            }
        }
        Tx::SettleExpiry(_) => {
            int(&mut r, 4, &mut out)?;
            int(&mut r, 2, &mut out)?;
        }
        Tx::OracleTick(t) => {
            int(&mut r, 5, &mut out)?;
            int(&mut r, 2, &mut out)?;
            for u in &t.underlyings {
                int(&mut r, 1, &mut out)?;
                int(&mut r, 2, &mut out)?;
                let marks = r.uint(2)? as usize;
                out.push(Fr::from(marks as u64));
                for _ in 0..marks {
                    int(&mut r, 2, &mut out)?;
                }
                for _ in &u.reports {
                    int(&mut r, 1, &mut out)?;
                    int(&mut r, 6, &mut out)?;
                    for _ in 0..marks {
                        int(&mut r, 8, &mut out)?;
                    }
                }
            }
        }
        Tx::RegisterSeries(_) => {
            for n in [1, 6, 5, 1, 2] {
                int(&mut r, n, &mut out)?;
            }
        }
    }
    debug_assert_eq!(
        r.pos,
        bytes.len(),
        "every byte of the record is in its field form"
    );
    Ok(out)
}

/// The record of a field form (§10): the inverse of [`record_fields`] for every type but the
/// tick (whose field form the circuit never hashes; it hashes [`TickLayout::fields`]).
///
/// # Errors
/// [`PubdataError::UnknownType`] for an unknown or tick type element, [`PubdataError::Truncated`]
/// for too few or too many elements, [`PubdataError::TooWide`] for an element past its width,
/// and any decoding error of [`decode_all`] (an enum byte out of range, a non-canonical key).
pub fn tx_of_fields(fields: &[Fr]) -> Result<Tx, PubdataError> {
    let first = fields.first().ok_or(PubdataError::Truncated(0))?;
    let kind = small(first, "record type", 1)? as u8;
    const ORDER: [usize; 8] = [4, 2, 1, 8, 5, 4, 5, 2];
    let widths: Vec<usize> = match kind {
        record::DEPOSIT => vec![1, 4, 32, 32, 8],
        record::WITHDRAW => vec![1, 4, 8, 4, 20],
        record::TRADE => [&[1, 5, 8][..], &ORDER, &ORDER].concat(),
        record::LIQUIDATE => vec![1, 5, 4, 4, 2, 5, 8, 4],
        record::SETTLE => vec![1, 4, 2],
        record::REGISTER => vec![1, 1, 6, 5, 1, 2],
        t => return Err(PubdataError::UnknownType(t, 0)),
    };
    if fields.len() != widths.len() {
        return Err(PubdataError::Truncated(fields.len().min(widths.len())));
    }
    let mut bytes = Vec::new();
    for (f, n) in fields.iter().zip(widths) {
        let be = fr_to_be_bytes(f);
        if n < 32 && be[..32 - n].iter().any(|b| *b != 0) {
            return Err(PubdataError::TooWide {
                field: "record field",
                value: u64::MAX,
                bytes: n,
            });
        }
        bytes.extend_from_slice(&be[32 - n..]);
    }
    let mut txs = decode_all(&bytes)?;
    match (txs.pop(), txs.is_empty()) {
        (Some(tx), true) => Ok(tx),
        _ => Err(PubdataError::Truncated(bytes.len())),
    }
}

/// `f` as an integer of at most `bytes` bytes.
fn small(f: &Fr, field: &'static str, bytes: usize) -> Result<u64, PubdataError> {
    let be = fr_to_be_bytes(f);
    if be[..32 - bytes].iter().any(|b| *b != 0) {
        return Err(PubdataError::TooWide {
            field,
            value: u64::MAX,
            bytes,
        });
    }
    Ok(be[32 - bytes..]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// A tick laid out at positions fixed by the capacities of the parameters (§10): what the
/// tick's record hash covers and what the circuit's tick lane consumes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickLayout {
    /// Tick time.
    pub timestamp: u64,
    /// Per underlying index (`max_underlyings`): whether the tick has a block for it.
    pub priced: Vec<bool>,
    /// Per underlying index, per oracle index (`max_oracles`): the reported spot, 0 if absent.
    pub spots: Vec<Vec<u64>>,
    /// Per series index (`max_series`): `u + 1` if the block of underlying `u` quotes it, else 0.
    pub quoted: Vec<u64>,
    /// Per series index, per oracle index: the reported mark, 0 if absent.
    pub marks: Vec<Vec<u64>>,
}

impl TickLayout {
    /// Lays out `t` for the capacities of `params`.
    ///
    /// # Errors
    /// [`PubdataError::TickShape`] if an underlying, oracle or series index is past its capacity
    /// or repeated, or a spot is 0; [`PubdataError::InconsistentTick`] if the reports of a block
    /// quote different series. Never for an accepted tick.
    pub fn of(t: &OracleTick, params: &ProtocolParams) -> Result<Self, PubdataError> {
        let (nu, no, ns) = (
            params.max_underlyings,
            params.max_oracles,
            params.max_series,
        );
        let mut l = Self {
            timestamp: t.timestamp,
            priced: vec![false; nu],
            spots: vec![vec![0; no]; nu],
            quoted: vec![0; ns],
            marks: vec![vec![0; no]; ns],
        };
        for b in &t.underlyings {
            let u = b.underlying as usize;
            if u >= nu || std::mem::replace(&mut l.priced[u], true) {
                return Err(PubdataError::TickShape(
                    "underlying out of range or repeated",
                ));
            }
            let series: Vec<usize> = b
                .reports
                .first()
                .map(|r| r.marks.iter().map(|m| m.series as usize).collect())
                .unwrap_or_default();
            for &s in &series {
                if s >= ns || l.quoted[s] != 0 {
                    return Err(PubdataError::TickShape("series out of range or repeated"));
                }
                l.quoted[s] = u as u64 + 1;
            }
            for r in &b.reports {
                let j = r.oracle as usize;
                if j >= no || r.spot == 0 || l.spots[u][j] != 0 {
                    return Err(PubdataError::TickShape(
                        "oracle out of range, repeated, or with a zero spot",
                    ));
                }
                if r.marks.len() != series.len()
                    || r.marks
                        .iter()
                        .zip(&series)
                        .any(|(m, s)| m.series as usize != *s)
                {
                    return Err(PubdataError::InconsistentTick);
                }
                l.spots[u][j] = r.spot;
                for m in &r.marks {
                    l.marks[m.series as usize][j] = m.mark;
                }
            }
        }
        Ok(l)
    }

    /// The layout whose [`TickLayout::fields`] are `fields`, at the capacities of `params`: the
    /// inverse of [`TickLayout::fields`].
    ///
    /// # Errors
    /// [`PubdataError::TickShape`] for the wrong number of elements, a type element other than
    /// the tick's, or a `priced` flag other than 0 or 1; [`PubdataError::TooWide`] for a value
    /// past 64 bits.
    pub fn from_fields(fields: &[Fr], params: &ProtocolParams) -> Result<Self, PubdataError> {
        let (nu, no, ns) = (
            params.max_underlyings,
            params.max_oracles,
            params.max_series,
        );
        if fields.len() != 2 + (1 + no) * (nu + ns) {
            return Err(PubdataError::TickShape("the fixed form's length"));
        }
        let mut it = fields.iter().map(|f| small(f, "tick value", 8));
        let mut next = || it.next().expect("length checked");
        if next()? != u64::from(record::TICK) {
            return Err(PubdataError::TickShape("the type element"));
        }
        let mut l = Self {
            timestamp: next()?,
            ..Self::default()
        };
        for _ in 0..nu {
            l.priced.push(match next()? {
                0 => false,
                1 => true,
                _ => return Err(PubdataError::TickShape("a priced flag")),
            });
            l.spots
                .push((0..no).map(|_| next()).collect::<Result<_, _>>()?);
        }
        for _ in 0..ns {
            l.quoted.push(next()?);
            l.marks
                .push((0..no).map(|_| next()).collect::<Result<_, _>>()?);
        }
        Ok(l)
    }

    /// The fixed tick form: the type byte, the timestamp; per underlying `priced_u` then its
    /// spots by oracle; per series `quoted_s` then its marks by oracle.
    /// `2 + (1 + max_oracles)·(max_underlyings + max_series)` elements.
    pub fn fields(&self) -> Vec<Fr> {
        let mut out = vec![Fr::from(u64::from(record::TICK)), Fr::from(self.timestamp)];
        for (p, spots) in self.priced.iter().zip(&self.spots) {
            out.push(Fr::from(u64::from(*p)));
            out.extend(spots.iter().map(|v| Fr::from(*v)));
        }
        for (q, marks) in self.quoted.iter().zip(&self.marks) {
            out.push(Fr::from(*q));
            out.extend(marks.iter().map(|v| Fr::from(*v)));
        }
        out
    }
}

/// The fixed tick form of `t` (§10), [`TickLayout::fields`]: every value at a position fixed by
/// the capacities of `params`, so that a circuit hashes it without data-dependent offsets. For a
/// tick whose spots are positive and whose indices do not repeat it is one-to-one with the
/// record's bytes: the blocks are the priced underlyings in ascending order, a block's reports
/// the oracles with a non-zero spot, its series those with `quoted = u + 1`.
///
/// # Errors
/// As [`TickLayout::of`].
pub fn tick_fields(t: &OracleTick, params: &ProtocolParams) -> Result<Vec<Fr>, PubdataError> {
    Ok(TickLayout::of(t, params)?.fields())
}

/// The hash of one record in the commitment (§10): `H(record_fields(tx))`, except for a tick,
/// `H(tick_fields(tick, params))`.
///
/// # Errors
/// As [`record_fields`] and [`tick_fields`].
pub fn record_hash(params: &ProtocolParams, tx: &Tx) -> Result<Fr, PubdataError> {
    match tx {
        Tx::OracleTick(t) => {
            // The byte layout must also hold (widths, consistent blocks).
            encode_into(tx, &mut Vec::new())?;
            Ok(poseidon::hash(&tick_fields(t, params)?))
        }
        _ => Ok(poseidon::hash(&record_fields(tx)?)),
    }
}

/// Next public-data commitment head: `H(tag, head, record_hash(tx))` (§10). Committing per
/// record lets the circuit hash each slot's record on its own and skip padding slots.
///
/// # Errors
/// As [`record_hash`].
pub fn chain(params: &ProtocolParams, head: Fr, tx: &Tx) -> Result<Fr, PubdataError> {
    let record = record_hash(params, tx)?;
    Ok(poseidon::hash(&[
        crate::field::domain_tag(tags::PUBDATA),
        head,
        record,
    ]))
}

/// The commitment of a batch's transactions: [`chain`] from zero over them in order (§10).
///
/// # Errors
/// As [`record_hash`].
pub fn commitment<'a>(
    params: &ProtocolParams,
    txs: impl IntoIterator<Item = &'a Tx>,
) -> Result<Fr, PubdataError> {
    txs.into_iter()
        .try_fold(Fr::from(0u64), |head, tx| chain(params, head, tx))
}

/// The commitment of public-data bytes: decode, then [`commitment`].
///
/// # Errors
/// Any decoding error of [`decode_all`], or of [`record_hash`].
pub fn commitment_of_bytes(params: &ProtocolParams, bytes: &[u8]) -> Result<Fr, PubdataError> {
    commitment(params, &decode_all(bytes)?)
}
