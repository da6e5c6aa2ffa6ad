//! The KZG structured reference string: an insecure local one for development, or a real
//! ceremony's params file.

use std::fmt;
use std::io::Read;
use std::path::Path;

use collar_verifier::{SrsId, SrsKind};
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, G1Affine};
use halo2_base::halo2_proofs::poly::commitment::{Params, ParamsProver};
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_base::halo2_proofs::SerdeFormat;
use rand::SeedableRng;

use crate::ProverError;

pub use collar_verifier::DEV_SRS_SEED;

/// Largest `k` an SRS may have (BN254's two-adicity).
pub const MAX_SRS_K: u32 = 28;

/// A KZG SRS for BN254 and where it came from.
#[derive(Clone)]
pub struct Srs {
    params: ParamsKZG<Bn256>,
    id: SrsId,
}

impl fmt::Debug for Srs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Srs {{ k: {}, id: {} }}", self.params.k(), self.id)
    }
}

impl fmt::Display for Srs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at k = {}", self.id, self.params.k())
    }
}

impl Srs {
    /// **INSECURE DEVELOPMENT SRS** of size 2^`k`, generated from the public seed
    /// [`DEV_SRS_SEED`]: anyone can forge proofs under it. For tests and local development only.
    /// Precondition: `1 <= k <= 28` (panics otherwise).
    pub fn dev(k: u32) -> Self {
        assert!((1..=MAX_SRS_K).contains(&k), "SRS k must be in 1..=28");
        tracing::warn!(
            k,
            "generating an INSECURE DEVELOPMENT SRS (public seed {DEV_SRS_SEED}): NOT FOR PRODUCTION"
        );
        let params =
            ParamsKZG::<Bn256>::setup(k, rand_chacha::ChaCha20Rng::seed_from_u64(DEV_SRS_SEED));
        Self::from_params(params, SrsKind::InsecureDevelopment)
    }

    /// File name under which the development SRS of size `k` is cached: it says what it is.
    pub fn dev_file_name(k: u32) -> String {
        format!("INSECURE-DEVELOPMENT-SRS-NOT-FOR-PRODUCTION-k{k}-seed{DEV_SRS_SEED}.params")
    }

    /// The development SRS of size `k`, read from `dir` if cached there ([`Srs::dev_file_name`])
    /// and generated and written there otherwise. **Insecure**, like [`Srs::dev`].
    pub fn dev_cached(k: u32, dir: &Path) -> Result<Self, ProverError> {
        let path = dir.join(Self::dev_file_name(k));
        if path.exists() {
            match read_params(&path) {
                Ok(params) if params.k() == k => {
                    tracing::warn!(path = %path.display(), "using the cached INSECURE DEVELOPMENT SRS: NOT FOR PRODUCTION");
                    let srs = Self::from_params(params, SrsKind::InsecureDevelopment);
                    return Ok(srs);
                }
                _ => {
                    tracing::warn!(path = %path.display(), "unreadable cached development SRS; regenerating")
                }
            }
        }
        let srs = Self::dev(k);
        std::fs::create_dir_all(dir).map_err(|e| ProverError::io(dir, e))?;
        crate::cache::write_atomic(&path, |w| srs.params.write_custom(w, SerdeFormat::RawBytes))?;
        Ok(srs)
    }

    /// Loads a ceremony's params file in halo2's format (`ParamsKZG::write`: `k` as u32 LE, then
    /// `2^k` G1 powers, `2^k` Lagrange-basis G1 points, `g2`, `s·g2`, all uncompressed), checking
    /// every point, and downsizes it to `k` if it is larger. Fails if the file is smaller than
    /// `k`, truncated, or has a point off the curve.
    pub fn load(path: &Path, k: u32) -> Result<Self, ProverError> {
        let mut params = read_params(path)?;
        if params.k() < k {
            return Err(ProverError::SrsTooSmall {
                have: params.k(),
                need: k,
            });
        }
        if params.k() > k {
            tracing::info!(from = params.k(), to = k, "downsizing the ceremony SRS");
            params.downsize(k);
        }
        let g0: G1Affine = params.get_g()[0];
        SrsId::checked(SrsKind::Ceremony, &g0, &params.g2(), &params.s_g2()).map_err(|e| {
            ProverError::Srs {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
        let srs = Self::from_params(params, SrsKind::Ceremony);
        tracing::info!(srs = %srs, path = %path.display(), "loaded SRS");
        Ok(srs)
    }

    fn from_params(params: ParamsKZG<Bn256>, kind: SrsKind) -> Self {
        let g0: G1Affine = params.get_g()[0];
        let id = SrsId::new(kind, &g0, &params.g2(), &params.s_g2());
        Self { params, id }
    }

    /// Its size: it supports circuits of up to 2^k rows.
    pub fn k(&self) -> u32 {
        self.params.k()
    }
    /// Its identity (kind and digest).
    pub fn id(&self) -> SrsId {
        self.id
    }
    /// Whether it is the insecure development SRS.
    pub fn is_insecure(&self) -> bool {
        self.id.is_insecure()
    }
    /// The halo2 parameters.
    pub fn params(&self) -> &ParamsKZG<Bn256> {
        &self.params
    }
}

/// Reads a params file after checking its length against the `k` in its header, so a
/// truncated or oversized file is an error rather than a panic or a huge allocation.
fn read_params(path: &Path) -> Result<ParamsKZG<Bn256>, ProverError> {
    let bad = |m: String| ProverError::Srs {
        path: path.to_path_buf(),
        reason: m,
    };
    let mut f = std::fs::File::open(path).map_err(|e| ProverError::io(path, e))?;
    let len = f.metadata().map_err(|e| ProverError::io(path, e))?.len();
    let mut head = [0u8; 4];
    f.read_exact(&mut head)
        .map_err(|_| bad("shorter than its 4-byte header".into()))?;
    let k = u32::from_le_bytes(head);
    if k == 0 || k > MAX_SRS_K {
        return Err(bad(format!("header says k = {k}, outside 1..={MAX_SRS_K}")));
    }
    // k, 2^k g, 2^k g_lagrange (64 bytes each, uncompressed), g2 and s_g2 (128 bytes each).
    let expected = 4 + 2 * (1u64 << k) * 64 + 2 * 128;
    if len != expected {
        return Err(bad(format!(
            "{len} bytes, but a halo2 params file of k = {k} has {expected} (is it the uncompressed halo2 format?)"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| ProverError::io(path, e))?;
    ParamsKZG::<Bn256>::read_custom(&mut &bytes[..], SerdeFormat::RawBytes)
        .map_err(|e| bad(format!("invalid point: {e}")))
}
