//! An in-process EVM chain (revm, mainnet rules) and the little ABI encoding the settlement
//! contract needs: what the devnet L1 ([`crate::settlement::DevL1`]) and the EVM tests run the
//! contracts on. Deterministic: the same transactions from the same start give the same state.

use collar_protocol::field::{fr_from_be_bytes, fr_to_be_bytes};
use collar_protocol::Fr;
use revm::context::result::{ExecutionResult, Output};
use revm::context::{ContextTr, TxEnv};
use revm::database::InMemoryDB;
use revm::database_interface::DatabaseRef;
use revm::handler::MainnetContext;
use revm::primitives::{keccak256, Log, TxKind};
use revm::state::AccountInfo;
use revm::{Context, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext, MainnetEvm};

pub use revm::primitives::{Address, U256};

/// Gas limit of every transaction (a usual block's).
pub const GAS_LIMIT: u64 = 30_000_000;

/// What a transaction did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Whether it succeeded (no revert, no halt).
    pub success: bool,
    /// Gas used by the whole transaction (intrinsic and calldata costs included).
    pub gas_used: u64,
    /// Return data, or revert data (a halt's reason, as text).
    pub output: Vec<u8>,
    /// Logs emitted (empty unless it succeeded).
    pub logs: Vec<Log>,
}

impl Outcome {
    /// Panics unless the transaction succeeded (for tests and benches).
    pub fn ok(self) -> Self {
        assert!(
            self.success,
            "transaction failed: 0x{}",
            hex::encode(&self.output)
        );
        self
    }

    /// Whether it reverted with the custom error `signature` (e.g. `"ZeroAmount()"`).
    pub fn is_revert(&self, signature: &str) -> bool {
        !self.success && self.output.len() >= 4 && self.output[..4] == selector(signature)
    }

    /// Panics unless the transaction reverted with the custom error `signature`.
    pub fn reverted_with(&self, signature: &str) {
        assert!(
            !self.success,
            "expected a revert with {signature}, got success"
        );
        assert!(
            self.is_revert(signature),
            "expected a revert with {signature}, got 0x{}",
            hex::encode(&self.output)
        );
    }
}

/// An in-memory chain: revm with mainnet rules (EIP-170 enforced), zero gas price and no nonce
/// checks, one transaction per block.
pub struct Chain {
    evm: MainnetEvm<MainnetContext<InMemoryDB>>,
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain").finish_non_exhaustive()
    }
}

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

    /// Deploys `creation ‖ args` from `from`: the contract's address, or the failed outcome (a
    /// revert, or code over EIP-170's limit).
    pub fn try_deploy(
        &mut self,
        from: Address,
        creation: &[u8],
        args: &[u8],
    ) -> Result<Address, Outcome> {
        let mut data = creation.to_vec();
        data.extend_from_slice(args);
        let tx = self.tx(from, TxKind::Create, 0, data);
        match self.evm.transact_commit(tx).expect("valid transaction") {
            ExecutionResult::Success {
                output: Output::Create(_, Some(address)),
                ..
            } => Ok(address),
            other => Err(outcome(other)),
        }
    }

    /// [`Chain::try_deploy`], panicking if the deployment fails (for tests and benches).
    pub fn deploy(&mut self, from: Address, creation: &[u8], args: &[u8]) -> Address {
        self.try_deploy(from, creation, args)
            .unwrap_or_else(|o| panic!("deployment failed: {o:?}"))
    }

    /// Sends a transaction and commits its effects (none if it fails).
    pub fn send(&mut self, from: Address, to: Address, value: u128, data: Vec<u8>) -> Outcome {
        let tx = self.tx(from, TxKind::Call(to), value, data);
        outcome(self.evm.transact_commit(tx).expect("valid transaction"))
    }

    /// Runs a transaction without committing its effects: what [`Chain::send`] would do now.
    pub fn simulate(&mut self, from: Address, to: Address, value: u128, data: Vec<u8>) -> Outcome {
        let tx = self.tx(from, TxKind::Call(to), value, data);
        outcome(self.evm.transact(tx).expect("valid transaction").result)
    }

    /// Calls without committing (a view); the outcome says whether it reverted.
    pub fn try_view(&mut self, to: Address, data: Vec<u8>) -> Outcome {
        let tx = self.tx(Address::ZERO, TxKind::Call(to), 0, data);
        outcome(self.evm.transact(tx).expect("valid transaction").result)
    }

    /// [`Chain::try_view`]'s return data, panicking on a revert (for tests and benches).
    pub fn view(&mut self, to: Address, data: Vec<u8>) -> Vec<u8> {
        self.try_view(to, data).ok().output
    }

    /// A view returning one word; panics on a revert or short return data.
    pub fn view_word(&mut self, to: Address, signature: &str, args: &[[u8; 32]]) -> U256 {
        let out = self.view(to, call(signature, args));
        assert!(out.len() >= 32, "short return data");
        U256::from_be_slice(&out[..32])
    }
}

fn outcome(result: ExecutionResult) -> Outcome {
    match result {
        ExecutionResult::Success {
            gas_used,
            output,
            logs,
            ..
        } => Outcome {
            success: true,
            gas_used,
            output: output.into_data().to_vec(),
            logs,
        },
        ExecutionResult::Revert { gas_used, output } => Outcome {
            success: false,
            gas_used,
            output: output.to_vec(),
            logs: Vec::new(),
        },
        ExecutionResult::Halt { gas_used, reason } => Outcome {
            success: false,
            gas_used,
            output: format!("{reason:?}").into_bytes(),
            logs: Vec::new(),
        },
    }
}

/// The 4-byte selector of a function or error signature.
pub fn selector(signature: &str) -> [u8; 4] {
    let h = keccak256(signature.as_bytes());
    [h[0], h[1], h[2], h[3]]
}

/// The topic of an event signature (its Keccak-256).
pub fn event_topic(signature: &str) -> [u8; 32] {
    keccak256(signature.as_bytes()).0
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

/// The field element in a word, or `None` if the word is not below the field modulus.
pub fn word_fr(w: U256) -> Option<Fr> {
    fr_from_be_bytes(&w.to_be_bytes())
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
