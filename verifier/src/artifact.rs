//! The proof artifact: one batch proof with everything needed to say what it proves.
//!
//! # Binary layout (version 1)
//!
//! All integers little-endian; field elements 32 bytes big-endian and canonical (< r).
//!
//! | bytes        | field                                                        |
//! |--------------|--------------------------------------------------------------|
//! | 8            | magic `COLLARPF`                                             |
//! | 2            | format version (`1`)                                         |
//! | 4 + n        | circuit id, visible ASCII, `1 ≤ n ≤ 256`                     |
//! | 32           | vk hash ([`crate::VerifyingKeyFile::hash`])                  |
//! | 1 + 32       | SRS kind (`0xde` insecure development, `0x01` ceremony) and SRS digest |
//! | 1            | proof system (`1` = SHPLONK KZG, Blake2b; `2` = Keccak (EVM))  |
//! | 8 × 32       | the eight public inputs, in instance-column order            |
//! | 4 + n        | proof bytes, `n` ≤ 16 MiB                                     |
//!
//! Nothing may follow. The JSON form carries the same values (hex strings, named fields) and
//! refuses unknown fields at every level.
//!
//! # What verification checks
//!
//! Every field is checked by [`crate::verify`]; none is taken on trust:
//! - the vk hash must be the SHA-256 of the verifying-key file given;
//! - the circuit id and the SRS (kind and digest) must equal that file's, which its hash covers;
//! - the public inputs are the proof's instances;
//! - the proof system chooses the transcript, and the proof must verify under it;
//! - every point and scalar of the proof must be in its canonical encoding, and nothing may
//!   follow the transcript, so one proof has one byte string.

use std::path::Path;

use collar_protocol::batch::BatchPublicInputs;
use collar_protocol::field::fr_to_u128;
use serde::{Deserialize, Serialize};

use crate::codec::{header, Reader, Writer};
use crate::{FormatError, SrsId, SrsKind, VerifyError};

/// First bytes of a binary proof artifact.
pub const ARTIFACT_MAGIC: &[u8; 8] = b"COLLARPF";
/// The artifact format version this crate reads and writes.
pub const ARTIFACT_VERSION: u16 = 1;
/// Longest circuit id accepted.
pub const MAX_CIRCUIT_ID_LEN: usize = 256;
/// Largest proof accepted (far above any Collar proof; bounds allocation on hostile input).
pub const MAX_PROOF_LEN: usize = 16 << 20;
/// `format` tag of the JSON form.
const JSON_FORMAT: &str = "collar-proof";

/// The proof system and Fiat–Shamir transcript a proof was made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ProofSystem {
    /// halo2 PLONK, KZG on BN254 with SHPLONK multi-opening, Blake2b transcript (native).
    #[serde(rename = "shplonk-blake2b")]
    ShplonkBlake2b,
    /// The same with snark-verifier's EVM (Keccak) transcript: the proof bytes the generated
    /// Solidity verifier and the settlement contract take. Verified natively only with the
    /// verifier's `evm` feature.
    #[serde(rename = "shplonk-keccak")]
    ShplonkKeccak,
}

impl ProofSystem {
    fn code(self) -> u8 {
        match self {
            ProofSystem::ShplonkBlake2b => 1,
            ProofSystem::ShplonkKeccak => 2,
        }
    }
    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(ProofSystem::ShplonkBlake2b),
            2 => Some(ProofSystem::ShplonkKeccak),
            _ => None,
        }
    }
}

/// A batch proof with its circuit id, verifying-key hash, SRS identity and public inputs.
///
/// Construct with [`ProofArtifact::new`] (checks the size limits), decode with
/// [`ProofArtifact::from_bytes`] / [`ProofArtifact::from_json`] / [`ProofArtifact::read`].
#[derive(Clone, PartialEq, Eq)]
pub struct ProofArtifact {
    circuit_id: String,
    vk_hash: [u8; 32],
    srs: SrsId,
    proof_system: ProofSystem,
    public_inputs: BatchPublicInputs,
    proof: Vec<u8>,
}

