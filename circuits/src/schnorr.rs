//! Schnorr signature verification over Grumpkin in circuit (PROTOCOL.md §6.3), the same check
//! as `collar_protocol::signature::verify`:
//!
//! 1. `PK` and `R` are on the curve, hence not the identity (`ecc`);
//! 2. `s` is a canonical scalar: its 256 bits are constrained and their integer is `< q`, so
//!    `s + q` (or any other representation) is refused;
//! 3. `e = H(R.x, R.y, PK.x, PK.y, m)` is hashed in circuit, decomposed into 256 bits whose
//!    integer is constrained `< p` (the one decomposition of `e`, lifted to a scalar as §6.2
//!    lifts it);
//! 4. `s·G = R + e·PK`.
//!
//! **Scalar multiplication.** Both products use 2-bit windows (128 of them) and an offset point
//! `A` with unknown discrete logarithm ([`offset_point`]), so no table entry or partial sum is
//! the identity and honest inputs never meet an exceptional case of `ecc::EccChip::add`:
//!
//! * `e·PK`, variable base: the table `T_j = A + j·PK` (`j < 4`, three additions) is read by
//!   each window's two bits, Horner from the top: `acc ← 4·acc + T[e_i]`, ending at
//!   `e·PK + C·A` with `C = Σ 4^i`;
//! * `s·G`, fixed base: window `i` reads the constant table `F_i[j] = 4^i·(j·G + A)` (fixed
//!   cells) and the reads are summed, giving `s·G + C·A`.
//!
//! The offsets cancel, so the circuit constrains `F-sum = R + acc`. Each step is exact (`ecc`),
//! so the constraint holds only if `s·G = R + e·PK` in the group.
//!
//! **Two paths.** The above is the basic-gate path ([`SchnorrChip::verify`]: about 27.4 K advice
//! cells a signature). In a `Hashing::Pow5Msm` circuit, [`SchnorrChip::verify_lane`]
//! and [`SchnorrChip::verify_witness`] instead defer the multiplication to the dedicated chip of
//! [`crate::msm`] (one joint double-and-add row pair per bit for both scalars, 4,088 chip cells),
//! which outputs `(3·2^254 − 1)·A + s·G − e·PK`; the gadget ties the chip's table, `e` and the
//! scalars' halves to its cells, checks the halves canonical and constrains the output to
//! `R + (3·2^254 − 1)·A`. Both paths check the same four conditions.

use std::sync::OnceLock;

use collar_protocol::field::domain_tag;
use collar_protocol::poseidon;
use collar_protocol::signature::Signature;
use halo2_base::gates::{GateInstructions, RangeChip, RangeInstructions};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::{Field, PrimeField};
use halo2_base::halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_base::halo2_proofs::halo2curves::group::{Curve, Group};
use halo2_base::halo2_proofs::halo2curves::grumpkin::{G1Affine, G1};
use halo2_base::halo2_proofs::halo2curves::CurveAffine;
use halo2_base::QuantumCell::{Constant, Existing};
use halo2_base::{AssignedValue, Context};

use crate::ecc::{AssignedPoint, EccChip, Table4};
use crate::msm;
use crate::poseidon::PoseidonChip;
use crate::pow5::Pow5Hasher;
use crate::stats::{measure, Component};

/// Bits of a decomposed scalar (`s` or `e`): every 32-byte `s` is representable.
pub const SCALAR_BITS: usize = 256;
/// Two-bit windows per scalar.
pub const WINDOWS: usize = SCALAR_BITS / 2;

/// Domain tag of the offset point's derivation.
const OFFSET_TAG: &str = "collar/ecc-offset/v1";

/// The offset point `A`: the first `x = H(tag, i)`, `i = 0, 1, …`, with `x^3 - 17` a square,
/// and its even `y`. Nobody knows its discrete logarithm to `G` or to any key.
pub fn offset_point() -> G1Affine {
    static A: OnceLock<G1Affine> = OnceLock::new();
    *A.get_or_init(|| {
        let tag = domain_tag(OFFSET_TAG);
        (0u64..)
            .find_map(|i| {
                let x = poseidon::hash(&[tag, Fr::from(i)]);
                let y2 = x * x * x + crate::ecc::curve_b();
                Option::<Fr>::from(y2.sqrt()).map(|y| {
                    let y = if y.is_odd().into() { -y } else { y };
                    G1Affine::from_xy(x, y).expect("y^2 = x^3 - 17 by construction")
                })
            })
            .expect("half of all x are on the curve")
    })
}

