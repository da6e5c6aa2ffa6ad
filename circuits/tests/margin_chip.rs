//! The margin chip against native `collar_protocol::margin` (PROTOCOL.md §5): random markets and
//! accounts (calls and puts, longs, shorts and empty slots, every bound's edges) give the native
//! figures, compared through the public instance; the margin checks flip exactly at
//! `equity == requirement`; a forged output, a forged `is_short` bit and out-of-range inputs
//! are rejected by name.
//!
//! The runs use 13-bit lookups: no protocol width is a multiple of 13, so an out-of-range value
//! fails the range check's last-limb lookup rather than a copy constraint, and shows by name.

use std::collections::{BTreeMap, BTreeSet};

use collar_circuits::margin::{
    account_margin, assign_collateral, assign_margin_params, assign_series_terms, assign_size,
    assign_spot, meets, position_margin, short_add_ons, sum_margin, AssignedMargin,
    AssignedMarginParams, AssignedPositionMargin, AssignedSeriesTerms, PositionTerms, ADD_ON_BITS,
    MAX_POSITIONS,
};
use collar_circuits::safe::{Ranged, Signed};
use collar_circuits::testing::{Failure, MockRun, Mutation, FLEX_GATE, RANGE_LOOKUP};
use collar_protocol::field::{fr_from_i128, fr_from_u128};
use collar_protocol::margin::{self as native, MarginSummary};
use collar_protocol::params::{BreakerParams, MarginParams, UnderlyingConfig};
use collar_protocol::{Account, OptionKind, Position, PublicKey, Series, Underlying};
use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::{RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const LOOKUP_BITS: usize = 13;

/// `2^15` rows: one 16-slot account (about 9k cells) in one or two advice columns.
fn run() -> MockRun {
    MockRun::new(15, LOOKUP_BITS)
}

/// A small account (up to 4 slots) fits `2^14` rows.
fn small_run() -> MockRun {
    MockRun::new(14, LOOKUP_BITS)
}

fn offset(c: &AssignedValue<Fr>) -> usize {
    c.cell.expect("cells are tracked in mock runs").offset
}

/// What a build closure returns: its output and the cells it makes public.
type Built<R> = (R, Vec<AssignedValue<Fr>>);

fn set(names: &[Failure]) -> BTreeSet<Failure> {
    names.iter().cloned().collect()
}

// ---- native market and accounts -------------------------------------------------------------

#[derive(Clone, Debug)]
struct Market {
    series: Vec<Series>,
    underlyings: Vec<Underlying>,
}

/// How values are drawn: over their whole bound with the edges, or small enough that an
/// account's figures fit a collateral below `2^63` (for the boundary tests).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scale {
    Full,
    Moderate,
}

/// A value below `2^bits`: an edge, a uniform draw, a draw of random bit length, or a small one.
fn draw(rng: &mut ChaCha8Rng, bits: u32, edges: &[u64]) -> u64 {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    match rng.gen_range(0..5) {
        0 => edges[rng.gen_range(0..edges.len())].min(max),
        1 => rng.gen::<u64>() & max,
        2 => (rng.gen::<u64>() & max) >> rng.gen_range(0..bits),
        3 => rng.gen_range(0..1_000u64.min(max)),
        _ => max - rng.gen_range(0..16u64.min(max)),
    }
}

fn draw_bps(rng: &mut ChaCha8Rng, at_most: u64) -> u64 {
    match rng.gen_range(0..4) {
        0 => [0, 1, 9_999, 10_000][rng.gen_range(0..4)].min(at_most),
        1 => at_most,
        _ => rng.gen_range(0..=at_most),
    }
}

