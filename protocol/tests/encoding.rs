//! JSON (API) and public-data (§10) encodings: every transaction type round-trips, JSON with an
//! unknown field anywhere is refused, and bad bytes give typed errors.

use std::fmt::Debug;

use collar_protocol::batch::BatchPublicInputs;
use collar_protocol::field::Fr;
use collar_protocol::pubdata::{self, PubdataError};
use collar_protocol::testkit::Harness;
use collar_protocol::tx::{OracleReport, OracleTick, SeriesMark, Side, UnderlyingTick};
use collar_protocol::{OptionKind, ProtocolParams, SignedTx, Tx};
use ff::Field;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// One signed instance of every transaction type.
fn samples() -> Vec<SignedTx> {
    let mut h = Harness::new(ProtocolParams::small(), 2);
    let buy = h.order(2, 0, Side::Buy, 5_100, 7);
    let sell = h.order(3, 0, Side::Sell, 4_900, 9);
    vec![
        h.deposit(2, 1_000_000),
        h.withdraw(2, 10),
        h.trade(buy, sell, 5, 5_000),
        h.liquidate(4, 3, 0, 2, 4_000),
        h.settle(3, 0),
        h.register(1, 100_000, 5_000, OptionKind::Put, 10),
        h.sign_tick(OracleTick {
            timestamp: 77,
            underlyings: vec![UnderlyingTick {
                underlying: 1,
                reports: (0..3)
                    .map(|oracle| OracleReport {
                        oracle,
                        underlying: 1,
                        timestamp: 77,
                        spot: 100_000 + u64::from(oracle),
                        marks: vec![
                            SeriesMark { series: 0, mark: 5 },
                            SeriesMark { series: 2, mark: 9 },
                        ],
                    })
                    .collect(),
            }],
        }),
    ]
}

#[test]
fn json_round_trips_every_transaction_type() {
    let all = samples();
    let kinds: std::collections::BTreeSet<&str> = all.iter().map(|s| s.tx.kind()).collect();
    assert_eq!(kinds.len(), 7);
    for stx in &all {
        let json = serde_json::to_string(stx).unwrap();
        assert!(
            json.contains(&format!("\"type\":\"{}\"", stx.tx.kind())),
            "{json}"
        );
        let back: SignedTx = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, stx);
    }
}

/// JSON pointers of every object in `v`, the root included, at any depth (through arrays too).
fn object_pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            out.push(at.to_string());
            for (k, c) in m {
                object_pointers(c, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                object_pointers(c, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Asserts that `value`'s canonical JSON parses back to it, and that the same JSON with an
/// unknown field added to any one of its objects is refused naming that field. Returns the
/// pointers of the objects so checked.
fn rejects_unknown_fields_everywhere<T>(value: &T) -> Vec<String>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let json = serde_json::to_string(value).unwrap();
    assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), value, "{json}");
    let tree: Value = serde_json::from_str(&json).unwrap();
    let mut pointers = Vec::new();
    object_pointers(&tree, "", &mut pointers);
    for p in &pointers {
        let mut bad = tree.clone();
        let object = bad.pointer_mut(p).unwrap().as_object_mut().unwrap();
        object.insert("surplus".into(), Value::from(1));
        let text = bad.to_string();
        let err = serde_json::from_str::<T>(&text)
            .expect_err(&format!("an unknown field at {p:?} was accepted: {text}"));
        assert!(
            err.to_string().contains("unknown field `surplus`"),
            "at {p:?}: {err}"
        );
    }
    pointers
}

/// Asserts that every pointer of `expected` is among those `checked`.
fn covers(checked: &[String], expected: &[&str]) {
    for e in expected {
        assert!(checked.iter().any(|c| c == e), "{e:?} not in {checked:?}");
    }
}

