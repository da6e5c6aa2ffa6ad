//! `collar`: the node, prover workers, the end-to-end demo, the load generator and the
//! circuit statistics.

mod cli;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "collar",
    version,
    about = "Collar: a ZK rollup for an options exchange"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One variant per subcommand; each lives in its own module under `cli/`.
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Run the sequencer node (HTTP API, durable log, batching, optional in-process provers).
    Node(cli::node::Args),
    /// Run a prover worker that claims sealed batches from the database's job queue.
    Prover(cli::prover::Args),
    /// Run the end-to-end demo on embedded SQLite (nothing to install).
    Demo(cli::demo::Args),
    /// Drive a node's HTTP API with concurrent signed trades and report throughput/latency.
    Load(cli::load::Args),
    /// Report the batch circuit's size (k, columns, rows, cells per component and per
    /// transaction type) and, with --prove, keygen/prove/verify times and peak memory.
    Stats(cli::stats::Args),
    /// Proving cost per trade for several batch capacities, the generic halo2-base path beside
    /// the dedicated chips (Pow5, msm): a Markdown table, JSON and an SVG plot written to a
    /// folder.
    Bench(cli::bench::Args),
    /// Verify a proof artifact against a verifying-key file (exit status 0 when valid).
    Verify(cli::verify::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command = match cli.command {
        Command::Stats(a) => return cli::stats::run(a),
        Command::Bench(a) => return cli::bench::run(a),
        Command::Verify(a) => return cli::verify::run(a),
        other => other,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match command {
            Command::Node(a) => cli::node::run(a).await,
            Command::Prover(a) => cli::prover::run(a).await,
            Command::Demo(a) => cli::demo::run(a).await,
            Command::Load(a) => cli::load::run(a).await,
            Command::Stats(_) | Command::Bench(_) | Command::Verify(_) => {
                unreachable!("handled before the runtime starts")
            }
        }
    })
}
