//! Crash and outage tests against real `collar` processes.
//!
//! - `sigkill_under_load_*`: a real `collar node` process is killed with SIGKILL at random
//!   points while a client submits transactions as fast as it can, then restarted. The client
//!   retries every transaction until it gets a 2xx (safe: resubmission is idempotent).
//!   Afterwards every transaction that got a 2xx is in the log exactly once, in order, batches
//!   cover the log contiguously (none lost or sealed twice), and the final state root equals the
//!   root of the same transactions applied without any crash.
//! - `sigkill_while_crediting_l1_deposits_sqlite`: the same with deposits sent to the devnet
//!   L1's settlement contract and credited by the node's watcher: every queued deposit is
//!   credited exactly once, in queue order.
//! - `prover_sigkill_mid_proof_postgres`: a real `collar prover` process is killed while it
//!   proves; a second one takes the job over once the lease expires and proves it exactly once.
//! - `postgres_restart_under_load`: the PostgreSQL server is restarted under a `collar node`
//!   process taking load; the node reconnects by itself and nothing is lost or duplicated.
//!
//! Every test here takes [`SERIAL`] first, so none overlaps the Postgres restart.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use collar_protocol::SignedTx;
use collar_sequencer::client::{Client, Reply};
use collar_sequencer::db::{now_ms, Db, JobCounts};
use collar_sequencer::prover::{Halo2Backend, Halo2Config, ProofBackend};
use collar_sequencer::sequencer::fr_hex;
use common::*;
use rand::{Rng, SeedableRng};

/// Serialises the tests of this binary: `postgres_restart_under_load` takes the Postgres
/// server down, which would break any other test using it at that moment.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A child process that is killed (SIGKILL) and reaped when dropped, so a failing test leaves
/// no node or prover behind.
struct Reaper(Child);

impl std::ops::Deref for Reaper {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaper {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `collar node` (small params, no in-process workers) on `port`; its warnings go to
/// `log` if given, else nowhere.
fn spawn_node(
    url: &str,
    port: u16,
    batch_size: usize,
    batch_timeout_ms: u64,
    log: Option<&Path>,
) -> Reaper {
    spawn_node_with(url, port, batch_size, batch_timeout_ms, log, &[])
}

/// [`spawn_node`] with `extra` arguments.
fn spawn_node_with(
    url: &str,
    port: u16,
    batch_size: usize,
    batch_timeout_ms: u64,
    log: Option<&Path>,
    extra: &[&str],
) -> Reaper {
    let stderr = match log {
        Some(p) => Stdio::from(std::fs::File::create(p).unwrap()),
        None => Stdio::null(),
    };
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
            &batch_size.to_string(),
            "--batch-timeout-ms",
            &batch_timeout_ms.to_string(),
            "--params",
            "small",
        ])
        .args(extra)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map(Reaper)
        .expect("collar binary")
}

