//! Crash test: a real `collar node` process is killed with SIGKILL at random points while a
//! client submits transactions as fast as it can, then restarted. The client retries every
//! transaction until it gets a 2xx (safe: resubmission is idempotent). Afterwards every
//! transaction that got a 2xx is in the log exactly once, in order, batches cover the log
//! contiguously (none lost or sealed twice), and the final state root equals the root of the
//! same transactions applied without any crash.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use collar_sequencer::client::Client;
use collar_sequencer::db::Db;
use collar_sequencer::sequencer::fr_hex;
use common::*;
use rand::{Rng, SeedableRng};

fn spawn_node(url: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_collar"))
        .args([
            "node",
            "--database-url",
            url,
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--operator-token",
            TOKEN,
            "--batch-size",
            "5",
            "--batch-timeout-ms",
            "50",
            "--params",
            "small",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("collar binary")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn crash_run(engine: Engine) {
    let tdb = TestDb::new(engine).await;
    let seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // The workload: deposits to 150 accounts, then a withdrawal from each (nonce 0): 300 txs
    // whose order matters (the deposit-queue chain), so the root checks ordering too.
    let mut h = harness();
    let mut work = Vec::new();
    for a in 2..152u64 {
        work.push(("/v1/operator/deposits", h.deposit(a, 1_000 + a)));
    }
    let mut model = harness();
    for (_, d) in &work {
        model.accept(d);
    }
    for a in 2..152u64 {
        let w = model.withdraw(a, 7);
        model.accept(&w);
        work.push(("/v1/withdrawals", w));
    }
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let c = Client::new(url, Some(TOKEN.into()));
    let mut child = spawn_node(&tdb.url, port);
    // Kill points: 5 distinct random transaction indices; at each, the kill lands a random
    // 0-4 ms after the request was sent (often mid-commit).
    let mut points = std::collections::BTreeSet::new();
    while points.len() < 5 {
        points.insert(rng.gen_range(1..work.len()));
    }
    let mut kills = 0;
    let mut receipts = Vec::new();
    let started = Instant::now();
    for (i, (path, stx)) in work.iter().enumerate() {
        let mut first = true;
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "crash test stalled"
            );
            let reply = if first && points.contains(&i) {
                let (c2, p2, s2) = (c.clone(), path.to_string(), stx.clone());
                let inflight = tokio::spawn(async move { c2.submit(&p2, &s2).await });
                tokio::time::sleep(Duration::from_micros(rng.gen_range(0..4_000))).await;
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                child = spawn_node(&tdb.url, port);
                inflight.await.unwrap()
            } else {
                c.submit(path, stx).await
            };
            first = false;
            match reply {
                Ok(r) if r.ok() => {
                    receipts.push(r.body);
                    break;
                }
                Ok(r) => assert!(r.status == 503, "unexpected {} {}", r.status, r.body),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await, // node down
            }
        }
    }
    // Let the timer seal the last batch, then stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(kills, 5, "the node was killed five times");

    let db = Db::connect(&tdb.url, 2).await.unwrap();
    let rows = db.txs_after(0, 1_000).await.unwrap();
    assert_eq!(
        rows.len(),
        work.len(),
        "every acknowledged tx exactly once, nothing extra"
    );
    for (i, ((_, stx), row)) in work.iter().zip(&rows).enumerate() {
        assert_eq!(row.seq, i as i64 + 1);
        assert_eq!(
            row.payload,
            serde_json::to_string(stx).unwrap(),
            "tx {i} in order"
        );
        assert_eq!(
            receipts[i]["seq"], row.seq,
            "the reply named the stored position"
        );
    }
    let batches = db.batches().await.unwrap();
    let mut next = 1;
    for (i, b) in batches.iter().enumerate() {
        assert_eq!(b.number, i as i64 + 1, "batch numbers contiguous");
        assert_eq!(
            b.first_seq, next,
            "batches cover the log without gaps or overlaps"
        );
        next = b.last_seq + 1;
    }
    assert_eq!(next, work.len() as i64 + 1, "the whole log is sealed");
    assert_eq!(
        batches.last().unwrap().new_root,
        fr_hex(&model.state.root()),
        "same root as without crashes"
    );
    println!(
        "crash test ({engine:?}): {kills} kills, {} txs checked, 0 lost, 0 duplicated, {} batches",
        rows.len(),
        batches.len()
    );
    tdb.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_sqlite() {
    crash_run(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_postgres() {
    crash_run(Engine::Postgres).await;
}