/// The fixed-base tables `F_i[j] = 4^i·(j·G + A)`, `i < WINDOWS`, `j < 4`.
fn fixed_tables() -> &'static [[G1Affine; 4]] {
    static TABLES: OnceLock<Vec<[G1Affine; 4]>> = OnceLock::new();
    TABLES.get_or_init(|| {
        let g = G1::from(G1Affine::generator());
        let a = G1::from(offset_point());
        let mut row = [a, a + g, a + g + g, a + g + g + g];
        let mut projective = Vec::with_capacity(WINDOWS * 4);
        for _ in 0..WINDOWS {
            projective.extend_from_slice(&row);
            row = row.map(|p| p.double().double());
        }
        let mut affine = vec![G1Affine::identity(); projective.len()];
        G1::batch_normalize(&projective, &mut affine);
        assert!(
            affine.iter().all(|p| !bool::from(p.is_identity())),
            "no fixed-table entry is the identity"
        );
        affine
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect()
    })
}

/// A signature's witness, as carried by a transaction: `R` and the 32 big-endian bytes of `s`
/// (any bytes; the circuit refuses a non-canonical `s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureWitness {
    /// `R`'s affine coordinates.
    pub r: [Fr; 2],
    /// `s`, big-endian.
    pub s: [u8; 32],
}

impl From<&Signature> for SignatureWitness {
    fn from(sig: &Signature) -> Self {
        Self {
            r: [sig.rx, sig.ry],
            s: sig.s,
        }
    }
}

/// A signature in circuit: `R` constrained on the curve and the bits of a canonical `s`.
#[derive(Clone, Debug)]
pub struct AssignedSignature {
    /// `R`.
    pub r: AssignedPoint,
    /// `s`, [`SCALAR_BITS`] constrained bits, least significant first, integer `< q`.
    pub s_bits: Vec<AssignedValue<Fr>>,
}

/// The integers `p` (BN254 `Fr`) and `q` (Grumpkin's order, BN254 `Fq`) as `(lo, hi)` 128-bit
/// halves.
fn modulus_halves(hex: &str) -> (u128, u128) {
    let digits = hex.trim_start_matches("0x");
    let padded = format!("{digits:0>64}");
    let hi = u128::from_str_radix(&padded[..32], 16).expect("hex modulus");
    let lo = u128::from_str_radix(&padded[32..], 16).expect("hex modulus");
    (lo, hi)
}

fn fr_modulus() -> (u128, u128) {
    modulus_halves(Fr::MODULUS)
}

fn grumpkin_order() -> (u128, u128) {
    modulus_halves(collar_protocol::signature::Scalar::MODULUS)
}

/// Loads 256 bits (least significant first) and constrains each to `{0, 1}`.
fn load_bits(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    bits: &[bool],
) -> Vec<AssignedValue<Fr>> {
    bits.iter()
        .map(|&b| {
            let c = ctx.load_witness(Fr::from(u64::from(b)));
            gate.assert_bit(ctx, c);
            c
        })
        .collect()
}

/// Constrains the integer of `bits` (256 constrained bits, least significant first) to be
/// `< modulus` and returns its `(lo, hi)` 128-bit halves as cells.
fn canonical_halves(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    bits: &[AssignedValue<Fr>],
    modulus: (u128, u128),
) -> (AssignedValue<Fr>, AssignedValue<Fr>) {
    let gate = range.gate();
    let powers: Vec<_> = (0..128).map(|i| Constant(gate.pow_of_two()[i])).collect();
    let lo = gate.inner_product(
        ctx,
        bits[..128].iter().map(|b| Existing(*b)),
        powers.clone(),
    );
    let hi = gate.inner_product(ctx, bits[128..].iter().map(|b| Existing(*b)), powers);
    assert_below(ctx, range, lo, hi, modulus);
    (lo, hi)
}

