//! Proving and verifying one small deposit batch (small protocol parameters, one slot, k = 17,
//! insecure development SRS). Key generation is timed once, outside criterion, because it is a
//! one-off cost; the proof size and vk file size are printed with it.

use std::time::{Duration, Instant};

use collar_protocol::batch;
use collar_protocol::testkit::Harness;
use collar_protocol::ProtocolParams;
use collar_prover::{BatchProver, KeySource, ProverConfig};
use criterion::{criterion_group, criterion_main, Criterion};

fn prove(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ProverConfig::new(ProtocolParams::small(), 1, dir.path());
    config.progress = false;

    let start = Instant::now();
    let prover = BatchProver::load_or_keygen(config).expect("keygen");
    assert_eq!(prover.key_source(), KeySource::Generated);
    let keygen = start.elapsed();

    let mut h = Harness::new(ProtocolParams::small(), 1);
    let before = h.state.clone();
    let tx = h.deposit(5, 1_234).tx;
    let mut s = before.clone();
    let exec = batch::execute(&mut s, 1, &[tx]).expect("batch executes");
    let start = Instant::now();
    let artifact = prover.prove(&before, &exec).expect("proof");
    let first_prove = start.elapsed();
    let start = Instant::now();
    collar_verifier::verify(&artifact, prover.vk_file()).expect("valid");
    let first_verify = start.elapsed();
    println!(
        "collar-prover bench (single runs): keygen (dev SRS + vk + pk, cap 1, k 17) {keygen:.2?}; \
         prove (incl. self-check) {first_prove:.2?}; verify {first_verify:.2?}; proof {} bytes; \
         artifact {} bytes (binary); vk file {} bytes",
        artifact.proof().len(),
        artifact.to_bytes().len(),
        prover.vk_file().to_bytes().len()
    );

    let mut g = c.benchmark_group("batch_cap1_k17");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("verify", |b| {
        b.iter(|| collar_verifier::verify(&artifact, prover.vk_file()).expect("valid"))
    });
    g.bench_function("prove", |b| {
        b.iter(|| prover.prove(&before, &exec).expect("proof"))
    });
    g.finish();
}

criterion_group!(benches, prove);
criterion_main!(benches);
