//! End to end with real KZG proofs (insecure development SRS, small parameters): keygen and its
//! cache, proving, the artifact and verifying-key files, and every rejection `collar-verifier`
//! must make. Keys are generated once per configuration and shared by the tests.

use std::path::Path;
use std::sync::OnceLock;

use collar_protocol::batch::{self, ExecutedBatch};
use collar_protocol::testkit::Harness;
use collar_protocol::{Fr, ProtocolParams, State};
use collar_prover::{BatchProver, KeySource, ProverConfig, ProverError, Srs};
use collar_verifier::{
    verify, verify_expecting, verify_files, FormatError, ProofArtifact, SrsKind, VerifyError,
    VerifyingKeyFile, PUBLIC_INPUT_NAMES,
};

struct Fixture {
    _dir: tempfile::TempDir,
    config: ProverConfig,
    prover: BatchProver,
    before: State,
    batch: ExecutedBatch,
    artifact: ProofArtifact,
}

/// Capacity 1, k = 17: keys generated into a fresh cache, one deposit batch proven.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ProverConfig::new(ProtocolParams::small(), 1, dir.path().join("keys"));
        config.threads = Some(2);
        config.progress = false;
        let prover = BatchProver::load_or_keygen(config.clone()).unwrap();
        assert_eq!(prover.key_source(), KeySource::Generated);
        let (before, batch) = deposit_batch(1, 1_234);
        let artifact = prover.prove(&before, &batch).unwrap();
        Fixture {
            _dir: dir,
            config,
            prover,
            before,
            batch,
            artifact,
        }
    })
}

/// One deposit into account 5, executed natively as batch 1 on a fresh harness.
fn deposit_batch(batch_number: u64, amount: u64) -> (State, ExecutedBatch) {
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let before = h.state.clone();
    let tx = h.deposit(5, amount).tx;
    let mut s = before.clone();
    let exec = batch::execute(&mut s, batch_number, &[tx]).unwrap();
    (before, exec)
}

fn vk_of(f: &Fixture) -> &VerifyingKeyFile {
    f.prover.vk_file()
}

#[test]
fn real_proof_round_trips_through_files_and_verifies() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let (bin, json, vk) = (
        dir.path().join("batch1.proof"),
        dir.path().join("batch1.proof.json"),
        dir.path().join("batch.vk"),
    );
    f.artifact.write(&bin).unwrap();
    f.artifact.write(&json).unwrap();
    f.prover.export_vk(&vk).unwrap();

    for path in [&bin, &json] {
        let back = ProofArtifact::read(path).unwrap();
        assert_eq!(back, f.artifact, "{} round trip", path.display());
        let ok = verify_files(path, &vk).unwrap();
        assert_eq!(ok.public_inputs, f.batch.public_inputs);
        assert_eq!(ok.circuit_id, f.prover.circuit_id());
        assert_eq!(ok.vk_hash, f.prover.vk_file().hash());
        assert!(ok.srs.is_insecure());
    }
    // In-memory round trips are exact, and the vk file re-reads to the same key.
    assert_eq!(
        ProofArtifact::from_bytes(&f.artifact.to_bytes()).unwrap(),
        f.artifact
    );
    assert_eq!(
        ProofArtifact::from_json(&f.artifact.to_json()).unwrap(),
        f.artifact
    );
    let vk_back = VerifyingKeyFile::read(&vk).unwrap();
    assert_eq!(vk_back.hash(), vk_of(f).hash());
    assert_eq!(vk_back.to_bytes(), vk_of(f).to_bytes());
    // The verifier needs only the small vk file, not the SRS or the proving key.
    let vk_len = std::fs::metadata(&vk).unwrap().len();
    assert!(vk_len < 16 * 1024, "vk file is {vk_len} bytes");
    verify_expecting(&f.artifact, &vk_back, &f.batch.public_inputs).unwrap();
}

#[test]
fn flipped_proof_byte_is_an_invalid_proof() {
    let f = fixture();
    for at in [
        0,
        f.artifact.proof().len() / 2,
        f.artifact.proof().len() - 1,
    ] {
        let mut bad = f.artifact.clone();
        bad.proof_mut()[at] ^= 1;
        let e = verify(&bad, vk_of(f)).unwrap_err();
        assert!(matches!(e, VerifyError::InvalidProof(_)), "byte {at}: {e}");
    }
    let mut longer = f.artifact.clone();
    longer.proof_mut().push(0);
    assert!(matches!(
        verify(&longer, vk_of(f)),
        Err(VerifyError::InvalidProof(_))
    ));
    let mut shorter = f.artifact.clone();
    shorter.proof_mut().pop();
    assert!(matches!(
        verify(&shorter, vk_of(f)),
        Err(VerifyError::InvalidProof(_))
    ));
}

