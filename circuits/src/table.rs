//! Reading one row of a witnessed table by a witnessed index, for the market lists the slots
//! read many times (series terms by position, a series by a trade, a liquidation or a
//! settlement).
//!
//! Two changes against halo2-base's `select_from_idx` per field, which builds a one-hot
//! indicator over the whole list (about twelve cells an entry) for every field it reads:
//!
//! * **One cell a row.** [`PackedTable`] packs each row's range-checked fields into one cell,
//!   `Σ field_i·2^{offset_i}`, with each field given the widest bound it has in any row. A read
//!   selects one packed cell and unpacks it: every field is witnessed, range-checked to its
//!   width, and recombined into the selected cell. Because the widths sum to at most
//!   [`MAX_BITS`] `< 253`, the recombination cannot wrap the field, so the mixed-radix
//!   representation, hence every unpacked field, is unique.
//! * **Two-level index.** [`select_two_level`] splits the index as `idx = hi·W + lo` with
//!   `lo < W = 2^lo_bits` and `hi < 2^(idx.bits - lo_bits)` (both range-checked, so the split
//!   is unique and does not wrap), selects entry `lo` of every group of `W` with one indicator
//!   and then group `hi` with another: about `√n` indicator entries instead of `n`.
//!
//! At the production shape (64 series) a read of all seven series fields costs about 500
//! advice cells where seven `select_from_idx` calls cost about 6,700.

use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
use halo2_base::utils::power_of_two;
use halo2_base::QuantumCell::{Constant, Existing};
use halo2_base::{AssignedValue, Context, QuantumCell};

use crate::safe::{Ranged, MAX_BITS};

/// Entry `idx` of `cells`, or 0 when `idx >= cells.len()`, through a two-level index (module
/// docs). `idx` must be range-checked to `idx.bits()` (a [`Ranged`] is); the result is copied
/// from one of `cells` or is 0, so it carries no new bound.
///
/// # Panics
/// If `cells` is empty (a circuit-construction error).
pub fn select_two_level(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    cells: &[AssignedValue<Fr>],
    idx: &Ranged,
) -> AssignedValue<Fr> {
    assert!(!cells.is_empty(), "select_two_level over an empty list");
    let gate = range.gate();
    // Bits that index every entry, split about evenly; no wider than the index itself.
    let index_bits = usize::BITS - (cells.len() - 1).leading_zeros();
    let lo_bits = index_bits.div_ceil(2).min(idx.bits());
    let hi_bits = idx.bits() - lo_bits;
    let width = 1usize << lo_bits;
    let groups = cells.len().div_ceil(width);

    let (lo, hi) = split(ctx, range, idx, lo_bits, hi_bits);
    let lo_indicator = match lo {
        Some(lo) => gate.idx_to_indicator(ctx, lo, width),
        None => vec![ctx.load_constant(Fr::one())],
    };
    // Entry `lo` of each group (a short last group is padded with zeros).
    let picked: Vec<AssignedValue<Fr>> = cells
        .chunks(width)
        .map(|group| {
            let padded: Vec<QuantumCell<Fr>> = group
                .iter()
                .map(|c| Existing(*c))
                .chain(std::iter::repeat(Constant(Fr::zero())))
                .take(width)
                .collect();
            gate.select_by_indicator(ctx, padded, lo_indicator.iter().copied())
        })
        .collect();
    match hi {
        // `idx < 2^lo_bits`: only the first group is reachable.
        None => picked[0],
        Some(hi) => {
            // `hi >= groups` (an index past the list) marks no group and reads 0.
            let hi_indicator = gate.idx_to_indicator(ctx, hi, groups);
            gate.select_by_indicator(ctx, picked, hi_indicator)
        }
    }
}

/// `idx = hi·2^lo_bits + lo` with both parts range-checked; a part of zero width is `None`.
fn split(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    idx: &Ranged,
    lo_bits: u32,
    hi_bits: u32,
) -> (Option<AssignedValue<Fr>>, Option<AssignedValue<Fr>>) {
    match (lo_bits, hi_bits) {
        (0, _) => (None, Some(idx.cell())),
        (_, 0) => (Some(idx.cell()), None),
        _ => {
            let lo = bit_slice(idx.cell().value(), 0, lo_bits);
            let (lo, hi) = split_index(ctx, range, idx, lo_bits, lo);
            (Some(lo.cell()), Some(hi.cell()))
        }
    }
}

/// Splits `idx` into `(lo, hi)` with `idx = hi·2^lo_bits + lo`, `lo < 2^lo_bits` and
/// `hi < 2^(idx.bits() - lo_bits)`, all constrained. `lo` is the witness of the low part (the
/// honest one is `idx mod 2^lo_bits`); `hi` is derived from it. With these bounds the split
/// is unique, so any other `lo` fails a range check.
///
/// # Panics
/// Unless `0 < lo_bits < idx.bits()`.
pub fn split_index(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    idx: &Ranged,
    lo_bits: u32,
    lo: Fr,
) -> (Ranged, Ranged) {
    assert!(
        0 < lo_bits && lo_bits < idx.bits(),
        "split of a {}-bit index at bit {lo_bits}",
        idx.bits()
    );
    let base = power_of_two::<Fr>(lo_bits as usize);
    let hi = (*idx.cell().value() - lo) * base.invert().unwrap_or(Fr::zero());
    let lo = Ranged::load(ctx, range, lo, lo_bits);
    let hi = Ranged::load(ctx, range, hi, idx.bits() - lo_bits);
    let whole = range
        .gate()
        .mul_add(ctx, hi.cell(), Constant(base), lo.cell());
    ctx.constrain_equal(&whole, &idx.cell());
    (lo, hi)
}

