//! The Schnorr chip (PROTOCOL.md §6.3) against the native `collar_protocol::signature`:
//! signatures by the native signer verify in circuit, the circuit and `verify` agree on random
//! valid and tampered tuples, each structural check fails alone, and sampled single-cell
//! mutations of a verification are all rejected. The multiplication-chip path (`msm`, what the
//! batch circuit runs with `Hashing::Pow5Msm`) agrees with native and with the basic-gate path, refuses a
//! non-canonical `s`, and its cells are measured.

use collar_circuits::ecc::AssignedPoint;
use collar_circuits::msm;
use collar_circuits::poseidon::{Hashing, PoseidonChip};
use collar_circuits::pow5::ChipMutation;
use collar_circuits::schnorr::{offset_point, SchnorrChip, SignatureWitness, SCALAR_BITS};
use collar_circuits::stats::{metered, Component};
use collar_circuits::testing::{Failure, MockOutcome, MockRun, Mutation, FLEX_GATE};
use collar_protocol::signature::{self, Keypair, PublicKey, Scalar, Signature};
use halo2_base::gates::{RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
use halo2_base::halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_base::{AssignedValue, Context};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const K: u32 = 15;
const LOOKUP_BITS: usize = 8;

fn keypair(rng: &mut ChaCha8Rng) -> Keypair {
    Keypair::from_seed(&rng.gen()).expect("nonzero key")
}

fn message(rng: &mut ChaCha8Rng) -> Fr {
    Fr::from(rng.gen::<u64>()) * Fr::from(rng.gen::<u64>()) + Fr::from(rng.gen::<u64>())
}

/// A fresh key, a random message and the key's signature on it, from `rng`.
fn signed(rng: &mut ChaCha8Rng) -> (Keypair, Fr, Signature) {
    let kp = keypair(rng);
    let m = message(rng);
    let sig = kp.sign(m);
    (kp, m, sig)
}

/// A verification's inputs as witnesses: the circuit's Poseidon chip, `pk` constrained on the
/// curve, and `m`.
fn load_inputs(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    pk: &PublicKey,
    m: Fr,
) -> (PoseidonChip, AssignedPoint, AssignedValue<Fr>) {
    let poseidon = PoseidonChip::new(ctx, range.gate());
    let x = ctx.load_witness(pk.x);
    let y = ctx.load_witness(pk.y);
    let pk = SchnorrChip::new(range).public_key(ctx, x, y);
    (poseidon, pk, ctx.load_witness(m))
}

/// One verification of `sig` on `m` under `pk` on halo2-base's gate, all as witnesses.
fn build(ctx: &mut Context<Fr>, range: &RangeChip<Fr>, pk: &PublicKey, m: Fr, sig: &Signature) {
    let (poseidon, pk, m) = load_inputs(ctx, range, pk, m);
    let chip = SchnorrChip::new(range);
    let sig = chip.load_signature(ctx, &SignatureWitness::from(sig));
    chip.verify(ctx, &poseidon, &pk, m, &sig);
}

fn run(pk: &PublicKey, m: Fr, sig: &Signature) -> MockOutcome<()> {
    MockRun::new(K, LOOKUP_BITS).check(|ctx, range| build(ctx, range, pk, m, sig))
}

fn permutation_only(out: &MockOutcome<()>) -> bool {
    out.failures.iter().all(|f| *f == Failure::Permutation) && !out.failures.is_empty()
}

/// `s + q` as 32 big-endian bytes, if it fits in 256 bits.
fn s_plus_order(s: &[u8; 32]) -> Option<[u8; 32]> {
    let order = hex_be(Scalar::MODULUS);
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let v = u16::from(s[i]) + u16::from(order[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    (carry == 0).then_some(out)
}

fn hex_be(hex: &str) -> [u8; 32] {
    let digits = format!("{:0>64}", hex.trim_start_matches("0x"));
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn native_signatures_verify_in_circuit() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..3 {
        let (kp, m, sig) = signed(&mut rng);
        signature::verify(&kp.pk(), m, &sig).expect("native accepts");
        let out = run(&kp.pk(), m, &sig);
        assert!(out.is_satisfied(), "{:?}", out.failures);
    }
}

#[test]
fn circuit_and_native_agree_on_random_tuples() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut accepted, mut rejected) = (0, 0);
    for round in 0..6 {
        let kp = keypair(&mut rng);
        let other = keypair(&mut rng);
        let m = message(&mut rng);
        let mut sig = kp.sign(m);
        let mut pk = kp.pk();
        let mut msg = m;
        match round % 3 {
            0 => {}
            1 => pk = other.pk(),
            _ => {
                msg = m + Fr::one();
                sig = if rng.gen() { sig } else { other.sign(msg) };
            }
        }
        let native = signature::verify(&pk, msg, &sig).is_ok();
        let circuit = run(&pk, msg, &sig).is_satisfied();
        assert_eq!(native, circuit, "round {round}");
        // The same through `verify_witness` on every path (the msm chip with Pow5Msm): a wrong
        // signature satisfies every gate, and only the final equality fails.
        for hashing in Hashing::ALL {
            let out = run_on(hashing, &pk, msg, &sig);
            assert_eq!(native, out.is_satisfied(), "round {round}, {hashing}");
            assert!(native || permutation_only(&out), "{:?}", out.failures);
        }
        if native {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    assert!(
        accepted > 0 && rejected > 0,
        "{accepted} accepted, {rejected} rejected"
    );
}

#[test]
fn wrong_key_and_another_accounts_signature_fail() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let (alice, bob) = (keypair(&mut rng), keypair(&mut rng));
    let m = message(&mut rng);
    // Alice's signature checked under Bob's key.
    let out = run(&bob.pk(), m, &alice.sign(m));
    assert!(permutation_only(&out), "{:?}", out.failures);
    // Bob's signature presented for Alice's message under Alice's key.
    let out = run(&alice.pk(), m, &bob.sign(m));
    assert!(permutation_only(&out), "{:?}", out.failures);
}

#[test]
fn flipped_message_bit_fails() {
    let (kp, m, sig) = signed(&mut ChaCha8Rng::seed_from_u64(17));
    for bit in [0u32, 63, 200] {
        let mut repr = m.to_repr();
        repr[(bit / 8) as usize] ^= 1 << (bit % 8);
        let flipped = Option::from(Fr::from_repr(repr)).expect("still canonical");
        assert!(signature::verify(&kp.pk(), flipped, &sig).is_err());
        let out = run(&kp.pk(), flipped, &sig);
        assert!(permutation_only(&out), "bit {bit}: {:?}", out.failures);
    }
}

/// Loads `R` and `s` alone: the structural checks, isolated from the equation.
fn load_only(r: [Fr; 2], s: [u8; 32]) -> MockOutcome<()> {
    MockRun::new(12, LOOKUP_BITS).check(|ctx, range| {
        SchnorrChip::new(range).load_signature(ctx, &SignatureWitness { r, s });
    })
}

#[test]
fn r_off_curve_or_identity_fails_its_curve_check() {
    let (kp, m, sig) = signed(&mut ChaCha8Rng::seed_from_u64(19));
    assert!(load_only([sig.rx, sig.ry], sig.s).is_satisfied());
    for (rx, ry) in [(sig.rx, sig.ry + Fr::one()), (Fr::zero(), Fr::zero())] {
        let bad = Signature { rx, ry, ..sig };
        assert_eq!(bad.r_affine(), Err(signature::SignatureError::InvalidR));
        // The on-curve copy constraint is the one failure of the load.
        let out = load_only([rx, ry], sig.s);
        assert!(permutation_only(&out), "{:?}", out.failures);
        assert!(!run(&kp.pk(), m, &bad).is_satisfied());
    }
}

#[test]
fn identity_or_off_curve_public_key_fails() {
    let (kp, m, sig) = signed(&mut ChaCha8Rng::seed_from_u64(23));
    for pk in [
        PublicKey::ZERO,
        PublicKey {
            x: kp.pk().x,
            y: kp.pk().y + Fr::one(),
        },
    ] {
        assert!(pk.to_affine().is_err());
        let out = MockRun::new(10, LOOKUP_BITS).check(|ctx, range| {
            let x = ctx.load_witness(pk.x);
            let y = ctx.load_witness(pk.y);
            SchnorrChip::new(range).public_key(ctx, x, y);
        });
        assert!(permutation_only(&out), "{:?}", out.failures);
        assert!(!run(&pk, m, &sig).is_satisfied());
    }
}

#[test]
fn sampled_single_cell_mutations_are_rejected() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let (kp, m, sig) = signed(&mut rng);
    let honest = run(&kp.pk(), m, &sig);
    assert!(honest.is_satisfied());
    let cells = honest.advice_cells;
    let samples = 40;
    for _ in 0..samples {
        let offset = rng.gen_range(0..cells);
        let out = MockRun::new(K, LOOKUP_BITS).run(
            |ctx, range| {
                build(ctx, range, &kp.pk(), m, &sig);
                ((), Vec::new())
            },
            Some(Mutation {
                offset,
                value: Fr::from(rng.gen::<u64>()) + Fr::one(),
            }),
            None,
        );
        assert!(
            !out.is_satisfied(),
            "mutating cell {offset} of {cells} was accepted"
        );
        assert!(
            out.failures
                .iter()
                .all(|f| matches!(f, Failure::Gate(n) if n == FLEX_GATE)
                    || *f == Failure::Permutation
                    || f.is_range_lookup()),
            "{:?}",
            out.failures
        );
    }
}

#[test]
fn cells_per_signature() {
    let (kp, m, sig) = signed(&mut ChaCha8Rng::seed_from_u64(37));
    let out = MockRun::new(K, LOOKUP_BITS).check(|ctx, range| {
        let ((), breakdown) =
            metered(range, ctx, |ctx| build(ctx, range, &kp.pk(), m, &sig)).expect("no meter");
        breakdown
    });
    assert!(out.is_satisfied());
    let b = out.output;
    let cells = |c: Component| {
        b.components
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, cells)| cells.advice)
            .unwrap()
    };
    let sig_cells = cells(Component::Signatures);
    eprintln!(
        "one signature: {} advice cells in all, {sig_cells} in point arithmetic and scalar bits, \
         {} lookup cells",
        b.total.advice, b.total.lookup
    );
    // Shape, not speed: two scalar multiplications of SCALAR_BITS / 2 windows each, between 20
    // and 250 cells a window.
    let windows = (SCALAR_BITS / 2) as u64;
    assert!(
        (20 * windows..250 * windows).contains(&sig_cells),
        "{sig_cells}"
    );
    // The offset point is a point of the curve, not the identity.
    assert!(!bool::from(offset_point().is_identity()));
}