fn changed(a: &ProofArtifact, i: usize) -> ProofArtifact {
    let mut b = a.clone();
    let p = b.public_inputs_mut();
    let one = Fr::one();
    match i {
        0 => p.old_root += one,
        1 => p.new_root += one,
        2 => p.pubdata_commitment += one,
        3 => p.tick_commitment += one,
        4 => p.deposit_head_before += one,
        5 => p.deposit_head_after += one,
        6 => p.withdrawals_commitment += one,
        7 => p.batch_number += 1,
        _ => unreachable!(),
    }
    b
}

#[test]
fn each_changed_public_input_is_rejected() {
    let f = fixture();
    for (i, &name) in PUBLIC_INPUT_NAMES.iter().enumerate() {
        let claimed = changed(&f.artifact, i);
        // A proof does not carry over to other public inputs...
        let e = verify(&claimed, vk_of(f)).unwrap_err();
        assert!(matches!(e, VerifyError::InvalidProof(_)), "{}: {e}", name);
        // ...and a caller expecting the real batch is told which input differs.
        let e = verify_expecting(&claimed, vk_of(f), &f.batch.public_inputs).unwrap_err();
        match e {
            VerifyError::PublicInputMismatch { index, name, .. } => {
                assert_eq!((index, name), (i, name))
            }
            other => panic!("{}: {other}", name),
        }
        // The changed value survives the file formats (so it is the proof that rejects it).
        assert_eq!(
            ProofArtifact::from_bytes(&claimed.to_bytes()).unwrap(),
            claimed
        );
    }
}

#[test]
fn keygen_cache_hits_and_misses_and_other_vk_is_rejected() {
    let f = fixture();
    // Same configuration: the cache answers, no keygen, same keys; it proves another batch.
    let again = BatchProver::load_or_keygen(f.config.clone()).unwrap();
    assert_eq!(again.key_source(), KeySource::Cache);
    assert_eq!(again.cache_entry(), f.prover.cache_entry());
    assert_eq!(again.vk_file().hash(), vk_of(f).hash());
    let (before, batch2) = deposit_batch(2, 77);
    let a2 = again.prove(&before, &batch2).unwrap();
    assert_eq!(
        verify(&a2, vk_of(f)).unwrap().public_inputs,
        batch2.public_inputs
    );

    // Another circuit configuration (smaller lookup table): a cache miss, new keys.
    let mut other_config = f.config.clone();
    other_config.lookup_bits = 15;
    let other = BatchProver::load_or_keygen(other_config.clone()).unwrap();
    assert_eq!(other.key_source(), KeySource::Generated);
    assert_ne!(other.config_hash(), f.prover.config_hash());
    assert_ne!(other.cache_entry(), f.prover.cache_entry());
    assert_ne!(other.vk_file().hash(), vk_of(f).hash());
    // Both entries stay cached.
    assert_eq!(
        BatchProver::load_or_keygen(other_config)
            .unwrap()
            .key_source(),
        KeySource::Cache
    );

    // The proof against the other circuit's vk: wrong vk...
    match verify(&f.artifact, other.vk_file()).unwrap_err() {
        VerifyError::WrongVk {
            artifact_circuit,
            file_circuit,
            ..
        } => {
            assert_eq!(artifact_circuit, f.prover.circuit_id());
            assert_eq!(file_circuit, other.circuit_id());
        }
        e => panic!("{e}"),
    }
    // ...relabelling the artifact with that vk's hash alone leaves the other metadata wrong...
    let mut relabelled = f.artifact.clone();
    relabelled.set_vk_hash(other.vk_file().hash());
    assert!(matches!(
        verify(&relabelled, other.vk_file()),
        Err(VerifyError::MetadataMismatch {
            field: "circuit id",
            ..
        })
    ));
    // ...and relabelling it whole does not make the proof verify.
    let relabelled = ProofArtifact::new(
        other.circuit_id().to_owned(),
        other.vk_file().hash(),
        other.vk_file().srs(),
        f.artifact.proof_system(),
        *f.artifact.public_inputs(),
        f.artifact.proof().to_vec(),
    )
    .unwrap();
    assert!(matches!(
        verify(&relabelled, other.vk_file()),
        Err(VerifyError::InvalidProof(_))
    ));
}