/// Constrains the integer `hi·2^128 + lo` to be `< modulus`, given `(lo, hi)` as cells.
/// Preconditions: `lo < 2^128` and `hi < 2^128` (e.g. both made of constrained bits).
fn assert_below(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    lo: AssignedValue<Fr>,
    hi: AssignedValue<Fr>,
    modulus: (u128, u128),
) {
    let gate = range.gate();
    let (m_lo, m_hi) = modulus;
    let m_lo = Constant(collar_protocol::field::fr_from_u128(m_lo));
    let m_hi = Constant(collar_protocol::field::fr_from_u128(m_hi));
    // (hi, lo) < (m_hi, m_lo) lexicographically; both halves are < 2^128.
    let hi_lt = range.is_less_than(ctx, hi, m_hi, 128);
    let hi_eq = gate.is_equal(ctx, hi, m_hi);
    let lo_lt = range.is_less_than(ctx, lo, m_lo, 128);
    let below = gate.mul_add(ctx, hi_eq, lo_lt, hi_lt);
    gate.assert_is_const(ctx, &below, &Fr::ONE);
}

fn bits_of_be_bytes(be: &[u8; 32]) -> Vec<bool> {
    (0..SCALAR_BITS)
        .map(|i| (be[31 - i / 8] >> (i % 8)) & 1 == 1)
        .collect()
}

/// Verifies Schnorr signatures in circuit (module docs).
#[derive(Clone, Copy, Debug)]
pub struct SchnorrChip<'a> {
    range: &'a RangeChip<Fr>,
}

impl<'a> SchnorrChip<'a> {
    /// A chip over `range` (its gate does the point arithmetic).
    pub fn new(range: &'a RangeChip<Fr>) -> Self {
        Self { range }
    }

    fn ecc(&self) -> EccChip<'a, halo2_base::gates::GateChip<Fr>> {
        EccChip::new(self.range.gate())
    }

    /// Wraps `(x, y)` cells (e.g. a key from an account leaf) as a point, constraining it on
    /// the curve, so `(0, 0)` ("no key") and off-curve pairs fail.
    pub fn public_key(
        &self,
        ctx: &mut Context<Fr>,
        x: AssignedValue<Fr>,
        y: AssignedValue<Fr>,
    ) -> AssignedPoint {
        self.ecc().assert_on_curve(ctx, x, y);
        AssignedPoint { x, y }
    }

    /// Loads a signature: `R` constrained on the curve, `s` as 256 constrained bits whose
    /// integer is `< q`.
    pub fn load_signature(
        &self,
        ctx: &mut Context<Fr>,
        sig: &SignatureWitness,
    ) -> AssignedSignature {
        measure(Component::Signatures, ctx, |ctx| {
            let r = self.ecc().load_point(ctx, sig.r[0], sig.r[1]);
            let s_bits = load_bits(ctx, self.range.gate(), &bits_of_be_bytes(&sig.s));
            canonical_halves(ctx, self.range, &s_bits, grumpkin_order());
            AssignedSignature { r, s_bits }
        })
    }

    /// The challenge `e = H(R.x, R.y, PK.x, PK.y, m)` as 256 constrained bits of its canonical
    /// integer (`< p`), least significant first.
    fn challenge_bits(
        &self,
        ctx: &mut Context<Fr>,
        poseidon: &PoseidonChip,
        pk: &AssignedPoint,
        m: AssignedValue<Fr>,
        r: &AssignedPoint,
    ) -> Vec<AssignedValue<Fr>> {
        let gate = self.range.gate();
        let e = poseidon.hash(ctx, gate, &[r.x, r.y, pk.x, pk.y, m]);
        measure(Component::Signatures, ctx, |ctx| {
            let mut le = e.value().to_repr();
            le.reverse();
            let bits = load_bits(ctx, gate, &bits_of_be_bytes(&le));
            let (lo, hi) = canonical_halves(ctx, self.range, &bits, fr_modulus());
            let two128 = Constant(gate.pow_of_two()[128]);
            let recomposed = gate.mul_add(ctx, hi, two128, lo);
            ctx.constrain_equal(&recomposed, &e);
            bits
        })
    }

    /// Constrains `sig` to be a valid signature by `pk` on `m` (§6.3). Preconditions: `pk` is
    /// on the curve ([`SchnorrChip::public_key`]) and `sig` was loaded by
    /// [`SchnorrChip::load_signature`]. Unconditional: a slot without a signature verifies a
    /// dummy one instead (the caller selects the inputs).
    pub fn verify(
        &self,
        ctx: &mut Context<Fr>,
        poseidon: &PoseidonChip,
        pk: &AssignedPoint,
        m: AssignedValue<Fr>,
        sig: &AssignedSignature,
    ) {
        let e_bits = self.challenge_bits(ctx, poseidon, pk, m, &sig.r);
        measure(Component::Signatures, ctx, |ctx| {
            let ecc = self.ecc();
            // e·PK + C·A, Horner over the windows from the top.
            let a = ecc.load_constant(ctx, &offset_point());
            let t1 = ecc.add(ctx, &a, pk);
            let t2 = ecc.add(ctx, &t1, pk);
            let t3 = ecc.add(ctx, &t2, pk);
            let table = ecc.variable_table(ctx, [a, t1, t2, t3]);
            let read =
                |ctx: &mut Context<Fr>, table: &Table4, bits: &[AssignedValue<Fr>], i: usize| {
                    let (b0, b1) = (bits[2 * i], bits[2 * i + 1]);
                    let b01 = ecc.bit_product(ctx, b0, b1);
                    ecc.read_table(ctx, table, b0, b1, b01)
                };
            let mut acc = read(ctx, &table, &e_bits, WINDOWS - 1);
            for i in (0..WINDOWS - 1).rev() {
                let twice = ecc.double(ctx, &acc);
                let four = ecc.double(ctx, &twice);
                let t = read(ctx, &table, &e_bits, i);
                acc = ecc.add(ctx, &four, &t);
            }
            // s·G + C·A, summing the fixed windows.
            let tables = fixed_tables();
            let mut fixed = read(ctx, &Table4::constant(tables[0]), &sig.s_bits, 0);
            for (i, t) in tables.iter().enumerate().skip(1) {
                let f = read(ctx, &Table4::constant(*t), &sig.s_bits, i);
                fixed = ecc.add(ctx, &fixed, &f);
            }
            let rhs = ecc.add(ctx, &sig.r, &acc);
            ecc.assert_equal(ctx, &fixed, &rhs);
        })
    }
}

