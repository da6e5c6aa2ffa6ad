//! The verifying-key file: everything a verifier needs besides the proof.
//!
//! # Binary layout (version 4)
//!
//! All integers little-endian; curve points in halo2's `SerdeFormat::RawBytes` (uncompressed,
//! checked on read to lie on the curve).
//!
//! | bytes          | field                                                              |
//! |----------------|--------------------------------------------------------------------|
//! | 8              | magic `COLLARVK`                                                   |
//! | 2              | format version (`4`)                                               |
//! | 4 + n          | circuit id, visible ASCII, `1 ≤ n ≤ 256`                           |
//! | 1 + 32         | SRS kind and digest ([`SrsId`]: over the kind and the three points below; the development SRS's points must say `0xde`) |
//! | 4              | `k` (the circuit has 2^k rows)                                     |
//! | 4 + 4·m        | advice columns per phase (`m` ≤ 3)                                  |
//! | 4              | fixed columns                                                      |
//! | 4 + 4·m        | lookup advice columns per phase (`m` ≤ 3)                           |
//! | 1 (+ 4)        | lookup bits: `0` none, or `1` and the value                        |
//! | 4              | instance columns                                                   |
//! | 1              | hashing: `0` halo2-base, `1` the Pow5 chip (8 more advice columns), `2` the Pow5 and msm chips (the same 8) |
//! | 4              | Pow5 permutations the chip region holds (`0` with halo2-base)      |
//! | 4              | Schnorr multiplications it holds after them (`0` unless hashing is `2`) |
//! | 64             | KZG `g[0]` (G1)                                                    |
//! | 128            | KZG `g2` (G2)                                                      |
//! | 128            | KZG `s·g2` (G2)                                                    |
//! | 4 + n          | halo2 verifying key, `VerifyingKey::write(.., RawBytes)`, `n` ≤ 64 MiB |
//!
//! The circuit configuration is what `VerifyingKey::read::<HashingCircuit>` needs to rebuild the
//! constraint system; the three points are all of the SRS a KZG verifier uses. Version 2 added
//! the hashing and the capacity (version 1 keys were halo2-base circuits), version 3 the
//! multiplications, version 4 an SRS digest over the kind as well as the points; rebuild older
//! keys.

use std::fmt;
use std::path::Path;

use collar_circuits::poseidon::Hashing;
use collar_circuits::pow5::{HashingCircuit, HashingCircuitParams};
use halo2_base::gates::circuit::BaseCircuitParams;
use halo2_base::halo2_proofs::halo2curves::bn256::{G1Affine, G2Affine};
use halo2_base::halo2_proofs::plonk::VerifyingKey;
use halo2_base::halo2_proofs::SerdeFormat;
use sha2::{Digest, Sha256};

use crate::artifact::{check_circuit_id, check_len};
use crate::codec::{header, Reader, Writer};
use crate::{FormatError, SrsId, SrsKind, VerifyError};

/// First bytes of a verifying-key file.
pub const VK_MAGIC: &[u8; 8] = b"COLLARVK";
/// The verifying-key format version this crate reads and writes.
pub const VK_VERSION: u16 = 4;
/// Largest `k` accepted (BN254's two-adicity allows 28).
pub const MAX_K: u32 = 28;
/// Largest halo2 verifying key accepted.
pub const MAX_VK_LEN: usize = 64 << 20;
const MAX_COLUMNS: u32 = 1024;
/// Largest Pow5 capacity accepted (27 rows a permutation in at most `2^MAX_K` rows).
const MAX_CAPACITY: u32 = 1 << 24;
/// Largest multiplication capacity accepted (511 rows each in at most `2^MAX_K` rows).
const MAX_MSMS: u32 = 1 << 19;

/// A verifying key with the circuit configuration that rebuilds it and the KZG verifier points.
#[derive(Clone)]
pub struct VerifyingKeyFile {
    circuit_id: String,
    srs: SrsId,
    config: HashingCircuitParams,
    g0: G1Affine,
    g2: G2Affine,
    s_g2: G2Affine,
    vk: VerifyingKey<G1Affine>,
    bytes: Vec<u8>,
    hash: [u8; 32],
}

impl fmt::Debug for VerifyingKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKeyFile")
            .field("circuit_id", &self.circuit_id)
            .field("srs", &self.srs)
            .field("config", &self.config)
            .field("hash", &hex::encode(self.hash))
            .finish_non_exhaustive()
    }
}