#[test]
fn corrupted_cache_entry_is_not_used() {
    let f = fixture();
    // A private copy of the cache, so the other tests keep theirs.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&f.config.cache_dir, dir.path());
    let mut config = f.config.clone();
    config.cache_dir = dir.path().to_path_buf();
    let hit = BatchProver::load_cached(config.clone()).unwrap().unwrap();
    assert_eq!(hit.key_source(), KeySource::Cache);
    assert_eq!(hit.vk_file().hash(), vk_of(f).hash());

    let entry = dir.path().join(f.prover.cache_entry().file_name().unwrap());
    let pk = entry.join("pk.bin");
    let mut bytes = std::fs::read(&pk).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&pk, bytes).unwrap();
    // The corrupt proving key is detected (digest) and not used: `load_or_keygen` would
    // regenerate from here, as it does on any miss (see the cache-miss test).
    assert!(BatchProver::load_cached(config.clone()).unwrap().is_none());
    std::fs::remove_dir_all(&entry).unwrap();
    assert!(BatchProver::load_cached(config).unwrap().is_none());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn malformed_files_give_typed_errors() {
    let f = fixture();
    let good = f.artifact.to_bytes();
    let err = |b: &[u8]| ProofArtifact::from_bytes(b).unwrap_err();

    assert_eq!(err(b""), FormatError::Truncated { what: "magic" });
    assert!(matches!(
        err(b"NOTAPROOF-----"),
        FormatError::BadMagic { .. }
    ));
    let mut v2 = good.clone();
    v2[8] = 2;
    assert_eq!(
        err(&v2),
        FormatError::UnsupportedVersion {
            kind: "proof artifact",
            found: 2,
            supported: 1
        }
    );
    for cut in [9, 20, good.len() / 2, good.len() - 1] {
        assert!(
            matches!(err(&good[..cut]), FormatError::Truncated { .. }),
            "cut at {cut}"
        );
    }
    let mut trailing = good.clone();
    trailing.push(7);
    assert_eq!(err(&trailing), FormatError::TrailingBytes { count: 1 });
    // A public input ≥ the field modulus (all 0xff) is not a field element.
    let first_input = good.len() - 4 - f.artifact.proof().len() - 8 * 32;
    let mut big = good.clone();
    big[first_input..first_input + 32].fill(0xff);
    assert!(matches!(
        err(&big),
        FormatError::InvalidField { what: "old_root" }
    ));
    // A batch number beyond u64 is not a batch number.
    let mut wide = good.clone();
    wide[first_input + 7 * 32 + 8] = 1;
    assert!(matches!(err(&wide), FormatError::InvalidField { .. }));

    // JSON: wrong version, unknown field, bad hex.
    let json = f.artifact.to_json();
    let bad_version = json.replace("\"version\": 1", "\"version\": 9");
    assert!(matches!(
        ProofArtifact::from_json(&bad_version),
        Err(FormatError::UnsupportedVersion { found: 9, .. })
    ));
    let extra = json.replacen('{', "{\"surprise\": 1,", 1);
    assert!(matches!(
        ProofArtifact::from_json(&extra),
        Err(FormatError::Json(_))
    ));
    let bad_hex = json.replacen("\"proof\": \"0x", "\"proof\": \"0xzz", 1);
    assert!(matches!(
        ProofArtifact::from_json(&bad_hex),
        Err(FormatError::Json(_))
    ));

    // Verifying-key files: truncated, wrong version, tampered key bytes, trailing bytes.
    let vk = vk_of(f).to_bytes().to_vec();
    let vk_err = |b: &[u8]| VerifyingKeyFile::from_bytes(b).unwrap_err();
    assert!(matches!(
        vk_err(&vk[..vk.len() - 10]),
        FormatError::Truncated { .. }
    ));
    assert!(matches!(vk_err(&vk[..40]), FormatError::Truncated { .. }));
    let mut vk2 = vk.clone();
    vk2[8] = 9;
    assert!(matches!(
        vk_err(&vk2),
        FormatError::UnsupportedVersion { found: 9, .. }
    ));
    // The hashing byte (after magic, version, circuit id, SRS id and the halo2-base
    // configuration of one advice phase and three lookup phases): an unknown code, and
    // halo2-base hashing with a Pow5 capacity, are refused.
    let c = vk_of(f).config();
    assert_eq!(
        (
            c.base.num_advice_per_phase.len(),
            c.base.num_lookup_advice_per_phase.len()
        ),
        (1, 3)
    );
    let hashing_at = 8 + 2 + 4 + vk_of(f).circuit_id().len() + 1 + 32 + 4 + 8 + 4 + 16 + 5 + 4;
    assert_eq!(vk[hashing_at], 1, "Pow5");
    let mut unknown = vk.clone();
    unknown[hashing_at] = 7;
    assert!(matches!(
        vk_err(&unknown),
        FormatError::UnknownCode {
            what: "hashing",
            code: 7
        }
    ));
    let mut base = vk.clone();
    base[hashing_at] = 0;
    assert!(matches!(vk_err(&base), FormatError::InvalidConfig(_)));
    let mut vk_tail = vk.clone();
    vk_tail.push(0);
    assert!(matches!(
        vk_err(&vk_tail),
        FormatError::TrailingBytes { count: 1 }
    ));
    assert!(matches!(vk_err(&good), FormatError::BadMagic { .. }));
    let mut vk_point = vk.clone();
    let last = vk_point.len() - 1;
    vk_point[last] ^= 0x55; // inside the last commitment of the halo2 key
    assert!(matches!(vk_err(&vk_point), FormatError::InvalidVk(_)));

    // Through files: a typed Malformed error naming the path, and a missing file is Io.
    let dir = tempfile::tempdir().unwrap();
    let (p, k) = (dir.path().join("p"), dir.path().join("k"));
    std::fs::write(&p, &good[..100]).unwrap();
    f.prover.export_vk(&k).unwrap();
    match verify_files(&p, &k).unwrap_err() {
        VerifyError::Malformed { path, source } => {
            assert_eq!(path.as_deref(), Some(p.as_path()));
            assert!(matches!(source, FormatError::Truncated { .. }));
        }
        e => panic!("{e}"),
    }
    assert!(matches!(
        verify_files(&dir.path().join("missing"), &k),
        Err(VerifyError::Io { .. })
    ));
    std::fs::write(&k, &vk[..vk.len() / 2]).unwrap();
    f.artifact.write(&p).unwrap();
    assert!(matches!(
        verify_files(&p, &k),
        Err(VerifyError::Malformed { .. })
    ));
}

