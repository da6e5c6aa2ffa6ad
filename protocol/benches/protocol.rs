//! Throughput of the native protocol: trades through the rules, Merkle updates, signatures,
//! Poseidon, and the witness (prover) path.
//!
//! Run with `cargo bench -p collar-protocol --bench protocol [-- FILTER]`. Everything runs at the
//! production shapes of [`ProtocolParams::default`] (accounts depth 24, 16 position slots, 64
//! order slots, 64 series). Fixtures are built once (deterministic RNG) and cloned per iteration;
//! the setup prints what the batches touch to stderr.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use collar_protocol::field::fr_from_u128;
use collar_protocol::merkle::SparseMerkleTree;
use collar_protocol::poseidon;
use collar_protocol::signature::{self, Signature};
use collar_protocol::testkit::{account_key, Harness};
use collar_protocol::{Account, Fr, OptionKind, ProtocolParams, PublicKey, SignedTx, State};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, BenchmarkId, Criterion,
    SamplingMode, Throughput,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Regular accounts: ids `FIRST_ACCOUNT..FIRST_ACCOUNT + ACCOUNTS`.
const ACCOUNTS: u64 = 1000;
const FIRST_ACCOUNT: u64 = 2;
/// Market makers: the four ids right after the regular accounts.
const MARKET_MAKERS: u64 = 4;
/// Trades per batch.
const BATCH: usize = 1024;
/// Trades per iteration of the witness bench.
const WITNESS_BATCH: usize = 64;
/// Leaves already in the tree of the Merkle benches.
const PREPOPULATED_LEAVES: usize = 10_000;
/// Updates per iteration of the Merkle benches.
const MERKLE_UPDATES: usize = 1024;

const SPOT: u64 = 100_000;
const EXPIRY: u64 = 1_000_000_000;
const TICK_TIME: u64 = 1_000;
/// `(kind, strike, mark per contract)` of the registered series, ids in this order.
const SERIES: [(OptionKind, u64, u64); 8] = [
    (OptionKind::Call, 90_000, 12_000),
    (OptionKind::Call, 100_000, 5_000),
    (OptionKind::Call, 110_000, 2_000),
    (OptionKind::Call, 120_000, 800),
    (OptionKind::Put, 90_000, 1_500),
    (OptionKind::Put, 100_000, 4_500),
    (OptionKind::Put, 110_000, 11_000),
    (OptionKind::Put, 120_000, 20_500),
];