fn random_market(rng: &mut ChaCha8Rng, underlyings: usize, series: usize, scale: Scale) -> Market {
    let (price_bits, size_bits, mark_bits) = match scale {
        Scale::Full => (48, 16, 64),
        Scale::Moderate => (24, 8, 32),
    };
    let underlyings: Vec<Underlying> = (0..underlyings)
        .map(|i| {
            let im = draw_bps(rng, 10_000);
            let mm = draw_bps(rng, im);
            let margin = MarginParams {
                im_spot_bps: im,
                mm_spot_bps: mm,
                put_mm_mark_bps: draw_bps(rng, 10_000),
            };
            let mut u = Underlying::new(UnderlyingConfig {
                symbol: format!("U{i}"),
                margin,
                breaker: BreakerParams::default(),
            });
            u.spot = draw(rng, price_bits, &[1, 2, 1 << 47]).max(1);
            u
        })
        .collect();
    let series = (0..series)
        .map(|_| {
            let underlying = rng.gen_range(0..underlyings.len());
            let spot = underlyings[underlying].spot;
            // Strikes around spot half the time: at, just in and just out of the money.
            let strike = if rng.gen_bool(0.5) {
                let d = rng.gen_range(0..3u64);
                match rng.gen_range(0..3) {
                    0 => spot,
                    1 => spot.saturating_add(d).min((1 << price_bits) - 1),
                    _ => spot.saturating_sub(d).max(1),
                }
            } else {
                draw(rng, price_bits, &[1, (1 << 48) - 1]).max(1)
            };
            Series {
                underlying: underlying as u32,
                strike,
                expiry: 1 << 30,
                kind: if rng.gen_bool(0.5) {
                    OptionKind::Put
                } else {
                    OptionKind::Call
                },
                contract_size: draw(rng, size_bits, &[1, u16::MAX.into()]).max(1),
                mark: draw(rng, mark_bits, &[0, 1, u64::MAX]),
                settlement_price: 0,
            }
        })
        .collect();
    Market {
        series,
        underlyings,
    }
}

fn random_account(rng: &mut ChaCha8Rng, market: &Market, slots: usize, scale: Scale) -> Account {
    let size_bits = match scale {
        Scale::Full => 40,
        Scale::Moderate => 16,
    };
    let positions = (0..slots)
        .map(|_| {
            if rng.gen_bool(0.2) {
                return Position::default();
            }
            let abs = draw(rng, size_bits, &[1, (1 << 40) - 1]).max(1) as i64;
            let short = match scale {
                Scale::Full => rng.gen_bool(0.5),
                Scale::Moderate => rng.gen_bool(0.7),
            };
            Position {
                series: rng.gen_range(0..market.series.len()) as u32,
                size: if short { -abs } else { abs },
            }
        })
        .collect();
    Account {
        pubkey: PublicKey::ZERO,
        nonce: 0,
        collateral: match scale {
            Scale::Full => draw(rng, 63, &[0, (1 << 63) - 1]),
            Scale::Moderate => 0,
        },
        positions,
        orders: BTreeMap::new(),
    }
}

fn summary(account: &Account, market: &Market) -> MarginSummary {
    native::account_margin(account, &market.series, &market.underlyings)
}

// ---- circuit side -----------------------------------------------------------------------------

/// Witnesses the account's collateral and every slot's terms; an empty slot carries size 0 and
/// the terms of its (zero) series id, as the batch circuit's lookup gives it.
fn assign_account(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    account: &Account,
    market: &Market,
) -> (Ranged, Vec<PositionTerms>) {
    let collateral = assign_collateral(ctx, range, account.collateral);
    let terms = account
        .positions
        .iter()
        .map(|p| {
            let s = &market.series[p.series as usize];
            let u = &market.underlyings[s.underlying as usize];
            PositionTerms {
                size: assign_size(ctx, range, p.size),
                series: assign_series_terms(ctx, range, s),
                spot: assign_spot(ctx, range, u.spot),
                params: assign_margin_params(ctx, range, &u.config.margin),
            }
        })
        .collect();
    (collateral, terms)
}

/// The cells compared with the native summary: the four figures, then the initial and the
/// maintenance check.
fn expose(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    m: &AssignedMargin,
) -> Vec<AssignedValue<Fr>> {
    let initial_ok = meets(ctx, range, &m.im_equity, &m.initial);
    let maintenance_ok = meets(ctx, range, &m.equity, &m.maintenance);
    vec![
        m.equity.cell(),
        m.im_equity.cell(),
        m.initial.cell(),
        m.maintenance.cell(),
        initial_ok,
        maintenance_ok,
    ]
}

fn expected(s: &MarginSummary) -> Vec<Fr> {
    vec![
        fr_from_i128(s.equity),
        fr_from_i128(s.im_equity),
        fr_from_i128(s.initial),
        fr_from_i128(s.maintenance),
        Fr::from(u64::from(s.meets_initial())),
        Fr::from(u64::from(s.meets_maintenance())),
    ]
}