#[test]
fn development_srs_is_labelled_everywhere() {
    let f = fixture();
    let srs = f.prover.srs();
    assert!(srs.is_insecure());
    assert!(format!("{srs}").contains("INSECURE DEVELOPMENT SRS"));
    assert!(format!("{srs:?}").contains("INSECURE DEVELOPMENT SRS"));
    assert_eq!(f.artifact.srs().kind, SrsKind::InsecureDevelopment);
    assert!(f.artifact.to_json().contains("INSECURE_DEVELOPMENT_SRS"));
    assert!(format!("{:?}", f.artifact).contains("INSECURE DEVELOPMENT SRS"));
    assert!(vk_of(f).srs().is_insecure());
    let entry = f
        .prover
        .cache_entry()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(entry.starts_with("INSECURE-DEV-SRS-"), "{entry}");
    assert!(f.config.cache_dir.join(Srs::dev_file_name(17)).exists());
    assert!(Srs::dev_file_name(17).contains("INSECURE-DEVELOPMENT-SRS"));
}

#[test]
fn ceremony_params_file_loads_and_downsizes() {
    use halo2_base::halo2_proofs::halo2curves::bn256::Bn256;
    use halo2_base::halo2_proofs::poly::commitment::ParamsProver;
    use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
    use rand::SeedableRng;

    // A "ceremony" file in halo2's format, standing in for a real one: an SRS from another
    // seed at k = 10 (a real one would be far larger) shows the mechanics of 10 → 8.
    let dir = tempfile::tempdir().unwrap();
    let params = ParamsKZG::<Bn256>::setup(10, rand_chacha::ChaCha20Rng::seed_from_u64(7));
    let path = dir.path().join("ceremony-k10.params");
    let mut file = std::fs::File::create(&path).unwrap();
    params
        .write_custom(&mut file, halo2_base::halo2_proofs::SerdeFormat::RawBytes)
        .unwrap();
    drop(file);
    let loaded = Srs::load(&path, 8).unwrap();
    assert_eq!(loaded.k(), 8);
    assert_eq!(loaded.id().kind, SrsKind::Ceremony);
    // The identity does not depend on k.
    let id = collar_verifier::SrsId::new(
        SrsKind::Ceremony,
        &params.get_g()[0],
        &params.g2(),
        &params.s_g2(),
    );
    assert_eq!(loaded.id(), id);
    assert!(matches!(
        Srs::load(&path, 11),
        Err(ProverError::SrsTooSmall { have: 10, need: 11 })
    ));
    // The development SRS, whose secret is public, is no ceremony's.
    Srs::dev_cached(10, dir.path()).unwrap();
    let dev = dir.path().join(Srs::dev_file_name(10));
    match Srs::load(&dev, 8) {
        Err(ProverError::Srs { reason, .. }) => assert!(reason.contains("INSECURE"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    assert!(matches!(Srs::load(&path, 8), Err(ProverError::Srs { .. })));
    assert!(matches!(
        Srs::load(&dir.path().join("absent"), 8),
        Err(ProverError::Io { .. })
    ));
}

#[test]
fn batches_the_circuit_cannot_take_are_typed_errors() {
    let f = fixture();
    // Two deposits into a one-slot circuit: the circuit's own error, passed through.
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let before = h.state.clone();
    let txs = [h.deposit(5, 1).tx, h.deposit(6, 2).tx];
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 1, &txs).unwrap();
    assert!(matches!(
        f.prover.prove(&before, &exec),
        Err(ProverError::Circuit(
            collar_circuits::batch::BatchCircuitError::OverCapacity {
                txs: 2,
                capacity: 1
            }
        ))
    ));
    // A withdrawal executed without its signature: the proof would fail, so it is refused.
    let mut h = Harness::new(ProtocolParams::small(), 1);
    h.fund(5, 100);
    let before = h.state.clone();
    let wd = h.withdraw(5, 1).tx;
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 1, &[wd]).unwrap();
    assert!(matches!(
        f.prover.prove(&before, &exec),
        Err(ProverError::Circuit(
            collar_circuits::batch::BatchCircuitError::MissingSignatures(0)
        ))
    ));
    // A state with other protocol parameters.
    let mut other = ProtocolParams::small();
    other.account_depth += 1;
    let h2 = Harness::new(other, 1);
    assert!(matches!(
        f.prover.prove(&h2.state, &f.batch),
        Err(ProverError::ParamsMismatch)
    ));
    // The real batch still proves (the fixture did), from the right state.
    assert_eq!(f.before.params(), &ProtocolParams::small());
}

/// An account table smaller than one transaction's accounts is a configuration error, reported
/// before any key is generated or read.
#[test]
fn an_account_table_below_one_transaction_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ProverConfig::new(ProtocolParams::small(), 2, dir.path().join("keys"));
    config.progress = false;
    config.accounts = Some(3);
    match BatchProver::load_or_keygen(config) {
        Err(ProverError::Config(msg)) => assert!(msg.contains("at least 4"), "{msg}"),
        other => panic!("expected a configuration error, got {:?}", other.err()),
    }
    assert!(!dir.path().join("keys").exists());
}

