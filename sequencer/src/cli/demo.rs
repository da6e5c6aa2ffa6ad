//! `collar demo`: a whole exchange session on embedded SQLite, through the HTTP API of an
//! in-process node: accounts, series, deposits, trades with partial fills, a price move making
//! accounts liquidatable, liquidations, an expiry settlement and withdrawals; then every sealed
//! batch is proved and verified (or honestly reported as unprovable by the current circuit).
//!
//! A local mirror of the state (`testkit::Harness`) builds the signed transactions; every
//! transaction goes through the node's HTTP API, and the mirror only applies what the node
//! accepted, so both must agree (checked at the end by comparing state roots).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use collar_protocol::testkit::Harness;
use collar_protocol::tx::Side;
use collar_protocol::{OptionKind, ProtocolParams, SignedTx, Tx};
use collar_sequencer::api::ApiConfig;
use collar_sequencer::client::Client;
use collar_sequencer::node::{L1Config, Node, NodeConfig};
use collar_sequencer::sequencer::{fr_hex, SequencerConfig};
use serde_json::{json, Value};

use super::CircuitArgs;

/// Arguments of `collar demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory for the SQLite database (default: a temporary one, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Trading accounts (besides the liquidator and the risky short).
    #[arg(long, default_value_t = 6)]
    pub accounts: u64,
    /// Trade fills to attempt (each order pair is filled in two partial fills).
    #[arg(long, default_value_t = 12)]
    pub trades: usize,
    /// Transactions per batch (and circuit slots per proof).
    #[arg(long, default_value_t = 2)]
    pub batch_size: usize,
    /// Skip proving (sealing and the log still happen).
    #[arg(long)]
    pub no_prove: bool,
    /// Most seconds to wait for proofs.
    #[arg(long, default_value_t = 1_800)]
    pub prove_timeout_secs: u64,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Circuit size 2^k.
    #[arg(long, default_value_t = 17)]
    pub k: u32,
    /// Directory of the proving/verifying-key cache (default: ~/.cache/collar/keys); keys
    /// are generated once per circuit shape and reused by later runs.
    #[arg(long)]
    pub key_cache: Option<PathBuf>,
}

const STRIKE: u64 = 100_000;
const EXPIRY_NEAR: u64 = 1_000;
const EXPIRY_FAR: u64 = 100_000;

struct Demo {
    h: Harness,
    c: Client,
    accepted: BTreeMap<&'static str, u64>,
    rejected: Vec<(String, String, String)>,
    trade_time: Duration,
    trades_accepted: u64,
    json: bool,
}

impl Demo {
    /// Submits through the API; on acceptance applies to the mirror. Returns whether accepted.
    async fn send(&mut self, path: &str, stx: SignedTx) -> anyhow::Result<bool> {
        let r = self.c.submit(path, &stx).await?;
        let kind = stx.tx.kind();
        if r.ok() {
            self.h
                .submit(&stx)
                .map_err(|e| anyhow::anyhow!("node accepted a {kind} the mirror rejects: {e}"))?;
            *self.accepted.entry(kind).or_default() += 1;
            Ok(true)
        } else {
            anyhow::ensure!(
                r.status == 422 || r.status == 409,
                "unexpected HTTP {} for {kind}: {}",
                r.status,
                r.body
            );
            self.rejected.push((
                kind.to_string(),
                r.code().to_string(),
                r.body["message"].as_str().unwrap_or("").to_string(),
            ));
            Ok(false)
        }
    }

    /// Sends a deposit to the devnet L1's settlement contract and waits until the node's
    /// watcher has credited it from the contract's event; then applies it to the mirror.
    async fn deposit_on_l1(&mut self, stx: SignedTx) -> anyhow::Result<()> {
        let Tx::Deposit(dep) = &stx.tx else {
            anyhow::bail!("not a deposit: {}", stx.tx.kind());
        };
        let r = self.c.l1_deposit(dep).await?;
        anyhow::ensure!(r.ok(), "L1 deposit: HTTP {} {}", r.status, r.body);
        let index = r.body["index"].as_u64().unwrap_or(u64::MAX);
        let s = self
            .c
            .await_l1_credited(index, Duration::from_secs(30))
            .await?
            .ok_or_else(|| anyhow::anyhow!("deposit {index} not credited after 30 s"))?;
        anyhow::ensure!(
            s["state_head"] == s["l1_head_at_consumed"],
            "the node's deposit head differs from the contract's: {s}"
        );
        self.h
            .submit(&stx)
            .map_err(|e| anyhow::anyhow!("node credited a deposit the mirror rejects: {e}"))?;
        *self.accepted.entry("deposit").or_default() += 1;
        Ok(())
    }