/// The margin of `account` with its outputs public; returns the output cells' offsets.
fn margin_circuit<'a>(
    account: &'a Account,
    market: &'a Market,
) -> impl Fn(&mut Context<Fr>, &RangeChip<Fr>) -> Built<Vec<usize>> + Copy + 'a {
    move |ctx, range| {
        let (c, terms) = assign_account(ctx, range, account, market);
        let m = account_margin(ctx, range, &c, &terms);
        let public = expose(ctx, range, &m);
        (public.iter().map(offset).collect(), public)
    }
}

// ---- positive ---------------------------------------------------------------------------------

#[test]
fn account_margin_equals_native_on_random_accounts() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x6d61_7267);
    let mut kinds = BTreeSet::new();
    for (case, slots) in [16, 16, 16, 16, 16, 16, 1, 4, 7].into_iter().enumerate() {
        let market = random_market(&mut rng, 3, 8, Scale::Full);
        let account = random_account(&mut rng, &market, slots, Scale::Full);
        let native = summary(&account, &market);
        for p in &native.positions {
            let s = &market.series[p.series as usize];
            kinds.insert((s.kind == OptionKind::Put, p.size < 0));
        }
        let out = run().run(
            margin_circuit(&account, &market),
            None,
            Some(expected(&native)),
        );
        assert!(
            out.is_satisfied(),
            "case {case}: {:?}\n{account:?}\n{market:?}",
            out.failures
        );
    }
    // Calls and puts, longs and shorts all occurred.
    assert_eq!(kinds.len(), 4, "{kinds:?}");
}

#[test]
fn short_add_ons_equal_native() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x0add);
    let market = random_market(&mut rng, 4, 24, Scale::Full);
    // Every series at its underlying's spot, and at spots 1 and 2^48 - 1.
    let mut cases = Vec::new();
    for s in &market.series {
        let u = &market.underlyings[s.underlying as usize];
        for spot in [u.spot, 1, (1 << 48) - 1] {
            cases.push((*s, u.clone(), spot));
        }
    }
    let expect: Vec<Fr> = cases
        .iter()
        .flat_map(|(s, u, spot)| {
            let (im, mm) = native::short_add_ons(s, u, *spot, s.mark);
            [fr_from_u128(im), fr_from_u128(mm)]
        })
        .collect();
    let out = run().run(
        |ctx, range| {
            let mut public = Vec::new();
            for (s, u, spot) in &cases {
                let terms = assign_series_terms(ctx, range, s);
                let spot = assign_spot(ctx, range, *spot);
                let params = assign_margin_params(ctx, range, &u.config.margin);
                let (im, mm) = short_add_ons(ctx, range, &terms, &spot, &params);
                assert_eq!((im.bits(), mm.bits()), (ADD_ON_BITS, ADD_ON_BITS));
                public.extend([im.cell(), mm.cell()]);
            }
            ((), public)
        },
        None,
        Some(expect),
    );
    assert!(out.is_satisfied(), "{:?}", out.failures);
}

#[test]
fn empty_account_and_empty_slots() {
    let market = random_market(&mut ChaCha8Rng::seed_from_u64(3), 1, 2, Scale::Full);
    for slots in [0, 3] {
        let mut account =
            random_account(&mut ChaCha8Rng::seed_from_u64(4), &market, 0, Scale::Full);
        account.positions = vec![Position::default(); slots];
        account.collateral = 12_345;
        let native = summary(&account, &market);
        assert_eq!((native.equity, native.initial), (12_345, 0));
        let out = small_run().run(
            margin_circuit(&account, &market),
            None,
            Some(expected(&native)),
        );
        assert!(out.is_satisfied(), "{slots} slots: {:?}", out.failures);
    }
}