// The multiplication-chip path (`SchnorrChip::verify_witness` in a `Hashing::Pow5Msm` circuit:
// what that circuit's signature lanes run) against the native verifier and the basic-gate path.

/// One verification through [`SchnorrChip::verify_witness`]: on the `msm` chip with
/// `Hashing::Pow5Msm`, on halo2-base's gate otherwise.
fn build_witness(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    pk: &PublicKey,
    m: Fr,
    sig: &Signature,
) {
    let (poseidon, pk, m) = load_inputs(ctx, range, pk, m);
    SchnorrChip::new(range).verify_witness(ctx, &poseidon, &pk, m, &SignatureWitness::from(sig));
}

fn run_on(hashing: Hashing, pk: &PublicKey, m: Fr, sig: &Signature) -> MockOutcome<()> {
    MockRun::new(K, LOOKUP_BITS)
        .with_hashing(hashing)
        .check(|ctx, range| build_witness(ctx, range, pk, m, sig))
}

/// `s = q`, `s + q` and `2^256 − 1` are refused on both paths, each by the order check alone
/// (a failed copy constraint), while `q − 1` passes it.
#[test]
fn non_canonical_s_fails_the_order_check_on_both_paths() {
    let mut rng = ChaCha8Rng::seed_from_u64(43);
    let kp = keypair(&mut rng);
    // s + q < 2^254 (the chip's width) holds for about a quarter of signatures: then s + q
    // names the same point as s on both paths, so only the order check can refuse it.
    let limit = {
        let mut l = [0u8; 32];
        l[0] = 0x40;
        l
    };
    let (m, sig, s_q) = (0..)
        .find_map(|_| {
            let m = message(&mut rng);
            let sig = kp.sign(m);
            s_plus_order(&sig.s)
                .filter(|s_q| *s_q < limit)
                .map(|s_q| (m, sig, s_q))
        })
        .unwrap();
    assert!(run_on(Hashing::Pow5Msm, &kp.pk(), m, &sig).is_satisfied());
    let order = hex_be(Scalar::MODULUS);
    for s in [s_q, order, [0xff; 32]] {
        let bad = Signature { s, ..sig };
        assert_eq!(
            bad.s_scalar(),
            Err(signature::SignatureError::NonCanonicalS)
        );
        let basic = load_only([sig.rx, sig.ry], s);
        assert!(permutation_only(&basic), "{:?}", basic.failures);
        assert!(!run(&kp.pk(), m, &bad).is_satisfied());
        let chip = run_on(Hashing::Pow5Msm, &kp.pk(), m, &bad);
        assert!(permutation_only(&chip), "{:?}", chip.failures);
    }
    // The largest canonical s passes the order check (q - 1).
    let mut top = order;
    top[31] -= 1;
    assert!(load_only([sig.rx, sig.ry], top).is_satisfied());
}