/// Bits `[offset, offset + width)` of `v`'s canonical integer, as a field element (witness
/// generation only).
fn bit_slice(v: &Fr, offset: u32, width: u32) -> Fr {
    let repr = v.to_repr();
    let bytes = repr.as_ref();
    (offset..offset + width).rev().fold(Fr::zero(), |acc, i| {
        let bit = (bytes[(i / 8) as usize] >> (i % 8)) & 1;
        acc + acc + Fr::from(u64::from(bit))
    })
}

/// A table of rows of range-checked fields, each row packed into one cell (module docs).
#[derive(Clone, Debug)]
pub struct PackedTable {
    rows: Vec<AssignedValue<Fr>>,
    widths: Vec<u32>,
}

impl PackedTable {
    /// Packs `rows`. Field `i` gets width `max over rows of rows[r][i].bits()`.
    ///
    /// # Panics
    /// If `rows` is empty, the rows differ in length, or the widths sum above [`MAX_BITS`]
    /// (all circuit-construction errors, never witness ones).
    pub fn new(
        ctx: &mut Context<Fr>,
        gate: &impl GateInstructions<Fr>,
        rows: &[Vec<Ranged>],
    ) -> Self {
        assert!(!rows.is_empty(), "a packed table needs a row");
        let arity = rows[0].len();
        assert!(
            rows.iter().all(|r| r.len() == arity),
            "every row of a packed table has the same fields"
        );
        let widths: Vec<u32> = (0..arity)
            .map(|i| rows.iter().map(|r| r[i].bits()).max().unwrap_or(1))
            .collect();
        let total: u32 = widths.iter().sum();
        assert!(
            total <= MAX_BITS,
            "packed row of {total} bits exceeds MAX_BITS"
        );
        let bases = Self::bases(&widths);
        let rows = rows
            .iter()
            .map(|r| gate.inner_product(ctx, r.iter().map(|f| f.cell()), bases.clone()))
            .collect();
        Self { rows, widths }
    }

    /// `2^{offset_i}` for each field.
    fn bases(widths: &[u32]) -> Vec<QuantumCell<Fr>> {
        widths
            .iter()
            .scan(0u32, |offset, w| {
                let base = Constant(power_of_two(*offset as usize));
                *offset += w;
                Some(base)
            })
            .collect()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows (never, by construction).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The packed cells, one per row.
    pub fn packed(&self) -> &[AssignedValue<Fr>] {
        &self.rows
    }

    /// Field widths, in row order.
    pub fn widths(&self) -> &[u32] {
        &self.widths
    }

    /// The fields of row `idx`, each range-checked to its width; all zeros when
    /// `idx >= self.len()`. `idx` must be range-checked to `idx.bits()`.
    pub fn read(&self, ctx: &mut Context<Fr>, range: &RangeChip<Fr>, idx: &Ranged) -> Vec<Ranged> {
        let selected = select_two_level(ctx, range, &self.rows, idx);
        self.unpack(ctx, range, selected)
    }

    /// Witnesses the fields of `packed` ([`Self::fields_of`]), range-checks each to its width
    /// and constrains their recombination to equal `packed` ([`Self::unpack_fields`]).
    pub fn unpack(
        &self,
        ctx: &mut Context<Fr>,
        range: &RangeChip<Fr>,
        packed: AssignedValue<Fr>,
    ) -> Vec<Ranged> {
        let fields = self.fields_of(packed.value());
        self.unpack_fields(ctx, range, packed, &fields)
    }

    /// The honest unpacking of a packed value: bits `[offset_i, offset_i + width_i)` of its
    /// integer (witness generation only).
    pub fn fields_of(&self, packed: &Fr) -> Vec<Fr> {
        let mut offset = 0;
        self.widths
            .iter()
            .map(|&w| {
                let f = bit_slice(packed, offset, w);
                offset += w;
                f
            })
            .collect()
    }

    /// Loads `fields` as the unpacking of `packed`: each range-checked to its width, their
    /// recombination `Σ field_i·2^{offset_i}` copy-constrained to `packed`. The widths sum to at
    /// most [`MAX_BITS`], so the recombination does not wrap and only [`Self::fields_of`]
    /// satisfies both.
    ///
    /// # Panics
    /// If `fields.len()` is not the table's arity.
    pub fn unpack_fields(
        &self,
        ctx: &mut Context<Fr>,
        range: &RangeChip<Fr>,
        packed: AssignedValue<Fr>,
        fields: &[Fr],
    ) -> Vec<Ranged> {
        assert_eq!(fields.len(), self.widths.len(), "one value per field");
        let fields: Vec<Ranged> = fields
            .iter()
            .zip(&self.widths)
            .map(|(v, &w)| Ranged::load(ctx, range, *v, w))
            .collect();
        let whole = range.gate().inner_product(
            ctx,
            fields.iter().map(|f| f.cell()),
            Self::bases(&self.widths),
        );
        ctx.constrain_equal(&whole, &packed);
        fields
    }
}