/// The stand-in of a signature lane with nothing to verify in its slot: a fixed public key,
/// message and valid signature, verified instead so that the check itself is unconditional.
/// The key's secret is public (its seed is below); that is harmless because an active lane
/// selects the signer's key from its account leaf, never this one.
#[derive(Clone, Copy, Debug)]
pub struct IdleLane {
    /// The stand-in key.
    pub pk: collar_protocol::PublicKey,
    /// The stand-in message.
    pub m: Fr,
    /// A valid signature by `pk` on `m`.
    pub sig: SignatureWitness,
}

/// The [`IdleLane`] (computed once).
pub fn idle_lane() -> &'static IdleLane {
    static IDLE: OnceLock<IdleLane> = OnceLock::new();
    IDLE.get_or_init(|| {
        let mut seed = [0u8; 32];
        seed[..20].copy_from_slice(b"collar/idle-lane/v1\0");
        let sk = collar_protocol::SecretKey::from_seed(&seed).expect("nonzero key");
        let m = domain_tag("collar/idle-lane");
        IdleLane {
            pk: sk.public_key(),
            m,
            sig: SignatureWitness::from(&sk.sign(m)),
        }
    })
}

/// The [`IdleLane`]'s key and message as constant cells, loaded once per circuit.
#[derive(Clone, Copy, Debug)]
pub struct IdleCells {
    pk: [AssignedValue<Fr>; 2],
    m: AssignedValue<Fr>,
}

impl IdleCells {
    /// Loads the stand-in's key and message as constants.
    pub fn load(ctx: &mut Context<Fr>) -> Self {
        let idle = idle_lane();
        Self {
            pk: [ctx.load_constant(idle.pk.x), ctx.load_constant(idle.pk.y)],
            m: ctx.load_constant(idle.m),
        }
    }
}

/// What one signature lane checks: whether it is in use, the signer's key and the message.
#[derive(Clone, Copy, Debug)]
pub struct Lane {
    /// 1 where the lane has a signature to check. Precondition: a constrained bit.
    pub active: AssignedValue<Fr>,
    /// The signer's key `(x, y)`, e.g. from its account leaf.
    pub key: [AssignedValue<Fr>; 2],
    /// The signed message, hashed in circuit.
    pub m: AssignedValue<Fr>,
}

