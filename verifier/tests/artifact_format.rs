//! The proof-artifact formats on their own (no proof system): binary and JSON round trips and
//! typed errors for malformed input. Real proofs and verifying keys are exercised end to end in
//! `prover/tests/native.rs`.

use collar_protocol::batch::BatchPublicInputs;
use collar_protocol::Fr;
use collar_verifier::artifact::{ARTIFACT_MAGIC, MAX_CIRCUIT_ID_LEN, MAX_PROOF_LEN};
use collar_verifier::{FormatError, ProofArtifact, ProofSystem, SrsId, SrsKind, VerifyError};
use halo2_base::halo2_proofs::halo2curves::bn256::{G1Affine, G2Affine};

fn inputs() -> BatchPublicInputs {
    BatchPublicInputs {
        old_root: Fr::from(11),
        new_root: Fr::from(12),
        pubdata_commitment: Fr::from(13),
        tick_commitment: Fr::zero(),
        deposit_head_before: Fr::from(15),
        deposit_head_after: -Fr::one(),
        withdrawals_commitment: Fr::from(17),
        batch_number: u64::MAX,
    }
}

fn artifact(kind: SrsKind) -> ProofArtifact {
    let srs = SrsId::new(
        kind,
        &G1Affine::generator(),
        &G2Affine::generator(),
        &G2Affine::generator(),
    );
    ProofArtifact::new(
        "collar-batch-v1/cap1/k17/0123456789abcdef".into(),
        [7u8; 32],
        srs,
        ProofSystem::ShplonkBlake2b,
        inputs(),
        (0..=255u8).collect(),
    )
    .unwrap()
}

#[test]
fn binary_and_json_round_trip_exactly() {
    for kind in [SrsKind::InsecureDevelopment, SrsKind::Ceremony] {
        let a = artifact(kind);
        let bin = a.to_bytes();
        assert_eq!(&bin[..8], ARTIFACT_MAGIC);
        assert_eq!(ProofArtifact::from_bytes(&bin).unwrap(), a);
        assert_eq!(ProofArtifact::decode(&bin).unwrap(), a);
        let json = a.to_json();
        assert_eq!(ProofArtifact::from_json(&json).unwrap(), a);
        assert_eq!(ProofArtifact::decode(json.as_bytes()).unwrap(), a);
        assert_eq!(a.public_inputs(), &inputs());
        assert_eq!(a.proof().len(), 256);
    }
    let json = artifact(SrsKind::InsecureDevelopment).to_json();
    assert!(json.contains("\"format\": \"collar-proof\""));
    assert!(json.contains("INSECURE_DEVELOPMENT_SRS"));
}

