//! Integration tests of the node over HTTP, against SQLite and the real Postgres on
//! 127.0.0.1:5432 (each test creates and drops its own database): submission, idempotency
//! (deposits named by their keys, keys scoped per signer), conflicts, typed errors with nothing
//! written on rejection, strict content types and bodies, batching by size and time,
//! restart by replay, job leases and retries, workers sharing the queue, and deposits read from
//! the devnet settlement contract's events.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use collar_protocol::merkle::MerkleProof;
use collar_sequencer::client::Client;
use collar_sequencer::db::Db;
use collar_sequencer::node::L1Config;
use collar_sequencer::prover::{JobOutcome, Worker, WorkerConfig};
use common::*;
use serde_json::Value;

macro_rules! both {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Engine::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(Engine::Postgres).await;
            }
        }
    };
}

both!(submit_idempotency_and_errors);
both!(batching_seal_and_restart);
both!(a_tick_opens_its_batch);
both!(batches_seal_before_the_account_table_overflows);
both!(job_lease_expiry_and_retry);
both!(workers_share_the_queue);
both!(deposits_come_from_the_settlement_contract);
both!(signatures_checked_ahead_of_the_sequencer);
both!(each_deposit_is_named_by_its_key);
both!(idempotency_keys_are_scoped);

async fn tx_count(db: &Db) -> i64 {
    db.tx_count().await.unwrap()
}

