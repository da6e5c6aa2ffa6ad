//! A driver for the pinned Solidity compiler: the npm package `solc` (solc-js, a WebAssembly
//! build of solc) that `scripts/install-solc` installs under `contracts/node_modules`, run
//! through `node` and the repository's wrapper `contracts/solc-standard-json.js` in
//! standard-JSON mode. No system `solc` is used.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use super::EvmError;

/// Optimizer settings passed to solc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Optimizer {
    /// Whether the optimizer runs.
    pub enabled: bool,
    /// The `runs` parameter: lower favours deployment size, higher favours call cost.
    pub runs: u32,
}

impl Default for Optimizer {
    /// Enabled, 200 runs (solc's default figure).
    fn default() -> Self {
        Self {
            enabled: true,
            runs: 200,
        }
    }
}

/// A compiled contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledContract {
    /// Creation (init) code: deploy by sending it as the data of a create transaction,
    /// followed by the ABI-encoded constructor arguments, if any.
    pub creation: Vec<u8>,
    /// The runtime code the creation code installs: its length is what EIP-170 limits.
    pub deployed: Vec<u8>,
}

/// The pinned solc-js, located on disk.
#[derive(Clone, Debug)]
pub struct Solc {
    /// `contracts/solc-standard-json.js`.
    wrapper: PathBuf,
}

impl Solc {
    /// The solc-js that `scripts/install-solc` installed in `contracts/node_modules` of the
    /// repository at `repo_root`, driven by `contracts/solc-standard-json.js`.
    ///
    /// # Errors
    /// [`EvmError::SolcMissing`] if the npm package or the wrapper is not there.
    pub fn in_repo(repo_root: &Path) -> Result<Self, EvmError> {
        let contracts = repo_root.join("contracts");
        let package = contracts.join("node_modules/solc/package.json");
        let wrapper = contracts.join("solc-standard-json.js");
        for path in [&package, &wrapper] {
            if !path.is_file() {
                return Err(EvmError::SolcMissing { path: path.clone() });
            }
        }
        Ok(Self { wrapper })
    }

    /// The compiler's version string (e.g. `0.8.19+commit.7dd6d404.Emscripten.clang`).
    ///
    /// # Errors
    /// [`EvmError::Node`] if node cannot run it, [`EvmError::Output`] on a failed run.
    pub fn version(&self) -> Result<String, EvmError> {
        let out = Command::new("node")
            .arg(&self.wrapper)
            .arg("--version")
            .output()
            .map_err(EvmError::Node)?;
        if !out.status.success() {
            return Err(EvmError::Output(
                String::from_utf8_lossy(&out.stderr).into(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Compiles Solidity `sources` (`(file name, text)`; imports resolve between these names)
    /// and returns the contract `contract` declared in the file `file`.
    ///
    /// # Errors
    /// [`EvmError::Compile`] with solc's messages when it reports an error;
    /// [`EvmError::MissingContract`] when `file` does not declare `contract`;
    /// [`EvmError::Node`] / [`EvmError::Output`] when solc-js cannot be run or answers nonsense.
    pub fn compile(
        &self,
        sources: &[(&str, &str)],
        file: &str,
        contract: &str,
        optimizer: Optimizer,
    ) -> Result<CompiledContract, EvmError> {
        let sources: serde_json::Map<String, Value> = sources
            .iter()
            .map(|(name, text)| (name.to_string(), json!({ "content": text })))
            .collect();
        let input = json!({
            "language": "Solidity",
            "sources": sources,
            "settings": {
                "optimizer": { "enabled": optimizer.enabled, "runs": optimizer.runs },
                "outputSelection": {
                    "*": { "*": ["evm.bytecode.object", "evm.deployedBytecode.object"] }
                }
            }
        });
        let output = self.run_standard_json(&input.to_string())?;
        let output: Value = serde_json::from_str(&output)
            .map_err(|e| EvmError::Output(format!("not JSON ({e})")))?;
        if let Some(errors) = output.get("errors").and_then(Value::as_array) {
            let fatal: Vec<String> = errors
                .iter()
                .filter(|e| e.get("severity").and_then(Value::as_str) == Some("error"))
                .map(|e| {
                    e.get("formattedMessage")
                        .or_else(|| e.get("message"))
                        .and_then(Value::as_str)
                        .unwrap_or("(no message)")
                        .to_string()
                })
                .collect();
            if !fatal.is_empty() {
                return Err(EvmError::Compile(fatal.join("\n")));
            }
        }
        let evm = output
            .get("contracts")
            .and_then(|c| c.get(file))
            .and_then(|f| f.get(contract))
            .and_then(|c| c.get("evm"))
            .ok_or_else(|| EvmError::MissingContract(format!("{file}:{contract}")))?;
        let hex_at = |key: &str| -> Result<Vec<u8>, EvmError> {
            let text = evm
                .get(key)
                .and_then(|b| b.get("object"))
                .and_then(Value::as_str)
                .ok_or_else(|| EvmError::Output(format!("no {key} for {contract}")))?;
            hex::decode(text).map_err(|e| EvmError::Output(format!("{key} of {contract}: {e}")))
        };
        Ok(CompiledContract {
            creation: hex_at("bytecode")?,
            deployed: hex_at("deployedBytecode")?,
        })
    }

    fn run_standard_json(&self, input: &str) -> Result<String, EvmError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let out_path = std::env::temp_dir().join(format!(
            "collar-solc-{}-{}.json",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut child = Command::new("node")
            .arg(&self.wrapper)
            .arg(&out_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(EvmError::Node)?;
        // The wrapper reads all of stdin before writing anything, so this cannot deadlock.
        child
            .stdin
            .take()
            .ok_or_else(|| EvmError::Output("no stdin pipe".into()))?
            .write_all(input.as_bytes())
            .map_err(EvmError::Node)?;
        let out = child.wait_with_output().map_err(EvmError::Node)?;
        let result = if out.status.success() {
            std::fs::read_to_string(&out_path).map_err(|e| EvmError::Output(e.to_string()))
        } else {
            Err(EvmError::Output(format!(
                "solc-js exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )))
        };
        // Best effort: a leftover file in the temp dir is harmless.
        let _ = std::fs::remove_file(&out_path);
        result
    }
}
