//! The devnet L1: `contracts/CollarSettlement.sol` deployed in an in-process EVM
//! ([`crate::chain::Chain`]), so that the node reads its deposits from the settlement contract's
//! `DepositQueued` events as it would on a real chain.
//!
//! The contracts run from bytecode committed under `contracts/build/` (compiled by the pinned
//! solc-js; a test of the `evm` feature fails if it is stale), so nothing needs installing. The
//! chain is made durable by a journal: the header names the deployment (account depth, genesis
//! root), then one line per successful L1 transaction, each fsynced before the call returns;
//! reopening redeploys and replays the journal, which gives the same chain (revm is
//! deterministic). A reverted call changes nothing and is not journaled.
//!
//! The settlement contract is deployed against `contracts/DevnetVerifier.sol`, which accepts no
//! proof: on the devnet the contract carries the deposit queue, and `submitBatch` always reverts
//! (with `WrongProofLength`, the devnet deployment having no proof layout, or `InvalidProof()`).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use collar_protocol::tx::Deposit;
use collar_protocol::{Fr, PublicKey};
use serde::{Deserialize, Serialize};

use crate::chain::{
    address_word, call, event_topic, fr_word, word, word_fr, Address, Chain, Outcome, U256,
};

/// Creation code of `CollarSettlement` (hex), compiled by the pinned solc-js.
pub const SETTLEMENT_CREATION_HEX: &str =
    include_str!("../../contracts/build/CollarSettlement.hex");
/// Creation code of `DevnetVerifier` (hex), compiled by the pinned solc-js.
pub const DEVNET_VERIFIER_CREATION_HEX: &str =
    include_str!("../../contracts/build/DevnetVerifier.hex");

/// The devnet account that deploys the contracts.
pub const DEVNET_DEPLOYER: Address = Address::repeat_byte(0xd1);
/// The devnet account that sends deposits (funded with each deposit's value before it sends).
pub const DEVNET_DEPOSITOR: Address = Address::repeat_byte(0xd2);

const DEPOSIT_QUEUED: &str = "DepositQueued(uint256,uint64,uint256,uint256,uint256,uint256)";
const DEPOSIT_CALL: &str = "deposit(uint64,uint256,uint256)";
/// The settlement contract's deposit errors, by signature, with the code the node reports.
const DEPOSIT_ERRORS: [(&str, &str); 4] = [
    ("AccountOutOfRange()", "account_out_of_range"),
    ("ZeroAmount()", "zero_amount"),
    ("InvalidPubkey()", "invalid_pubkey"),
    ("TotalLockedOverflow()", "total_locked_overflow"),
];

/// Why a devnet L1 operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum L1Error {
    /// The settlement contract reverted the call; `code` names its custom error
    /// (`zero_amount`, `invalid_pubkey`, `account_out_of_range`, `total_locked_overflow`) or is
    /// `reverted` for anything else.
    #[error("the settlement contract reverted: {code}")]
    Reverted {
        /// The contract's error, snake_case.
        code: &'static str,
    },
    /// The journal could not be read or written.
    #[error("devnet journal {}: {source}", path.display())]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The journal is not one this deployment wrote, or the chain disagrees with it.
    #[error("devnet L1: {0}")]
    Corrupt(String),
}

/// One entry of the settlement contract's deposit queue, decoded from `DepositQueued`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueuedDeposit {
    /// Queue position, from 1.
    pub index: u64,
    /// The deposit as the rollup's rules see it.
    pub deposit: Deposit,
    /// The queue head after it (§7.1), as the contract computed it.
    #[serde(with = "collar_protocol::field::fr_hex")]
    pub head: Fr,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    collar_devnet_l1: u32,
    account_depth: u32,
    #[serde(with = "collar_protocol::field::fr_hex")]
    genesis_root: Fr,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Entry {
    Deposit(Deposit),
}

