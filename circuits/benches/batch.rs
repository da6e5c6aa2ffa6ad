//! Proves full batches of trades at the production shape (`ProtocolParams::default()`: depth 24,
//! 16 positions, order depth 6, 64 series) on an INSECURE development SRS.
//!
//! `cargo bench -p collar-circuits --bench batch` measures capacities 1 and 2;
//! `COLLAR_BENCH_CAPACITIES=1,2,4` picks others. For each capacity it prints the `collar stats`
//! table (cells per trade), then times proving (witness build + `create_proof`) with criterion
//! and prints trades per second, proof size and the process's peak memory.
//! `COLLAR_BENCH_ONE_SHOT=1` times one proof per capacity instead (see [`one_shot`]).

use std::cell::RefCell;
use std::time::{Duration, Instant};

use collar_circuits::stats::{self, Prepared, SlotFill, StatsShape};
use collar_protocol::ProtocolParams;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};

fn capacities() -> Vec<usize> {
    std::env::var("COLLAR_BENCH_CAPACITIES")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|c| {
                    c.trim()
                        .parse()
                        .expect("COLLAR_BENCH_CAPACITIES: comma-separated sizes")
                })
                .collect()
        })
        .unwrap_or_else(|| vec![1, 2])
}

/// `COLLAR_BENCH_ONE_SHOT=1` times a single proof per capacity instead of criterion's ten or
/// more samples (for machines where a production proof takes minutes); the output says so.
fn one_shot() -> bool {
    std::env::var("COLLAR_BENCH_ONE_SHOT").is_ok_and(|v| v == "1")
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0))
}

fn prove_batches(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_prove_production");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    for capacity in capacities() {
        let mut shape = StatsShape::production(capacity);
        shape.fill = SlotFill::Trades;
        assert_eq!(shape.params().unwrap(), ProtocolParams::default());
        let built = stats::build(&shape).expect("production batch builds");
        let table = stats::stats_of(&built, ProtocolParams::default());
        println!("\n== capacity {capacity} (all trades), production depth ==\n{table}");
        let cells_per_trade = table.advice_cells as f64 / built.mix.trades as f64;
        let lookups_per_trade = table.lookup_cells as f64 / built.mix.trades as f64;
        let prepared = Prepared::new(built).expect("keygen");
        println!(
            "SRS (INSECURE dev, seed {}) {:.1} s, keygen {:.1} s",
            stats::DEV_SRS_SEED,
            prepared.srs_ms / 1e3,
            prepared.keygen_ms / 1e3
        );
        let times = RefCell::new(Vec::new());
        let proof_bytes = RefCell::new(0usize);
        if one_shot() {
            let t = Instant::now();
            let proof = prepared.prove().expect("proof");
            times.borrow_mut().push(t.elapsed().as_secs_f64());
            *proof_bytes.borrow_mut() = proof.len();
        } else {
            group.bench_function(format!("capacity_{capacity}"), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let t = Instant::now();
                        let proof = prepared.prove().expect("proof");
                        let dt = t.elapsed();
                        total += dt;
                        times.borrow_mut().push(dt.as_secs_f64());
                        *proof_bytes.borrow_mut() = proof.len();
                    }
                    total
                })
            });
        }
        let proof = prepared.prove().expect("proof");
        let t = Instant::now();
        prepared.verify(&proof).expect("the proof verifies");
        let verify_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut ts = times.into_inner();
        ts.sort_by(f64::total_cmp);
        let median = ts[ts.len() / 2];
        println!(
            "capacity {capacity}: {} proof(s){}, median prove {:.2} s (min {:.2}, max {:.2}) => {:.3} trades/s; \
             {:.0} advice cells and {:.0} lookup cells per trade (k = {}, {} advice columns); \
             proof {} bytes; verify {:.1} ms; peak memory (process VmHWM) {}",
            ts.len(),
            if one_shot() { " (one-shot mode)" } else { "" },
            median,
            ts[0],
            ts[ts.len() - 1],
            capacity as f64 / median,
            cells_per_trade,
            lookups_per_trade,
            table.k,
            table.advice_columns,
            *proof_bytes.borrow(),
            verify_ms,
            mib(stats::peak_memory_bytes())
        );
    }
    group.finish();
}

criterion_group!(benches, prove_batches);
criterion_main!(benches);
