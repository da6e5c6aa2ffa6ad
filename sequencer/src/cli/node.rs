//! `collar node`: the sequencer with its HTTP API, optionally with in-process prover workers.

use std::net::SocketAddr;
use std::time::Duration;

use collar_sequencer::api::ApiConfig;
use collar_sequencer::node::{L1Config, Node, NodeConfig};
use collar_sequencer::sequencer::SequencerConfig;

use super::{CircuitArgs, GenesisArgs};

/// Arguments of `collar node`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `sqlite://PATH` (embedded default) or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "COLLAR_DATABASE_URL",
        default_value = "sqlite://collar.db"
    )]
    pub database_url: String,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Bearer token for operator endpoints (deposits, series, ticks, seal).
    #[arg(long, env = "COLLAR_OPERATOR_TOKEN")]
    pub operator_token: Option<String>,
    /// Seal a batch at this many transactions.
    #[arg(long, default_value_t = 2)]
    pub batch_size: usize,
    /// ... or when its first transaction is this old (ms).
    #[arg(long, default_value_t = 2_000)]
    pub batch_timeout_ms: u64,
    /// Most transactions per group commit.
    #[arg(long, default_value_t = 1_024)]
    pub max_group: usize,
    /// In-process prover workers (use `collar prover` for separate processes).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_body: usize,
    /// Submissions per second across all clients (0: unlimited).
    #[arg(long, default_value_t = 0)]
    pub rate_limit: u32,
    /// Submissions per second from each client IP address (each /64 for IPv6), burst the same
    /// (0: unlimited). The address is the TCP peer's; X-Forwarded-For is not trusted, so behind a proxy all
    /// clients share the proxy's limit. Checked before --rate-limit.
    #[arg(long, default_value_t = 0)]
    pub client_rate_limit: u32,
    /// Database pool size.
    #[arg(long, default_value_t = 8)]
    pub max_connections: u32,
    /// Read deposits from a devnet L1: the settlement contract run in process, durable through
    /// this journal file (created if missing). Users deposit with `POST /v1/l1/deposits`; the
    /// operator deposit route is then refused. Without it the operator submits deposits.
    #[arg(long, value_name = "JOURNAL")]
    pub l1_devnet: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub genesis: GenesisArgs,
    #[command(flatten)]
    pub circuit: CircuitArgs,
}

/// Runs the node until Ctrl-C.
pub async fn run(a: Args) -> anyhow::Result<()> {
    super::init_tracing("info");
    let node = Node::start(NodeConfig {
        database_url: a.database_url,
        bind: a.bind,
        genesis: a.genesis.genesis()?,
        sequencer: SequencerConfig {
            batch_size: a.batch_size,
            batch_timeout: Duration::from_millis(a.batch_timeout_ms),
            max_group: a.max_group,
            max_accounts: a.circuit.accounts,
        },
        api: ApiConfig {
            operator_token: a.operator_token,
            max_body: a.max_body,
            rate_limit: (a.rate_limit > 0).then_some(a.rate_limit),
            client_rate_limit: (a.client_rate_limit > 0).then_some(a.client_rate_limit),
        },
        workers: a.workers,
        halo2: a.circuit.halo2(),
        max_connections: a.max_connections,
        l1: match a.l1_devnet {
            Some(journal) => L1Config::Devnet {
                journal: Some(journal),
            },
            None => L1Config::Operator,
        },
    })
    .await?;
    println!("collar node listening on {}", node.url());
    tokio::signal::ctrl_c().await?;
    node.stop();
    Ok(())
}
