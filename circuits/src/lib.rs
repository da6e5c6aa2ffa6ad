//! Collar's batch circuit and its chips, on halo2-base over halo2-axiom (KZG on BN254).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use halo2_base::halo2_proofs;

pub mod account;
pub mod batch;
pub mod ecc;
pub mod margin;
pub mod market;
pub mod merkle;
pub mod msm;
pub mod portfolio;
pub mod poseidon;
pub mod pow5;
pub mod safe;
pub mod schnorr;
pub mod soundness;
pub mod stats;
pub mod table;
pub mod testing;