/// The devnet L1: the settlement contract in revm, its deposit queue, and the journal that
/// makes it durable.
#[derive(Debug)]
pub struct DevL1 {
    chain: Chain,
    settlement: Address,
    deposits: Vec<QueuedDeposit>,
    journal: Option<(PathBuf, File)>,
}

fn hex_code(h: &str) -> Vec<u8> {
    hex::decode(h.trim()).expect("committed contract bytecode is hex")
}

impl DevL1 {
    /// Deploys the contracts for a rollup with `account_depth` and `genesis_root` and replays
    /// `journal` if given (creating it if missing). Without a journal the chain lives in memory.
    ///
    /// # Errors
    /// [`L1Error::Journal`] on I/O failure; [`L1Error::Corrupt`] if the journal was written for
    /// another deployment, does not parse, or replays differently.
    pub fn open(
        journal: Option<&Path>,
        account_depth: u32,
        genesis_root: Fr,
    ) -> Result<Self, L1Error> {
        let mut chain = Chain::new();
        let verifier = chain
            .try_deploy(
                DEVNET_DEPLOYER,
                &hex_code(DEVNET_VERIFIER_CREATION_HEX),
                &[],
            )
            .map_err(|o| L1Error::Corrupt(format!("devnet verifier deployment failed: {o:?}")))?;
        // The devnet verifier accepts no proof, so no proof has a layout: length 0, no scalars.
        let args = [
            address_word(&verifier),
            word(account_depth.into()),
            fr_word(&genesis_root),
            word(0),
            word(0),
            word(0),
        ]
        .concat();
        let settlement = chain
            .try_deploy(DEVNET_DEPLOYER, &hex_code(SETTLEMENT_CREATION_HEX), &args)
            .map_err(|o| L1Error::Corrupt(format!("settlement deployment failed: {o:?}")))?;
        let mut l1 = Self {
            chain,
            settlement,
            deposits: Vec::new(),
            journal: None,
        };
        let Some(path) = journal else {
            return Ok(l1);
        };
        let io = |source| L1Error::Journal {
            path: path.to_path_buf(),
            source,
        };
        let header = Header {
            collar_devnet_l1: 1,
            account_depth,
            genesis_root,
        };
        let header_line = serde_json::to_string(&header).expect("header JSON");
        if path.exists() {
            let mut lines = BufReader::new(File::open(path).map_err(io)?).lines();
            let first = lines.next().transpose().map_err(io)?.unwrap_or_default();
            if first != header_line {
                return Err(L1Error::Corrupt(format!(
                    "{} was written for another deployment (header {first})",
                    path.display()
                )));
            }
            for (n, line) in lines.enumerate() {
                let line = line.map_err(io)?;
                if line.is_empty() {
                    continue;
                }
                let entry: Entry = serde_json::from_str(&line).map_err(|e| {
                    L1Error::Corrupt(format!("{} line {}: {e}", path.display(), n + 2))
                })?;
                match entry {
                    Entry::Deposit(d) => {
                        l1.execute_deposit(&d).map_err(|e| {
                            L1Error::Corrupt(format!("replaying line {}: {e}", n + 2))
                        })?;
                    }
                }
            }
        } else {
            let mut f = File::create(path).map_err(io)?;
            writeln!(f, "{header_line}").map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        let f = OpenOptions::new().append(true).open(path).map_err(io)?;
        l1.journal = Some((path.to_path_buf(), f));
        Ok(l1)
    }

    /// The settlement contract's address.
    pub fn settlement(&self) -> Address {
        self.settlement
    }

    fn deposit_calldata(d: &Deposit) -> Vec<u8> {
        call(
            DEPOSIT_CALL,
            &[
                word(d.account.into()),
                fr_word(&d.pubkey.x),
                fr_word(&d.pubkey.y),
            ],
        )
    }

    /// Funds the depositor with the deposit's value and calls `deposit()` from it, committing
    /// the effects or (`commit = false`) only simulating them.
    fn call_deposit(&mut self, d: &Deposit, commit: bool) -> Outcome {
        let value = u128::from(d.amount);
        self.chain.set_balance(DEVNET_DEPOSITOR, value);
        let data = Self::deposit_calldata(d);
        if commit {
            self.chain
                .send(DEVNET_DEPOSITOR, self.settlement, value, data)
        } else {
            self.chain
                .simulate(DEVNET_DEPOSITOR, self.settlement, value, data)
        }
    }

    /// Runs `deposit()` and records its event; on a revert nothing changes.
    fn execute_deposit(&mut self, d: &Deposit) -> Result<QueuedDeposit, L1Error> {
        let out = self.call_deposit(d, true);
        if !out.success {
            return Err(revert_error(&out));
        }
        let topic = event_topic(DEPOSIT_QUEUED);
        let log = out
            .logs
            .iter()
            .find(|l| {
                l.address == self.settlement && l.topics().first().map(|t| t.0) == Some(topic)
            })
            .ok_or_else(|| L1Error::Corrupt("deposit() emitted no DepositQueued".into()))?;
        let q = decode_deposit_queued(log.topics(), &log.data.data)?;
        if q.deposit != *d || q.index != self.deposits.len() as u64 + 1 {
            return Err(L1Error::Corrupt(format!(
                "DepositQueued {q:?} does not match the call {d:?}"
            )));
        }
        self.deposits.push(q.clone());
        Ok(q)
    }

    /// A user's L1 deposit: calls `deposit(account, pubkey)` with `amount` wei, funded by the
    /// devnet. Durable (journaled and fsynced) when it returns `Ok`.
    ///
    /// # Errors
    /// [`L1Error::Reverted`] if the contract refuses it (nothing is recorded);
    /// [`L1Error::Journal`] if the journal cannot be written (nothing is recorded).
    pub fn deposit(&mut self, d: &Deposit) -> Result<QueuedDeposit, L1Error> {
        // Dry run first: a refused deposit is answered without touching the journal.
        let dry = self.call_deposit(d, false);
        if !dry.success {
            return Err(revert_error(&dry));
        }
        if let Some((path, f)) = &mut self.journal {
            let io = |source| L1Error::Journal {
                path: path.clone(),
                source,
            };
            let line = serde_json::to_string(&Entry::Deposit(d.clone())).expect("entry JSON");
            let len = f.metadata().map_err(io)?.len();
            if let Err(e) = writeln!(f, "{line}").and_then(|()| f.sync_data()) {
                // Leave no partial line behind: the deposit did not happen.
                let _ = f.set_len(len);
                return Err(io(e));
            }
        }
        self.execute_deposit(d)
    }

    /// The queued deposits with index `>= first` (indices start at 1), in queue order.
    pub fn deposits_from(&self, first: u64) -> &[QueuedDeposit] {
        let skip = usize::try_from(first.saturating_sub(1)).unwrap_or(usize::MAX);
        self.deposits.get(skip..).unwrap_or(&[])
    }

    /// Number of deposits queued (the contract's `depositCount`).
    pub fn deposit_count(&mut self) -> u64 {
        let w = self.chain.view_word(self.settlement, "depositCount()", &[]);
        u64::try_from(w).expect("the queue count fits u64")
    }

    /// The queue head after the first `n` deposits (the contract's `depositHeadAt(n)`; 0 for
    /// `n = 0`).
    pub fn deposit_head_at(&mut self, n: u64) -> Fr {
        let w = self
            .chain
            .view_word(self.settlement, "depositHeadAt(uint256)", &[word(n.into())]);
        word_fr(w).expect("the contract stores canonical heads")
    }
}

/// The typed error of a reverted `deposit()`.
fn revert_error(out: &Outcome) -> L1Error {
    let code = DEPOSIT_ERRORS
        .iter()
        .find(|(sig, _)| out.is_revert(sig))
        .map_or("reverted", |(_, code)| code);
    L1Error::Reverted { code }
}

/// Decodes `DepositQueued(index indexed, account indexed, pubkeyX, pubkeyY, amount, head)`.
fn decode_deposit_queued(
    topics: &[revm::primitives::B256],
    data: &[u8],
) -> Result<QueuedDeposit, L1Error> {
    let bad = |what: &str| L1Error::Corrupt(format!("malformed DepositQueued: {what}"));
    if topics.len() != 3 || data.len() != 4 * 32 {
        return Err(bad("shape"));
    }
    let u = |b: &[u8]| U256::from_be_slice(b);
    let small = |v: U256, what: &str| u64::try_from(v).map_err(|_| bad(what));
    let fr = |v: U256, what: &str| word_fr(v).ok_or_else(|| bad(what));
    let words: Vec<U256> = data.chunks(32).map(u).collect();
    Ok(QueuedDeposit {
        index: small(u(topics[1].as_slice()), "index")?,
        deposit: Deposit {
            account: small(u(topics[2].as_slice()), "account")?,
            pubkey: PublicKey {
                x: fr(words[0], "pubkeyX")?,
                y: fr(words[1], "pubkeyY")?,
            },
            amount: small(words[2], "amount")?,
        },
        head: fr(words[3], "head")?,
    })
}

#[cfg(test)]
mod tests {
    use collar_protocol::testkit::account_key;