#[test]
fn cells_per_signature_on_the_chip() {
    let (kp, m, sig) = signed(&mut ChaCha8Rng::seed_from_u64(37));
    let run = MockRun::new(K, LOOKUP_BITS).with_hashing(Hashing::Pow5Msm);
    let out = run.check(|ctx, range| {
        let ((), breakdown) = metered(range, ctx, |ctx| {
            build_witness(ctx, range, &kp.pk(), m, &sig)
        })
        .expect("no meter");
        breakdown
    });
    assert!(out.is_satisfied());
    let b = &out.output;
    let sig_cells = b
        .components
        .iter()
        .find(|(k, _)| *k == Component::Signatures)
        .map(|(_, cells)| cells.advice)
        .unwrap();
    let chip = msm::CELLS as u64;
    eprintln!(
        "one signature on the msm chip: {} advice cells in all, {sig_cells} for the signature \
         ({chip} of them the chip's rows), {} lookup cells",
        b.total.advice, b.total.lookup
    );
    // Shape, not speed: the chip's rows plus a few hundred context cells (table, canonical
    // halves, final addition); the basic-gate path takes over 20 K.
    assert!((chip..chip + 1_000).contains(&sig_cells), "{sig_cells}");
}

#[test]
fn every_cell_the_chip_shares_with_the_verification_is_tied_by_a_copy_constraint() {
    let (kp, m, sig) = signed(&mut ChaCha8Rng::seed_from_u64(47));
    let run = MockRun::new(K, LOOKUP_BITS).with_hashing(Hashing::Pow5Msm);
    let build = |ctx: &mut Context<Fr>, range: &RangeChip<Fr>| {
        build_witness(ctx, range, &kp.pk(), m, &sig);
        ((), Vec::new())
    };
    let honest = run.run_mutating(build, None, None, None);
    assert!(honest.is_satisfied(), "{:?}", honest.failures);
    // The multiplication's rows follow the hash rows (the outcome's chip region).
    let first = honest.chip_region.len();
    let linked = msm::cells::TABLE
        .iter()
        .chain(&msm::cells::RESULT)
        .chain(&msm::cells::E)
        .chain(&msm::cells::S);
    for &(row, column) in linked {
        let out = run.run_mutating(
            build,
            None,
            Some(ChipMutation {
                row: first + row,
                column,
                value: Fr::from(0x5eed_u64),
            }),
            None,
        );
        assert!(
            out.failures.contains(&Failure::Permutation),
            "chip cell ({row}, {column}): {:?}",
            out.failures
        );
    }
}