#[test]
fn every_truncation_is_a_typed_error() {
    let bin = artifact(SrsKind::Ceremony).to_bytes();
    for cut in 0..bin.len() {
        match ProofArtifact::from_bytes(&bin[..cut]) {
            Err(FormatError::Truncated { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn bad_headers_codes_and_lengths_are_rejected() {
    let bin = artifact(SrsKind::Ceremony).to_bytes();
    let err = |b: &[u8]| ProofArtifact::from_bytes(b).unwrap_err();
    let mut magic = bin.clone();
    magic[0] = b'X';
    assert_eq!(
        err(&magic),
        FormatError::BadMagic {
            expected: "proof artifact"
        }
    );
    let mut version = bin.clone();
    version[8..10].copy_from_slice(&0u16.to_le_bytes());
    assert!(matches!(
        err(&version),
        FormatError::UnsupportedVersion { found: 0, .. }
    ));

    let id_len = u32::from_le_bytes(bin[10..14].try_into().unwrap()) as usize;
    let srs_kind_at = 14 + id_len + 32;
    let mut kind = bin.clone();
    kind[srs_kind_at] = 0x77;
    assert_eq!(
        err(&kind),
        FormatError::UnknownCode {
            what: "srs kind",
            code: 0x77
        }
    );
    let mut system = bin.clone();
    system[srs_kind_at + 33] = 9;
    assert_eq!(
        err(&system),
        FormatError::UnknownCode {
            what: "proof system",
            code: 9
        }
    );

    let mut long_id = bin.clone();
    long_id[10..14].copy_from_slice(&(MAX_CIRCUIT_ID_LEN as u32 + 1).to_le_bytes());
    assert!(matches!(
        err(&long_id),
        FormatError::TooLarge {
            what: "circuit id",
            ..
        }
    ));
    let mut utf8 = bin.clone();
    utf8[14] = 0xff;
    assert_eq!(err(&utf8), FormatError::NotUtf8 { what: "circuit id" });
    let proof_len_at = bin.len() - 4 - 256;
    let mut huge = bin.clone();
    huge[proof_len_at..proof_len_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        err(&huge),
        FormatError::TooLarge { what: "proof", .. }
    ));

    assert!(matches!(
        ProofArtifact::new(
            "x".repeat(MAX_CIRCUIT_ID_LEN + 1),
            [0; 32],
            artifact(SrsKind::Ceremony).srs(),
            ProofSystem::ShplonkBlake2b,
            inputs(),
            vec![],
        ),
        Err(FormatError::TooLarge { .. })
    ));
    assert!(matches!(
        ProofArtifact::new(
            "x".into(),
            [0; 32],
            artifact(SrsKind::Ceremony).srs(),
            ProofSystem::ShplonkBlake2b,
            inputs(),
            vec![0; MAX_PROOF_LEN + 1],
        ),
        Err(FormatError::TooLarge { .. })
    ));
}

#[test]
fn json_errors_are_typed() {
    let json = artifact(SrsKind::Ceremony).to_json();
    let bad = |s: &str| ProofArtifact::from_json(s).unwrap_err();
    assert!(matches!(bad("{"), FormatError::Json(_)));
    assert!(matches!(
        bad(&json.replace("collar-proof", "something-else")),
        FormatError::BadMagic { .. }
    ));
    assert!(matches!(
        bad(&json.replace("\"ceremony\"", "\"trusted\"")),
        FormatError::Json(_)
    ));
    // A field element at or above the modulus.
    let p = "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";
    let replaced = json.replacen(
        "\"old_root\": \"0x000000000000000000000000000000000000000000000000000000000000000b\"",
        &format!("\"old_root\": \"{p}\""),
        1,
    );
    assert_ne!(replaced, json, "the test edits the old root");
    assert!(matches!(bad(&replaced), FormatError::Json(_)));
}

#[test]
fn reading_files_reports_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.proof.json");
    let a = artifact(SrsKind::Ceremony);
    a.write(&path).unwrap();
    assert!(std::fs::read_to_string(&path).unwrap().starts_with('{'));
    assert_eq!(ProofArtifact::read(&path).unwrap(), a);
    std::fs::write(&path, b"garbage").unwrap();
    match ProofArtifact::read(&path).unwrap_err() {
        e @ VerifyError::Malformed { .. } => {
            assert_eq!(e.check(), "malformed");
            assert!(e.to_string().contains("a.proof.json"), "{e}");
        }
        e => panic!("{e}"),
    }
    let missing = ProofArtifact::read(&dir.path().join("nope")).unwrap_err();
    assert_eq!(missing.check(), "io");
}

#[test]
fn json_refuses_unknown_fields_at_every_level_and_upper_case_hex() {
    let json = artifact(SrsKind::Ceremony).to_json();
    let bad = |s: &str| ProofArtifact::from_json(s).unwrap_err();
    for (at, what) in [
        ("{", "top level"),
        ("\"srs\": {", "srs"),
        ("\"public_inputs\": {", "public inputs"),
    ] {
        assert!(json.contains(at), "{what}");
        let extra = json.replacen(at, &format!("{at}\"surprise\": 1,"), 1);
        match bad(&extra) {
            FormatError::Json(m) => assert!(m.contains("surprise"), "{what}: {m}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    // One spelling per value: hex is lower case.
    let upper_proof = json.replacen("\"proof\": \"0x00", "\"proof\": \"0x0A", 1);
    assert_ne!(upper_proof, json);
    assert!(matches!(bad(&upper_proof), FormatError::Json(_)));
    let hash = hex::encode([7u8; 32]);
    assert!(json.contains(&hash));
    let lower = json.replacen(&hash, &"0a".repeat(32), 1);
    assert_eq!(
        ProofArtifact::from_json(&lower).unwrap().vk_hash(),
        [10; 32]
    );
    let upper = json.replacen(&hash, &"0A".repeat(32), 1);
    assert!(matches!(bad(&upper), FormatError::Json(_)));
}

#[test]
fn circuit_ids_are_one_to_256_visible_ascii_characters() {
    let a = artifact(SrsKind::Ceremony);
    let with = |id: &str| {
        ProofArtifact::new(
            id.into(),
            a.vk_hash(),
            a.srs(),
            a.proof_system(),
            *a.public_inputs(),
            a.proof().to_vec(),
        )
    };
    for id in ["", "a b", "tab\t", "escape\u{1b}[31m", "naïve"] {
        assert_eq!(
            with(id).unwrap_err(),
            FormatError::InvalidCircuitId,
            "{id:?}"
        );
    }
    assert!(with(&"~".repeat(MAX_CIRCUIT_ID_LEN)).is_ok());
    // The same rule on reading: an escape sequence in the binary form is refused.
    let bin = a.to_bytes();
    let mut escape = bin.clone();
    escape[14] = 0x1b;
    assert_eq!(
        ProofArtifact::from_bytes(&escape).unwrap_err(),
        FormatError::InvalidCircuitId
    );
}