    /// Submits only if the mirror says the rules accept it (keeps the demo flow valid).
    async fn send_if_valid(&mut self, path: &str, stx: SignedTx) -> anyhow::Result<bool> {
        if self.h.state.check(&stx.tx).is_err() {
            return Ok(false);
        }
        self.send(path, stx).await
    }

    async fn seal(&mut self) -> anyhow::Result<()> {
        let r = self
            .c
            .post_raw("/v1/operator/seal", Vec::new(), "application/json", None)
            .await?;
        anyhow::ensure!(r.ok(), "seal: {}", r.body);
        Ok(())
    }

    fn say(&self, msg: &str) {
        if !self.json {
            println!("{msg}");
        } else {
            tracing::info!("{msg}");
        }
    }

    fn tick(&self, t: u64, spot: u64, mark_scale: u64) -> SignedTx {
        let marks: Vec<(u32, u64)> = self
            .h
            .state
            .series()
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_expired(t))
            .map(|(i, s)| (i as u32, s.intrinsic(spot) as u64 + mark_scale))
            .collect();
        self.h.tick(t, &[(0, spot, marks)])
    }
}

/// Runs the demo.
pub async fn run(a: Args) -> anyhow::Result<()> {
    super::init_tracing(if a.json {
        "warn"
    } else {
        "warn,collar_sequencer=info"
    });
    anyhow::ensure!(a.accounts >= 2, "--accounts must be at least 2");
    anyhow::ensure!(a.batch_size >= 1, "--batch-size must be at least 1");
    let params = ProtocolParams::small();
    anyhow::ensure!(
        a.accounts + 4 < 1 << params.account_depth,
        "--accounts too large for the demo's account tree (depth {})",
        params.account_depth
    );
    let tmp;
    let dir = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let db_path = dir.join("collar-demo.db");
    let _ = std::fs::remove_file(&db_path);
    let l1_journal = dir.join("collar-demo-l1.jsonl");
    let _ = std::fs::remove_file(&l1_journal);
    let h = Harness::new(params.clone(), 1);
    let token = "demo-operator-token".to_string();
    let circuit = CircuitArgs {
        capacity: a.batch_size,
        accounts: None,
        k: a.k,
        key_cache: a.key_cache.clone(),
        srs: None,
        evm_proofs: false,
    };
    let node = Node::start(NodeConfig {
        database_url: format!("sqlite://{}", db_path.display()),
        bind: "127.0.0.1:0".parse()?,
        genesis: h.genesis.clone(),
        sequencer: SequencerConfig {
            batch_size: a.batch_size,
            batch_timeout: Duration::from_secs(3_600),
            max_group: 256,
            max_accounts: None,
        },
        api: ApiConfig {
            operator_token: Some(token.clone()),
            ..Default::default()
        },
        workers: usize::from(!a.no_prove),
        halo2: circuit.halo2(),
        max_connections: 4,
        l1: L1Config::Devnet {
            journal: Some(l1_journal.clone()),
        },
    })
    .await?;
    let mut d = Demo {
        h,
        c: Client::new(node.url(), Some(token)),
        accepted: BTreeMap::new(),
        rejected: Vec::new(),
        trade_time: Duration::ZERO,
        trades_accepted: 0,
        json: a.json,
    };
    d.say(&format!(
        "collar demo: node at {}, SQLite at {}, devnet L1 journal at {}\n  protocol params: small (accounts depth {}, {} positions, {} series) so proofs \
         finish on a laptop; production depth proving is much slower.\n  proofs: Halo2/KZG k={} with an INSECURE DEV SRS (public seed), {} slots per batch",
        node.url(),
        db_path.display(),
        l1_journal.display(),
        params.account_depth,
        params.max_positions,
        params.max_series,
        a.k,
        a.batch_size
    ));
    let t_start = Instant::now();
    let traders: Vec<u64> = (0..a.accounts).map(|i| 2 + i).collect();
    let liquidator = 2 + a.accounts;
    let risky = 3 + a.accounts;

    // 1. Deposits (provable batches: seal right after).
    d.say(
        "1. deposits: sent to the settlement contract on the devnet L1, credited from its \
         DepositQueued events",
    );
    for &acct in &traders {
        let stx = d.h.deposit(acct, 50_000_000);
        d.deposit_on_l1(stx).await?;
    }
    let stx = d.h.deposit(liquidator, 200_000_000);
    d.deposit_on_l1(stx).await?;
    let stx = d.h.deposit(risky, 15_015);
    d.deposit_on_l1(stx).await?;
    d.seal().await?;

    // 2. Series: strikes around 100k, near and far expiries, calls and puts.
    d.say("2. option series: 3 strikes x call/put (near expiry) + call/put (far expiry)");
    for (strike, expiry, kind) in [
        (90_000, EXPIRY_NEAR, OptionKind::Call),
        (STRIKE, EXPIRY_NEAR, OptionKind::Call),
        (110_000, EXPIRY_NEAR, OptionKind::Call),
        (90_000, EXPIRY_NEAR, OptionKind::Put),
        (STRIKE, EXPIRY_NEAR, OptionKind::Put),
        (110_000, EXPIRY_NEAR, OptionKind::Put),
        (STRIKE, EXPIRY_FAR, OptionKind::Call),
        (STRIKE, EXPIRY_FAR, OptionKind::Put),
    ]
    .into_iter()
    .take(params.max_series)
    {
        let stx = d.h.register(0, strike, expiry, kind, 1);
        d.send("/v1/operator/series", stx).await?;
    }
    let far_call = (params.max_series.min(8) - 2) as u32;
    let stx = d.tick(10, STRIKE, 5_000);
    d.send("/v1/operator/ticks", stx).await?;

    // 3. Trades with partial fills: each order pair fills in two steps (40% then 60%).
    d.say("3. trades: signed order pairs, each filled in two partial fills");
    let t_trades = Instant::now();
    let near_series: Vec<u32> = (0..6.min(params.max_series as u32 - 2)).collect();
    let mut i = 0usize;
    let mut fills = 0usize;
    while fills < a.trades && i < a.trades * 4 {
        let buyer = traders[i % traders.len()];
        let seller = traders[(i + 1 + i / traders.len()) % traders.len()];
        let series = near_series[i % near_series.len()];
        i += 1;
        if buyer == seller {
            continue;
        }
        let mark = d.h.state.series()[series as usize].mark;
        let buy = d.h.order(buyer, series, Side::Buy, mark + 100, 10);
        let sell =
            d.h.order(seller, series, Side::Sell, mark.saturating_sub(100), 10);
        for size in [4, 6] {
            if fills >= a.trades {
                break;
            }
            let stx = d.h.trade(buy.clone(), sell.clone(), size, mark);
            if d.send_if_valid("/v1/trades", stx).await? {
                fills += 1;
                d.trades_accepted += 1;
            }
        }
    }
    // Two bad submissions, to show typed refusals (nothing is written for them).
    let mut bad = d.h.simple_trade(traders[0], traders[1], 0, 1, 5_000);
    bad.signatures.swap(0, 1);
    d.send("/v1/trades", bad).await?;
    let broke = d.h.withdraw(traders[0], 1_000_000_000_000);
    d.send("/v1/withdrawals", broke).await?;

    // 4. A thinly collateralised short, then a price move that makes it liquidatable.
    d.say("4. price move: spot 100k -> 110k makes short-call holders liquidatable; liquidations");
    let t = d.h.simple_trade(traders[0], risky, far_call, 1, 5_000);
    d.send_if_valid("/v1/trades", t).await?;
    d.trades_accepted += 1;
    d.trade_time = t_trades.elapsed();
    let stx = d.tick(20, 110_000, 9_001);
    d.send("/v1/operator/ticks", stx).await?;
    let mut liquidations = 0;
    let ids: Vec<u64> = traders.iter().copied().chain([risky]).collect();
    for victim in ids {
        let positions: Vec<(u32, i64)> =
            d.h.state
                .account(victim)
                .map(|acc| {
                    (0..params.max_series as u32)
                        .map(|s| (s, acc.position(s)))
                        .filter(|(_, q)| *q != 0)
                        .collect()
                })
                .unwrap_or_default();
        for (series, q) in positions {
            let stx = d.h.liquidate(
                liquidator,
                victim,
                series,
                q.unsigned_abs(),
                if q < 0 { 0 } else { u64::MAX >> 1 },
            );
            if d.send_if_valid("/v1/liquidations", stx).await? {
                liquidations += 1;
            }
        }
    }
    d.say(&format!("   {liquidations} liquidations accepted"));

    // 5. Expiry: a tick at the near expiry sets the settlement price; settle every holder.
    d.say("5. expiry: tick at the near expiry, then settle every position in expired series");
    let stx = d.tick(EXPIRY_NEAR, 104_000, 9_000);
    d.send("/v1/operator/ticks", stx).await?;
    let holders: Vec<(u64, u32)> =
        d.h.state
            .accounts()
            .flat_map(|(id, acc)| {
                (0..params.max_series as u32)
                    .filter(|s| acc.position(*s) != 0)
                    .map(move |s| (id, s))
                    .collect::<Vec<_>>()
            })
            .collect();
    for (acct, series) in holders {
        let stx = d.h.settle(acct, series);
        d.send_if_valid("/v1/settlements", stx).await?;
    }
    d.seal().await?;

    // 6. Withdrawals (provable batches).
    d.say("6. withdrawals to L1");
    for &acct in traders.iter().take(4) {
        let stx = d.h.withdraw(acct, 1_000_000);
        d.send_if_valid("/v1/withdrawals", stx).await?;
    }
    d.seal().await?;
    let accept_time = t_start.elapsed();

    // Check the node and the mirror agree.
    let node_root = {
        let mut live = node.sequencer.live();
        live.state.root()
    };
    let mirror_root = d.h.state.root();
    anyhow::ensure!(
        node_root == mirror_root,
        "node and mirror state roots differ"
    );

    // 7. Proofs.
    let health = d.c.get("/v1/health").await?.body;
    let sealed = health["open_batch"].as_u64().unwrap_or(1) - 1;
    d.say(&format!("7. proving and verifying {sealed} sealed batches"));
    let t_prove = Instant::now();
    let mut final_rows: Vec<Value> = Vec::new();
    if !a.no_prove {
        let bar = if std::io::stderr().is_terminal() && !a.json {
            let b = indicatif::ProgressBar::new(sealed);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "   [{elapsed_precise}] {bar:30} {pos}/{len} batches done {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            Some(b)
        } else {
            None
        };
        let deadline = Instant::now() + Duration::from_secs(a.prove_timeout_secs);
        loop {
            let mut rows = Vec::new();
            for n in 1..=sealed {
                rows.push(d.c.get(&format!("/v1/batches/{n}")).await?.body);
            }
            let done = rows
                .iter()
                .filter(|r| matches!(r["status"].as_str(), Some("verified" | "failed")))
                .count() as u64;
            if let Some(b) = &bar {
                b.set_position(done);
            } else {
                tracing::info!(done, sealed, "proving progress");
            }
            final_rows = rows;
            if done == sealed || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    } else {
        for n in 1..=sealed {
            final_rows.push(d.c.get(&format!("/v1/batches/{n}")).await?.body);
        }
    }
    let prove_wall = t_prove.elapsed();
    node.stop();
    if let (Some(dir), false) = (&a.dir, a.no_prove) {
        export_proofs(dir, &final_rows, &d.h.genesis, &circuit)?;
    }

    // Summary.
    let total_accepted: u64 = d.accepted.values().sum();
    let verified: Vec<&Value> = final_rows
        .iter()
        .filter(|r| r["status"] == "verified")
        .collect();
    let failed: Vec<&Value> = final_rows
        .iter()
        .filter(|r| r["status"] == "failed")
        .collect();
    let mut fail_reasons: BTreeMap<String, usize> = BTreeMap::new();
    for r in &failed {
        *fail_reasons
            .entry(r["error"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    let prove_ms: Vec<i64> = verified
        .iter()
        .filter_map(|r| r["prove_ms"].as_i64())
        .collect();
    let trades_in_verified: u64 = verified
        .iter()
        .map(|r| r["tx_count"].as_u64().unwrap_or(0))
        .sum();
    let summary = json!({
        "transactions_accepted": total_accepted,
        "accepted_by_kind": d.accepted,
        "rejected": d.rejected.iter().map(|(k, c, m)| json!({"kind": k, "code": c, "message": m})).collect::<Vec<_>>(),
        "batches_sealed": sealed,
        "proofs_verified": verified.len(),
        "proofs_failed": failed.len(),
        "failure_reasons": fail_reasons,
        "unfinished": sealed as usize - verified.len() - failed.len(),
        "trades_accepted": d.trades_accepted,
        "trades_per_s_accepted": d.trades_accepted as f64 / d.trade_time.as_secs_f64().max(1e-9),
        "txs_per_s_proved": if prove_wall.as_secs_f64() > 0.0 { trades_in_verified as f64 / prove_wall.as_secs_f64() } else { 0.0 },
        "prove_ms_per_batch": prove_ms,
        "accept_phase_s": accept_time.as_secs_f64(),
        "prove_phase_s": prove_wall.as_secs_f64(),
        "final_state_root": fr_hex(&node_root),
        "params": "small",
        "srs": "INSECURE DEV SRS",
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("\n== collar demo summary ==");
        let row = |k: &str, v: String| println!("  {k:<34} {v}");
        row("transactions accepted", total_accepted.to_string());
        for (k, v) in &d.accepted {
            row(&format!("  {k}"), v.to_string());
        }
        row(
            "rejected (typed, nothing written)",
            d.rejected.len().to_string(),
        );
        for (k, c, _) in &d.rejected {
            row(&format!("  {k}"), c.clone());
        }
        row("batches sealed", sealed.to_string());
        row("proofs verified", verified.len().to_string());
        row("proofs failed", failed.len().to_string());
        for (reason, n) in &fail_reasons {
            row(&format!("  x{n}"), reason.clone());
        }
        row(
            "trades/s accepted (API, durable)",
            format!(
                "{:.1}",
                summary["trades_per_s_accepted"].as_f64().unwrap_or(0.0)
            ),
        );
        row(
            "txs/s proved (verified batches)",
            format!("{:.3}", summary["txs_per_s_proved"].as_f64().unwrap_or(0.0)),
        );
        let avg = if prove_ms.is_empty() {
            "n/a".to_string()
        } else {
            format!(
                "{:.1} s avg ({:?} ms; first includes keygen)",
                prove_ms.iter().sum::<i64>() as f64 / prove_ms.len() as f64 / 1e3,
                prove_ms
            )
        };
        row("proving time per batch", avg);
        row("final state root", fr_hex(&node_root));
    }
    Ok(())
}

/// Writes each verified batch's proof artifact to `dir/proofs/batch-N.proof` and the verifying
/// key to `dir/batch.vk` (from the key cache the node used), so that anyone can re-check them
/// with `collar verify`.
fn export_proofs(
    dir: &std::path::Path,
    rows: &[Value],
    genesis: &collar_protocol::Genesis,
    circuit: &CircuitArgs,
) -> anyhow::Result<()> {
    let proofs = dir.join("proofs");
    std::fs::create_dir_all(&proofs)?;
    let mut written = Vec::new();
    for r in rows.iter().filter(|r| r["status"] == "verified") {
        let (Some(n), Some(hexed)) = (r["number"].as_u64(), r["proof"].as_str()) else {
            continue;
        };
        let bytes = hex::decode(hexed.trim_start_matches("0x"))?;
        let path = proofs.join(format!("batch-{n}.proof"));
        std::fs::write(&path, bytes)?;
        written.push(path);
    }
    let Some(first) = written.first() else {
        return Ok(());
    };
    let backend = collar_sequencer::prover::Halo2Backend::new(genesis.clone(), circuit.halo2());
    let vk = dir.join("batch.vk");
    backend
        .prover()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .export_vk(&vk)?;
    eprintln!(
        "collar demo: {} proofs in {}; check one with: collar verify {} --vk {}",
        written.len(),
        proofs.display(),
        first.display(),
        vk.display()
    );
    Ok(())
}
