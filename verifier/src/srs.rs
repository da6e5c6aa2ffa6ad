//! Which structured reference string (KZG "powers of tau") a key or proof was made with.

use std::fmt;
use std::sync::OnceLock;

use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, G1Affine, G2Affine};
use halo2_base::halo2_proofs::poly::commitment::ParamsProver;
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_base::halo2_proofs::{SerdeCurveAffine, SerdeFormat};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::FormatError;

/// Seed of the development SRS (`ParamsKZG::setup` from a ChaCha20 generator with this seed).
/// Public, so its secret τ is public: anyone can forge proofs under it.
pub use collar_circuits::stats::DEV_SRS_SEED;

/// Where an SRS came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SrsKind {
    /// Generated locally from a fixed seed: anyone can recompute its secret and forge proofs.
    /// For development and tests only; never for funds.
    #[serde(rename = "INSECURE_DEVELOPMENT_SRS")]
    InsecureDevelopment,
    /// Loaded from a trusted-setup ceremony's params file.
    #[serde(rename = "ceremony")]
    Ceremony,
}

impl SrsKind {
    pub(crate) fn code(self) -> u8 {
        match self {
            SrsKind::InsecureDevelopment => 0xde,
            SrsKind::Ceremony => 0x01,
        }
    }
    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            0xde => Some(SrsKind::InsecureDevelopment),
            0x01 => Some(SrsKind::Ceremony),
            _ => None,
        }
    }
}

/// The identity of an SRS: its kind and a digest of the kind and of the points that fix its
/// secret (`g[0]`, `g2`, `s_g2`), so the same ceremony has the same identity at every size `k`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrsId {
    /// Where it came from.
    pub kind: SrsKind,
    /// SHA-256 over a domain tag, the kind's code and the raw encodings of `g[0]`, `g2`,
    /// `s_g2`.
    #[serde(with = "crate::hex32")]
    pub digest: [u8; 32],
}

/// `g[0]`, `g2` and `s·g2` of the development SRS, computed once from [`DEV_SRS_SEED`].
fn development_points() -> &'static (G1Affine, G2Affine, G2Affine) {
    static POINTS: OnceLock<(G1Affine, G2Affine, G2Affine)> = OnceLock::new();
    POINTS.get_or_init(|| {
        // The secret is the generator's first draw whatever `k`: the smallest size suffices.
        let p = ParamsKZG::<Bn256>::setup(1, rand_chacha::ChaCha20Rng::seed_from_u64(DEV_SRS_SEED));
        (p.get_g()[0], p.g2(), p.s_g2())
    })
}

impl SrsId {
    /// The identity of the development SRS ([`DEV_SRS_SEED`]) at every size.
    pub fn development() -> Self {
        let (g0, g2, s_g2) = development_points();
        Self::new(SrsKind::InsecureDevelopment, g0, g2, s_g2)
    }

    /// The identity of an SRS with these generators, of `kind` unless that is a lie that can be
    /// told: the development SRS's points (its secret is public) are never a ceremony's.
    ///
    /// # Errors
    /// [`FormatError::MislabelledSrs`] if `kind` is [`SrsKind::Ceremony`] and the points are
    /// the development SRS's.
    pub fn checked(
        kind: SrsKind,
        g0: &G1Affine,
        g2: &G2Affine,
        s_g2: &G2Affine,
    ) -> Result<Self, FormatError> {
        if kind != SrsKind::InsecureDevelopment && (*g0, *g2, *s_g2) == *development_points() {
            return Err(FormatError::MislabelledSrs);
        }
        Ok(Self::new(kind, g0, g2, s_g2))
    }

    /// The identity of an SRS of `kind` with these generators, as labelled (see
    /// [`SrsId::checked`] for the label check).
    pub fn new(kind: SrsKind, g0: &G1Affine, g2: &G2Affine, s_g2: &G2Affine) -> Self {
        let mut h = Sha256::new();
        h.update(b"collar-srs-id-v2");
        h.update([kind.code()]);
        let mut buf = Vec::new();
        g0.write(&mut buf, SerdeFormat::RawBytes)
            .expect("writing to a Vec cannot fail");
        g2.write(&mut buf, SerdeFormat::RawBytes)
            .expect("writing to a Vec cannot fail");
        s_g2.write(&mut buf, SerdeFormat::RawBytes)
            .expect("writing to a Vec cannot fail");
        h.update(&buf);
        Self {
            kind,
            digest: h.finalize().into(),
        }
    }

    /// Whether this SRS must never secure real funds.
    pub fn is_insecure(&self) -> bool {
        self.kind == SrsKind::InsecureDevelopment
    }
}

impl fmt::Display for SrsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = hex::encode(&self.digest[..8]);
        match self.kind {
            SrsKind::InsecureDevelopment => write!(
                f,
                "INSECURE DEVELOPMENT SRS {short} (secret is public: NOT FOR PRODUCTION)"
            ),
            SrsKind::Ceremony => write!(f, "ceremony SRS {short}"),
        }
    }
}

impl fmt::Debug for SrsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SrsId({self})")
    }
}
