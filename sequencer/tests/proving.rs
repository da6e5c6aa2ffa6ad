//! The real proving path on SQLite: a deposit batch is proved with Halo2/KZG (small params,
//! k = 17, INSECURE DEV SRS), the proof is verified before the batch is marked proved and again
//! from the stored bytes (verified); a batch the circuit cannot take is recorded as a failed job
//! with its reason, never faked. A node's in-process worker proves on a smaller account table
//! when its sequencer seals on that table.

mod common;

use std::sync::Arc;

use collar_sequencer::prover::{
    Halo2Backend, Halo2Config, JobOutcome, ProofBackend, Worker, WorkerConfig,
};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_proof_of_a_deposit_batch_and_honest_failure() {
    let tdb = TestDb::new(Engine::Sqlite).await;
    let mut h = harness();
    let (node, c) = start(node_config(&tdb.url, &h, 3, 60_000)).await;
    // Batch 1: one deposit (sealed by the operator). Batch 2: three deposits, over the
    // capacity of a 2-slot circuit.
    let d = h.deposit(2, 1_234);
    assert_eq!(submit_deposit(&c, &d, &deposit_key(&h)).await.status, 200);
    h.accept(&d);
    let r = c
        .post_raw("/v1/operator/seal", vec![], "application/json", None)
        .await
        .unwrap();
    assert_eq!(r.body["sealed"], 1);
    for a in 3..6 {
        let d = h.deposit(a, 10);
        assert_eq!(submit_deposit(&c, &d, &deposit_key(&h)).await.status, 200);
        h.accept(&d);
    }
    let keys = tempfile::tempdir().unwrap();
    let halo2 = Arc::new(Halo2Backend::new(
        h.genesis.clone(),
        Halo2Config {
            capacity: 2,
            cache_dir: keys.path().to_path_buf(),
            ..Default::default()
        },
    ));
    let backend: Arc<dyn ProofBackend> = halo2.clone();
    let mut w = Worker::new(
        node.db.clone(),
        h.genesis.clone(),
        backend.clone(),
        WorkerConfig::named("real"),
    );
    let out = w.run_once().await.unwrap();
    assert!(
        matches!(out, Some(JobOutcome::Verified { batch: 1, .. })),
        "{out:?}"
    );
    let b = c.get("/v1/batches/1").await.unwrap().body;
    assert_eq!(b["status"], "verified");
    let proof = hex::decode(b["proof"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    let inputs: collar_protocol::batch::BatchPublicInputs =
        serde_json::from_value(b["public_inputs"].clone()).unwrap();
    assert_eq!(
        b["new_root"].as_str().unwrap(),
        collar_sequencer::sequencer::fr_hex(&inputs.new_root)
    );
    // The stored proof verifies; a flipped byte or another batch's inputs do not.
    backend.verify(&inputs, &proof).unwrap();
    let mut bad = proof.clone();
    bad[proof.len() / 2] ^= 1;
    assert!(backend.verify(&inputs, &bad).is_err());
    let mut other = inputs;
    other.batch_number += 1;
    assert!(backend.verify(&other, &proof).is_err());

    // `collar verify PROOF --vk VK`: exit 0 for the stored artifact, non-zero with the failed
    // check named for a flipped byte.
    let files = tempfile::tempdir().unwrap();
    let vk = files.path().join("batch.vk");
    halo2.prover().unwrap().export_vk(&vk).unwrap();
    let verify = |bytes: &[u8]| {
        let path = files.path().join("batch.proof");
        std::fs::write(&path, bytes).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_collar"))
            .arg("verify")
            .arg(&path)
            .arg("--vk")
            .arg(&vk)
            .output()
            .unwrap()
    };
    let ok = verify(&proof);
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("valid: batch 1"));
    let rejected = verify(&bad);
    assert!(!rejected.status.success());
    assert!(
        String::from_utf8_lossy(&rejected.stderr).contains("invalid-proof"),
        "{rejected:?}"
    );

    let out = w.run_once().await.unwrap();
    match out {
        Some(JobOutcome::Failed {
            batch: 2,
            reason,
            permanent: true,
        }) => {
            assert!(reason.contains("capacity"), "{reason}")
        }
        other => panic!("expected an honest failure, got {other:?}"),
    }
    let b = c.get("/v1/batches/2").await.unwrap().body;
    assert_eq!(
        (b["status"].as_str(), b["attempts"].as_i64()),
        (Some("failed"), Some(1))
    );
    assert!(b["error"].as_str().unwrap().contains("capacity"));
    assert_eq!(b["proof"], serde_json::Value::Null);
    node.stop();
}

/// A node whose in-process worker proves on a 4-entry account table. `Node::start` refuses it
/// while batches of two may name six accounts; once the sequencer seals on the table, the
/// worker proves and verifies the batch it seals with the table's own keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_workers_prove_on_a_smaller_account_table() {
    let tdb = TestDb::new(Engine::Sqlite).await;
    let mut h = harness();
    let keys = tempfile::tempdir().unwrap();
    let mut cfg = node_config(&tdb.url, &h, 2, 60_000);
    cfg.workers = 1;
    cfg.halo2 = Halo2Config {
        capacity: 2,
        accounts: Some(4),
        cache_dir: keys.path().to_path_buf(),
        ..Default::default()
    };
    let err = collar_sequencer::node::Node::start(cfg.clone())
        .await
        .err()
        .expect("a table smaller than the batches is refused");
    assert!(
        err.to_string()
            .contains("batches may name 6 accounts; the circuit's account table holds 4"),
        "{err}"
    );
    cfg.sequencer.max_accounts = Some(4);
    let (node, c) = start(cfg).await;
    // The fee account, 2 and 3: batch 1, sealed at its size.
    for (account, amount) in [(2, 1_234), (3, 10)] {
        assert_eq!(deposit(&c, &mut h, account, amount).await.1, Some(1));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(900);
    let b = loop {
        let b = c.get("/v1/batches/1").await.unwrap().body;
        match b["status"].as_str() {
            Some("verified") => break b,
            Some("failed") => panic!("batch 1 failed: {b}"),
            _ => {}
        }
        assert!(std::time::Instant::now() < deadline, "not proved: {b}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert!(
        b["backend"]
            .as_str()
            .unwrap()
            .contains("capacity=2 accounts=4"),
        "{b}"
    );
    assert_eq!(b["tx_count"], 2, "{b}");
    node.stop();
}