    use super::*;

    fn deposit(account: u64, amount: u64) -> Deposit {
        Deposit {
            account,
            pubkey: account_key(account).public_key(),
            amount,
        }
    }

    #[test]
    fn the_queue_is_the_protocol_deposit_chain_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l1.jsonl");
        let root = Fr::from(12_345u64);
        let mut l1 = DevL1::open(Some(&path), 8, root).unwrap();
        let ds = [deposit(2, 500), deposit(2, 500), deposit(7, 1)];
        let mut head = Fr::from(0u64);
        for (i, d) in ds.iter().enumerate() {
            let q = l1.deposit(d).unwrap();
            head = d.chain(head);
            assert_eq!((q.index, &q.deposit, q.head), (i as u64 + 1, d, head));
            assert_eq!(l1.deposit_head_at(q.index), head);
        }
        assert_eq!(l1.deposit_count(), 3);
        let queue = l1.deposits_from(1).to_vec();
        assert_eq!(l1.deposits_from(3), &queue[2..]);
        assert!(l1.deposits_from(4).is_empty());
        drop(l1);

        let mut again = DevL1::open(Some(&path), 8, root).unwrap();
        assert_eq!(again.deposits_from(1), &queue[..]);
        assert_eq!(again.deposit_head_at(3), head);
        assert_eq!(again.deposit(&deposit(3, 9)).unwrap().index, 4);

        // Another deployment's journal is refused.
        let err = DevL1::open(Some(&path), 8, Fr::from(1u64)).unwrap_err();
        assert!(matches!(err, L1Error::Corrupt(_)), "{err}");
    }

    #[test]
    fn a_refused_deposit_names_the_contract_error_and_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l1.jsonl");
        let mut l1 = DevL1::open(Some(&path), 8, Fr::from(3u64)).unwrap();
        let before = std::fs::read(&path).unwrap();
        let mut off_curve = deposit(2, 5);
        off_curve.pubkey.y += Fr::from(1u64);
        for (d, want) in [
            (deposit(2, 0), "zero_amount"),
            (deposit(256, 5), "account_out_of_range"),
            (off_curve, "invalid_pubkey"),
            (deposit(2, 1 << 63), "total_locked_overflow"),
        ] {
            match l1.deposit(&d) {
                Err(L1Error::Reverted { code }) => assert_eq!(code, want),
                other => panic!("expected {want}, got {other:?}"),
            }
        }
        assert!(l1.deposits_from(1).is_empty());
        assert_eq!(l1.deposit_count(), 0);
        assert_eq!(std::fs::read(&path).unwrap(), before, "journal untouched");
    }
}
