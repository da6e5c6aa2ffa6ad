// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import "../CollarPoseidon.sol";

/// Test-only entry points to the CollarPoseidon library (used by the revm tests).
contract PoseidonHarness {
    function hash(uint256[] calldata xs) external pure returns (uint256) {
        return CollarPoseidon.hash(xs);
    }

    function hash5(uint256 x0, uint256 x1, uint256 x2, uint256 x3, uint256 x4) external pure returns (uint256) {
        return CollarPoseidon.hash5(x0, x1, x2, x3, x4);
    }

    function hash6(uint256 x0, uint256 x1, uint256 x2, uint256 x3, uint256 x4, uint256 x5)
        external
        pure
        returns (uint256)
    {
        return CollarPoseidon.hash6(x0, x1, x2, x3, x4, x5);
    }

    function permute(uint256 a, uint256 b, uint256 c) external pure returns (uint256, uint256, uint256) {
        return CollarPoseidon.permute(a, b, c);
    }
}