impl std::fmt::Debug for ProofArtifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofArtifact")
            .field("circuit_id", &self.circuit_id)
            .field("vk_hash", &hex::encode(self.vk_hash))
            .field("srs", &self.srs)
            .field("proof_system", &self.proof_system)
            .field("public_inputs", &self.public_inputs)
            .field("proof_len", &self.proof.len())
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArtifactJson {
    format: String,
    version: u16,
    circuit_id: String,
    #[serde(with = "crate::hex32")]
    vk_hash: [u8; 32],
    srs: SrsId,
    proof_system: ProofSystem,
    public_inputs: BatchPublicInputs,
    proof: String,
}

impl ProofArtifact {
    /// An artifact for `proof` of `public_inputs` under the verifying key with hash `vk_hash`.
    /// Fails unless the circuit id is 1 to [`MAX_CIRCUIT_ID_LEN`] visible ASCII characters and
    /// the proof is at most [`MAX_PROOF_LEN`] bytes.
    pub fn new(
        circuit_id: String,
        vk_hash: [u8; 32],
        srs: SrsId,
        proof_system: ProofSystem,
        public_inputs: BatchPublicInputs,
        proof: Vec<u8>,
    ) -> Result<Self, FormatError> {
        check_circuit_id(&circuit_id)?;
        check_len("proof", proof.len(), MAX_PROOF_LEN)?;
        Ok(Self {
            circuit_id,
            vk_hash,
            srs,
            proof_system,
            public_inputs,
            proof,
        })
    }

    /// The circuit this proof is for (version, hashing and shape, e.g.
    /// `collar-batch-v5/pow5/cap2/t6/k17/<config hash prefix>`).
    pub fn circuit_id(&self) -> &str {
        &self.circuit_id
    }
    /// Hash of the verifying-key file the proof was made for.
    pub fn vk_hash(&self) -> [u8; 32] {
        self.vk_hash
    }
    /// The SRS the keys were made with.
    pub fn srs(&self) -> SrsId {
        self.srs
    }
    /// The proof system and transcript.
    pub fn proof_system(&self) -> ProofSystem {
        self.proof_system
    }
    /// The batch's eight public inputs.
    pub fn public_inputs(&self) -> &BatchPublicInputs {
        &self.public_inputs
    }
    /// The proof bytes (the halo2 transcript).
    pub fn proof(&self) -> &[u8] {
        &self.proof
    }
    /// Mutable proof bytes, for tools that deliberately corrupt a proof (tests, fuzzing).
    pub fn proof_mut(&mut self) -> &mut Vec<u8> {
        &mut self.proof
    }
    /// Mutable public inputs, for tools that deliberately change a claim (tests).
    pub fn public_inputs_mut(&mut self) -> &mut BatchPublicInputs {
        &mut self.public_inputs
    }
    /// Replaces the recorded verifying-key hash (tests; re-labelling is caught by verification).
    pub fn set_vk_hash(&mut self, vk_hash: [u8; 32]) {
        self.vk_hash = vk_hash;
    }