/// A prover with a 4-entry account table (what a node run with `--accounts 4` seals for) makes
/// keys of its own shape, proves and verifies a batch that fits the table, and refuses one that
/// names five accounts with the circuit's typed error before proving.
#[test]
fn a_smaller_account_table_proves_the_batches_that_fit_it() {
    use collar_circuits::batch::BatchCircuitError;
    let dir = tempfile::tempdir().unwrap();
    let mut config = ProverConfig::new(ProtocolParams::small(), 2, dir.path().join("keys"));
    config.threads = Some(2);
    config.progress = false;
    config.accounts = Some(4);
    let prover = BatchProver::load_or_keygen(config).unwrap();
    assert!(
        prover.circuit_id().contains("/cap2/t4/"),
        "{}",
        prover.circuit_id()
    );
    // Fee account, 5 and 6.
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let before = h.state.clone();
    let txs = [h.deposit(5, 1).tx, h.deposit(6, 2).tx];
    let exec = batch::execute(&mut before.clone(), 1, &txs).unwrap();
    let artifact = prover.prove(&before, &exec).unwrap();
    verify_expecting(&artifact, prover.vk_file(), &exec.public_inputs).unwrap();
    // Two trades between four accounts and the fee account.
    let mut h = Harness::new(ProtocolParams::small(), 1);
    let r = h.register(0, 100_000, 10_000, collar_protocol::OptionKind::Call, 1);
    h.accept(&r);
    let t = h.tick(10, &[(0, 100_000, vec![(0, 5_000)])]);
    h.accept(&t);
    for acc in [0, 2, 3, 4, 5] {
        h.fund(acc, 1_000_000);
    }
    let before = h.state.clone();
    let txs = [
        h.simple_trade(2, 3, 0, 3, 5_000).tx,
        h.simple_trade(4, 5, 0, 3, 5_000).tx,
    ];
    let exec = batch::execute(&mut before.clone(), 1, &txs).unwrap();
    assert!(matches!(
        prover.prove(&before, &exec),
        Err(ProverError::Circuit(BatchCircuitError::TableFull {
            accounts: 5,
            entries: 4
        }))
    ));
}

