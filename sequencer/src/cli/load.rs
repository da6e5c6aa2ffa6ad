//! `collar load`: concurrent signed trades over HTTP; reports accepted trades per second,
//! p50/p99 latency and errors. Each concurrent client trades between its own pair of fresh
//! accounts, so its orders fill in the order it sends them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use collar_protocol::testkit::{account_key, oracle_key};
use collar_protocol::tx::{
    Deposit, OracleReport, OracleTick, Order, RegisterSeries, SeriesMark, Side, Trade,
    UnderlyingTick,
};
use collar_protocol::{OptionKind, SignedTx, Tx};
use collar_sequencer::client::Client;
use serde_json::json;

/// Arguments of `collar load`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Node URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Operator token (setup uses operator endpoints).
    #[arg(long, env = "COLLAR_OPERATOR_TOKEN")]
    pub operator_token: String,
    /// Total trades to send.
    #[arg(long, default_value_t = 10_000)]
    pub trades: usize,
    /// Concurrent clients (each with two fresh accounts).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// First account id to use (accounts `first .. first + 2 * concurrency`).
    #[arg(long)]
    pub first_account: Option<u64>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Runs the load.
pub async fn run(a: Args) -> anyhow::Result<()> {
    super::init_tracing("warn");
    let c = Client::new(a.url.clone(), Some(a.operator_token.clone()));
    let health = c.get("/v1/health").await?;
    anyhow::ensure!(health.ok(), "node not healthy: {:?}", health.body);
    // Shape of the deployment: chain id, quorum and account space from the genesis-shaped
    // endpoints.
    let series_now = c.get("/v1/series").await?.body;
    let time = series_now["time"].as_u64().unwrap_or(0);
    let n_series = series_now["series"].as_array().map_or(0, Vec::len) as u32;
    let chain_id = 1u64;
    let quorum = 3u32;
    let pairs = a.concurrency.max(1);
    let first = a.first_account.unwrap_or(2);
    // Order ids grow with the clock so reruns on the same accounts use newer ids (§4.4).
    let base_oid = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().saturating_sub(1_700_000_000) * 16)
        .unwrap_or(0);
    // Setup: a series, a tick pricing it, and funded accounts.
    let expiry = time + 10_000_000;
    let reg = SignedTx::unsigned(Tx::RegisterSeries(RegisterSeries {
        underlying: 0,
        strike: 100_000,
        expiry,
        kind: OptionKind::Call,
        contract_size: 1,
    }));
    let r = c
        .post_raw(
            "/v1/operator/series",
            serde_json::to_vec(&reg)?,
            "application/json",
            Some(&format!("load-series-{first}-{time}")),
        )
        .await?;
    anyhow::ensure!(r.ok(), "register series: {:?}", r.body);
    let series = n_series;
    let tick = OracleTick {
        timestamp: time + 1,
        underlyings: vec![UnderlyingTick {
            underlying: 0,
            reports: (0..quorum)
                .map(|o| OracleReport {
                    oracle: o,
                    underlying: 0,
                    timestamp: time + 1,
                    spot: 100_000,
                    marks: vec![SeriesMark {
                        series,
                        mark: 5_000,
                    }],
                })
                .collect(),
        }],
    };
    let keys: Vec<_> = (0..quorum).map(|o| oracle_key(o.into())).collect();
    let refs: Vec<_> = keys.iter().collect();
    let stx = Tx::OracleTick(tick).sign(chain_id, &refs);
    let r = c.submit("/v1/operator/ticks", &stx).await?;
    anyhow::ensure!(r.ok(), "tick: {:?}", r.body);
    // Funding: through the settlement contract when the node reads deposits from a devnet L1,
    // else through the operator route.
    let l1 = c.get("/v1/l1").await?;
    let mut last_index = 0;
    for i in 0..2 * pairs as u64 {
        let acct = first + i;
        let dep = Deposit {
            account: acct,
            pubkey: account_key(acct).public_key(),
            amount: 1_000_000_000_000,
        };
        let r = if l1.ok() {
            let r = c.l1_deposit(&dep).await?;
            last_index = r.body["index"].as_u64().unwrap_or(last_index);
            r
        } else {
            // A deposit carries its identity as its key: this run's deposit to `acct`.
            c.submit_with_key(
                "/v1/operator/deposits",
                &SignedTx::unsigned(Tx::Deposit(dep)),
                Some(&format!("load-deposit-{time}-{acct}")),
            )
            .await?
        };
        anyhow::ensure!(r.ok(), "deposit to {acct}: {:?}", r.body);
    }
    if l1.ok() {
        let credited = c
            .await_l1_credited(last_index, Duration::from_secs(60))
            .await?;
        anyhow::ensure!(
            credited.is_some(),
            "the node did not credit the L1 deposits within 60 s"
        );
    }

    // Pre-sign every trade (signing is not what is measured), in parallel.
    let per = a.trades.div_ceil(pairs);
    eprintln!("signing {} trades ...", per * pairs);
    let t_sign = Instant::now();
    let work: Vec<Vec<SignedTx>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..pairs)
            .map(|p| {
                s.spawn(move || {
                    let (x, y) = (first + 2 * p as u64, first + 2 * p as u64 + 1);
                    let (kx, ky) = (account_key(x), account_key(y));
                    (0..per)
                        .map(|j| {
                            // Alternate direction so positions stay small.
                            let (b, s_, kb, ks) = if j % 2 == 0 {
                                (x, y, &kx, &ky)
                            } else {
                                (y, x, &ky, &kx)
                            };
                            let oid = base_oid + j as u64 + 1;
                            let order = |account, side| Order {
                                account,
                                series,
                                side,
                                limit_price: 5_000,
                                max_size: 1,
                                order_id: oid,
                                expiry: (1 << 39) - 1,
                                max_fee_bps: 30,
                            };
                            Tx::Trade(Trade {
                                buy: order(b, Side::Buy),
                                sell: order(s_, Side::Sell),
                                size: 1,
                                price: 5_000,
                            })
                            .sign(chain_id, &[kb, ks])
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("signer"))
            .collect()
    });
    eprintln!(
        "signed in {:.1} s; sending with {pairs} clients",
        t_sign.elapsed().as_secs_f64()
    );

    let c = Arc::new(Client::new(a.url.clone(), None));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for list in work {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(list.len());
            let mut errors: Vec<String> = Vec::new();
            for stx in list {
                let t = Instant::now();
                match c.submit("/v1/trades", &stx).await {
                    Ok(r) if r.ok() => lat.push(t.elapsed()),
                    Ok(r) => errors.push(format!("{} {}", r.status, r.code())),
                    Err(e) => errors.push(format!("transport: {e}")),
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    for t in tasks {
        let (l, e) = t.await?;
        lat.extend(l);
        for e in e {
            *errors.entry(e).or_default() += 1;
        }
    }
    let wall = t0.elapsed();
    lat.sort();
    let accepted = lat.len();
    let summary = json!({
        "trades_sent": per * pairs,
        "accepted": accepted,
        "errors": errors,
        "wall_s": wall.as_secs_f64(),
        "accepted_per_s": accepted as f64 / wall.as_secs_f64(),
        "p50_ms": percentile(&lat, 0.50).as_secs_f64() * 1e3,
        "p99_ms": percentile(&lat, 0.99).as_secs_f64() * 1e3,
        "max_ms": lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        "concurrency": pairs,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "accepted {accepted}/{} trades in {:.2} s: {:.0} trades/s, p50 {:.2} ms, p99 {:.2} ms, errors {:?}",
            per * pairs,
            wall.as_secs_f64(),
            summary["accepted_per_s"].as_f64().unwrap_or(0.0),
            summary["p50_ms"].as_f64().unwrap_or(0.0),
            summary["p99_ms"].as_f64().unwrap_or(0.0),
            errors
        );
    }
    Ok(())
}