#[test]
fn unknown_fields_are_refused_at_every_level() {
    // A signed trade: the envelope, the transaction (beside its `type` tag), both orders and
    // both signatures.
    let mut h = Harness::new(ProtocolParams::small(), 2);
    let buy = h.order(2, 0, Side::Buy, 5_100, 7);
    let sell = h.order(3, 0, Side::Sell, 4_900, 9);
    let trade = h.trade(buy, sell, 5, 5_000);
    covers(
        &rejects_unknown_fields_everywhere(&trade),
        &[
            "",
            "/tx",
            "/tx/buy",
            "/tx/sell",
            "/signatures/0",
            "/signatures/1",
        ],
    );
    // A tick: the tick, each underlying, each report, each mark.
    let tick = samples().pop().unwrap();
    assert_eq!(tick.tx.kind(), "oracle_tick");
    covers(
        &rejects_unknown_fields_everywhere(&tick),
        &[
            "",
            "/tx",
            "/tx/underlyings/0",
            "/tx/underlyings/0/reports/2",
            "/tx/underlyings/0/reports/2/marks/1",
            "/signatures/2",
        ],
    );
    // Every other transaction type (a deposit's key among them), the bare transaction, the
    // batch public inputs and the genesis a node reads.
    for stx in samples() {
        rejects_unknown_fields_everywhere(&stx);
        rejects_unknown_fields_everywhere(&stx.tx);
    }
    let inputs = BatchPublicInputs {
        old_root: Fr::from(1),
        new_root: Fr::from(2),
        pubdata_commitment: Fr::from(3),
        tick_commitment: Fr::from(4),
        deposit_head_before: Fr::from(5),
        deposit_head_after: Fr::from(6),
        withdrawals_commitment: Fr::from(7),
        batch_number: 8,
    };
    covers(&rejects_unknown_fields_everywhere(&inputs), &[""]);
    covers(
        &rejects_unknown_fields_everywhere(&h.genesis),
        &[
            "",
            "/params",
            "/underlyings/0",
            "/oracles/0",
            "/fee_account_key",
        ],
    );
}

#[test]
fn signers_are_those_of_the_signed_messages() {
    for stx in samples() {
        let from_messages: Vec<_> = stx
            .tx
            .signed_messages(1)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(stx.tx.signers(), from_messages, "{}", stx.tx.kind());
        assert_eq!(stx.tx.signers().len(), stx.signatures.len());
    }
}

#[test]
fn public_data_round_trips_every_transaction_type() {
    let txs: Vec<Tx> = samples().into_iter().map(|s| s.tx).collect();
    let bytes = pubdata::encode_all(&txs).unwrap();
    assert_eq!(pubdata::decode_all(&bytes).unwrap(), txs);
    // Each record alone decodes to itself, and its length is what §10 states per type.
    let expected_len = [77usize, 37, 76, 33, 7, 16, 8 + 5 + 2 * 2 + 3 * (7 + 8 * 2)];
    for (tx, len) in txs.iter().zip(expected_len) {
        let one = pubdata::encode_all([tx]).unwrap();
        assert_eq!(one.len(), len, "{}", tx.kind());
        assert_eq!(pubdata::decode_all(&one).unwrap(), vec![tx.clone()]);
    }
}

