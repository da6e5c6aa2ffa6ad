//! `collar stats`: the batch circuit's size and cost for a given shape, for researchers.

use collar_circuits::poseidon::Hashing;
use collar_circuits::stats::{circuit_stats, SlotFill, StatsShape};

/// Arguments of `collar stats`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Transaction slots per batch proof.
    #[arg(long, default_value_t = 1)]
    pub capacity: usize,
    /// Accounts-tree depth (production: 24; the small test shape: 8).
    #[arg(long, default_value_t = 8)]
    pub depth: usize,
    /// Position slots per account (production: 16; the small test shape: 4).
    #[arg(long, default_value_t = 4)]
    pub positions: usize,
    /// Start from the production parameters (order depth 6, 64 series) instead of the small
    /// test shape for everything not set above.
    #[arg(long)]
    pub production: bool,
    /// What fills the slots of the representative batch.
    /// `market-maker`: every trade has one market maker on one side and a taker of its own on
    /// the other.
    #[arg(long, default_value = "mixed", value_parser = ["mixed", "trades", "one-trade", "market-maker"])]
    pub fill: String,
    /// Entries of the account table: the accounts one batch may touch (default `min(3·capacity,
    /// 2·capacity + 2)`, which every batch fits; `market-maker` fits `capacity + 2`).
    #[arg(long)]
    pub accounts: Option<usize>,
    /// Fixed circuit size 2^k (default: the smallest k >= 17 that fits in 24 advice columns).
    #[arg(long)]
    pub k: Option<u32>,
    /// Also run keygen, prove and verify with the INSECURE development SRS, and report their
    /// times, the proof size and peak memory (slow at production depth).
    #[arg(long)]
    pub prove: bool,
    /// Circuit: the dedicated `pow5` Poseidon chip (production), `pow5-msm` (also Schnorr on
    /// the dedicated `msm` chip) or `halo2-base`'s hasher and basic-gate Schnorr (the baseline).
    #[arg(long, default_value = "pow5")]
    pub hashing: Hashing,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file (what `collar bench` reads).
    #[arg(long)]
    pub json_out: Option<std::path::PathBuf>,
}

/// Runs `collar stats`.
pub fn run(a: Args) -> anyhow::Result<()> {
    super::init_tracing("warn");
    let mut shape = if a.production {
        StatsShape::production(a.capacity)
    } else {
        StatsShape::small(a.capacity)
    };
    shape.account_depth = a.depth;
    shape.max_positions = a.positions;
    shape.k = a.k;
    shape.prove = a.prove;
    shape.hashing = a.hashing;
    shape.fill = match a.fill.as_str() {
        "trades" => SlotFill::Trades,
        "one-trade" => SlotFill::OneTrade,
        "market-maker" => SlotFill::MarketMaker,
        _ => SlotFill::Mixed,
    };
    shape.accounts = a.accounts;
    let stats = circuit_stats(&shape)?;
    if let Some(path) = &a.json_out {
        std::fs::write(path, serde_json::to_vec_pretty(&stats)?)?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        println!("{stats}");
    }
    Ok(())
}