impl SchnorrChip<'_> {
    /// One signature lane: where `lane.active` is 1, constrains `sig` to be a valid signature by
    /// `lane.key` on `lane.m`; where it is 0, verifies the [`IdleLane`] stand-in instead, so the
    /// check is the same circuit either way. `sig: None` (a missing signature) loads the
    /// stand-in's, which then fails an active lane.
    pub fn verify_lane(
        &self,
        ctx: &mut Context<Fr>,
        poseidon: &PoseidonChip,
        idle: &IdleCells,
        lane: Lane,
        sig: Option<&SignatureWitness>,
    ) {
        let Lane { active, key, m } = lane;
        let gate = self.range.gate();
        let [x, y] = [0, 1].map(|c| gate.select(ctx, key[c], idle.pk[c], active));
        let m = gate.select(ctx, m, idle.m, active);
        let pk = self.public_key(ctx, x, y);
        let on = *active.value() == Fr::ONE;
        let witness = sig.filter(|_| on).copied().unwrap_or(idle_lane().sig);
        self.verify_witness(ctx, poseidon, &pk, m, &witness);
    }

    /// Constrains `sig` to be a valid signature by `pk` on `m`, through the circuit's own path:
    /// in a [`Hashing::Pow5Msm`](crate::poseidon::Hashing::Pow5Msm) circuit, on the dedicated
    /// multiplication chip ([`crate::msm`]); otherwise on halo2-base's gate
    /// ([`SchnorrChip::load_signature`] then [`SchnorrChip::verify`]). Both check the same four
    /// conditions (module docs).
    /// Precondition: `pk` is on the curve ([`SchnorrChip::public_key`]).
    pub fn verify_witness(
        &self,
        ctx: &mut Context<Fr>,
        poseidon: &PoseidonChip,
        pk: &AssignedPoint,
        m: AssignedValue<Fr>,
        sig: &SignatureWitness,
    ) {
        match poseidon.msm_recorder() {
            Some(hasher) => self.verify_on_chip(ctx, hasher, poseidon, pk, m, sig),
            None => {
                let sig = self.load_signature(ctx, sig);
                self.verify(ctx, poseidon, pk, m, &sig);
            }
        }
    }

    /// The multiplication-chip path of [`SchnorrChip::verify_witness`]:
    ///
    /// 1. `R` is loaded on the curve; `e = H(R, PK, m)` is hashed;
    /// 2. the table entry `A − PK` is computed exactly (`ecc`) and, with `e`, tied to the chip,
    ///    which adds `G` to it itself and returns `(3·2^254 − 1)·A + s·G − e·PK` for the 254-bit
    ///    integers of its bit columns, and the high halves and integers of `e` and `s`;
    /// 3. `e`'s bits are its canonical integer (`< p`), `s`'s integer is `< q`;
    /// 4. the output equals `R + (3·2^254 − 1)·A`, i.e. `s·G = R + e·PK`.
    fn verify_on_chip(
        &self,
        ctx: &mut Context<Fr>,
        hasher: &Pow5Hasher,
        poseidon: &PoseidonChip,
        pk: &AssignedPoint,
        m: AssignedValue<Fr>,
        sig: &SignatureWitness,
    ) {
        let ecc = self.ecc();
        let gate = self.range.gate();
        let r = ecc.load_point(ctx, sig.r[0], sig.r[1]);
        let e = poseidon.hash(ctx, gate, &[r.x, r.y, pk.x, pk.y, m]);
        measure(Component::Signatures, ctx, |ctx| {
            let a = ecc.load_constant(ctx, &offset_point());
            let minus_pk = AssignedPoint {
                x: pk.x,
                y: gate.neg(ctx, pk.y),
            };
            let t10 = ecc.add(ctx, &a, &minus_pk);
            // A key off the curve (only in a witness that fails `public_key`) gets the
            // identity, for which the recorder lays out a stand-in.
            let pk_value = Option::from(G1Affine::from_xy(*pk.x.value(), *pk.y.value()))
                .unwrap_or_else(G1Affine::identity);
            let mut s_le = sig.s;
            s_le.reverse();
            crate::stats::charge_external(msm::CELLS as u64);
            let out = hasher.msm(ctx, [t10.x, t10.y], &pk_value, e, &s_le);
            let two128 = Constant(-gate.pow_of_two()[128]);
            let e_lo = gate.mul_add(ctx, out.e_high, two128, e);
            assert_below(ctx, self.range, e_lo, out.e_high, fr_modulus());
            let s_lo = gate.mul_add(ctx, out.s_high, two128, out.s);
            assert_below(ctx, self.range, s_lo, out.s_high, grumpkin_order());
            let ka = ecc.load_constant(ctx, &msm::result_offset());
            let rhs = ecc.add(ctx, &r, &ka);
            let result = AssignedPoint {
                x: out.result[0],
                y: out.result[1],
            };
            ecc.assert_equal(ctx, &result, &rhs);
        })
    }
}
