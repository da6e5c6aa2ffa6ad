// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import "./CollarPoseidon.sol";

/// @title Collar settlement: the L1 side of the rollup (PROTOCOL.md §7.1, §10, §11).
/// @notice Holds the current state root and batch number, the deposit queue and the funds.
/// A new state root is accepted only with a batch proof that the verifier contract accepts for
/// the 8 public inputs of §11, starting from the root held here, numbered one past the last
/// batch, and consuming exactly a prefix of the deposits queued here that starts where the
/// previous batch stopped. The withdrawals the batch emits then become claimable, each once.
///
/// Funds are native ETH and one quote unit is one wei: a deposit of `amount` sends exactly
/// `amount` wei, and a claimed withdrawal pays `amount` wei to its recipient. (A deployment with
/// an ERC-20 quote token would pull and push the token instead; the rules are unchanged.)
///
/// Tick commitment rule: the contract does not impose oracle prices. It records each batch's
/// `tick_commitment` (§11) so that anyone holding the batch's public data can recompute the
/// chain over its tick records and audit the prices the batch used against the oracles' own
/// publications. Quorum and signature rules for prices are part of the proven rules (§8).
///
/// Public data: the contract records each batch's `pubdata_commitment` (§10). Binding it to
/// bytes posted on L1 (calldata or blobs) is an open decision, documented in contracts/README.md.
contract CollarSettlement {
    /// One withdrawal emitted by a batch, as in the withdrawals chain (§11).
    struct Withdrawal {
        uint64 account;
        uint64 amount;
        address recipient;
    }

    /// Bound on the total value locked (§7.1): every collateral then stays below 2^63.
    uint256 public constant MAX_TOTAL_LOCKED = 1 << 63;

    /// The batch verifier (the generated contract: calldata = 8 public inputs, then the proof).
    address public immutable verifier;
    /// Accounts are `< 2^accountDepth` (§4.1, §4.8).
    uint256 public immutable accountDepth;
    /// The length in bytes of every proof for `verifier` (fixed by its verifying key). The
    /// generated verifier reads fixed calldata offsets and ignores bytes after the proof.
    uint256 public immutable proofLength;
    /// The proof's evaluations (scalars) are the 32-byte words in `[proofScalarsFrom,
    /// proofScalarsTo)`. The generated verifier reduces them modulo `p`, so each must be below
    /// `p` here: with the length check and the verifier's own point checks (`x, y < q`, on the
    /// curve), a proof has one byte string.
    uint256 public immutable proofScalarsFrom;
    /// End (exclusive) of the proof's scalar words; see `proofScalarsFrom`.
    uint256 public immutable proofScalarsTo;

    /// The current state root (§4.9).
    uint256 public stateRoot;
    /// The number of the last accepted batch (0 before the first).
    uint256 public batchNumber;
    /// Deposits queued so far.
    uint256 public depositCount;
    /// Deposits consumed by accepted batches so far (a prefix of the queue).
    uint256 public consumedDepositCount;
    /// `depositHeadAt[n]`: the deposit-chain head after the first `n` queued deposits (§7.1);
    /// `depositHeadAt[0] = 0`.
    mapping(uint256 => uint256) public depositHeadAt;
    /// Value held for the rollup: deposits queued minus withdrawals paid out (§7.1).
    uint256 public totalLocked;
    /// Public-data commitment (§10) of each accepted batch, by batch number.
    mapping(uint256 => uint256) public pubdataCommitmentOf;
    /// Tick commitment (§11) of each accepted batch, by batch number.
    mapping(uint256 => uint256) public tickCommitmentOf;
    /// Withdrawals emitted by accepted batches and not yet paid, by [`withdrawalId`].
    mapping(bytes32 => bool) public claimable;

    /// A deposit entered the queue as deposit number `index` (from 1); `head` is the new head.
    event DepositQueued(
        uint256 indexed index, uint64 indexed account, uint256 pubkeyX, uint256 pubkeyY, uint256 amount, uint256 head
    );
    /// Batch `batchNumber` was accepted.
    event BatchAccepted(
        uint256 indexed batchNumber,
        uint256 oldRoot,
        uint256 newRoot,
        uint256 pubdataCommitment,
        uint256 tickCommitment,
        uint256 depositCountAfter,
        uint256 withdrawals
    );
    /// Withdrawal `index` of batch `batch` was paid to `recipient`.
    event WithdrawalClaimed(uint256 indexed batch, uint256 index, uint64 account, uint64 amount, address recipient);

    /// `account >= 2^accountDepth`.
    error AccountOutOfRange();
    /// A deposit of zero.
    error ZeroAmount();
    /// The public key is not a canonical point of Grumpkin (`y^2 = x^3 - 17 mod p`).
    error InvalidPubkey();
    /// The deposit would take the total value locked to 2^63 or beyond.
    error TotalLockedOverflow();
    /// A public input is not a canonical field element (`>= p`).
    error NonCanonicalInput(uint256 index);
    /// The batch is not numbered `batchNumber + 1`.
    error WrongBatchNumber(uint256 expected, uint256 got);
    /// The batch does not start from the current state root.
    error WrongOldRoot(uint256 expected, uint256 got);
    /// The batch does not start at the head of the deposits consumed so far.
    error WrongDepositHeadBefore(uint256 expected, uint256 got);
    /// The batch's head after is not the head of a queued, unconsumed prefix of the queue.
    error UnknownDepositHead(uint256 countAfter, uint256 head);
    /// The withdrawals given do not hash to the batch's withdrawals commitment.
    error WithdrawalsMismatch(uint256 expected, uint256 computed);
    /// The proof is not `proofLength` bytes long.
    error WrongProofLength(uint256 expected, uint256 got);
    /// The scalar word at byte `offset` of the proof is not a canonical field element (`>= p`).
    error NonCanonicalProofScalar(uint256 offset);
    /// The verifier rejected the proof.
    error InvalidProof();
    /// Not an unpaid withdrawal of an accepted batch.
    error NotClaimable();
    /// Paying the recipient failed.
    error TransferFailed();

    /// @param verifier_ the batch verifier contract (must have code).
    /// @param accountDepth_ the deployment's `account_depth` (§4.8), at most 32.
    /// @param genesisRoot the state root of the genesis state (§4.10), canonical.
    /// @param proofLength_ the length of the verifier's proofs; `proofScalarsFrom_` and
    /// `proofScalarsTo_` bound their scalar words (`collar_verifier::evm::verifier_sol::ProofLayout`).
    constructor(
        address verifier_,
        uint256 accountDepth_,
        uint256 genesisRoot,
        uint256 proofLength_,
        uint256 proofScalarsFrom_,
        uint256 proofScalarsTo_
    ) {
        // A call to an address without code succeeds and returns nothing: with no verifier
        // there, every proof would pass.
        require(verifier_.code.length != 0, "verifier has no code");
        require(accountDepth_ >= 2 && accountDepth_ <= 32, "account depth");
        require(genesisRoot < CollarPoseidon.P, "genesis root");
        require(
            proofScalarsFrom_ <= proofScalarsTo_ && proofScalarsTo_ <= proofLength_
                && (proofScalarsTo_ - proofScalarsFrom_) % 32 == 0,
            "proof layout"
        );
        verifier = verifier_;
        accountDepth = accountDepth_;
        stateRoot = genesisRoot;
        proofLength = proofLength_;
        proofScalarsFrom = proofScalarsFrom_;
        proofScalarsTo = proofScalarsTo_;
    }

    /// Queues a deposit of `msg.value` wei to `account`, bound to `pubkey` if the account does
    /// not exist yet (§7.1). Enforces the L1 preconditions of §7.1 so that the rules can never
    /// reject a queued deposit: account in range, positive amount, `pubkey` a canonical Grumpkin
    /// point, and the total value locked below 2^63.
    function deposit(uint64 account, uint256 pubkeyX, uint256 pubkeyY) external payable {
        if (uint256(account) >> accountDepth != 0) revert AccountOutOfRange();
        if (msg.value == 0) revert ZeroAmount();
        uint256 p = CollarPoseidon.P;
        if (pubkeyX >= p || pubkeyY >= p) revert InvalidPubkey();
        uint256 lhs = mulmod(pubkeyY, pubkeyY, p);
        uint256 rhs = addmod(mulmod(mulmod(pubkeyX, pubkeyX, p), pubkeyX, p), p - 17, p);
        if (lhs != rhs) revert InvalidPubkey();
        uint256 locked = totalLocked + msg.value;
        if (locked >= MAX_TOTAL_LOCKED) revert TotalLockedOverflow();
        totalLocked = locked;
        uint256 count = depositCount;
        uint256 head = CollarPoseidon.hash6(
            CollarPoseidon.TAG_DEPOSIT, depositHeadAt[count], account, pubkeyX, pubkeyY, msg.value
        );
        count += 1;
        depositCount = count;
        depositHeadAt[count] = head;
        emit DepositQueued(count, account, pubkeyX, pubkeyY, msg.value, head);
    }

    /// Accepts batch `publicInputs[7]` (§11 order: old_root, new_root, pubdata_commitment,
    /// tick_commitment, deposit_head_before, deposit_head_after, withdrawals_commitment,
    /// batch_number) with its `proof`, which consumed the queued deposits up to number
    /// `depositCountAfter` and emitted `withdrawals` in order. Reverts, changing nothing, unless
    /// every check passes. Anyone may submit: the proof and the checks decide everything.
    function submitBatch(
        uint256[8] calldata publicInputs,
        bytes calldata proof,
        uint256 depositCountAfter,
        Withdrawal[] calldata withdrawals
    ) external {
        for (uint256 i = 0; i < 8; ++i) {
            if (publicInputs[i] >= CollarPoseidon.P) revert NonCanonicalInput(i);
        }
        uint256 number = batchNumber + 1;
        if (publicInputs[7] != number) revert WrongBatchNumber(number, publicInputs[7]);
        if (publicInputs[0] != stateRoot) revert WrongOldRoot(stateRoot, publicInputs[0]);
        uint256 consumed = consumedDepositCount;
        if (publicInputs[4] != depositHeadAt[consumed]) {
            revert WrongDepositHeadBefore(depositHeadAt[consumed], publicInputs[4]);
        }
        if (
            depositCountAfter < consumed || depositCountAfter > depositCount
                || depositHeadAt[depositCountAfter] != publicInputs[5]
        ) revert UnknownDepositHead(depositCountAfter, publicInputs[5]);
        uint256 w = 0;
        for (uint256 i = 0; i < withdrawals.length; ++i) {
            Withdrawal calldata x = withdrawals[i];
            w = CollarPoseidon.hash5(
                CollarPoseidon.TAG_WITHDRAWALS, w, x.account, x.amount, uint256(uint160(x.recipient))
            );
        }
        if (w != publicInputs[6]) revert WithdrawalsMismatch(publicInputs[6], w);
        if (proof.length != proofLength) revert WrongProofLength(proofLength, proof.length);
        {
            // The scalar words lie inside the proof (the constructor checked the layout, and the
            // length is checked above): read them straight from calldata.
            uint256 bad = type(uint256).max;
            uint256 p = CollarPoseidon.P;
            uint256 to = proofScalarsTo;
            uint256 from = proofScalarsFrom;
            assembly {
                for { let o := from } lt(o, to) { o := add(o, 32) } {
                    if iszero(lt(calldataload(add(proof.offset, o)), p)) {
                        bad := o
                        break
                    }
                }
            }
            if (bad != type(uint256).max) revert NonCanonicalProofScalar(bad);
        }
        (bool ok,) = verifier.staticcall(abi.encodePacked(publicInputs, proof));
        if (!ok) revert InvalidProof();

        stateRoot = publicInputs[1];
        batchNumber = number;
        consumedDepositCount = depositCountAfter;
        pubdataCommitmentOf[number] = publicInputs[2];
        tickCommitmentOf[number] = publicInputs[3];
        for (uint256 i = 0; i < withdrawals.length; ++i) {
            Withdrawal calldata x = withdrawals[i];
            claimable[withdrawalId(number, i, x.account, x.amount, x.recipient)] = true;
        }
        emit BatchAccepted(
            number,
            publicInputs[0],
            publicInputs[1],
            publicInputs[2],
            publicInputs[3],
            depositCountAfter,
            withdrawals.length
        );
    }

    /// Pays withdrawal `index` (from 0) of accepted batch `batch` to its recipient, once.
    /// Anyone may trigger it; the funds go to `w.recipient` only.
    function claimWithdrawal(uint256 batch, uint256 index, Withdrawal calldata w) external {
        bytes32 id = withdrawalId(batch, index, w.account, w.amount, w.recipient);
        if (!claimable[id]) revert NotClaimable();
        claimable[id] = false;
        totalLocked -= w.amount;
        emit WithdrawalClaimed(batch, index, w.account, w.amount, w.recipient);
        (bool ok,) = w.recipient.call{value: w.amount}("");
        if (!ok) revert TransferFailed();
    }

    /// The key of withdrawal `index` of batch `batch` in [`claimable`].
    function withdrawalId(uint256 batch, uint256 index, uint64 account, uint64 amount, address recipient)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(batch, index, account, amount, recipient));
    }
}
