//! The Solidity Poseidon (contracts/CollarPoseidon.sol) is the generator's current output and
//! equals `collar_protocol::poseidon::hash` on random inputs of every length used by the
//! protocol, run in revm.

mod evm_common;

use collar_protocol::poseidon;
use collar_protocol::Fr;
use collar_verifier::evm::poseidon_sol;
use evm_common::{call, fr_u256, fr_word, word, Chain};
use halo2_base::halo2_proofs::arithmetic::Field;
use rand::SeedableRng;
use revm::primitives::Address;

#[test]
fn checked_in_poseidon_contract_is_the_generated_one() {
    let path = evm_common::repo_root().join("contracts/CollarPoseidon.sol");
    let generated = poseidon_sol::generate();
    if std::env::var_os("COLLAR_REGENERATE").is_some() {
        std::fs::write(&path, &generated).expect("write contracts/CollarPoseidon.sol");
    }
    let on_disk = std::fs::read_to_string(&path).expect("contracts/CollarPoseidon.sol exists");
    assert!(
        on_disk == generated,
        "contracts/CollarPoseidon.sol is stale: regenerate it with \
         COLLAR_REGENERATE=1 cargo test -p collar-verifier --features evm --test evm_poseidon"
    );
}

#[test]
fn solidity_poseidon_equals_native_on_random_inputs() {
    let harness = evm_common::compile(
        &["CollarPoseidon.sol", "test/PoseidonHarness.sol"],
        "test/PoseidonHarness.sol",
        "PoseidonHarness",
    );
    let mut chain = Chain::new();
    let deployer = Address::repeat_byte(0x01);
    let at = chain.deploy(deployer, &harness.creation, &[]);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);

    // The bare permutation.
    for _ in 0..4 {
        let mut s = [
            Fr::random(&mut rng),
            Fr::random(&mut rng),
            Fr::random(&mut rng),
        ];
        let out = chain.view(
            at,
            call(
                "permute(uint256,uint256,uint256)",
                &[fr_word(&s[0]), fr_word(&s[1]), fr_word(&s[2])],
            ),
        );
        poseidon::permute(&mut s);
        let got: Vec<[u8; 32]> = out.chunks(32).map(|c| c.try_into().unwrap()).collect();
        assert_eq!(got, s.iter().map(fr_word).collect::<Vec<_>>());
    }

    // The sponge, lengths 0..=10 (every arity of §3.1's table up to ten), three draws each.
    for len in 0..=10usize {
        for _ in 0..3 {
            let xs: Vec<Fr> = (0..len).map(|_| Fr::random(&mut rng)).collect();
            // hash(uint256[]): offset, length, elements.
            let mut args = vec![word(32), word(len as u128)];
            args.extend(xs.iter().map(fr_word));
            let got = chain.view_word(at, "hash(uint256[])", &args);
            assert_eq!(got, fr_u256(&poseidon::hash(&xs)), "length {len}");
            let words: Vec<[u8; 32]> = xs.iter().map(fr_word).collect();
            if len == 5 {
                let got =
                    chain.view_word(at, "hash5(uint256,uint256,uint256,uint256,uint256)", &words);
                assert_eq!(got, fr_u256(&poseidon::hash(&xs)), "hash5");
            }
            if len == 6 {
                let got = chain.view_word(
                    at,
                    "hash6(uint256,uint256,uint256,uint256,uint256,uint256)",
                    &words,
                );
                assert_eq!(got, fr_u256(&poseidon::hash(&xs)), "hash6");
            }
        }
    }

    // Gas of one permutation and of the two chain steps, for the record.
    let probe = |chain: &mut Chain, data: Vec<u8>| chain.send(deployer, at, 0, data).ok().gas_used;
    let zero = [word(0); 6];
    let g5 = probe(
        &mut chain,
        call("hash5(uint256,uint256,uint256,uint256,uint256)", &zero[..5]),
    );
    let g6 = probe(
        &mut chain,
        call(
            "hash6(uint256,uint256,uint256,uint256,uint256,uint256)",
            &zero,
        ),
    );
    let gp = probe(
        &mut chain,
        call("permute(uint256,uint256,uint256)", &zero[..3]),
    );
    println!(
        "gas (whole tx, 21,000 intrinsic included): permute {gp}, hash5 {g5} (3 permutations), \
         hash6 {g6} (4 permutations)"
    );
    println!(
        "PoseidonHarness deployed size: {} bytes",
        harness.deployed.len()
    );
}
