//! Collar's protocol rules, natively: the single reference for the sequencer, the circuits and
//! the escape hatch. Every rule cites its section of `docs/PROTOCOL.md`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod field;
pub mod poseidon;