#[test]
fn widths_stay_within_bounds_at_64_positions() {
    // Every slot at its extreme: shorts of 2^40 - 1 contracts of a put marked 2^64 - 1.
    let market = Market {
        series: vec![Series {
            underlying: 0,
            strike: (1 << 48) - 1,
            expiry: 1,
            kind: OptionKind::Put,
            contract_size: u16::MAX.into(),
            mark: u64::MAX,
            settlement_price: 0,
        }],
        underlyings: vec![{
            let mut u = Underlying::new(UnderlyingConfig {
                symbol: "X".into(),
                margin: MarginParams {
                    im_spot_bps: 10_000,
                    mm_spot_bps: 10_000,
                    put_mm_mark_bps: 10_000,
                },
                breaker: BreakerParams::default(),
            });
            u.spot = 1;
            u
        }],
    };
    for size in [-((1i64 << 40) - 1), (1 << 40) - 1] {
        let account = Account {
            pubkey: PublicKey::ZERO,
            nonce: 0,
            collateral: (1 << 63) - 1,
            positions: vec![Position { series: 0, size }; MAX_POSITIONS],
            orders: BTreeMap::new(),
        };
        let native = summary(&account, &market);
        // Witness generation only: the widths are construction-time facts.
        let mut builder = BaseCircuitBuilder::<Fr>::new(false)
            .use_k(17)
            .use_lookup_bits(LOOKUP_BITS);
        let range = builder.range_chip();
        let ctx = builder.main(0);
        let (c, terms) = assign_account(ctx, &range, &account, &market);
        let per: Vec<AssignedPositionMargin> = terms
            .iter()
            .map(|t| position_margin(ctx, &range, t))
            .collect();
        for p in &per {
            assert_eq!(p.abs_size.bits(), 40);
            assert_eq!(p.value.bits(), 104);
            assert_eq!(p.short_value.bits(), 104);
            assert_eq!((p.initial.bits(), p.maintenance.bits()), (106, 106));
        }
        let m = sum_margin(ctx, range.gate(), &c, &per);
        assert!(m.equity.bits() <= 111 && m.im_equity.bits() <= 111, "{m:?}");
        assert!(
            m.initial.bits() <= 112 && m.maintenance.bits() <= 112,
            "{m:?}"
        );
        let got = [
            m.equity.cell(),
            m.im_equity.cell(),
            m.initial.cell(),
            m.maintenance.cell(),
        ]
        .map(|c| *c.value());
        assert_eq!(got.to_vec(), expected(&native)[..4].to_vec());
    }
}

// ---- boundaries -------------------------------------------------------------------------------

#[test]
fn margin_checks_flip_at_equality() {
    let mut rng = ChaCha8Rng::seed_from_u64(0xb0b);
    let mut checked = [0; 2];
    for _ in 0..8 {
        let market = random_market(&mut rng, 2, 6, Scale::Moderate);
        let mut account = random_account(&mut rng, &market, 4, Scale::Moderate);
        let zero = summary(&account, &market);
        // Collateral making im_equity == initial, then equity == maintenance.
        for (which, gap) in [
            (0, zero.initial - zero.im_equity),
            (1, zero.maintenance - zero.equity),
        ] {
            if !(1..1 << 63).contains(&gap) {
                continue;
            }
            for (collateral, holds) in [(gap, true), (gap - 1, false)] {
                account.collateral = collateral as u64;
                let native = summary(&account, &market);
                let (eq, req, ok) = if which == 0 {
                    (native.im_equity, native.initial, native.meets_initial())
                } else {
                    (
                        native.equity,
                        native.maintenance,
                        native.meets_maintenance(),
                    )
                };
                assert_eq!((eq == req, ok), (holds, holds));
                let out = small_run().run(
                    margin_circuit(&account, &market),
                    None,
                    Some(expected(&native)),
                );
                assert!(out.is_satisfied(), "{:?}", out.failures);
                // The check's bit itself is pinned: the opposite answer fails the instance copy.
                let mut wrong = expected(&native);
                wrong[4 + which] = Fr::one() - wrong[4 + which];
                let out = small_run().run(margin_circuit(&account, &market), None, Some(wrong));
                assert_eq!(out.failures, set(&[Failure::Permutation]));
            }
            checked[which] += 1;
        }
    }
    assert!(checked.iter().all(|&n| n >= 2), "{checked:?}");
}