async fn submit_idempotency_and_errors(engine: Engine) {
    let tdb = TestDb::new(engine).await;
    let mut h = harness();
    let (node, c) = start(node_config(&tdb.url, &h, 100, 60_000)).await;

    // Deposit (operator, under its queue number): 200 with a receipt; the same payload under
    // the same key again: the same reply.
    let dep = h.deposit(2, 1_000_000);
    let r1 = submit_deposit(&c, &dep, "deposit-1").await;
    assert_eq!(r1.status, 200, "{}", r1.body);
    assert_eq!(r1.body["seq"], 1);
    let r2 = submit_deposit(&c, &dep, "deposit-1").await;
    assert_eq!((r2.status, &r2.body), (200, &r1.body));
    h.accept(&dep);
    assert_eq!(tx_count(&node.db).await, 1);

    // This node has no L1: its L1 routes say so.
    let r = c.get("/v1/l1").await.unwrap();
    assert_eq!((r.status, r.code()), (404, "no_l1"));

    // Operator endpoint without the token: 401, nothing written.
    let anon = Client::new(node.url(), None);
    let d3 = h.deposit(3, 5);
    let r = anon.submit("/v1/operator/deposits", &d3).await.unwrap();
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    // Operator kinds on the generic user route need the token too.
    let r = anon.submit("/v1/transactions", &d3).await.unwrap();
    assert_eq!(r.status, 401);

    // Wrong content type 415, malformed JSON 400, well-formed non-transaction 422, oversize 413.
    let body = serde_json::to_vec(&h.withdraw(2, 10)).unwrap();
    let r = c
        .post_raw("/v1/withdrawals", body.clone(), "text/plain", None)
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (415, "unsupported_media_type"));
    let r = c
        .post_raw(
            "/v1/withdrawals",
            b"{\"tx\": ".to_vec(),
            "application/json",
            None,
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (400, "malformed_json"));
    let r = c
        .post_raw(
            "/v1/withdrawals",
            b"{\"tx\": 5}".to_vec(),
            "application/json",
            None,
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_body"));
    let r = c
        .post_raw(
            "/v1/withdrawals",
            vec![b' '; 20_000],
            "application/json",
            None,
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (413, "payload_too_large"));
    // A withdrawal on the trades endpoint: 422 wrong_kind.
    let r = c
        .post_raw("/v1/trades", body.clone(), "application/json", None)
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (422, "wrong_kind"));
    assert_eq!(tx_count(&node.db).await, 1, "no refusal wrote anything");

    // Protocol rejection: 422 with the rule's code; nothing written.
    let too_much = h.withdraw(2, 2_000_000);
    let r = c.submit("/v1/withdrawals", &too_much).await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (422, "insufficient_collateral"),
        "{}",
        r.body
    );
    // Bad signature: signed by another key.
    let mut forged = h.withdraw(2, 10);
    forged.signatures = h.withdraw(2, 11).signatures;
    let r = c.submit("/v1/withdrawals", &forged).await.unwrap();
    assert_eq!((r.status, r.code()), (422, "bad_signature"), "{}", r.body);
    assert_eq!(tx_count(&node.db).await, 1);

    // A valid withdrawal, then a different one reusing its nonce: 409.
    let w = h.withdraw(2, 10);
    let r = c.submit("/v1/withdrawals", &w).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let other = h.withdraw(2, 20); // same nonce (the harness has not applied `w`)
    let r = c.submit("/v1/withdrawals", &other).await.unwrap();
    assert_eq!((r.status, r.code()), (409, "idempotency_conflict"));
    h.accept(&w);
    // A client key reused with another payload: 409; with the same payload: the same reply.
    let w2 = h.withdraw(2, 30);
    let b2 = serde_json::to_vec(&w2).unwrap();
    let a = c
        .post_raw(
            "/v1/transactions",
            b2.clone(),
            "application/json",
            Some("k-1"),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    let b = c
        .post_raw("/v1/transactions", b2, "application/json", Some("k-1"))
        .await
        .unwrap();
    assert_eq!((b.status, &b.body), (200, &a.body));
    h.accept(&w2);
    let r = c
        .post_raw(
            "/v1/transactions",
            serde_json::to_vec(&h.withdraw(2, 1)).unwrap(),
            "application/json",
            Some("k-1"),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 409);
    assert_eq!(tx_count(&node.db).await, 3);

    // Account query: the proof verifies against the reported accounts root.
    let acc = c.get("/v1/accounts/2").await.unwrap();
    assert_eq!(acc.status, 200);
    assert_eq!(acc.body["account"]["collateral"], h.collateral(2));
    let proof: MerkleProof = serde_json::from_value(acc.body["proof"].clone()).unwrap();
    let root =
        collar_protocol::field::fr_hex::parse(acc.body["accounts_root"].as_str().unwrap()).unwrap();
    proof.verify(root).unwrap();
    assert_eq!(c.get("/v1/accounts/99").await.unwrap().status, 404);
    assert_eq!(c.get("/v1/accounts/x").await.unwrap().status, 400);

    // Batch 1 is open; series, tick, health, metrics, OpenAPI.
    let b = c.get("/v1/batches/1").await.unwrap();
    assert_eq!(
        (b.body["status"].as_str(), b.body["tx_count"].as_u64()),
        (Some("open"), Some(3))
    );
    assert_eq!(c.get("/v1/batches/7").await.unwrap().status, 404);
    assert_eq!(c.get("/v1/series").await.unwrap().status, 200);
    assert_eq!(c.get("/v1/ticks/latest").await.unwrap().status, 200);
    assert_eq!(c.get("/v1/health").await.unwrap().body["next_seq"], 4);
    let m = reqwest::get(format!("{}/metrics", node.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("collar_txs_accepted_total{kind=\"withdraw\"} 2"),
        "{m}"
    );
    let api: Value = c.get("/openapi.json").await.unwrap().body;
    for p in [
        "/v1/trades",
        "/v1/accounts/{id}",
        "/v1/batches/{n}",
        "/v1/operator/deposits",
    ] {
        assert!(
            api["paths"][p].is_object(),
            "{p} missing from the OpenAPI document"
        );
    }
    assert_eq!(c.get("/v1/nothing").await.unwrap().code(), "not_found");
    node.stop();
    tdb.drop_db().await;
}

async fn batching_seal_and_restart(engine: Engine) {
    let tdb = TestDb::new(engine).await;
    let mut h = harness();
    let cfg = node_config(&tdb.url, &h, 3, 400);
    let (node, c) = start(cfg.clone()).await;
    for a in 2..9 {
        let d = h.deposit(a, 1_000 + a);
        let r = submit_deposit(&c, &d, &deposit_key(&h)).await;
        assert_eq!(r.status, 200);
        h.accept(&d);
    }
    // Two batches sealed by size at once; the seventh tx seals by time.
    let b1 = c.get("/v1/batches/1").await.unwrap().body;
    let b2 = c.get("/v1/batches/2").await.unwrap().body;
    assert_eq!(
        (b1["status"].as_str(), b1["tx_count"].as_i64()),
        (Some("sealed"), Some(3))
    );
    assert_eq!(
        (b2["first_seq"].as_i64(), b2["last_seq"].as_i64()),
        (Some(4), Some(6))
    );
    assert_eq!(b1["new_root"], b2["old_root"]);
    let mut waited = 0;
    while c.get("/v1/batches/3").await.unwrap().body["status"] == "open" {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
        assert!(waited < 100, "the timer never sealed batch 3");
    }
    let b3 = c.get("/v1/batches/3").await.unwrap().body;
    assert_eq!(b3["tx_count"], 1);
    assert_eq!(
        b3["new_root"].as_str().unwrap(),
        collar_sequencer::sequencer::fr_hex(&h.state.root())
    );
    // An empty open batch is never sealed.
    let r = c
        .post_raw("/v1/operator/seal", vec![], "application/json", None)
        .await
        .unwrap();
    assert_eq!(r.body["sealed"], Value::Null);
    node.stop();

    // Restart on the same database: the replayed state has the same root, numbering goes on,
    // nothing is sealed twice.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (node, c) = start(cfg).await;
    let health = c.get("/v1/health").await.unwrap().body;
    assert_eq!(
        (health["next_seq"].as_u64(), health["open_batch"].as_u64()),
        (Some(8), Some(4))
    );
    assert_eq!(
        health["sealed_root"].as_str().unwrap(),
        collar_sequencer::sequencer::fr_hex(&h.state.root())
    );
    assert_eq!(node.db.batches().await.unwrap().len(), 3);
    assert_eq!(node.db.job_counts().await.unwrap().queued, 3);
    let d = h.deposit(2, 1);
    let r = submit_deposit(&c, &d, &deposit_key(&h)).await;
    assert_eq!(
        (r.body["seq"].as_u64(), r.body["batch"].as_u64()),
        (Some(8), Some(4))
    );
    node.stop();
    tdb.drop_db().await;
}

/// Batch `n`'s status, first sequence number and transaction count.
async fn batch_summary(c: &Client, n: u64) -> (String, i64, i64) {
    let b = c.get(&format!("/v1/batches/{n}")).await.unwrap().body;
    (
        b["status"].as_str().unwrap_or_default().to_string(),
        b["first_seq"].as_i64().unwrap_or(-1),
        b["tx_count"].as_i64().unwrap_or(-1),
    )
}

/// With an account limit (the provers' account table), a transaction that would make the open
/// batch name more accounts seals it first; the sealed batch fits a circuit table of that size
/// and would not with the transaction. The open batch's accounts survive a restart.
async fn batches_seal_before_the_account_table_overflows(engine: Engine) {
    use collar_circuits::batch::{BatchCircuitError, BatchWitness};
    let tdb = TestDb::new(engine).await;
    let mut h = harness();
    let genesis_state = h.state.clone();
    let mut cfg = node_config(&tdb.url, &h, 8, 60_000);
    cfg.sequencer.max_accounts = Some(3);
    let refused = collar_sequencer::node::Node::start(cfg.clone())
        .await
        .err()
        .expect("a limit of 3 is refused");
    assert!(refused.to_string().contains("below 4"), "{refused}");
    cfg.sequencer.max_accounts = Some(4);
    let (node, c) = start(cfg.clone()).await;
    // The fee account always counts: accounts 2, 3 and 4 fill the table; 5 opens batch 2.
    let mut deposits = Vec::new();
    for (i, (a, batch)) in [(2, 1), (3, 1), (4, 1), (2, 1), (5, 2), (2, 2)]
        .into_iter()
        .enumerate()
    {
        let (d, got) = deposit(&c, &mut h, a, 1_000 + i as u64).await;
        assert_eq!(got, Some(batch), "deposit to {a}");
        deposits.push(d.tx);
    }
    assert_eq!(batch_summary(&c, 1).await, ("sealed".into(), 1, 4));
    // Batch 1 fits a 4-entry table; with the deposit that opened batch 2 it would not.
    let fits = |txs: &[collar_protocol::Tx]| {
        let mut s = genesis_state.clone();
        let exec = collar_protocol::batch::execute(&mut s, 1, txs).unwrap();
        BatchWitness::with_table(&genesis_state, &exec, 8, 4).map(|_| ())
    };
    assert_eq!(fits(&deposits[..4]), Ok(()));
    assert!(matches!(
        fits(&deposits[..5]),
        Err(BatchCircuitError::TableFull {
            accounts: 5,
            entries: 4
        })
    ));
    node.stop();

    // After a restart the open batch still names the fee account, 5 and 2: 6 fits, 7 does not.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (node, c) = start(cfg).await;
    for (a, batch) in [(6, 2), (7, 3)] {
        assert_eq!(
            deposit(&c, &mut h, a, 2_000).await.1,
            Some(batch),
            "deposit to {a}"
        );
    }
    assert_eq!(batch_summary(&c, 2).await, ("sealed".into(), 5, 3));
    node.stop();
    tdb.drop_db().await;
}

/// A tick seals what is open before it (the circuit's tick lane takes a batch's first
/// transaction only), and the batch it opens goes on filling to the size limit.
async fn a_tick_opens_its_batch(engine: Engine) {
    let tdb = TestDb::new(engine).await;
    let mut h = harness();
    let cfg = node_config(&tdb.url, &h, 3, 60_000);
    let (node, c) = start(cfg).await;
    let d = h.deposit(2, 1_000);
    assert_eq!(submit_deposit(&c, &d, &deposit_key(&h)).await.status, 200);
    h.accept(&d);
    let root_before_tick = collar_sequencer::sequencer::fr_hex(&h.state.root());
    let t = h.tick(10, &[(0, 100_000, vec![])]);
    let r = c.submit("/v1/operator/ticks", &t).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["seq"].as_u64(), r.body["batch"].as_u64()),
        (Some(2), Some(2))
    );
    h.accept(&t);
    let b1 = c.get("/v1/batches/1").await.unwrap().body;
    assert_eq!(
        (b1["status"].as_str(), b1["tx_count"].as_i64()),
        (Some("sealed"), Some(1))
    );
    assert_eq!(b1["new_root"].as_str(), Some(root_before_tick.as_str()));
    // The tick's batch fills up to three transactions and seals by size.
    for a in [3, 4] {
        assert_eq!(deposit(&c, &mut h, a, 1_000).await.1, Some(2));
    }
    assert_eq!(batch_summary(&c, 2).await, ("sealed".into(), 2, 3));
    // A tick into an empty open batch seals nothing.
    let t = h.tick(20, &[(0, 100_000, vec![])]);
    let r = c.submit("/v1/operator/ticks", &t).await.unwrap();
    assert_eq!(r.body["batch"].as_u64(), Some(3));
    assert_eq!(node.db.batches().await.unwrap().len(), 2);
    node.stop();
    tdb.drop_db().await;
}