impl VerifyingKeyFile {
    /// Packages `vk`, made by keygen for a `HashingCircuit` with `config` over an
    /// SRS whose generators are `g0`, `g2`, `s_g2` (identified by `srs`).
    ///
    /// Fails if the configuration is outside this format's bounds, `srs` does not match the
    /// points, or the key does not round-trip through its own configuration (that is, `config`
    /// is not the one `vk` was made with).
    pub fn new(
        circuit_id: String,
        srs: SrsId,
        config: HashingCircuitParams,
        g0: G1Affine,
        g2: G2Affine,
        s_g2: G2Affine,
        vk: &VerifyingKey<G1Affine>,
    ) -> Result<Self, FormatError> {
        check_circuit_id(&circuit_id)?;
        if SrsId::checked(srs.kind, &g0, &g2, &s_g2)? != srs {
            return Err(FormatError::InvalidConfig(
                "SRS identity does not match its points".into(),
            ));
        }
        let mut w = Writer::default();
        w.bytes(VK_MAGIC);
        w.u16(VK_VERSION);
        w.var(circuit_id.as_bytes());
        w.u8(srs.kind.code());
        w.bytes(&srs.digest);
        write_config(&mut w, &config)?;
        w.point(&g0);
        w.point(&g2);
        w.point(&s_g2);
        let vk_bytes = vk.to_bytes(SerdeFormat::RawBytes);
        check_len("verifying key", vk_bytes.len(), MAX_VK_LEN)?;
        w.var(&vk_bytes);
        // Decoding what we wrote checks that the key is consistent with `config`.
        Self::from_bytes(&w.buf)
    }

    /// The circuit id this key verifies.
    pub fn circuit_id(&self) -> &str {
        &self.circuit_id
    }
    /// The SRS the key was made with.
    pub fn srs(&self) -> SrsId {
        self.srs
    }
    /// The circuit configuration (halo2-base's, the hashing and the Pow5 capacity).
    pub fn config(&self) -> &HashingCircuitParams {
        &self.config
    }
    /// The halo2 verifying key.
    pub fn vk(&self) -> &VerifyingKey<G1Affine> {
        &self.vk
    }
    /// `g[0]`, `g2` and `s·g2` of the SRS: everything of it a KZG verifier uses.
    pub fn kzg_points(&self) -> (G1Affine, G2Affine, G2Affine) {
        (self.g0, self.g2, self.s_g2)
    }
    /// SHA-256 of the file's binary encoding: the key's identity, recorded in proof artifacts.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }
    /// The binary encoding (layout in the module docs).
    pub fn to_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Decodes and validates a verifying-key file, rebuilding the halo2 key from its
    /// configuration. Every field is checked, nothing may follow, and the key must re-encode to
    /// the same bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes);
        header(&mut r, VK_MAGIC, "verifying key", VK_VERSION)?;
        let circuit_id = r.circuit_id()?;
        let kind = r.u8("srs kind")?;
        let kind = SrsKind::from_code(kind).ok_or(FormatError::UnknownCode {
            what: "srs kind",
            code: kind,
        })?;
        let digest = r.array::<32>("srs digest")?;
        let config = read_config(&mut r)?;
        let g0 = r.point("g[0]")?;
        let g2 = r.point("g2")?;
        let s_g2 = r.point("s_g2")?;
        let srs = SrsId { kind, digest };
        // The digest covers the kind and the points; a development SRS called a ceremony's is
        // refused whatever its digest says.
        if SrsId::checked(kind, &g0, &g2, &s_g2)? != srs {
            return Err(FormatError::InvalidConfig(
                "SRS digest does not match the SRS points".into(),
            ));
        }
        let vk_bytes = r.var("verifying key", MAX_VK_LEN)?;
        r.finish()?;
        let vk = read_vk(vk_bytes, &config)?;
        Ok(Self {
            circuit_id,
            srs,
            config,
            g0,
            g2,
            s_g2,
            vk,
            bytes: bytes.to_vec(),
            hash: Sha256::digest(bytes).into(),
        })
    }

    /// Reads a verifying-key file.
    pub fn read(path: &Path) -> Result<Self, VerifyError> {
        let bytes = crate::read_file(path, MAX_VK_LEN + 4096)?;
        Self::from_bytes(&bytes).map_err(|source| VerifyError::Malformed {
            path: Some(path.to_path_buf()),
            source,
        })
    }

    /// Writes the file to `path`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, &self.bytes)
    }
}

