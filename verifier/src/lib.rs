//! Verifies Collar batch proofs natively: proof artifacts, verifying-key files and the KZG check.
//!
//! A verifier needs exactly two files: the small verifying-key file ([`VerifyingKeyFile`],
//! written by the prover's keygen) and a proof artifact ([`ProofArtifact`]). [`verify`] says
//! which check failed if any does: malformed file, wrong verifying key, public-input mismatch
//! (with [`verify_expecting`]) or invalid proof. This crate depends on nothing from the sequencer
//! or the prover.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use collar_protocol::batch::BatchPublicInputs;
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, G1Affine};
use halo2_base::halo2_proofs::plonk::verify_proof;
use halo2_base::halo2_proofs::poly::commitment::Params;
use halo2_base::halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_base::halo2_proofs::poly::kzg::multiopen::VerifierSHPLONK;
use halo2_base::halo2_proofs::poly::kzg::strategy::SingleStrategy;
use halo2_base::halo2_proofs::transcript::{Blake2bRead, Challenge255, TranscriptReadBuffer};
use halo2_base::halo2_proofs::SerdeFormat;

use crate::canonical::{CanonicalRead, Encoding};

pub mod artifact;
mod canonical;
pub mod chain;
mod codec;
/// The EVM half: Solidity verifier, Solidity Poseidon, solc-js driver (feature `evm`).
#[cfg(feature = "evm")]
pub mod evm;
pub mod settlement;
mod srs;
pub mod vkfile;

pub use artifact::{ProofArtifact, ProofSystem};
pub use canonical::{Element, NonCanonical};
pub use srs::{SrsId, SrsKind, DEV_SRS_SEED};
pub use vkfile::VerifyingKeyFile;

pub use collar_protocol::batch::PUBLIC_INPUT_NAMES;

/// Why bytes are not a valid artifact or verifying-key file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The file does not start with the expected magic bytes (or JSON format tag).
    #[error("not a Collar {expected} file (bad magic)")]
    BadMagic {
        /// What kind of file was expected.
        expected: &'static str,
    },
    /// The file's format version is not the one this build reads.
    #[error(
        "{kind} format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion {
        /// Which format.
        kind: &'static str,
        /// Version in the file.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// The file ends inside a field.
    #[error("file is truncated (ends inside {what})")]
    Truncated {
        /// The field being read.
        what: &'static str,
    },
    /// Bytes follow the last field.
    #[error("{count} unexpected trailing bytes")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A length exceeds the format's maximum.
    #[error("{what} is {len} bytes, more than the maximum {max}")]
    TooLarge {
        /// The field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A text field is not UTF-8.
    #[error("{what} is not valid UTF-8")]
    NotUtf8 {
        /// The field.
        what: &'static str,
    },
    /// A field element is not canonical (≥ the BN254 scalar modulus) or out of its range.
    #[error("{what} is not a valid field element")]
    InvalidField {
        /// The field.
        what: &'static str,
    },
    /// A curve point is not on the curve or not canonically encoded.
    #[error("{what} is not a valid curve point")]
    InvalidPoint {
        /// The field.
        what: &'static str,
    },
    /// An enumerated code (SRS kind, proof system, flag) is unknown.
    #[error("unknown {what} code {code:#04x}")]
    UnknownCode {
        /// The field.
        what: &'static str,
        /// The code found.
        code: u8,
    },
    /// The circuit configuration is out of bounds or inconsistent.
    #[error("invalid circuit configuration: {0}")]
    InvalidConfig(String),
    /// A circuit id is empty, longer than the maximum, or not visible ASCII.
    #[error("circuit id must be 1 to 256 visible ASCII characters")]
    InvalidCircuitId,
    /// A verifying key calls the development SRS (whose secret is public) a ceremony's.
    #[error("the SRS is labelled a ceremony's, but its points are the INSECURE development SRS's")]
    MislabelledSrs,
    /// The halo2 verifying key cannot be rebuilt from its bytes and configuration.
    #[error("invalid verifying key: {0}")]
    InvalidVk(String),
    /// The JSON form does not parse or has wrong fields.
    #[error("invalid JSON: {0}")]
    Json(String),
}

