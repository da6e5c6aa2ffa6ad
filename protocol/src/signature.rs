//! Schnorr signatures over Grumpkin: the user signature scheme of Collar (PROTOCOL.md §6).
//!
//! Grumpkin is `y^2 = x^3 - 17` over BN254's scalar field, so a point's affine coordinates are
//! native circuit field elements ([`Fr`]). Its scalar field ([`Scalar`]) is BN254's base field,
//! which is larger than `Fr`; challenges (Poseidon outputs in `Fr`) are lifted into it by their
//! canonical integer, which is injective because `p < q`.
//!
//! * §6.1 keys: [`SecretKey::from_seed`], [`PublicKey`];
//! * §6.2 signing: [`SecretKey::sign`], [`challenge`];
//! * §6.3 verification: [`verify`];
//! * §6.4 batch verification: [`verify_batch`].
//!
//! Messages are single field elements that callers have already hashed with a domain tag
//! (PROTOCOL.md §3.2); this module adds no domain separation of its own beyond the key and nonce
//! derivation prefixes.

use std::fmt;

use ff::{Field, FromUniformBytes, PrimeField};
use group::{prime::PrimeCurveAffine, Curve, Group};
use halo2curves::grumpkin::{G1Affine, G1};
use halo2curves::msm::msm_best;
use halo2curves::CurveAffine;
use rand_core::{CryptoRng, OsRng, RngCore};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

use crate::field::{fr_to_be_bytes, Fr};
use crate::poseidon;

/// Grumpkin's scalar field (BN254's base field `Fq`); secret keys, nonces and `s` live here.
pub type Scalar = halo2curves::grumpkin::Fr;

/// Prefix of the secret-key derivation hash (PROTOCOL.md §6.1).
pub const SK_PREFIX: &[u8] = b"collar/sk/v1";
/// Prefix of the deterministic nonce hash (PROTOCOL.md §6.2).
pub const NONCE_PREFIX: &[u8] = b"collar/nonce/v1";

/// Batches longer than this compute their per-item checks and challenges on the rayon pool.
const PARALLEL_THRESHOLD: usize = 64;

/// Why a key or signature was rejected (PROTOCOL.md §6).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// The seed (or scalar) gives the zero secret key; use another seed (probability ~2^-254).
    #[error("secret key is zero")]
    ZeroSecretKey,
    /// The public key is not a point of Grumpkin, or is the identity `(0, 0)`.
    #[error("public key is not a non-identity Grumpkin point")]
    InvalidPublicKey,
    /// The signature's `R` is not a point of Grumpkin, or is the identity `(0, 0)`.
    #[error("signature R is not a non-identity Grumpkin point")]
    InvalidR,
    /// The signature's `s` is not a canonical scalar (its integer is `>= q`).
    #[error("signature s is not a canonical Grumpkin scalar")]
    NonCanonicalS,
    /// Single verification ([`verify`]): the encoding is valid but `s·G != R + e·PK`.
    #[error("signature does not verify")]
    Mismatch,
    /// Batch verification ([`verify_batch`]): item `index` is the first that fails [`verify`]
    /// for any reason; call [`verify`] on it for the specific error.
    #[error("signature {index} of the batch is invalid")]
    Invalid {
        /// Position of the first invalid item in the batch.
        index: usize,
    },
}

/// A Grumpkin public key `PK = sk·G` as affine coordinates in `Fr` (PROTOCOL.md §6.1).
///
/// Construction and deserialisation do not validate the point; [`PublicKey::to_affine`] (and so
/// every verification) does. [`PublicKey::ZERO`] stands for "no key" (empty accounts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKey {
    /// Affine x-coordinate.
    #[serde(with = "crate::field::fr_hex")]
    pub x: Fr,
    /// Affine y-coordinate.
    #[serde(with = "crate::field::fr_hex")]
    pub y: Fr,
}

impl PublicKey {
    /// The "no key" value `(0, 0)`; it is the identity's encoding and never a valid key.
    pub const ZERO: PublicKey = PublicKey {
        x: Fr::ZERO,
        y: Fr::ZERO,
    };

    /// Whether this is [`PublicKey::ZERO`].
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// The coordinates `[x, y]`, as hashed into the state and the challenge.
    pub fn to_fields(&self) -> [Fr; 2] {
        [self.x, self.y]
    }