/// The same keys prove with the EVM (Keccak) transcript: the artifact says so, round-trips,
/// verifies natively, passes the very check the generated Solidity verifier makes, and is
/// rejected when a byte flips or when a Blake2b proof is labelled Keccak.
#[cfg(feature = "evm")]
#[test]
fn keccak_artifacts_verify_natively_and_as_the_evm_verifier_would() {
    use collar_verifier::evm::verifier_sol;
    use collar_verifier::ProofSystem;

    let f = fixture();
    let mut config = f.config.clone();
    config.proof_system = ProofSystem::ShplonkKeccak;
    let prover = BatchProver::load_or_keygen(config).unwrap();
    assert_eq!(
        prover.key_source(),
        KeySource::Cache,
        "the keys do not depend on the transcript"
    );
    let a = prover.prove(&f.before, &f.batch).unwrap();
    assert_eq!(a.proof_system(), ProofSystem::ShplonkKeccak);
    let back = ProofArtifact::from_bytes(&a.to_bytes()).unwrap();
    assert_eq!(back.proof_system(), ProofSystem::ShplonkKeccak);
    let json = ProofArtifact::from_json(&a.to_json()).unwrap();
    assert_eq!(json, back);
    assert_eq!(
        verify(&back, vk_of(f)).unwrap().public_inputs,
        f.batch.public_inputs
    );
    let instances = f.batch.public_inputs.to_fields();
    verifier_sol::verify_natively(
        prover.srs().params(),
        vk_of(f).vk(),
        instances.len(),
        &instances,
        back.proof(),
    )
    .expect("the EVM verifier's check accepts the artifact's proof bytes");

    let mut bad = back.clone();
    let mid = bad.proof().len() / 2;
    bad.proof_mut()[mid] ^= 1;
    assert!(matches!(
        verify(&bad, vk_of(f)),
        Err(VerifyError::InvalidProof(_))
    ));
    assert!(verifier_sol::verify_natively(
        prover.srs().params(),
        vk_of(f).vk(),
        instances.len(),
        &instances,
        bad.proof(),
    )
    .is_err());

    // A Blake2b proof is not a Keccak proof: the transcript is part of what is checked.
    let relabelled = ProofArtifact::new(
        f.artifact.circuit_id().to_owned(),
        f.artifact.vk_hash(),
        f.artifact.srs(),
        ProofSystem::ShplonkKeccak,
        *f.artifact.public_inputs(),
        f.artifact.proof().to_vec(),
    )
    .unwrap();
    assert!(matches!(
        verify(&relabelled, vk_of(f)),
        Err(VerifyError::InvalidProof(_))
    ));
}

/// halo2's compressed points ignore bit 7 of their last byte (the infinity flag) unless
/// `x = 0`: each point of a proof had a second encoding that verified. The verifier now reads
/// every point and scalar canonically and names the first that is not.
#[test]
fn non_canonical_proof_encodings_are_rejected_by_name() {
    use collar_verifier::{Element, NonCanonical};

    let f = fixture();
    let layout = verify(&f.artifact, vk_of(f)).unwrap().proof_layout;
    let points: Vec<usize> = layout
        .iter()
        .filter(|(_, e)| *e == Element::Point)
        .map(|(at, _)| *at)
        .collect();
    let scalars = layout.len() - points.len();
    println!(
        "batch-1 proof: {} bytes, {} points, {scalars} scalars",
        f.artifact.proof().len(),
        points.len()
    );
    assert!(!points.is_empty() && scalars > 0);
    // Both a compressed point and a scalar take 32 bytes here.
    assert_eq!(
        layout.last().map(|(at, _)| at + 32),
        Some(f.artifact.proof().len()),
        "the layout covers the whole proof"
    );
    for &at in &points {
        let mut bad = f.artifact.clone();
        bad.proof_mut()[at + 31] |= 0x80;
        match verify(&bad, vk_of(f)) {
            Err(VerifyError::NonCanonicalProof(NonCanonical { offset, element })) => {
                assert_eq!((offset, element), (at, Element::Point))
            }
            other => panic!("infinity flag on the point at byte {at}: {other:?}"),
        }
    }
    // A scalar is little-endian: its top byte at 0xff puts it above the modulus.
    for &(at, e) in &layout {
        if e == Element::Scalar {
            let mut bad = f.artifact.clone();
            bad.proof_mut()[at + 31] = 0xff;
            assert!(matches!(
                verify(&bad, vk_of(f)),
                Err(VerifyError::InvalidProof(_))
            ));
        }
    }
}

/// Every field of an artifact is checked: the circuit id and SRS must be the key file's, whose
/// hash the artifact names; text that cannot be printed safely is refused on reading.
#[test]
fn artifact_metadata_must_be_the_keys() {
    use collar_verifier::SrsId;

    let f = fixture();
    let a = &f.artifact;
    let with = |id: &str, srs: SrsId| {
        ProofArtifact::new(
            id.into(),
            a.vk_hash(),
            srs,
            a.proof_system(),
            *a.public_inputs(),
            a.proof().to_vec(),
        )
    };
    let srs = a.srs();
    let long = "x".repeat(256);
    for id in ["collar-batch-v4/other", long.as_str()] {
        match verify(&with(id, srs).unwrap(), vk_of(f)) {
            Err(VerifyError::MetadataMismatch { field, .. }) => assert_eq!(field, "circuit id"),
            other => panic!("circuit id {id:?}: {other:?}"),
        }
    }
    for id in ["", "two words", "bell\u{7}", "é"] {
        assert_eq!(
            with(id, srs).unwrap_err(),
            FormatError::InvalidCircuitId,
            "{id:?}"
        );
    }
    let ceremony = SrsId {
        kind: SrsKind::Ceremony,
        ..srs
    };
    let zero = SrsId {
        digest: [0; 32],
        ..srs
    };
    for other in [ceremony, zero] {
        match verify(&with(a.circuit_id(), other).unwrap(), vk_of(f)) {
            Err(VerifyError::MetadataMismatch { field, .. }) => assert_eq!(field, "srs"),
            other => panic!("{other:?}"),
        }
    }
    // What verification returns is the key file's, and the artifact's equals it.
    let ok = verify(a, vk_of(f)).unwrap();
    assert_eq!(
        (ok.circuit_id.as_str(), ok.srs, ok.vk_hash),
        (vk_of(f).circuit_id(), vk_of(f).srs(), vk_of(f).hash())
    );
    assert_eq!(
        (a.circuit_id(), a.srs()),
        (vk_of(f).circuit_id(), vk_of(f).srs())
    );
}