/// Why a proof was not accepted. Each check has its own variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not a valid artifact or verifying key.
    #[error("malformed file{}: {source}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Malformed {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// What is wrong with it.
        source: FormatError,
    },
    /// The proof was made for a different verifying key (circuit shape, version or SRS).
    #[error("wrong verifying key: the proof is for vk {artifact_vk} ({artifact_circuit:?}), the key file is vk {file_vk} ({file_circuit:?})")]
    WrongVk {
        /// vk hash recorded in the artifact (hex).
        artifact_vk: String,
        /// Circuit id recorded in the artifact.
        artifact_circuit: String,
        /// Hash of the verifying-key file (hex).
        file_vk: String,
        /// Circuit id of the verifying-key file.
        file_circuit: String,
    },
    /// The artifact names the key by its hash, but its circuit id or SRS is not the key's.
    #[error("the artifact's {field} {artifact} is not the verifying key's {key}")]
    MetadataMismatch {
        /// Which field: `circuit id` or `srs`.
        field: &'static str,
        /// The artifact's value (escaped).
        artifact: String,
        /// The key's value.
        key: String,
    },
    /// A point or scalar of the proof is not in its one canonical encoding.
    #[error("non-canonical proof: the {} at byte {} is not its value's encoding", .0.element.name(), .0.offset)]
    NonCanonicalProof(NonCanonical),
    /// The proof's public inputs are not the ones the caller expected.
    #[error("public input {index} ({name}) mismatch: expected {expected}, proof claims {found}")]
    PublicInputMismatch {
        /// Instance-column index, 0..8.
        index: usize,
        /// Its name ([`PUBLIC_INPUT_NAMES`]).
        name: &'static str,
        /// Expected value (hex).
        expected: String,
        /// Value in the artifact (hex).
        found: String,
    },
    /// The artifact uses a proof system this verifier does not check natively.
    #[error("proof system {0:?} is not verified natively")]
    UnsupportedProofSystem(ProofSystem),
    /// The proof does not verify for these public inputs under this key.
    #[error("invalid proof: {0}")]
    InvalidProof(String),
}

impl VerifyError {
    /// A short stable name of the failed check, for exit messages and metrics.
    pub fn check(&self) -> &'static str {
        match self {
            VerifyError::Io { .. } => "io",
            VerifyError::Malformed { .. } => "malformed",
            VerifyError::WrongVk { .. } => "wrong-vk",
            VerifyError::MetadataMismatch { .. } => "metadata-mismatch",
            VerifyError::NonCanonicalProof(_) => "non-canonical-proof",
            VerifyError::PublicInputMismatch { .. } => "public-input-mismatch",
            VerifyError::UnsupportedProofSystem(_) => "unsupported-proof-system",
            VerifyError::InvalidProof(_) => "invalid-proof",
        }
    }
}

/// A batch whose proof verified: its public inputs and what it was verified against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedBatch {
    /// The proven public inputs.
    pub public_inputs: BatchPublicInputs,
    /// The circuit id.
    pub circuit_id: String,
    /// Hash of the verifying-key file used.
    pub vk_hash: [u8; 32],
    /// The SRS of the key ([`SrsId::is_insecure`] for a development SRS).
    pub srs: SrsId,
    /// Where each point and scalar of the proof starts, in transcript order (all canonical).
    pub proof_layout: Vec<(usize, Element)>,
}

/// Verifies `artifact` against `vk`. Checks, in this order: the artifact names this key (hash);
/// its circuit id and SRS are the key's; every point and scalar of the proof is canonically
/// encoded and nothing follows the transcript; the proof verifies for the artifact's public
/// inputs. On success every field of the artifact has been checked.
pub fn verify(
    artifact: &ProofArtifact,
    vk: &VerifyingKeyFile,
) -> Result<VerifiedBatch, VerifyError> {
    if artifact.vk_hash() != vk.hash() {
        return Err(VerifyError::WrongVk {
            artifact_vk: hex::encode(artifact.vk_hash()),
            artifact_circuit: artifact.circuit_id().to_owned(),
            file_vk: hex::encode(vk.hash()),
            file_circuit: vk.circuit_id().to_owned(),
        });
    }
    if artifact.circuit_id() != vk.circuit_id() {
        return Err(VerifyError::MetadataMismatch {
            field: "circuit id",
            artifact: format!("{:?}", artifact.circuit_id()),
            key: format!("{:?}", vk.circuit_id()),
        });
    }
    if artifact.srs() != vk.srs() {
        return Err(VerifyError::MetadataMismatch {
            field: "srs",
            artifact: format!("{:?}", artifact.srs()),
            key: format!("{:?}", vk.srs()),
        });
    }
    let params = verifier_params(vk)?;
    let instances = artifact.public_inputs().to_fields();
    let proof = artifact.proof();
    let proof_layout = match artifact.proof_system() {
        ProofSystem::ShplonkBlake2b => {
            let mut transcript = CanonicalRead::over(proof, Encoding::Compressed, |r| {
                Blake2bRead::<_, G1Affine, Challenge255<G1Affine>>::init(r)
            });
            let checked = check_shplonk(&params, vk, &instances, &mut transcript);
            conclude(checked, transcript.finish(), proof.len())?
        }
        #[cfg(feature = "evm")]
        ProofSystem::ShplonkKeccak => {
            use snark_verifier::system::halo2::transcript::evm::EvmTranscript;
            let mut transcript = CanonicalRead::over(proof, Encoding::Evm, |r| {
                EvmTranscript::<G1Affine, snark_verifier::loader::native::NativeLoader, _, _>::init(
                    r,
                )
            });
            let checked = check_shplonk(&params, vk, &instances, &mut transcript);
            conclude(checked, transcript.finish(), proof.len())?
        }
        #[allow(unreachable_patterns)]
        other => return Err(VerifyError::UnsupportedProofSystem(other)),
    };
    Ok(VerifiedBatch {
        public_inputs: *artifact.public_inputs(),
        circuit_id: vk.circuit_id().to_owned(),
        vk_hash: vk.hash(),
        srs: vk.srs(),
        proof_layout,
    })
}