    /// Encodes an affine point; the identity becomes [`PublicKey::ZERO`].
    pub fn from_affine(p: &G1Affine) -> PublicKey {
        PublicKey { x: p.x, y: p.y }
    }

    /// The curve point, or [`SignatureError::InvalidPublicKey`] if `(x, y)` is not on
    /// `y^2 = x^3 - 17` or is the identity (PROTOCOL.md §6.1). Grumpkin has cofactor 1, so
    /// every on-curve point is in the prime-order group.
    pub fn to_affine(&self) -> Result<G1Affine, SignatureError> {
        point_from_xy(self.x, self.y).ok_or(SignatureError::InvalidPublicKey)
    }
}

/// Decodes a non-identity Grumpkin point (`from_xy` alone accepts the identity `(0, 0)`).
fn point_from_xy(x: Fr, y: Fr) -> Option<G1Affine> {
    if x.is_zero_vartime() && y.is_zero_vartime() {
        return None;
    }
    Option::from(G1Affine::from_xy(x, y))
}

/// A secret key `sk ∈ [1, q)` together with its public key (PROTOCOL.md §6.1).
///
/// `Debug` never prints the scalar. Signing always uses the public key derived here, never one
/// supplied by the caller, so a mismatched key cannot make two challenges share a nonce.
#[derive(Clone)]
pub struct SecretKey {
    scalar: Scalar,
    pk: PublicKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("scalar", &"<redacted>")
            .field("pk", &self.pk)
            .finish()
    }
}

impl SecretKey {
    /// Derives `sk = Scalar::from_uniform_bytes(SHA-512("collar/sk/v1" || seed))`
    /// (PROTOCOL.md §6.1). Precondition: `seed` is 32 secret, uniformly random bytes.
    /// Errors with [`SignatureError::ZeroSecretKey`] if `sk = 0` (negligible).
    pub fn from_seed(seed: &[u8; 32]) -> Result<SecretKey, SignatureError> {
        let wide = sha512(&[SK_PREFIX, seed]);
        Self::from_scalar(Scalar::from_uniform_bytes(&wide))
    }

    /// Wraps a scalar as a secret key; [`SignatureError::ZeroSecretKey`] if it is zero.
    /// Precondition: the scalar is secret and uniformly random.
    pub fn from_scalar(scalar: Scalar) -> Result<SecretKey, SignatureError> {
        if bool::from(scalar.is_zero()) {
            return Err(SignatureError::ZeroSecretKey);
        }
        let pk = PublicKey::from_affine(&(G1Affine::generator() * scalar).to_affine());
        Ok(SecretKey { scalar, pk })
    }

    /// The public key `PK = sk·G` (PROTOCOL.md §6.1).
    pub fn public_key(&self) -> PublicKey {
        self.pk
    }

    /// Signs the message `m` (PROTOCOL.md §6.2). Precondition: `m` is already a domain-tagged
    /// Poseidon hash. Deterministic: the nonce is
    /// `k = Scalar::from_uniform_bytes(SHA-512("collar/nonce/v1" || sk_le || m_be))`,
    /// `R = k·G`, `e = challenge(R, PK, m)` lifted to a scalar, `s = k + e·sk mod q`.
    ///
    /// # Panics
    /// If the nonce hash reduces to zero (probability ~2^-254), rather than emit a signature
    /// that would reveal the key.
    pub fn sign(&self, m: Fr) -> Signature {
        let sk_le = self.scalar.to_repr();
        let wide = sha512(&[NONCE_PREFIX, &sk_le, &fr_to_be_bytes(&m)]);
        let k = Scalar::from_uniform_bytes(&wide);
        assert!(!bool::from(k.is_zero()), "SHA-512 nonce reduced to zero");
        let r = (G1Affine::generator() * k).to_affine();
        let e = lift_challenge(challenge(r.x, r.y, &self.pk, m));
        let s = k + e * self.scalar;
        Signature {
            rx: r.x,
            ry: r.y,
            s: scalar_to_be_bytes(&s),
        }
    }
}

/// A secret key and its public key.
#[derive(Clone, Debug)]
pub struct Keypair {
    sk: SecretKey,
}

