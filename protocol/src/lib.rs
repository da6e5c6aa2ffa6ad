//! Collar's protocol rules, natively: the single reference for the sequencer, the circuits and
//! the escape hatch. Every rule cites its section of `docs/PROTOCOL.md`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod account;
pub mod batch;
pub mod error;
pub mod field;
pub mod margin;
pub mod market;
pub mod merkle;
pub mod params;
pub mod poseidon;
pub mod pubdata;
pub mod signature;
pub mod state;
pub mod testkit;
pub mod tx;

pub use account::{Account, Position, FEE_ACCOUNT, INSURANCE_FUND};
pub use error::Rejection;
pub use field::Fr;
pub use market::{OptionKind, Series, Underlying};
pub use params::{Genesis, ProtocolParams};
pub use signature::{PublicKey, SecretKey, Signature};
pub use state::{Effects, State, TxWitness};
pub use tx::{SignedTx, Tx};
