//! `stats`: the component meter attributes every cell exactly once, agrees with halo2-base's own
//! counts, and the report survives a JSON round trip.

use collar_circuits::poseidon::PoseidonChip;
use collar_circuits::stats::{
    self, circuit_stats, metered, CircuitStats, Component, StatsError, StatsShape,
};
use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_base::gates::{GateInstructions, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

fn small_stats() -> CircuitStats {
    circuit_stats(&StatsShape::small(1)).expect("small shape measures")
}

#[test]
fn components_partition_the_builders_own_count() {
    let s = small_stats();
    let advice: u64 = s.components.iter().map(|c| c.advice_cells).sum();
    let lookup: u64 = s.components.iter().map(|c| c.lookup_cells).sum();
    assert_eq!(advice, s.advice_cells, "components sum to the total advice");
    assert_eq!(
        lookup, s.lookup_cells,
        "components sum to the total lookups"
    );
    assert!(s.advice_cells > 0 && s.lookup_cells > 0);
    let get = |name: &str| {
        s.components
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("component {name} reported"))
            .clone()
    };
    for name in [
        "hashing",
        "merkle",
        "range-checks",
        "margin",
        "account-leaf",
        "signatures",
    ] {
        assert!(get(name).advice_cells > 0, "{name} has cells: {s}");
    }
    // Lookups come from range checks: hashing, Merkle paths and leaf encoding queue none (direct
    // `RangeChip` calls of gadgets that are not wrapped stay in `other`).
    assert!(get("range-checks").lookup_cells > 0, "{s}");
    for name in ["hashing", "merkle", "account-leaf"] {
        assert_eq!(get(name).lookup_cells, 0, "{name} queues no lookups: {s}");
    }
    assert_eq!(s.batch.trades, 1, "capacity 1 holds one trade");
    // Two signature lanes a slot and one per (underlying, oracle) of the tick lane; each lane's
    // cells are the whole signatures component shared out.
    let lanes = 2 * s.shape.capacity + s.params.max_underlyings * s.params.max_oracles;
    assert_eq!(s.signature_lanes, lanes);
    let per_lane = get("signatures").advice_cells as f64 / lanes as f64;
    assert_eq!(s.advice_cells_per_signature, per_lane);
    assert!(s.k >= stats::MIN_K);
    assert!(s.advice_columns >= 1 && s.advice_columns <= s.shape.max_advice);
    assert!(s.rows_used <= s.usable_rows);
    assert!(s.proving.is_none(), "no proving asked");
}

#[test]
fn totals_equal_the_builders_statistics_for_a_direct_build() {
    // The meter against halo2-base on a hand-built circuit: a hash of two range-checked cells.
    let mut b = BaseCircuitBuilder::<Fr>::from_stage(CircuitBuilderStage::Keygen)
        .use_k(10)
        .use_lookup_bits(8);
    let range = b.range_chip();
    let ((), breakdown) = metered(&range, b.main(0), |ctx| {
        let poseidon = PoseidonChip::new(ctx, range.gate());
        let x = ctx.load_witness(Fr::from(1_000));
        range.range_check(ctx, x, 20);
        let y = collar_circuits::safe::Ranged::load(ctx, &range, Fr::from(7), 12);
        let h = poseidon.hash(ctx, range.gate(), &[x, y.cell()]);
        range.gate().add(ctx, h, x);
    })
    .unwrap();
    let st = b.statistics();
    assert_eq!(
        breakdown.total.advice,
        st.gate.total_advice_per_phase[0] as u64
    );
    assert_eq!(
        breakdown.total.lookup,
        st.total_lookup_advice_per_phase[0] as u64
    );
    let comp = |c: Component| {
        breakdown
            .components
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| *v)
            .unwrap()
    };
    // The bare `range_check` and the final add are not wrapped: they fall to Other, while the
    // `Ranged::load` check is a range check and the hash is hashing.
    assert!(comp(Component::Hashing).advice > 0);
    assert!(comp(Component::RangeChecks).lookup > 0);
    assert!(comp(Component::Other).lookup > 0);
    assert_eq!(comp(Component::Merkle).advice, 0);
    let sum: u64 = breakdown.components.iter().map(|(_, c)| c.advice).sum();
    assert_eq!(sum, breakdown.total.advice);
    // Meters do not nest.
    let mut b2 = BaseCircuitBuilder::<Fr>::from_stage(CircuitBuilderStage::Keygen)
        .use_k(10)
        .use_lookup_bits(8);
    let r2 = b2.range_chip();
    let inner = metered(&r2, b2.main(0), |ctx| {
        let mut b3 = BaseCircuitBuilder::<Fr>::from_stage(CircuitBuilderStage::Keygen)
            .use_k(10)
            .use_lookup_bits(8);
        let r3 = b3.range_chip();
        let res = metered(&r3, b3.main(0), |_| ()).map(|_| ());
        ctx.load_zero();
        res
    })
    .unwrap()
    .0;
    assert!(matches!(inner, Err(StatsError::MeterBusy)));
}

#[test]
fn json_round_trip_keeps_every_field() {
    let s = small_stats();
    let json = serde_json::to_value(&s).unwrap();
    for field in [
        "k",
        "advice_columns",
        "fixed_columns",
        "lookup_advice_columns",
        "rows_used",
        "advice_cells",
        "lookup_cells",
        "advice_cells_per_slot",
        "components",
        "tx_types",
        "proving",
        "peak_memory_bytes",
    ] {
        assert!(json.get(field).is_some(), "JSON has {field}");
    }
    let back: CircuitStats = serde_json::from_value(json).unwrap();
    assert_eq!(back, s);
    let table = s.to_string();
    assert!(table.contains("range-checks") && table.contains("advice cells"));
}

#[test]
fn bad_shapes_are_typed_errors() {
    let mut zero = StatsShape::small(1);
    zero.capacity = 0;
    assert!(matches!(circuit_stats(&zero), Err(StatsError::Shape(_))));
    let mut deep = StatsShape::small(1);
    deep.account_depth = 40;
    assert!(matches!(circuit_stats(&deep), Err(StatsError::Shape(_))));
    let mut crowded = StatsShape::small(2);
    crowded.account_depth = 2;
    assert!(matches!(circuit_stats(&crowded), Err(StatsError::Shape(_))));
    let mut low_k = StatsShape::small(1);
    low_k.k = Some(16);
    assert!(matches!(
        circuit_stats(&low_k),
        Err(StatsError::BadK { k: 16, .. })
    ));
}