/// The verdict on a proof read through a [`CanonicalRead`]: a non-canonical element first (the
/// read it failed is what made the check fail), then the check, then bytes left unread.
fn conclude(
    checked: Result<(), VerifyError>,
    (found, read, layout): (Option<NonCanonical>, usize, Vec<(usize, Element)>),
    len: usize,
) -> Result<Vec<(usize, Element)>, VerifyError> {
    if let Some(nc) = found {
        return Err(VerifyError::NonCanonicalProof(nc));
    }
    checked?;
    if read != len {
        return Err(VerifyError::InvalidProof(format!(
            "{} bytes follow the proof transcript",
            len - read
        )));
    }
    Ok(layout)
}

/// The SHPLONK KZG check of one proof, whatever its transcript.
fn check_shplonk<E, T>(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKeyFile,
    instances: &[halo2_base::halo2_proofs::halo2curves::bn256::Fr],
    transcript: &mut T,
) -> Result<(), VerifyError>
where
    E: halo2_base::halo2_proofs::transcript::EncodedChallenge<G1Affine>,
    T: halo2_base::halo2_proofs::transcript::TranscriptRead<G1Affine, E>,
{
    verify_proof::<
        KZGCommitmentScheme<Bn256>,
        VerifierSHPLONK<'_, Bn256>,
        E,
        _,
        SingleStrategy<'_, Bn256>,
    >(
        params,
        vk.vk(),
        SingleStrategy::new(params),
        &[&[instances]],
        transcript,
    )
    .map_err(|e| VerifyError::InvalidProof(format!("{e:?}")))
}

/// [`verify`], and then that the proven public inputs are `expected`, else
/// [`VerifyError::PublicInputMismatch`] naming the first differing input. The public inputs are
/// compared before the (expensive) proof check.
pub fn verify_expecting(
    artifact: &ProofArtifact,
    vk: &VerifyingKeyFile,
    expected: &BatchPublicInputs,
) -> Result<VerifiedBatch, VerifyError> {
    let want = expected.to_fields();
    let got = artifact.public_inputs().to_fields();
    if let Some(index) = (0..8).find(|&i| want[i] != got[i]) {
        let hexf = |f| {
            format!(
                "0x{}",
                hex::encode(collar_protocol::field::fr_to_be_bytes(f))
            )
        };
        return Err(VerifyError::PublicInputMismatch {
            index,
            name: PUBLIC_INPUT_NAMES[index],
            expected: hexf(&want[index]),
            found: hexf(&got[index]),
        });
    }
    verify(artifact, vk)
}

/// Reads the artifact at `proof_path` (binary or JSON) and the verifying-key file at `vk_path`,
/// and [`verify`]s. This is what `collar verify PROOF --vk VK` runs.
pub fn verify_files(proof_path: &Path, vk_path: &Path) -> Result<VerifiedBatch, VerifyError> {
    let vk = VerifyingKeyFile::read(vk_path)?;
    let artifact = ProofArtifact::read(proof_path)?;
    verify(&artifact, &vk)
}

/// The KZG verifier parameters: `g[0]`, `g2`, `s·g2` at the key's size. The verifier never
/// touches the other powers (KZG commits instances inside the proof, not by the verifier).
fn verifier_params(vk: &VerifyingKeyFile) -> Result<ParamsKZG<Bn256>, VerifyError> {
    let (g0, g2, s_g2) = vk.kzg_points();
    // A one-point SRS (k = 0) decoded from its own parts, then resized to the key's `k`.
    let mut w = codec::Writer::default();
    w.u32(0);
    w.point(&g0);
    w.point(&g0);
    w.point(&g2);
    w.point(&s_g2);
    let base =
        ParamsKZG::<Bn256>::read_custom(&mut &w.buf[..], SerdeFormat::RawBytes).map_err(|e| {
            VerifyError::Malformed {
                path: None,
                source: FormatError::InvalidVk(format!("KZG points: {e}")),
            }
        })?;
    let params = base.from_parts(
        vk.config().base.k as u32,
        vec![g0],
        Some(vec![g0]),
        g2,
        s_g2,
    );
    debug_assert_eq!(params.k(), vk.config().base.k as u32);
    Ok(params)
}

/// Reads at most `max` bytes of `path`.
pub(crate) fn read_file(path: &Path, max: usize) -> Result<Vec<u8>, VerifyError> {
    let io = |source| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > max as u64 {
        return Err(VerifyError::Malformed {
            path: Some(path.to_path_buf()),
            source: FormatError::TooLarge {
                what: "file",
                len: usize::try_from(len).unwrap_or(usize::MAX),
                max,
            },
        });
    }
    std::fs::read(path).map_err(io)
}

/// Serde for 32-byte hashes as `0x`-prefixed hex.
pub(crate) mod hex32 {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(b)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let digits = s
            .strip_prefix("0x")
            .filter(|d| !d.bytes().any(|b| b.is_ascii_uppercase()))
            .ok_or_else(|| D::Error::custom("expected 0x-prefixed lower-case hex"))?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(digits, &mut out).map_err(D::Error::custom)?;
        Ok(out)
    }
}
