// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

/// @title The batch verifier of the devnet L1: accepts no proof.
/// @notice `collar node --l1-devnet` runs CollarSettlement in an in-process EVM to carry the
/// deposit queue. It proves batches with the native (Blake2b-transcript) prover, which an EVM
/// verifier cannot check, so the devnet settlement contract is deployed against this verifier
/// and every `submitBatch` on it reverts with `InvalidProof()`. Settlement with real proofs runs
/// against the generated verifier in the `evm` feature's tests (verifier/tests/evm_settlement.rs).
contract DevnetVerifier {
    fallback() external {
        revert("devnet: no batch verifier");
    }
}