#[test]
fn meets_at_extreme_widths() {
    // (equity, equity bits, requirement, requirement bits)
    let cases: Vec<(i128, u32, u128, u32)> = vec![
        (0, 111, 0, 112),
        (-1, 111, 0, 112),
        (1, 111, 0, 112),
        ((1 << 111) - 1, 111, (1 << 111) - 1, 112),
        ((1 << 111) - 2, 111, (1 << 111) - 1, 112),
        ((1 << 111) - 1, 111, (1 << 112) - 1, 112),
        (-((1 << 111) - 1), 111, 0, 112),
        (-((1 << 111) - 1), 111, (1 << 112) - 1, 112),
        (5, 40, 5, 14),
        (4, 40, 5, 14),
    ];
    let expect: Vec<Fr> = cases
        .iter()
        .map(|&(e, _, r, _)| Fr::from(u64::from(e >= r as i128)))
        .collect();
    let out = small_run().run(
        |ctx, range| {
            let mut public = Vec::new();
            for &(e, eb, r, rb) in &cases {
                let cell = ctx.load_witness(fr_from_i128(e));
                let e = Signed::check(ctx, range, cell, eb);
                let r = Ranged::load(ctx, range, fr_from_u128(r), rb);
                public.push(meets(ctx, range, &e, &r));
            }
            ((), public)
        },
        None,
        Some(expect),
    );
    assert!(out.is_satisfied(), "{:?}", out.failures);
}

// ---- negative ---------------------------------------------------------------------------------

/// A fixed small account with a short call, a short put, a long and an empty slot.
fn fixed_account() -> (Account, Market) {
    let mut rng = ChaCha8Rng::seed_from_u64(0xf1);
    let mut market = random_market(&mut rng, 2, 2, Scale::Full);
    market.series[0].kind = OptionKind::Call;
    market.series[1].kind = OptionKind::Put;
    for s in &mut market.series {
        s.mark = 1_000_000_007;
    }
    let account = Account {
        pubkey: PublicKey::ZERO,
        nonce: 0,
        collateral: 1 << 62,
        positions: vec![
            Position {
                series: 0,
                size: -3,
            },
            Position {
                series: 1,
                size: -(1 << 30),
            },
            Position {
                series: 1,
                size: 17,
            },
            Position::default(),
        ],
        orders: BTreeMap::new(),
    };
    (account, market)
}

fn assert_rejected_by_gate(out: &BTreeSet<Failure>, what: &str) {
    assert!(
        out.contains(&Failure::Gate(FLEX_GATE.into())),
        "{what}: {out:?}"
    );
    assert!(
        out.iter()
            .all(|f| matches!(f, Failure::Gate(n) if n == FLEX_GATE)
                || matches!(f, Failure::Lookup(n) if n == RANGE_LOOKUP)
                || *f == Failure::Permutation),
        "{what}: {out:?}"
    );
}

#[test]
fn mutated_outputs_rejected() {
    let (account, market) = fixed_account();
    let native = summary(&account, &market);
    let expect = expected(&native);
    let build = margin_circuit(&account, &market);
    let ok = small_run().run(build, None, Some(expect.clone()));
    assert!(ok.is_satisfied(), "{:?}", ok.failures);
    let names = [
        "equity",
        "im_equity",
        "initial",
        "maintenance",
        "meets initial",
        "meets maintenance",
    ];
    for (i, off) in ok.output.iter().enumerate() {
        for delta in [Fr::one(), -Fr::one()] {
            let out = small_run().run(
                build,
                Some(Mutation {
                    offset: *off,
                    value: expect[i] + delta,
                }),
                Some(expect.clone()),
            );
            assert_rejected_by_gate(&out.failures, names[i]);
            // Claiming the mutated value publicly does not help.
            let mut claim = expect.clone();
            claim[i] += delta;
            let out = small_run().run(
                build,
                Some(Mutation {
                    offset: *off,
                    value: expect[i] + delta,
                }),
                Some(claim),
            );
            assert_rejected_by_gate(&out.failures, names[i]);
        }
    }
}

/// The margin circuit composed from its parts (as `account_margin` is), keeping per-slot cells.
fn margin_parts_circuit<'a>(
    account: &'a Account,
    market: &'a Market,
) -> impl Fn(&mut Context<Fr>, &RangeChip<Fr>) -> Built<Vec<AssignedPositionMargin>> + Copy + 'a {
    move |ctx, range| {
        let (c, terms) = assign_account(ctx, range, account, market);
        let per: Vec<AssignedPositionMargin> = terms
            .iter()
            .map(|t| position_margin(ctx, range, t))
            .collect();
        let m = sum_margin(ctx, range.gate(), &c, &per);
        (per, expose(ctx, range, &m))
    }
}