/// A key file made on the development SRS cannot be relabelled a ceremony's: not by its kind
/// byte alone, nor with a digest recomputed for the new label.
#[test]
fn a_development_key_relabelled_ceremony_is_refused() {
    use collar_verifier::SrsId;

    let f = fixture();
    let vk = vk_of(f).to_bytes().to_vec();
    let kind_at = 8 + 2 + 4 + vk_of(f).circuit_id().len();
    assert_eq!(vk[kind_at], 0xde);
    let mut relabelled = vk.clone();
    relabelled[kind_at] = 0x01;
    assert_eq!(
        VerifyingKeyFile::from_bytes(&relabelled).unwrap_err(),
        FormatError::MislabelledSrs
    );
    let (g0, g2, s_g2) = vk_of(f).kzg_points();
    let forged = SrsId::new(SrsKind::Ceremony, &g0, &g2, &s_g2);
    assert_ne!(
        forged.digest,
        vk_of(f).srs().digest,
        "the digest covers the kind"
    );
    relabelled[kind_at + 1..kind_at + 33].copy_from_slice(&forged.digest);
    assert_eq!(
        VerifyingKeyFile::from_bytes(&relabelled).unwrap_err(),
        FormatError::MislabelledSrs
    );
    assert_eq!(vk_of(f).srs(), SrsId::development());
}

/// What a bit-flip sweep saw.
#[derive(Debug, Default)]
struct Sweep {
    tried: usize,
    /// Rejections by the check that made them.
    rejected: std::collections::BTreeMap<String, usize>,
    /// `(byte, bit)` of every variant accepted.
    accepted: Vec<(usize, u8)>,
}

impl Sweep {
    fn reject(&mut self, why: impl Into<String>) {
        *self.rejected.entry(why.into()).or_default() += 1;
    }
    fn report(&self, what: &str) {
        let rejected: usize = self.rejected.values().sum();
        println!(
            "{what}: {} variants tried, {rejected} rejected {:?}, {} accepted (first: {:?})",
            self.tried,
            self.rejected,
            self.accepted.len(),
            &self.accepted[..self.accepted.len().min(8)]
        );
    }
}

/// Flips each chosen bit of the artifact's binary encoding and verifies the result against the
/// key file: every variant must be rejected (an accepted one would be a second encoding of a
/// verified statement).
fn sweep_artifact(f: &Fixture, bytes: impl Iterator<Item = usize>) -> Sweep {
    let good = f.artifact.to_bytes();
    let mut s = Sweep::default();
    for at in bytes {
        for bit in 0..8u8 {
            let mut b = good.clone();
            b[at] ^= 1 << bit;
            s.tried += 1;
            match ProofArtifact::from_bytes(&b) {
                Err(_) => s.reject("malformed"),
                Ok(a) => match verify(&a, vk_of(f)) {
                    Err(e) => s.reject(e.check()),
                    Ok(_) => s.accepted.push((at, bit)),
                },
            }
        }
    }
    s
}

/// Flips each chosen bit of the key file. Each variant is tried twice: against the artifact as
/// it is, and against the artifact rewritten to name the variant (its hash, circuit id and
/// SRS), as an attacker holding both files would. Returns the two sweeps.
fn sweep_vk(f: &Fixture, bytes: impl Iterator<Item = usize>) -> (Sweep, Sweep) {
    let good = vk_of(f).to_bytes().to_vec();
    let a = &f.artifact;
    let (mut plain, mut repointed) = (Sweep::default(), Sweep::default());
    for at in bytes {
        for bit in 0..8u8 {
            let mut b = good.clone();
            b[at] ^= 1 << bit;
            plain.tried += 1;
            repointed.tried += 1;
            let vk = match VerifyingKeyFile::from_bytes(&b) {
                Err(_) => {
                    plain.reject("malformed");
                    repointed.reject("malformed");
                    continue;
                }
                Ok(vk) => vk,
            };
            match verify(a, &vk) {
                Err(e) => plain.reject(e.check()),
                Ok(_) => plain.accepted.push((at, bit)),
            }
            let renamed = ProofArtifact::new(
                vk.circuit_id().to_owned(),
                vk.hash(),
                vk.srs(),
                a.proof_system(),
                *a.public_inputs(),
                a.proof().to_vec(),
            )
            .unwrap();
            match verify(&renamed, &vk) {
                Err(e) => repointed.reject(e.check()),
                Ok(_) => repointed.accepted.push((at, bit)),
            }
        }
    }
    (plain, repointed)
}