fn write_config(w: &mut Writer, hc: &HashingCircuitParams) -> Result<(), FormatError> {
    check_hashing(hc)?;
    let c = &hc.base;
    check_config(c)?;
    w.u32(c.k as u32);
    w.u32(c.num_advice_per_phase.len() as u32);
    for &n in &c.num_advice_per_phase {
        w.u32(n as u32);
    }
    w.u32(c.num_fixed as u32);
    w.u32(c.num_lookup_advice_per_phase.len() as u32);
    for &n in &c.num_lookup_advice_per_phase {
        w.u32(n as u32);
    }
    match c.lookup_bits {
        None => w.u8(0),
        Some(b) => {
            w.u8(1);
            w.u32(b as u32);
        }
    }
    w.u32(c.num_instance_columns as u32);
    w.u8(hc.hashing.code());
    w.u32(hc.capacity as u32);
    w.u32(hc.msms as u32);
    Ok(())
}

/// The hashing and capacities agree (no chip region without the chip) and stay in bounds.
fn check_hashing(c: &HashingCircuitParams) -> Result<(), FormatError> {
    let bad = |m: String| Err(FormatError::InvalidConfig(m));
    match c.hashing {
        Hashing::HaloBase if c.capacity != 0 => bad(format!(
            "halo2-base hashing with a Pow5 capacity of {}",
            c.capacity
        )),
        h if !h.msm() && c.msms != 0 => bad(format!(
            "{h} hashing with a multiplication capacity of {}",
            c.msms
        )),
        _ if c.msms > MAX_MSMS as usize => bad(format!(
            "multiplication capacity {} above {MAX_MSMS}",
            c.msms
        )),
        _ if c.capacity > MAX_CAPACITY as usize => {
            bad(format!("Pow5 capacity {} above {MAX_CAPACITY}", c.capacity))
        }
        _ => Ok(()),
    }
}

fn read_config(r: &mut Reader<'_>) -> Result<HashingCircuitParams, FormatError> {
    let k = r.u32("k")?;
    let per_phase = |r: &mut Reader<'_>, what: &'static str| -> Result<Vec<usize>, FormatError> {
        let m = r.u32(what)?;
        if m > 3 {
            return Err(FormatError::InvalidConfig(format!(
                "{what}: {m} phases (at most 3)"
            )));
        }
        (0..m).map(|_| Ok(r.u32(what)? as usize)).collect()
    };
    let num_advice_per_phase = per_phase(r, "advice columns")?;
    let num_fixed = r.u32("fixed columns")? as usize;
    let num_lookup_advice_per_phase = per_phase(r, "lookup advice columns")?;
    let lookup_bits = match r.u8("lookup bits flag")? {
        0 => None,
        1 => Some(r.u32("lookup bits")? as usize),
        code => {
            return Err(FormatError::UnknownCode {
                what: "lookup bits flag",
                code,
            })
        }
    };
    let num_instance_columns = r.u32("instance columns")? as usize;
    let c = BaseCircuitParams {
        k: k as usize,
        num_advice_per_phase,
        num_fixed,
        num_lookup_advice_per_phase,
        lookup_bits,
        num_instance_columns,
    };
    check_config(&c)?;
    let code = r.u8("hashing")?;
    let hashing = Hashing::from_code(code).ok_or(FormatError::UnknownCode {
        what: "hashing",
        code,
    })?;
    let c = HashingCircuitParams {
        base: c,
        hashing,
        capacity: r.u32("pow5 capacity")? as usize,
        msms: r.u32("msm capacity")? as usize,
    };
    check_hashing(&c)?;
    Ok(c)
}