/// A funded state at production shapes and pre-signed trade batches that it accepts.
struct Fixture {
    /// Committed state: 1 underlying, 8 priced series, 1000 + 4 funded accounts.
    base: State,
    /// `BATCH` trades between random pairs of regular accounts.
    pairs: Vec<SignedTx>,
    /// `BATCH` trades in which one side is always one of the market makers.
    mm: Vec<SignedTx>,
    /// `base` after applying `pairs` (not committed).
    after_pairs: State,
    /// `base` after applying `mm` (not committed).
    after_mm: State,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

fn build_fixture() -> Fixture {
    let mut h = Harness::new(ProtocolParams::default(), 1);
    for (kind, strike, _) in SERIES {
        let reg = h.register(0, strike, EXPIRY, kind, 1);
        h.submit(&reg).expect("register series");
    }
    let marks: Vec<(u32, u64)> = SERIES
        .iter()
        .enumerate()
        .map(|(i, (_, _, mark))| (i as u32, *mark))
        .collect();
    let tick = h.tick(TICK_TIME, &[(0, SPOT, marks)]);
    h.submit(&tick).expect("tick");
    let mm_first = FIRST_ACCOUNT + ACCOUNTS;
    for id in FIRST_ACCOUNT..mm_first {
        let d = h.deposit(id, 10_000_000_000);
        h.submit(&d).expect("deposit");
    }
    for id in mm_first..mm_first + MARKET_MAKERS {
        let d = h.deposit(id, 10_000_000_000_000);
        h.submit(&d).expect("deposit");
    }
    h.state.commit();

    let mut rng = ChaCha8Rng::seed_from_u64(0xC011A5);
    let random_trade = |h: &mut Harness, rng: &mut ChaCha8Rng, buyer: u64, seller: u64| {
        let series = rng.gen_range(0..SERIES.len());
        let size = rng.gen_range(1..=5u64);
        let price = SERIES[series].2;
        h.simple_trade(buyer, seller, series as u32, size, price)
    };
    let regular = |rng: &mut ChaCha8Rng| rng.gen_range(FIRST_ACCOUNT..mm_first);
    let pairs: Vec<SignedTx> = (0..BATCH)
        .map(|_| {
            let buyer = regular(&mut rng);
            let mut seller = regular(&mut rng);
            while seller == buyer {
                seller = regular(&mut rng);
            }
            random_trade(&mut h, &mut rng, buyer, seller)
        })
        .collect();
    let mm: Vec<SignedTx> = (0..BATCH)
        .map(|_| {
            let maker = mm_first + rng.gen_range(0..MARKET_MAKERS);
            let taker = regular(&mut rng);
            if rng.gen_bool(0.5) {
                random_trade(&mut h, &mut rng, maker, taker)
            } else {
                random_trade(&mut h, &mut rng, taker, maker)
            }
        })
        .collect();

    let base = h.state;
    let after_pairs = accept_all(&base, &pairs, "random_pairs");
    let after_mm = accept_all(&base, &mm, "market_makers");
    Fixture {
        base,
        pairs,
        mm,
        after_pairs,
        after_mm,
    }
}

/// Applies (with signature checks) every trade to a clone of `base`, panicking on any
/// rejection, and reports how many distinct accounts the batch dirties.
fn accept_all(base: &State, batch: &[SignedTx], name: &str) -> State {
    let mut s = base.clone();
    let mut touched = BTreeSet::new();
    for (i, stx) in batch.iter().enumerate() {
        let e = s
            .apply_signed(stx)
            .unwrap_or_else(|r| panic!("{name}: trade {i} rejected: {r}"));
        touched.extend(e.accounts.iter().map(|(id, _)| *id));
    }
    eprintln!(
        "fixture {name}: {} trades accepted, {} distinct accounts dirtied",
        batch.len(),
        touched.len()
    );
    s
}

fn apply_batch(mut s: State, batch: &[SignedTx]) -> State {
    for stx in batch {
        s.apply(&stx.tx).expect("accepted in setup");
    }
    s
}

/// Group settings for benches whose iteration takes milliseconds or more.
fn heavy(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sampling_mode(SamplingMode::Flat);
}

fn bench_apply_trades(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("apply_trades");
    heavy(&mut g);
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, batch, applied) in [
        ("random_pairs", &f.pairs, &f.after_pairs),
        ("market_makers", &f.mm, &f.after_mm),
    ] {
        g.bench_function(BenchmarkId::new("rules_only", name), |b| {
            b.iter_batched(
                || f.base.clone(),
                |s| apply_batch(s, batch),
                BatchSize::PerIteration,
            )
        });
        g.bench_function(BenchmarkId::new("rules_and_commit", name), |b| {
            b.iter_batched(
                || f.base.clone(),
                |s| {
                    let mut s = apply_batch(s, batch);
                    black_box(s.commit());
                    s
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function(BenchmarkId::new("commit_only", name), |b| {
            b.iter_batched(
                || applied.clone(),
                |mut s| {
                    black_box(s.commit());
                    s
                },
                BatchSize::PerIteration,
            )
        });
    }
    // Signatures alone (2 per trade), against the keys in the state: one by one on one thread
    // as `apply_signed` does, and as one batch verification over the whole block (items, which
    // hash the order messages, gathered on the rayon pool).
    g.bench_function(BenchmarkId::new("signature_check", "each"), |b| {
        b.iter(|| {
            for stx in &f.pairs {
                f.base.verify_signatures(stx).expect("valid signatures");
            }
        })
    });
    g.bench_function(BenchmarkId::new("signature_check", "batched"), |b| {
        b.iter(|| {
            let items: Vec<(PublicKey, Fr, Signature)> = f
                .pairs
                .par_iter()
                .flat_map_iter(|stx| f.base.signature_items(stx).expect("known signers"))
                .map(|(_, pk, m, sig)| (pk, m, sig))
                .collect();
            signature::verify_batch(&items).expect("valid signatures");
        })
    });
    g.finish();
}

fn random_fr(rng: &mut ChaCha8Rng) -> Fr {
    Fr::from(rng.gen::<u64>()) + fr_from_u128(rng.gen::<u128>()) * fr_from_u128(1u128 << 64)
}

fn bench_merkle(c: &mut Criterion) {
    let depth = ProtocolParams::default().account_depth;
    let mut rng = ChaCha8Rng::seed_from_u64(24);
    let mut tree = SparseMerkleTree::new(depth).expect("depth");
    for _ in 0..PREPOPULATED_LEAVES {
        let i = rng.gen_range(0..1u64 << depth);
        tree.set_leaf(i, random_fr(&mut rng)).expect("index");
    }
    tree.commit();
    let sparse: Vec<(u64, Fr)> = (0..MERKLE_UPDATES)
        .map(|_| (rng.gen_range(0..1u64 << depth), random_fr(&mut rng)))
        .collect();
    // Consecutive ids, like accounts allocated in order: paths share all but the low levels.
    let dense: Vec<(u64, Fr)> = (0..MERKLE_UPDATES as u64)
        .map(|i| (FIRST_ACCOUNT + i, random_fr(&mut rng)))
        .collect();

    let mut g = c.benchmark_group("merkle");
    heavy(&mut g);
    g.throughput(Throughput::Elements(MERKLE_UPDATES as u64));
    for (name, writes) in [("random", &sparse), ("dense", &dense)] {
        g.bench_function(BenchmarkId::new("update", name), |b| {
            b.iter_batched(
                || tree.clone(),
                |mut t| {
                    for (i, v) in writes {
                        black_box(t.update(*i, *v).expect("index"));
                    }
                    t
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function(BenchmarkId::new("batched_commit", name), |b| {
            b.iter_batched(
                || tree.clone(),
                |mut t| {
                    for (i, v) in writes {
                        t.set_leaf(*i, *v).expect("index");
                    }
                    black_box(t.commit());
                    t
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn bench_signatures(c: &mut Criterion) {
    let items: Vec<(PublicKey, Fr, Signature)> = (0..1024u64)
        .map(|i| {
            let sk = account_key(FIRST_ACCOUNT + i);
            let m = Fr::from(i * 7919 + 1);
            (sk.public_key(), m, sk.sign(m))
        })
        .collect();
    let mut g = c.benchmark_group("signatures");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify", |b| {
        let (pk, m, sig) = &items[0];
        b.iter(|| signature::verify(black_box(pk), black_box(*m), black_box(sig)).expect("valid"))
    });
    for n in [64usize, 1024] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("verify_batch", n), |b| {
            b.iter(|| signature::verify_batch(black_box(&items[..n])).expect("valid"))
        });
    }
    g.finish();
}

fn bench_poseidon(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let six: Vec<Fr> = (0..6).map(|_| random_fr(&mut rng)).collect();
    let mut g = c.benchmark_group("poseidon");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    g.bench_function("hash2", |b| {
        b.iter(|| poseidon::hash2(black_box(six[0]), black_box(six[1])))
    });
    g.bench_function("hash6", |b| b.iter(|| poseidon::hash(black_box(&six))));
    g.bench_function("permute", |b| {
        let mut state = [six[0], six[1], six[2]];
        b.iter(|| poseidon::permute(black_box(&mut state)))
    });
    g.bench_function("permute_reference", |b| {
        let mut state = [six[0], six[1], six[2]];
        b.iter(|| poseidon::permute_reference(black_box(&mut state)))
    });
    g.finish();
}

/// The per-account leaf hash that `commit` runs for every dirty account, split into its parts.
fn bench_account_leaf(c: &mut Criterion) {
    let f = fixture();
    let depth = f.base.params().order_slot_depth;
    // A regular account after one trade (one position, one order slot) and a market maker.
    let typical: Account = f
        .after_pairs
        .accounts()
        .filter(|(id, _)| (FIRST_ACCOUNT..FIRST_ACCOUNT + ACCOUNTS).contains(id))
        .map(|(_, a)| a)
        .find(|a| a.orders.len() == 1)
        .expect("an account with one order")
        .clone();
    let maker: Account = f
        .after_mm
        .account(FIRST_ACCOUNT + ACCOUNTS)
        .expect("market maker")
        .clone();
    eprintln!(
        "account_leaf: typical has {} positions / {} order slots, market maker {} / {}",
        typical.positions.iter().filter(|p| p.size != 0).count(),
        typical.orders.len(),
        maker.positions.iter().filter(|p| p.size != 0).count(),
        maker.orders.len()
    );
    let mut g = c.benchmark_group("account_leaf");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(1));
    for (name, acc) in [("typical", &typical), ("market_maker", &maker)] {
        g.bench_function(BenchmarkId::new("leaf", name), |b| {
            b.iter(|| black_box(acc).leaf(depth))
        });
        g.bench_function(BenchmarkId::new("orders_root", name), |b| {
            b.iter(|| black_box(acc).orders_root(depth))
        });
    }
    g.bench_function("positions_hash", |b| {
        b.iter(|| black_box(&typical).positions_hash())
    });
    g.finish();
}

fn bench_witness(c: &mut Criterion) {
    let f = fixture();
    let batch = &f.pairs[..WITNESS_BATCH];
    let mut g = c.benchmark_group("witness");
    heavy(&mut g);
    g.throughput(Throughput::Elements(WITNESS_BATCH as u64));
    g.bench_function(BenchmarkId::new("apply_with_witness", WITNESS_BATCH), |b| {
        b.iter_batched(
            || f.base.clone(),
            |mut s| {
                for stx in batch {
                    black_box(s.apply_with_witness(&stx.tx).expect("accepted in setup"));
                }
                s
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_apply_trades,
    bench_merkle,
    bench_signatures,
    bench_poseidon,
    bench_account_leaf,
    bench_witness
);
criterion_main!(benches);
