//! Shared by the EVM tests: the pinned solc-js and the test accounts; the revm chain and the ABI
//! helpers are the library's (`collar_verifier::chain`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub use collar_verifier::chain::*;
use collar_verifier::evm::solc::{CompiledContract, Optimizer, Solc};

/// The account that deploys contracts in the EVM tests and benches.
pub const DEPLOYER: Address = Address::repeat_byte(0x01);
/// The account that deposits and claims withdrawals.
pub const USER: Address = Address::repeat_byte(0x02);
/// The account that submits batches.
pub const SUBMITTER: Address = Address::repeat_byte(0x03);

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("verifier/ has a parent")
        .to_path_buf()
}

/// The pinned solc-js, or a panic telling the reader to install it.
pub fn solc() -> Solc {
    Solc::in_repo(&repo_root()).unwrap_or_else(|e| {
        panic!("{e}\nThe EVM tests compile contracts with the pinned npm `solc`: run scripts/setup")
    })
}

/// Reads a contract source under `contracts/`.
pub fn source(relative: &str) -> String {
    let path = repo_root().join("contracts").join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compiles `file:contract` from the repository's contracts (all of `files` given to solc).
pub fn compile(files: &[&str], file: &str, contract: &str) -> CompiledContract {
    let texts: Vec<(String, String)> = files.iter().map(|f| (f.to_string(), source(f))).collect();
    let sources: Vec<(&str, &str)> = texts
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    solc()
        .compile(&sources, file, contract, Optimizer::default())
        .unwrap_or_else(|e| panic!("compiling {file}:{contract}: {e}"))
}

/// Compiles the generated batch verifier (contract `Halo2Verifier`) with the optimizer off, as
/// snark-verifier compiles it: solc-js 0.8.19's optimizer runs out of WebAssembly memory
/// (std::bad_alloc) on this contract.
pub fn compile_batch_verifier(
    source: &str,
) -> Result<CompiledContract, collar_verifier::evm::EvmError> {
    solc().compile(
        &[("CollarBatchVerifier.sol", source)],
        "CollarBatchVerifier.sol",
        "Halo2Verifier",
        Optimizer {
            enabled: false,
            runs: 200,
        },
    )
}