/// A generator seeded from the clock; prints the seed under `label` so a failure can be
/// replayed.
fn clock_seeded(label: &str) -> rand::rngs::StdRng {
    let seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("{label} seed {seed}");
    rand::rngs::StdRng::seed_from_u64(seed)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One transaction to submit: its endpoint, the transaction and the idempotency key it is
/// sent under (a deposit's number in the queue; `None` for the key the node derives).
type Item = (&'static str, SignedTx, Option<String>);

/// Sends `item` once.
async fn send(c: &Client, item: &Item) -> Result<Reply, reqwest::Error> {
    let (path, stx, key) = item;
    c.submit_with_key(path, stx, key.as_deref()).await
}

/// Transactions to submit, in order, with the harness that applied them without any crash.
struct Workload {
    /// The transactions in submission order.
    txs: Vec<Item>,
    /// The state root after all of `txs` applied in order without any crash, hex.
    root: String,
}

/// Deposits to `accounts` accounts, then a withdrawal from each (nonce 0): `2 * accounts` txs
/// whose order matters (the deposit-queue chain), so the root checks ordering too.
fn workload(accounts: u64) -> Workload {
    let mut h = harness();
    let mut txs = Vec::new();
    for a in 2..2 + accounts {
        let key = format!("deposit-{}", a - 1);
        txs.push(("/v1/operator/deposits", h.deposit(a, 1_000 + a), Some(key)));
    }
    let mut model = harness();
    for (_, d, _) in &txs {
        model.accept(d);
    }
    for a in 2..2 + accounts {
        let w = model.withdraw(a, 7);
        model.accept(&w);
        txs.push(("/v1/withdrawals", w, None));
    }
    Workload {
        txs,
        root: fr_hex(&model.state.root()),
    }
}

/// One reply of a retry loop: the receipt on 2xx, else why the node or its database was
/// unavailable (a 503 or a connection error: retry). Any other status fails the test.
fn acknowledged(reply: Result<Reply, reqwest::Error>) -> Result<serde_json::Value, String> {
    match reply {
        Ok(r) if r.ok() => Ok(r.body),
        Ok(r) => {
            assert!(r.status == 503, "unexpected {} {}", r.status, r.body);
            Err(format!("503 {}", r.body["message"]))
        }
        Err(e) => Err(format!("transport: {e}")),
    }
}

/// What [`check_log`] measured.
struct LogCheck {
    /// Transactions in the log.
    txs: usize,
    /// Acknowledged transactions missing from the log.
    lost: usize,
    /// Surplus copies of acknowledged transactions.
    duplicated: usize,
    /// Sealed batches.
    batches: usize,
}

/// Checks the database after a run in which every transaction of `work` was acknowledged
/// (`receipts[i]` is the 2xx body for `work.txs[i]`): each is in the log exactly once, in
/// order, at the position its receipt named; batches cover the log contiguously; the last
/// batch's root is the crash-free root. Prints nothing; asserts everything.
async fn check_log(url: &str, work: &Workload, receipts: &[serde_json::Value]) -> LogCheck {
    assert_eq!(receipts.len(), work.txs.len(), "every tx was acknowledged");
    let db = Db::connect(url, 2).await.unwrap();
    let rows = db.txs_after(0, 100_000).await.unwrap();
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for r in &rows {
        *copies.entry(r.payload.as_str()).or_default() += 1;
    }
    let expected: Vec<String> = work
        .txs
        .iter()
        .map(|(_, stx, _)| serde_json::to_string(stx).unwrap())
        .collect();
    let lost = expected
        .iter()
        .filter(|p| !copies.contains_key(p.as_str()))
        .count();
    let duplicated = copies.values().map(|n| n - 1).sum::<usize>();
    assert_eq!((lost, duplicated), (0, 0), "lost, duplicated");
    assert_eq!(
        rows.len(),
        work.txs.len(),
        "every acknowledged tx exactly once, nothing extra"
    );
    for (i, (payload, row)) in expected.iter().zip(&rows).enumerate() {
        assert_eq!(row.seq, i as i64 + 1);
        assert_eq!(&row.payload, payload, "tx {i} in order");
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
    assert_eq!(next, work.txs.len() as i64 + 1, "the whole log is sealed");
    assert_eq!(
        batches.last().unwrap().new_root,
        work.root,
        "same root as without crashes"
    );
    LogCheck {
        txs: rows.len(),
        lost,
        duplicated,
        batches: batches.len(),
    }
}

async fn crash_run(engine: Engine) {
    let _serial = SERIAL.lock().await;
    let tdb = TestDb::new(engine).await;
    let mut rng = clock_seeded("crash test");
    let work = workload(150);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let c = Client::new(url, Some(TOKEN.into()));
    let mut child = spawn_node(&tdb.url, port, 5, 50, None);
    // Kill points: 5 distinct random transaction indices; at each, the kill lands a random
    // 0-4 ms after the request was sent (often mid-commit).
    let mut points = std::collections::BTreeSet::new();
    while points.len() < 5 {
        points.insert(rng.gen_range(1..work.txs.len()));
    }
    let mut kills = 0;
    let mut receipts = Vec::new();
    let started = Instant::now();
    for (i, item) in work.txs.iter().enumerate() {
        let mut first = true;
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "crash test stalled"
            );
            let reply = if first && points.contains(&i) {
                let (c2, item2) = (c.clone(), item.clone());
                let inflight = tokio::spawn(async move { send(&c2, &item2).await });
                tokio::time::sleep(Duration::from_micros(rng.gen_range(0..4_000))).await;
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                child = spawn_node(&tdb.url, port, 5, 50, None);
                inflight.await.unwrap()
            } else {
                send(&c, item).await
            };
            first = false;
            match acknowledged(reply) {
                Ok(body) => {
                    receipts.push(body);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await, // node down
            }
        }
    }
    // Let the timer seal the last batch, then stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(kills, 5, "the node was killed five times");
    let m = check_log(&tdb.url, &work, &receipts).await;
    println!(
        "crash test ({engine:?}): {kills} kills, {} txs checked, {} lost, {} duplicated, {} batches",
        m.txs, m.lost, m.duplicated, m.batches
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

/// A real `collar node` reading deposits from its devnet L1 is SIGKILLed 5 times at random
/// points while a user sends L1 deposits (each resent only if, after a lost reply, the
/// contract's queue shows it did not land, as an L1 user checks inclusion). After the last
/// restart every queued deposit is credited exactly once, in queue order, the state's deposit
/// head is the contract's, and the root is the crash-free one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_crediting_l1_deposits_sqlite() {
    let _serial = SERIAL.lock().await;
    let tdb = TestDb::new(Engine::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("l1.jsonl");
    let journal = journal.to_str().unwrap();
    let mut rng = clock_seeded("L1 crash test");
    let mut h = harness();
    let n = 120u64;
    // Repeated accounts and amounts: identical deposits are distinct queue entries.
    let deposits: Vec<SignedTx> = (0..n)
        .map(|i| h.deposit(2 + i % 40, 1_000 + i % 3))
        .collect();
    let mut model = harness();
    for d in &deposits {
        model.accept(d);
    }
    let port = free_port();
    let c = Client::new(format!("http://127.0.0.1:{port}"), Some(TOKEN.into()));
    let extra = ["--l1-devnet", journal];
    let mut child = spawn_node_with(&tdb.url, port, 5, 50, None, &extra);
    let mut points = std::collections::BTreeSet::new();
    while points.len() < 5 {
        points.insert(rng.gen_range(1..n as usize));
    }
    let (mut kills, mut resent) = (0, 0);
    let started = Instant::now();
    for (i, stx) in deposits.iter().enumerate() {
        let collar_protocol::Tx::Deposit(d) = &stx.tx else {
            unreachable!()
        };
        let body = serde_json::to_vec(d).unwrap();
        let mut first = true;
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "L1 crash test stalled"
            );
            let send = |c: Client, body: Vec<u8>| async move {
                c.post_raw("/v1/l1/deposits", body, "application/json", None)
                    .await
            };
            let reply = if first && points.contains(&i) {
                let inflight = tokio::spawn(send(c.clone(), body.clone()));
                tokio::time::sleep(Duration::from_micros(rng.gen_range(0..4_000))).await;
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                child = spawn_node_with(&tdb.url, port, 5, 50, None, &extra);
                inflight.await.unwrap()
            } else {
                send(c.clone(), body.clone()).await
            };
            first = false;
            match acknowledged(reply) {
                Ok(r) => {
                    assert_eq!(r["index"].as_u64(), Some(i as u64 + 1), "{r}");
                    break;
                }
                Err(_) => {
                    // Did it land? Ask the contract's queue once the node answers again.
                    wait_healthy(&c).await;
                    let queued = c.get("/v1/l1").await.unwrap().body["queued"].as_u64();
                    if queued == Some(i as u64 + 1) {
                        break;
                    }
                    assert_eq!(queued, Some(i as u64), "nothing else is queued");
                    resent += 1;
                }
            }
        }
    }
    // Everything credited and sealed, then stop.
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "never credited"
        );
        let s = c.get("/v1/l1").await.map(|r| r.body).unwrap_or_default();
        if s["credited"].as_u64() == Some(n) {
            assert_eq!(s["state_head"], s["l1_head_at_consumed"], "{s}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let work = Workload {
        txs: deposits
            .into_iter()
            .map(|d| ("/v1/l1/deposits", d, None))
            .collect(),
        root: fr_hex(&model.state.root()),
    };
    let db = Db::connect(&tdb.url, 2).await.unwrap();
    let rows = db.txs_after(0, 100_000).await.unwrap();
    // L1 deposits get no rollup receipt (the watcher submits them): check_log's
    // receipt-position check is moot here; its exactly-once, order, batch and root checks hold.
    let receipts: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::json!({"seq": r.seq}))
        .collect();
    let m = check_log(&tdb.url, &work, &receipts).await;
    assert_eq!(kills, 5, "the node was killed five times");
    println!(
        "L1 crash test: {kills} kills, {resent} deposits resent after checking the queue, {} \
         deposits checked, {} lost, {} duplicated, {} batches",
        m.txs, m.lost, m.duplicated, m.batches
    );
    tdb.drop_db().await;
}

/// Spawns `collar prover` (capacity 2, k 17, INSECURE dev SRS, keys cached in `keys`) with
/// `extra` arguments; stderr is piped (its log is read by [`LogLines`]).
fn spawn_prover(url: &str, keys: &Path, name: &str, extra: &[&str]) -> Reaper {
    Command::new(env!("CARGO_BIN_EXE_collar"))
        .args(["prover", "--database-url", url, "--name", name])
        .args(["--lease-secs", "3", "--max-attempts", "3"])
        .args(["--capacity", "2", "--k", "17", "--key-cache"])
        .arg(keys)
        .args(extra)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(Reaper)
        .expect("collar binary")
}

/// The stderr lines of a child process, read on a thread.
struct LogLines {
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl LogLines {
    fn of(child: &mut Child) -> LogLines {
        let err = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LogLines {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits (blocking) for a line containing `needle`; panics with the log if the process
    /// closes stderr (exits) first or `limit` passes (a hang guard, not a timing assertion).
    fn wait_for(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!("no '{needle}' in the log ({e}):\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Everything read so far plus what is buffered.
    fn drain(&mut self) -> String {
        while let Ok(line) = self.rx.try_recv() {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

/// A real `collar prover` process is SIGKILLed while it proves batch 1 (Postgres, real
/// Halo2/KZG proving at the small shape, INSECURE dev SRS). A second `collar prover --once`
/// on the same key cache takes the job over after the 3 s lease expires, reuses the cached
/// keys and proves it: the batch ends verified with one proof that verifies, the job shows
/// two attempts, and nothing is recorded twice. Slow (keygen plus about two proofs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prover_sigkill_mid_proof_postgres() {
    let _serial = SERIAL.lock().await;
    let tdb = TestDb::new(Engine::Postgres).await;
    let seed = 0xC011A2;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // One batch of two deposits (batch size 2 = circuit capacity), sealed with its last tx.
    let port = free_port();
    let c = Client::new(format!("http://127.0.0.1:{port}"), Some(TOKEN.into()));
    let mut node = spawn_node(&tdb.url, port, 2, 600_000, None);
    let mut h = harness();
    let started = Instant::now();
    for (a, amount) in [(2, 1_000), (3, 2_500)] {
        let d = h.deposit(a, amount);
        loop {
            assert!(started.elapsed() < Duration::from_secs(60), "node never up");
            let key = deposit_key(&h);
            let sent = c.submit_with_key("/v1/operator/deposits", &d, Some(&key));
            if acknowledged(sent.await).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await; // still starting
        }
        h.accept(&d);
    }
    node.kill().unwrap();
    node.wait().unwrap();
    let db = Db::connect(&tdb.url, 2).await.unwrap();
    let sealed = db.batch(1).await.unwrap().expect("batch 1 sealed");
    assert_eq!((sealed.status.as_str(), sealed.tx_count), ("sealed", 2));
    assert_eq!(sealed.new_root, fr_hex(&h.state.root()));
    assert!(db.batch(2).await.unwrap().is_none(), "exactly one batch");

    let keys = tempfile::tempdir().unwrap();
    let mut first = spawn_prover(&tdb.url, keys.path(), "first", &[]);
    let mut log = LogLines::of(&mut first);
    let t0 = Instant::now();
    // The keys are generated (and cached) after the claim; proving starts right after.
    let ready =
        tokio::task::block_in_place(|| log.wait_for("prover keys ready", Duration::from_secs(900)));
    let keygen_s = t0.elapsed().as_secs_f64();
    assert!(ready.contains("Generated"), "fresh cache: {ready}");
    let claimed = db.batch(1).await.unwrap().unwrap();
    assert_eq!(
        (claimed.status.as_str(), claimed.attempts),
        ("proving", 1),
        "claimed by the first prover"
    );
    let delay = Duration::from_millis(rng.gen_range(500..15_000));
    tokio::time::sleep(delay).await;
    assert!(
        first.try_wait().unwrap().is_none(),
        "first prover exited early:\n{}",
        log.drain()
    );
    first.kill().unwrap(); // SIGKILL, mid-proof
    first.wait().unwrap();
    let killed = db.batch(1).await.unwrap().unwrap();
    assert_eq!(
        (
            killed.status.as_str(),
            killed.attempts,
            killed.proof.is_none()
        ),
        ("proving", 1, true),
        "the kill landed before the proof was recorded:\n{}",
        log.drain()
    );

    // Wait for the dead worker's lease to expire, then run a second worker to completion.
    let t_kill = Instant::now();
    loop {
        let until: i64 = sqlx::query_scalar("SELECT lease_until FROM jobs WHERE batch = 1")
            .fetch_one(db.pool())
            .await
            .unwrap();
        if until < now_ms() {
            break;
        }
        assert!(
            t_kill.elapsed() < Duration::from_secs(60),
            "lease never expires"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let t1 = Instant::now();
    let mut second = spawn_prover(&tdb.url, keys.path(), "second", &["--once"]);
    let mut log2 = LogLines::of(&mut second);
    let (status, stdout) = tokio::task::block_in_place(|| {
        log2.wait_for("prover keys ready", Duration::from_secs(900));
        let status = second.wait().unwrap();
        let mut stdout = String::new();
        second
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        (status, stdout)
    });
    let second_s = t1.elapsed().as_secs_f64();
    let log2 = log2.drain();
    assert!(status.success(), "second prover failed:\n{stdout}\n{log2}");
    assert!(stdout.contains("Verified { batch: 1"), "{stdout}\n{log2}");
    assert!(
        log2.lines()
            .any(|l| l.contains("prover keys ready") && l.contains("Cache")),
        "the second worker reused the cached keys:\n{log2}"
    );

    let b = db.batch(1).await.unwrap().unwrap();
    assert_eq!(b.status, "verified", "{b:?}");
    assert_eq!(b.attempts, 2, "the retry is counted");
    assert_eq!(b.error, None);
    assert_eq!(b.last_error, None);
    assert_eq!(
        db.job_counts().await.unwrap(),
        JobCounts {
            done: 1,
            ..Default::default()
        },
        "one job, done"
    );
    let proofs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM batches WHERE proof IS NOT NULL")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(proofs, 1, "exactly one proof row");
    let owner: Option<String> = sqlx::query_scalar("SELECT lease_owner FROM jobs WHERE batch = 1")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(
        owner.as_deref(),
        Some("second"),
        "the second worker recorded it"
    );
    let inputs: collar_protocol::batch::BatchPublicInputs =
        serde_json::from_str(b.public_inputs.as_deref().unwrap()).unwrap();
    assert_eq!(inputs.batch_number, 1);
    assert_eq!(fr_hex(&inputs.new_root), b.new_root);
    assert_eq!(fr_hex(&inputs.old_root), sealed.old_root);
    // The stored proof verifies with the cached keys; a flipped byte does not.
    let backend = Halo2Backend::new(
        h.genesis.clone(),
        Halo2Config {
            capacity: 2,
            k: 17,
            lookup_bits: 16,
            cache_dir: keys.path().to_path_buf(),
            ..Default::default()
        },
    );
    let proof = b.proof.unwrap();
    tokio::task::block_in_place(|| {
        backend.verify(&inputs, &proof).unwrap();
        let mut bad = proof.clone();
        bad[proof.len() / 2] ^= 1;
        assert!(backend.verify(&inputs, &bad).is_err());
    });
    println!(
        "prover kill test (Postgres, seed {seed:#x}): 1 kill {:.1} s into proving, attempts {}, \
         1 proof row, proof verifies; first prover keygen {keygen_s:.0} s, second prover \
         (cached keys) {second_s:.0} s",
        delay.as_secs_f64(),
        b.attempts
    );
    drop(db);
    tdb.drop_db().await;
}

/// Waits until the node answers `GET /v1/health` with 2xx (it is starting).
async fn wait_healthy(c: &Client) {
    let t = Instant::now();
    while !c.get("/v1/health").await.is_ok_and(|r| r.ok()) {
        assert!(t.elapsed() < Duration::from_secs(60), "node never healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The local PostgreSQL cluster on port 5432 (Debian's `pg_lsclusters`): `(version, name)`.
fn local_cluster() -> (String, String) {
    let out = Command::new("pg_lsclusters")
        .arg("--no-header")
        .output()
        .expect("pg_lsclusters (postgresql-common)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == "5432")
        .map(|f| (f[0].to_string(), f[1].to_string()))
        .unwrap_or_else(|| panic!("no local cluster on port 5432 in:\n{text}"))
}

/// `pg_ctlcluster --skip-systemctl-redirect VERSION NAME ACTION`; whether it succeeded.
fn pg_ctl(cluster: &(String, String), action: &str) -> bool {
    Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &cluster.0, &cluster.1, action])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Makes sure the cluster is running when dropped (also when the test panics), and waits until
/// it accepts connections.
struct PgUpGuard((String, String));

impl Drop for PgUpGuard {
    fn drop(&mut self) {
        if !pg_ctl(&self.0, "status") && !pg_ctl(&self.0, "start") {
            eprintln!("PgUpGuard: could not start cluster {:?}", self.0);
        }
        for _ in 0..300 {
            let ready = Command::new("pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-p", "5432"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("PgUpGuard: cluster {:?} not accepting connections", self.0);
    }
}

async fn postmaster_started() -> String {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap();
    sqlx::query_scalar("SELECT pg_postmaster_start_time()::text")
        .fetch_one(&mut c)
        .await
        .unwrap()
}

/// The PostgreSQL server (the local cluster on port 5432) is restarted with
/// `pg_ctlcluster … restart` (fast shutdown: every connection is cut) while a client submits
/// the crash workload to a real `collar node` process, retrying on errors. The node process
/// stays up and reconnects by itself (2xx again after the restart; it is never respawned);
/// every acknowledged transaction is in the log exactly once, batches are contiguous and the
/// root equals the crash-free root.
///
/// Needs root (or the postgres user) and Debian's postgresql-common. The restart disturbs
/// every test using the server at that moment: the tests of this binary take [`SERIAL`], and
/// other test binaries do not overlap because `cargo test` runs test binaries one at a time.
/// (A separate `cargo test` started concurrently on the same server is not protected.) A guard
/// starts the server again if the test fails while it is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load() {
    let _serial = SERIAL.lock().await;
    let admin = pg_admin_url();
    assert!(
        admin.contains("@127.0.0.1:5432/") || admin.contains("@localhost:5432/"),
        "the restart test needs the local server on port 5432, not {admin}"
    );
    let cluster = local_cluster();
    let _up = PgUpGuard(cluster.clone());
    let tdb = TestDb::new(Engine::Postgres).await;
    let seed = 0x5e57a27;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // 500 txs, paced at one acknowledgement per 10 ms or slower, so the load spans the ~2 s
    // restart; the last RESERVE are held back until the server is up again.
    const RESERVE: usize = 100;
    let work = workload(250);
    let port = free_port();
    let c = Client::new(format!("http://127.0.0.1:{port}"), Some(TOKEN.into()));
    let node_log = tempfile::NamedTempFile::new().unwrap();
    let mut node = spawn_node(&tdb.url, port, 5, 50, Some(node_log.path()));
    let restart_at = rng.gen_range(50..200);
    let before = postmaster_started().await;
    wait_healthy(&c).await;

    let mut restart: Option<tokio::task::JoinHandle<bool>> = None;
    let mut restart_began = None;
    let mut server_up = None; // when the restart command returned
    let mut failures = std::collections::BTreeMap::new(); // replies other than 2xx, by reason
    let mut first_failure = None;
    let mut reconnect = None; // first failed reply to the next 2xx
    let mut acked_after_up = 0; // 2xx for requests sent after the restart command returned
    let mut last_ack = Instant::now();
    let mut longest_gap = Duration::ZERO; // between consecutive 2xx, from the restart on
    let mut receipts = Vec::new();
    let started = Instant::now();
    for (i, item) in work.txs.iter().enumerate() {
        if i == restart_at {
            let cl = cluster.clone();
            restart_began = Some(Instant::now());
            restart = Some(tokio::task::spawn_blocking(move || pg_ctl(&cl, "restart")));
        }
        if i == work.txs.len() - RESERVE {
            if let Some(h) = restart.take() {
                assert!(h.await.unwrap(), "restart failed");
                server_up = Some(Instant::now());
            }
        }
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(240),
                "restart test stalled"
            );
            if restart.as_ref().is_some_and(|h| h.is_finished()) {
                assert!(restart.take().unwrap().await.unwrap(), "restart failed");
                server_up = Some(Instant::now());
            }
            let up_before_send = server_up.is_some();
            match acknowledged(send(&c, item).await) {
                Ok(body) => {
                    receipts.push(body);
                    if restart_began.is_some() {
                        longest_gap = longest_gap.max(last_ack.elapsed());
                    }
                    last_ack = Instant::now();
                    if let (Some(f), None) = (first_failure, reconnect) {
                        reconnect = Some(last_ack.duration_since(f));
                    }
                    acked_after_up += usize::from(up_before_send);
                    tokio::time::sleep(Duration::from_millis(10)).await; // pacing
                    break;
                }
                Err(why) => {
                    *failures.entry(why).or_insert(0usize) += 1;
                    first_failure.get_or_insert_with(Instant::now);
                    assert!(restart_began.is_some(), "no failures before the restart");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // the timer seals the last batch
    assert!(
        node.try_wait().unwrap().is_none(),
        "the node process survived the restart"
    );
    node.kill().unwrap();
    node.wait().unwrap();
    let after = postmaster_started().await;
    assert_ne!(before, after, "the server really restarted");
    assert!(acked_after_up >= RESERVE, "2xx again after the restart");
    let m = check_log(&tdb.url, &work, &receipts).await;
    let warnings = std::fs::read_to_string(node_log.path()).unwrap();
    let commit_failures = warnings.matches("commit failed").count();
    let restart_s = server_up
        .unwrap()
        .duration_since(restart_began.unwrap())
        .as_secs_f64();
    let reconnect = match reconnect {
        Some(d) => format!(
            "{:.2} s from the first failed reply to the next 2xx",
            d.as_secs_f64()
        ),
        None => "no failed reply (requests waited for the database)".into(),
    };
    println!(
        "postgres restart test (seed {seed:#x}): restart at tx {restart_at}, restart command \
         {restart_s:.2} s; {} failed replies {failures:?}, {reconnect}; longest wait between 2xx \
         replies {:.2} s; {commit_failures} failed commits logged by the node; {acked_after_up} \
         txs acknowledged after the restart; {} txs checked, {} lost, {} duplicated, {} batches",
        failures.values().sum::<usize>(),
        longest_gap.as_secs_f64(),
        m.txs,
        m.lost,
        m.duplicated,
        m.batches
    );
    tdb.drop_db().await;
}