#[test]
fn mutated_position_figures_rejected() {
    let (account, market) = fixed_account();
    let native = summary(&account, &market);
    let expect = expected(&native);
    let build = margin_parts_circuit(&account, &market);
    let ok = small_run().run(build, None, Some(expect.clone()));
    assert!(ok.is_satisfied(), "{:?}", ok.failures);
    // The parts compose to exactly the circuit of `account_margin`.
    let whole = small_run().run(margin_circuit(&account, &market), None, None);
    assert_eq!(whole.advice_cells, ok.advice_cells);
    for (slot, p) in ok.output.iter().enumerate() {
        let cells = [
            ("add-on IM", p.im_per_contract.cell()),
            ("add-on MM", p.mm_per_contract.cell()),
            ("|size|", p.abs_size.cell()),
            ("value", p.value.cell()),
            ("initial term", p.initial.cell()),
        ];
        for (name, cell) in cells {
            for delta in [Fr::one(), -Fr::one()] {
                let out = small_run().run(
                    build,
                    Some(Mutation {
                        offset: offset(&cell),
                        value: *cell.value() + delta,
                    }),
                    Some(expect.clone()),
                );
                assert_rejected_by_gate(&out.failures, &format!("slot {slot} {name}"));
            }
        }
    }
}

#[test]
fn forged_is_short_rejected() {
    let (account, market) = fixed_account();
    let expect = expected(&summary(&account, &market));
    let build = margin_parts_circuit(&account, &market);
    let ok = small_run().run(build, None, Some(expect.clone()));
    assert!(ok.is_satisfied(), "{:?}", ok.failures);
    // Slots: short call, short put, long, empty.
    for (slot, p) in ok.output.iter().enumerate() {
        let bit = *p.is_short.value();
        assert_eq!(bit, Fr::from(u64::from(account.positions[slot].size < 0)));
        let out = small_run().run(
            build,
            Some(Mutation {
                offset: offset(&p.is_short),
                value: Fr::one() - bit,
            }),
            Some(expect.clone()),
        );
        assert!(
            !out.is_satisfied(),
            "slot {slot}: flipped is_short accepted"
        );
        assert!(
            out.failures
                .iter()
                .all(|f| *f == Failure::Gate(FLEX_GATE.into()) || *f == Failure::Permutation),
            "slot {slot}: {:?}",
            out.failures
        );
    }
}

/// The fixed account with one slot's inputs replaced by raw values; no public outputs, so an
/// out-of-range input is the only thing that can fail.
fn with_raw_inputs(
    mark: Fr,
    spot: u64,
    size: i64,
    collateral: u64,
    rate: u64,
) -> BTreeSet<Failure> {
    let (account, market) = fixed_account();
    small_run()
        .check(|ctx, range| {
            let (_, mut terms) = assign_account(ctx, range, &account, &market);
            let c = assign_collateral(ctx, range, collateral);
            let s = &market.series[1];
            terms[1].series = AssignedSeriesTerms::load(
                ctx,
                range,
                Fr::from(s.strike),
                Fr::one(),
                Fr::from(s.contract_size),
                mark,
            );
            terms[1].spot = assign_spot(ctx, range, spot);
            terms[1].size = assign_size(ctx, range, size);
            terms[1].params = assign_margin_params(
                ctx,
                range,
                &MarginParams {
                    im_spot_bps: rate,
                    mm_spot_bps: 1_000,
                    put_mm_mark_bps: 1_000,
                },
            );
            account_margin(ctx, range, &c, &terms);
        })
        .failures
}