impl Keypair {
    /// Derives the keypair of `seed` (see [`SecretKey::from_seed`] for preconditions and errors).
    pub fn from_seed(seed: &[u8; 32]) -> Result<Keypair, SignatureError> {
        Ok(Keypair {
            sk: SecretKey::from_seed(seed)?,
        })
    }

    /// The secret key.
    pub fn sk(&self) -> &SecretKey {
        &self.sk
    }

    /// The public key.
    pub fn pk(&self) -> PublicKey {
        self.sk.pk
    }

    /// Signs `m`; see [`SecretKey::sign`].
    pub fn sign(&self, m: Fr) -> Signature {
        self.sk.sign(m)
    }
}

impl From<SecretKey> for Keypair {
    fn from(sk: SecretKey) -> Keypair {
        Keypair { sk }
    }
}

/// A Schnorr signature `(R, s)` (PROTOCOL.md §6.2).
///
/// Construction and deserialisation do not validate it: `R` may be off the curve and `s` may be
/// non-canonical; verification rejects both (§6.3). In JSON, `rx`/`ry` are `0x`-hex field
/// elements and `s` is `0x` followed by exactly 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Affine x-coordinate of `R = k·G`.
    #[serde(with = "crate::field::fr_hex")]
    pub rx: Fr,
    /// Affine y-coordinate of `R`.
    #[serde(with = "crate::field::fr_hex")]
    pub ry: Fr,
    /// `s` as a 32-byte big-endian integer; canonical iff `< q`.
    #[serde(with = "s_hex")]
    pub s: [u8; 32],
}

impl Signature {
    /// `R` as a point, or [`SignatureError::InvalidR`] if it is off the curve or the identity.
    pub fn r_affine(&self) -> Result<G1Affine, SignatureError> {
        point_from_xy(self.rx, self.ry).ok_or(SignatureError::InvalidR)
    }

    /// `s` as a scalar, or [`SignatureError::NonCanonicalS`] if its integer is `>= q`
    /// (so `s + q` is never accepted in place of `s`).
    pub fn s_scalar(&self) -> Result<Scalar, SignatureError> {
        let mut le = self.s;
        le.reverse();
        Option::from(Scalar::from_repr(le)).ok_or(SignatureError::NonCanonicalS)
    }
}

/// The challenge `e = Poseidon(rx, ry, pkx, pky, m)` in `Fr` (PROTOCOL.md §6.2); the circuit
/// computes the same hash.
pub fn challenge(rx: Fr, ry: Fr, pk: &PublicKey, m: Fr) -> Fr {
    poseidon::hash(&[rx, ry, pk.x, pk.y, m])
}

/// Lifts `e ∈ Fr` to the scalar with the same canonical integer (`e < p < q`, so injective).
fn lift_challenge(e: Fr) -> Scalar {
    Option::from(Scalar::from_repr(e.to_repr())).expect("p < q: every Fr integer is a scalar")
}

/// Canonical 32-byte big-endian encoding of a scalar.
fn scalar_to_be_bytes(s: &Scalar) -> [u8; 32] {
    let mut be = s.to_repr();
    be.reverse();
    be
}

fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// One item's decoded values, after the structural checks of §6.3.
struct Prepared {
    pk: G1Affine,
    r: G1Affine,
    s: Scalar,
    e: Scalar,
}

impl Prepared {
    fn new(pk: &PublicKey, m: Fr, sig: &Signature) -> Result<Prepared, SignatureError> {
        let pk_point = pk.to_affine()?;
        let r = sig.r_affine()?;
        let s = sig.s_scalar()?;
        let e = lift_challenge(challenge(sig.rx, sig.ry, pk, m));
        Ok(Prepared {
            pk: pk_point,
            r,
            s,
            e,
        })
    }

    /// `s·G == R + e·PK`.
    fn holds(&self) -> bool {
        G1::generator() * self.s == self.r.to_curve() + self.pk * self.e
    }
}