fn digest_backend(delay_ms: u64) -> (Arc<DigestBackend>, Arc<AtomicU64>) {
    let calls = Arc::new(AtomicU64::new(0));
    (
        Arc::new(DigestBackend {
            delay: Duration::from_millis(delay_ms),
            calls: calls.clone(),
        }),
        calls,
    )
}

/// Starts a node with `batches` sealed batches of one deposit each.
async fn sealed_batches(
    tdb: &TestDb,
    batches: u64,
) -> (
    collar_sequencer::node::Node,
    Client,
    collar_protocol::testkit::Harness,
) {
    let mut h = harness();
    let (node, c) = start(node_config(&tdb.url, &h, 1, 60_000)).await;
    for a in 0..batches {
        let d = h.deposit(2 + a, 100);
        assert_eq!(submit_deposit(&c, &d, &deposit_key(&h)).await.status, 200);
        h.accept(&d);
    }
    (node, c, h)
}

async fn job_lease_expiry_and_retry(engine: Engine) {
    let tdb = TestDb::new(engine).await;
    let (node, c, h) = sealed_batches(&tdb, 1).await;
    let db = node.db.clone();
    // Worker A claims with a short lease and dies (never completes).
    let claim = db.claim_job("dead-worker", 300, 3).await.unwrap().unwrap();
    assert_eq!((claim.batch, claim.attempts), (1, 1));
    assert_eq!(
        c.get("/v1/batches/1").await.unwrap().body["status"],
        "proving"
    );
    // While the lease holds, nobody else gets the job.
    assert_eq!(db.claim_job("other", 300, 3).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // After expiry a live worker retries it (attempt 2) and finishes it.
    let (backend, calls) = digest_backend(0);
    let mut w = Worker::new(
        db.clone(),
        h.genesis.clone(),
        backend,
        WorkerConfig::named("live"),
    );
    let out = w.run_once().await.unwrap();
    assert!(
        matches!(out, Some(JobOutcome::Verified { batch: 1, .. })),
        "{out:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let b = c.get("/v1/batches/1").await.unwrap().body;
    assert_eq!(
        (b["status"].as_str(), b["attempts"].as_i64()),
        (Some("verified"), Some(2))
    );
    // The dead worker's late completion or failure is refused: it lost the lease.
    assert!(!db.fail_job(1, "dead-worker", "late", false).await.unwrap());
    assert!(!db
        .complete_job(1, "dead-worker", "{}", b"x", "x", 1)
        .await
        .unwrap());
    assert_eq!(
        c.get("/v1/batches/1").await.unwrap().body["status"],
        "verified"
    );

    // A job whose workers keep dying is given up after max attempts, with the reason recorded.
    let (d, key) = {
        let mut h = h;
        (h.deposit(9, 5), deposit_key(&h))
    };
    assert_eq!(submit_deposit(&c, &d, &key).await.status, 200);
    for attempt in 1..=2 {
        let cl = db
            .claim_job(&format!("dying-{attempt}"), 50, 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((cl.batch, cl.attempts), (2, attempt));
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    assert_eq!(db.claim_job("late", 50, 2).await.unwrap(), None);
    let b = c.get("/v1/batches/2").await.unwrap().body;
    assert_eq!(b["status"], "failed");
    assert!(
        b["last_error"]
            .as_str()
            .unwrap()
            .contains("out of attempts"),
        "{b}"
    );
    node.stop();
    tdb.drop_db().await;
}

async fn workers_share_the_queue(engine: Engine) {
    let tdb = TestDb::new(engine).await;
    let (node, c, h) = sealed_batches(&tdb, 6).await;
    let (backend, calls) = digest_backend(50);
    let mut tasks = Vec::new();
    for name in ["w1", "w2"] {
        let mut w = Worker::new(
            node.db.clone(),
            h.genesis.clone(),
            backend.clone(),
            WorkerConfig::named(name),
        );
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while let Some(o) = w.run_once().await.unwrap() {
                done.push(o);
            }
            done
        }));
    }
    let mut proved = Vec::new();
    for t in tasks {
        for o in t.await.unwrap() {
            match o {
                JobOutcome::Verified { batch, .. } => proved.push(batch),
                other => panic!("unexpected outcome {other:?}"),
            }
        }
    }
    proved.sort();
    assert_eq!(
        proved,
        vec![1, 2, 3, 4, 5, 6],
        "each batch proved exactly once"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    for n in 1..=6 {
        let b = c.get(&format!("/v1/batches/{n}")).await.unwrap().body;
        assert_eq!(
            (b["status"].as_str(), b["attempts"].as_i64()),
            (Some("verified"), Some(1))
        );
    }
    node.stop();
    tdb.drop_db().await;
}

/// Beyond the configured rate the API answers 429 with a typed body and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429() {
    let tdb = TestDb::new(Engine::Sqlite).await;
    let mut h = harness();
    let mut cfg = node_config(&tdb.url, &h, 100, 60_000);
    cfg.api.rate_limit = Some(2);
    let (node, c) = start(cfg).await;
    let mut statuses = Vec::new();
    for a in 2..8 {
        let d = h.deposit(a, 10);
        let r = submit_deposit(&c, &d, &format!("deposit-to-{a}")).await;
        if r.status == 429 {
            assert_eq!(r.code(), "rate_limited");
            let msg = r.body["message"].as_str().unwrap();
            assert!(msg.starts_with("overall limit:"), "{msg}");
        }
        statuses.push(r.status);
    }
    let ok = statuses.iter().filter(|s| **s == 200).count() as i64;
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(
        tx_count(&node.db).await,
        ok,
        "refused submissions wrote nothing"
    );
    node.stop();
}

/// A reply seen through a client bound to one local address: status, `Retry-After`, body.
struct PeerReply {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

/// An operator client whose connections come from `local` (Linux routes all of 127/8 to the
/// loopback interface, so 127.0.0.2 is a second client address on the same machine).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Submits the deposit `stx` under `key` through `http`.
async fn submit_from(
    http: &reqwest::Client,
    url: &str,
    stx: &collar_protocol::SignedTx,
    key: &str,
) -> PeerReply {
    let r = http
        .post(format!("{url}/v1/operator/deposits"))
        .bearer_auth(TOKEN)
        .header("idempotency-key", key)
        .json(stx)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null);
    PeerReply {
        status,
        retry_after,
        body,
    }
}

/// The per-client limit throttles a noisy client (429 naming the per-client limit, with
/// `Retry-After: 1`, nothing written) while another address is served at the same moment; it
/// is checked before the overall limit, so the noisy client's refused requests spend none of
/// the overall budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_rate_limit_is_per_peer_address() {
    let tdb = TestDb::new(Engine::Sqlite).await;
    let mut h = harness();
    let mut cfg = node_config(&tdb.url, &h, 100, 60_000);
    cfg.api.client_rate_limit = Some(2);
    cfg.api.rate_limit = Some(4);
    let (node, _c) = start(cfg).await;
    let url = node.url();
    let (noisy, quiet) = (client_from("127.0.0.1"), client_from("127.0.0.2"));

    let (mut ok, mut limited) = (0, 0);
    for a in 2..10 {
        let d = h.deposit(a, 10);
        let r = submit_from(&noisy, &url, &d, &format!("deposit-to-{a}")).await;
        match r.status {
            200 => {
                h.accept(&d);
                ok += 1;
            }
            429 => {
                assert_eq!(r.body["code"], "rate_limited");
                let msg = r.body["message"].as_str().unwrap();
                assert!(msg.starts_with("per-client limit:"), "{msg}");
                assert!(msg.contains("from 127.0.0.1"), "{msg}");
                assert_eq!(r.retry_after.as_deref(), Some("1"));
                limited += 1;
            }
            s => panic!("unexpected status {s}: {}", r.body),
        }
    }
    assert!(ok >= 2 && limited > 0, "ok {ok}, limited {limited}");
    // The noisy client is throttled; a second address is served right away, twice.
    for a in 20..22 {
        let d = h.deposit(a, 10);
        let r = submit_from(&quiet, &url, &d, &format!("deposit-to-{a}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        h.accept(&d);
    }
    assert_eq!(
        tx_count(&node.db).await,
        ok + 2,
        "refused submissions wrote nothing"
    );
    let m = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains(&format!(
            "collar_http_rate_limited_total{{limit=\"client\"}} {limited}\n"
        )),
        "{m}"
    );
    assert!(
        m.contains("collar_http_rate_limited_total{limit=\"overall\"} 0\n"),
        "{m}"
    );
    node.stop();
}

/// Requests without connection info (an in-process router called with `oneshot`) count as
/// one unknown client: throttled with 429, never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_rate_limit_without_peer_address() {
    use collar_sequencer::api::{router, ApiConfig, AppState};
    use tower::ServiceExt;

    let tdb = TestDb::new(Engine::Sqlite).await;
    let mut h = harness();
    let (node, _c) = start(node_config(&tdb.url, &h, 100, 60_000)).await;
    let app = router(AppState::new(
        node.sequencer.clone(),
        node.db.clone(),
        node.metrics.clone(),
        ApiConfig {
            operator_token: Some(TOKEN.into()),
            client_rate_limit: Some(2),
            ..Default::default()
        },
    ));
    let (mut ok, mut limited) = (0, 0);
    for a in 2..8 {
        let d = h.deposit(a, 10);
        let rq = axum::http::Request::post("/v1/operator/deposits")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("idempotency-key", format!("deposit-to-{a}"))
            .body(axum::body::Body::from(serde_json::to_vec(&d).unwrap()))
            .unwrap();
        let r = app.clone().oneshot(rq).await.unwrap();
        let status = r.status().as_u16();
        let body: Value =
            serde_json::from_slice(&axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap())
                .unwrap();
        match status {
            200 => {
                h.accept(&d);
                ok += 1;
            }
            429 => {
                assert_eq!(body["code"], "rate_limited");
                let msg = body["message"].as_str().unwrap();
                assert!(msg.contains("from an unknown address"), "{msg}");
                limited += 1;
            }
            s => panic!("unexpected status {s}: {body}"),
        }
    }
    assert!(ok >= 2 && limited > 0, "ok {ok}, limited {limited}");
    assert_eq!(tx_count(&node.db).await, ok);
    node.stop();
}