#[test]
fn bad_public_data_is_a_typed_error() {
    let txs: Vec<Tx> = samples().into_iter().map(|s| s.tx).collect();
    let bytes = pubdata::encode_all(&txs).unwrap();
    assert!(matches!(
        pubdata::decode_all(&bytes[..bytes.len() - 1]),
        Err(PubdataError::Truncated(_))
    ));
    assert_eq!(
        pubdata::decode_all(&[0x09]),
        Err(PubdataError::UnknownType(0x09, 0))
    );
    // A deposit whose key coordinate is not below the modulus.
    let mut dep = pubdata::encode_all([&txs[0]]).unwrap();
    dep[5..37].fill(0xff);
    assert_eq!(
        pubdata::decode_all(&dep),
        Err(PubdataError::NonCanonical("pubkey.x"))
    );
    // A value wider than its field cannot be encoded.
    let mut wide = txs[1].clone();
    if let Tx::Withdraw(w) = &mut wide {
        w.nonce = 1 << 32;
    }
    assert!(matches!(
        pubdata::encode_all([&wide]),
        Err(PubdataError::TooWide { field: "nonce", .. })
    ));
    // The commitment of the bytes is that of the decoded records, and every record matters.
    let p = ProtocolParams::small();
    assert_eq!(
        pubdata::commitment_of_bytes(&p, &bytes),
        pubdata::commitment(&p, &txs)
    );
    assert_ne!(
        pubdata::commitment(&p, &txs).unwrap(),
        pubdata::commitment(&p, &txs[1..]).unwrap()
    );
    assert!(pubdata::commitment_of_bytes(&p, &bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn field_form_of_each_record_is_one_to_one_with_its_bytes() {
    for stx in samples() {
        let fields = pubdata::record_fields(&stx.tx).unwrap();
        let mut changed = stx.tx.clone();
        // Changing any decoded field changes the field form.
        if let Tx::Trade(t) = &mut changed {
            t.sell.max_fee_bps += 1;
        } else if let Tx::Deposit(d) = &mut changed {
            d.amount += 1;
        } else {
            continue;
        }
        assert_ne!(pubdata::record_fields(&changed).unwrap(), fields);
    }
    // Field counts follow the layout: deposit 5, withdraw 5, trade 19, liquidate 8, settle 3,
    // register 6.
    let counts: Vec<usize> = samples()
        .iter()
        .filter(|s| !matches!(s.tx, Tx::OracleTick(_)))
        .map(|s| pubdata::record_fields(&s.tx).unwrap().len())
        .collect();
    assert_eq!(counts, vec![5, 5, 19, 8, 3, 6]);
}

fn sample_tick() -> OracleTick {
    match samples().pop().map(|s| s.tx) {
        Some(Tx::OracleTick(t)) => t,
        _ => panic!("the last sample is a tick"),
    }
}

#[test]
fn fixed_tick_form_has_the_shape_of_the_parameters_and_every_value_matters() {
    let p = ProtocolParams::small();
    let t = sample_tick();
    let fields = pubdata::tick_fields(&t, &p).unwrap();
    let per = 1 + p.max_oracles;
    assert_eq!(fields.len(), 2 + per * (p.max_underlyings + p.max_series));
    // Underlying 1 is priced; oracle 2's spot sits at its fixed position; series 2 is quoted
    // by underlying 1 (q = 1 + 1) with oracle 0's mark 9.
    assert_eq!(fields[2 + per], Fr::ONE);
    assert_eq!(fields[2 + per + 1 + 2], Fr::from(100_002u64));
    let series = 2 + per * p.max_underlyings;
    assert_eq!(fields[series + 2 * per], Fr::from(2u64));
    assert_eq!(fields[series + 2 * per + 1], Fr::from(9u64));
    // Changing a spot, a mark, a signer or a quoted series changes the form.
    let edits: [fn(&mut OracleTick); 5] = [
        |t| t.underlyings[0].reports[1].spot += 1,
        |t| t.underlyings[0].reports[2].marks[1].mark += 1,
        |t| t.underlyings[0].reports[2].oracle = 3,
        |t| t.timestamp += 1,
        |t| {
            for r in &mut t.underlyings[0].reports {
                r.marks[1].series = 3;
            }
        },
    ];
    for edit in edits {
        let mut changed = t.clone();
        edit(&mut changed);
        assert_ne!(pubdata::tick_fields(&changed, &p).unwrap(), fields);
    }
    // Out of the fixed shape: a typed error, never a silent collision.
    let mut far = t.clone();
    far.underlyings[0].reports[0].oracle = p.max_oracles as u32;
    assert!(matches!(
        pubdata::tick_fields(&far, &p),
        Err(PubdataError::TickShape(_))
    ));
    let mut twice = t.clone();
    twice.underlyings[0].reports[1].oracle = 0;
    assert!(matches!(
        pubdata::tick_fields(&twice, &p),
        Err(PubdataError::TickShape(_))
    ));
    let mut zero = t;
    zero.underlyings[0].reports[0].spot = 0;
    assert!(matches!(
        pubdata::tick_fields(&zero, &p),
        Err(PubdataError::TickShape(_))
    ));
}

#[test]
fn field_forms_decode_back_to_their_transactions() {
    // `tx_of_fields` inverts `record_fields` for every record type but the tick, and
    // `TickLayout::from_fields` inverts the fixed tick form: the soundness oracle reads the
    // public data a circuit committed through them.
    let params = ProtocolParams::small();
    for s in samples() {
        match &s.tx {
            Tx::OracleTick(t) => {
                let l = pubdata::TickLayout::of(t, &params).unwrap();
                assert_eq!(
                    pubdata::TickLayout::from_fields(&l.fields(), &params).unwrap(),
                    l
                );
                assert!(pubdata::tx_of_fields(&l.fields()).is_err());
            }
            tx => {
                let fields = pubdata::record_fields(tx).unwrap();
                assert_eq!(&pubdata::tx_of_fields(&fields).unwrap(), tx);
                // One element too many or too few, or one past its width, is refused.
                let mut longer = fields.clone();
                longer.push(Fr::ONE);
                assert!(pubdata::tx_of_fields(&longer).is_err());
                assert!(pubdata::tx_of_fields(&fields[..fields.len() - 1]).is_err());
                let mut wide = fields.clone();
                wide[1] = -Fr::ONE;
                assert!(matches!(
                    pubdata::tx_of_fields(&wide),
                    Err(PubdataError::TooWide { .. })
                ));
            }
        }
    }
    let l = pubdata::TickLayout::of(&sample_tick(), &params).unwrap();
    let mut bad = l.fields();
    bad[2] = Fr::from(2u64);
    assert!(pubdata::TickLayout::from_fields(&bad, &params).is_err());
    assert!(pubdata::TickLayout::from_fields(&bad[1..], &params).is_err());
}