/// Verifies `sig` on `m` under `pk` (PROTOCOL.md §6.3): rejects an invalid or identity `pk`
/// ([`SignatureError::InvalidPublicKey`]), an off-curve or identity `R`
/// ([`SignatureError::InvalidR`]), a non-canonical `s` ([`SignatureError::NonCanonicalS`]),
/// then checks `s·G == R + e·PK` ([`SignatureError::Mismatch`] if not).
pub fn verify(pk: &PublicKey, m: Fr, sig: &Signature) -> Result<(), SignatureError> {
    if Prepared::new(pk, m, sig)?.holds() {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Verifies many `(pk, m, sig)` items at once (PROTOCOL.md §6.4): the result is `Ok` exactly
/// when every item passes [`verify`], otherwise [`SignatureError::Invalid`] with the index of
/// the first item that fails it. An empty batch is valid.
///
/// Structural checks are per item; the equations are combined with independent 128-bit weights
/// `z_i` from the OS CSPRNG into one MSM,
/// `(Σ z_i s_i)·G − Σ z_i·R_i − Σ (z_i e_i)·PK_i == O`. If that fails, items are re-verified
/// one by one to find the culprit. Work is spread over rayon above 64 items.
pub fn verify_batch(items: &[(PublicKey, Fr, Signature)]) -> Result<(), SignatureError> {
    verify_batch_with_rng(items, &mut OsRng)
}

/// [`verify_batch`] with the weight source given; `rng` must be unpredictable to whoever
/// produced `items`.
fn verify_batch_with_rng<R: RngCore + CryptoRng>(
    items: &[(PublicKey, Fr, Signature)],
    rng: &mut R,
) -> Result<(), SignatureError> {
    if items.is_empty() {
        return Ok(());
    }
    let prepare = |(pk, m, sig): &(PublicKey, Fr, Signature)| Prepared::new(pk, *m, sig);
    let prepared: Result<Vec<Prepared>, SignatureError> = if items.len() > PARALLEL_THRESHOLD {
        items.par_iter().map(prepare).collect()
    } else {
        items.iter().map(prepare).collect()
    };
    if let Ok(prepared) = prepared {
        if batch_equation_holds(&prepared, rng) {
            return Ok(());
        }
    }
    // Some item is bad: find the first one by individual verification (which is authoritative).
    let fails = |(pk, m, sig): &(PublicKey, Fr, Signature)| verify(pk, *m, sig).is_err();
    let first = if items.len() > PARALLEL_THRESHOLD {
        items.par_iter().position_first(fails)
    } else {
        items.iter().position(fails)
    };
    match first {
        Some(index) => Err(SignatureError::Invalid { index }),
        None => Ok(()),
    }
}

/// The random linear combination of the items' equations, as one MSM (PROTOCOL.md §6.4).
fn batch_equation_holds<R: RngCore + CryptoRng>(prepared: &[Prepared], rng: &mut R) -> bool {
    let mut weight_bytes = vec![0u8; 16 * prepared.len()];
    rng.fill_bytes(&mut weight_bytes);
    let mut coeffs = Vec::with_capacity(2 * prepared.len() + 1);
    let mut bases = Vec::with_capacity(2 * prepared.len() + 1);
    let mut s_sum = Scalar::ZERO;
    for (p, zb) in prepared.iter().zip(weight_bytes.chunks_exact(16)) {
        let mut z16 = [0u8; 16];
        z16.copy_from_slice(zb);
        let z = Scalar::from_u128(u128::from_le_bytes(z16));
        s_sum += z * p.s;
        coeffs.push(-z);
        bases.push(p.r);
        coeffs.push(-(z * p.e));
        bases.push(p.pk);
    }
    coeffs.push(s_sum);
    bases.push(G1Affine::generator());
    bool::from(msm_best(&coeffs, &bases).is_identity())
}

/// Serde for the 32-byte `s`: `0x` followed by exactly 64 hex digits (any value; canonicity is
/// checked by verification).
mod s_hex {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: &[u8; 32], ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(&format!("0x{}", hex::encode(s)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let digits = text
            .strip_prefix("0x")
            .ok_or_else(|| D::Error::custom("s must start with 0x"))?;
        if digits.len() != 64 {
            return Err(D::Error::custom("s must have exactly 64 hex digits"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(digits, &mut out)
            .map_err(|e| D::Error::custom(format!("bad hex in s: {e}")))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::domain_tag;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn keypair(i: u8) -> Keypair {
        let mut seed = [0u8; 32];
        seed[0] = i;
        seed[31] = 0xa5;
        Keypair::from_seed(&seed).unwrap()
    }

    fn msg(i: u64) -> Fr {
        poseidon::hash(&[domain_tag("collar/test/v1"), Fr::from(i)])
    }

    /// Adds `q` (Grumpkin's scalar modulus) to a 32-byte big-endian integer.
    fn add_modulus_be(s: &[u8; 32]) -> [u8; 32] {
        // q - 1 is -1 in the field; q = (q - 1) + 1.
        let q_minus_1 = scalar_to_be_bytes(&-Scalar::ONE);
        let mut out = [0u8; 32];
        let mut carry = 1u16; // the "+ 1" of q = (q - 1) + 1
        for i in (0..32).rev() {
            let v = u16::from(s[i]) + u16::from(q_minus_1[i]) + carry;
            out[i] = v as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0, "s + q must fit in 256 bits");
        out
    }

    #[test]
    fn sign_verify_round_trip() {
        for i in 0..6u8 {
            let kp = keypair(i);
            assert!(kp.pk().to_affine().is_ok());
            for j in 0..4u64 {
                let m = msg(j);
                let sig = kp.sign(m);
                assert_eq!(verify(&kp.pk(), m, &sig), Ok(()));
            }
        }
        // Edge messages: zero and p - 1.
        let kp = keypair(9);
        for m in [Fr::ZERO, -Fr::ONE] {
            assert_eq!(verify(&kp.pk(), m, &kp.sign(m)), Ok(()));
        }
    }

    #[test]
    fn public_key_is_sk_times_generator_and_nonzero() {
        let sk = SecretKey::from_scalar(Scalar::from(7u64)).unwrap();
        let expected = (G1Affine::generator() * Scalar::from(7u64)).to_affine();
        assert_eq!(sk.public_key(), PublicKey::from_affine(&expected));
        assert_eq!(
            SecretKey::from_scalar(Scalar::ZERO).unwrap_err(),
            SignatureError::ZeroSecretKey
        );
        // The generator is (1, sqrt(-16)) on y^2 = x^3 - 17.
        let g = G1Affine::generator();
        assert_eq!(g.x, Fr::ONE);
        assert_eq!(g.y.square(), Fr::ONE - Fr::from(17u64));
    }

    #[test]
    fn secret_key_debug_is_redacted() {
        let kp = keypair(1);
        let secret_hex = hex::encode(kp.sk().scalar.to_repr());
        let dbg = format!("{:?} {:?}", kp.sk(), kp);
        assert!(dbg.contains("<redacted>"));
        assert!(!dbg.contains(&secret_hex));
        assert!(!dbg.contains(&format!("{:?}", kp.sk().scalar)));
    }

    #[test]
    fn wrong_key_rejected() {
        let (a, b) = (keypair(1), keypair(2));
        let m = msg(5);
        let sig = a.sign(m);
        assert_eq!(verify(&b.pk(), m, &sig), Err(SignatureError::Mismatch));
        assert_eq!(verify(&a.pk(), m, &sig), Ok(()));
    }

    #[test]
    fn changed_message_rejected() {
        let kp = keypair(3);
        let m = msg(11);
        let sig = kp.sign(m);
        assert_eq!(
            verify(&kp.pk(), m + Fr::ONE, &sig),
            Err(SignatureError::Mismatch)
        );
        for bit in [0usize, 1, 100, 200, 253] {
            let mut be = fr_to_be_bytes(&m);
            be[31 - bit / 8] ^= 1 << (bit % 8);
            // A flip of a high bit may leave the field; only canonical variants are messages.
            if let Some(m2) = crate::field::fr_from_be_bytes(&be) {
                assert_ne!(m2, m);
                assert_eq!(
                    verify(&kp.pk(), m2, &sig),
                    Err(SignatureError::Mismatch),
                    "bit {bit}"
                );
            }
        }
    }

    #[test]
    fn tampered_s_rejected() {
        let kp = keypair(4);
        let m = msg(1);
        let sig = kp.sign(m);
        let s = sig.s_scalar().unwrap();
        let plus_one = Signature {
            s: scalar_to_be_bytes(&(s + Scalar::ONE)),
            ..sig
        };
        assert_eq!(
            verify(&kp.pk(), m, &plus_one),
            Err(SignatureError::Mismatch)
        );
        let mut flipped = sig;
        flipped.s[31] ^= 0x01;
        assert!(verify(&kp.pk(), m, &flipped).is_err());
    }

    #[test]
    fn s_plus_order_rejected_as_non_canonical() {
        let kp = keypair(5);
        for j in 0..4 {
            let m = msg(j);
            let sig = kp.sign(m);
            let big = Signature {
                s: add_modulus_be(&sig.s),
                ..sig
            };
            // Same residue, different integer: must be rejected, not reduced.
            assert_ne!(big.s, sig.s);
            assert_eq!(big.s_scalar(), Err(SignatureError::NonCanonicalS));
            assert_eq!(
                verify(&kp.pk(), m, &big),
                Err(SignatureError::NonCanonicalS)
            );
        }
        let all_ones = Signature {
            s: [0xff; 32],
            ..kp.sign(msg(0))
        };
        assert_eq!(all_ones.s_scalar(), Err(SignatureError::NonCanonicalS));
        // q - 1 is the largest canonical value.
        let max = Signature {
            s: scalar_to_be_bytes(&-Scalar::ONE),
            ..all_ones
        };
        assert_eq!(max.s_scalar(), Ok(-Scalar::ONE));
    }

    #[test]
    fn tampered_r_rejected() {
        let kp = keypair(6);
        let m = msg(2);
        let sig = kp.sign(m);
        // Another curve point: R + G.
        let r2 = (sig.r_affine().unwrap() + G1Affine::generator()).to_affine();
        let other = Signature {
            rx: r2.x,
            ry: r2.y,
            ..sig
        };
        assert!(other.r_affine().is_ok());
        assert_eq!(verify(&kp.pk(), m, &other), Err(SignatureError::Mismatch));
        // -R is on the curve too.
        let neg = Signature { ry: -sig.ry, ..sig };
        assert_eq!(verify(&kp.pk(), m, &neg), Err(SignatureError::Mismatch));
        // Off the curve.
        let off = Signature {
            ry: sig.ry + Fr::ONE,
            ..sig
        };
        assert_eq!(off.r_affine(), Err(SignatureError::InvalidR));
        assert_eq!(verify(&kp.pk(), m, &off), Err(SignatureError::InvalidR));
        // Identity.
        let ident = Signature {
            rx: Fr::ZERO,
            ry: Fr::ZERO,
            ..sig
        };
        assert_eq!(verify(&kp.pk(), m, &ident), Err(SignatureError::InvalidR));
    }

    #[test]
    fn identity_and_invalid_public_keys_rejected() {
        let kp = keypair(7);
        let m = msg(3);
        let sig = kp.sign(m);
        assert!(PublicKey::ZERO.is_zero());
        assert!(!kp.pk().is_zero());
        assert_eq!(
            PublicKey::ZERO.to_affine(),
            Err(SignatureError::InvalidPublicKey)
        );
        assert_eq!(
            PublicKey::from_affine(&G1Affine::identity()),
            PublicKey::ZERO
        );
        assert_eq!(
            verify(&PublicKey::ZERO, m, &sig),
            Err(SignatureError::InvalidPublicKey)
        );
        let off = PublicKey {
            x: kp.pk().x,
            y: kp.pk().y + Fr::ONE,
        };
        assert_eq!(verify(&off, m, &sig), Err(SignatureError::InvalidPublicKey));
        assert_eq!(kp.pk().to_fields(), [kp.pk().x, kp.pk().y]);
    }

    #[test]
    fn wrong_domain_rejected() {
        let kp = keypair(8);
        let x = Fr::from(123_456u64);
        let order = poseidon::hash(&[domain_tag("collar/order/v1"), x]);
        let withdraw = poseidon::hash(&[domain_tag("collar/withdraw/v1"), x]);
        let sig = kp.sign(order);
        assert_eq!(verify(&kp.pk(), order, &sig), Ok(()));
        assert_eq!(
            verify(&kp.pk(), withdraw, &sig),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn deterministic_signatures() {
        let seed = [42u8; 32];
        let (a, b) = (
            Keypair::from_seed(&seed).unwrap(),
            Keypair::from_seed(&seed).unwrap(),
        );
        assert_eq!(a.pk(), b.pk());
        let m = msg(77);
        assert_eq!(a.sign(m), b.sign(m));
        assert_ne!(a.sign(m), a.sign(msg(78)));
        assert_ne!(a.pk(), Keypair::from_seed(&[43u8; 32]).unwrap().pk());
    }

    #[test]
    fn pinned_test_vector() {
        // Seed [1; 32], message 1. PK, R and the e implied by s were cross-checked against an
        // independent big-integer implementation of §6.1/§6.2 (SHA-512, reduction mod q, affine
        // Grumpkin arithmetic; Poseidon not re-implemented there).
        let kp = Keypair::from_seed(&[1u8; 32]).unwrap();
        let hex_of = |f: &Fr| hex::encode(fr_to_be_bytes(f));
        assert_eq!(hex_of(&kp.pk().x), PINNED_PK_X);
        assert_eq!(hex_of(&kp.pk().y), PINNED_PK_Y);
        let sig = kp.sign(Fr::ONE);
        assert_eq!(hex_of(&sig.rx), PINNED_RX);
        assert_eq!(hex::encode(sig.s), PINNED_S);
        // The independent implementation solved s = k + e·sk for e; it is the Poseidon challenge.
        assert_eq!(
            hex_of(&challenge(sig.rx, sig.ry, &kp.pk(), Fr::ONE)),
            PINNED_E
        );
        assert_eq!(verify(&kp.pk(), Fr::ONE, &sig), Ok(()));
    }

    const PINNED_PK_X: &str = "26aa6bacb0afe7f9e9aa1b3c1a6e6958ca8d946eb63d87a42b08e6440a98d563";
    const PINNED_PK_Y: &str = "0229f2ca99609b3cf81bcb29c529bbe0a313b599fbe3cae0a0f588279504f060";
    const PINNED_RX: &str = "153b7c469bd4eec6d8ce5728428d859d9efa394fba5a3b9d764b506db31c0646";
    const PINNED_S: &str = "1ce56f2e0fa03d08faf2ab98ada96d621fe1e4aa89585c955943788fba535b75";
    const PINNED_E: &str = "18534e50678f43f974d05db3b6800c7291c8bd6f2fe1591e1720747bc569e25d";

    #[test]
    fn json_round_trip() {
        let kp = keypair(10);
        let m = msg(4);
        let sig = kp.sign(m);
        let pk_json = serde_json::to_string(&kp.pk()).unwrap();
        assert!(pk_json.starts_with("{\"x\":\"0x"));
        assert_eq!(
            serde_json::from_str::<PublicKey>(&pk_json).unwrap(),
            kp.pk()
        );
        let sig_json = serde_json::to_string(&sig).unwrap();
        let v: serde_json::Value = serde_json::from_str(&sig_json).unwrap();
        let s_text = v["s"].as_str().unwrap();
        assert_eq!(s_text.len(), 66);
        assert_eq!(s_text, format!("0x{}", hex::encode(sig.s)));
        let back: Signature = serde_json::from_str(&sig_json).unwrap();
        assert_eq!(back, sig);
        assert_eq!(verify(&kp.pk(), m, &back), Ok(()));
        // Malformed s encodings are rejected at parse time.
        for bad in ["\"0x12\"", "\"12\"", &format!("\"0x{}\"", "g".repeat(64))] {
            let text = sig_json.replace(&format!("\"{s_text}\""), bad);
            assert!(serde_json::from_str::<Signature>(&text).is_err(), "{bad}");
        }
        // A non-canonical s parses but does not verify.
        let big = Signature {
            s: add_modulus_be(&sig.s),
            ..sig
        };
        let parsed: Signature =
            serde_json::from_str(&serde_json::to_string(&big).unwrap()).unwrap();
        assert_eq!(
            verify(&kp.pk(), m, &parsed),
            Err(SignatureError::NonCanonicalS)
        );
    }

    fn batch(n: usize) -> Vec<(PublicKey, Fr, Signature)> {
        (0..n)
            .map(|i| {
                let kp = keypair((i % 7) as u8);
                let m = msg(i as u64);
                (kp.pk(), m, kp.sign(m))
            })
            .collect()
    }

    #[test]
    fn batch_accepts_valid_and_locates_bad_item() {
        let mut items = batch(100);
        assert_eq!(verify_batch(&items), Ok(()));
        // The combined equation itself holds (not just the individual fallback).
        let prepared: Vec<_> = items
            .iter()
            .map(|(pk, m, s)| Prepared::new(pk, *m, s).unwrap())
            .collect();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        assert!(batch_equation_holds(&prepared, &mut rng));

        items[37].1 += Fr::ONE;
        assert_eq!(
            verify_batch(&items),
            Err(SignatureError::Invalid { index: 37 })
        );
        let prepared: Vec<_> = items
            .iter()
            .map(|(pk, m, s)| Prepared::new(pk, *m, s).unwrap())
            .collect();
        assert!(!batch_equation_holds(&prepared, &mut rng));

        // A second, later bad item: still the first is reported.
        items[80].2.s = scalar_to_be_bytes(&(items[80].2.s_scalar().unwrap() + Scalar::ONE));
        assert_eq!(
            verify_batch(&items),
            Err(SignatureError::Invalid { index: 37 })
        );
        // A structural failure before it wins.
        items[12].2.s = add_modulus_be(&items[12].2.s);
        assert_eq!(
            verify_batch(&items),
            Err(SignatureError::Invalid { index: 12 })
        );
    }

    #[test]
    fn small_and_empty_batches() {
        assert_eq!(verify_batch(&[]), Ok(()));
        let mut items = batch(5);
        assert_eq!(verify_batch(&items), Ok(()));
        assert_eq!(verify_batch(&items[..1]), Ok(()));
        items[4].0 = PublicKey::ZERO;
        assert_eq!(
            verify_batch(&items),
            Err(SignatureError::Invalid { index: 4 })
        );
        items[2].2.rx = Fr::ZERO;
        items[2].2.ry = Fr::ZERO;
        assert_eq!(
            verify_batch(&items),
            Err(SignatureError::Invalid { index: 2 })
        );
        // Swapping two valid signatures between items breaks both.
        let mut items = batch(5);
        let (s1, s3) = (items[1].2, items[3].2);
        items[1].2 = s3;
        items[3].2 = s1;
        assert_eq!(
            verify_batch(&items),
            Err(SignatureError::Invalid { index: 1 })
        );
    }

    #[test]
    fn batch_rejects_cancelling_forgeries() {
        // Two signatures that are individually wrong but whose errors cancel in an unweighted
        // sum: s_a + d and s_b - d. Random weights must catch this.
        let mut items = batch(6);
        let d = Scalar::from(999u64);
        items[1].2.s = scalar_to_be_bytes(&(items[1].2.s_scalar().unwrap() + d));
        items[4].2.s = scalar_to_be_bytes(&(items[4].2.s_scalar().unwrap() - d));
        assert_eq!(
            verify_batch(&items),
            Err(SignatureError::Invalid { index: 1 })
        );
    }

    #[test]
    fn msm_best_matches_naive_sum() {
        // Guards our use of `msm_best` across its code paths: tiny, windowed (parallel) and,
        // above e^9 points, the Booth/batch-affine path; scalars span the full range and
        // bases repeat (as a key signing many items does).
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for n in [1usize, 3, 31, 201, 8200] {
            let distinct: Vec<G1Affine> = (0..n.min(64))
                .map(|_| (G1Affine::generator() * Scalar::random(&mut rng)).to_affine())
                .collect();
            let bases: Vec<G1Affine> = (0..n).map(|i| distinct[i % distinct.len()]).collect();
            let coeffs: Vec<Scalar> = (0..n)
                .map(|i| match i % 5 {
                    0 => -Scalar::ONE,
                    1 => Scalar::from_u128(rng.gen()),
                    2 => -Scalar::from_u128(rng.gen()),
                    _ => Scalar::random(&mut rng),
                })
                .collect();
            // Reference: sum the coefficients per distinct base, then one multiplication each.
            let mut per_base = vec![Scalar::ZERO; distinct.len()];
            for (i, c) in coeffs.iter().enumerate() {
                per_base[i % distinct.len()] += c;
            }
            let naive = per_base
                .iter()
                .zip(&distinct)
                .fold(G1::identity(), |acc, (c, b)| acc + b * c);
            assert_eq!(msm_best(&coeffs, &bases), naive, "n = {n}");
        }
    }
}
