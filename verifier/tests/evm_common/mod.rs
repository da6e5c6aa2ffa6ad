//! Shared by the EVM tests: the pinned solc-js, a revm chain, and a little ABI encoding.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use collar_protocol::field::{fr_from_be_bytes, fr_to_be_bytes};
use collar_protocol::Fr;
use collar_verifier::evm::solc::{CompiledContract, Optimizer, Solc};
use revm::context::result::{ExecutionResult, Output};
use revm::context::{ContextTr, TxEnv};
use revm::database::InMemoryDB;
use revm::database_interface::DatabaseRef;
use revm::handler::MainnetContext;
use revm::primitives::{keccak256, Address, TxKind, U256};
use revm::state::AccountInfo;
use revm::{Context, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext, MainnetEvm};

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

/// What a transaction did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Whether it succeeded (no revert, no halt).
    pub success: bool,
    /// Gas used by the whole transaction (intrinsic and calldata costs included).
    pub gas_used: u64,
    /// Return data, or revert data.
    pub output: Vec<u8>,
}

impl Outcome {
    /// Panics unless the transaction succeeded.
    pub fn ok(self) -> Self {
        assert!(
            self.success,
            "transaction failed: 0x{}",
            hex::encode(&self.output)
        );
        self
    }

    /// Panics unless the transaction reverted with the custom error `signature`.
    pub fn reverted_with(&self, signature: &str) {
        assert!(
            !self.success,
            "expected a revert with {signature}, got success"
        );
        assert!(
            self.output.len() >= 4 && self.output[..4] == selector(signature),
            "expected a revert with {signature}, got 0x{}",
            hex::encode(&self.output)
        );
    }
}

/// An in-memory chain (revm, mainnet rules, EIP-170 enforced, zero gas price).
pub struct Chain {
    evm: MainnetEvm<MainnetContext<InMemoryDB>>,
}

/// Gas limit of every test transaction (a usual block's).
pub const GAS_LIMIT: u64 = 30_000_000;

impl Chain {
    /// An empty chain.
    pub fn new() -> Self {
        let ctx = Context::mainnet()
            .with_db(InMemoryDB::default())
            .modify_cfg_chained(|cfg| cfg.disable_nonce_check = true);
        Self {
            evm: ctx.build_mainnet(),
        }
    }

    /// Sets the balance of `who`.
    pub fn set_balance(&mut self, who: Address, wei: u128) {
        let info = AccountInfo {
            balance: U256::from(wei),
            ..Default::default()
        };
        self.evm.ctx.db_mut().insert_account_info(who, info);
    }

    /// The balance of `who`.
    pub fn balance(&self, who: Address) -> U256 {
        self.evm
            .ctx
            .db()
            .basic_ref(who)
            .expect("in-memory db")
            .map_or(U256::ZERO, |a| a.balance)
    }

    /// The deployed code size at `who`.
    pub fn code_size(&self, who: Address) -> usize {
        self.evm
            .ctx
            .db()
            .basic_ref(who)
            .expect("in-memory db")
            .and_then(|a| a.code)
            .map_or(0, |c| c.original_bytes().len())
    }

    fn tx(&mut self, from: Address, kind: TxKind, value: u128, data: Vec<u8>) -> TxEnv {
        TxEnv {
            caller: from,
            gas_limit: GAS_LIMIT,
            kind,
            value: U256::from(value),
            data: data.into(),
            ..Default::default()
        }
    }

    /// Deploys `creation ‖ args` from `from` and returns the contract's address.
    ///
    /// Panics if the deployment fails (a revert, or code over EIP-170's limit).
    pub fn deploy(&mut self, from: Address, creation: &[u8], args: &[u8]) -> Address {
        let mut data = creation.to_vec();
        data.extend_from_slice(args);
        let tx = self.tx(from, TxKind::Create, 0, data);
        match self.evm.transact_commit(tx).expect("valid transaction") {
            ExecutionResult::Success {
                output: Output::Create(_, Some(address)),
                ..
            } => address,
            other => panic!("deployment failed: {other:?}"),
        }
    }

    /// Sends a transaction and commits its effects.
    pub fn send(&mut self, from: Address, to: Address, value: u128, data: Vec<u8>) -> Outcome {
        let tx = self.tx(from, TxKind::Call(to), value, data);
        outcome(self.evm.transact_commit(tx).expect("valid transaction"))
    }

    /// Calls without committing (a view).
    pub fn view(&mut self, to: Address, data: Vec<u8>) -> Vec<u8> {
        let tx = self.tx(Address::ZERO, TxKind::Call(to), 0, data);
        let out = outcome(self.evm.transact(tx).expect("valid transaction").result).ok();
        out.output
    }

    /// A view returning one word.
    pub fn view_word(&mut self, to: Address, signature: &str, args: &[[u8; 32]]) -> U256 {
        let out = self.view(to, call(signature, args));
        assert!(out.len() >= 32, "short return data");
        U256::from_be_slice(&out[..32])
    }
}

fn outcome(result: ExecutionResult) -> Outcome {
    match result {
        ExecutionResult::Success {
            gas_used, output, ..
        } => Outcome {
            success: true,
            gas_used,
            output: output.into_data().to_vec(),
        },
        ExecutionResult::Revert { gas_used, output } => Outcome {
            success: false,
            gas_used,
            output: output.to_vec(),
        },
        ExecutionResult::Halt { gas_used, reason } => Outcome {
            success: false,
            gas_used,
            output: format!("{reason:?}").into_bytes(),
        },
    }
}

/// The 4-byte selector of a function or error signature.
pub fn selector(signature: &str) -> [u8; 4] {
    let h = keccak256(signature.as_bytes());
    [h[0], h[1], h[2], h[3]]
}

/// A word holding an unsigned integer.
pub fn word(v: u128) -> [u8; 32] {
    U256::from(v).to_be_bytes()
}

/// A word holding a field element (canonical, big-endian).
pub fn fr_word(f: &Fr) -> [u8; 32] {
    fr_to_be_bytes(f)
}

/// A word holding an address.
pub fn address_word(a: &Address) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_slice());
    w
}

/// The field element in a word (panics if not canonical).
pub fn word_fr(w: U256) -> Fr {
    fr_from_be_bytes(&w.to_be_bytes()).expect("canonical field element")
}

/// A field element as a `U256`.
pub fn fr_u256(f: &Fr) -> U256 {
    U256::from_be_bytes(fr_to_be_bytes(f))
}

/// Calldata of a function with static arguments only.
pub fn call(signature: &str, args: &[[u8; 32]]) -> Vec<u8> {
    let mut data = selector(signature).to_vec();
    for a in args {
        data.extend_from_slice(a);
    }
    data
}

/// ABI encoding of `bytes` in a tail: length word, then the bytes padded to 32.
pub fn bytes_tail(b: &[u8]) -> Vec<u8> {
    let mut out = word(b.len() as u128).to_vec();
    out.extend_from_slice(b);
    out.resize(32 + b.len().div_ceil(32) * 32, 0);
    out
}