/// The sweeps' verdicts: no artifact variant and no key variant verifies the original
/// artifact. Rewriting the artifact to name a variant key (another vk hash) succeeds only where
/// the variant differs in a field the halo2 key does not depend on: the circuit id, and the
/// Pow5 capacity (which places the prover's chip rows; the constraint system is the same). Such
/// a file is a relabelled copy of the same keys, told apart by its hash.
fn assert_sweeps(artifact: &Sweep, plain: &Sweep, repointed: &Sweep) {
    artifact.report("proof artifact");
    plain.report("key file");
    repointed.report("key file, artifact rewritten to name it");
    assert!(artifact.tried > 0 && plain.tried > 0);
    assert!(artifact.accepted.is_empty(), "{:?}", artifact.accepted);
    assert!(plain.accepted.is_empty(), "{:?}", plain.accepted);
    let f = fixture();
    let id = 14..14 + vk_of(f).circuit_id().len();
    // After the id: SRS kind and digest (33), k (4), one advice phase (4 + 4), fixed (4),
    // three lookup phases (4 + 12), lookup bits (1 + 4), instance columns (4), hashing (1).
    let capacity_at = id.end + 33 + 4 + 8 + 4 + 16 + 5 + 4 + 1;
    let vk = vk_of(f).to_bytes();
    assert_eq!(
        u32::from_le_bytes(vk[capacity_at..capacity_at + 4].try_into().unwrap()) as usize,
        vk_of(f).config().capacity,
        "the Pow5 capacity's place in the key file"
    );
    let capacity = capacity_at..capacity_at + 4;
    let (labels, other): (Vec<_>, Vec<_>) = repointed
        .accepted
        .iter()
        .copied()
        .partition(|(at, _)| id.contains(at) || capacity.contains(at));
    println!(
        "re-pointed variants accepted: {} in the circuit id or the Pow5 capacity, {} elsewhere",
        labels.len(),
        other.len()
    );
    assert!(other.is_empty(), "{other:?}");
}

/// The tamper sweep CI runs: every bit of every artifact byte outside the proof, of the last
/// byte of every proof element (where the flag bits are) and of every 61st proof byte; every
/// bit of the key file up to its halo2 key and of every 97th byte after. The full sweep is
/// `tamper_sweep_full`.
#[test]
fn tamper_sweep_sampled() {
    let f = fixture();
    let layout = verify(&f.artifact, vk_of(f)).unwrap().proof_layout;
    let total = f.artifact.to_bytes().len();
    let proof_at = total - f.artifact.proof().len();
    let mut bytes: std::collections::BTreeSet<usize> = (0..proof_at).collect();
    bytes.extend(layout.iter().map(|(at, _)| proof_at + at + 31));
    bytes.extend((proof_at..total).step_by(61));
    let artifact = sweep_artifact(f, bytes.into_iter());

    let vk_len = vk_of(f).to_bytes().len();
    let halo2_at = vk_len
        - vk_of(f)
            .vk()
            .to_bytes(halo2_base::halo2_proofs::SerdeFormat::RawBytes)
            .len();
    let vk_bytes = (0..halo2_at).chain((halo2_at..vk_len).step_by(97));
    let (plain, repointed) = sweep_vk(f, vk_bytes);
    assert_sweeps(&artifact, &plain, &repointed);
}

/// Every bit of every byte of the artifact and of the key file (25,896 and 15,616 variants;
/// 22 minutes on two cores, sharing them with a build, on 2026-12-08):
/// `cargo test -p collar-prover --features collar-verifier/evm --test native tamper_sweep_full
/// -- --ignored --nocapture`.
#[test]
#[ignore = "every bit of both files; run by hand (command in the doc comment)"]
fn tamper_sweep_full() {
    let f = fixture();
    let artifact = sweep_artifact(f, 0..f.artifact.to_bytes().len());
    let (plain, repointed) = sweep_vk(f, 0..vk_of(f).to_bytes().len());
    assert_sweeps(&artifact, &plain, &repointed);
}
