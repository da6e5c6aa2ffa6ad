//! Subcommands of the `collar` binary, one module each, plus shared argument groups.

pub mod bench;
pub mod demo;
pub mod load;
pub mod node;
pub mod prover;
pub mod stats;
pub mod verify;

use collar_protocol::{testkit, Genesis, ProtocolParams};

/// Installs the tracing subscriber (`RUST_LOG` overrides `default`).
pub fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A progress bar of `len` steps on stderr when it is a terminal (hidden otherwise: the
/// subcommand logs through `tracing` instead).
pub fn progress_bar(len: u64, unit: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "[{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} {{msg}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    bar
}

/// Genesis selection shared by subcommands.
#[derive(clap::Args, Debug, Clone)]
pub struct GenesisArgs {
    /// Protocol shape: `small` (depth 8, provable quickly) or `production` (depth 24).
    #[arg(long, default_value = "small", value_parser = ["small", "production"])]
    pub params: String,
    /// Number of underlyings in the development genesis.
    #[arg(long, default_value_t = 1)]
    pub underlyings: usize,
    /// A genesis JSON file instead of the development genesis.
    #[arg(long)]
    pub genesis: Option<std::path::PathBuf>,
}

impl GenesisArgs {
    /// The genesis. The development genesis uses public deterministic oracle and system keys:
    /// for development only.
    pub fn genesis(&self) -> anyhow::Result<Genesis> {
        if let Some(p) = &self.genesis {
            return Ok(serde_json::from_slice(&std::fs::read(p)?)?);
        }
        let params = match self.params.as_str() {
            "production" => ProtocolParams::default(),
            _ => ProtocolParams::small(),
        };
        Ok(testkit::genesis(params, self.underlyings))
    }
}

/// Circuit shape for provers.
#[derive(clap::Args, Debug, Clone)]
pub struct CircuitArgs {
    /// Transaction slots per proof (the node's batch size must not exceed it).
    #[arg(long, default_value_t = 2)]
    pub capacity: usize,
    /// Entries of the account table: the most accounts one batch may touch (at least 4). The
    /// node seals a batch early rather than exceed it, and every prover of its batches must be
    /// given the same value. Default `min(3·capacity, 2·capacity + 2)`, which every batch fits.
    #[arg(long)]
    pub accounts: Option<usize>,
    /// Circuit size 2^k.
    #[arg(long, default_value_t = 17)]
    pub k: u32,
    /// Directory of the proving/verifying-key cache (default: ~/.cache/collar/keys).
    #[arg(long)]
    pub key_cache: Option<std::path::PathBuf>,
    /// A ceremony params file in halo2's format (default: the INSECURE development SRS).
    #[arg(long)]
    pub srs: Option<std::path::PathBuf>,
    /// Prove with the EVM (Keccak) transcript: stored proofs are then what the settlement
    /// contract's verifier takes (default: Blake2b, verified natively).
    #[arg(long)]
    pub evm_proofs: bool,
}

impl CircuitArgs {
    /// The backend configuration.
    pub fn halo2(&self) -> collar_sequencer::prover::Halo2Config {
        collar_sequencer::prover::Halo2Config {
            capacity: self.capacity,
            accounts: self.accounts,
            k: self.k,
            lookup_bits: self.k as usize - 1,
            cache_dir: self
                .key_cache
                .clone()
                .unwrap_or_else(collar_sequencer::prover::default_key_cache),
            srs: self.srs.clone(),
            evm_transcript: self.evm_proofs,
        }
    }
}