    /// The binary encoding (layout in the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(ARTIFACT_MAGIC);
        w.u16(ARTIFACT_VERSION);
        w.var(self.circuit_id.as_bytes());
        w.bytes(&self.vk_hash);
        w.u8(self.srs.kind.code());
        w.bytes(&self.srs.digest);
        w.u8(self.proof_system.code());
        for f in self.public_inputs.to_fields() {
            w.fr(&f);
        }
        w.var(&self.proof);
        w.buf
    }

    /// Decodes the binary form; every field is validated and nothing may follow.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes);
        header(&mut r, ARTIFACT_MAGIC, "proof artifact", ARTIFACT_VERSION)?;
        let circuit_id = r.circuit_id()?;
        let vk_hash = r.array::<32>("vk hash")?;
        let kind = r.u8("srs kind")?;
        let kind = SrsKind::from_code(kind).ok_or(FormatError::UnknownCode {
            what: "srs kind",
            code: kind,
        })?;
        let digest = r.array::<32>("srs digest")?;
        let ps = r.u8("proof system")?;
        let proof_system = ProofSystem::from_code(ps).ok_or(FormatError::UnknownCode {
            what: "proof system",
            code: ps,
        })?;
        let mut f = [collar_protocol::Fr::zero(); 8];
        for (i, slot) in f.iter_mut().enumerate() {
            *slot = r.fr(crate::PUBLIC_INPUT_NAMES[i])?;
        }
        let batch_number = fr_to_u128(&f[7])
            .and_then(|v| u64::try_from(v).ok())
            .ok_or(FormatError::InvalidField {
                what: "batch_number (exceeds u64)",
            })?;
        let public_inputs = BatchPublicInputs {
            old_root: f[0],
            new_root: f[1],
            pubdata_commitment: f[2],
            tick_commitment: f[3],
            deposit_head_before: f[4],
            deposit_head_after: f[5],
            withdrawals_commitment: f[6],
            batch_number,
        };
        let proof = r.var("proof", MAX_PROOF_LEN)?.to_vec();
        r.finish()?;
        Ok(Self {
            circuit_id,
            vk_hash,
            srs: SrsId { kind, digest },
            proof_system,
            public_inputs,
            proof,
        })
    }

    /// The JSON form (pretty-printed), with `"format": "collar-proof"` and the version.
    pub fn to_json(&self) -> String {
        let j = ArtifactJson {
            format: JSON_FORMAT.into(),
            version: ARTIFACT_VERSION,
            circuit_id: self.circuit_id.clone(),
            vk_hash: self.vk_hash,
            srs: self.srs,
            proof_system: self.proof_system,
            public_inputs: self.public_inputs,
            proof: format!("0x{}", hex::encode(&self.proof)),
        };
        serde_json::to_string_pretty(&j).expect("serialising plain data cannot fail")
    }

    /// Decodes the JSON form; unknown fields, a wrong format tag or version are errors.
    pub fn from_json(s: &str) -> Result<Self, FormatError> {
        let j: ArtifactJson =
            serde_json::from_str(s).map_err(|e| FormatError::Json(e.to_string()))?;
        if j.format != JSON_FORMAT {
            return Err(FormatError::BadMagic {
                expected: "proof artifact",
            });
        }
        if j.version != ARTIFACT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                kind: "proof artifact",
                found: j.version,
                supported: ARTIFACT_VERSION,
            });
        }
        let digits = j
            .proof
            .strip_prefix("0x")
            .filter(|d| !d.bytes().any(|b| b.is_ascii_uppercase()))
            .ok_or(FormatError::Json(
                "proof must be 0x-prefixed lower-case hex".into(),
            ))?;
        check_len("proof", digits.len() / 2, MAX_PROOF_LEN)?;
        let proof = hex::decode(digits).map_err(|e| FormatError::Json(format!("proof: {e}")))?;
        Self::new(
            j.circuit_id,
            j.vk_hash,
            j.srs,
            j.proof_system,
            j.public_inputs,
            proof,
        )
    }

    /// Decodes either form, told apart by the first non-space byte (`{` is JSON).
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => {
                let s = std::str::from_utf8(bytes).map_err(|_| FormatError::NotUtf8 {
                    what: "JSON proof artifact",
                })?;
                Self::from_json(s)
            }
            _ => Self::from_bytes(bytes),
        }
    }

    /// Reads an artifact file in either form.
    pub fn read(path: &Path) -> Result<Self, VerifyError> {
        let bytes = crate::read_file(path, MAX_PROOF_LEN * 3)?;
        Self::decode(&bytes).map_err(|source| VerifyError::Malformed {
            path: Some(path.to_path_buf()),
            source,
        })
    }

    /// Writes the binary form to `path`, or the JSON form if `path` ends in `.json`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::write(path, self.to_json())
        } else {
            std::fs::write(path, self.to_bytes())
        }
    }
}

/// A circuit id is 1 to [`MAX_CIRCUIT_ID_LEN`] visible ASCII characters (`!` to `~`): nothing a
/// terminal would interpret, and one spelling per id.
pub(crate) fn check_circuit_id(id: &str) -> Result<(), FormatError> {
    check_len("circuit id", id.len(), MAX_CIRCUIT_ID_LEN)?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FormatError::InvalidCircuitId);
    }
    Ok(())
}

pub(crate) fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), FormatError> {
    if len > max {
        Err(FormatError::TooLarge { what, len, max })
    } else {
        Ok(())
    }
}