/// Bounds under which halo2-base configures a circuit without panicking, and the shape of
/// Collar's batch circuit (one instance column, first-phase columns only).
fn check_config(c: &BaseCircuitParams) -> Result<(), FormatError> {
    let bad = |m: String| Err(FormatError::InvalidConfig(m));
    if c.k == 0 || c.k > MAX_K as usize {
        return bad(format!("k = {} outside 1..={MAX_K}", c.k));
    }
    if c.num_advice_per_phase.len() != 1 || c.num_advice_per_phase[0] == 0 {
        return bad("expected advice columns in exactly one (the first) phase".into());
    }
    let cols = c.num_advice_per_phase[0]
        + c.num_fixed
        + c.num_lookup_advice_per_phase.iter().sum::<usize>();
    if cols > MAX_COLUMNS as usize || c.num_fixed == 0 {
        return bad(format!(
            "column counts out of range ({} fixed, {cols} total)",
            c.num_fixed
        ));
    }
    if c.num_lookup_advice_per_phase
        .iter()
        .skip(1)
        .any(|&n| n != 0)
    {
        return bad("lookup advice columns outside the first phase".into());
    }
    match c.lookup_bits {
        Some(b) if b == 0 || b >= c.k => return bad(format!("lookup bits {b} not in 1..k")),
        None if c.num_lookup_advice_per_phase.iter().any(|&n| n != 0) => {
            return bad("lookup advice columns without lookup bits".into())
        }
        _ => {}
    }
    if c.num_instance_columns != 1 {
        return bad(format!(
            "{} instance columns (the batch circuit has one)",
            c.num_instance_columns
        ));
    }
    Ok(())
}

fn read_vk(
    bytes: &[u8],
    config: &HashingCircuitParams,
) -> Result<VerifyingKey<G1Affine>, FormatError> {
    // halo2 sizes its evaluation domain from the key's own `k` before reading anything else:
    // insist that it is the configuration's.
    let vk_k = bytes
        .get(1..5)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .ok_or(FormatError::Truncated {
            what: "verifying key",
        })?;
    if vk_k as usize != config.base.k {
        return Err(FormatError::InvalidVk(format!(
            "key is for k = {vk_k}, configuration says k = {}",
            config.base.k
        )));
    }
    let config = config.clone();
    // halo2-base configures columns with assertions; `check_config` keeps to its bounds, and
    // any remaining panic on hostile input is reported as a malformed key, not a crash.
    let read = std::panic::catch_unwind(move || {
        VerifyingKey::<G1Affine>::read::<_, HashingCircuit>(
            &mut &bytes[..],
            SerdeFormat::RawBytes,
            config,
        )
        .map(|vk| {
            let again = vk.to_bytes(SerdeFormat::RawBytes);
            (vk, again)
        })
    });
    match read {
        Ok(Ok((vk, again))) if again == bytes => Ok(vk),
        Ok(Ok(_)) => Err(FormatError::InvalidVk(
            "key does not re-encode to the same bytes (wrong configuration or trailing data)"
                .into(),
        )),
        Ok(Err(e)) => Err(FormatError::InvalidVk(e.to_string())),
        Err(_) => Err(FormatError::InvalidVk(
            "halo2 could not rebuild the key from this configuration".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(hashing: Hashing, capacity: usize, msms: usize) -> HashingCircuitParams {
        HashingCircuitParams {
            base: BaseCircuitParams {
                k: 17,
                num_advice_per_phase: vec![3],
                num_fixed: 1,
                num_lookup_advice_per_phase: vec![1, 0, 0],
                lookup_bits: Some(16),
                num_instance_columns: 1,
            },
            hashing,
            capacity,
            msms,
        }
    }

    fn round_trip(c: &HashingCircuitParams) -> Result<HashingCircuitParams, FormatError> {
        let mut w = Writer::default();
        write_config(&mut w, c)?;
        read_config(&mut Reader::new(&w.buf))
    }

    #[test]
    fn every_hashing_and_both_capacities_round_trip() {
        for c in [
            config(Hashing::HaloBase, 0, 0),
            config(Hashing::Pow5, 626, 0),
            config(Hashing::Pow5Msm, 626, 12),
        ] {
            let back = round_trip(&c).expect("a valid configuration");
            assert_eq!(
                (back.hashing, back.capacity, back.msms),
                (c.hashing, c.capacity, c.msms)
            );
        }
    }

    #[test]
    fn a_multiplication_capacity_without_the_msm_chip_is_refused() {
        for c in [
            config(Hashing::HaloBase, 0, 1),
            config(Hashing::Pow5, 626, 12),
            config(Hashing::Pow5Msm, 626, MAX_MSMS as usize + 1),
        ] {
            assert!(
                matches!(round_trip(&c), Err(FormatError::InvalidConfig(_))),
                "{} with {} multiplications",
                c.hashing,
                c.msms
            );
        }
    }
}