/// Waits until the node has durably credited `n` deposits of its L1 queue and its live state
/// shows them consumed; returns `GET /v1/l1`. The committed reply that credits a deposit can
/// reach the feed before the live state snapshot that consumes it is published, so `credited`
/// alone may run one ahead of `consumed` for a moment.
async fn await_credited(c: &Client, n: u64) -> Value {
    c.await_l1_credited(n, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("deposits not credited: {}", n));
    let started = std::time::Instant::now();
    loop {
        let s = c.get("/v1/l1").await.unwrap().body;
        if s["consumed"].as_u64() >= Some(n) || started.elapsed() >= Duration::from_secs(5) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// With a devnet L1, deposits are the settlement contract's: sent to `deposit()`, read back
/// from `DepositQueued` in queue order (two identical deposits are two deposits), refused on the
/// HTTP deposit routes, refused by the contract with its error and nothing recorded, and after a
/// restart neither lost nor credited twice; the state's deposit head is the contract's.
async fn deposits_come_from_the_settlement_contract(engine: Engine) {
    let tdb = TestDb::new(engine).await;
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness();
    let mut cfg = node_config(&tdb.url, &h, 2, 60_000);
    cfg.l1 = L1Config::Devnet {
        journal: Some(dir.path().join("l1.jsonl")),
    };
    let (node, c) = start(cfg.clone()).await;
    let deposit_body = |stx: &collar_protocol::SignedTx| match &stx.tx {
        collar_protocol::Tx::Deposit(d) => serde_json::to_vec(d).unwrap(),
        _ => unreachable!(),
    };
    let send = |c: &Client, body: Vec<u8>| {
        let c = c.clone();
        async move {
            c.post_raw("/v1/l1/deposits", body, "application/json", None)
                .await
                .unwrap()
        }
    };
    // Two identical deposits and a third: three queue entries, credited in order.
    let d1 = h.deposit(2, 700);
    let d3 = h.deposit(3, 50);
    for (i, d) in [&d1, &d1, &d3].into_iter().enumerate() {
        let r = send(&c, deposit_body(d)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["index"].as_u64(), Some(i as u64 + 1));
        h.accept(d);
    }
    let s = await_credited(&c, 3).await;
    assert_eq!(
        (s["queued"].as_u64(), s["consumed"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(s["state_head"], s["l1_head_at_consumed"]);
    let (head, count) = h.state.deposit_queue();
    assert_eq!(count, 3);
    assert_eq!(
        s["state_head"].as_str().unwrap(),
        collar_sequencer::sequencer::fr_hex(&head)
    );
    let acct = c.get("/v1/accounts/2").await.unwrap().body;
    assert_eq!(
        acct["account"]["collateral"].as_u64(),
        Some(1_400),
        "{acct}"
    );
    assert_eq!(tx_count(&node.db).await, 3);

    // The HTTP deposit routes refuse deposits on an L1 node; nothing is written.
    let d4 = h.deposit(4, 9);
    for route in ["/v1/operator/deposits", "/v1/transactions"] {
        let r = c.submit(route, &d4).await.unwrap();
        assert_eq!((r.status, r.code()), (403, "l1_deposits_only"), "{route}");
    }
    // The contract refuses a zero deposit and a key off the curve: 422 naming its error, no
    // queue entry.
    let mut zero: serde_json::Value = serde_json::from_slice(&deposit_body(&d4)).unwrap();
    zero["amount"] = 0.into();
    let r = send(&c, serde_json::to_vec(&zero).unwrap()).await;
    assert_eq!((r.status, r.code()), (422, "zero_amount"), "{}", r.body);
    let mut off_curve = serde_json::from_slice::<serde_json::Value>(&deposit_body(&d4)).unwrap();
    off_curve["pubkey"]["y"] = format!("0x{:064x}", 5).into();
    let r = send(&c, serde_json::to_vec(&off_curve).unwrap()).await;
    assert_eq!((r.status, r.code()), (422, "invalid_pubkey"), "{}", r.body);
    let r = c
        .post_raw("/v1/l1/deposits", b"{".to_vec(), "application/json", None)
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (400, "malformed_json"));
    assert_eq!(
        c.get("/v1/l1").await.unwrap().body["queued"].as_u64(),
        Some(3)
    );
    assert_eq!(tx_count(&node.db).await, 3);
    node.stop();

    // Restart on the same database and journal: nothing lost or credited twice, and new
    // deposits go on from index 4.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (node, c) = start(cfg).await;
    let s = c.get("/v1/l1").await.unwrap().body;
    assert_eq!(
        (
            s["queued"].as_u64(),
            s["consumed"].as_u64(),
            s["credited"].as_u64()
        ),
        (Some(3), Some(3), Some(3)),
        "{s}"
    );
    let r = send(&c, deposit_body(&d4)).await;
    assert_eq!(r.body["index"].as_u64(), Some(4), "{}", r.body);
    h.accept(&d4);
    let s = await_credited(&c, 4).await;
    assert_eq!(s["state_head"], s["l1_head_at_consumed"]);
    assert_eq!(tx_count(&node.db).await, 4);
    let acct = c.get("/v1/accounts/2").await.unwrap().body;
    assert_eq!(acct["account"]["collateral"].as_u64(), Some(1_400));
    let health = c.get("/v1/health").await.unwrap().body;
    assert_eq!(
        health["next_seq"].as_u64(),
        Some(5),
        "four transactions in the log: {health}"
    );
    node.stop();
    tdb.drop_db().await;
}

/// Submissions sent in one burst, without waiting for replies (so the verification stage
/// usually checks them as one group, ahead of the sequencer; the outcome must not depend on
/// how they are grouped): a forged signature fails its group's batched check, so every member
/// is checked again one by one and only the forgery is refused; a withdrawal signed for an
/// account that a deposit earlier in the burst creates (no key yet when the group is checked)
/// is accepted. The state root is the model's.
async fn signatures_checked_ahead_of_the_sequencer(engine: Engine) {
    use collar_sequencer::idempotency::{derived_key, Scope};
    use collar_sequencer::sequencer::{payload_hash, Submission};
    let tdb = TestDb::new(engine).await;
    let mut h = harness();
    let (node, c) = start(node_config(&tdb.url, &h, 100, 60_000)).await;
    let d2 = h.deposit(2, 1_000);
    assert_eq!(submit_deposit(&c, &d2, "deposit-1").await.status, 200);
    h.accept(&d2);

    let w1 = h.withdraw(2, 10);
    h.accept(&w1);
    let mut forged = h.withdraw(2, 11);
    forged.signatures = w1.signatures.clone();
    let d5 = h.deposit(5, 100);
    h.accept(&d5);
    let w5 = h.withdraw(5, 3);
    h.accept(&w5);
    let mut replies = Vec::new();
    for stx in [&w1, &forged, &d5, &w5] {
        let payload = serde_json::to_string(stx).unwrap();
        let hash = payload_hash(&payload);
        let (tx, rx) = tokio::sync::oneshot::channel();
        node.sequencer
            .submit(Submission {
                idem_key: derived_key(stx, &hash)
                    .unwrap_or_else(|| Scope::Operator.key("deposit-2")),
                stx: stx.clone(),
                payload,
                payload_hash: hash,
                reply: tx,
            })
            .await
            .unwrap();
        replies.push(rx);
    }
    let mut outcomes = Vec::new();
    for rx in replies {
        outcomes.push(rx.await.unwrap().map_err(|e| e.to_string()));
    }
    assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
    let refused = outcomes[1].as_ref().unwrap_err();
    assert!(refused.contains("signature"), "{refused}");
    assert!(outcomes[2].is_ok() && outcomes[3].is_ok(), "{outcomes:?}");
    assert_eq!(tx_count(&node.db).await, 4);
    assert_eq!(
        node.sequencer.live().state.root(),
        h.state.root(),
        "the node's state is the model's"
    );
    node.stop();
    tdb.drop_db().await;
}

/// Collateral of `account` as the node reports it.
async fn collateral(c: &Client, account: u64) -> Option<u64> {
    let r = c.get(&format!("/v1/accounts/{account}")).await.unwrap();
    r.body["account"]["collateral"].as_u64()
}

/// A deposit is named by its `Idempotency-Key` (its L1 identity): two identical deposits under
/// two keys are two credits, the same one resent under its key is answered with its receipt,
/// and a deposit without a key is refused on both routes that take it, writing nothing.
async fn each_deposit_is_named_by_its_key(engine: Engine) {
    let tdb = TestDb::new(engine).await;
    let mut h = harness();
    let (node, c) = start(node_config(&tdb.url, &h, 100, 60_000)).await;
    let d = h.deposit(2, 500);
    let first = submit_deposit(&c, &d, "queue-1").await;
    assert_eq!(first.status, 200, "{}", first.body);
    h.accept(&d);
    let second = c
        .submit_with_key("/v1/transactions", &d, Some("queue-2"))
        .await
        .unwrap();
    assert_eq!(second.status, 200, "{}", second.body);
    h.accept(&d);
    assert_eq!(
        (first.body["seq"].as_u64(), second.body["seq"].as_u64()),
        (Some(1), Some(2)),
        "two deposits, two positions"
    );
    assert_eq!(collateral(&c, 2).await, Some(1_000), "credited twice");
    // Resent under its key (a lost reply): the stored receipt, no third credit.
    let again = submit_deposit(&c, &d, "queue-1").await;
    assert_eq!((again.status, &again.body), (200, &first.body));
    // Without a key: 400 on both routes, nothing written.
    for route in ["/v1/operator/deposits", "/v1/transactions"] {
        let r = c.submit(route, &d).await.unwrap();
        assert_eq!(
            (r.status, r.code()),
            (400, "idempotency_key_required"),
            "{route}: {}",
            r.body
        );
        let msg = r.body["message"].as_str().unwrap();
        assert!(msg.contains("Idempotency-Key"), "{msg}");
    }
    assert_eq!(tx_count(&node.db).await, 2);
    assert_eq!(collateral(&c, 2).await, Some(1_000));
    assert_eq!(
        node.sequencer.live().state.root(),
        h.state.root(),
        "the node's state is the model's"
    );
    // The OpenAPI document says the deposit route requires the key.
    let api = c.get("/openapi.json").await.unwrap().body;
    let op = &api["paths"]["/v1/operator/deposits"]["post"];
    let param = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .unwrap_or_else(|| panic!("no Idempotency-Key parameter: {op}"));
    assert_eq!(param["in"], "header");
    assert_eq!(param["required"], true);
    let bad = op["responses"]["400"]["description"].as_str().unwrap();
    assert!(bad.contains("idempotency_key_required"), "{bad}");
    node.stop();
    tdb.drop_db().await;
}

/// Keys are scoped: the operator's keys and each account's are separate namespaces, so a user
/// reusing the operator's key is judged on its own merits, not refused as a conflict; within a
/// scope another payload is 409; and a forgery under an account's existing key gets the
/// signature's 422, never the 409 that would tell the key exists. Keys survive a restart.
async fn idempotency_keys_are_scoped(engine: Engine) {
    let tdb = TestDb::new(engine).await;
    let mut h = harness();
    let cfg = node_config(&tdb.url, &h, 100, 60_000);
    let (node, c) = start(cfg.clone()).await;
    let user = Client::new(node.url(), None);
    let post = |c: &Client, path: &'static str, stx: &collar_protocol::SignedTx, key: &str| {
        let (c, stx, key) = (c.clone(), stx.clone(), key.to_string());
        async move { c.submit_with_key(path, &stx, Some(&key)).await.unwrap() }
    };
    for (a, key) in [(2, "k-1"), (3, "k-2")] {
        let d = h.deposit(a, 1_000);
        assert_eq!(submit_deposit(&c, &d, key).await.status, 200);
        h.accept(&d);
    }
    // Account 2 uses the operator's key "k-1": a withdrawal of its own, accepted.
    let w = h.withdraw(2, 10);
    let r = post(&user, "/v1/withdrawals", &w, "k-1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["seq"].as_u64(), Some(3));
    h.accept(&w);
    // Account 3 under the operator's "k-2", asking too much: the rules' 422, not a conflict.
    let r = post(&user, "/v1/withdrawals", &h.withdraw(3, 5_000), "k-2").await;
    assert_eq!(
        (r.status, r.code()),
        (422, "insufficient_collateral"),
        "{}",
        r.body
    );
    // Account 3 under the key account 2 used: its own namespace, accepted.
    let w3 = h.withdraw(3, 7);
    let r = post(&user, "/v1/withdrawals", &w3, "k-1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    h.accept(&w3);
    // And one without a header, under its derived key `withdraw:3:1`.
    let w3b = h.withdraw(3, 8);
    let r = user.submit("/v1/withdrawals", &w3b).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    h.accept(&w3b);
    // Within a scope another payload is a conflict: account 2's next withdrawal under "k-1",
    // and another deposit under the operator's "k-1".
    let w2 = h.withdraw(2, 20);
    let r = post(&user, "/v1/withdrawals", &w2, "k-1").await;
    assert_eq!(
        (r.status, r.code()),
        (409, "idempotency_conflict"),
        "{}",
        r.body
    );
    let r = submit_deposit(&c, &h.deposit(4, 1), "k-1").await;
    assert_eq!(
        (r.status, r.code()),
        (409, "idempotency_conflict"),
        "{}",
        r.body
    );
    // A forgery in account 2's name under its existing key "k-1", or in account 3's without a
    // header, under the derived key of its used nonce 1: the signature's 422, not 409.
    let mut forged = w2.clone();
    forged.signatures = h.withdraw(2, 21).signatures;
    let r = post(&user, "/v1/withdrawals", &forged, "k-1").await;
    assert_eq!((r.status, r.code()), (422, "bad_signature"), "{}", r.body);
    let mut stale = w3b.clone();
    if let collar_protocol::Tx::Withdraw(x) = &mut stale.tx {
        x.amount = 9;
    }
    let r = user.submit("/v1/withdrawals", &stale).await.unwrap();
    assert_eq!((r.status, r.code()), (422, "bad_signature"), "{}", r.body);
    // The same signed payload again under its key: its receipt.
    let r = post(&user, "/v1/withdrawals", &w, "k-1").await;
    assert_eq!((r.status, r.body["seq"].as_u64()), (200, Some(3)));
    assert_eq!(tx_count(&node.db).await, 5);
    node.stop();

    // After a restart the scoped keys are read back from the log.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (node, c) = start(cfg).await;
    let user = Client::new(node.url(), None);
    let r = post(&user, "/v1/withdrawals", &w, "k-1").await;
    assert_eq!((r.status, r.body["seq"].as_u64()), (200, Some(3)));
    let r = post(&user, "/v1/withdrawals", &w2, "k-1").await;
    assert_eq!(
        (r.status, r.code()),
        (409, "idempotency_conflict"),
        "{}",
        r.body
    );
    let r = submit_deposit(&c, &h.deposit(4, 1), "k-2").await;
    assert_eq!(
        (r.status, r.code()),
        (409, "idempotency_conflict"),
        "{}",
        r.body
    );
    assert_eq!(tx_count(&node.db).await, 5);
    node.stop();
    tdb.drop_db().await;
}

/// Bodies are parsed strictly: JSON is UTF-8 only (`charset=utf-8` accepted in any case,
/// quoted or not; any other charset or parameter 415 naming what was sent), and an unknown
/// field at any level of a transaction is 422 `invalid_body`, with nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_and_fields_are_strict() {
    let tdb = TestDb::new(Engine::Sqlite).await;
    let mut h = harness();
    let (node, c) = start(node_config(&tdb.url, &h, 100, 60_000)).await;
    let (d, _) = deposit(&c, &mut h, 2, 1_000).await;
    let body = |stx: &collar_protocol::SignedTx| serde_json::to_vec(stx).unwrap();
    let w = h.withdraw(2, 10);
    for ct in [
        "application/json; charset=utf-16",
        "application/json; charset=iso-8859-1",
        "application/json; charset=utf-8; boundary=x",
        "application/json; version=2",
        "application/json;",
        "application/jsonx",
        "text/json",
    ] {
        let r = c
            .post_raw("/v1/withdrawals", body(&w), ct, None)
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.code()),
            (415, "unsupported_media_type"),
            "{ct}"
        );
        let msg = r.body["message"].as_str().unwrap();
        assert!(msg.contains(ct), "{ct}: {msg}");
    }
    assert_eq!(tx_count(&node.db).await, 1);
    let r = c
        .post_raw(
            "/v1/withdrawals",
            body(&w),
            "application/json; charset=UTF-8",
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    h.accept(&w);
    let d2 = h.deposit(3, 5);
    let r = c
        .post_raw(
            "/v1/operator/deposits",
            body(&d2),
            "Application/JSON;Charset=\"utf-8\"",
            Some("deposit-2"),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    h.accept(&d2);

    // A trade of unknown accounts is refused by the rules; with an unknown field in an order,
    // beside the `type` tag, or in the envelope, it is not a transaction at all.
    let trade = h.simple_trade(7, 8, 0, 1, 5_000);
    let r = c.submit("/v1/trades", &trade).await.unwrap();
    assert_eq!(r.status, 422);
    assert_ne!(r.code(), "invalid_body", "{}", r.body);
    for pointer in ["/tx/buy", "/tx", ""] {
        let mut v = serde_json::to_value(&trade).unwrap();
        v.pointer_mut(pointer).unwrap()["note"] = "hi".into();
        let r = c
            .post_raw(
                "/v1/trades",
                serde_json::to_vec(&v).unwrap(),
                "application/json",
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.code()),
            (422, "invalid_body"),
            "at {pointer:?}: {}",
            r.body
        );
        let msg = r.body["message"].as_str().unwrap();
        assert!(msg.contains("unknown field `note`"), "{msg}");
    }
    // An unknown field in a deposit's key: refused likewise.
    let mut v = serde_json::to_value(&d).unwrap();
    v["tx"]["pubkey"]["z"] = "0x01".into();
    let r = c
        .post_raw(
            "/v1/operator/deposits",
            serde_json::to_vec(&v).unwrap(),
            "application/json",
            Some("deposit-3"),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid_body"), "{}", r.body);
    assert_eq!(tx_count(&node.db).await, 3, "no refusal wrote anything");
    assert_eq!(node.sequencer.live().state.root(), h.state.root());
    node.stop();
}