#[test]
fn out_of_range_inputs_rejected_by_range_check() {
    let lookup = set(&[Failure::Lookup(RANGE_LOOKUP.into())]);
    let mark_max = fr_from_u128(u64::MAX.into());
    let (spot_max, size_max, c_max) = ((1u64 << 48) - 1, (1i64 << 40) - 1, (1u64 << 63) - 1);
    // Every input at its bound passes.
    for size in [size_max, -size_max] {
        assert_eq!(
            with_raw_inputs(mark_max, spot_max, size, c_max, 10_000),
            set(&[])
        );
    }
    // One past it fails the range check's lookup (64, 48, 63 and 41 are not multiples of 13),
    // and nothing else.
    let two64 = mark_max + Fr::one();
    assert_eq!(
        with_raw_inputs(two64, spot_max, size_max, c_max, 10_000),
        lookup,
        "mark 2^64"
    );
    // Far past it, the top limb itself leaves the table and the recombination copy fails.
    let out = with_raw_inputs(two64 * Fr::from(3), spot_max, size_max, c_max, 10_000);
    assert!(
        out.contains(&Failure::Lookup(RANGE_LOOKUP.into()))
            && out.is_subset(&set(&[
                Failure::Lookup(RANGE_LOOKUP.into()),
                Failure::Permutation
            ])),
        "mark 3·2^64: {out:?}"
    );
    let out = with_raw_inputs(mark_max, u64::MAX, size_max, c_max, 10_000);
    assert!(
        out.contains(&Failure::Lookup(RANGE_LOOKUP.into()))
            && out.is_subset(&set(&[
                Failure::Lookup(RANGE_LOOKUP.into()),
                Failure::Permutation
            ])),
        "spot 2^64 - 1: {out:?}"
    );
    assert_eq!(
        with_raw_inputs(mark_max, 1 << 48, size_max, c_max, 10_000),
        lookup,
        "spot 2^48"
    );
    assert_eq!(
        with_raw_inputs(mark_max, spot_max, size_max, 1 << 63, 10_000),
        lookup,
        "collateral 2^63"
    );
    // A size of ±2^40 fails the size's own check (one side of it wraps below zero, so its
    // recombination copy fails too) and the 40-bit re-check of |size|, whose top limb is a bit
    // (40 = 3·13 + 1) checked by the flex gate.
    for size in [1i64 << 40, -(1i64 << 40)] {
        let out = with_raw_inputs(mark_max, spot_max, size, c_max, 10_000);
        assert!(
            out.contains(&Failure::Lookup(RANGE_LOOKUP.into()))
                && out.is_subset(&set(&[
                    Failure::Lookup(RANGE_LOOKUP.into()),
                    Failure::Permutation,
                    Failure::Gate(FLEX_GATE.into()),
                ])),
            "size {size}: {out:?}"
        );
    }
    // A rate above 10_000 fails the `<= 10_000` check: its 14-bit shifted value's top limb is a
    // bit (14 = 13 + 1), checked by the flex gate.
    let out = with_raw_inputs(mark_max, spot_max, size_max, c_max, 10_001);
    assert!(!out.is_empty());
    assert!(
        out.is_subset(&set(&[
            Failure::Gate(FLEX_GATE.into()),
            Failure::Lookup(RANGE_LOOKUP.into())
        ])),
        "{out:?}"
    );
    // A non-boolean kind bit fails its bit gate.
    let (account, market) = fixed_account();
    let out = small_run().check(|ctx, range| {
        let s = &market.series[0];
        let (_, _) = assign_account(ctx, range, &account, &market);
        AssignedSeriesTerms::load(
            ctx,
            range,
            Fr::from(s.strike),
            Fr::from(2),
            Fr::one(),
            Fr::one(),
        );
    });
    assert_eq!(out.failures, set(&[Failure::Gate(FLEX_GATE.into())]));
}

// ---- size -------------------------------------------------------------------------------------

#[test]
fn advice_cells() {
    let (_, market) = fixed_account();
    let s = &market.series[1];
    let u = &market.underlyings[s.underlying as usize];
    let out = small_run().check(|ctx, range| {
        let terms = assign_series_terms(ctx, range, s);
        let spot = assign_spot(ctx, range, u.spot);
        let params: AssignedMarginParams = assign_margin_params(ctx, range, &u.config.margin);
        let before = ctx.advice.len();
        short_add_ons(ctx, range, &terms, &spot, &params);
        ctx.advice.len() - before
    });
    let add_ons = out.output;
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    let market = random_market(&mut rng, 3, 8, Scale::Full);
    let account16 = random_account(&mut rng, &market, 16, Scale::Full);
    let out16 = run().check(|ctx, range| {
        let (c, terms) = assign_account(ctx, range, &account16, &market);
        let before = ctx.advice.len();
        account_margin(ctx, range, &c, &terms);
        ctx.advice.len() - before
    });
    println!(
        "lookup bits {LOOKUP_BITS}: short_add_ons {add_ons} advice cells; account_margin over 16 \
         slots {} cells ({} with the inputs' loading and range checks)",
        out16.output, out16.advice_cells
    );
    assert!(out16.is_satisfied(), "{:?}", out16.failures);
    // Generous ceilings, so an accidental blow-up shows.
    assert!(add_ons < 600, "{add_ons}");
    assert!(out16.output < 16 * 900, "{}", out16.output);
}
